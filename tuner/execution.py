"""How trials are executed: alone in this process, as a chief, as a worker, or through the local launcher."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from tuner.cache import PreparedDataset
from tuner.config import SearchSettings
from tuner.data import ensure_prepared
from tuner.distributed import configure_role, join_as_worker, keep_ongoing_after_restart, serve_oracle, wait_for_chief
from tuner.errors import SearchFailedError, TunerUsageError
from tuner.files import atomic_write_json, read_json
from tuner.hypermodel import build_hypermodel
from tuner.launcher import run_local_cluster
from tuner.oracles import configure_keras_tuner, planned_trials, repair_after_reload
from tuner.progress import SearchProgress
from tuner.rundir import DatasetRecord, Run, RunLock, RunRecord
from tuner.search import make_tuner, run_trials, space_size
from tuner.trials import COMPLETED, FAILED, failure_reason, iter_trials

log = logging.getLogger(__name__)

# The ways this process can take part in a search; execution_role() picks one from the settings.
ALONE, CHIEF, WORKER, LAUNCHER = "alone", "chief", "worker", "launcher"


@dataclass(frozen=True)
class SearchSummary:
    """What a search left behind, for the script to print."""

    run_dir: Path
    resumed: bool
    completed: int
    failed: int
    total: int | None
    best_trial_id: str | None
    best_val_loss: float | None
    seconds: float


def execution_role(settings: SearchSettings) -> str:
    """LAUNCHER for --workers N, CHIEF or WORKER for --role, else ALONE."""
    if settings.workers:
        return LAUNCHER
    return settings.role or ALONE


def run_search(settings: SearchSettings) -> SearchSummary:
    """Run (or resume) a search as the settings say and return what it found.

    Args:
        settings: validated search settings.

    Returns:
        A summary: counts of completed and failed trials and the best one.

    Raises:
        TunerUsageError: bad data, run directory or a changed search on resume.
        SearchFailedError: every trial failed, or a process of a distributed search did.
    """
    started = time.monotonic()
    run = Run(settings.resolved_run_dir())
    _check_run_dir(run.root)
    # Prepared once here, so a launcher's chief and workers don't all prepare the sample at once.
    dataset = ensure_prepared(settings.data)
    record = RunRecord(settings, DatasetRecord.of(dataset, settings.data))
    resumed = run.oracle_state.exists() and not settings.overwrite
    role = execution_role(settings)
    if role == LAUNCHER:
        run_local_cluster(settings)
    elif role == WORKER:
        _work_for_chief(settings, run, dataset, record)
    else:
        with RunLock(run):
            if settings.overwrite:
                run.clear()
            _refuse_another_search(run, record)
            run.write_record(record)
            _lead(settings, run, dataset, resumed, as_chief=role == CHIEF)
    return _summarise(run, resumed, space_size(settings) if settings.tuner == "grid" else None,
                      time.monotonic() - started)


def _lead(settings: SearchSettings, run: Run, dataset: PreparedDataset, resumed: bool, as_chief: bool) -> None:
    """Own the oracle: run the trials here, or (as the chief) serve them to workers."""
    configure_keras_tuner()
    ongoing: dict[str, str] = {}
    if as_chief:
        configure_role(CHIEF, settings.oracle or "")
        state = read_json(run.oracle_state)
        ongoing = state.get("ongoing_trials", {}) if isinstance(state, dict) else {}
    tuner_state = run.tuner_state(os.environ.get("KERASTUNER_TUNER_ID", "tuner0"))
    if resumed and not tuner_state.exists():
        # KerasTuner 1.4.8 reloads only if its tuner file exists; a kill can leave only the oracle's.
        atomic_write_json(tuner_state, {})
    keras.utils.set_random_seed(settings.seed)
    progress = SearchProgress(run)
    tuner = make_tuner(settings, build_hypermodel(settings, dataset), run, progress)
    progress.total = planned_trials(tuner.oracle, space_size(settings))
    if resumed:
        rerun = repair_after_reload(tuner.oracle)
        log.info("Resuming %s: %d trial(s) finished, %s to run again.", run.root, progress.finished,
                 ", ".join(rerun) if rerun else "none")
    else:
        log.info("Starting %s: %s search, %s trials planned.", run.root, settings.tuner, progress.total or "?")
    if not as_chief:
        run_trials(tuner, settings, run, dataset)
        return
    keep_ongoing_after_restart(tuner.oracle, ongoing)
    tuner.oracle.verbose = 0  # KerasTuner's own trial display; the workers print progress lines
    tuner.save()
    serve_oracle(tuner.oracle, settings.oracle or "")


def _work_for_chief(settings: SearchSettings, run: Run, dataset: PreparedDataset, record: RunRecord) -> None:
    """Run trials handed out by a chief, writing into the shared run directory."""
    tuner_id = configure_role(WORKER, settings.oracle or "")
    wait_for_chief(settings.oracle or "", settings.connect_timeout)
    # The chief wrote settings.json before it started serving; a worker with other flags is refused.
    _refuse_another_search(run, record)
    configure_keras_tuner()
    progress = SearchProgress(run)
    tuner = make_tuner(settings, build_hypermodel(settings, dataset), run, progress)
    progress.total = planned_trials(tuner.oracle, space_size(settings))
    join_as_worker(tuner)
    log.info("Worker %s joined the search at %s.", tuner_id, settings.oracle)
    run_trials(tuner, settings, run, dataset)


def _check_run_dir(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise TunerUsageError(f"--run-dir '{root}' is a file, expected a folder; pass a folder path.")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise TunerUsageError(f"--run-dir '{root}' cannot be written ('{probe}' is not writable); pass another --run-dir.")


def _refuse_another_search(run: Run, record: RunRecord) -> None:
    """Refuse to resume a run that was made with another search space, tuner, training or dataset."""
    previous = run.read_record()
    why = previous.difference(record) if previous is not None else None
    if why:
        raise TunerUsageError(f"run directory '{run.root}' {why}; pass --overwrite to start it afresh or another --run-dir.")


def _summarise(run: Run, resumed: bool, total: int | None, seconds: float) -> SearchSummary:
    records = list(iter_trials(run))
    completed = [record for record in records if record.status == COMPLETED]
    failed = [record for record in records if record.status == FAILED]
    if failed and not completed:
        reasons: dict[str, int] = {}
        for record in failed:
            reason = failure_reason(record.message)
            reasons[reason] = reasons.get(reason, 0) + 1
        summary = "; ".join(f"{count}x {reason}" for reason, count in reasons.items())
        raise SearchFailedError(f"all {len(failed)} trials failed: {summary}")
    best = min(((record.best_val_loss, record.trial_id) for record in completed if record.best_val_loss is not None),
               default=(None, None))
    return SearchSummary(run.root, resumed, len(completed), len(failed), total, best[1], best[0], seconds)
