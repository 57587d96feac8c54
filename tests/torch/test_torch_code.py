"""A recommended change as PyTorch code: only what differs, in PyTorch's names."""

import dataclasses
from types import SimpleNamespace

import stablelearn as sl
from stablelearn.data import Scaler
from stablelearn.initializers import Initializer
from stablelearn.torch.code import clipping_code, hidden_code, optimizer_code, torch_changes

TORCH_INIT = {"kernel_initializer": Initializer("torch_linear")}


def config(model=None, optimizer=None, target="none"):
    model = model or sl.MLP(3, (sl.Dense(5, "relu", **TORCH_INIT),), sl.Dense(1))
    return SimpleNamespace(
        model=model, optimizer=optimizer or sl.SGD(0.01, momentum=0.9),
        input_scaler=Scaler("none"), target_scaler=Scaler(target),
    )  # fmt: skip


def test_optimizers_in_pytorchs_names():
    assert optimizer_code(sl.SGD(0.001, momentum=0.9)) == (
        "torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)"
    )
    assert optimizer_code(sl.Adam()) == "torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-07)"
    rms = optimizer_code(sl.RMSprop(0.01, rho=0.99, epsilon=1e-8, epsilon_in_sqrt=False))
    assert rms == "torch.optim.RMSprop(model.parameters(), lr=0.01)"


def test_clipping_goes_between_backward_and_step():
    assert clipping_code(sl.SGD(global_clipnorm=1.0)) == (
        "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"
    )
    assert (
        clipping_code(sl.SGD(clipnorm=1.0))
        == "for p in model.parameters(): torch.nn.utils.clip_grad_norm_(p, 1.0)"
    )
    assert clipping_code(sl.SGD(clipvalue=5.0)).startswith("torch.nn.utils.clip_grad_value_(")
    assert clipping_code(sl.SGD()) is None


def test_only_what_changed_is_written():
    before = config()
    lower = config(optimizer=sl.SGD(0.001, momentum=0.9))
    assert torch_changes(before, lower) == [
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)"
    ]
    clipped = config(optimizer=sl.SGD(0.01, momentum=0.9, clipnorm=1.0))
    assert torch_changes(before, clipped) == [
        "after loss.backward(): for p in model.parameters(): torch.nn.utils.clip_grad_norm_(p, 1.0)"
    ]
    scaled = torch_changes(before, config(target="standard"))
    assert len(scaled) == 1 and scaled[0].startswith("target: y_scaler = sklearn.preprocessing.")


def test_hidden_layers_as_nn_modules():
    deep = sl.MLP(3, (sl.Dense(5, "tanh", **TORCH_INIT),) * 4, sl.Dense(1))
    assert hidden_code(deep) == "nn.Linear(3, 5), nn.Tanh(), then 3 x nn.Linear(5, 5), nn.Tanh()"
    he = sl.MLP(3, (sl.Dense(5, "leaky_relu", "he_uniform"),), sl.Dense(1))
    assert hidden_code(he) == (
        "nn.Linear(3, 5), nn.LeakyReLU(0.2) (then nn.init.kaiming_uniform_(layer.weight, "
        'nonlinearity="relu"); nn.init.zeros_(layer.bias))'
    )
    bn = dataclasses.replace(deep.hidden[1], batch_norm=True, residual=True)
    assert "x = x + nn.Sequential(nn.Linear(5, 5), nn.BatchNorm1d(5, momentum=0.01, eps=0.001)" in (
        hidden_code(sl.MLP(3, (deep.hidden[0], bn), sl.Dense(1)))
    )
