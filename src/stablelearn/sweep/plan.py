"""A sweep's cells x repeats as engine runs, grouped as the engine compiles them.

Each group is the unit that is saved, skipped on resume, and sent to a Ray worker;
its id hashes everything that decides its numbers.
"""

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stablelearn.data import PreparedData
from stablelearn.engine import compute_model, plan_programs
from stablelearn.engine.budget import Estimate, estimate_groups, group_estimate
from stablelearn.experiments.overrides import variant_tables
from stablelearn.experiments.runner import model_cost
from stablelearn.experiments.spec import Experiment
from stablelearn.model import MLP
from stablelearn.runs import Run
from stablelearn.sweep.spec import Sweep, first_variant_data

MAX_GROUP_TRAIN_S = 120.0  # estimated training seconds of one group, at most (see split_long)
PACKED_PARTS = 2  # packed programs are split so that two groups at least train side by side
FORMAT_VERSION = 2  # bump when a saved group's content or meaning changes (2: packed groups)


@dataclass(frozen=True, eq=False)
class Group:
    """Runs that train as one compiled ensemble; `id` hashes everything that decides
    their numbers, so a saved group is reused only for exactly the same work."""

    id: str
    runs: tuple[Run, ...]
    cells: tuple[int, ...]  # per run, its cell index
    repeats: tuple[int, ...]  # per run, its repeat index

    @property
    def cost(self) -> float:
        """Relative training cost, as the runner orders experiments."""
        return runs_cost(self.runs)


def runs_cost(runs: Sequence[Run]) -> float:
    """Relative training cost of runs trained as one program: packed models compute
    the deepest one's layers."""
    deepest = max(runs, key=lambda r: r.model.depth)
    return len(runs) * model_cost(len(deepest.data.train_y), deepest.config, deepest.model)


def _data_key(experiment: Experiment) -> tuple:
    variant = experiment.variants[0]
    return (
        id(experiment.data),
        str(variant.input_scaler),
        str(variant.target_scaler),
        experiment.n_train,
        experiment.test_fraction,
        experiment.split_seed,
        experiment.fit_scalers_on,
    )


def _digest_data(data: PreparedData, cache: dict[int, str]) -> str:
    if id(data) not in cache:
        digest = hashlib.sha256()
        for array in (data.train_x, data.train_y, data.test_x, data.test_y):
            digest.update(np.ascontiguousarray(array).tobytes())
        cache[id(data)] = digest.hexdigest()
    return cache[id(data)]


def split_long(programs: list[list[int]], runs: list[Run]) -> list[list[int]]:
    """Split programs estimated to train longer than MAX_GROUP_TRAIN_S into equal runs
    of consecutive models: a group is the unit that a resumed sweep keeps and a Ray
    worker takes, so one of 100,000 models (36 minutes) would lose everything to an
    interrupt and leave other workers idle. The estimate comes from shapes, so the
    split does not depend on the machine; a model's numbers in a part equal those in
    the whole to float rounding (as for split_packed)."""
    split = []
    for program in programs:
        estimate = group_estimate([runs[i] for i in program])
        parts = min(len(program), math.ceil(estimate.train_s / MAX_GROUP_TRAIN_S))
        if parts <= 1:
            split.append(program)
            continue
        split += [list(part) for part in np.array_split(np.asarray(program), parts)]
    return [[int(i) for i in program] for program in split]


def split_packed(programs: list[list[int]], runs: list[Run], parts: int) -> list[list[int]]:
    """Split the costliest packed programs in two until there are `parts` programs, so
    that packing does not leave a worker idle. Only packed programs are split (an
    unpacked group keeps exactly the numbers it had before packing existed), and each
    architecture's runs are dealt alternately to the halves, so both halves keep every
    architecture that has two runs or more and then share one compiled program. `parts`
    is the number of workers (at least 2): a model's numbers in a part equal those in
    the whole to float rounding (the model axis is shorter), not always bit for bit, so
    machines with different worker counts can differ by that much."""

    def architecture(i: int) -> MLP:
        return compute_model(runs[i].model)

    programs = [list(p) for p in programs]
    while len(programs) < parts:
        # splittable: several architectures, one of them with two runs or more (with
        # one run each, the second half would be empty)
        packed = [p for p in programs if 1 < len({architecture(i) for i in p}) < len(p)]
        if not packed:
            break
        largest = max(packed, key=lambda p: runs_cost([runs[i] for i in p]))
        by_architecture: dict[MLP, list[int]] = {}
        for i in largest:
            by_architecture.setdefault(architecture(i), []).append(i)
        first = sorted(i for members in by_architecture.values() for i in members[0::2])
        second = sorted(i for members in by_architecture.values() for i in members[1::2])
        programs.remove(largest)
        programs += [first, second]
    return programs


def plan_groups(sweep: Sweep, parts: int = PACKED_PARTS) -> list[Group]:
    """Every cell x repeat as an engine Run, grouped as the engine would compile them
    (packed programs split until there are `parts` groups, see split_packed; the
    workers that will train them, see stablelearn.sweep.run.sweep_parts), costliest
    group first. Cells with the same scaled data share one PreparedData."""
    prepared: dict[tuple, PreparedData] = {}
    runs: list[tuple[Run, int, int]] = []
    for cell in sweep.cells:
        experiment = cell.experiment
        key = _data_key(experiment)
        if key not in prepared:
            prepared[key] = first_variant_data(experiment)
        for repeat in range(experiment.repeats):
            run = Run(
                cell.variant.model,
                cell.variant.optimizer,
                prepared[key],
                experiment.seed + repeat,
                experiment.config,
                {"cell": cell.label, "repeat": repeat},
            )
            runs.append((run, cell.index, repeat))
    all_runs = [entry[0] for entry in runs]
    programs = split_packed(plan_programs(all_runs), all_runs, max(PACKED_PARTS, parts))
    programs = split_long(programs, all_runs)
    digests: dict[int, str] = {}
    tables = [variant_tables(cell.variant) for cell in sweep.cells]
    groups = []
    for indices in programs:
        members = [runs[i] for i in indices]
        identity = [
            {
                "cell": sweep.cells[c].label,
                "tables": tables[c],
                "config": dataclasses.asdict(run.config),
                "seed": int(run.seed),
                "data": _digest_data(run.data, digests),
            }
            for run, c, _ in members
        ]
        text = json.dumps([FORMAT_VERSION, identity], sort_keys=True, default=str)
        groups.append(
            Group(
                id=hashlib.sha256(text.encode()).hexdigest()[:16],
                runs=tuple(m[0] for m in members),
                cells=tuple(m[1] for m in members),
                repeats=tuple(m[2] for m in members),
            )
        )
    return sorted(groups, key=lambda g: -g.cost)


def sweep_estimate(groups: Sequence[Group], workers: int = 1) -> Estimate:
    """What training these groups will cost (stablelearn.engine.budget) with `workers`
    groups training at once."""
    total = estimate_groups([group.runs for group in groups])
    return total.in_parallel(min(workers, len(groups)) if groups else 1)
