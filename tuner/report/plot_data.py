"""What each figure of a run shows, computed from the checked trial records and ranked rows, without drawing.

    curves_info()           the top trials' val_loss by epoch, their best epoch and where the pruner stopped them
    hyperparameters_info()  every trial's val_loss at each value of each hyperparameter, the best per value, the winner
    pareto_info()           val_loss against parameters, the Pareto front, the winner and the best trial

As optuna's visualization computes each plot's data (`_get_*_info`) apart from rendering it, plots.py
only draws what these return: the data reads no file (the records were read and checked once by
trials.records.scan_trials) and needs no matplotlib, so it is tested on records built in the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from tuner.config.spaces import FloatRange
from tuner.report.budget import Budget, pareto_front
from tuner.trials.records import TrialRecord, is_finite_number
from tuner.trials.rows import TrialRow

# The curves plot stays readable with this many lines when --top is not given.
DEFAULT_PLOTTED_TRIALS = 5


def format_value(value: Any) -> str:
    """A hyperparameter value as labels and messages show it: floats in %g form (0.001, 1e-05), the rest as str()."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def short_value(value: Any) -> str:
    """A value as a figure's legend shows it: floats to 3 significant digits (a sampled learning rate's
    0.00430378 as 0.0043), which tell trials apart without widening every label; the rest as format_value."""
    return f"{value:.3g}" if isinstance(value, float) else format_value(value)


@dataclass(frozen=True)
class Curve:
    """One trial's val_loss by epoch (finite epochs only), as the curves figure draws it.

    Attributes:
        trial, rank: the trial id and its rank; winner: True for the first ranked row (drawn thicker).
        title: "#1 trial 05 (winner)", with "(pruned at epoch N)" for a trial stopped early.
        configuration: its hyperparameters as "name=value" pairs, in the space's order.
        points: (epoch, val_loss) of every epoch with a finite val_loss, in epoch order.
        best: the (epoch, val_loss) whose weights the trial kept; None when its best epoch is not known.
        stopped: the last point of a trial stopped early (pruned, or left at a low rung); else None.
    """

    trial: str
    rank: int | None
    winner: bool
    title: str
    configuration: tuple[str, ...]
    points: tuple[tuple[int, float], ...]
    best: tuple[int, float] | None
    stopped: tuple[int, float] | None


@dataclass(frozen=True)
class CurvesInfo:
    """The curves figure's data: one Curve per shown trial (best first) out of `ranked` ranked trials."""

    curves: tuple[Curve, ...]
    ranked: int


def curves_info(records: Sequence[TrialRecord], ranking: Sequence[TrialRow], names: Sequence[str],
                top: int = DEFAULT_PLOTTED_TRIALS) -> CurvesInfo:
    """The val_loss curves of the best `top` ranked trials, from their checked records.

    Args:
        records: the run's trials as scan_trials read them (their histories already checked).
        ranking: the ranked rows, best first; the first is the winner.
        names: the hyperparameter names each curve's configuration spells out.
        top: how many of the best trials get a curve; a trial without a finite epoch (a history lost to damage) has none.
    """
    histories = {record.trial_id: record.history for record in records}
    curves = []
    for row in ranking[:top]:
        points = tuple((int(epoch["epoch"]), float(epoch["val_loss"])) for epoch in histories.get(row.trial, [])
                       if is_finite_number(epoch.get("val_loss")))
        if not points:
            continue
        winner = row is ranking[0]
        title = (f"#{row.rank} trial {row.trial}" + (" (winner)" if winner else "")
                 + (f" (pruned at epoch {row.pruned})" if row.pruned is not None else ""))
        best = (row.best_epoch, row.val_loss) if row.best_epoch is not None and row.val_loss is not None else None
        curves.append(Curve(row.trial, row.rank, winner, title,
                            tuple(f"{name}={short_value(row.hyperparameters.get(name))}" for name in names),
                            points, best, points[-1] if row.pruned is not None else None))
    return CurvesInfo(tuple(curves), len(ranking))


@dataclass(frozen=True)
class Panel:
    """One hyperparameter's panel: the val_loss of every ranked trial at each value it took.

    Attributes:
        name: the hyperparameter.
        values: the values searched, in the space's order (the x axis), or for a continuous range
            the values tried, in increasing order.
        log: for a continuous range (values placed by size), whether its scale is logarithmic;
            None for values spaced evenly, one tick each.
        bounds: a continuous range's low and high (the x axis spans them, so its edges show); None for the others.
        losses: per value, every ranked trial's val_loss there.
        best: per value, the lowest of those (None where no ranked trial took it).
        failed: per value, True where trials took it and every one of them failed.
        winner: the index of the winner's value in `values`, None when it did not set this one.
    """

    name: str
    values: tuple[Any, ...]
    log: bool | None
    bounds: tuple[float, float] | None
    losses: tuple[tuple[float, ...], ...]
    best: tuple[float | None, ...]
    failed: tuple[bool, ...]
    winner: int | None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(format_value(value) for value in self.values)


@dataclass(frozen=True)
class HyperparametersInfo:
    """The per-hyperparameter figure's data: one Panel each, the winner's trial and its val_loss."""

    panels: tuple[Panel, ...]
    winner_trial: str | None
    winner_loss: float | None


def hyperparameters_info(ranking: Sequence[TrialRow], failed: Sequence[TrialRow], names: Sequence[str],
                         space: dict[str, list[Any]], ranges: dict[str, FloatRange] | None = None) -> HyperparametersInfo:
    """Every ranked trial's val_loss at its value of each hyperparameter searched over more than one value.

    Args:
        ranking: the ranked rows, best first (the first is the winner).
        failed: the failed rows, which mark values where every trial failed.
        names: the hyperparameter names, one panel each (a name with a single value searched has no panel,
            unless no name has more).
        space: hyperparameter name -> the values searched (notes.search_space).
        ranges: the continuous hyperparameters' ranges (rundir.checks.run_space's FloatRange items): their panels
            place values by size, on a log scale where the range is one.
    """
    ranges = ranges or {}
    shown = [name for name in names if len(space.get(name) or []) > 1] or [name for name in names if space.get(name)]
    winner = ranking[0] if ranking else None
    panels = []
    for name in shown:
        values = tuple(space[name])
        keys = [repr(value) for value in values]  # repr: 1 and True, or 1 and "1", are different values
        losses = [tuple(row.val_loss for row in ranking if repr(row.hyperparameters.get(name)) == key) for key in keys]
        tried = {repr(row.hyperparameters.get(name)) for row in failed}
        winner_key = repr(winner.hyperparameters.get(name)) if winner is not None else None
        panels.append(Panel(
            name, values, ranges[name].log if name in ranges else None,
            (ranges[name].low, ranges[name].high) if name in ranges else None, tuple(losses),
            tuple(min(group) if group else None for group in losses),
            tuple(not group and key in tried for group, key in zip(losses, keys)),
            keys.index(winner_key) if winner_key in keys else None))
    return HyperparametersInfo(tuple(panels), winner.trial if winner else None, winner.val_loss if winner else None)


@dataclass(frozen=True)
class ParetoPoint:
    """A trial placed on the Pareto figure: its id, parameters and val_loss."""

    trial: str
    params: int
    val_loss: float


@dataclass(frozen=True)
class ParetoInfo:
    """The Pareto figure's data.

    Attributes:
        points: every trial with a recorded size; front: the Pareto front, smallest first.
        best: the lowest val_loss regardless of budget, when it is not the winner; else None.
        winner: the winner, at its mean val_loss over seeds when confirmed; None when its size is not recorded.
        winner_seeds: the seeds of that mean, None when not confirmed.
        max_params: the --max-params limit, if any.
    """

    points: tuple[ParetoPoint, ...]
    front: tuple[ParetoPoint, ...]
    best: ParetoPoint | None
    winner: ParetoPoint | None
    winner_seeds: int | None
    max_params: int | None

    @property
    def spread(self) -> float:
        """The ratio of the largest to the smallest model: over a decade, the log axis needs no minor labels."""
        sizes = [point.params for point in self.points]
        return max(sizes) / max(min(sizes), 1) if sizes else math.nan


def pareto_info(rows: Sequence[TrialRow], winner: TrialRow, budget: Budget) -> ParetoInfo | None:
    """Each trial's val_loss against its parameters, the front, the winner and the best trial; None when no
    trial has its size recorded.

    Trials are placed at the val_loss of their search run; the winner, if confirmed over seeds,
    at its mean over them (where its ranking put it).
    """
    measured = [row for row in rows if row.params is not None]
    if not measured:
        return None

    def point(row: TrialRow, loss: float | None = None) -> ParetoPoint:
        return ParetoPoint(row.trial, int(row.params), float(row.val_loss if loss is None else loss))

    best = min(measured, key=lambda row: (row.val_loss, row.trial))
    confirmed = winner.mean_val_loss is not None
    return ParetoInfo(
        tuple(map(point, measured)), tuple(map(point, pareto_front(measured))),
        point(best) if best.trial != winner.trial else None,
        point(winner, winner.mean_val_loss) if winner.params is not None else None,
        winner.seeds if confirmed else None, budget.max_params)
