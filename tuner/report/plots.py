"""The figures of a ranked run: the top trials' val_loss curves, the best val_loss at each hyperparameter value, and
val_loss against model size with the Pareto front; as Figure objects (report.html) and as PNG files in RUN/plots."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

from tuner.report.budget import Budget, pareto_front
from tuner.files import atomic_write_bytes, read_json
from tuner.trials.rows import TrialRow
from tuner.rundir import Run
from tuner.trials.records import is_finite_number

# The curves plot stays readable with this many lines when --top is not given.
DEFAULT_PLOTTED_TRIALS = 5
# Every figure names its axes with this, so a plot read on its own says what was measured.
VAL_LOSS_LABEL = "validation loss (cross-entropy)"
# Screen-sized PNGs: sharp on a laptop, about 50 KB each, so report.html stays small.
PNG_DPI = 100


def format_value(value: Any) -> str:
    """A hyperparameter value as labels and messages show it: floats in %g form (0.001, 1e-05), the rest as str()."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def png_bytes(figure: Any, dpi: int = PNG_DPI) -> bytes:
    """A matplotlib Figure rendered to PNG in memory."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def curves_figure(run: Run, ranking: Sequence[TrialRow], names: Sequence[str], top: int = DEFAULT_PLOTTED_TRIALS) -> Any:
    """val_loss by epoch of the best `top` ranked trials: the best epoch circled, a pruned trial's last epoch crossed.

    Args:
        run: the run directory; the curves are read from its per-trial histories.
        ranking: the ranked rows, best first (the first is drawn thicker: the winner).
        names: the hyperparameter names the legend spells out.
        top: how many trials get a curve.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure  # the object API draws with Agg and touches no global pyplot state
    from matplotlib.lines import Line2D

    shown = list(ranking[:top])
    figure = Figure(figsize=(9, 5 + 0.22 * len(shown)), layout="constrained")
    axes = figure.add_subplot()
    handles = []
    for row in shown:
        history = read_json(run.history(row.trial))
        epochs = history.get("epochs", []) if isinstance(history, dict) else []
        points = [(epoch["epoch"], epoch["val_loss"]) for epoch in epochs
                  if isinstance(epoch, dict) and is_finite_number(epoch.get("val_loss"))]
        if not points:
            continue
        winner = row is ranking[0]
        label = (f"#{row.rank} trial {row.trial}" + (" (winner)" if winner else "")
                 + (f" (pruned at epoch {row.pruned})" if row.pruned is not None else "") + ": "
                 + " ".join(f"{name}={format_value(row.hyperparameters.get(name))}" for name in names))
        line, = axes.plot(*zip(*points), marker=".", linewidth=2.8 if winner else 1.4, label=label, zorder=3 if winner else 2)
        handles.append(line)
        if row.best_epoch is not None and row.val_loss is not None:
            axes.plot([row.best_epoch], [row.val_loss], marker="o", markersize=9, markerfacecolor="none",
                      color=line.get_color())
        if row.pruned is not None:
            # The pruner stopped this trial: its curve ends here, not at the last epoch of the search.
            axes.plot([points[-1][0]], [points[-1][1]], marker="x", markersize=12, markeredgewidth=2.5, color=line.get_color())
    handles += [Line2D([], [], marker="o", markerfacecolor="none", color="black", linestyle="none", label="best epoch"),
                Line2D([], [], marker="x", markeredgewidth=2.5, color="black", linestyle="none",
                       label="stopped there by the pruner")]
    axes.set(xlabel="epoch", ylabel=VAL_LOSS_LABEL,
             title=f"Validation loss by epoch of the top {len(shown)} of {len(ranking)} ranked trials")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    figure.legend(handles=handles, loc="outside lower center", fontsize="small")
    return figure


def hyperparameters_figure(ranking: Sequence[TrialRow], failed: Sequence[TrialRow], names: Sequence[str],
                           space: dict[str, list[Any]]) -> Any:
    """One panel per hyperparameter: every trial's val_loss at its value, the best at each value joined by a line,
    the winner's value starred and values whose trials all failed marked "failed"."""
    from matplotlib.figure import Figure

    shown = [name for name in names if space.get(name)] or list(names)
    figure = Figure(figsize=(max(4 * len(shown), 6), 4.4), layout="constrained")
    winner = ranking[0] if ranking else None
    for index, name in enumerate(shown):
        axes = figure.add_subplot(1, max(len(shown), 1), index + 1)
        values = space.get(name) or []
        positions = {str(value): position for position, value in enumerate(values)}
        best = []
        for value in values:
            losses = [row.val_loss for row in ranking if row.hyperparameters.get(name) == value]
            axes.scatter([positions[str(value)]] * len(losses), losses, color="grey", alpha=0.4, s=12,
                         label="a trial" if not best else None)
            best.append(min(losses) if losses else math.nan)
            if not losses and any(row.hyperparameters.get(name) == value for row in failed):
                axes.annotate("failed", (positions[str(value)], 0), xycoords=("data", "axes fraction"),
                              ha="center", va="bottom", color="red")
        axes.plot(range(len(values)), best, marker="o", color="tab:blue", label="best at this value")
        if winner is not None and str(winner.hyperparameters.get(name)) in positions:
            axes.scatter([positions[str(winner.hyperparameters.get(name))]], [winner.val_loss], marker="*", s=200,
                         color="tab:orange", zorder=3, label=f"winner (trial {winner.trial})")
        axes.set_xticks(range(len(values)), [format_value(value) for value in values])
        axes.set(xlabel=f"{name} (value searched)", ylabel=VAL_LOSS_LABEL if index == 0 else None)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle("Best validation loss at each value of each hyperparameter (lower is better)")
    return figure


def pareto_figure(rows: Sequence[TrialRow], winner: TrialRow, budget: Budget) -> Any | None:
    """Each trial's val_loss against its parameters (log scale), the Pareto front as a step line, the winner and the
    best trial regardless of budget marked, and the --max-params limit if any; None when no trial has its size.

    Trials are drawn at the val_loss of their search run; the winner, if confirmed over seeds,
    at its mean over them.
    """
    from matplotlib.figure import Figure

    measured = [row for row in rows if row.params is not None]
    if not measured:
        return None
    figure = Figure(figsize=(9, 5.5), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter([row.params for row in measured], [row.val_loss for row in measured], color="grey", alpha=0.6,
                 s=18, label="a trial")
    front = pareto_front(measured)
    axes.step([row.params for row in front], [row.val_loss for row in front], where="post", color="tab:blue",
              marker="o", label="Pareto front (no trial smaller and better)")
    best = min(measured, key=lambda row: (row.val_loss, row.trial))
    if best.trial != winner.trial:
        axes.scatter([best.params], [best.val_loss], marker="o", s=160, facecolors="none", edgecolors="tab:red",
                     linewidths=2, zorder=3, label=f"lowest val_loss, regardless of budget (trial {best.trial})")
    if winner.params is not None:
        # A winner confirmed over seeds was picked by its mean val_loss, which is where it is drawn.
        confirmed = winner.mean_val_loss is not None
        axes.scatter([winner.params], [winner.mean_val_loss if confirmed else winner.val_loss], marker="*", s=260,
                     color="tab:orange", zorder=4,
                     label=f"winner (trial {winner.trial}" + (f", mean over {winner.seeds} seeds)" if confirmed else ")"))
    if budget.max_params is not None:
        axes.axvline(budget.max_params, color="tab:red", linestyle="--", alpha=0.6, label=f"--max-params {budget.max_params:,}")
    for row in front:
        axes.annotate(f"trial {row.trial}", (row.params, row.val_loss), textcoords="offset points", xytext=(4, 4),
                      fontsize="small")
    axes.set_xscale("log")
    _plain_counts(axes.xaxis, max(row.params for row in measured) / max(min(row.params for row in measured), 1))
    axes.set(xlabel="parameters (count, log scale)", ylabel=f"best {VAL_LOSS_LABEL}",
             title=f"Validation loss against model size ({len(measured)} trials; lower left is better)")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small")
    return figure


def _plain_counts(axis: Any, ratio: float) -> None:
    """Label a log axis of counts as 12,345 instead of 1.2x10^4; its minor ticks too when it spans under a decade
    (there they are the only labels; over wider spans they would crowd)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:,.0f}")
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(plain if ratio < 10 else NullFormatter())


def write_plots(run: Run, completed: Sequence[TrialRow], failed: Sequence[TrialRow],
                names: Sequence[str], space: dict[str, list[Any]], top: int = DEFAULT_PLOTTED_TRIALS) -> list[Path]:
    """Draw RUN/plots/val_loss_curves.png (curves_figure) and RUN/plots/hyperparameters.png (hyperparameters_figure).

    Args:
        run: the run directory; the curves are read from its per-trial histories.
        completed: the ranked rows of rank_trials, best first.
        failed: the failed rows of rank_trials.
        names: the hyperparameter names, one panel each.
        space: hyperparameter name -> the values searched (the panels' x axes).
        top: how many of the best trials get a curve.

    Returns:
        The PNG files written.
    """
    return [atomic_write_bytes(run.plots / "val_loss_curves.png", png_bytes(curves_figure(run, completed, names, top))),
            atomic_write_bytes(run.plots / "hyperparameters.png",
                               png_bytes(hyperparameters_figure(completed, failed, names, space)))]


def write_pareto_plot(run: Run, rows: Sequence[TrialRow], winner: TrialRow, budget: Budget) -> Path | None:
    """Draw RUN/plots/pareto.png (pareto_figure) from every ranked row, the budget's exclusions included.

    Returns:
        The PNG written, or None when no trial has its size recorded (a run from before it was).
    """
    figure = pareto_figure(rows, winner, budget)
    return None if figure is None else atomic_write_bytes(run.plots / "pareto.png", png_bytes(figure))
