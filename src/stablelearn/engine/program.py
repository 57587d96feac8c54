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
import numpy as np
import optax

from stablelearn import losses, telemetry
from stablelearn.activations import activation_kind, get_activation
from stablelearn.model import MLP, Dense, Params, State, run_layers
from stablelearn.optim import (
    BATCH_NORM_TENSORS,
    TENSORS,
    OptimizerStructure,
    build_clipping,
    build_optimizer,
    optimizer_structure,
)
from stablelearn.runs import Run

# Epochs at which dead/saturated units are measured, at most, besides the last. Each
# sample is a forward pass over the whole training split, which at every epoch (100
# samples) cost a third of the 90-model input-scaling study's training time, the
# largest part of the telemetry's cost; 25 cost a tenth. The detectors read the last
# epoch, and the first sampled epoch over their threshold.
ACTIVATION_SAMPLES = 25
SCAN_SLOTS = 20  # packed programs deeper than this scan their slots


@dataclass(frozen=True)
class Packing:
    """Models of different depths and hidden activations in one program.

    The program's model has `slots` hidden layers of one width; a model of depth d uses
    the first d and passes its activations through the rest unchanged (a masked slot
    gets exactly zero gradient and zero updates, so it stays zero). Each used slot
    applies one of `activations`, chosen per model and slot by data.
    """

    activations: tuple[str, ...]
    scanned: bool = False  # the slots after the first run as one scanned layer


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
    packing: Packing | None = None

    @classmethod
    def for_runs(cls, runs: Sequence[Run]) -> "Program":
        """The program of runs that the planner put together (see stablelearn.engine.plan)."""
        config = runs[0].config
        models = {compute_model(r.model) for r in runs}
        packing = None
        model = compute_model(runs[0].model)
        if len(models) > 1:
            model, packing = packed_model(runs)
        return cls(
            model,
            optimizer_structure([r.optimizer for r in runs]),
            config.loss,
            config.metrics,
            config.bce_form,
            config.validation,
            config.telemetry,
            packing,
        )


def packed_model(runs: Sequence[Run]) -> tuple[MLP, Packing]:
    """The slot model and activation set of runs whose models differ in depth or hidden
    activations only (stablelearn.engine.plan decides which runs these are)."""
    first = runs[0].model
    width, use_bias = first.hidden[0].units, first.hidden[0].use_bias
    slots = max(r.model.depth for r in runs)
    activations = tuple(sorted({layer.activation for r in runs for layer in r.model.hidden}))
    hidden = (Dense(width, "linear", use_bias=use_bias),) * slots
    output = Dense(first.output.units, first.output.activation, use_bias=first.output.use_bias)
    # scanning compiles one layer for any depth: at 30 slots it compiled in 3.4 s against
    # 5.5 s unrolled and trained as fast; at 10 slots it trained 25% slower
    # (benchmarks/bench_engine.py --packing)
    return MLP(first.input_dim, hidden, output), Packing(activations, slots > SCAN_SLOTS)


def model_slots(model: MLP, slots: int) -> tuple[int, ...]:
    """Where each of the model's layers sits among a packed program's slots (output last)."""
    return (*range(model.depth), slots)


def slot_layout(model: MLP, program: "Program") -> dict[str, np.ndarray]:
    """One model's per-slot data in a packed program: which hidden slots it uses and which
    activation (an index into Packing.activations) each applies."""
    slots = program.model.depth
    active = np.zeros(slots, bool)
    active[: model.depth] = True
    choice = np.zeros(slots, np.int32)
    for i, layer in enumerate(model.hidden):
        choice[i] = program.packing.activations.index(layer.activation)
    return {"active": active, "activation": choice}


def unpack_telemetry(
    telemetry: dict[str, np.ndarray], model_layers: Sequence[Sequence[int]]
) -> dict[str, np.ndarray]:
    """A packed program's per-slot telemetry [epochs, models, slots] as each model's own
    layers (hidden layers, then the output), padded with NaN after them: the slots a
    model does not use are not reported."""
    out = dict(telemetry)
    for key in ("grad_norm", "grad_abs_max", "update_ratio", "weight_norm"):
        out[key] = _gather_layers(telemetry[key], model_layers)
    hidden = [layers[:-1] for layers in model_layers]
    for key in ("dead_fraction", "saturated_fraction"):
        out[key] = _gather_layers(telemetry[key], hidden)
    return out


def _gather_layers(values: np.ndarray, layers: Sequence[Sequence[int]]) -> np.ndarray:
    out = np.full(values.shape, np.nan, values.dtype)
    for m, chosen in enumerate(layers):
        out[:, m, : len(chosen)] = values[:, m, list(chosen)]
    return out


def forward_layers(
    program: "Program",
    params: Params,
    x_t: jax.Array,
    layout: dict[str, jax.Array],
    state: State,
    weights: jax.Array | None = None,
    training: bool = False,
) -> tuple[list[jax.Array], list[jax.Array], State]:
    """Every slot's pre-activation and activation for one model, each [units, batch],
    and its moving statistics after the batch (see stablelearn.model.run_layers).

    Unpacked programs run the model as written (stablelearn.model.run_layers). In a
    packed one (never batch-normalized or residual, see plan.family_key) a masked slot
    passes its input through; `where` takes the chosen value exactly and sends no
    gradient to what it did not take."""
    if program.packing is None:
        return run_layers(program.model, params, x_t, state, weights, training)
    choices = [get_activation(name) for name in program.packing.activations]

    def hidden(p: dict[str, jax.Array], h: jax.Array, choice: jax.Array) -> tuple:
        z = p["kernel"] @ h
        if program.model.hidden[0].use_bias:
            z = z + p["bias"][:, None]
        applied = choices[0](z)
        for k, function in enumerate(choices[1:], start=1):
            applied = jnp.where(choice == k, function(z), applied)
        return z, applied

    # every packed model has a first hidden layer; the later slots all have one shape,
    # so deep programs run them as one scanned layer (compiling then does not grow
    # with the depth)
    def slot(h: jax.Array, xs: tuple) -> tuple:
        p, active, choice = xs
        z, applied = hidden(p, h, choice)
        h = jnp.where(active, applied, h)
        return h, (z, h)

    z, h = hidden(params[0], x_t, layout["activation"][0])
    pre_activations, activations = [z], [h]
    slots = program.model.depth
    if slots > 1 and not program.packing.scanned:
        for i in range(1, slots):
            h, (z, _) = slot(h, (params[i], layout["active"][i], layout["activation"][i]))
            pre_activations.append(z)
            activations.append(h)
    elif slots > 1:
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *params[1:slots])
        xs = (stacked, layout["active"][1:], layout["activation"][1:])
        h, (zs, hs) = jax.lax.scan(slot, h, xs)
        pre_activations += [zs[i] for i in range(slots - 1)]
        activations += [hs[i] for i in range(slots - 1)]
    output = program.model.output
    z = params[slots]["kernel"] @ h
    if output.use_bias:
        z = z + params[slots]["bias"][:, None]
    pre_activations.append(z)
    activations.append(get_activation(output.activation)(z))
    return pre_activations, activations, state


def forward(
    program: "Program",
    params: Params,
    x_t: jax.Array,
    layout: dict[str, jax.Array],
    state: State,
    weights: jax.Array | None = None,
    training: bool = False,
) -> tuple[jax.Array, jax.Array, State]:
    """The output layer's (logits, output), and the moving statistics after the batch."""
    pre_activations, activations, state = forward_layers(
        program, params, x_t, layout, state, weights, training
    )
    return pre_activations[-1], activations[-1], state


def compute_model(model: MLP) -> MLP:
    """The model as the compiled program sees it: widths, activations, biases, batch
    norm and skip connections. Initializers only decide the starting weights, drawn
    outside the program, so models that differ in them alone share one compilation."""
    return MLP(
        model.input_dim,
        tuple(_compute_layer(layer) for layer in model.hidden),
        _compute_layer(model.output),
    )


def _compute_layer(layer: Dense) -> Dense:
    return Dense(
        layer.units,
        layer.activation,
        use_bias=layer.use_bias,
        batch_norm=layer.batch_norm,
        residual=layer.residual,
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
    program: Program,
    params: Params,
    state: State,
    layout: dict[str, jax.Array],
    x_t: jax.Array,
    y: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Loss and metrics of one model on a whole split, plus its predictions: Keras'
    `evaluate`, so batch norm uses the moving statistics."""
    logits, output, _ = forward(program, params, x_t, layout, state)
    weights = jnp.ones_like(y)
    per_row = losses.per_example_loss(program.loss, logits, output, y, program.bce_form)
    scores = [losses.weighted_mean(per_row, weights)]
    for metric in program.metrics:
        mean = losses.weighted_mean(losses.per_example_metric(metric, output, y), weights)
        scores.append(losses.finish_metric(metric, mean))
    return jnp.stack(scores), _predictions(output)


def _unit_stats(
    program: Program, params: Params, state: State, layout: dict[str, jax.Array], x_t: jax.Array
) -> dict[str, jax.Array]:
    """Dead and saturated fractions of each hidden slot on inputs x_t [features, rows],
    as the model predicts them (batch norm with the moving statistics; a residual
    layer's activation before its input is added)."""
    if not program.model.hidden:
        return {"dead_fraction": jnp.zeros((0,)), "saturated_fraction": jnp.zeros((0,))}
    _, activations, _ = forward_layers(program, params, x_t, layout, state)
    hidden = activations[:-1]
    if program.packing is None:
        kinds = [activation_kind(layer.activation) for layer in program.model.hidden]
        return telemetry.unit_fractions(hidden, kinds)
    # each slot's statistics under every activation family present, then the model's own
    families = sorted({activation_kind(name) for name in program.packing.activations})
    family_of = jnp.asarray(
        [families.index(activation_kind(name)) for name in program.packing.activations]
    )
    per_family = [telemetry.unit_fractions(hidden, [f] * len(hidden)) for f in families]
    chosen = family_of[layout["activation"]]  # [slots]
    out = {}
    for key in ("dead_fraction", "saturated_fraction"):
        stacked = jnp.stack([stats[key] for stats in per_family])  # [families, slots]
        out[key] = stacked[chosen, jnp.arange(len(hidden))]
    return out


def _unused_slots_kept(updates: Params, layout: dict[str, jax.Array]) -> Params:
    """Zero the updates of the slots a packed model does not use. Their gradient is
    zero, which leaves them at zero under SGD, and under Adam and RMSprop unless
    epsilon is 0, where 0 / 0 would make them NaN."""
    slots = len(updates) - 1  # the output layer is always used
    return tuple(
        jax.tree.map(lambda u, i=i: jnp.where(layout["active"][i], u, 0.0), layer)
        if 0 < i < slots
        else layer
        for i, layer in enumerate(updates)
    )


def _origin_flags(
    program: Program,
    layout: dict[str, jax.Array],
    forward_bad: jax.Array,
    state: State,
    loss: jax.Array,
    grads: Params,
    new_params: Params,
) -> dict[str, jax.Array]:
    """One model's step, per layer (slot): NaN/Inf in its forward values (or the moving
    statistics its batch normalization updated), its raw gradient, its weights after
    the update; and in the loss (see telemetry.origin). Slots a packed model does not
    use are never reported: they pass the activations through, and an overflowing input
    times their zero weights reads NaN there before the layer that overflowed is seen."""
    flags = {
        "forward": forward_bad | telemetry.layer_bad(state),
        "loss": ~jnp.isfinite(loss),
        "gradient": telemetry.layer_bad(grads),
        "update": telemetry.layer_bad(new_params),
    }
    if program.packing is not None:
        used = jnp.concatenate([layout["active"], jnp.ones((1,), bool)])
        flags |= {k: v & used for k, v in flags.items() if k != "loss"}
    return flags


def _origin_values(
    activations: list[jax.Array],
    state: State,
    loss: jax.Array,
    grads: Params,
    new_params: Params,
) -> tuple[jax.Array, tuple]:
    """One model's step: whether any of `_origin_flags` can be set, and the values it
    reads, for `_note_origin`.

    The test reads the loss, the moving statistics, the raw gradients and the updated
    weights, not the layers' outputs: reading those was most of the flags' cost (x1.4
    train time on the lesson's small models), and a non-finite output on a real row
    always shows in what is read. The output layer's: every loss of stablelearn.losses
    is then NaN/Inf for that row (NaN propagates through log_softmax, max and clip;
    an infinite softmax logit makes log_softmax inf - inf). A hidden layer's (or
    slot's): it is, unchanged through unused slots or plus a residual input, the input
    h of the next used layer, whose kernel gradient delta @ h.T sums delta * inf or
    delta * NaN over that row, NaN or +-inf whatever delta is (0 * inf is NaN)."""
    suspect = telemetry.maybe_nonfinite((loss, state, grads, new_params))
    return suspect, (activations, state, loss, grads, new_params)


def _note_origin(
    program: Program,
    acc: dict[str, Any],
    suspect: jax.Array,
    values: tuple,
    layout: dict[str, jax.Array],
    weights: jax.Array,
    step: jax.Array,
) -> dict[str, Any]:
    """Every model's step (leading model axis): note where a model's first NaN/Inf of
    the epoch came from (telemetry.origin on `_origin_flags`).

    Each step only tests `suspect` (`_origin_values`); the flags, and the layer's and
    kind's selection, are computed for every model only in the steps where some model
    whose epoch has no origin yet may have a NaN/Inf: `cond` outside the models' vmap,
    so the other steps skip them (inside it, cond would become a select that computes
    both sides). A model that stays NaN triggers it once per epoch, at the epoch's
    first step. Exact: the same flags from the same values, computed whenever one of
    them can be set. Not in batch-normalized programs: there the cond's operands
    changed XLA's fusion of the step (trained numbers moved by ulps), so their steps
    compute the flags every step, as `telemetry.accumulate` with flags."""
    keys = ("first_bad", "bad_layer", "bad_kind")

    def locate():
        def one(values, layout):
            activations, state, loss, grads, new_params = values
            forward_bad = telemetry.forward_bad(activations, weights)
            flags = _origin_flags(program, layout, forward_bad, state, loss, grads, new_params)
            return telemetry.origin(flags)

        kind, layer = jax.vmap(one)(values, layout)
        noted = telemetry.note_origin(acc, step, kind, layer)
        return tuple(noted[k] for k in keys)

    new = suspect & (acc["first_bad"] < 0)
    noted = jax.lax.cond(jnp.any(new), locate, lambda: tuple(acc[k] for k in keys))
    return {**acc, **dict(zip(keys, noted, strict=True))}


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _stages(program: Program, hp: dict[str, jax.Array]) -> tuple[optax.GradientTransformation, ...]:
    n_layers = len(program.model.layers)
    tensors = (*TENSORS, *BATCH_NORM_TENSORS) if program.model.has_state else TENSORS
    clipping = build_clipping(program.optimizer, hp, n_layers, tensors)
    return clipping, build_optimizer(program.optimizer, hp)


def initial_opt_state(program: Program, params: Params, hyperparameters: dict[str, jax.Array]):
    """Every model's fresh clipping and optimizer state (leading model axis)."""
    return jax.vmap(lambda p, hp: tuple(stage.init(p) for stage in _stages(program, hp)))(
        params, hyperparameters
    )


def _nan_like(tree: Any) -> Any:
    """NaN (floats) or zero arrays shaped like `tree`, a pytree of shapes."""
    return jax.tree.map(
        lambda a: jnp.full(
            a.shape, jnp.nan if jnp.issubdtype(a.dtype, jnp.floating) else 0, a.dtype
        ),
        tree,
    )


def _traced_once(fun: Any) -> tuple[Any, Any]:
    """`fun` (no arguments) traced now, as a function that replays its trace, and the
    shapes of its outputs. A cond whose other branch needs those shapes (NaN of them)
    took them with eval_shape, which traced `fun` a second time: replaying the first
    trace is cheaper (a sixth of a cold `reproduce`'s tracing, which holds the GIL)."""
    from jax.extend.core import jaxpr_as_fun

    closed, shapes = jax.make_jaxpr(fun, return_shape=True)()
    replay = jaxpr_as_fun(closed)
    structure = jax.tree.structure(shapes)
    return lambda: jax.tree.unflatten(structure, replay()), shapes


def _or_nan(pred: jax.Array, fun: Any) -> Any:
    """fun() where `pred`, else NaN (floats) or zeros of its shapes."""
    taken, shapes = _traced_once(fun)
    return jax.lax.cond(pred, taken, lambda: _nan_like(shapes))


def train_program(
    program: Program,
    params: Params,
    state: State,
    opt_state: Any,
    hyperparameters: dict[str, jax.Array],
    layout: dict[str, jax.Array],
    variant: jax.Array,
    train_x: jax.Array,
    train_y: jax.Array,
    test_x_t: jax.Array,
    test_y: jax.Array,
    batch_rows: jax.Array,
    batch_weights: jax.Array,
    first_epoch: jax.Array,
    n_epochs: jax.Array,
) -> dict[str, Any]:
    """One chunk of epochs of all models: epochs first_epoch .. first_epoch + C - 1 of
    n_epochs, where C is batch_rows' leading axis. Shapes: M models, V data variants,
    S steps.

    Training in chunks lets the caller stop between them (Ctrl-C) and draw batches a
    chunk at a time; one compiled chunk serves every chunk of a run, the last one
    padded: epochs at or past n_epochs leave the state as it is. The first chunk
    (first_epoch 0) ignores `opt_state` and starts fresh; the chunk that reaches
    n_epochs also evaluates the final weights.

    params, state (moving statistics, see stablelearn.model), opt_state,
    hyperparameters and layout (packed programs: each model's slots, see slot_layout;
    else empty) lead with [M]; variant [M] picks each model's data;
    train_x [V, N, F]; train_y [V, N]; test_x_t [V, F, Nt]; test_y [V, Nt];
    batch_rows [C, S, M, B] row indices; batch_weights [S, B] (0 marks padding).
    """
    n_train = train_y.shape[1]
    train_x_t = jnp.swapaxes(train_x, 1, 2)

    def model_step(params, state, opt_state, acc, hp, layout, v, rows, weights, step):
        # one gather of whole rows; indexing the variant first would copy its full split
        x_t = train_x[v, rows].T
        y = train_y[v, rows]

        def batch_loss(p):
            zs, activations, new_state = forward_layers(
                program, p, x_t, layout, state, weights, training=True
            )
            logits, output = zs[-1], activations[-1]
            per_row = losses.per_example_loss(program.loss, logits, output, y, program.bce_form)
            # telemetry reads the activations (never differentiated) for the NaN origin
            return losses.weighted_mean(per_row, weights), (output, new_state, activations)

        # the moving statistics come out as data: the gradient is the parameters' alone
        (loss, (output, new_state, activations)), grads = jax.value_and_grad(
            batch_loss, has_aux=True
        )(params)
        clip, optimizer = _stages(program, hp)
        clipped, clip_state = clip.update(grads, opt_state[0])
        updates, optimizer_state = optimizer.update(clipped, opt_state[1], params)
        if program.packing is not None:
            updates = _unused_slots_kept(updates, layout)
        new_params = optax.apply_updates(params, updates)
        batch_size = jnp.sum(weights)
        sums = [loss * batch_size]
        sums += [
            jnp.sum(losses.per_example_metric(m, output, y) * weights) for m in program.metrics
        ]
        probe = ()
        if program.telemetry and program.model.has_state:
            # batch-normalized: the flags every step (see _note_origin)
            seen = clipped if program.optimizer.clip_modes else None
            forward_bad = telemetry.forward_bad(activations, weights)
            flags = _origin_flags(program, layout, forward_bad, new_state, loss, grads, new_params)
            acc = telemetry.accumulate(acc, grads, seen, loss, step, flags)
        elif program.telemetry:
            seen = clipped if program.optimizer.clip_modes else None
            acc = telemetry.accumulate_gradients(acc, grads, seen, loss)
            probe = _origin_values(activations, new_state, loss, grads, new_params)
        new_opt_state = (clip_state, optimizer_state)
        return new_params, new_state, new_opt_state, acc, jnp.stack(sums), probe

    steps = jax.vmap(model_step, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None, None))
    evaluate = jax.vmap(
        lambda p, s, lay, v, x_t, y: _evaluate(program, p, s, lay, x_t[v], y[v]),
        in_axes=(0, 0, 0, 0, None, None),
    )
    activations = jax.vmap(lambda p, s, lay, v: _unit_stats(program, p, s, lay, train_x_t[v]))
    n_steps = batch_weights.shape[0]
    epoch_stats = jax.vmap(lambda acc, start, end: telemetry.epoch_stats(acc, start, end, n_steps))

    def step(carry, xs):
        params, state, opt_state, acc = carry
        rows, weights, index = xs
        params, state, opt_state, acc, sums, probe = steps(
            params, state, opt_state, acc, hyperparameters, layout, variant, rows, weights, index
        )
        if probe:
            acc = _note_origin(program, acc, *probe, layout, weights, index)
        return (params, state, opt_state, acc), sums

    # dead/saturated units need a forward pass over the whole training split: it is
    # taken every `stride` epochs (ACTIVATION_SAMPLES samples at most) and on the last
    stride = jnp.maximum(1, -(-n_epochs // ACTIVATION_SAMPLES))

    def unit_stats(params, state, index):
        def measure():
            return activations(params, state, layout, variant)

        due = (index % stride == stride - 1) | (index == n_epochs - 1) | (stride == 1)
        return _or_nan(due, measure)

    def train_epoch(carry, rows, index):
        start, state, opt_state = carry
        acc = jax.vmap(telemetry.init_accumulator)(start) if program.telemetry else ()
        xs = (rows, batch_weights, jnp.arange(n_steps))
        (params, state, opt_state, acc), sums = jax.lax.scan(
            step, (start, state, opt_state, acc), xs
        )
        means = sums.sum(axis=0) / n_train
        scores = [means[:, 0]]
        scores += [losses.finish_metric(m, means[:, i + 1]) for i, m in enumerate(program.metrics)]
        out = {"train": jnp.stack(scores, axis=1)}
        out["finite"] = jax.vmap(_all_finite)((params, state)) & jnp.isfinite(means[:, 0])
        if program.validation:
            out["val"], _ = evaluate(params, state, layout, variant, test_x_t, test_y)
        if program.telemetry:
            out["telemetry"] = {
                **epoch_stats(acc, start, params),
                **unit_stats(params, state, index),
            }
        return (params, state, opt_state), out

    def epoch(carry, xs):
        rows, index = xs
        run, shapes = _traced_once(lambda: train_epoch(carry, rows, index))
        return jax.lax.cond(index < n_epochs, run, lambda: (carry, _nan_like(shapes[1])))

    opt_state = jax.lax.cond(
        first_epoch == 0,
        lambda: initial_opt_state(program, params, hyperparameters),
        lambda: opt_state,
    )
    xs = (batch_rows, first_epoch + jnp.arange(batch_rows.shape[0]))
    (params, state, opt_state), history = jax.lax.scan(epoch, (params, state, opt_state), xs)

    def final_scores():
        train_scores, train_pred = evaluate(params, state, layout, variant, train_x_t, train_y)
        test_scores, test_pred = evaluate(params, state, layout, variant, test_x_t, test_y)
        return {
            "train_scores": train_scores,
            "test_scores": test_scores,
            "train_pred": train_pred,
            "test_pred": test_pred,
        }

    last = first_epoch + batch_rows.shape[0] >= n_epochs
    scores = _or_nan(last, final_scores)
    return {"history": history, "params": params, "state": state, "opt_state": opt_state, **scores}


jitted_train = jax.jit(train_program, static_argnums=0)
