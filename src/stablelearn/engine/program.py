"""The compiled training program: every epoch of every model of one ensemble.

What selects compiled code is decided here, once: `Program` is the static argument of
the compiled function and `group_key` the grouping of runs that can share one, so
runs that differ only in numbers (seeds, learning rates, clip thresholds, data
variants, initializers) train together.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

from stablelearn import losses, telemetry
from stablelearn.model import MLP, Dense, Params, forward
from stablelearn.optim import (
    OptimizerStructure,
    build_clipping,
    build_optimizer,
    optimizer_structure,
)
from stablelearn.runs import Run

ACTIVATION_SAMPLES = 100  # epochs at which dead/saturated units are measured, at most


@dataclass(frozen=True)
class Program:
    """Everything that selects compiled code; equal programs reuse one compilation."""

    model: MLP
    optimizer: OptimizerStructure
    loss: str
    metrics: tuple[str, ...]
    bce_form: str
    validation: bool
    telemetry: bool

    @classmethod
    def for_runs(cls, runs: Sequence[Run]) -> "Program":
        """The program of runs that share a group key (see group_key)."""
        config = runs[0].config
        return cls(
            compute_model(runs[0].model),
            optimizer_structure([r.optimizer for r in runs]),
            config.loss,
            config.metrics,
            config.bce_form,
            config.validation,
            config.telemetry,
        )


def compute_model(model: MLP) -> MLP:
    """The model as the compiled program sees it: widths and activations. Initializers
    only decide the starting weights, drawn outside the program, so models that differ
    in them alone share one compilation."""
    return MLP(
        model.input_dim,
        tuple(
            Dense(layer.units, layer.activation, use_bias=layer.use_bias) for layer in model.hidden
        ),
        Dense(model.output.units, model.output.activation, use_bias=model.output.use_bias),
    )


def group_key(run: Run) -> tuple:
    """Runs with equal keys train together in one compiled ensemble program."""
    data = run.data
    shapes = (data.train_x.shape, data.test_x.shape)
    structure = optimizer_structure([run.optimizer])
    return (compute_model(run.model), structure.kind, structure.nesterov, run.config, shapes)


def _predictions(output: jax.Array) -> jax.Array:
    """[rows] for a single output unit, [rows, classes] for a softmax output."""
    return output[0] if output.shape[0] == 1 else output.T


def _evaluate(
    program: Program, params: Params, x_t: jax.Array, y: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Loss and metrics of one model on a whole split, plus its predictions."""
    logits, output = forward(program.model, params, x_t)
    weights = jnp.ones_like(y)
    per_row = losses.per_example_loss(program.loss, logits, output, y, program.bce_form)
    scores = [losses.weighted_mean(per_row, weights)]
    for metric in program.metrics:
        mean = losses.weighted_mean(losses.per_example_metric(metric, output, y), weights)
        scores.append(losses.finish_metric(metric, mean))
    return jnp.stack(scores), _predictions(output)


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def train_program(
    program: Program,
    params: Params,
    hyperparameters: dict[str, jax.Array],
    variant: jax.Array,
    train_x: jax.Array,
    train_y: jax.Array,
    test_x_t: jax.Array,
    test_y: jax.Array,
    batch_rows: jax.Array,
    batch_weights: jax.Array,
) -> dict[str, jax.Array]:
    """All epochs of all models. Shapes: M models, V data variants, E epochs, S steps.

    params and hyperparameters lead with [M]; variant [M] picks each model's data;
    train_x [V, N, F]; train_y [V, N]; test_x_t [V, F, Nt]; test_y [V, Nt];
    batch_rows [E, S, M, B] row indices; batch_weights [S, B] (0 marks padding).
    """
    n_layers = len(program.model.layers)
    n_train = train_y.shape[1]
    train_x_t = jnp.swapaxes(train_x, 1, 2)

    def stages(hp: dict[str, jax.Array]) -> tuple[optax.GradientTransformation, ...]:
        return build_clipping(program.optimizer, hp, n_layers), build_optimizer(
            program.optimizer, hp
        )

    def model_step(params, opt_state, acc, hp, v, rows, weights, step):
        # one gather of whole rows; indexing the variant first would copy its full split
        x_t = train_x[v, rows].T
        y = train_y[v, rows]

        def batch_loss(p):
            logits, output = forward(program.model, p, x_t)
            per_row = losses.per_example_loss(program.loss, logits, output, y, program.bce_form)
            return losses.weighted_mean(per_row, weights), output

        (loss, output), grads = jax.value_and_grad(batch_loss, has_aux=True)(params)
        clip, optimizer = stages(hp)
        clipped, clip_state = clip.update(grads, opt_state[0])
        updates, optimizer_state = optimizer.update(clipped, opt_state[1], params)
        batch_size = jnp.sum(weights)
        sums = [loss * batch_size]
        sums += [
            jnp.sum(losses.per_example_metric(m, output, y) * weights) for m in program.metrics
        ]
        if program.telemetry:
            seen = clipped if program.optimizer.clip_modes else None
            acc = telemetry.accumulate(acc, grads, seen, loss, step)
        new_state = (clip_state, optimizer_state)
        return optax.apply_updates(params, updates), new_state, acc, jnp.stack(sums)

    steps = jax.vmap(model_step, in_axes=(0, 0, 0, 0, 0, 0, None, None))
    evaluate = jax.vmap(
        lambda p, v, x_t, y: _evaluate(program, p, x_t[v], y[v]), in_axes=(0, 0, None, None)
    )
    activations = jax.vmap(lambda p, v: telemetry.activation_stats(program.model, p, train_x_t[v]))
    n_steps = batch_weights.shape[0]
    epoch_stats = jax.vmap(lambda acc, start, end: telemetry.epoch_stats(acc, start, end, n_steps))

    def step(carry, xs):
        params, opt_state, acc = carry
        rows, weights, index = xs
        params, opt_state, acc, sums = steps(
            params, opt_state, acc, hyperparameters, variant, rows, weights, index
        )
        return (params, opt_state, acc), sums

    n_epochs = batch_rows.shape[0]
    # dead/saturated units need a forward pass over the whole training split; in long
    # runs it is taken every `stride` epochs (about 100 samples) and on the last epoch
    stride = max(1, -(-n_epochs // ACTIVATION_SAMPLES))

    def unit_stats(params, index):
        def measure():
            return activations(params, variant)

        def skip():
            return jax.tree.map(
                lambda a: jnp.full(a.shape, jnp.nan, a.dtype), jax.eval_shape(measure)
            )

        due = (index % stride == stride - 1) | (index == n_epochs - 1) | (stride == 1)
        return jax.lax.cond(due, measure, skip)

    def epoch(carry, xs):
        rows, index = xs
        start, opt_state = carry
        acc = jax.vmap(telemetry.init_accumulator)(start) if program.telemetry else ()
        xs = (rows, batch_weights, jnp.arange(n_steps))
        (params, opt_state, acc), sums = jax.lax.scan(step, (start, opt_state, acc), xs)
        means = sums.sum(axis=0) / n_train
        scores = [means[:, 0]]
        scores += [losses.finish_metric(m, means[:, i + 1]) for i, m in enumerate(program.metrics)]
        out = {"train": jnp.stack(scores, axis=1)}
        out["finite"] = jax.vmap(_all_finite)(params) & jnp.isfinite(means[:, 0])
        if program.validation:
            out["val"], _ = evaluate(params, variant, test_x_t, test_y)
        if program.telemetry:
            out["telemetry"] = {**epoch_stats(acc, start, params), **unit_stats(params, index)}
        return (params, opt_state), out

    opt_state = jax.vmap(lambda p, hp: tuple(stage.init(p) for stage in stages(hp)))(
        params, hyperparameters
    )
    xs = (batch_rows, jnp.arange(n_epochs))
    (params, _), history = jax.lax.scan(epoch, (params, opt_state), xs)
    train_scores, train_pred = evaluate(params, variant, train_x_t, train_y)
    test_scores, test_pred = evaluate(params, variant, test_x_t, test_y)
    return {
        "history": history,
        "train_scores": train_scores,
        "test_scores": test_scores,
        "train_pred": train_pred,
        "test_pred": test_pred,
        "params": params,
    }


jitted_train = jax.jit(train_program, static_argnums=0)
