"""Run experiments and write their run folder as results arrive.

Each experiment's files (figures, summary.json, ...) are written on a writer thread
as soon as it finishes training, so matplotlib works while XLA trains the next one.
Everything goes into a temporary folder that is renamed into place at the end.
"""

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stablelearn.experiments.outputs import write_experiment_files
from stablelearn.experiments.report import experiment_section
from stablelearn.experiments.runner import ExperimentResult, run_experiments
from stablelearn.experiments.spec import Experiment
from stablelearn.io import atomic_folder
from stablelearn.lesson.claims import ClaimResult, check_claims
from stablelearn.lesson.report import write_index
from stablelearn.report import Section


def _write_experiment(result: ExperimentResult, folder: Path) -> tuple[dict[str, Any], Section]:
    """The experiment's files and its report section (its charts built while the next
    experiment trains)."""
    summary = write_experiment_files(result, folder)
    return summary, experiment_section(result, summary, folder)


def run_and_write(
    experiments: Sequence[Experiment],
    target: Path,
    on_done: Callable[[ExperimentResult], None] | None = None,
    combined: bool = True,
) -> tuple[list[ExperimentResult], list[ClaimResult], float]:
    """Run `experiments`, check the lesson's claims, write the run folder atomically.

    With `combined`, each experiment gets a subfolder named by its id and the folder
    gets claims.json, index.json and one combined report; otherwise the single
    experiment's files go straight into `target`.
    """
    start = time.perf_counter()
    with atomic_folder(target) as folder, ThreadPoolExecutor(max_workers=1) as writer:
        written: dict[str, Future[tuple[dict[str, Any], Section]]] = {}

        def finished(result: ExperimentResult) -> None:
            subfolder = folder / result.experiment.id if combined else folder
            written[result.experiment.id] = writer.submit(_write_experiment, result, subfolder)
            if on_done is not None:
                on_done(result)

        results = run_experiments(experiments, on_done=finished)
        claims = check_claims({r.experiment.id: r for r in results})
        done = [written[r.experiment.id].result() for r in results]
        wall_s = time.perf_counter() - start
        summaries, sections = [d[0] for d in done], [d[1] for d in done]
        write_index(folder, results, summaries, claims, wall_s, combined, sections)
    return results, claims, wall_s
