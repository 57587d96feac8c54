"""The training engine: an ensemble of small MLPs trained in one compiled program.

Every model of an ensemble shares the array shapes (architecture, batch size, split
sizes); whatever else differs per model (seed, data variant, learning rate, momentum,
clip thresholds) is an array with a leading model axis. One `jit`-compiled program
then runs all epochs with `lax.scan` and all models with `vmap`.

Keras `fit()` semantics (../shared/DESIGN.md):
- Minibatches of `batch_size` rows from a fresh permutation each epoch; the last batch
  of an epoch is smaller (500 rows -> 15 x 32 + 1 x 20). The fixed batch shape that
  compilation needs is kept by padding that batch with zero-weight rows.
- The epoch's `loss` is the batch-size-weighted mean of its batch losses (each taken
  before that batch's update), as Keras' progress bar and History report it;
  `val_loss` is computed on the whole validation split after the epoch.
Speed choices (measured, see benchmarks/): per-epoch permutations are drawn with NumPy
(sorting on XLA's CPU backend is slow) from one Generator per model seed and passed in
as row indices; activations are [units, batch] per model.

Modules: program (what is compiled, packed programs included), plan (which runs share
a program), weights (initial parameters), batches (minibatch schedules), compilation
(the program cache), train (preparation, execution).
"""

from stablelearn.engine.batches import batch_schedule, row_weights
from stablelearn.engine.compilation import MAX_CACHED_PROGRAMS, release_compiled
from stablelearn.engine.plan import plan_programs
from stablelearn.engine.program import Program, compute_model, group_key
from stablelearn.engine.train import Compiled, Stopped, execute, fit, prepare_training, train
from stablelearn.engine.weights import init_ensemble
from stablelearn.results import Timing
from stablelearn.runs import MAX_SEED, Run, TrainConfig, check_model_for_data

__all__ = [
    "MAX_CACHED_PROGRAMS",
    "MAX_SEED",
    "Compiled",
    "Program",
    "Run",
    "Stopped",
    "Timing",
    "TrainConfig",
    "batch_schedule",
    "check_model_for_data",
    "compute_model",
    "execute",
    "fit",
    "group_key",
    "init_ensemble",
    "plan_programs",
    "prepare_training",
    "release_compiled",
    "row_weights",
    "train",
]
