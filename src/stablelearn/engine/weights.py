"""Seeded initial weights for many models, drawn by small compiled programs."""

from collections.abc import Sequence

import jax
import numpy as np

from stablelearn.engine.compilation import compiled
from stablelearn.engine.program import Program, model_slots
from stablelearn.initializers import Initializer, sample
from stablelearn.model import MLP, Params, batch_norm_params
from stablelearn.runs import Run


def _layer_keys(n_layers: int, seed: jax.Array) -> jax.Array:
    """[layers, 2] keys: init_params' key schedule for one seed."""
    layer_keys = jax.random.split(jax.random.key(seed), n_layers)
    return jax.vmap(jax.random.split)(layer_keys)


def _sample_layer(spec: tuple[Initializer, tuple[int, ...]], key: jax.Array) -> jax.Array:
    init, shape = spec
    return sample(init, key, shape)


_jitted_keys = jax.jit(_layer_keys, static_argnums=0)
_jitted_sample = jax.jit(_sample_layer, static_argnums=0)


def init_ensemble(model: MLP, seeds: Sequence[int]) -> Params:
    """Parameters for each seed, stacked on a leading model axis: exactly
    `init_params(model, jax.random.key(seed))` for every seed.

    Compiled per layer shape and initializer, not per architecture or ensemble size:
    the layers of a deep model, models of different depths and ensembles of any size
    share a handful of small programs (one program per architecture took longer to
    compile than the training itself in a sweep over 30 depths). Each call costs about
    30 us, so the host loop over models and layers stays cheap.
    """
    n_layers = len(model.layers)
    if jax.config.jax_threefry_partitionable:
        # split(key, n)[:k] == split(key, k) for partitionable threefry (JAX's default),
        # so depths share the key program of the next power of two
        n_keys = max(8, 1 << (n_layers - 1).bit_length())
    else:
        n_keys = n_layers
    keys_fn, _ = compiled(_jitted_keys, n_keys, (np.uint32(0),))
    example_key = keys_fn(np.uint32(0))[0, 0]  # the argument shape the samplers compile for
    layers = []
    fan_in = model.input_dim
    for layer in model.layers:
        specs = (
            (layer.kernel_initializer, (layer.units, fan_in)),
            (layer.bias_initializer, (layer.units,)),
        )
        layers.append([compiled(_jitted_sample, spec, (example_key,))[0] for spec in specs])
        fan_in = layer.units
    drawn: list[dict[str, list]] = [{"kernel": [], "bias": []} for _ in model.layers]
    for seed in seeds:
        keys = keys_fn(np.uint32(seed))
        for index, (kernel, bias) in enumerate(layers):
            drawn[index]["kernel"].append(kernel(keys[index, 0]))
            drawn[index]["bias"].append(bias(keys[index, 1]))
    return tuple(
        {
            **{name: np.stack(values) for name, values in layer_drawn.items()},
            **batch_norm_params(layer, np, (len(seeds),)),
        }
        for layer, layer_drawn in zip(model.layers, drawn, strict=True)
    )


def initial_params(runs: Sequence[Run]) -> Params:
    """Seeded weights for each run, drawn once per distinct initializer set and stacked
    in run order."""
    by_model: dict[MLP, list[int]] = {}
    for i, run in enumerate(runs):
        by_model.setdefault(run.model, []).append(i)
    parts = {m: init_ensemble(m, [int(runs[i].seed) for i in idx]) for m, idx in by_model.items()}
    order = np.argsort(np.concatenate(list(by_model.values())), kind="stable")
    return jax.tree.map(lambda *leaves: np.concatenate(leaves)[order], *parts.values())


def slot_params(runs: Sequence[Run], program: Program) -> Params:
    """Seeded weights for a packed program: each model's own layers (drawn exactly as
    `initial_params` draws them) in its slots, zeros in the slots it does not use."""
    n = len(runs)
    slots = program.model.depth
    fan_in = program.model.input_dim
    params = []
    for layer in program.model.layers:
        params.append(
            {
                "kernel": np.zeros((n, layer.units, fan_in), np.float32),
                "bias": np.zeros((n, layer.units), np.float32),
            }
        )
        fan_in = layer.units
    by_model: dict[MLP, list[int]] = {}
    for i, run in enumerate(runs):
        by_model.setdefault(run.model, []).append(i)
    for model, idx in by_model.items():
        drawn = init_ensemble(model, [int(runs[i].seed) for i in idx])
        for layer_index, slot in enumerate(model_slots(model, slots)):
            for name in ("kernel", "bias"):
                params[slot][name][idx] = drawn[layer_index][name]
    return tuple(params)
