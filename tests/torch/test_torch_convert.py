"""from_torch: an nn.Sequential MLP with its torch optimizer as stablelearn's spec, and
fidelity: the same initial weights train to PyTorch's weights step by step."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import stablelearn as sl  # noqa: E402
from stablelearn.errors import ConfigError  # noqa: E402
from stablelearn.initializers import Initializer, sample  # noqa: E402
from stablelearn.torch.files import spec_from_file  # noqa: E402


def _mlp(*hidden, inputs=3):
    return nn.Sequential(
        nn.Linear(inputs, 5), *hidden, nn.Linear(5, 4), nn.ELU(0.5), nn.Linear(4, 1)
    )


def test_sequential_becomes_the_same_mlp_with_torch_initializers():
    spec = sl.from_torch(_mlp(nn.LeakyReLU(0.1)))
    assert (
        spec.model.describe() == "3-5(leaky_relu(negative_slope=0.1))-4(elu(alpha=0.5))-1(linear)"
    )
    first = spec.model.layers[0]
    assert first.kernel_initializer == Initializer("torch_linear")
    assert first.bias_initializer == Initializer("torch_linear_bias", (("fan_in", 3.0),))
    assert spec.layer_names == ("0", "2", "4")


def test_torch_linear_initializers_draw_pytorchs_bounds():
    """Kaiming uniform with a = sqrt(5) and the bias are U(+-1/sqrt(fan_in))."""
    import jax

    kernel = np.asarray(sample(Initializer("torch_linear"), jax.random.key(0), (400, 16)))
    bias = np.asarray(
        sample(Initializer("torch_linear_bias", (("fan_in", 16.0),)), jax.random.key(1), (4000,))
    )
    for values in (kernel, bias):
        assert np.abs(values).max() <= 0.25 and np.abs(values).max() > 0.24
        assert values.std() == pytest.approx(0.25 / np.sqrt(3), rel=0.05)
    linear = nn.Linear(16, 400)
    assert linear.weight.abs().max().item() <= 0.25


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.2),
         sl.SGD(learning_rate=0.1, momentum=0.9, dampening=0.2)),
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5, nesterov=True),
         sl.SGD(learning_rate=0.1, momentum=0.5, nesterov=True)),
        (lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99)),
         sl.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-8)),
        (lambda p: torch.optim.RMSprop(p),
         sl.RMSprop(learning_rate=0.01, rho=0.99, epsilon=1e-8, epsilon_in_sqrt=False)),
    ],
)  # fmt: skip
def test_optimizers_keep_their_pytorch_settings(make, expected):
    model = _mlp()
    assert sl.from_torch(model, make(model.parameters())).optimizer == expected


@pytest.mark.parametrize(
    ("module", "optimizer", "loss", "named"),
    [
        (nn.Sequential(nn.Linear(2, 3), nn.Dropout()), None, None, "(1) Dropout"),
        (nn.Sequential(nn.ReLU(), nn.Linear(2, 3)), None, None, "before the first Linear"),
        (nn.Sequential(nn.Linear(2, 3), nn.GELU("tanh")), None, None, "approximate='tanh'"),
        (nn.Linear(2, 1), None, None, "A Linear module"),
        (nn.Sequential(nn.Linear(2, 1)), "adamw", None, "Optimizer AdamW"),
        (nn.Sequential(nn.Linear(2, 1)), "decay", None, "weight_decay=0.1"),
        (nn.Sequential(nn.Linear(2, 1)), None, nn.L1Loss(), "Loss L1Loss"),
        (nn.Sequential(nn.Linear(2, 1)), None, nn.MSELoss(reduction="sum"), "reduction='sum'"),
        (nn.Sequential(nn.Linear(2, 1), nn.Sigmoid()), None, nn.BCEWithLogitsLoss(), "reads a linear output"),
    ],
)  # fmt: skip
def test_unsupported_parts_are_named_in_one_sentence(module, optimizer, loss, named):
    make = {
        "adamw": lambda p: torch.optim.AdamW(p),
        "decay": lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.1),
    }
    opt = make[optimizer](module.parameters()) if optimizer else None
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")) as err:
        sl.from_torch(module, opt, loss=loss)
    assert str(err.value).count(". ") == 0  # one sentence


def test_model_files_both_layouts_and_unsupported_modules(tmp_path):
    model = _mlp(nn.Tanh())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    expected = sl.from_torch(model, optimizer, clip_grad_norm=1.0)
    torch.save(
        {"architecture": str(model), "state_dict": model.state_dict(),
         "optimizer": str(optimizer), "loss": "MSELoss()", "clip_grad_norm": 1.0},
        tmp_path / "dict.pt",
    )  # fmt: skip
    torch.save(model, tmp_path / "whole.pt")
    from_dict, whole = spec_from_file(tmp_path / "dict.pt"), spec_from_file(tmp_path / "whole.pt")
    assert from_dict.model == whole.model == expected.model
    assert from_dict.optimizer == expected.optimizer and from_dict.loss == "mse"
    assert whole.optimizer is None
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), tmp_path / "bn.pt")
    with pytest.raises(ConfigError, match=r"^bn.pt holds BatchNorm1d, which is not supported"):
        spec_from_file(tmp_path / "bn.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match=r"junk\.pt could not be read as a PyTorch file"):
        spec_from_file(tmp_path / "junk.pt")


def _regression_data(n=40, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)) * [1.0, 3.0, 0.5][:features]
    y = x @ rng.normal(size=features) * 5 + 1
    return sl.prepare(sl.Dataset(x, y), n_train=n - 8)


def torch_fit(model, optimizer, loss_fn, data, epochs, batch_size, clip=None):
    """PyTorch's own loop, rows in order (a partial last batch), clipping as the spec says."""
    x = torch.as_tensor(np.asarray(data.train_x, np.float32))
    y = torch.as_tensor(np.asarray(data.train_y, np.float32))
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out[:, 0], yb) if out.shape[1] == 1 else loss_fn(out, yb.long())
            loss.backward()
            if clip is not None:
                clip(model.parameters())
            optimizer.step()
    return [m for m in model if isinstance(m, nn.Linear)]


def _assert_same_weights(result, linears, rtol=2e-5, atol=1e-6):
    for ours, theirs in zip(result.final_params[0], linears, strict=True):
        np.testing.assert_allclose(
            ours["kernel"], theirs.weight.detach().numpy(), rtol=rtol, atol=atol
        )
        if theirs.bias is not None:
            np.testing.assert_allclose(
                ours["bias"], theirs.bias.detach().numpy(), rtol=rtol, atol=atol
            )


OPTIMIZERS = {
    "sgd_momentum_dampening": (lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.3), {}),
    "sgd_nesterov_clip_norm": (lambda p: torch.optim.SGD(p, lr=0.005, momentum=0.5, nesterov=True),
                               {"clip_grad_norm": 1.0}),
    "sgd_plain_clip_value": (lambda p: torch.optim.SGD(p, lr=0.01), {"clip_grad_value": 0.5}),
    "adam": (lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99)), {}),
    "rmsprop_momentum": (lambda p: torch.optim.RMSprop(p, lr=0.001, momentum=0.2), {}),
}  # fmt: skip


@pytest.mark.parametrize(
    "name", [n if n == "sgd_momentum_dampening" else pytest.param(n, marks=pytest.mark.slow)
             for n in OPTIMIZERS],
)  # fmt: skip
def test_first_steps_match_pytorch_with_the_same_weights(name):
    """Fidelity: same initial weights, no shuffling, three epochs of 4 batches (the last
    partial): stablelearn's weights equal PyTorch's to float tolerance."""
    torch.manual_seed(0)
    data = _regression_data()
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4, bias=False), nn.ELU(),
                          nn.Linear(4, 1))  # fmt: skip
    make, clip = OPTIMIZERS[name]
    optimizer = make(model.parameters())
    spec = sl.from_torch(model, optimizer, loss=nn.MSELoss(), weights=True, **clip)
    clip_fn = None
    if "clip_grad_norm" in clip:
        clip_fn = lambda p: nn.utils.clip_grad_norm_(p, clip["clip_grad_norm"])  # noqa: E731
    if "clip_grad_value" in clip:
        clip_fn = lambda p: nn.utils.clip_grad_value_(p, clip["clip_grad_value"])  # noqa: E731
    linears = torch_fit(model, optimizer, nn.MSELoss(), data, epochs=3, batch_size=10, clip=clip_fn)
    result = spec.fit(data, seeds=1, epochs=3, batch_size=10, shuffle=False, telemetry=False)
    _assert_same_weights(result, linears)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["BCEWithLogitsLoss", "BCELoss", "CrossEntropyLoss"])
def test_classification_losses_match_pytorch(loss):
    torch.manual_seed(1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(float)
    data = sl.prepare(
        sl.Dataset(x, y, "binary" if loss != "CrossEntropyLoss" else "multiclass"), n_train=32
    )
    units = 2 if loss == "CrossEntropyLoss" else 1
    tail = [nn.Sigmoid()] if loss == "BCELoss" else []
    model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, units), *tail)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = getattr(nn, loss)()
    spec = sl.from_torch(model, optimizer, loss=loss_fn, weights=True)
    linears = torch_fit(model, optimizer, loss_fn, data, epochs=2, batch_size=8)
    result = spec.fit(data, seeds=1, epochs=2, batch_size=8, shuffle=False, telemetry=False)
    _assert_same_weights(result, linears)
