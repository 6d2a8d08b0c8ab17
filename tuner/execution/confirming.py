"""The confirm runs a search alone or report.py still needs, trained in this process or on the job pool, whose
processes run this module: `python -m tuner.execution.confirming RUN_DIR`; and those a chief lists for its workers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from tuner.confirm.selection import confirm_choice
from tuner.confirm.runs import Confirmation, confirmations, missing_jobs, read_confirm_run, train_confirm_run
from tuner.errors import TunerUsageError
from tuner.execution.pool import run_jobs, serve_jobs
from tuner.execution.processes import Placement
from tuner.rundir import Run, RunRecord, load_run_dataset
from tuner.search.progress import log_confirm_run
from tuner.trials.ranking import rank_trials
from tuner.trials.rows import TrialRow


def confirm_top(run: Run, record: RunRecord, ranked: Sequence[TrialRow], top: int, seeds: int,
                workers: str = "auto") -> list[Confirmation]:
    """Train the top `top` ranked configurations (and the champion: selection.confirm_choice) under `seeds` further
    seeds each, reusing saved runs.

    Args:
        run: the run directory.
        record: the run's settings.json.
        ranked: the rows of rank_trials, best first.
        top: how many configurations to confirm (K).
        seeds: further seeds per configuration (R).
        workers: `--workers`: auto, a number of processes of the job pool, or "0" to train in this process.
            Each run is seeded on its own, so its numbers do not depend on which process trained it.

    Returns:
        One Confirmation per confirmed configuration, in the order of `ranked`.
    """
    chosen = confirm_choice(ranked, top, record) if seeds > 0 else []
    jobs = missing_jobs(run, record, chosen, seeds)
    if jobs:
        placement = Placement.here(workers, len(jobs))
        # Loaded here even when the pool trains: a changed or missing dataset is refused before any process starts.
        dataset = load_run_dataset(record)
        if placement.count:
            command = [sys.executable, "-m", __name__, str(run.root)]  # this module, run as the pool's processes
            done = (saved for _, saved in run_jobs(command, jobs, placement, _describe, name="confirm",
                                                   redo="run report.py again to train the confirm runs that are missing"))
        else:
            done = (train_confirm_run(run, record, dataset, job) for job in jobs)
        for number, saved in enumerate(done, start=1):
            log_confirm_run(saved, number, len(jobs))
    return confirmations(run, record, chosen, seeds)


class ChiefConfirmRuns:
    """The confirm runs a chief hands its workers: --confirm K R of its top configurations, as report.py ranks them,
    listed once the trials are done; and each run a worker says it saved, read back and checked before it counts."""

    def __init__(self, run: Run, record: RunRecord) -> None:
        self.run, self.record = run, record
        self._rows: dict[str, TrialRow] = {}

    def jobs(self) -> list[dict[str, Any]]:
        """The runs not saved yet (a resumed search trains only what is missing).

        Raises:
            TunerUsageError: a saved confirm run is damaged.
        """
        top, seeds = self.record.search.confirm_counts
        chosen = confirm_choice(rank_trials(self.run)[0], top, self.record)
        self._rows = {row.trial: row for row in chosen}
        return missing_jobs(self.run, self.record, chosen, seeds)

    def saved_problem(self, job: dict[str, Any]) -> str | None:
        """Why `job`'s saved record does not count as the run done (missing, damaged, another configuration's),
        or None."""
        row = self._rows.get(job["trial"])
        if row is None:  # a run a worker claimed before the listing: its trial is one of the ranked ones
            row = next((ranked for ranked in rank_trials(self.run)[0] if ranked.trial == job["trial"]), None)
        if row is None:
            return f"trial {job['trial']} is not a ranked trial of this run"
        try:
            best = read_confirm_run(self.run, row, job["index"], self.record)
        except TunerUsageError as error:
            return str(error)
        return None if best is not None else f"'{self.run.confirm_record(job['trial'], job['index'])}' is not saved"


def _describe(job: dict[str, Any]) -> str:
    return f"the confirm run of trial {job['trial']} seed {job['index']} ({json.dumps(job['hyperparameters'])})"


def serve_confirm_jobs(run_dir: str) -> int:
    """A job pool process's main: load the run's dataset once, then train the confirm runs it is handed.

    Returns:
        The process's exit code.
    """

    def start() -> Callable[[dict[str, Any]], dict[str, Any]]:
        from tuner.cli import import_tensorflow_quietly

        run = Run(Path(run_dir))
        record = run.read_record()
        if record is None:
            raise TunerUsageError(f"'{run.root}' has no settings.json: it is not a run directory.")
        import_tensorflow_quietly()
        dataset = load_run_dataset(record)
        return lambda job: train_confirm_run(run, record, dataset, job)

    return serve_jobs(start)


if __name__ == "__main__":
    sys.exit(serve_confirm_jobs(sys.argv[1]))
