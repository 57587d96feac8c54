"""Every kind of HTML report, opened in a real headless Chromium (Playwright).

One browser per test process. Each report is generated once per test run: the first
pytest-xdist worker that needs it writes it under a lock into the run's shared temporary
folder, the others read it there. The generating commands use the shapes and flags other
tests use (the robustness suite's tiny doctor, tests/sweep's small sweep, test_monitor's
and test_torch_watch's models), so their programs come from the shared compile cache.

The tests skip with one message where Playwright or a Chromium is missing (see
`find_chromium`); CI (.ci/run) installs Debian's chromium where it can.

This is not a conftest.py: a second module named conftest would replace tests/conftest.py
in sys.modules, and the `from conftest import small_sweep` of other test folders would
find this one. The test modules import these fixtures.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from conftest import small_sweep
from filelock import FileLock
from typer.testing import CliRunner

NO_PLAYWRIGHT = (
    "Playwright is not installed: pip install -e '.[test]' (tests/reports open the reports "
    "in a headless Chromium)"
)
NO_CHROMIUM = (
    "no Chromium found: install the Debian package chromium (apt-get install chromium), "
    "run `playwright install chromium`, or set STABLELEARN_CHROMIUM to a Chromium or "
    "Chrome executable"
)
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

# the two screens the issue names: a laptop, and a phone at its device pixel ratio
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}


def find_chromium() -> str | None:
    """STABLELEARN_CHROMIUM, else a Chromium or Chrome on the PATH (Debian's `chromium`),
    else the one `playwright install chromium` downloaded."""
    named = os.environ.get("STABLELEARN_CHROMIUM")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    for name in EXECUTABLES:
        if found := shutil.which(name):
            return found
    downloads = Path(
        os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache/ms-playwright"
    )
    for pattern in (
        "chromium-*/chrome-linux*/chrome",
        "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
    ):
        for path in sorted(downloads.glob(pattern), reverse=True):
            return str(path)
    return None


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return NO_PLAYWRIGHT
    return NO_CHROMIUM if find_chromium() is None else None


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One headless Chromium per test process (test modules skip first where there is none)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=find_chromium(), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


# Opening pages in a browser is the full suite's work (CI runs it); the quick suite
# checks the page's HTML without one (tests/report).
KINDS = [
    *(
        pytest.param(kind, marks=pytest.mark.slow)
        for kind in ("design", "run", "doctor", "sweep", "keras-monitor", "torch-watch")
    ),
    pytest.param("reproduce", marks=pytest.mark.slow),  # trains a part of the catalog
]


# --- the reports ----------------------------------------------------------------------------


def _tiny_csv(path: Path) -> None:
    """The robustness suite's csv_text(): 24 Gaussian rows of x0, x1 and y = x0 - x1."""
    rng = np.random.default_rng(0)
    lines = ["x0,x1,y"]
    for _ in range(24):
        x = rng.normal(size=2)
        lines.append(",".join(f"{v:.4f}" for v in [*x, x[0] - x[-1]]))
    path.write_text("\n".join(lines) + "\n")


def _cli(*args: str) -> None:
    from stablelearn.cli import app

    result = CliRunner().invoke(app, [*args, "--quiet"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output


def _run(out: Path) -> None:
    _cli("run", "input-scaling", "--repeats", "2", "--epochs", "3", "--out", str(out))


def _doctor(out: Path) -> None:
    csv = out.parent / "tiny.csv"
    _tiny_csv(csv)
    # tests/robustness' DOCTOR flags
    _cli("doctor", str(csv), "--target", "y", "--epochs", "1", "--repeats", "1", "--out", str(out))


def _sweep(out: Path) -> None:
    path = out.parent / "small.toml"
    path.write_text(tomli_w.dumps(small_sweep()), encoding="utf-8")
    _cli("sweep", str(path), "--workers", "1", "--out", str(out))


# The combined report of a part of the catalog, one case study of each kind: data only,
# every seed diverged, variants compared, classification, several claims; 2 repeats x 2
# epochs as tests/lesson/test_reproduce.py's smoke run. (The whole catalog's report at the
# lesson's settings is 5.7 MB; the size test below only checks this one's.)
REPRODUCED = ("regression-data", "unscaled-mlp", "input-scaling", "circles-data", "tanh-5",
              "gradient-clipping")  # fmt: skip


def _reproduce(out: Path) -> None:
    from stablelearn.lesson import catalog
    from stablelearn.lesson.reproduce import run_and_write

    specs = [e.override(repeats=2, epochs=2) for e in catalog.catalog() if e.id in REPRODUCED]
    run_and_write(specs, out)


def _keras_monitor(out: Path) -> None:
    """tests/keras/test_monitor.py's healthy model: 4 epochs of a 16-unit MLP."""
    keras = pytest.importorskip("keras", reason="the keras extra is not installed")
    from stablelearn.keras import Monitor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x @ rng.normal(size=8) + 1.0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", kernel_initializer="he_uniform"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    monitor = Monitor(probe=(x, y), out=out)
    model.fit(x, y, epochs=4, batch_size=32, callbacks=[monitor], verbose=0)


def _torch_watch(out: Path) -> None:
    """tests/torch/test_torch_watch.py's exploding loop: an unscaled target, 2 epochs."""
    torch = pytest.importorskip("torch", reason="the torch extra is not installed")
    from stablelearn.torch import watch

    nn = torch.nn
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = (x @ torch.randn(8, generator=g)) * 100.0 + 100.0
    model = nn.Sequential(nn.Linear(8, 25), nn.ReLU(), nn.Linear(25, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    with watch(model, every=4, sync_every=16) as handle:
        for _ in range(2):
            for i in range(0, len(x), 32):
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(x[i : i + 32])[:, 0], y[i : i + 32])
                loss.backward()
                optimizer.step()
                handle.loss(loss)
    handle.report(out)


def _design(out: Path) -> None:
    """No command: a report of every block and chart stablelearn.report has, with a wide
    table and a long printout line, so the design is checked apart from any command."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stablelearn import report as r
    from stablelearn.report import Cell, Chart, Verdict, charts

    out.mkdir()
    png = out.parent / "figure.png"
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.plot([1, 2, 3], [3, 1, 2])
    figure.savefig(png, dpi=100)
    plt.close(figure)
    e = np.arange(1, 201)
    bands = [
        charts.Band(name, "validation", e, np.exp(-e / k), np.exp(-e / k) / 2, np.exp(-e / k) * 2)
        for name, k in (("relu", 50), ("tanh", 80))
    ]
    rng = np.random.default_rng(0)
    verdicts = [
        Verdict("holds", "holds"),
        Verdict("partial", "holds in 7 of 10"),
        Verdict("fails", "does not hold"),
        Verdict("unmeasured", "not measured"),
    ]
    claims = r.Table(
        "Claims and their verdicts",
        ("claim", "median", "verdict"),
        tuple(
            (
                Cell(f"claim {i}"),
                Cell(f"{v:.2f}", float(v)) if i != 2 else Cell("-"),
                Cell("", verdict=verdicts[i]),
            )
            for i, v in enumerate(rng.random(4))
        ),
        highlight=frozenset({1}),
        numeric=frozenset({1}),
    )
    wide = r.Table(
        "A wide table: every statistic of every configuration",
        tuple(f"statistic number {j}" for j in range(14)),
        tuple(tuple(Cell(f"{v:.4f}", float(v)) for v in row) for row in rng.random((5, 14))),
        numeric=frozenset(range(14)),
    )
    cells = [
        {"lr": lr, "units": u, "score": float(rng.random())}
        for lr in ("0.1", "0.01")
        for u in ("4", "8", "16")
    ]
    lines = [
        {"x": x, "series": s, "median": m, "low": m * 0.8, "high": m * 1.2, "n": 3, "diverged": 0}
        for s in ("sgd", "adam")
        for x, m in ((1, 3.0), (10, 2.0), (100, 1.5))
    ]
    scores = [rng.random(5), rng.random(5) + 1]
    evidence = r.Section(
        "evidence",
        "Evidence",
        (
            r.Text("Scaled with `StandardScaler`."),
            claims,
            wide,
            Chart(
                charts.curves(bands, "Validation loss", "loss"),
                "Validation loss per epoch of relu and tanh",
                "median and p10-p90 over seeds",
            ),
            Chart(
                charts.scores_strip(
                    ["relu", "tanh"], scores, [range(5), range(5)], "test RMSE", "Scores"
                ),
                "Test RMSE of every seed",
                "one dot a seed",
            ),
            Chart(
                charts.heat_map(
                    cells,
                    ("lr", "learning rate"),
                    ("units", "units"),
                    ("score", "score"),
                    "Success",
                ),
                "Score per learning rate and width",
                "higher is better",
            ),
            Chart(
                charts.axis_lines(lines, "batch size", "RMSE", "RMSE by batch size", log_x=True),
                "RMSE against the batch size",
                "median and its interval",
            ),
            r.Image(png, "A line falling from 3 to 1 and rising to 2", "a static figure"),
            r.Details(
                "Per seed: which seeds diverged",
                (
                    Chart(
                        charts.seed_curves(
                            "relu",
                            e,
                            np.exp(-e / 50) * rng.random((3, 1)),
                            [0, 1, 2],
                            [0, 3, 0],
                            "loss",
                        ),
                        "Every seed's validation loss",
                        "seed 1 diverged",
                    ),
                ),
            ),
            r.Code(("Train: 0.1, Test: 0.2 " + "x" * 300,), "the printout"),
            r.Bullets(("one", "two")),
        ),
        subsections=(r.Section("more", "More", (r.Text("x"),)),),
    )
    report = r.Report(
        "Every block of the report design",
        (r.Callout("problem", "Cause: X. Fix: Y.", ("why",)),),
        (r.Facts((("command", "`stablelearn run`"),)),),
        (evidence,),
    )
    r.write_report(report, out)


WRITERS: dict[str, Callable[[Path], None]] = {
    "design": _design,
    "run": _run,
    "doctor": _doctor,
    "sweep": _sweep,
    "reproduce": _reproduce,
    "keras-monitor": _keras_monitor,
    "torch-watch": _torch_watch,
}


@pytest.fixture(scope="session")
def report_folder(tmp_path_factory) -> Callable[[str], Path]:
    """kind -> the folder holding that kind's report.html, written at umask 022 by the
    first process that asks (a failed writer leaves nothing, and the next one retries)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent / "browser-reports"
    else:
        root = tmp_path_factory.getbasetemp() / "browser-reports"
    root.mkdir(exist_ok=True)

    def get(kind: str) -> Path:
        out = root / kind / "out"
        with FileLock(root / f"{kind}.lock"):
            if not (out / "report.html").is_file():
                shutil.rmtree(root / kind, ignore_errors=True)
                (root / kind).mkdir()
                previous = os.umask(0o022)
                try:
                    WRITERS[kind](out)
                finally:
                    os.umask(previous)
        assert (out / "report.html").is_file(), f"{kind} wrote no report.html in {out}"
        return out

    return get


# --- pages ----------------------------------------------------------------------------------

# Records when the page's script sets <html data-interactive="true">, in ms since the
# navigation started (performance.now()), without polling.
INTERACTIVE_PROBE = """
window.__interactiveAt = null;
new MutationObserver(function (_, observer) {
  if (document.documentElement && document.documentElement.dataset.interactive === "true") {
    window.__interactiveAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ["data-interactive"]});
"""
INTERACTIVE = "document.documentElement.dataset.interactive === 'true'"
OFFLINE = ("file:", "data:", "blob:", "about:")


class Opened:
    """A report open in its own browser context: what it logged as errors and which
    network requests it tried (a report is one offline file: none)."""

    def __init__(self, browser, folder: Path, viewport: str):
        self.context = browser.new_context(**VIEWPORTS[viewport])
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self._interactive: float | str | None = "not waited for"
        self._closed = False
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.errors.append(f"console error: {m.text}"),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.context.route(lambda url: not url.startswith(OFFLINE), self._refuse)
        self.page.add_init_script(INTERACTIVE_PROBE)
        self.page.goto((folder / "report.html").as_uri(), wait_until="load")

    def _refuse(self, route) -> None:
        self.requests.append(route.request.url)
        route.abort()

    def interactive_ms(self, timeout_ms: float = 5_000) -> float | None:
        """ms from navigation start to data-interactive="true"; None if not within
        `timeout_ms` (waited for once per page)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        if self._interactive == "not waited for":
            try:
                self.page.wait_for_function(INTERACTIVE, timeout=timeout_ms)
                self._interactive = self.page.evaluate(
                    "window.__interactiveAt ?? performance.now()"
                )
            except PlaywrightTimeout:
                self._interactive = None
        return self._interactive

    def require_interactive(self) -> None:
        assert self.interactive_ms() is not None, (
            "the page never set <html data-interactive='true'> (waited 5 s)"
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.context.close()


@pytest.fixture(scope="session")
def open_report(browser) -> Iterator[Callable[[Path, str], Opened]]:
    """(folder, viewport) -> a fresh page of that report; closed at the session's end."""
    opened: list[Opened] = []

    def new(folder: Path, viewport: str) -> Opened:
        opened.append(Opened(browser, folder, viewport))
        return opened[-1]

    yield new
    for page in opened:
        page.close()


@pytest.fixture(scope="session")
def shared_page(open_report) -> Callable[[Path, str], Opened]:
    """(folder, viewport) -> one page per report and screen that the interaction tests
    share (each scrolls, opens and clicks what it checks; none needs another's state)."""
    pages: dict[tuple[Path, str], Opened] = {}

    def get(folder: Path, viewport: str) -> Opened:
        if (folder, viewport) not in pages:
            pages[folder, viewport] = open_report(folder, viewport)
        return pages[folder, viewport]

    return get
