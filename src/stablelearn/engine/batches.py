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


class BatchStream:
    """A group's minibatch rows drawn a chunk of epochs at a time, so that long runs
    never hold their whole schedule (100,000 epochs of 90 models is 14 GB of indices).

    Each model draws its epoch permutations from its own NumPy Generator, so a model's
    batches depend on its seed alone, never on the ensemble it is trained in or on how
    its epochs are chunked.
    """

    def __init__(
        self, seeds: Sequence[int], n_rows: int, batch_size: int, shuffle: bool = True
    ) -> None:
        self.weights = row_weights(n_rows, batch_size)
        self.n_rows = n_rows
        self.n_models = len(seeds)
        self._generators = (
            [np.random.default_rng([int(seed), _SHUFFLE_STREAM]) for seed in seeds]
            if shuffle
            else None
        )

    def next(self, epochs: int) -> np.ndarray:
        """Row indices [epochs, steps, models, batch] of the next `epochs` epochs."""
        steps, batch = self.weights.shape
        order = np.arange(self.n_rows, dtype=np.int32)
        rows = np.zeros((self.n_models, epochs, steps * batch), np.int32)
        if self._generators is None:
            rows[:, :, : self.n_rows] = order
        else:
            epoch_orders = np.broadcast_to(order, (epochs, self.n_rows))
            for m, rng in enumerate(self._generators):
                rows[m, :, : self.n_rows] = rng.permuted(epoch_orders, axis=1)
        return rows.reshape(self.n_models, epochs, steps, batch).transpose(1, 2, 0, 3)


def batch_schedule(
    seeds: Sequence[int], n_rows: int, epochs: int, batch_size: int, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices [epochs, steps, models, batch] and row weights [steps, batch] of a
    whole run (see BatchStream)."""
    stream = BatchStream(seeds, n_rows, batch_size, shuffle)
    return stream.next(epochs), stream.weights
