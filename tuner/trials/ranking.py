"""A run's trials ranked by their best validation loss: the rows every table, note, plot and the winner come from."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

from tuner.model.footprint import Footprint
from tuner.trials.rows import FOOTPRINT_COLUMNS, TrialRow
from tuner.rundir import Run
from tuner.trials.records import FAILED, RANKED, RUNNING, TrialRecord, failure_reason, scan_trials

DIVERGED = "no finite val_loss in any epoch (diverged)"


def rank_trials(run: Run) -> tuple[list[TrialRow], list[TrialRow], int]:
    """Rank a run's completed and pruned trials by their best validation loss, lowest first.

    Reads only files the search writes atomically, so it is safe while a search is running.
    A pruned trial is ranked by the best val_loss it reached before it was stopped, so it
    wins only if that is genuinely the lowest.
    Trials with equal best val_loss share a rank (1, 1, 3); among them the higher
    val_accuracy, then the lower trial id, comes first, and the first row is the winner.
    Successive halving ranks each configuration once, by its trial at the highest rung it
    finished (whose curve holds the lower rungs' epochs too); a configuration stopped below the
    full epochs is ranked by what it reached, its `pruned` the epoch it stopped at.

    Args:
        run: the run directory.

    Returns:
        The ranked rows (rank, trial, hyperparameters, val_loss, val_accuracy, best_epoch, epochs,
        pruned (the epoch it was stopped at, or None), seconds, and the size and speed params,
        weight_bytes, latency_ms, images_per_second, threads (None where not measured)), the failed
        rows (trial, hyperparameters, reason) and the number of trials still marked RUNNING (running
        now, or interrupted).
    """
    return rank_records(scan_trials(run)[0])


def rank_records(records: Sequence[TrialRecord]) -> tuple[list[TrialRow], list[TrialRow], int]:
    """rank_trials of trials already read (scan_trials), so a caller reads the files once."""
    names = hyperparameter_names(record.hyperparameters for record in records)
    # A configuration continued at a higher rung is ranked there: its lower-rung trials are not rows.
    continued = {record.continues for record in records if record.status in RANKED and record.best_epoch() is not None}
    ranked: list[TrialRow] = []
    failed: list[TrialRow] = []
    running = 0
    for record in records:
        # Every row holds every name of the run, None where this trial did not set it, so the columns line up.
        values = {name: record.hyperparameters.get(name) for name in names}
        if record.status == RUNNING:
            running += 1
        elif record.status == FAILED:
            failed.append(TrialRow(record.trial_id, values, reason=failure_reason(record.message)))
        elif record.status in RANKED and record.trial_id not in continued:
            best = record.best_epoch()
            if best is None:
                failed.append(TrialRow(record.trial_id, values, reason=DIVERGED))
                continue
            ranked.append(TrialRow(
                record.trial_id, values, rank=0,
                val_loss=best["val_loss"], val_accuracy=best.get("val_accuracy"), best_epoch=best["epoch"],
                epochs=len(record.history) or None,
                pruned=stopped_at(record),
                seconds=round(record.seconds, 1) if record.seconds is not None else None,
                **footprint_fields(record.footprint),
            ))
    ranked.sort(key=lambda row: (row.val_loss, -(row.val_accuracy or 0.0), row.trial))
    return assign_ranks(ranked), failed, running


def stopped_at(record: TrialRecord) -> int | None:
    """The epoch a trial was stopped at before the full epochs: by the pruner, or at a rung of successive halving."""
    if record.pruned:
        return record.pruned.get("epoch")
    if record.below_top_rung and record.history:
        return record.history[-1]["epoch"]
    return None


def assign_ranks(rows: Sequence[TrialRow]) -> list[TrialRow]:
    """Rows already in ranking order, numbered 1, 2, 3...; rows with equal val_loss share a rank (1, 1, 3)."""
    numbered: list[TrialRow] = []
    for position, row in enumerate(rows):
        tied = position and row.val_loss == numbered[-1].val_loss
        numbered.append(replace(row, rank=numbered[-1].rank if tied else position + 1))
    return numbered


def footprint_fields(footprint: Footprint | None) -> dict[str, int | float | None]:
    """A row's size and speed fields (rows.FOOTPRINT_COLUMNS), all None for a trial that was not measured."""
    return {name: getattr(footprint, name) if footprint is not None else None for name in FOOTPRINT_COLUMNS}


def hyperparameter_names(values_per_trial: Iterable[dict[str, object]]) -> list[str]:
    """Every hyperparameter name across trials, in the order the search space declared them."""
    names: list[str] = []
    for values in values_per_trial:
        names.extend(name for name in values if name not in names)
    return names
