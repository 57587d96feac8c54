"""Compile ahead: prepare the next items on a second thread while the current one trains.

XLA compiles and runs outside the GIL, so on two cores compilation (about half of a
cold run) overlaps with training. A second compile thread was measured slower (35 s vs
29 s for the lesson's catalog): compiles then fight for the cores. Experiments and
sweeps both schedule their work through `compile_ahead`.
"""

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from stablelearn import interrupts

Item = TypeVar("Item")
Ready = TypeVar("Ready")
Done = TypeVar("Done")


def compile_ahead(
    items: Sequence[Item],
    prepare: Callable[[Item], Ready],
    run: Callable[[Item, Ready], Done],
    on_done: Callable[[Item, Done], None],
    lookahead: int | None = None,
) -> None:
    """For each item in order: `prepare` it on one background thread (at most
    `lookahead` items ahead of the one running; None: no limit), then `run` it on the
    calling thread and pass the outcome to `on_done`. On an error or an interrupt the
    preparations not yet started are cancelled and the one running is abandoned (it
    finishes on its thread; nothing waits for it)."""
    pending: deque[tuple[Item, Future[Ready]]] = deque()
    remaining = iter(items)
    limit = len(items) if lookahead is None else lookahead
    compiler = ThreadPoolExecutor(max_workers=1)

    def submit_next() -> None:
        item = next(remaining, None)
        if item is not None:
            pending.append((item, compiler.submit(prepare, item)))

    try:
        for _ in range(max(1, limit)):
            submit_next()
        while pending:
            item, future = pending.popleft()
            ready = interrupts.result(future)
            submit_next()
            on_done(item, run(item, ready))
    except BaseException:
        # an interrupt must not wait for a compilation in progress (XLA cannot stop
        # one): the thread finishes it alone and its result is dropped
        compiler.shutdown(wait=False, cancel_futures=True)
        raise
    compiler.shutdown()
