"""The lesson's claims, each checked against what the experiments measured.

A claim about single runs is checked on every repeat: it "holds" when it is true for
all of them, "holds in k of n repeats" when for some, and "does not hold" for none.
A comparison claim is checked on the distributions with a Mann-Whitney U test. Each
verdict carries the numbers it was decided on. A claim that does not reproduce is a
finding, reported plainly.
"""

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from stablelearn.experiments.runner import ExperimentResult, VariantResult
from stablelearn.stats import bootstrap_median_ci, compare, describe_comparison, iqr

ALPHA = 0.05


@dataclass(frozen=True)
class ClaimResult:
    id: str
    claim: str
    experiments: tuple[str, ...]
    verdict: str
    measured: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "claim": self.claim,
            "experiments": list(self.experiments),
            "verdict": self.verdict,
            "measured": self.measured,
        }


def count_verdict(k: int, n: int) -> str:
    if k == n:
        return "holds"
    if k == 0:
        return "does not hold"
    return f"holds in {k} of {n} repeats"


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _numbered(curves: np.ndarray, epochs: np.ndarray | None) -> np.ndarray:
    """The 1-based epoch of each column (see TrainResult.history_epochs)."""
    return np.arange(1, curves.shape[1] + 1) if epochs is None else np.asarray(epochs)


def _first_epoch_below(
    curves: np.ndarray, threshold: float, epochs: np.ndarray | None = None
) -> np.ndarray:
    """1-based first (recorded) epoch whose value is below threshold, per run (0 if never)."""
    below = np.isfinite(curves) & (curves < threshold)
    return np.where(below.any(axis=1), _numbered(curves, epochs)[below.argmax(axis=1)], 0)


def _at_epoch(curves: np.ndarray, epochs: np.ndarray, epoch: int) -> float | None:
    """The median over runs at a 1-based epoch, None where the history lacks it."""
    column = np.flatnonzero(epochs == epoch)
    return _median(curves[:, column[0]]) if column.size else None


def _convergence_epoch(
    curves: np.ndarray,
    window: int = 20,
    tolerance: float = 0.02,
    epochs: np.ndarray | None = None,
) -> np.ndarray:
    """1-based first epoch at which a run's train accuracy, averaged over the last
    `window` epochs, comes within `tolerance` of its final level (the mean of the last
    50 epochs), or inf if it never does. The average keeps epoch-to-epoch noise from
    hiding convergence. A very long run's history keeps a sample of its epochs
    (`epochs`); the windows are then of recorded epochs."""
    if curves.shape[1] < window:
        return np.full(curves.shape[0], np.inf)  # too short a run to tell
    kernel = np.ones(window) / window
    smooth = np.stack([np.convolve(run, kernel, mode="valid") for run in curves])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (diverged) runs
        final = np.nanmean(curves[:, -50:], axis=1, keepdims=True)
    reached = smooth >= final - tolerance
    numbers = _numbered(curves, epochs)
    return np.where(reached.any(axis=1), numbers[reached.argmax(axis=1) + window - 1], np.inf)


# --- claims about single experiments -------------------------------------------------


def _unscaled_diverges(v: VariantResult) -> tuple[int, int, dict[str, Any]]:
    r = v.result
    epochs = r.diverged_epoch[r.diverged]
    return (
        int(r.diverged.sum()),
        r.n_models,
        {
            "diverged": f"{int(r.diverged.sum())}/{r.n_models}",
            "diverged_epoch_median": float(np.median(epochs)) if epochs.size else None,
            "diverged_epoch_max": int(epochs.max()) if epochs.size else None,
        },
    )


def _learns_regression(v: VariantResult, bar: float = 0.05) -> tuple[int, int, dict[str, Any]]:
    r = v.result
    test = r.test_scores["loss"]
    ok = np.isfinite(test) & (test < bar)
    return (
        int(ok.sum()),
        r.n_models,
        {
            "test_mse_median": _median(test),
            "train_mse_median": _median(r.train_scores["loss"]),
            "test_rmse_original_median": _median(r.test_scores["rmse_original"]),
            "bar": f"test MSE < {bar} (scaled units)",
            "diverged": int(r.diverged.sum()),
        },
    )


def _accuracy_bar(v: VariantResult, bar: float, below: bool) -> tuple[int, int, dict[str, Any]]:
    """Repeats whose test accuracy is >= bar (learned) or < bar (failed; diverged too)."""
    acc = v.result.test_scores["accuracy"]
    ok = (~np.isfinite(acc) | (acc < bar)) if below else (np.isfinite(acc) & (acc >= bar))
    return (
        int(ok.sum()),
        v.result.n_models,
        {
            "test_accuracy_median": _median(acc),
            "train_accuracy_median": _median(v.result.train_scores["accuracy"]),
            "bar": f"test accuracy < {bar} (failed to learn)"
            if below
            else f"test accuracy >= {bar}",
        },
    )


def _accuracy_at_least(v: VariantResult, bar: float) -> tuple[int, int, dict[str, Any]]:
    return _accuracy_bar(v, bar, below=False)


def _accuracy_below(v: VariantResult, bar: float) -> tuple[int, int, dict[str, Any]]:
    return _accuracy_bar(v, bar, below=True)


def _relu5_converges(v: VariantResult) -> tuple[int, int, dict[str, Any]]:
    epochs = _convergence_epoch(v.result.history["accuracy"], epochs=v.result.history_epochs)
    ok = epochs <= 250
    converged = epochs[np.isfinite(epochs)]
    return (
        int(ok.sum()),
        v.result.n_models,
        {
            "converged": f"{converged.size}/{epochs.size}",
            "convergence_epoch_median": float(np.median(converged)) if converged.size else None,
            "convergence_epoch_p10_p90": [float(p) for p in np.percentile(converged, [10, 90])]
            if converged.size
            else None,
            "bar": "20-epoch mean train accuracy within 0.02 of its final level by epoch 250",
        },
    )


def _clipnorm_drop(v: VariantResult) -> tuple[int, int, dict[str, Any]]:
    loss = v.result.history["loss"]
    start_high = np.isfinite(loss[:, 0]) & (loss[:, 0] > 20_000)
    reached = _first_epoch_below(loss, 100.0, v.result.history_epochs)
    ok = start_high & (reached >= 1) & (reached <= 20)
    return (
        int(ok.sum()),
        v.result.n_models,
        {
            "first_epoch_loss_median": _median(loss[:, 0]),
            "epoch_below_100_median": float(np.median(np.where(reached > 0, reached, np.inf))),
            "loss_at_epoch_20_median": _at_epoch(loss, v.result.history_epochs, 20),
            "diverged": int(v.result.diverged.sum()),
            "bar": "epoch-1 MSE > 20,000 and MSE < 100 by epoch 20",
        },
    )


def _clipvalue_fast(v: VariantResult, within: int = 5) -> tuple[int, int, dict[str, Any]]:
    loss = v.result.history["loss"]
    reached = _first_epoch_below(loss, 100.0, v.result.history_epochs)
    ok = (reached >= 1) & (reached <= within)
    return (
        int(ok.sum()),
        v.result.n_models,
        {
            "epoch_below_100_median": float(np.median(np.where(reached > 0, reached, np.inf))),
            "loss_at_epoch_5_median": _at_epoch(loss, v.result.history_epochs, 5),
            "diverged": int(v.result.diverged.sum()),
            "bar": f"train MSE < 100 within {within} epochs",
        },
    )


def _stays_finite(v: VariantResult) -> tuple[int, int, dict[str, Any]]:
    r = v.result
    return (
        int((~r.diverged).sum()),
        r.n_models,
        {
            "diverged": f"{int(r.diverged.sum())}/{r.n_models}",
            "test_mse_median": _median(r.test_scores["loss"]),
        },
    )


# --- comparison claims ----------------------------------------------------------------


def _comparison(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> dict[str, Any]:
    """The sweep's comparison (stats.compare: Mann-Whitney U, diverged runs ranked worst,
    effect sizes) with one plain sentence; p_a_less = P(a run of a has the lower MSE)."""
    test = compare(a, b)
    diverged = (int((~np.isfinite(a)).sum()), int((~np.isfinite(b)).sum()))
    sentence = describe_comparison(
        f"{name_a} inputs", name_b, "test MSE", test, alpha=ALPHA, diverged=diverged
    )
    return {**test, "p_a_less": test["p_better"], "sentence": sentence}


def _normalized_inputs_best(result: ExperimentResult) -> tuple[str, dict[str, Any]]:
    scores = {v.name: v.result.test_scores["loss"] for v in result.variants}
    best = scores["normalized"]
    measured: dict[str, Any] = {
        name: {
            "median": _median(s),
            "median_ci95": list(bootstrap_median_ci(s)),
            "iqr": iqr(s),
            "mean": float(np.nanmean(s)),
            "std": float(np.nanstd(s)),
        }
        for name, s in scores.items()
    }
    lower, tighter = [], []
    for other in ("unscaled", "standardized"):
        test = _comparison("normalized", best, other, scores[other])
        measured[f"normalized_vs_{other}"] = test
        lower.append(
            test["p_value"] is not None
            and test["p_value"] < ALPHA
            and _median(best) < _median(scores[other])
        )
        tighter.append(iqr(best) < iqr(scores[other]))
    measured["summary"] = " ".join(
        measured[f"normalized_vs_{other}"]["sentence"] for other in ("unscaled", "standardized")
    )
    if all(lower) and all(tighter):
        return "holds", measured
    if any(lower) or any(tighter):
        parts = [f"lower than {o}: {'yes' if lo else 'no'}, tighter: {'yes' if ti else 'no'}"
                 for o, lo, ti in zip(("unscaled", "standardized"), lower, tighter, strict=True)]  # fmt: skip
        return "holds in part (" + "; ".join(parts) + ")", measured
    return "does not hold", measured


def _unscaled_close_to_standardized(result: ExperimentResult) -> tuple[str, dict[str, Any]]:
    a = result.variant("unscaled").result.test_scores["loss"]
    b = result.variant("standardized").result.test_scores["loss"]
    test = _comparison("unscaled", a, "standardized", b)
    ratio = _median(a) / _median(b) if _median(a) and _median(b) else None
    measured = {
        "unscaled_median": _median(a),
        "standardized_median": _median(b),
        "median_ratio": ratio,
        **test,
    }
    similar = test["p_value"] is not None and test["p_value"] >= ALPHA
    return ("holds" if similar else "does not hold (the difference is significant)"), measured


# --- the catalog of claims --------------------------------------------------------------

Evaluate = Callable[[ExperimentResult], tuple[str, dict[str, Any]]]
Check = Callable[[VariantResult], tuple[int, int, dict[str, Any]]]


def per_repeat(variant: str, check: Check) -> Evaluate:
    """Evaluate a single-run claim on each repeat of `variant`: holds in k of n."""

    def evaluate(result: ExperimentResult) -> tuple[str, dict[str, Any]]:
        k, n, measured = check(result.variant(variant))
        return count_verdict(k, n), {"k": k, "n": n, **measured}

    return evaluate


@dataclass(frozen=True)
class Claim:
    """A claim of the lesson, the experiment and variants it is checked on, and the
    shortest run and fewest repeats that can decide it."""

    id: str
    text: str
    experiment: str
    evaluate: Evaluate
    variants: tuple[str, ...] = ()
    min_epochs: int = 1
    min_repeats: int = 1


def _single(
    claim_id: str, text: str, experiment: str, variant: str, check: Check, min_epochs: int = 1
) -> Claim:
    """A claim about single runs of one variant, judged on every repeat."""
    return Claim(claim_id, text, experiment, per_repeat(variant, check), (variant,), min_epochs)


CLAIMS: list[Claim] = [
    _single("unscaled-target-nan", "An MLP trained on the unscaled target cannot learn: its loss becomes NaN (weights explode).",
            "unscaled-mlp", "unscaled-mlp", _unscaled_diverges),
    _single("standardized-target-learns", "With a standardized target the model learns the problem well (lesson: Test MSE 0.007).",
            "standardized-target", "standardized-target", _learns_regression),
    _single("normalized-target-learns", "Normalizing the target instead also lets the model learn (the lesson's suggested exercise).",
            "normalized-target", "normalized-target", _learns_regression),
    Claim("normalized-inputs-best", "Normalized inputs give lower and tighter test error than unscaled or standardized inputs.",
          "input-scaling", _normalized_inputs_best, ("unscaled", "normalized", "standardized"), min_repeats=5),
    Claim("unscaled-vs-standardized-inputs-similar", "There is little difference between unscaled and standardized inputs.",
          "input-scaling", _unscaled_close_to_standardized, ("unscaled", "standardized"), min_repeats=10),
    _single("tanh1-reaches-80", "A one-hidden-layer tanh MLP reaches about 80% accuracy on the circles (lesson: 0.816).",
            "tanh-1", "tanh-1", lambda v: _accuracy_at_least(v, 0.75)),
    _single("tanh5-fails", "With five tanh hidden layers the model fails to learn (vanishing gradients; lesson: Test 0.468).",
            "tanh-5", "tanh-5", lambda v: _accuracy_below(v, 0.6)),
    _single("relu5-learns", "ReLU + He initialization lets the five-layer MLP learn (lesson: Test 0.840).",
            "relu-5", "relu-5", lambda v: _accuracy_at_least(v, 0.75)),
    _single("relu5-converges-200", "The five-layer ReLU model converges in about 200 epochs.",
            "relu-5", "relu-5", _relu5_converges, min_epochs=250),
    _single("relu15-learns-sometimes", "With 15 ReLU layers the model is still able to learn, at least some of the time.",
            "relu-15", "relu-15", lambda v: _accuracy_at_least(v, 0.75)),
    _single("relu20-fails", "At about 20 layers the model is no longer capable of learning the problem.",
            "relu-20", "relu-20", lambda v: _accuracy_below(v, 0.6)),
    _single("clipping-none-diverges", "Without clipping the unscaled-target MLP diverges to NaN.",
            "gradient-clipping", "no clipping", _unscaled_diverges),
    _single("clipnorm-per-tensor-20000-to-100", "With clipnorm=1.0 (Keras 2.4+/3: per tensor) the MSE falls from above 20,000 to below 100 within 20 epochs.",
            "gradient-clipping", "clipnorm 1.0 (per tensor)", _clipnorm_drop, min_epochs=20),
    _single("clipnorm-global-20000-to-100", "With clipnorm=1.0 read as one global norm (Keras <= 2.3) the MSE falls from above 20,000 to below 100 within 20 epochs.",
            "gradient-clipping", "clipnorm 1.0 (global)", _clipnorm_drop, min_epochs=20),
    _single("clipvalue-sub100-fast", "With clipvalue=5.0 the model achieves a sub-100 MSE within just a few (5) epochs.",
            "gradient-clipping", "clipvalue 5.0", _clipvalue_fast, min_epochs=5),
    _single("clipnorm-keeps-finite", "Gradient norm scaling keeps training on the unscaled target finite.",
            "gradient-clipping", "clipnorm 1.0 (per tensor)", _stays_finite),
    _single("clipvalue-keeps-finite", "Gradient value clipping keeps training on the unscaled target finite.",
            "gradient-clipping", "clipvalue 5.0", _stays_finite),
]  # fmt: skip


def check_claims(results: Mapping[str, ExperimentResult]) -> list[ClaimResult]:
    """Every claim whose experiment (with the variants it needs) is among `results`, in
    lesson order. A run too short or with too few repeats to decide a claim gets the
    verdict "not measured", never a "does not hold" it did not earn."""
    checked = []
    for claim in CLAIMS:
        result = results.get(claim.experiment)
        if result is None or not set(claim.variants) <= {v.name for v in result.variants}:
            continue
        experiment = result.experiment
        if experiment.config.epochs < claim.min_epochs:
            verdict, measured = f"not measured (needs {claim.min_epochs} epochs or more)", {}
        elif experiment.repeats < claim.min_repeats:
            verdict, measured = f"not measured (needs {claim.min_repeats} repeats or more)", {}
        else:
            verdict, measured = claim.evaluate(result)
        checked.append(ClaimResult(claim.id, claim.text, (claim.experiment,), verdict, measured))
    return checked
