"""How trials and then the confirm runs are executed: alone in this process, as a chief, as a worker, or through
the local launcher."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import keras

from tuner.data.cache import PreparedDataset
from tuner.config import ExecutionOptions, SearchSettings
from tuner.confirm.runs import refuse_damaged_records, train_confirm_run
from tuner.data.prepare import ensure_prepared
from tuner.execution.distributed import (OracleServer, confirm_as_worker, join_as_worker, keep_ongoing_after_restart, parse_address,
                               wait_for_chief)
from tuner.execution.confirming import ChiefConfirmRuns, confirm_top
from tuner.execution.distributed.joining import join_chief
from tuner.execution.distributed.confirm_service import RETIRE, TRIALS
from tuner.errors import SearchFailedError, TunerUsageError
from tuner.files import atomic_write_json
from tuner.model.hypermodel import build_hypermodel
from tuner.execution.launcher import run_local_workers
from tuner.execution.processes import Retirement, follow_parent
from tuner.search.kerastuner import (RPC_TIMEOUT_SECONDS, configure_keras_tuner, kerastuner_role, oracle_state_path,
                                     saved_held_trials)
from tuner.search.oracles import planned_trials, refuse_damaged_state, repair_after_reload
from tuner.search.progress import SearchProgress
from tuner.trials.ranking import rank_trials
from tuner.rundir import DatasetRecord, Run, RunLock, RunRecord
from tuner.search.tuners import make_tuner, run_trials, space_size
from tuner.trials.records import FAILED, PRUNED, RANKED, failure_reason, iter_trials

log = logging.getLogger(__name__)

# The ways this process can take part in a search; execution_role() picks one from the options.
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
    pruned: int = 0
    retired: bool = False
    confirm_runs: int = 0


def execution_role(options: ExecutionOptions) -> str:
    """CHIEF or WORKER for --role; ALONE for --workers 0; else LAUNCHER (a chief here, workers as processes)."""
    if options.role:
        return options.role
    return ALONE if options.workers == "0" else LAUNCHER


def run_search(settings: SearchSettings, options: ExecutionOptions) -> SearchSummary:
    """Run (or resume) a search as the settings say, executed as the options say, and return what it found.

    Args:
        settings: what the run is (space, tuner, training); saved in settings.json.
        options: how this process takes part (data, run directory, workers, role); never saved.

    Returns:
        A summary: counts of completed, pruned and failed trials, the best one and the confirm runs
        saved. For a worker that stopped to be replaced (--trials-per-process), `retired` is True.

    Raises:
        TunerUsageError: bad data, run directory or a changed search on resume.
        SearchFailedError: every trial failed, or a process of a distributed search did.
    """
    started = time.monotonic()
    run = Run(options.resolved_run_dir(settings))
    _check_run_dir(run.root)
    # Prepared once here, before any worker starts, so they don't all prepare the sample at once.
    dataset = ensure_prepared(options.data)
    record = RunRecord(settings, DatasetRecord.of(dataset, options.data))
    resumed = oracle_state_path(run.project).exists() and not options.overwrite
    role = execution_role(options)
    retired = False
    if role == WORKER:
        retired = _work_for_chief(settings, options, run, dataset, record)
    else:
        with RunLock(run):
            if options.overwrite:
                run.clear()
            _refuse_another_search(run, record)
            if resumed:
                # Only the leader checks: a worker may read the chief's state between two of its writes.
                refuse_damaged_state(run)
                refuse_damaged_records(run, record)  # confirm records, read only after the trials otherwise
            run.write_record(record)
            _lead(settings, options, run, dataset, record, resumed, role)
    # Whether the search as a whole failed is for the process that leads it to say: a worker that
    # retires while every trial so far has failed must not end the search with an error.
    return _summarise(run, resumed, space_size(settings) if settings.tuner == "grid" else None,
                      time.monotonic() - started, retired, judge=role != WORKER)


def _lead(settings: SearchSettings, options: ExecutionOptions, run: Run, dataset: PreparedDataset, record: RunRecord,
          resumed: bool, role: str) -> None:
    """Own the oracle: run the trials and then the confirm runs here (ALONE), or serve both to workers (CHIEF,
    LAUNCHER)."""
    configure_keras_tuner()
    address = options.oracle or (f"127.0.0.1:{_free_port()}" if role == LAUNCHER else "")
    this_role = kerastuner_role(None) if role == ALONE else kerastuner_role(CHIEF, parse_address(address))
    with this_role as tuner_id:
        # Read before the tuner reloads the oracle, which queues every ongoing trial to run again.
        ongoing = saved_held_trials(run.project)
        if resumed and not run.tuner_state(tuner_id).exists():
            # KerasTuner 1.4.8 reloads only if its tuner file exists; a kill can leave only the oracle's.
            atomic_write_json(run.tuner_state(tuner_id), {})
        keras.utils.set_random_seed(settings.seed)
        tuner, progress = _tuner_with_progress(settings, run, dataset)
        if resumed:
            rerun = repair_after_reload(tuner.oracle)
            # Trial ids are numbers: "0 to run again" would read as "none", so the ids are named as trials.
            log.info("Resuming %s: %d trial(s) finished; %s.", run.root, progress.finished,
                     f"interrupted trial(s) {', '.join(rerun)} will run again from the start" if rerun
                     else "no trial was interrupted")
        else:
            log.info("Starting %s: %s search, %s trials planned.", run.root, settings.tuner, progress.total or "?")
        if role == ALONE:
            run_trials(tuner, settings, run, dataset)
            confirm_top(run, record, rank_trials(run)[0], *settings.confirm_counts, workers="0")  # in this process
            return
        if role == CHIEF:
            # A restarted chief lets live workers finish their trials; a launcher's workers died with it.
            keep_ongoing_after_restart(tuner.oracle, ongoing)
        tuner.oracle.verbose = 0  # KerasTuner's own trial display; the workers print progress lines
        tuner.save()
        confirming = ChiefConfirmRuns(run, record)
        with OracleServer(tuner.oracle, address, lease_seconds=options.lease_seconds, confirm_jobs=confirming.jobs, confirm_saved=confirming.saved_problem,
                          # Only a restarted chief of a search that confirms can have workers on confirm runs.
                          restarted=resumed and role == CHIEF and settings.confirm_counts != (0, 0),
                          record=record) as server:
            if role == LAUNCHER:
                run_local_workers(settings, options, address, server)
            else:
                server.serve_until_finished()


def _work_for_chief(settings: SearchSettings, options: ExecutionOptions, run: Run, dataset: PreparedDataset,
                    record: RunRecord) -> bool:
    """Run the trials and then the confirm runs a chief hands out, writing into the shared run directory; True if
    it retired (--trials-per-process trainings, trials and confirm runs together)."""
    follow_parent()
    address = options.oracle or ""
    with kerastuner_role(WORKER, parse_address(address)) as tuner_id:
        wait_for_chief(address, options.connect_timeout)
        # Before this worker writes anything: a worker whose search differs from the chief's is refused, naming why.
        rejoin = partial(join_chief, address, tuner_id, record, RPC_TIMEOUT_SECONDS)
        rejoin()
        # The chief wrote settings.json before it started serving: without it, this is not the chief's run directory.
        if not run.settings.exists():
            raise TunerUsageError(
                f"--run-dir '{run.root}' has no {run.settings.name}, so it is not the chief's run directory; pass the "
                f"chief's --run-dir, on a file system the chief and this worker share.")
        _refuse_another_search(run, record)
        configure_keras_tuner()
        tuner, _ = _tuner_with_progress(settings, run, dataset)
        retirement = Retirement(options.trials_per_process)
        join_as_worker(tuner, retirement, rejoin)
        log.info("Worker %s joined the search at %s.", tuner_id, options.oracle)
        while True:
            run_trials(tuner, settings, run, dataset)
            if retirement.due:
                return True  # the fresh process that replaces this one goes on
            # Then the confirm runs; a restarted chief may send it back to trials first (TRIALS).
            ended = confirm_as_worker(address, tuner_id, lambda job: train_confirm_run(run, record, dataset, job),
                                      retirement, rejoin)
            if ended != TRIALS:
                return ended == RETIRE


def _tuner_with_progress(settings: SearchSettings, run: Run, dataset: PreparedDataset) -> tuple[Any, SearchProgress]:
    progress = SearchProgress(run)
    tuner = make_tuner(settings, build_hypermodel(settings, dataset), run, progress)
    progress.total = planned_trials(tuner.oracle, space_size(settings))
    return tuner, progress


def replace_this_process() -> None:
    """Start this program afresh in the same process (same pid, output and worker id), freeing its memory.

    TensorFlow keeps about 19 MB per traced model for the life of a process; a worker that has
    run --trials-per-process trials is replaced this way, and the resume makes it lossless.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    if previous is None and oracle_state_path(run.project).exists():
        raise TunerUsageError(
            f"run directory '{run.root}' has trials but no {run.settings.name}, so what it searched is unknown; "
            f"pass --overwrite to start it afresh or another --run-dir."
        )
    why = previous.difference(record) if previous is not None else None
    if why:
        raise TunerUsageError(f"run directory '{run.root}' {why}; pass --overwrite to start it afresh or another --run-dir.")


def _summarise(run: Run, resumed: bool, total: int | None, seconds: float, retired: bool,
               judge: bool) -> SearchSummary:
    records = list(iter_trials(run))
    completed = [record for record in records if record.status in RANKED]
    failed = [record for record in records if record.status == FAILED]
    if judge and failed and not completed:
        reasons: dict[str, int] = {}
        for record in failed:
            reason = failure_reason(record.message)
            reasons[reason] = reasons.get(reason, 0) + 1
        summary = "; ".join(f"{count}x {reason}" for reason, count in reasons.items())
        raise SearchFailedError(f"all {len(failed)} trials failed: {summary}")
    best = min(((record.best_val_loss, record.trial_id) for record in completed if record.best_val_loss is not None),
               default=(None, None))
    pruned = sum(record.status == PRUNED for record in completed)
    return SearchSummary(run.root, resumed, len(completed), len(failed), total, best[1], best[0], seconds, pruned,
                         retired, confirm_runs=len(run.confirm_records()))
