"""rank_trials(), format_table() and build_report(): a run's trials ranked, written out and plotted."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tuner.config import REPORT_FORMATS, ReportSettings
from tuner.errors import TunerUsageError
from tuner.files import atomic_write_text
from tuner.plots import DEFAULT_PLOTTED_TRIALS, format_value, write_plots
from tuner.rundir import Run, RunRecord, open_run
from tuner.trials import FAILED, METRIC_COLUMNS, RANKED, RUNNING, failure_reason, hyperparameters_of, iter_trials
# For each hyperparameter of the search space: the SearchSettings field and flag that set its range, and the
# lowest value that flag accepts (a winner at that floor cannot be helped by widening downwards).
SEARCH_FLAGS: dict[str, tuple[str, str, float | None]] = {
    "conv_layers": ("conv_layers", "--conv-layers", 1),
    "nodes": ("nodes", "--nodes", 1),
    "dense_layers": ("dense_layers", "--dense-layers", 0),
    "learning_rate": ("learning_rates", "--learning-rates", None),
    "dropout": ("dropouts", "--dropouts", 0.0),
}


@dataclass(frozen=True)
class Report:
    """A run's trials, ranked, with what the report wrote and what it noticed."""

    run: Run
    record: RunRecord
    completed: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    running: int
    hyperparameters: list[str]
    warnings: list[str]
    written: list[Path]


def rank_trials(run: Run) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Rank a run's completed and pruned trials by their best validation loss, lowest first.

    Reads only files the search writes atomically, so it is safe while a search is running.
    A pruned trial is ranked by the best val_loss it reached before it was stopped, so it
    wins only if that is genuinely the lowest.
    Trials with equal best val_loss share a rank (1, 1, 3); among them the higher
    val_accuracy, then the lower trial id, comes first, and the first row is the winner.

    Args:
        run: the run directory.

    Returns:
        The ranked rows (keys: rank, trial, each hyperparameter, val_loss, val_accuracy,
        best_epoch, epochs, pruned (the epoch it was stopped at, or None), seconds), the failed rows (trial, each hyperparameter, reason) and
        the number of trials still marked RUNNING (running now, or interrupted).
    """
    records = list(iter_trials(run))
    names = _hyperparameter_names(record.hyperparameters for record in records)
    completed: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    running = 0
    for record in records:
        values = {name: record.hyperparameters.get(name) for name in names}
        if record.status == RUNNING:
            running += 1
        elif record.status == FAILED:
            failed.append({"trial": record.trial_id, **values, "reason": failure_reason(record.message)})
        elif record.status in RANKED:
            best = record.best_epoch()
            if best is None:
                failed.append({"trial": record.trial_id, **values, "reason": "no finite val_loss in any epoch (diverged)"})
                continue
            completed.append({
                "rank": 0, "trial": record.trial_id, **values,
                "val_loss": best["val_loss"], "val_accuracy": best.get("val_accuracy"), "best_epoch": best["epoch"],
                "epochs": len(record.history) or None,
                "pruned": record.pruned.get("epoch") if record.pruned else None,
                "seconds": round(record.seconds, 1) if record.seconds is not None else None,
            })
    completed.sort(key=lambda row: (row["val_loss"], -(row["val_accuracy"] or 0.0), row["trial"]))
    for position, row in enumerate(completed):
        tied = position and row["val_loss"] == completed[position - 1]["val_loss"]
        row["rank"] = completed[position - 1]["rank"] if tied else position + 1
    return completed, failed, running


def _hyperparameter_names(values_per_trial: Any) -> list[str]:
    """Every hyperparameter name across trials, in the order the search space declared them."""
    names: list[str] = []
    for values in values_per_trial:
        names.extend(name for name in values if name not in names)
    return names


def format_table(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Render rows (all with the same keys) as a table, Markdown, CSV or JSON.

    Args:
        rows: ranked or failed rows from rank_trials.
        fmt: one of table (plain text), markdown, csv, json.

    Returns:
        The document, without a trailing newline for table and markdown. JSON is a list of
        objects with the rows' keys; CSV has one header line and full-precision numbers.
    """
    if fmt not in REPORT_FORMATS:
        raise TunerUsageError(f"format must be one of {', '.join(REPORT_FORMATS)}, got {fmt!r}.")
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    columns = list(rows[0]) if rows else ["rank", "trial", *METRIC_COLUMNS]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    from tabulate import tabulate

    table = [[_cell(column, row.get(column)) for column in columns] for row in rows]
    # Cells are preformatted strings; parsing them back as numbers would turn trial "03" into 3.
    return tabulate(table, headers=columns, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True, colalign=[_align(column) for column in columns])


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column in ("val_loss", "val_accuracy") and isinstance(value, float):
        return f"{value:.4f}"
    if column == "seconds" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    return str(value)


def _align(column: str) -> str:
    return "left" if column in ("trial", "reason") else "right"


def search_space(record: RunRecord, rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """The values searched for each hyperparameter: the run's settings, else the values its trials tried."""
    space: dict[str, list[Any]] = {}
    for name in names:
        field = SEARCH_FLAGS.get(name, (name, "", None))[0]
        configured = getattr(record.search, field, None)
        if isinstance(configured, tuple) and configured:
            space[name] = list(configured)
        else:
            space[name] = sorted({row[name] for row in rows if row.get(name) is not None}, key=_sort_key)
    return space


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def boundary_warnings(winner: dict[str, Any], space: dict[str, list[Any]], image_side: int | None = None) -> list[str]:
    """Say which of the winner's values sit at the edge of a range that could be widened.

    A value is at the edge when its hyperparameter was searched over more than one value
    and the winner took the smallest or the largest; the edge is only reported if the
    range can grow that way (no fewer than 1 conv layer, no more conv layers than the
    images are big enough for, no dropout below 0).

    Args:
        winner: the first ranked row.
        space: hyperparameter name -> the values searched.
        image_side: the side of the images, to know whether one more conv layer would fit.

    Returns:
        One message per hyperparameter at an edge.
    """
    messages = []
    for name, values in space.items():
        value = winner.get(name)
        numeric = [item for item in values if isinstance(item, (int, float)) and not isinstance(item, bool)]
        if len(set(numeric)) < 2 or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        _, flag, floor = SEARCH_FLAGS.get(name, (name, "", None))
        low, high = min(numeric), max(numeric)
        shown = f"{format_value(low)}..{format_value(high)}"
        how = f"widen {flag}" if flag else "widen its range"
        if value == high and _can_grow(name, value, image_side):
            messages.append(f"the winner's {name}={format_value(value)} is the largest value searched ({shown}); "
                            f"the best may lie beyond it: {how} upwards and search again.")
        elif value == low and (floor is None or value > floor):
            messages.append(f"the winner's {name}={format_value(value)} is the smallest value searched ({shown}); "
                            f"the best may lie below it: {how} downwards and search again.")
    return messages


def _can_grow(name: str, value: Any, image_side: int | None) -> bool:
    if name == "dropout":
        return value < 0.9
    if name == "conv_layers" and image_side is not None:
        from tuner.hypermodel import smallest_side_for

        return smallest_side_for(int(value) + 1) <= image_side
    return True


def counts_line(ranked: Sequence[dict[str, Any]], failed: Sequence[dict[str, Any]], running: int) -> str:
    """How the trials ended, e.g. "12 completed, 13 pruned, 2 failed, 0 running or interrupted"."""
    pruned = sum(row.get("pruned") is not None for row in ranked)
    return (f"{len(ranked) - pruned} completed, {pruned} pruned (stopped early behind the median), {len(failed)} failed, "
            f"{running} running or interrupted")


def write_results(run: Run, completed: Sequence[dict[str, Any]], failed: Sequence[dict[str, Any]], running: int,
                  warnings: Sequence[str] = ()) -> list[Path]:
    """Write RUN/results.csv (the ranking) and RUN/results.md (ranking, failures, notes), each atomically."""
    csv_path, markdown_path = run.results("csv"), run.results("md")
    atomic_write_text(csv_path, format_table(completed, "csv"))
    parts = [f"# Results of {run.root.name}", "", f"{counts_line(completed, failed, running)}; ranked by best val_loss "
             f"(lowest first).", "", format_table(completed, "markdown") if completed else "(none yet)"]
    if failed:
        parts += ["", "## Failed trials", "", format_table(failed, "markdown")]
    if warnings:
        parts += ["", "## Notes", "", *(f"- {message}" for message in warnings)]
    atomic_write_text(markdown_path, "\n".join(parts) + "\n")
    return [csv_path, markdown_path]


def build_report(settings: ReportSettings) -> Report:
    """Open a run, rank its trials and write results.csv, results.md and the plots into it.

    Args:
        settings: the report settings (run directory, --top).

    Returns:
        The ranking and what was written.

    Raises:
        TunerUsageError: the run directory is missing, is not a run, or has no completed trial yet.
    """
    run, record = open_run(settings.run_dir)
    completed, failed, running = rank_trials(run)
    # rank_trials gives every row every hyperparameter, so any row names them all.
    names = list(hyperparameters_of((completed or failed or [{}])[0]))
    space = search_space(record, completed, names)
    warnings = []
    if completed:
        warnings = boundary_warnings(completed[0], space, record.dataset.img_size)
    if running:
        warnings.append(f"{running} trial(s) are still running or were interrupted; this ranking is provisional.")
    written = write_results(run, completed, failed, running, warnings)
    if not completed:
        reasons = sorted({row["reason"] for row in failed})
        raise TunerUsageError(
            f"run '{run.root}' has no completed trial yet ({running} running, {len(failed)} failed"
            + (f": {'; '.join(reasons)}" if reasons else "")
            + "); wait for the search to finish a trial, or run python search.py to resume it."
        )
    written += write_plots(run, completed, failed, names, space, top=settings.top or DEFAULT_PLOTTED_TRIALS)
    return Report(run, record, completed, failed, running, names, warnings, written)


