"""The figures of a ranked run: the top trials' val_loss curves, the best val_loss at each hyperparameter value, and
val_loss against model size with the Pareto front; as Figure objects (report.html) and as PNG files in RUN/plots.

Each figure function only draws: what it shows is computed from the checked records and rows by plot_data.py.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path
from typing import Any, Sequence

from tuner.files import atomic_write_bytes
from tuner.config.spaces import FloatRange
from tuner.report.budget import Budget
from tuner.report.plot_data import (DEFAULT_PLOTTED_TRIALS, CurvesInfo, HyperparametersInfo, Panel, ParetoInfo,
                                    curves_info, format_value, hyperparameters_info, pareto_info)
from tuner.rundir import Run
from tuner.trials.records import TrialRecord
from tuner.trials.rows import TrialRow

__all__ = ["DEFAULT_PLOTTED_TRIALS", "VAL_LOSS_LABEL", "curves_figure", "format_value", "hyperparameters_figure",
           "pareto_figure", "png_bytes", "write_pareto_plot", "write_plots"]

# Every figure names its axes with this, so a plot read on its own says what was measured.
VAL_LOSS_LABEL = "validation loss (cross-entropy)"
# Screen-sized PNGs: sharp on a laptop, about 50 KB each, so report.html stays small.
PNG_DPI = 100
# Figures are at most this wide (inches, so 1,100 px at PNG_DPI): report.html's column is about 1,130 px, so a
# figure is shown at its own size, its text as large as it was drawn.
FIGURE_WIDTH = 11.0
# The per-hyperparameter panels: at most this many side by side, each this big (inches), so a panel's
# ticks, values and points stay readable however many hyperparameters the space has.
PANEL_COLUMNS = 3
PANEL_SIZE = (FIGURE_WIDTH / PANEL_COLUMNS, 2.9)
# A categorical panel's tick labels are turned when one is longer than this (characters), so neighbours never overlap.
UPRIGHT_LABEL = 6


def png_bytes(figure: Any, dpi: int = PNG_DPI) -> bytes:
    """A matplotlib Figure rendered to PNG in memory.

    The box is the drawing's own ("tight"), so a legend or label that outgrows the figure widens the PNG
    instead of being cut off at its edges.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.15)
    return buffer.getvalue()


def curves_figure(info: CurvesInfo) -> Any:
    """val_loss by epoch of the top ranked trials (plot_data.curves_info): the best epoch circled, a pruned
    trial's last epoch crossed, the winner drawn thicker; the legend below, two columns, each trial's configuration
    wrapped under its rank so that no line of it is wider than its column.

    Returns:
        A matplotlib Figure.
    """
    from matplotlib.figure import Figure  # the object API draws with Agg and touches no global pyplot state
    from matplotlib.lines import Line2D

    columns = 2 if len(info.curves) > 1 else 1
    # About 130 characters of the legend's small font fit across the figure; a column gets its share of them,
    # less the room its line sample takes.
    width = 120 // columns
    rows = sum(1 + len(textwrap.wrap(" ".join(curve.configuration), width)) for curve in info.curves)
    figure = Figure(figsize=(FIGURE_WIDTH, 5 + 0.17 * rows / columns), layout="constrained")
    axes = figure.add_subplot()
    handles = []
    for curve in info.curves:
        label = "\n".join([curve.title, *textwrap.wrap(" ".join(curve.configuration), width)])
        line, = axes.plot(*zip(*curve.points), marker=".", linewidth=2.8 if curve.winner else 1.4, label=label,
                          zorder=3 if curve.winner else 2)
        handles.append(line)
        if curve.best is not None:
            axes.plot(*curve.best, marker="o", markersize=9, markerfacecolor="none", color=line.get_color())
        if curve.stopped is not None:
            # Stopped early: its curve ends here, not at the last epoch of the search.
            axes.plot(*curve.stopped, marker="x", markersize=12, markeredgewidth=2.5, color=line.get_color())
    handles.append(Line2D([], [], marker="o", markerfacecolor="none", color="black", linestyle="none", label="best epoch"))
    if any(curve.stopped for curve in info.curves):  # the cross is explained only where one is drawn
        handles.append(Line2D([], [], marker="x", markeredgewidth=2.5, color="black", linestyle="none",
                              label="stopped there (pruned)"))
    axes.set(xlabel="epoch", ylabel=VAL_LOSS_LABEL,
             title=f"Validation loss by epoch of the top {len(info.curves)} of {info.ranked} ranked trials")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize="small", labelspacing=0.8)
    return figure


def hyperparameters_figure(info: HyperparametersInfo) -> Any:
    """One panel per hyperparameter (plot_data.hyperparameters_info), PANEL_COLUMNS to a row, one val_loss axis
    shared by all: every trial's val_loss at its value, the best at each value joined by a line, the winner's
    value starred and values whose trials all failed marked "failed"; one legend for every panel."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    count = max(len(info.panels), 1)
    columns = min(count, PANEL_COLUMNS)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.9), layout="constrained")
    first = None
    for index, panel in enumerate(info.panels):
        axes = figure.add_subplot(rows, columns, index + 1, sharey=first)
        first = first or axes
        _draw_panel(axes, panel, info)
        if index % columns:
            axes.tick_params(labelleft=False)  # the shared axis is labelled once, on the left of each row
    handles = [Line2D([], [], marker="o", color="grey", alpha=0.5, linestyle="none", markersize=5, label="a trial"),
               Line2D([], [], marker="o", color="tab:blue", label="best at this value")]
    if info.winner_trial is not None:
        handles.append(Line2D([], [], marker="*", color="tab:orange", markersize=14, linestyle="none",
                              label=f"winner (trial {info.winner_trial})"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="medium")
    figure.suptitle("Validation loss at each value of each hyperparameter (lower is better)", fontsize="large")
    figure.supylabel(VAL_LOSS_LABEL)
    return figure


def _draw_panel(axes: Any, panel: Panel, info: HyperparametersInfo) -> None:
    """One hyperparameter's panel: its values evenly spaced (a choice), or placed by size (a continuous range)."""
    continuous = panel.log is not None
    positions = list(panel.values) if continuous else list(range(len(panel.values)))
    for position, losses in zip(positions, panel.losses):
        axes.scatter([position] * len(losses), losses, color="grey", alpha=0.5, s=16, zorder=2)
    if not continuous:
        known = [(position, best) for position, best in zip(positions, panel.best) if best is not None]
        if known:
            axes.plot(*zip(*known), marker="o", color="tab:blue", zorder=3)
    for position, failed in zip(positions, panel.failed):
        if failed:
            axes.annotate("failed", (position, 0.02), xycoords=("data", "axes fraction"), ha="center", va="bottom",
                          color="red")
    if panel.winner is not None and info.winner_loss is not None:
        axes.scatter([positions[panel.winner]], [info.winner_loss], marker="*", s=220, color="tab:orange", zorder=4)
    if continuous:
        axes.set_xscale("log" if panel.log else "linear")
        low, high = panel.bounds or (min(panel.values), max(panel.values))
        margin = (high / low) ** 0.04 if panel.log else (high - low) * 0.04
        axes.set_xlim(low / margin, high * margin) if panel.log else axes.set_xlim(low - margin, high + margin)
        if panel.log:
            _plain_numbers(axes.xaxis)
    else:
        labels = panel.labels
        turned = max(map(len, labels)) > UPRIGHT_LABEL and len(labels) > 2
        axes.set_xticks(positions, labels, rotation=30 if turned else 0, ha="right" if turned else "center")
        axes.set_xlim(-0.5, len(positions) - 0.5)
    axes.set_xlabel(panel.name + (" (log scale)" if panel.log else ""), fontsize="medium")
    axes.grid(alpha=0.3)


def pareto_figure(info: ParetoInfo) -> Any:
    """Each trial's val_loss against its parameters (log scale), the Pareto front as a step line, the winner and the
    best trial regardless of budget marked, and the --max-params limit if any (plot_data.pareto_info)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(FIGURE_WIDTH * 0.82, 5.5), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter([point.params for point in info.points], [point.val_loss for point in info.points], color="grey",
                 alpha=0.6, s=18, label="a trial")
    axes.step([point.params for point in info.front], [point.val_loss for point in info.front], where="post",
              color="tab:blue", marker="o", label="Pareto front (no trial smaller and better)")
    if info.best is not None:
        axes.scatter([info.best.params], [info.best.val_loss], marker="o", s=160, facecolors="none",
                     edgecolors="tab:red", linewidths=2, zorder=3,
                     label=f"lowest val_loss, regardless of budget (trial {info.best.trial})")
    if info.winner is not None:
        seeds = f", mean over {info.winner_seeds} seeds" if info.winner_seeds is not None else ""
        axes.scatter([info.winner.params], [info.winner.val_loss], marker="*", s=260, color="tab:orange", zorder=4,
                     label=f"winner (trial {info.winner.trial}{seeds})")
    if info.max_params is not None:
        axes.axvline(info.max_params, color="tab:red", linestyle="--", alpha=0.6, label=f"--max-params {info.max_params:,}")
    for point in info.front:
        axes.annotate(f"trial {point.trial}", (point.params, point.val_loss), textcoords="offset points", xytext=(4, 4),
                      fontsize="small")
    axes.set_xscale("log")
    _plain_counts(axes.xaxis, info.spread)
    axes.set(xlabel="parameters (count, log scale)", ylabel=f"best {VAL_LOSS_LABEL}",
             title=f"Validation loss against model size ({len(info.points)} trials; lower left is better)")
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


def _plain_numbers(axis: Any) -> None:
    """Label a log axis of small numbers at its decades only, as 0.001 rather than 10^-3: the minor ticks'
    labels (2x10^-4, 3x10^-4, ...) would run into each other in a panel this narrow."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def write_plots(run: Run, records: Sequence[TrialRecord], completed: Sequence[TrialRow], failed: Sequence[TrialRow],
                names: Sequence[str], space: dict[str, list[Any]], ranges: dict[str, FloatRange] | None = None,
                top: int = DEFAULT_PLOTTED_TRIALS) -> list[Path]:
    """Draw RUN/plots/val_loss_curves.png (curves_figure) and RUN/plots/hyperparameters.png (hyperparameters_figure).

    Args:
        run: the run directory the PNGs go into.
        records: the trials as scan_trials read them, whose histories are the curves.
        completed: the ranked rows, best first.
        failed: the failed rows.
        names: the hyperparameter names, one panel each.
        space: hyperparameter name -> the values searched (the panels' x axes).
        ranges: the continuous hyperparameters' ranges, whose panels place values by size.
        top: how many of the best trials get a curve.

    Returns:
        The PNG files written.
    """
    curves = curves_figure(curves_info(records, completed, names, top))
    panels = hyperparameters_figure(hyperparameters_info(completed, failed, names, space, ranges))
    return [atomic_write_bytes(run.plots / "val_loss_curves.png", png_bytes(curves)),
            atomic_write_bytes(run.plots / "hyperparameters.png", png_bytes(panels))]


def write_pareto_plot(run: Run, rows: Sequence[TrialRow], winner: TrialRow, budget: Budget) -> Path | None:
    """Draw RUN/plots/pareto.png (pareto_figure) from every ranked row, the budget's exclusions included.

    Returns:
        The PNG written, or None when no trial has its size recorded (a run from before it was).
    """
    info = pareto_info(rows, winner, budget)
    return None if info is None else atomic_write_bytes(run.plots / "pareto.png", png_bytes(pareto_figure(info)))
