"""figures.save runs the constrained layout once itself instead of letting savefig draw the
figure an extra time for it: the PNG must be the one savefig writes on its own."""

import numpy as np
import pytest
from matplotlib import rc_context
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from PIL import Image

from stablelearn import figures


def _figure() -> Figure:
    """Constrained layout with what it has to make room for: a colour bar beside two
    axes, a suptitle, a legend, log ticks and long labels."""
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    image = left.imshow(np.logspace(-3, 2, 30).reshape(5, 6), norm=LogNorm(1e-3, 1e2))
    fig.colorbar(image, ax=[left, right], label="median gradient norm")
    right.plot([1, 10, 100], [3e-4, 2e-1, 5e1], label="a long legend entry (median)")
    right.set_yscale("log")
    right.legend(fontsize=8)
    left.set(title="gradient norm per layer and epoch", xlabel="epoch", ylabel="layer")
    fig.suptitle("a title long enough to need its own room above the axes")
    return fig


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("autolayout", [False, True])
def test_save_writes_the_png_savefig_writes(tmp_path, autolayout):
    with rc_context({"figure.autolayout": autolayout}):
        saved = figures.save(_figure(), tmp_path / "saved.png")
        plain = _figure()
        plain.savefig(tmp_path / "plain.png", dpi=figures.DPI)
    np.testing.assert_array_equal(_pixels(saved), _pixels(tmp_path / "plain.png"))


def test_save_leaves_the_figure_without_a_layout_engine(tmp_path):
    fig = _figure()
    figures.save(fig, tmp_path / "f.png")
    assert fig.get_layout_engine() is None
