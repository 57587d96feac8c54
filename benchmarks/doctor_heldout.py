"""The doctor on problems it was not tuned on: scikit-learn datasets and synthetic
problems with a known cause, plus healthy configurations that must raise no warning.

Each case writes a CSV, runs `stablelearn doctor` on it as a user would (a subprocess,
default settings unless the case is about a setting), and reads diagnosis.json. The
table printed at the end: case, known cause, cause named first, recommended fix,
user's vs recommended median held-out score, adjusted p, models trained, seconds.

Nothing here is used by the tests, so that the doctor is not tuned against it.

    python benchmarks/doctor_heldout.py [--only NAME ...] [--json out.json]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn import datasets


@dataclass(frozen=True)
class Case:
    name: str
    cause: str  # the known cause, in words; "healthy" where there is none
    expected: tuple[str, ...]  # finding ids that name the cause (any one counts)
    make: object  # () -> (x [rows, features], y [rows], task)
    flags: tuple[str, ...] = ()
    healthy: bool = False
    extra: dict = field(default_factory=dict)


def _diabetes():
    x, y = datasets.load_diabetes(return_X_y=True)
    return x, y, "regression"


def _breast_cancer():
    x, y = datasets.load_breast_cancer(return_X_y=True)
    return x, y, "binary"


def _wine():
    x, y = datasets.load_wine(return_X_y=True)
    return x, y, "multiclass"


def _both_unscaled():
    rng = np.random.default_rng(7)
    x, y = datasets.make_regression(1000, 10, n_informative=8, noise=5.0, random_state=7)
    x = x * rng.choice([1.0, 10.0, 300.0, 2000.0], size=10) + rng.uniform(0, 500, 10)
    return x, 40.0 * y + 900.0, "regression"


def _deep_relu():
    x, y = datasets.make_moons(1000, noise=0.15, random_state=3)
    return x, y, "binary"


def _deep_sigmoid():
    x, y = datasets.make_classification(
        1000, 8, n_informative=6, n_redundant=0, random_state=5, class_sep=1.5
    )
    return x, y, "binary"


def _scaled_regression():
    x, y = datasets.make_friedman1(1000, 8, noise=0.5, random_state=11)
    return x, y, "regression"


def _iris():
    x, y = datasets.load_iris(return_X_y=True)
    return x, y, "multiclass"


def _digits():
    x, y = datasets.load_digits(return_X_y=True)
    return x[:, x.std(axis=0) > 0], y, "multiclass"


DEEP_SIGMOID_FLAGS = tuple(
    [
        "--depth",
        "8",
        "--activation",
        "sigmoid",
        "--init",
        "glorot_uniform",
        "--input-scaler",
        "standard",
    ]
)
CASES = (
    Case(
        "diabetes", "unscaled target (std 77)", ("target_spread", "exploding_gradients"), _diabetes
    ),
    Case("breast-cancer", "unscaled inputs (up to 4254)", ("unscaled_inputs",), _breast_cancer),
    Case("wine", "unscaled inputs (proline ~1000)", ("unscaled_inputs",), _wine),
    Case(
        "both-unscaled",
        "unscaled inputs and target",
        ("unscaled_inputs", "target_spread", "exploding_gradients"),
        _both_unscaled,
    ),
    Case(
        "deep-relu-30x5",
        "depth: 30 ReLU layers of 5 units",
        ("vanishing_gradients", "dying_relu", "not_learning"),
        _deep_relu,
        ("--depth", "30", "--units", "5", "--input-scaler", "standard"),
    ),
    Case(
        "deep-sigmoid-8",
        "saturating sigmoid, 8 layers, Glorot",
        ("saturation", "vanishing_gradients", "not_learning"),
        _deep_sigmoid,
        DEEP_SIGMOID_FLAGS,
    ),
    Case(
        "learning-rate-0.5",
        "learning rate too high (SGD 0.5, momentum 0.9)",
        ("exploding_gradients", "oscillating_loss"),
        _scaled_regression,
        ("--lr", "0.5", "--input-scaler", "standard", "--target-scaler", "standard"),
    ),
    Case("healthy-iris", "healthy", (), _iris, ("--input-scaler", "standard"), healthy=True),
    Case(
        "healthy-friedman",
        "healthy",
        (),
        _scaled_regression,
        ("--input-scaler", "standard", "--target-scaler", "standard"),
        healthy=True,
    ),
    Case("healthy-digits", "healthy", (), _digits, ("--input-scaler", "standard"), healthy=True),
)


def write_csv(case: Case, folder: Path) -> Path:
    x, y, _ = case.make()
    path = folder / f"{case.name}.csv"
    header = ",".join([f"x{i}" for i in range(x.shape[1])] + ["y"])
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=header, comments="")
    return path


def run_case(case: Case, folder: Path) -> dict:
    data = write_csv(case, folder)
    out = folder / f"{case.name}-doctor"
    command = [sys.executable, "-m", "stablelearn", "doctor", str(data), "--target", "y",
               "--out", str(out), "--quiet", *case.flags]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return {"case": case.name, "error": done.stderr.strip()[-400:], "seconds": seconds}
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    return {"case": case.name, "seconds": seconds, **summarize(case, diagnosis)}


def summarize(case: Case, diagnosis: dict) -> dict:
    findings = [f for f in diagnosis["findings"] if f["severity"] != "info"]
    cause = diagnosis.get("cause") or {}
    first = cause.get("id") or (findings[0]["id"] if findings else None)
    candidates = diagnosis["candidates"]
    user = candidates[0]
    recommended = diagnosis.get("recommended")
    best = next((c for c in candidates if recommended and c["name"] == recommended["name"]), None)
    path = diagnosis.get("repair_path") or []
    return {
        "known_cause": case.cause,
        "cause_found": first,
        "cause_ok": (not findings) if case.healthy else first in case.expected,
        "warnings": len(findings),
        "fix": recommended["name"] if recommended else None,
        "before": user["median"],
        "after": best["median"] if best else None,
        "p": best.get("p_holm") if best else None,
        "fixed": (recommended is None) if case.healthy else recommended is not None,
        "models": diagnosis.get("budget", {}).get("models"),
        "steps": len(path),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--json")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            row = run_case(case, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print("| case | known cause | cause found | fix | before | after | p | models | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['case']} | error: {r['error'][:80]} |")
            continue
        fmt = lambda v: "-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))  # noqa: E731
        print(
            f"| {r['case']} | {r['known_cause']} | {fmt(r['cause_found'])}"
            f"{'' if r['cause_ok'] else ' (wrong)'} | {fmt(r['fix'])} | {fmt(r['before'])} | "
            f"{fmt(r['after'])} | {fmt(r['p'])} | {fmt(r['models'])} | {r['seconds']:.0f} |"
        )
    ok = sum(bool(r.get("cause_ok")) and bool(r.get("fixed")) for r in rows)
    print(f"\n{ok} of {len(rows)} cases: the cause named first and fixed (or healthy and quiet).")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
