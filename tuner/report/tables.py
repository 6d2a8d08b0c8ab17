"""Rows as a pandas DataFrame, and a DataFrame as a plain-text, Markdown, CSV or JSON table."""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any, Sequence

from tuner.config import REPORT_FORMATS
from tuner.confirm.runs import rank_confirmed, saved_confirmations
from tuner.confirm.selection import champion_trial
from tuner.errors import TunerUsageError
from tuner.names import for_terminal
from tuner.report.importance import importances
from tuner.trials.ranking import rank_trials
from tuner.trials.rows import CONFIRM_COLUMNS, TrialRow, failed_columns, hyperparameter_names, ranked_columns
from tuner.rundir import open_run

# Columns that hold whole numbers; pandas keeps them whole (nullable) even with gaps.
INTEGER_COLUMNS = ("rank", "best_epoch", "epochs", "pruned", "params", "weight_bytes", "threads", "seeds",
                   "median_best_epoch")
# The table column that shows a confirmed configuration's val_loss over all its seeds.
OVER_SEEDS = "val_loss over seeds"
# Columns only CSV and JSON carry: weight_bytes is 4 x params for these float32 models, threads is the same for most runs.
DETAIL_COLUMNS = ("weight_bytes", "threads")


def to_dataframe(rows: Sequence[TrialRow], columns: Sequence[str] | None = None) -> Any:
    """Rows (ranked or failed) as a pandas DataFrame, whole-number columns kept whole.

    Args:
        rows: rows of one kind: ranked (rank_trials' first list) or failed (its second).
        columns: the columns (default: rows.ranked_columns, or rows.failed_columns for failed rows).
    """
    import pandas as pd

    if columns is None:
        columns = failed_columns(rows) if rows and rows[0].failed else ranked_columns(rows)
    frame = pd.DataFrame.from_records([row.to_record(columns) for row in rows], columns=list(columns))
    for column in columns:
        if column in INTEGER_COLUMNS:
            frame[column] = frame[column].astype("Int64")
        elif column == "trial":
            frame[column] = frame[column].astype(str)  # trial "03" stays "03"
    return frame


def trials_dataframe(run_dir: str | Path | None = None) -> Any:
    """The ranked trials of a run as a pandas DataFrame, one row per completed or pruned trial, best first.

    Reads only files (it never trains), so it is safe while a search or report runs. The model
    is Optuna's study.trials_dataframe(). results.csv and results.md are written from this frame.

    Args:
        run_dir: the run directory (default: the most recent under runs/).

    Returns:
        Columns: rank; trial (id, a string); one column per hyperparameter (conv_layers, nodes,
        dense_layers, and learning_rate, dropout, augment when searched); val_loss, val_accuracy
        and best_epoch (the trial's best epoch, 1-based); epochs (trained); pruned (the epoch the
        pruner stopped it at, else <NA>); seconds; params (model.count_params()), weight_bytes,
        latency_ms (median ms per image at batch 1), images_per_second (at batch 64) and threads (that
        TensorFlow could use while measuring), measured when the trial ended (<NA> for a run from
        before they were). When the top trials have saved confirm runs (the search's or report.py's),
        also seeds (runs of the configuration, the search's included), mean_val_loss and
        std_val_loss (of their best val_loss) and median_best_epoch; the confirmed rows come
        first, ordered by mean_val_loss.
        frame.attrs["importances"] says which hyperparameters mattered, as results.json's
        "importances" does (importance.Importances.to_json()): {"method": "PED-ANOVA", "trials": N,
        "reliable": bool, "note": str or None, "values": [{"hyperparameter": name, "importance":
        float}, ...] highest first, summing to 1}.
    """
    run, record = open_run(run_dir)
    ranked, _, _ = rank_trials(run)
    confirmations = saved_confirmations(run, record, ranked)
    rows = rank_confirmed(ranked, confirmations, champion_trial(ranked, record)) if confirmations else ranked
    frame = to_dataframe(rows)
    # Plain JSON data, not the dataclass: attrs travel through pandas' copies and pickles as they are.
    frame.attrs["importances"] = importances(rows, hyperparameter_names(rows)).to_json()
    return frame


def format_table(frame: Any, fmt: str) -> str:
    """Render a DataFrame of ranked or failed rows as a table, Markdown, CSV or JSON.

    Args:
        frame: a DataFrame of to_dataframe or trials_dataframe.
        fmt: one of table (plain text), markdown, csv, json.

    Returns:
        The document, without a trailing newline for table and markdown. JSON is a list of
        objects with the frame's columns; CSV has one header line and full-precision numbers.
        Table and Markdown show a confirmed row's val_loss over seeds as "mean ± std (seeds)" and
        leave out weight_bytes and threads (DETAIL_COLUMNS).
    """
    if fmt not in REPORT_FORMATS:
        raise TunerUsageError(f"format must be one of {', '.join(REPORT_FORMATS)}, got {fmt!r}.")
    if fmt == "json":
        return json.dumps(frame_records(frame), indent=2)
    if fmt == "csv":
        return frame.to_csv(index=False, lineterminator="\n")
    from tabulate import tabulate

    records = frame_records(frame)
    columns = [column for column in frame.columns if column not in (*CONFIRM_COLUMNS, *DETAIL_COLUMNS)]
    confirmed = "seeds" in frame.columns and frame["seeds"].notna().any()
    if confirmed:
        columns.insert(columns.index("val_loss") + 1, OVER_SEEDS)
    table = [[_cell(column, row.get(column), row) for column in columns] for row in records]
    # Cells are preformatted strings; parsing them back as numbers would turn trial "03" into 3.
    return tabulate(table, headers=columns, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True, colalign=[_align(column) for column in columns])


def frame_records(frame: Any) -> list[dict[str, Any]]:
    """The frame's rows as plain Python values, missing ones as None (JSON-ready)."""
    import pandas as pd

    rows = frame.astype(object).to_dict("records")
    return [{key: None if _missing(value, pd) else value for key, value in row.items()} for row in rows]


def over_seeds(mean: float | None, std: float | None, seeds: int | None, seeds_shown: str = " ({})") -> str:
    """A confirmed row's best val_loss over its seeds: "mean ± std" and the number of seeds, by `seeds_shown`."""
    if seeds is None:
        return "-"
    count = seeds_shown.format(seeds)
    if mean is None:
        return f"diverged under a seed{count}"
    return f"{mean:.4f} ± {std:.4f}{count}" if std is not None else f"{mean:.4f}{count}"


def _missing(value: Any, pd: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _cell(column: str, value: Any, row: dict[str, Any]) -> str:
    if column == OVER_SEEDS:
        return over_seeds(row.get("mean_val_loss"), row.get("std_val_loss"), row.get("seeds"))
    if value is None:
        return "-"
    if column in ("val_loss", "val_accuracy") and isinstance(value, float):
        return f"{value:.4f}"
    if column == "seconds" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    if column == "params" and isinstance(value, numbers.Integral):
        return f"{value:,}"
    if column == "latency_ms" and isinstance(value, float):
        return f"{value:.3f}"
    if column == "images_per_second" and isinstance(value, float):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.4g}"  # e.g. a learning rate drawn on a log scale: 4 significant digits, not 17
    return for_terminal(str(value))  # a failure's reason can quote a name; its controls must not split or reorder a row


def _align(column: str) -> str:
    return "left" if column in ("trial", "reason") else "right"
