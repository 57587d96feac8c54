"""A saved PyTorch model in the CLI: doctor --model model.pt runs the user's configuration
over seeds with repairs; bad files exit 2 with one line."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
nn = torch.nn

from stablelearn.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    frame = pd.DataFrame(x, columns=list("abcd")).assign(y=x @ [3.0, -2.0, 1.0, 0.5] * 100)
    frame.to_csv(folder / "data.csv", index=False)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, dampening=0.1)
    torch.save(
        {"architecture": str(model), "state_dict": model.state_dict(),
         "optimizer": str(optimizer), "loss": "MSELoss()"},
        folder / "model.pt",
    )  # fmt: skip
    torch.save(nn.Sequential(nn.Linear(7, 1)), folder / "wide.pt")
    torch.save(nn.Sequential(nn.Linear(4, 4), nn.Dropout(), nn.Linear(4, 1)), folder / "drop.pt")
    return folder


@pytest.mark.slow
def test_doctor_with_a_pytorch_model_keeps_its_optimizer(files):
    out = files / "doctor"
    result = runner.invoke(app, [
        "doctor", str(files / "data.csv"), "--target", "y", "--model", str(files / "model.pt"),
        "--repeats", "4", "--epochs", "8", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "diagnosis.json").read_text())
    hidden = doc["configuration"]["model"]["hidden"][0]
    assert hidden["units"] == 8 and hidden["kernel_initializer"] == "torch_linear"
    assert doc["configuration"]["optimizer"] == {
        "name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": False, "dampening": 0.1,
    }  # fmt: skip
    assert "exploding_gradients" in [f["id"] for f in doc["findings"]]
    assert doc["candidates"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("wide.pt", "takes 7 input features but the data"),
        ("drop.pt", "drop.pt holds Dropout, which is not supported"),
        ("none.pt", "No PyTorch model file"),
    ],
)
def test_bad_model_files_exit_2_with_one_line(files, name, message):
    result = runner.invoke(app, ["doctor", str(files / "data.csv"), "--target", "y",
                                 "--model", str(files / name)])  # fmt: skip
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
