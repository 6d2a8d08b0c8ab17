"""One trial as the report shows it: its hyperparameters in one field, its metrics, size, speed and confirm runs in others.

A row is what the ranking, the budget, the confirm runs, the plots and the winner pass around.
As optuna's FrozenTrial keeps `params` apart from `values` and `user_attrs`, a row keeps the
hyperparameters (what build_model gets) apart from everything measured, so a new metric can
never pass for a hyperparameter. The columns of the tables and results files are derived from
the fields here, in one order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

# The columns of a ranked row that are not hyperparameters, after rank, trial and the hyperparameters.
METRIC_COLUMNS = ("val_loss", "val_accuracy", "best_epoch", "epochs", "pruned", "seconds")
# A ranked row's size and speed (footprint.Footprint), measured when the trial's training ended.
FOOTPRINT_COLUMNS = ("params", "weight_bytes", "latency_ms", "images_per_second", "threads")
# The columns the confirm runs (the search's or report.py's) add to a ranking: seeds is the number of runs of the configuration
# (the search's and the confirm runs), the mean and std are of their best val_loss.
CONFIRM_COLUMNS = ("seeds", "mean_val_loss", "std_val_loss", "median_best_epoch")


@dataclass(frozen=True)
class TrialRow:
    """A ranked, excluded or failed trial of a run.

    Attributes:
        trial: the trial id (a string: "03" stays "03").
        hyperparameters: every hyperparameter of the run by name, in the order the space declared
            them; None where this trial did not set it (a conditional one).
        rank: 1, 2, ... in the ranking (equal val_loss share a rank); None for a failed trial.
        val_loss, val_accuracy, best_epoch: the best epoch (1-based) and its metrics; val_loss is
            None only for a failed trial.
        epochs: epochs trained; pruned: the epoch the pruner stopped it at, else None; seconds: its training time.
        params, weight_bytes, latency_ms, images_per_second, threads: its size and speed (FOOTPRINT_COLUMNS),
            None where not measured.
        seeds, mean_val_loss, std_val_loss, median_best_epoch: its confirm runs (CONFIRM_COLUMNS), None
            where not confirmed; mean_val_loss is None too when a seed diverged.
        reason: why the trial is not in the ranking: its failure, or what the budget it exceeds.
    """

    trial: str
    hyperparameters: dict[str, Any]
    rank: int | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    pruned: int | None = None
    seconds: float | None = None
    params: int | None = None
    weight_bytes: int | None = None
    latency_ms: float | None = None
    images_per_second: float | None = None
    threads: int | None = None
    seeds: int | None = None
    mean_val_loss: float | None = None
    std_val_loss: float | None = None
    median_best_epoch: int | None = None
    reason: str | None = None

    @property
    def failed(self) -> bool:
        """True for a trial that has no val_loss to rank it by (it failed, or diverged in every epoch)."""
        return self.val_loss is None

    @property
    def confirmed(self) -> bool:
        return self.seeds is not None

    @property
    def measured(self) -> bool:
        """True when the trial's size and speed were recorded (a run from before they were has none)."""
        return self.params is not None and self.latency_ms is not None

    def configuration(self) -> dict[str, Any]:
        """The hyperparameter values its model is built with: those the trial set, without the None of unset ones."""
        return {name: value for name, value in self.hyperparameters.items() if value is not None}

    def column(self, name: str) -> Any:
        """The value of a table column: a field of the row, else the hyperparameter of that name."""
        return getattr(self, name) if name in _FIELDS else self.hyperparameters.get(name)

    def to_record(self, columns: Sequence[str]) -> dict[str, Any]:
        """The row as {column: value}, in the order of `columns` (ranked_columns, failed_columns or any subset)."""
        return {name: self.column(name) for name in columns}


_FIELDS = frozenset(TrialRow.__dataclass_fields__) - {"hyperparameters"}


def hyperparameter_names(rows: Sequence[TrialRow]) -> list[str]:
    """The hyperparameter columns of rows from one ranking (every row holds every name of the run)."""
    return list(rows[0].hyperparameters) if rows else []


def ranked_columns(rows: Sequence[TrialRow]) -> list[str]:
    """The columns of a ranking: rank, trial, the hyperparameters, the metrics, size and speed, and the confirm
    columns when any row was confirmed."""
    confirmed = CONFIRM_COLUMNS if any(row.confirmed for row in rows) else ()
    return ["rank", "trial", *hyperparameter_names(rows), *METRIC_COLUMNS, *FOOTPRINT_COLUMNS, *confirmed]


def failed_columns(rows: Sequence[TrialRow]) -> list[str]:
    """The columns of the failed trials: trial, the hyperparameters and the reason."""
    return ["trial", *hyperparameter_names(rows), "reason"]


def excluded_columns(rows: Sequence[TrialRow]) -> list[str]:
    """The columns of the trials a budget excluded: trial, hyperparameters, val_loss, size and speed, and the reason."""
    return ["trial", *hyperparameter_names(rows), "val_loss", "params", "latency_ms", "reason"]
