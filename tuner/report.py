"""rank_trials(), format_table() and build_report(): a run's trials ranked, written out and plotted."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tuner.config import ReportSettings
from tuner.errors import TunerUsageError
from tuner.plots import DEFAULT_PLOTTED_TRIALS, format_value, write_plots
from tuner.rundir import RunPaths, atomic_write_text, failure_reason, iter_trials, open_run, read_json

# The winner's half of the report lives in tuner/winner.py; report.py and the tests import it from here.
from tuner.winner import (  # noqa: F401
    Winner, evaluate_on_test, format_winner, load_run_dataset, publish_winner, retrain_best, search_settings_of,
)

FORMATS = ("table", "markdown", "csv", "json")
METRIC_COLUMNS = ("val_loss", "val_accuracy", "best_epoch", "epochs", "seconds")
# Row keys that are not hyperparameters.
ROW_FIELDS = ("rank", "trial", "reason", *METRIC_COLUMNS)
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
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

    paths: RunPaths
    run_settings: dict[str, Any]
    completed: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    running: int
    hyperparameters: list[str]
    warnings: list[str]
    written: list[Path]


def rank_trials(paths: RunPaths) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Rank a run's completed trials by their best validation loss, lowest first.

    Reads only files the search writes atomically, so it is safe while a search is running.
    Trials with equal best val_loss share a rank (1, 1, 3); among them the higher
    val_accuracy, then the lower trial id, comes first, and the first row is the winner.

    Args:
        paths: the run directory.

    Returns:
        The completed rows (keys: rank, trial, each hyperparameter, val_loss, val_accuracy,
        best_epoch, epochs, seconds), the failed rows (trial, each hyperparameter, reason) and
        the number of trials still marked RUNNING (running now, or interrupted).
    """
    records = list(iter_trials(paths))
    names = _hyperparameter_names(record.hyperparameters for record in records)
    completed: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    running = 0
    for record in records:
        values = {name: record.hyperparameters.get(name) for name in names}
        if record.status == "RUNNING":
            running += 1
        elif record.status == "FAILED":
            failed.append({"trial": record.trial_id, **values, "reason": failure_reason(record.message)})
        elif record.status == "COMPLETED":
            best = _best_epoch(record.history) or _best_epoch_from_trial_file(paths, record.trial_id)
            if best is None:
                failed.append({"trial": record.trial_id, **values, "reason": "no finite val_loss in any epoch (diverged)"})
                continue
            completed.append({
                "rank": 0, "trial": record.trial_id, **values,
                "val_loss": best["val_loss"], "val_accuracy": best.get("val_accuracy"), "best_epoch": best["epoch"],
                "epochs": len(record.history) or None,
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


def hyperparameters_of(row: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameter columns of a ranked or failed row."""
    return {name: value for name, value in row.items() if name not in ROW_FIELDS}


def _best_epoch(history: list[dict[str, float]]) -> dict[str, Any] | None:
    epochs = [row for row in history if isinstance(row.get("val_loss"), (int, float)) and math.isfinite(row["val_loss"])]
    return min(epochs, key=lambda row: row["val_loss"]) if epochs else None


def _best_epoch_from_trial_file(paths: RunPaths, trial_id: str) -> dict[str, Any] | None:
    # Without the tool's per-epoch history (e.g. deleted by hand) KerasTuner's own score still ranks the trial.
    state = read_json(paths.trial_dir(trial_id) / "trial.json") or {}
    score, step = state.get("score"), state.get("best_step")
    if not isinstance(score, (int, float)) or not math.isfinite(score):
        return None
    return {"val_loss": float(score), "epoch": int(step) + 1 if isinstance(step, int) else None}


def format_table(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Render rows (all with the same keys) as a table, Markdown, CSV or JSON.

    Args:
        rows: ranked or failed rows from rank_trials.
        fmt: one of table (plain text), markdown, csv, json.

    Returns:
        The document, without a trailing newline for table and markdown. JSON is a list of
        objects with the rows' keys; CSV has one header line and full-precision numbers.
    """
    if fmt not in FORMATS:
        raise TunerUsageError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
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


def search_space(run_settings: dict[str, Any], rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """The values searched for each hyperparameter: the run's settings, else the values its trials tried."""
    search = run_settings.get("search", {})
    space: dict[str, list[Any]] = {}
    for name in names:
        field = SEARCH_FLAGS.get(name, (name, "", None))[0]
        configured = search.get(field)
        if isinstance(configured, list) and configured:
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


def write_results(paths: RunPaths, completed: Sequence[dict[str, Any]], failed: Sequence[dict[str, Any]], running: int,
                  warnings: Sequence[str] = ()) -> list[Path]:
    """Write RUN/results.csv (the ranking) and RUN/results.md (ranking, failures, notes), each atomically."""
    csv_path, markdown_path = paths.root / RESULTS_CSV, paths.root / RESULTS_MD
    atomic_write_text(csv_path, format_table(completed, "csv"))
    parts = [f"# Results of {paths.root.name}", "",
             f"{len(completed)} completed, {len(failed)} failed, {running} running or interrupted; "
             f"ranked by best val_loss (lowest first).", "", format_table(completed, "markdown") if completed else "(none yet)"]
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
    paths, run_settings = open_run(settings.run_dir)
    completed, failed, running = rank_trials(paths)
    # rank_trials gives every row every hyperparameter, so any row names them all.
    names = list(hyperparameters_of((completed or failed or [{}])[0]))
    space = search_space(run_settings, completed, names)
    warnings = []
    if completed:
        warnings = boundary_warnings(completed[0], space, run_settings.get("dataset", {}).get("img_size"))
    if running:
        warnings.append(f"{running} trial(s) are still running or were interrupted; this ranking is provisional.")
    written = write_results(paths, completed, failed, running, warnings)
    if not completed:
        reasons = sorted({row["reason"] for row in failed})
        raise TunerUsageError(
            f"run '{paths.root}' has no completed trial yet ({running} running, {len(failed)} failed"
            + (f": {'; '.join(reasons)}" if reasons else "")
            + "); wait for the search to finish a trial, or run python search.py to resume it."
        )
    written += write_plots(paths, completed, failed, names, space, top=settings.top or DEFAULT_PLOTTED_TRIALS)
    return Report(paths, run_settings, completed, failed, running, names, warnings, written)


