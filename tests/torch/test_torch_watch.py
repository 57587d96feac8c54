"""watch(): module hooks on the user's own PyTorch loop record the engine's telemetry,
locate the first non-finite value and run stablelearn's detectors."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from stablelearn.diagnostics import baseline_loss  # noqa: E402
from stablelearn.errors import ConfigError  # noqa: E402
from stablelearn.torch import watch  # noqa: E402
from stablelearn.torch.hooks import TrainingProblem  # noqa: E402


def _loop(model, x, y, handle, epochs=2, lr=0.01, batch=32):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[i : i + batch])[:, 0], y[i : i + batch])
            loss.backward()
            optimizer.step()
            handle.loss(loss)


def _data(scale, n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return x, (x @ torch.randn(8, generator=g)) * scale + scale


def test_unscaled_target_is_exploding_with_its_first_nonfinite_value(tmp_path):
    torch.manual_seed(0)
    x, y = _data(scale=100.0)
    model = nn.Sequential(nn.Linear(8, 25), nn.ReLU(), nn.Linear(25, 1))
    with watch(model, every=4, sync_every=16) as handle:
        _loop(model, x, y, handle)
    assert handle.step == 16
    bad = handle.first_nonfinite
    assert bad is not None and bad.step <= 8 and bad.module in ("0", "2")
    assert handle.findings()[0].id == "exploding_gradients"
    handle.report(tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "diagnosis.json").read_text())
    assert doc["source"] == "stablelearn.torch.watch" and doc["first_nonfinite"]["step"] == bad.step
    assert {row["step"] for row in doc["layers"]} == {1, 5, 9, 13}
    page = (tmp_path / "out" / "report.html").read_text()
    headline = page[page.index("id='headline'") : page.index("class='toc'")]
    assert "callout-problem" in headline and "Exploding gradients: " in headline
    assert "id='first-nonfinite'" in page and f"<dd>{bad.step}</dd>" in page
    assert "<dt>statistics every</dt><dd>4 steps</dd>" in page


def test_a_healthy_loop_records_every_statistic_and_finds_nothing():
    torch.manual_seed(0)
    x, y = _data(scale=1.0)
    model = nn.Sequential(
        nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)
    )
    base = baseline_loss(y.numpy(), "mse")
    with watch(model, every=8, baseline_loss=base) as handle:
        _loop(model, x, y, handle, epochs=6, lr=0.05)
        model.eval()
        with torch.no_grad():
            model(x)  # evaluation is not a step
    assert handle.step == 48 and handle.first_nonfinite is None
    assert handle.findings() == []
    obs = handle.observation()
    assert list(obs.epochs) == [1, 9, 17, 25, 33, 41]
    for key in ("grad_norm", "grad_abs_max", "weight_norm", "update_ratio"):
        assert np.isfinite(obs.telemetry[key]).all() and (obs.telemetry[key] > 0).all(), key
    dead, saturated = obs.telemetry["dead_fraction"][0], obs.telemetry["saturated_fraction"][0]
    assert np.isnan(dead[:, 0]).all() and np.isfinite(dead[:, 1]).all()  # tanh cannot die
    assert np.isfinite(saturated[:, 0]).all() and np.isnan(saturated[:, 1]).all()
    assert obs.loss[0, -1] < 0.5 * base
    assert not model._forward_hooks and not model._forward_pre_hooks  # closed: hooks removed


def test_update_ratio_is_one_steps_move_over_the_weight_norm():
    model = nn.Sequential(nn.Linear(3, 1, bias=False))
    x, y = torch.ones(4, 3), torch.zeros(4)
    before = model[0].weight.detach().clone()
    with watch(model, every=1) as handle:
        _loop(model, x, y, handle, epochs=1, lr=0.1, batch=4)
    after = model[0].weight.detach()
    ratio = handle.observation().telemetry["update_ratio"][0, 0, 0]
    assert ratio == pytest.approx(float((after - before).norm() / before.norm()), rel=1e-5)


def test_stop_on_critical_raises_with_the_diagnosis():
    torch.manual_seed(0)
    x, y = _data(scale=100.0, n=1024)
    model = nn.Sequential(nn.Linear(8, 25), nn.ReLU(), nn.Linear(25, 1))
    handle = watch(model, every=4, sync_every=8, stop_on="critical")
    with pytest.raises(TrainingProblem, match="Exploding gradients") as err:
        _loop(model, x, y, handle)
    handle.close()
    assert handle.step == 8  # raised by the 9th forward pass, right after reading back 8 steps
    assert err.value.findings[0].severity == "critical"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"every": 0}, "every must be a positive integer"), ({"stop_on": "bad"}, "stop_on must be")],
)
def test_bad_settings_are_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        watch(nn.Sequential(nn.Linear(2, 1)), **kwargs)
    with pytest.raises(ConfigError, match=r"needs a torch nn\.Module"):
        watch("model")
