"""Minibatch schedules as Keras' `fit()` draws them, fixed-shape for compilation."""

import math
from collections.abc import Sequence

import numpy as np

_SHUFFLE_STREAM = 0x5EED  # keeps the shuffle stream apart from any other use of a seed


def row_weights(n_rows: int, batch_size: int) -> np.ndarray:
    """Row weights [steps, batch]: 1 for real rows, 0 for the padding of the last batch
    (Keras keeps a smaller last batch; compiled shapes need a fixed one)."""
    batch = min(batch_size, n_rows)
    steps = math.ceil(n_rows / batch)
    return (np.arange(steps * batch) < n_rows).astype(np.float32).reshape(steps, batch)


def batch_schedule(
    seeds: Sequence[int], n_rows: int, epochs: int, batch_size: int, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices [epochs, steps, models, batch] and row weights [steps, batch].

    Each model draws its epoch permutations from its own NumPy Generator, so a model's
    batches depend on its seed alone, never on the ensemble it is trained in.
    """
    weights = row_weights(n_rows, batch_size)
    steps, batch = weights.shape
    padded = steps * batch
    order = np.arange(n_rows, dtype=np.int32)
    rows = np.zeros((len(seeds), epochs, padded), np.int32)
    for m, seed in enumerate(seeds):
        if shuffle:
            rng = np.random.default_rng([int(seed), _SHUFFLE_STREAM])
            rows[m, :, :n_rows] = rng.permuted(np.broadcast_to(order, (epochs, n_rows)), axis=1)
        else:
            rows[m, :, :n_rows] = order
    return rows.reshape(len(seeds), epochs, steps, batch).transpose(1, 2, 0, 3), weights
