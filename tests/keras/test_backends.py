"""The Monitor on Keras' TensorFlow and PyTorch backends, each in its own process (a
process has one Keras backend); skipped where that backend's framework is not installed."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import keras, numpy as np
from stablelearn.keras import Monitor
L = keras.layers
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 8)).astype("float32")
y = (x @ rng.normal(size=8)).astype("float32")

def mlp(momentum):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), L.Dense(16, activation="relu"), L.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=momentum), loss="mse")
    return model

healthy = Monitor(probe=(x, y), out=sys.argv[1])
mlp(0.0).fit(x, y, epochs=2, batch_size=32, callbacks=[healthy], verbose=0)
t = healthy.observation().telemetry
exploding = Monitor(probe=(x, y * 1e4), stop_on="critical", verbose=False)
mlp(0.9).fit(x, y * 1e4, epochs=10, batch_size=32, callbacks=[exploding], verbose=0)
bad = exploding.first_nonfinite
print(json.dumps({
    "backend": keras.backend.backend(),
    "grad_norm": t["grad_norm"].tolist(), "update_ratio": t["update_ratio"].tolist(),
    "dead": t["dead_fraction"].tolist(), "healthy": [f.id for f in healthy.findings()],
    "stopped_after": exploding.epochs_run, "layer": bad and bad.layer,
    "exploding": [f.id for f in exploding.findings()],
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "module"), [("torch", "torch"), ("tensorflow", "tensorflow")])
def test_monitor_on_another_backend(backend, module, tmp_path):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "run")],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["backend"] == backend
    grads = [g for epoch in seen["grad_norm"][0] for g in epoch]
    assert len(grads) == 4 and all(g > 0 for g in grads)
    assert all(r > 0 for epoch in seen["update_ratio"][0] for r in epoch)
    assert seen["healthy"] == []
    assert seen["stopped_after"] == 1 and seen["layer"] is not None
    assert seen["exploding"][0] == "exploding_gradients"
    assert (tmp_path / "run" / "diagnosis.json").exists()
