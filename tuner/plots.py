"""PNG plots of a ranked run: the top trials' val_loss curves, the best val_loss at each hyperparameter value, and
val_loss against model size with the Pareto front."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

from tuner.budget import Budget, pareto_front
from tuner.files import atomic_write_bytes, read_json
from tuner.rows import TrialRow
from tuner.rundir import Run
from tuner.trials import is_finite_number

# The curves plot stays readable with this many lines when --top is not given.
DEFAULT_PLOTTED_TRIALS = 5


def format_value(value: Any) -> str:
    """A hyperparameter value as labels and messages show it: floats in %g form (0.001, 1e-05), the rest as str()."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_plots(run: Run, completed: Sequence[TrialRow], failed: Sequence[TrialRow],
                names: Sequence[str], space: dict[str, list[Any]], top: int = DEFAULT_PLOTTED_TRIALS) -> list[Path]:
    """Draw RUN/plots/val_loss_curves.png (top trials by epoch) and RUN/plots/hyperparameters.png.

    The second has one panel per hyperparameter: the best val_loss reached at each of its
    values (every trial as a faint dot, the winner's value highlighted, values whose trials
    all failed marked "failed").

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
    from matplotlib.figure import Figure  # the object API draws with Agg and touches no global pyplot state

    written = []
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    for row in completed[:top]:
        history = read_json(run.history(row.trial))
        epochs = history.get("epochs", []) if isinstance(history, dict) else []
        points = [(epoch["epoch"], epoch["val_loss"]) for epoch in epochs
                  if isinstance(epoch, dict) and is_finite_number(epoch.get("val_loss"))]
        if not points:
            continue
        label = f"#{row.rank} trial {row.trial}: " + " ".join(
            f"{name}={format_value(row.hyperparameters.get(name))}" for name in names)
        line, = axes.plot(*zip(*points), marker=".", label=label)
        if row.best_epoch is not None:
            axes.plot([row.best_epoch], [row.val_loss], marker="o", markersize=9, color=line.get_color())
    axes.set(xlabel="epoch", ylabel="val_loss", title=f"val_loss of the top {min(top, len(completed))} trials (o: best epoch)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    written.append(_save_png(figure, run.plots / "val_loss_curves.png"))

    shown = [name for name in names if space.get(name)] or list(names)
    figure = Figure(figsize=(4 * max(len(shown), 1), 4), layout="constrained")
    for index, name in enumerate(shown):
        axes = figure.add_subplot(1, max(len(shown), 1), index + 1)
        values = space.get(name) or []
        positions = {str(value): position for position, value in enumerate(values)}
        best = []
        for value in values:
            losses = [row.val_loss for row in completed if row.hyperparameters.get(name) == value]
            axes.scatter([positions[str(value)]] * len(losses), losses, color="grey", alpha=0.4, s=12)
            best.append(min(losses) if losses else math.nan)
            if not losses and any(row.hyperparameters.get(name) == value for row in failed):
                axes.annotate("failed", (positions[str(value)], 0), xycoords=("data", "axes fraction"),
                              ha="center", va="bottom", color="red")
        axes.plot(range(len(values)), best, marker="o", color="tab:blue")
        winner = completed[0] if completed else None
        if winner is not None and str(winner.hyperparameters.get(name)) in positions:
            axes.scatter([positions[str(winner.hyperparameters.get(name))]], [winner.val_loss], marker="*", s=200,
                         color="tab:orange", zorder=3, label="winner")
            axes.legend(fontsize="small")
        axes.set_xticks(range(len(values)), [format_value(value) for value in values])
        axes.set(xlabel=name, ylabel="best val_loss" if index == 0 else None)
        axes.grid(alpha=0.3)
    figure.suptitle("best val_loss at each value of each hyperparameter")
    written.append(_save_png(figure, run.plots / "hyperparameters.png"))
    return written


def write_pareto_plot(run: Run, rows: Sequence[TrialRow], winner: TrialRow, budget: Budget) -> Path | None:
    """Draw RUN/plots/pareto.png: each trial's val_loss against its parameters (log scale), the Pareto front as a
    step line, the winner and the best trial regardless of budget marked, and the --max-params limit if any.

    Trials are drawn at the val_loss of their search run; the winner, if confirmed over seeds,
    at its mean over them.

    Args:
        run: the run directory.
        rows: every ranked row, the budget's exclusions included, best first.
        winner: the row the report picked (within the budget).
        budget: the report's budget.

    Returns:
        The PNG written, or None when no trial has its size recorded (a run from before it was).
    """
    from matplotlib.figure import Figure

    measured = [row for row in rows if row.params is not None]
    if not measured:
        return None
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter([row.params for row in measured], [row.val_loss for row in measured], color="grey", alpha=0.6,
                 s=18, label="trial")
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
        axes.annotate(str(row.trial), (row.params, row.val_loss), textcoords="offset points", xytext=(4, 4),
                      fontsize="small")
    axes.set_xscale("log")
    axes.set(xlabel="parameters (log scale)", ylabel="best val_loss", title=f"val_loss against model size ({len(measured)} trials)")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small")
    return _save_png(figure, run.plots / "pareto.png")


def _save_png(figure: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return atomic_write_bytes(path, buffer.getvalue())
