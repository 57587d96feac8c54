"""Findings as a causal chain: one headline cause, the symptoms it explains under it.

A data problem makes the first updates large or uneven; large updates explode the
weights or kill ReLUs; dead or saturated units pass no gradient; a model whose
gradient vanishes does not learn. Each finding id has a place in that order
(UPSTREAM_ORDER) and a set of findings it can explain (EXPLAINS). The headline is the
most upstream finding present that is a problem (not information); everything it
explains, directly or through a finding it explains, is grouped under it; what is left
is reported as further, independent findings.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from stablelearn.diagnostics import Finding

UPSTREAM_ORDER = (
    "target_spread",
    "unscaled_inputs",
    "exploding_gradients",
    "oscillating_loss",
    "saturation",
    "dying_relu",
    "vanishing_gradients",
    "not_learning",
    "class_imbalance",
    "constant_columns",
    "clipping_active",
)

EXPLAINS: dict[str, frozenset[str]] = {
    "target_spread": frozenset(
        {"exploding_gradients", "oscillating_loss", "dying_relu", "not_learning", "clipping_active"}
    ),
    "unscaled_inputs": frozenset(
        {
            "exploding_gradients",
            "oscillating_loss",
            "saturation",
            "dying_relu",
            "vanishing_gradients",
            "not_learning",
            "clipping_active",
        }
    ),
    "exploding_gradients": frozenset({"dying_relu", "not_learning", "clipping_active"}),
    "oscillating_loss": frozenset({"not_learning"}),
    "saturation": frozenset({"vanishing_gradients", "not_learning"}),
    "dying_relu": frozenset({"vanishing_gradients", "not_learning"}),
    "vanishing_gradients": frozenset({"not_learning"}),
    "class_imbalance": frozenset({"not_learning"}),
}


@dataclass(frozen=True)
class CauseChain:
    """The headline cause (None when nothing is wrong), the findings it explains in
    causal order, and the findings it does not explain."""

    headline: Finding | None
    explained: tuple[Finding, ...]
    other: tuple[Finding, ...]

    @property
    def ids(self) -> list[str]:
        return [f.id for f in (self.headline, *self.explained) if f is not None]

    def sentence(self) -> str:
        """The chain in one line, cause first: "the target's spread (std 77) makes the
        gradients large; 10/10 models' ReLUs die (from epoch 1); ..."."""
        if self.headline is None:
            return "No problem found: your configuration trains normally on this data."
        text = "; ".join(symptom(f) for f in (self.headline, *self.explained)) + "."
        return text[0].upper() + text[1:]

    def to_json(self) -> dict:
        return {
            "headline": None if self.headline is None else self.headline.id,
            "title": None if self.headline is None else self.headline.title,
            "explains": [f.id for f in self.explained],
            "independent": [f.id for f in self.other],
            "sentence": self.sentence(),
        }


def symptom(finding: Finding) -> str:
    """A finding in a few words, from its evidence (its title where there is no template)."""
    e = finding.evidence
    affected = e.get("affected", "some")
    layers = ", ".join(e.get("layers", [])[:3]) or "hidden layers"
    since = f" from epoch {e['from_epoch_min']}" if "from_epoch_min" in e else ""
    templates = {
        "target_spread": lambda: (
            f"the target's spread (std {e['target_std']:.3g}) makes the gradients large"
        ),
        "unscaled_inputs": lambda: (
            f"inputs of very different scales (up to |x| = {e['max_abs']:.3g}) make the updates uneven"
        ),
        "exploding_gradients": lambda: (
            f"{affected} models blow up"
            + (f" (from epoch {e['diverged_epoch_min']})" if "diverged_epoch_min" in e else "")
            + (
                _first_nan(e["nan_origin"])
                if "diverged_epoch_min" in e and "nan_origin" in e
                else ""
            )
        ),
        "oscillating_loss": lambda: f"the loss oscillates in {affected} models",
        "saturation": lambda: f"{affected} models' units saturate ({layers}{since})",
        "dying_relu": lambda: f"{affected} models' ReLUs die ({layers}{since})",
        "vanishing_gradients": lambda: f"gradients vanish in {affected} models",
        "not_learning": lambda: f"{affected} models learn nothing",
        "class_imbalance": lambda: (
            f"the smallest class holds {e['minority_share']:.0%} of the rows"
        ),
    }
    try:
        return templates[finding.id]() if finding.id in templates else finding.title.lower()
    except (KeyError, TypeError, ValueError):  # evidence without the expected fields
        return finding.title.lower()


def _first_nan(origin: dict) -> str:
    """ ", the first NaN/Inf in the loss (forward) in 10/10": where models diverged from."""
    return (
        f", the first NaN/Inf in {origin['phrase']} ({origin['direction']}) in "
        f"{origin['models']}/{origin['of']}"
    )


def upstream_rank(finding: Finding) -> int:
    """A finding's place in the causal order (UPSTREAM_ORDER); unknown ids come last."""
    return UPSTREAM_ORDER.index(finding.id) if finding.id in UPSTREAM_ORDER else len(UPSTREAM_ORDER)


def cause_chain(findings: Sequence[Finding]) -> CauseChain:
    """Order the findings of one diagnosis into a CauseChain (see the module docstring)."""
    ordered = sorted(findings, key=upstream_rank)
    problems = [f for f in ordered if f.severity != "info"]
    if not problems:
        return CauseChain(None, (), tuple(ordered))
    headline = problems[0]
    reach = set(EXPLAINS.get(headline.id, ()))
    explained = []
    for finding in ordered[ordered.index(headline) + 1 :]:
        if finding.id in reach:
            explained.append(finding)
            reach |= EXPLAINS.get(finding.id, frozenset())
    rest = tuple(f for f in ordered if f is not headline and f not in explained)
    return CauseChain(headline, tuple(explained), rest)
