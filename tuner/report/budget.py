"""Size and speed budgets for the winner, and the Pareto front of validation loss against model size.

A budget keeps the ranking to the trials whose model is small or fast enough (report.py
--max-params, --max-latency-ms); the Pareto front shows which trials no other beats on both
size and val_loss, however the budget is set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from tuner.errors import TunerUsageError
from tuner.trials.rows import TrialRow


@dataclass(frozen=True)
class Budget:
    """The most a winner may cost: parameters and milliseconds per image at batch 1 (None: no limit)."""

    max_params: int | None = None
    max_latency_ms: float | None = None

    @property
    def active(self) -> bool:
        return self.max_params is not None or self.max_latency_ms is not None

    def describe(self) -> str:
        """E.g. "at most 100,000 parameters and 1.5 ms per image"."""
        parts = []
        if self.max_params is not None:
            parts.append(f"at most {self.max_params:,} parameters")
        if self.max_latency_ms is not None:
            parts.append(f"at most {self.max_latency_ms:g} ms per image")
        return " and ".join(parts) or "no limit"

    def exceeded(self, row: TrialRow) -> str | None:
        """Why a ranked row does not fit the budget, or None if it does."""
        reasons = []
        if self.active and (row.params is None or row.latency_ms is None):
            return "size and speed not measured (the trial ran before the search recorded them)"
        if self.max_params is not None and row.params is not None and row.params > self.max_params:
            reasons.append(f"{row.params:,} parameters > {self.max_params:,}")
        if self.max_latency_ms is not None and row.latency_ms is not None and row.latency_ms > self.max_latency_ms:
            reasons.append(f"{row.latency_ms:.3f} ms per image > {self.max_latency_ms:g}")
        return "; ".join(reasons) or None

    def to_json(self) -> dict[str, Any]:
        return {"max_params": self.max_params, "max_latency_ms": self.max_latency_ms}


def apply_budget(ranked: Sequence[TrialRow], budget: Budget) -> tuple[list[TrialRow], list[TrialRow]]:
    """Split ranked rows into those within the budget (in ranking order) and the excluded ones, each with its reason.

    The rows keep their ranks; the caller numbers the fitting ones again (ranking.assign_ranks).

    Raises:
        TunerUsageError: no trial fits the budget (the message gives the smallest and fastest trials).
    """
    if not budget.active:
        return list(ranked), []
    fitting, excluded = [], []
    for row in ranked:
        reason = budget.exceeded(row)
        if reason is None:
            fitting.append(row)
        else:
            excluded.append(replace(row, reason=reason))
    if not fitting:
        raise TunerUsageError(f"no trial fits the budget ({budget.describe()}): {_smallest_and_fastest(ranked)}; "
                              f"raise --max-params or --max-latency-ms.")
    return fitting, excluded


def _smallest_and_fastest(ranked: Sequence[TrialRow]) -> str:
    measured = [row for row in ranked if row.measured]
    if not measured:
        return ("none of its trials has its size and speed recorded (the run was searched before they were); "
                "search again with python search.py --overwrite to measure them")
    smallest = min(measured, key=lambda row: (row.params, row.trial))
    fastest = min(measured, key=lambda row: (row.latency_ms, row.trial))
    return (f"the smallest model has {smallest.params:,} parameters (trial {smallest.trial}) and the fastest "
            f"takes {fastest.latency_ms:.3f} ms per image (trial {fastest.trial})")


def pareto_front(rows: Sequence[TrialRow]) -> list[TrialRow]:
    """The rows no other row beats on both parameters and val_loss, from the smallest model up.

    A row is on the front when every row with at most as many parameters has a higher
    val_loss; rows without a measured size are left out.
    """
    measured = sorted((row for row in rows if row.params is not None and row.val_loss is not None),
                      key=lambda row: (row.params, row.val_loss, row.trial))
    front: list[TrialRow] = []
    for row in measured:
        if not front or row.val_loss < front[-1].val_loss:
            front.append(row)
    return front
