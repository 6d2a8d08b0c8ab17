"""Stopping hopeless trials: a trial behind the median of the finished trials at the same epoch is pruned.

The rule is Optuna's MedianPruner: at epoch k (after a warm-up of epochs and of finished
trials), a trial whose best val_loss so far is worse than the median of the finished
trials' val_loss at epoch k stops at once. It reads only the curves every trial writes to
the run directory, so it decides the same way alone, on several workers and after a resume.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from tuner.rundir import Run
from tuner.trials.records import COMPLETED, is_finite_number, iter_trials


@dataclass(frozen=True)
class Verdict:
    """Why a trial was pruned: its best val_loss so far against the median the finished trials had then."""

    epoch: int
    best_val_loss: float
    median: float
    trials: int

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "best_val_loss": self.best_val_loss, "median": self.median, "trials": self.trials}

    def describe(self) -> str:
        return (f"pruned at epoch {self.epoch}: best val_loss {self.best_val_loss:.4f} is behind the median "
                f"{self.median:.4f} of {self.trials} finished trials at that epoch")


def median_verdict(epoch: int, best_so_far: float, finished_curves: list[dict[int, float]],
                   warmup_trials: int, warmup_epochs: int) -> Verdict | None:
    """The median rule at one epoch: a Verdict if the trial is behind, else None.

    Args:
        epoch: the epoch just finished, counted from 1.
        best_so_far: the trial's lowest val_loss up to this epoch.
        finished_curves: for each finished (completed, not pruned) trial, its val_loss by epoch.
        warmup_trials: no pruning until this many trials have finished.
        warmup_epochs: the first epochs of every trial are never pruned.
    """
    if epoch <= warmup_epochs or len(finished_curves) < warmup_trials or not is_finite_number(best_so_far):
        return None
    # Trials that stopped early (patience) have no value at later epochs and are left out there.
    at_epoch = [curve[epoch] for curve in finished_curves if epoch in curve]
    if not at_epoch:
        return None
    median = statistics.median(at_epoch)
    if best_so_far > median:
        return Verdict(epoch, best_so_far, median, len(at_epoch))
    return None


def finished_curves(run: Run, exclude: str) -> list[dict[int, float]]:
    """The val_loss by epoch of every completed, unpruned trial of the run but `exclude`."""
    curves = []
    for record in iter_trials(run):
        if record.status != COMPLETED or record.trial_id == exclude:
            continue
        curve = {row["epoch"]: row["val_loss"] for row in record.history
                 if isinstance(row.get("epoch"), int) and is_finite_number(row.get("val_loss"))}
        if curve:
            curves.append(curve)
    return curves


class MedianPruner:
    """The median rule bound to one run and its warm-up settings, asked once per epoch of a trial."""

    def __init__(self, run: Run, warmup_trials: int, warmup_epochs: int) -> None:
        self.run = run
        self.warmup_trials = warmup_trials
        self.warmup_epochs = warmup_epochs

    def verdict(self, trial_id: str, epochs: list[dict[str, Any]]) -> Verdict | None:
        """Judge a trial from its curve so far (rows with epoch and val_loss)."""
        if not epochs or epochs[-1].get("epoch", 0) <= self.warmup_epochs:
            return None  # no need to read the other trials' files
        losses = [row["val_loss"] for row in epochs if is_finite_number(row.get("val_loss"))]
        if not losses:
            return None
        return median_verdict(int(epochs[-1]["epoch"]), min(losses), finished_curves(self.run, trial_id),
                              self.warmup_trials, self.warmup_epochs)
