"""The lesson's models written in PyTorch reach the lesson's verdicts in PyTorch's own
training loop and, converted with from_torch, in stablelearn (small repeats and epochs):
an unscaled target diverges, a standardized one learns to the same distribution, and
clipping the gradient norm tames the unscaled target."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import stablelearn as sl  # noqa: E402

pytestmark = pytest.mark.slow
SEEDS = 4


def lesson_model() -> "nn.Module":
    """The lesson's regression MLP (20-25-1, ReLU) as a PyTorch user writes it; PyTorch's
    default Linear initialization, not the lesson's he_uniform."""
    return nn.Sequential(nn.Linear(20, 25), nn.ReLU(), nn.Linear(25, 1))


def torch_scores(data, epochs: int, clip: float | None = None) -> np.ndarray:
    """Test MSE per seed from a plain PyTorch loop: shuffled batches of 32, SGD(0.01, 0.9)."""
    x = torch.tensor(data.train_x, dtype=torch.float32)
    y = torch.tensor(data.train_y, dtype=torch.float32)[:, None]
    test_x = torch.tensor(data.test_x, dtype=torch.float32)
    test_y = torch.tensor(data.test_y, dtype=torch.float32)[:, None]
    scores = []
    for seed in range(SEEDS):
        torch.manual_seed(seed)
        model = lesson_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for _ in range(epochs):
            for rows in torch.randperm(len(x)).split(32):
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(x[rows]), y[rows])
                loss.backward()
                if clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()
        with torch.no_grad():
            scores.append(float(nn.functional.mse_loss(model(test_x), test_y)))
    return np.asarray(scores)


def ours(data, epochs: int, clip: float | None = None):
    model = lesson_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    spec = sl.from_torch(model, optimizer, loss=nn.MSELoss(), clip_grad_norm=clip)
    return spec.fit(data, seeds=SEEDS, epochs=epochs)


def test_a_standardized_target_learns_to_the_pytorch_distribution():
    data = sl.prepare(sl.lesson_regression(), target_scaler="standard", n_train=500)
    theirs = torch_scores(data, epochs=15)
    result = ours(data, epochs=15)
    mine = result.test_scores["loss"]
    assert np.isfinite(theirs).all() and not result.diverged.any()
    assert np.median(theirs) < 0.1 and np.median(mine) < 0.1  # far below the variance, 1
    assert 0.5 < np.median(mine) / np.median(theirs) < 2.0, (mine, theirs)


def test_an_unscaled_target_diverges_in_both():
    data = sl.prepare(sl.lesson_regression(), n_train=500)
    with np.errstate(all="ignore"):
        theirs = torch_scores(data, epochs=2)
    assert not np.isfinite(theirs).any()
    assert ours(data, epochs=2).diverged.all()


def test_clipping_the_gradient_norm_tames_the_unscaled_target_in_both():
    """clip_grad_norm_ clips one global norm (stablelearn's global_clipnorm): no run
    diverges, every run beats predicting the mean, and the two frameworks agree. (One
    global norm of 1 moves the weights slowly: the lesson's per-tensor clipnorm learns
    faster.)"""
    data = sl.prepare(sl.lesson_regression(), n_train=500)
    theirs = torch_scores(data, epochs=10, clip=1.0)
    result = ours(data, epochs=10, clip=1.0)
    mine = result.test_scores["loss"]
    variance = float(np.var(data.test_y))  # what predicting the mean scores, ~26,000
    assert np.isfinite(theirs).all() and not result.diverged.any()
    assert theirs.max() < variance and mine.max() < variance
    assert 0.5 < np.median(mine) / np.median(theirs) < 2.0, (mine, theirs)
