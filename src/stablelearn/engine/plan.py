"""Which runs share one compiled program: the planner.

Runs with equal shapes and code paths (`group_key`) always share a program. Runs whose
models differ only in depth and hidden activations (hidden layers of one width, the
lesson's way of building deeper networks, without batch norm or skip connections) can
also share one, packed (see
program.Packing): a shallow model then computes the deeper model's masked layers too,
which costs training time, while every program saved is one compilation saved. The
planner merges such groups, deepest first, while its cost model says the compilation
saved outweighs the padding added.

The cost model's constants were measured on a 2-core CPU; only their ratios matter.
Training dominates long runs (a shallow model padded to a deep program pays for every
padded layer at every step, and a program selecting among activations computes each of
them), so long sweeps pack only neighbouring depths of one activation, while short runs
pack everything.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from stablelearn.engine.program import compute_model, group_key
from stablelearn.optim import optimizer_structure
from stablelearn.runs import Run

# Seconds on a 2-core CPU, measured with benchmarks/bench_engine.py --packing (5-unit
# ReLU layers on the circles problem, 20 models, batch 32): compiling an unpacked
# program took 1.15 s at 10 layers and 2.5 s at 30; packed, 1.8 s and 3.8 s; one
# model-layer-step 1.1 us unpacked, 4% (10 slots) to 30% (30 slots) more packed.
COMPILE_S = 0.45  # compiling one program, before its layers
COMPILE_LAYER_S = 0.07  # per layer
# per batch-normalized layer, on top: 30 layers of 5 units, 10 models compiled in 7.6 s
# with batch norm and 3.2 s without on the 2-core development machine
BATCH_NORM_COMPILE_S = 0.15
PACKED_COMPILE_LAYER_S = 0.04  # extra per slot of a packed program
ACTIVATION_COMPILE_S = 0.2  # per extra activation a packed program selects among
MODEL_LAYER_STEP_S = 6.8e-9  # one model, layer and step, per unit x batch row
PACKED_TRAIN_FACTOR = 1.3  # masking slots costs speed (measured 1.04-1.3; the full depth
# sweep, 500 epochs, ran 5% slower with 1.15, which packed 4 x 4 shallow depths)
ACTIVATION_TRAIN_FACTOR = 0.1  # per extra activation (each is computed for every model)


@dataclass(frozen=True)
class _Candidate:
    """Runs that could train as one program, and what the cost model needs of them."""

    indices: tuple[int, ...]
    architectures: frozenset[tuple[int, frozenset[str]]]  # (depth, activations) present

    @property
    def depth(self) -> int:
        """The deepest model's hidden layers."""
        return max(depth for depth, _ in self.architectures)

    @property
    def activations(self) -> frozenset[str]:
        return frozenset().union(*(names for _, names in self.architectures))


def family_key(run: Run) -> tuple | None:
    """Runs with equal family keys can be packed into one program; None if this run's
    model cannot be (no hidden layer, hidden layers of different widths or biases, or
    batch norm or skip connections: those train in programs of their own, one per
    architecture; the sweeps that use them vary few depths)."""
    model = compute_model(run.model)
    hidden = model.hidden
    if not hidden or len({(layer.units, layer.use_bias) for layer in hidden}) > 1:
        return None
    if any(layer.batch_norm or layer.residual for layer in hidden):
        return None
    structure = optimizer_structure([run.optimizer])
    shapes = (run.data.train_x.shape, run.data.test_x.shape)
    width = (hidden[0].units, hidden[0].use_bias)
    return (model.input_dim, width, model.output, structure.kind, structure.nesterov,
            run.config, shapes)  # fmt: skip


@dataclass(frozen=True)
class _Shape:
    """What the cost of one family's programs depends on besides its models."""

    steps: int  # optimizer steps per model
    units: int
    batch: int

    @classmethod
    def of(cls, run: Run) -> "_Shape":
        config = run.config
        steps = -(-len(run.data.train_y) // config.batch_size) * config.epochs
        return cls(steps, compute_model(run.model).hidden[0].units, config.batch_size)


def program_cost(shape: _Shape, models: int, depth: int, activations: int, packed: bool) -> float:
    """Estimated compile + train seconds of one program of `models` models whose deepest
    has `depth` hidden layers (packed: selecting among `activations` activations)."""
    layers = depth + 1
    compile_s, factor = COMPILE_S + COMPILE_LAYER_S * layers, 1.0
    if packed:
        compile_s += PACKED_COMPILE_LAYER_S * layers + ACTIVATION_COMPILE_S * (activations - 1)
        factor = PACKED_TRAIN_FACTOR * (1 + ACTIVATION_TRAIN_FACTOR * (activations - 1))
    per_model = shape.steps * layers * MODEL_LAYER_STEP_S * shape.units * shape.batch
    return compile_s + models * per_model * factor


def _cost(shape: _Shape, candidate: _Candidate) -> float:
    packed = len(candidate.architectures) > 1
    return program_cost(
        shape, len(candidate.indices), candidate.depth, len(candidate.activations), packed
    )


def _together(a: _Candidate, b: _Candidate) -> _Candidate:
    return _Candidate(a.indices + b.indices, a.architectures | b.architectures)


def _merge(shape: _Shape, candidates: list[_Candidate]) -> list[_Candidate]:
    """Greedy packing, deepest first: each group joins the program where the cost model
    says joining saves the most, or starts its own where no join saves anything."""
    merged: list[_Candidate] = []
    for candidate in sorted(candidates, key=lambda c: -c.depth):
        alone = _cost(shape, candidate)
        savings = [
            _cost(shape, program) + alone - _cost(shape, _together(program, candidate))
            for program in merged
        ]
        best = max(range(len(merged)), key=savings.__getitem__, default=None)
        if best is not None and savings[best] > 0:
            merged[best] = _together(merged[best], candidate)
        else:
            merged.append(candidate)
    return merged


def plan_programs(runs: Sequence[Run]) -> list[list[int]]:
    """Indices of the runs that train together, one list per compiled program, each in
    run order; groups come in the order of their first run."""
    exact: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        exact.setdefault(group_key(run), []).append(i)
    families: dict[tuple, list[_Candidate]] = {}
    planned: list[list[int]] = []
    for indices in exact.values():
        run = runs[indices[0]]
        key = family_key(run)
        if key is None:
            planned.append(indices)
            continue
        model = compute_model(run.model)
        activations = frozenset(layer.activation for layer in model.hidden)
        candidate = _Candidate(tuple(indices), frozenset({(model.depth, activations)}))
        families.setdefault(key, []).append(candidate)
    for candidates in families.values():
        shape = _Shape.of(runs[candidates[0].indices[0]])
        planned += [sorted(c.indices) for c in _merge(shape, candidates)]
    return sorted(planned, key=lambda indices: indices[0])
