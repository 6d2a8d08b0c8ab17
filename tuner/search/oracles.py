"""KerasTuner's oracles made safe to kill: a grid that resumes, repair on reload, damaged state refused."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import keras_tuner

from tuner.errors import TunerUsageError
from tuner.files import UnreadableFileError, read_json, read_json_or_problem
from tuner.search.continuing import source_weights_problems
from tuner.search.halving import SuccessiveHalvingOracle
from tuner.search.kerastuner import (
    already_tried,
    check_oracle_state,
    held_trials,
    hyperband_brackets,
    local_oracle,
    oracle_state_path,
    queue_oldest_first,
    record_trial,
    requeue,
    unqueue,
)
from tuner.rundir import Run, RunRecord
from tuner.rundir.checks import RunLimits, space_difference
from tuner.trials.records import FINISHED, IDLE, RUNNING, STOPPED, DamagedFile, scan_trials

log = logging.getLogger(__name__)


class ResumableGridOracle(keras_tuner.Oracle):
    """Every combination of the (Choice-only) space, each handed out once, in a fixed order.

    KerasTuner's GridSearchOracle walks a linked list that it never saves, so after a
    reload it stops early or raises KeyError (keras-team/keras-tuner#1055). This oracle keeps
    no state of its own: the next configuration is the first one in the Cartesian product
    whose hash is not yet in `_tried_so_far`, which the base Oracle saves and reloads.
    Interrupted trials come back through the base Oracle's retry queue.
    """

    # populate_space is KerasTuner's hook for a subclass: the base Oracle calls it for each new trial.

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        space = self.get_space().space
        names = [hp.name for hp in space]
        for combination in itertools.product(*(_grid_values(hp) for hp in space)):
            values = dict(zip(names, combination))
            if not already_tried(self, values):
                return {"status": RUNNING, "values": values}
        if held_trials(self):
            return {"status": IDLE, "values": None}
        return {"status": STOPPED, "values": None}


def _grid_values(hp: Any) -> list[Any]:
    if hasattr(hp, "values"):
        return list(hp.values)
    if hp.__class__.__name__ == "Boolean":
        return [False, True]
    if hp.__class__.__name__ == "Fixed":
        return [hp.value]
    raise ValueError(f"the grid can only enumerate Choice, Boolean and Fixed hyperparameters, got {hp.name}.")


def repair_after_reload(oracle: keras_tuner.Oracle) -> list[str]:
    """Reconcile a reloaded oracle with the trial files, whatever moment the last process died at.

    KerasTuner writes a trial's file and the oracle's file one after the other, so a kill
    between the two leaves them disagreeing:
    - a trial created but not yet in oracle.json (status RUNNING, unknown to the oracle)
      would never run: it is queued to run again;
    - a trial finished but still listed as ongoing would run twice: it is taken off the queue.

    Returns:
        The ids of the trials that will run again.

    Raises:
        TunerUsageError: a successive-halving run started before settings.json's format 2 whose rungs are
            not the current ones, or that started without the baseline.
    """
    if isinstance(oracle, SuccessiveHalvingOracle):
        oracle.check_schedule()  # before anything is rewritten
    for trial_id, trial in sorted(oracle.trials.items()):
        finished = trial.status in FINISHED
        if finished:
            unqueue(oracle, trial_id)
        else:
            requeue(oracle, trial_id)
        record_trial(oracle, trial, ended=finished)
    rerun = queue_oldest_first(oracle)
    oracle.save()
    return sorted(rerun)


def planned_trials(oracle: keras_tuner.Oracle, space_size: int) -> int:
    """How many trials a search will run in all, for progress lines, on any role (a worker's OracleClient too).

    Every oracle runs max_trials or the whole space, whichever is smaller. Hyperband runs its
    schedule, capped by max_trials when --max-trials gave one: a continued trial counts again,
    and the search stops in the first bracket whose new configurations the space runs out of.
    Successive halving (asha) plans its configurations and their promotions (SuccessiveHalvingOracle.planned_trials).
    """
    if isinstance(local_oracle(oracle), SuccessiveHalvingOracle):
        return local_oracle(oracle).planned_trials(space_size)
    # A worker's OracleClient reads max_trials from the oracle it wraps, built from the same flags.
    cap = oracle.max_trials
    brackets = hyperband_brackets(oracle)
    if brackets is None:
        return min(space_size, cap) if cap else space_size
    planned, untried = 0, space_size
    for rounds in brackets:
        if untried < rounds[0]:
            planned += untried
            break
        planned, untried = planned + sum(rounds), untried - rounds[0]
    return min(planned, cap) if cap else planned


def damaged_state(run: Run, record: RunRecord | None = None) -> list[DamagedFile]:
    """The run's KerasTuner state files (oracle.json, the tuners' and trials' files) and curves that cannot be resumed from.

    KerasTuner would stop on them with a traceback, or worse, reload a trial list that no longer
    matches the trials on disk, or a space that is no longer the run's (settings.json, read from
    the run when `record` is not given); every file is written atomically, so damage is never a crash's.
    """
    record = record if record is not None else run.read_record()
    trials, damaged = scan_trials(run, record)
    oracle_file = oracle_state_path(run.project)
    # The tuners' own files (tuner0.json, chief.json, ...): KerasTuner reloads them as JSON objects.
    read = {path: read_json_or_problem(path, "tuner") for path in sorted(run.project.glob("*.json")) if path != oracle_file}
    # Confirm records are read once the trials are done, after KerasTuner has saved its state again: one that is
    # not even a JSON object is refused now, with nothing rewritten (confirm/runs.py checks the values when it reads).
    if record is not None and record.search.confirm_counts != (0, 0):
        read.update({path: read_json_or_problem(path, "confirm") for path in run.confirm_records()})
    damaged += [DamagedFile(path, unread or "not a JSON object") for path, (state, unread) in read.items()
                if not isinstance(state, dict)]
    try:
        saved_space, named = check_oracle_state(read_json(oracle_file, kind="oracle"))
    except UnreadableFileError as error:
        damaged.insert(0, DamagedFile(oracle_file, error.problem))
        return damaged
    except ValueError as problem:
        damaged.insert(0, DamagedFile(oracle_file, str(problem)))
        return damaged
    space = space_difference(saved_space, RunLimits.of(record))
    if space:
        damaged.insert(0, DamagedFile(oracle_file, space))
        return damaged
    unknown = sorted(named - {trial.trial_id for trial in trials})
    if unknown and not damaged:
        damaged.insert(0, DamagedFile(oracle_file, f"names trial(s) {', '.join(unknown)} that have no trial.json"))
    if record is not None and record.search.tuner == "asha" and not damaged:
        # Only a sound schedule says which weights the resume needs; asha continues a trial from its last epoch.
        damaged += source_weights_problems(run, trials, record.search.epochs)
    return damaged


def refuse_damaged_state(run: Run) -> None:
    """Refuse to resume a run whose state is damaged, naming the first damaged file and what to do."""
    damaged = damaged_state(run)
    if damaged:
        others = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise TunerUsageError(
            f"cannot resume run '{run.root}': {damaged[0].describe()}{others}; restore it from a backup, "
            f"or start the search afresh with --overwrite (its trials so far are lost)."
        )
