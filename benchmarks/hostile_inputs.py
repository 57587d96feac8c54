"""Hostile inputs: a fixed table of bad inputs run through the real command line.

The rule (the Reliability issue): every bad input gets exit 0 with a result, or exit 2
with ONE line on stderr starting "Error:"; never a traceback, never a silent wrong
result, and nothing left behind (no half-written output folder, no hidden .partial-*
folder, no temporary file). Ctrl-C exits with 130 within 2 s, leaving nothing.

Each case runs `stablelearn ...` as a subprocess of this Python (this checkout's src/
comes first on PYTHONPATH) in a fresh folder, with TMPDIR pointed at a fresh folder of
its own, and a shared JAX compilation cache so that cases after the first load their
programs. A case that runs past --timeout seconds, or whose memory passes --max-rss-gb,
is killed with its process group and reported as such. The output is a Markdown table
(the one the team pastes into the issue) and a summary.

    python benchmarks/hostile_inputs.py                     # every case, ~5-10 min
    python benchmarks/hostile_inputs.py -k csv -k toml      # names containing csv or toml
    python benchmarks/hostile_inputs.py --list              # the case names
    python benchmarks/hostile_inputs.py -k huge --timeout 30 --keep   # keep the folders

Exit status: 0 when every case follows the rule, 1 otherwise.
"""

import argparse
import bz2
import csv
import gzip
import io
import lzma
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

SRC = Path(__file__).resolve().parent.parent / "src"
BOOT = "import sys; sys.argv[0] = 'stablelearn'; from stablelearn.entry import main; main()"
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*File \".*\", line \d+", re.M)
# names that must never survive a command: atomic folders and atomic files in progress
TEMPORARY = re.compile(r"\.partial-|\.tmp$|^tmp[a-z0-9_]{6,}$")
PYTHON_WARNING = re.compile(r"^\S+\.py:\d+: \w*Warning: ", re.M)
SIGINT_GRACE_S = 2.0

# ---------------------------------------------------------------------------- inputs


def regression_rows(n: int = 40, features: int = 3, seed: int = 0) -> list[list[float]]:
    """n rows of `features` Gaussian inputs and a target that depends on them."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = [round(rng.gauss(0, 1), 4) for _ in range(features)]
        rows.append([*x, round(2 * x[0] - x[-1] + rng.gauss(0, 0.1), 4)])
    return rows


HEADER = ["x0", "x1", "x2", "y"]


def csv_text(header=HEADER, rows=None, delimiter: str = ",", newline: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(regression_rows() if rows is None else rows)
    return buffer.getvalue()


def write(name: str, content: str | bytes, encoding: str = "utf-8") -> Callable[[Path], None]:
    """A setup step that writes one file into the case folder."""

    def setup(folder: Path) -> None:
        data = content.encode(encoding) if isinstance(content, str) else content
        (folder / name).write_bytes(data)

    return setup


def with_rows(change: Callable[[list[list]], None], n: int = 40) -> list[list]:
    rows: list[list] = [list(r) for r in regression_rows(n)]
    change(rows)
    return rows


def _set(rows: list[list], row: int, column: int, value: object) -> None:
    rows[row][column] = value


def zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", text)
    return buffer.getvalue()


EXPERIMENT = {
    "id": "tiny",
    "title": "A tiny experiment",
    "dataset": "lesson-regression",
    "epochs": 2,
    "repeats": 2,
    "figures": [],
    "data": {"target_scaler": "standard"},
    "model": {
        "depth": 1,
        "units": 4,
        "activation": "relu",
        "kernel_initializer": "he_uniform",
        "output": {"units": 1},
    },
    "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9},
}


def toml_text(base: dict = EXPERIMENT, **changes: object) -> str:
    """The tiny experiment with top-level or dotted fields changed ('model.units': ...)."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        table = raw
        for parent in parents:
            table = table[parent]
        table[key] = value
    return tomli_w.dumps(raw)


SWEEP = {
    **EXPERIMENT,
    "id": "tiny-sweep",
    "title": "A tiny sweep",
    "telemetry": False,
    "axes": {"model.units": [2, 4]},
}
del SWEEP["figures"]


def exp(name: str = "exp.toml", **changes: object) -> Callable[[Path], None]:
    return write(name, toml_text(**changes))


def sweep_file(name: str = "sweep.toml", **changes: object) -> Callable[[Path], None]:
    return write(name, toml_text(SWEEP, **changes))


def data(name: str = "data.csv") -> Callable[[Path], None]:
    return write(name, csv_text())


def make_dir(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).mkdir(parents=True)


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    name: str
    args: list[str]
    setup: list[Callable[[Path], None]] = field(default_factory=list)
    expect: tuple[int, ...] = (0, 2)  # exit statuses that follow the rule for this input
    outputs: tuple[str, ...] = ()  # what an exit 0 may (and must) leave behind
    kind: str = "plain"  # plain, concurrent, sigint-3s, sigint-training, corrupt-group
    timeout: float | None = None  # overrides --timeout

    def produces(self) -> tuple[str, ...]:
        """What an exit 0 may leave: `outputs`, else the relative --out or --json path
        (a case that should fail but succeeds is reported once, not also as leftovers)."""
        if self.outputs:
            return self.outputs
        for flag in ("--out", "--json"):
            if flag in self.args:
                path = self.args[self.args.index(flag) + 1]
                if not os.path.isabs(path):
                    return (path,)
        return ()


DOCTOR = ["--target", "y", "--epochs", "2", "--repeats", "2", "--quiet", "--out", "out"]
RUN = ["--quiet", "--out", "out"]
SWEEP_ARGS = ["--quiet", "--out", "out"]
OUT = ("out",)


def doctor_case(name: str, file: str, setup, expect=(0, 2), target: str = "y") -> Case:
    args = ["doctor", file, *DOCTOR]
    args[args.index("--target") + 1] = target
    return Case(name, args, [setup] if callable(setup) else setup, expect, OUT)


def build_cases() -> list[Case]:
    text = csv_text()
    nan_feature = with_rows(lambda r: _set(r, 5, 1, "nan"))
    inf_feature = with_rows(lambda r: _set(r, 5, 1, "inf"))
    missing = with_rows(lambda r: _set(r, 5, 1, ""))
    nan_target = with_rows(lambda r: _set(r, 7, 3, "NaN"))
    huge_x = [[v * 1e300 for v in r[:3]] + [r[3]] for r in regression_rows()]
    huge_y = [[*r[:3], r[3] * 1e300] for r in regression_rows()]
    dup_target = [[*r[:2], r[3], r[3]] for r in regression_rows()]  # a,y,c,y: c is y again
    text_feature = with_rows(lambda r: [row.__setitem__(1, f"v{i % 3}") for i, row in enumerate(r)])
    many_classes = [[*r[:3], f"class-{i % 35}"] for i, r in enumerate(regression_rows(70))]
    constant_target = [[*r[:3], 1.0] for r in regression_rows()]
    ragged = csv_text().splitlines()
    ragged[6] += ",9.9"
    longer = csv_text().splitlines()  # every row one field longer than the header
    longer[0] = "x0,x1,y"
    junk = random.Random(1).randbytes(4096)
    long = toml_text(epochs=3000, repeats=10)
    return [
        # ---- data files (doctor)
        doctor_case("csv: valid (baseline)", "data.csv", data(), (0,)),
        doctor_case("csv: missing file", "nope.csv", [], (2,)),
        doctor_case("csv: a directory named data.csv", "data.csv", make_dir("data.csv"), (2,)),
        doctor_case("csv: empty file", "data.csv", write("data.csv", ""), (2,)),
        doctor_case("csv: header only", "data.csv", write("data.csv", "x0,x1,x2,y\n"), (2,)),
        doctor_case(
            "csv: one row", "data.csv", write("data.csv", csv_text(rows=regression_rows(1))), (2,)
        ),
        doctor_case("csv: semicolon-separated", "data.csv", write("data.csv", csv_text(delimiter=";"))),
        doctor_case(
            "csv: latin-1 column name",
            "data.csv",
            write("data.csv", csv_text(["x0", "température", "x2", "y"]), "latin-1"),
        ),
        doctor_case("csv: UTF-8 with BOM (Excel)", "data.csv", write("data.csv", text, "utf-8-sig"), (0,)),
        doctor_case("csv: CRLF line ends", "data.csv", write("data.csv", csv_text(newline="\r\n")), (0,)),
        doctor_case("csv: .csv.gz", "data.csv.gz", write("data.csv.gz", gzip.compress(text.encode()))),
        doctor_case("csv: .zip", "data.zip", write("data.zip", zipped(text))),
        doctor_case("csv: .csv.bz2", "data.csv.bz2", write("data.csv.bz2", bz2.compress(text.encode()))),
        doctor_case("csv: .csv.xz", "data.csv.xz", write("data.csv.xz", lzma.compress(text.encode()))),
        doctor_case(
            "csv: duplicate target column (a,y,c,y)",
            "data.csv",
            write("data.csv", csv_text(["a", "y", "c", "y"], dup_target)),
            (2,),
        ),
        doctor_case(
            "csv: duplicate feature names (a,b,a,y)",
            "data.csv",
            write("data.csv", csv_text(["a", "b", "a", "y"])),
        ),
        doctor_case("csv: target not found", "data.csv", data(), (2,), target="price"),
        doctor_case(
            "csv: column name with a newline, target not found",
            "data.csv",
            write("data.csv", csv_text(["x0", "two\nlines", "x2", "y"])),
            (2,),
            target="price",
        ),
        doctor_case(
            "csv: text target, 35 classes",
            "data.csv",
            write("data.csv", csv_text(rows=many_classes)),
        ),
        doctor_case(
            "csv: constant target", "data.csv", write("data.csv", csv_text(rows=constant_target)), (2,)
        ),
        doctor_case(
            "csv: text feature column", "data.csv", write("data.csv", csv_text(rows=text_feature)), (2,)
        ),
        doctor_case("csv: inf in a feature", "data.csv", write("data.csv", csv_text(rows=inf_feature)), (2,)),
        doctor_case("csv: NaN in a feature", "data.csv", write("data.csv", csv_text(rows=nan_feature)), (2,)),
        doctor_case("csv: empty cell", "data.csv", write("data.csv", csv_text(rows=missing)), (2,)),
        doctor_case("csv: NaN in the target", "data.csv", write("data.csv", csv_text(rows=nan_target)), (2,)),
        doctor_case("csv: features ~1e300", "data.csv", write("data.csv", csv_text(rows=huge_x))),
        doctor_case("csv: target ~1e300", "data.csv", write("data.csv", csv_text(rows=huge_y))),
        doctor_case("csv: ragged row (one extra field)", "data.csv", write("data.csv", "\n".join(ragged) + "\n"), (2,)),
        doctor_case(
            "csv: every row one field longer than the header",
            "data.csv",
            write("data.csv", "\n".join(longer) + "\n"),
            (2,),
        ),
        doctor_case("csv: binary junk", "data.csv", write("data.csv", junk), (2,)),
        doctor_case("csv: file name with a space", "my data.csv", data("my data.csv"), (0,)),
        doctor_case("csv: unicode file name", "données-é.csv", data("données-é.csv"), (0,)),
        doctor_case(
            "csv: unicode column names",
            "data.csv",
            write("data.csv", csv_text(["prix €", "ñ", "日本", "y"])),
            (0,),
        ),
        # ---- output paths
        Case("out: run --out /proc/x", ["run", "exp.toml", "--quiet", "--out", "/proc/x"], [exp()], (2,)),
        Case("out: doctor --out /proc/x", ["doctor", "data.csv", *DOCTOR[:-1], "/proc/x"], [data()], (2,)),
        Case("out: train --json /proc/x.json", ["train", "--epochs", "2", "--repeats", "2", "--json", "/proc/x.json"], [], (2,)),
        Case("out: sweep --out /proc/x", ["sweep", "sweep.toml", "--quiet", "--out", "/proc/x"], [sweep_file()], (2,)),
        Case("out: run --out an existing file", ["run", "exp.toml", "--quiet", "--out", "taken"], [exp(), write("taken", "mine\n")], (2,)),
        Case("out: run --out a non-empty folder", ["run", "exp.toml", "--quiet", "--out", "full"], [exp(), make_dir("full"), write("full/keep.txt", "mine\n")], (2,)),
        Case("out: train --json a folder", ["train", "--epochs", "2", "--repeats", "2", "--json", "res"], [make_dir("res")], (2,)),
        Case("out: run --out new nested folders", ["run", "exp.toml", "--quiet", "--out", "a/b c/ü"], [exp()], (0,), ("a",)),
        # ---- flags
        Case("flag: train --epochs abc", ["train", "--epochs", "abc"], [], (2,)),
        Case("flag: run unknown flag --colour", ["run", "exp.toml", "--colour", "red"], [exp()], (2,)),
        Case("flag: doctor without --target", ["doctor", "data.csv"], [data()], (2,)),
        Case("flag: train --repeats 0", ["train", "--repeats", "0"], [], (2,)),
        Case("flag: run --epochs 0", ["run", "exp.toml", "--epochs", "0", *RUN], [exp()], (2,)),
        Case("flag: train --lr -1", ["train", "--lr", "-1", "--epochs", "2"], [], (2,)),
        Case("flag: doctor --test-fraction 1.5", ["doctor", "data.csv", *DOCTOR, "--test-fraction", "1.5"], [data()], (2,)),
        # ---- sizes a budget check should refuse in one sentence, before training
        # plans that cannot fit in memory are refused; those that fit say their cost first
        # (--dry-run prints it and trains nothing; a real run prints it, Ctrl-C stops it)
        Case("huge: run units = 100000 at depth 3", ["run", "exp.toml", *RUN], [exp(model__units=100000, model__depth=3, epochs=100, repeats=30)], (2,)),
        Case("huge: train --repeats 10000 --epochs 10000", ["train", "--repeats", "10000", "--epochs", "10000"], [], (2,)),
        Case("huge: train --repeats 100000 --dry-run", ["train", "--repeats", "100000", "--epochs", "100", "--dry-run"], [], (0,)),
        Case("huge: run epochs = 100000 --dry-run", ["run", "exp.toml", "--dry-run", *RUN], [exp(epochs=100000, repeats=30)], (0,)),
        Case("huge: run units = 100000 --dry-run", ["run", "exp.toml", "--dry-run", *RUN], [exp(model__units=100000, epochs=100, repeats=30)], (0,)),
        Case("huge: run depth = 10000 --dry-run", ["run", "exp.toml", "--dry-run", *RUN], [exp(model__depth=10000, epochs=100)], (0,)),
        # ---- experiment files
        Case("toml: valid (baseline)", ["run", "exp.toml", *RUN], [exp()], (0,), OUT),
        Case("toml: unknown experiment name", ["run", "relu-55", *RUN], [], (2,)),
        Case("toml: malformed", ["run", "exp.toml", *RUN], [write("exp.toml", 'id = "x"\nepochs = = 3\n[model\n')], (2,)),
        Case("toml: empty file", ["run", "exp.toml", *RUN], [write("exp.toml", "")], (2,)),
        Case("toml: epochs = \"ten\"", ["run", "exp.toml", *RUN], [exp(epochs="ten")], (2,)),
        Case("toml: unknown key (epoch = 5)", ["run", "exp.toml", *RUN], [exp(epoch=5)], (2,)),
        Case("toml: unknown activation", ["run", "exp.toml", *RUN], [exp(model__activation="relux")], (2,)),
        Case("toml: unknown optimizer", ["run", "exp.toml", *RUN], [exp(optimizer__name="adamw2")], (2,)),
        Case("toml: unknown scaler", ["run", "exp.toml", *RUN], [exp(data__target_scaler="log")], (2,)),
        Case("toml: negative learning rate", ["run", "exp.toml", *RUN], [exp(optimizer__learning_rate=-0.1)], (2,)),
        Case("toml: nesterov = \"yes\"", ["run", "exp.toml", *RUN], [exp(optimizer__nesterov="yes")], (2,)),
        Case("toml: kind = data, typo in [data]", ["run", "exp.toml", *RUN], [exp(kind="data", data={"scaler": "standard"})], (2,)),
        Case("toml: dataset file missing", ["run", "exp.toml", *RUN], [exp(dataset="gone.csv", target="y")], (2,)),
        # ---- sweeps
        Case("sweep: valid (baseline)", ["sweep", "sweep.toml", *SWEEP_ARGS], [sweep_file()], (0,), OUT),
        Case("sweep: unknown shipped sweep", ["sweep", "depth-colour", *SWEEP_ARGS], [], (2,)),
        Case("sweep: unknown axis field", ["sweep", "sweep.toml", *SWEEP_ARGS], [sweep_file(axes={"model.colour": [1, 2]})], (2,)),
        Case("sweep: depth axis, 1 repeat", ["sweep", "sweep.toml", *SWEEP_ARGS], [sweep_file(repeats=1, axes={"model.depth": [1, 2]})], (0,), OUT),
        Case("sweep: corrupt group file, rerun", ["sweep", "sweep.toml", *SWEEP_ARGS], [sweep_file()], (0, 2), OUT, kind="corrupt-group"),
        # ---- concurrency and interrupts
        Case("concurrent: two runs, same --out", ["run", "exp.toml", *RUN], [exp()], (0, 2), OUT, kind="concurrent"),
        Case("ctrl-c: SIGINT 3 s into a long run", ["run", "exp.toml", *RUN], [write("exp.toml", long)], (130,), OUT, kind="sigint-3s"),
        Case("ctrl-c: SIGINT while training", ["run", "exp.toml", *RUN], [write("exp.toml", long)], (130,), OUT, kind="sigint-training"),
    ]  # fmt: skip


# ------------------------------------------------------------------------- running


@dataclass
class Outcome:
    status: str  # the exit status as shown: "2", "0/2", "timeout", "killed (RSS > 4 GiB)"
    codes: list[int | None]
    killed: list[str | None]  # per process: why this script killed it, None if it exited
    stderr: str
    stdout: str
    seconds: float
    leftovers: list[str]
    deleted: list[str]
    problems: list[str] = field(default_factory=list)


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Runner:
    def __init__(self, root: Path, timeout: float, max_rss: float) -> None:
        self.root, self.timeout, self.max_rss = root, timeout, max_rss
        self.env = dict(os.environ)
        if SRC.is_dir():
            self.env["PYTHONPATH"] = os.pathsep.join(
                [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        self.env["STABLELEARN_COMPILE_CACHE"] = str(root / "jax-cache")
        self.env["COLUMNS"] = "200"  # rich wraps error lines at the terminal width
        self.env.pop("FORCE_COLOR", None)
        self.env["NO_COLOR"] = "1"

    def start(
        self, args: list[str], cwd: Path, env: dict[str, str], logs: Path
    ) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", BOOT, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=(logs.with_suffix(".out")).open("wb"),
            stderr=(logs.with_suffix(".err")).open("wb"),
            start_new_session=True,  # its own process group, killed as one
        )

    def wait(self, proc: subprocess.Popen, limit: float) -> str | None:
        """Wait for `proc` until `limit` seconds from now; None when it exited, else why
        it was killed (its whole process group)."""
        deadline = time.monotonic() + limit
        while proc.poll() is None:
            reason = None
            if time.monotonic() > deadline:
                reason = "timeout"
            elif rss_bytes(proc.pid) > self.max_rss:
                reason = f"killed (RSS > {self.max_rss / 2**30:g} GiB)"
            if reason:
                with _suppress():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return reason
            time.sleep(0.1)
        return None

    def run(self, case: Case, index: int) -> Outcome:
        slug = f"{index:02d}-" + re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")[:40]
        folder, tmp, logs = (self.root / d / slug for d in ("cases", "tmp", "logs"))
        for d in (folder, tmp, logs.parent):
            d.mkdir(parents=True, exist_ok=True)
        for step in case.setup:
            step(folder)
        env = {**self.env, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp)}
        limit = case.timeout or self.timeout
        problems: list[str] = []
        if case.kind == "corrupt-group":
            problems += self.corrupt_group(case, folder, env, logs)
        before = snapshot(folder)
        start = time.monotonic()
        procs = [self.start(case.args, folder, env, logs)]
        if case.kind == "concurrent":
            procs.append(self.start(case.args, folder, env, logs.with_name(logs.name + "-2")))
        killed: list[str | None] = []
        if case.kind.startswith("sigint"):
            killed.append(self.interrupt(case, procs[0], folder, limit, problems))
        else:
            killed += [self.wait(p, limit) for p in procs]
        seconds = time.monotonic() - start
        codes = [p.returncode for p in procs]
        streams = [logs.with_suffix(".err"), logs.with_suffix(".out")]
        if case.kind == "concurrent":
            streams += [logs.with_name(logs.name + "-2.err"), logs.with_name(logs.name + "-2.out")]
        texts = [s.read_bytes().decode("utf-8", "replace") for s in streams]
        stderr = (
            "\n".join(texts[::2]) if case.kind != "concurrent" else _concurrent_stderr(codes, texts)
        )
        after = snapshot(folder)
        ok_exit = any(code == 0 for code in codes)
        allowed = set(case.produces()) if ok_exit else set()
        new = sorted(p for p in after - before if not _under(p, allowed))
        new += sorted(p for p in after if _under(p, allowed) and TEMPORARY.search(Path(p).name))
        new += [f"$TMPDIR/{p}" for p in sorted(snapshot(tmp)) if "/" not in p]
        deleted = sorted(p for p in before - after if not _under(p, set(case.produces())))
        status = "/".join(killed_or_code(k, c) for k, c in zip(killed, codes, strict=True))
        stdout = "\n".join(texts[1::2])
        return Outcome(status, codes, killed, stderr, stdout, seconds, new, deleted, problems)

    def interrupt(self, case: Case, proc, folder: Path, limit: float, problems: list[str]):
        """SIGINT to the process group (what Ctrl-C in a terminal does): 3 s after the
        start, or 1 s after training began (the run's .partial- folder appeared)."""
        start = time.monotonic()
        if case.kind == "sigint-3s":
            wait_until = start + 3.0
        else:
            wait_until = start + limit
            while time.monotonic() < wait_until and proc.poll() is None:
                if any(".partial-" in p for p in snapshot(folder)):
                    wait_until = time.monotonic() + 1.0
                    break
                time.sleep(0.05)
            else:
                problems.append("training never started")
        while time.monotonic() < wait_until and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            problems.append(f"finished before the signal ({time.monotonic() - start:.1f} s)")
            return None
        sent = time.monotonic()
        with _suppress():
            os.killpg(proc.pid, signal.SIGINT)
        killed = self.wait(proc, max(SIGINT_GRACE_S, limit - (sent - start)))
        took = time.monotonic() - sent
        if killed:
            return f"{killed} (no exit after SIGINT)"
        if took > SIGINT_GRACE_S:
            problems.append(f"exited {took:.1f} s after SIGINT, over {SIGINT_GRACE_S:g} s")
        return None

    def corrupt_group(self, case: Case, folder: Path, env, logs: Path) -> list[str]:
        """Run the sweep once, then truncate one of its saved groups to half its bytes."""
        proc = self.start(case.args, folder, env, logs.with_name(logs.name + "-first"))
        if self.wait(proc, self.timeout) is not None or proc.returncode != 0:
            return [f"the first sweep did not finish (exit {proc.returncode})"]
        groups = sorted((folder / "out" / "groups").glob("*.npz"))
        if not groups:
            return ["the first sweep saved no groups/*.npz"]
        raw = groups[0].read_bytes()
        groups[0].write_bytes(raw[: len(raw) // 2])
        return []


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, ProcessLookupError | PermissionError)


def _under(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _concurrent_stderr(codes: list[int | None], texts: list[str]) -> str:
    """The stderr of the process that did not succeed, else of the first."""
    errs = texts[::2]
    for code, err in zip(codes, errs, strict=True):
        if code != 0:
            return err
    return errs[0]


def killed_or_code(killed: str | None, code: int | None) -> str:
    if killed:
        return killed
    if code is not None and code < 0:
        return f"{code} ({signal.Signals(-code).name})"
    return str(code)


def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


CATEGORIES = {  # the summary's counts: a problem's first words -> what it is called there
    "traceback": "with a traceback",
    "stderr": "without exactly one 'Error:' line",
    "expected": "with another exit status than expected",
    "killed": "timed out or killed",
    "timeout": "timed out or killed",
    "leftovers": "leaving files behind",
    "deleted": "deleting the user's files",
    "exited": "exiting late after SIGINT",
}


def verdict(case: Case, outcome: Outcome, folder: Path) -> tuple[str, bool, list[str]]:
    """'ok', or what broke the rule; whether a traceback was printed; the problems."""
    text = outcome.stderr + "\n" + outcome.stdout
    traceback = bool(TRACEBACK.search(text))
    problems = list(outcome.problems)
    if any(outcome.killed):
        problems += [k for k in outcome.killed if k and k not in problems]
    elif not all(code in case.expect for code in outcome.codes):
        problems.append(f"expected exit {' or '.join(map(str, case.expect))}")
    if case.kind == "concurrent" and 0 not in outcome.codes:
        problems.append("neither run succeeded")
    if traceback:
        problems.append("traceback")
    if 2 in outcome.codes:
        lines = nonblank_lines(outcome.stderr)
        if len(lines) != 1:
            problems.append(f"stderr has {len(lines)} lines")
        elif not lines[0].startswith("Error:"):
            problems.append("stderr does not start with 'Error:'")
    if 0 in outcome.codes:
        for out in case.outputs:
            if not (folder / out).exists():
                problems.append(f"no {out} after exit 0")
    if outcome.leftovers and not any(outcome.killed):  # SIGKILL leaves what it leaves
        problems.append("leftovers")
    if outcome.deleted:
        problems.append("deleted the user's files")
    if problems:
        return "FAIL: " + ", ".join(problems), traceback, problems
    if 0 in outcome.codes and PYTHON_WARNING.search(outcome.stderr):
        return "ok, but a Python warning on stderr", traceback, []
    return "ok", traceback, []


def cell(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|") or "-"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-k", action="append", default=[], metavar="SUBSTRING",
                        help="run only cases whose name contains SUBSTRING (case-insensitive; repeatable)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    parser.add_argument("--max-rss-gb", type=float, default=4.0,
                        help="kill a case whose memory passes this (default 4 GiB)")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    parser.add_argument("--keep", action="store_true", help="keep the case folders and logs")
    args = parser.parse_args()

    cases = build_cases()
    selected = [
        (i, c) for i, c in enumerate(cases, 1)
        if not args.k or any(k.lower() in c.name.lower() for k in args.k)
    ]  # fmt: skip
    if args.list:
        for i, case in selected:
            print(f"{i:2d}  {case.name}")
        return 0
    if not selected:
        print("No case matches " + ", ".join(map(repr, args.k)), file=sys.stderr)
        return 2

    root = Path(tempfile.mkdtemp(prefix="stablelearn-hostile-"))
    runner = Runner(root, args.timeout, args.max_rss_gb * 2**30)
    rows: list[str] = []
    ok, warned, failing = 0, [], {name: [] for name in dict.fromkeys(CATEGORIES.values())}
    started = time.monotonic()
    try:
        for i, case in selected:
            print(f"[{i:2d}/{len(cases)}] {case.name} ...", end=" ", file=sys.stderr, flush=True)
            outcome = runner.run(case, i)
            folder = next((root / "cases").glob(f"{i:02d}-*"))
            judged, traceback, problems = verdict(case, outcome, folder)
            print(f"{outcome.status} {outcome.seconds:.1f} s {judged}", file=sys.stderr, flush=True)
            lines = nonblank_lines(outcome.stderr)
            first = next(iter(lines), "")
            if traceback:  # the exception says more than the traceback's frame
                first = "[traceback] " + lines[-1].strip("│ ")
            left = outcome.leftovers + [f"deleted {p}" for p in outcome.deleted]
            if left and any(outcome.killed):
                left.append("(after SIGKILL)")
            ok += not problems
            if judged.startswith("ok,"):
                warned.append(i)
            for category in dict.fromkeys(
                CATEGORIES[p.split()[0]] for p in problems if p.split()[0] in CATEGORIES
            ):
                failing[category].append(i)
            rows.append(
                f"| {i} | {cell(case.name, 60)} | {'/'.join(map(str, case.expect))} "
                f"| {cell(outcome.status, 40)} | {cell(first)} | {'yes' if traceback else 'no'} "
                f"| {'yes: ' + cell(', '.join(left), 60) if left else 'no'} "
                f"| {outcome.seconds:.1f} | {cell(judged, 80)} |"
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(
        "| # | case | expect | exit | stderr: first line (of a traceback: its last) "
        "| traceback | leftovers | s | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    n = len(rows)
    numbers = lambda cases: ", ".join(f"#{i}" for i in cases)  # noqa: E731
    print(f"\n**{ok}/{n} cases follow the rule; {n - ok} do not.**")
    if warned:
        print(f"{len(warned)} that follow it print a Python warning on stderr ({numbers(warned)}).")
    for category, cases in failing.items():
        if cases:
            print(f"- {len(cases)} {category}: {numbers(cases)}")
    print(
        f"\n{time.monotonic() - started:.0f} s in all ({sys.executable}, --timeout {args.timeout:g})."
    )
    if args.keep:
        print(f"Case folders and logs kept in {root}", file=sys.stderr)
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
