"""A run's trials ranked (and confirmed over seeds), as a pandas DataFrame, written out and plotted.

    rank_trials()      the trials of a run, best first
    trials_dataframe() the same as a DataFrame, with any saved confirm runs: the documented entry point
    build_report()     what report.py does before retraining: rank, confirm, write results.*, plot
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tuner.budget import Budget, apply_budget, pareto_front
from tuner.confirm import Confirmation, confirm_top, rank_confirmed, saved_confirmations
from tuner.config import REPORT_FORMATS, ReportSettings, smallest_side_for
from tuner.errors import TunerUsageError
from tuner.files import atomic_write_json, atomic_write_text, read_json
from tuner.footprint import Footprint
from tuner.plots import DEFAULT_PLOTTED_TRIALS, format_value, write_pareto_plot, write_plots
from tuner.rundir import Run, RunRecord, open_run
from tuner.stats import compare_seeds
from tuner.trials import (CONFIRM_COLUMNS, FAILED, FOOTPRINT_COLUMNS, METRIC_COLUMNS, RANKED, RUNNING, DamagedFile,
                          TrialRecord, failure_reason, hyperparameters_of, scan_trials)
from tuner.writable import refuse_unwritable
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
    """A run's trials, ranked, with what the report wrote and what it noticed.

    `completed` is the ranking within the budget (all ranked trials without one); `excluded` the
    rows the budget left out, each with its reason; `front` the Pareto front of val_loss against
    parameters over all ranked trials.
    """

    run: Run
    record: RunRecord
    completed: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    running: int
    hyperparameters: list[str]
    warnings: list[str]
    written: list[Path]
    comparison: str | None
    budget: Budget
    excluded: list[dict[str, Any]]
    front: list[dict[str, Any]]


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
        best_epoch, epochs, pruned (the epoch it was stopped at, or None), seconds, and the size and speed
        columns params, weight_bytes, latency_ms, images_per_second, threads (None where not measured)),
        the failed rows (trial, each hyperparameter, reason) and the number of trials still marked
        RUNNING (running now, or interrupted).
    """
    return _rank(scan_trials(run)[0])


def _rank(records: Sequence[TrialRecord]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
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
                **footprint_columns(record.footprint),
            })
    completed.sort(key=lambda row: (row["val_loss"], -(row["val_accuracy"] or 0.0), row["trial"]))
    return assign_ranks(completed), failed, running


def assign_ranks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Number rows already in ranking order 1, 2, 3...; rows with equal val_loss share a rank (1, 1, 3)."""
    for position, row in enumerate(rows):
        tied = position and row["val_loss"] == rows[position - 1]["val_loss"]
        row["rank"] = rows[position - 1]["rank"] if tied else position + 1
    return rows


def footprint_columns(footprint: Footprint | None) -> dict[str, Any]:
    """A ranked row's size and speed columns (FOOTPRINT_COLUMNS), all None for a trial that was not measured."""
    return {name: getattr(footprint, name) if footprint is not None else None for name in FOOTPRINT_COLUMNS}


def _hyperparameter_names(values_per_trial: Any) -> list[str]:
    """Every hyperparameter name across trials, in the order the search space declared them."""
    names: list[str] = []
    for values in values_per_trial:
        names.extend(name for name in values if name not in names)
    return names


# Ranked columns that hold whole numbers; pandas keeps them whole (nullable) even with gaps.
INTEGER_COLUMNS = ("rank", "best_epoch", "epochs", "pruned", "params", "weight_bytes", "threads", "seeds",
                   "median_best_epoch")


def to_dataframe(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Any:
    """Rows of rank_trials (ranked or failed) as a pandas DataFrame, whole-number columns kept whole."""
    import pandas as pd

    columns = list(columns or (rows[0] if rows else ["rank", "trial", *METRIC_COLUMNS]))
    frame = pd.DataFrame.from_records(list(rows), columns=columns)
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
        before they were). When report.py has confirmed the top trials,
        also seeds (runs of the configuration, the search's included), mean_val_loss and
        std_val_loss (of their best val_loss) and median_best_epoch; the confirmed rows come
        first, ordered by mean_val_loss.
    """
    run, record = open_run(run_dir)
    completed, _, _ = rank_trials(run)
    confirmations = saved_confirmations(run, record, completed)
    return to_dataframe(rank_confirmed(completed, confirmations) if confirmations else completed)


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
        return json.dumps(_records(frame), indent=2)
    if fmt == "csv":
        return frame.to_csv(index=False, lineterminator="\n")
    from tabulate import tabulate

    records = _records(frame)
    columns = [column for column in frame.columns if column not in (*CONFIRM_COLUMNS, *DETAIL_COLUMNS)]
    confirmed = "seeds" in frame.columns and frame["seeds"].notna().any()
    if confirmed:
        columns.insert(columns.index("val_loss") + 1, OVER_SEEDS)
    table = [[_cell(column, row.get(column), row) for column in columns] for row in records]
    # Cells are preformatted strings; parsing them back as numbers would turn trial "03" into 3.
    return tabulate(table, headers=columns, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True, colalign=[_align(column) for column in columns])


# The table column that shows a confirmed configuration's val_loss over all its seeds.
OVER_SEEDS = "val_loss over seeds"
# Columns only CSV and JSON carry: weight_bytes is 4 x params for these float32 models, threads is the same for most runs.
DETAIL_COLUMNS = ("weight_bytes", "threads")


def _records(frame: Any) -> list[dict[str, Any]]:
    """The frame's rows as plain Python values, missing ones as None (JSON-ready)."""
    import pandas as pd

    rows = frame.astype(object).to_dict("records")
    return [{key: None if _missing(value, pd) else value for key, value in row.items()} for row in rows]


def _missing(value: Any, pd: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _cell(column: str, value: Any, row: dict[str, Any]) -> str:
    if column == OVER_SEEDS:
        return _over_seeds(row)
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
    return str(value)


def _over_seeds(row: dict[str, Any], seeds_shown: str = " ({})") -> str:
    """A confirmed row's best val_loss over its seeds: "mean ± std" and the number of seeds, by `seeds_shown`."""
    mean, std, seeds = row.get("mean_val_loss"), row.get("std_val_loss"), row.get("seeds")
    if seeds is None:
        return "-"
    count = seeds_shown.format(seeds)
    if mean is None:
        return f"diverged under a seed{count}"
    return f"{mean:.4f} ± {std:.4f}{count}" if std is not None else f"{mean:.4f}{count}"


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
        return smallest_side_for(int(value) + 1) <= image_side
    return True


def counts_line(ranked: Sequence[dict[str, Any]], failed: Sequence[dict[str, Any]], running: int, excluded: int = 0) -> str:
    """How the trials ended, e.g. "12 completed, 13 pruned, 2 failed, 0 running or interrupted" (+ ", 4 over the budget")."""
    pruned = sum(row.get("pruned") is not None for row in ranked)
    over = f", {excluded} over the budget" if excluded else ""
    return (f"{len(ranked) - pruned} completed, {pruned} pruned (stopped early behind the median), {len(failed)} failed, "
            f"{running} running or interrupted{over}")


def comparison_line(ranking: Sequence[dict[str, Any]], confirmations: Sequence[Confirmation]) -> str | None:
    """One sentence: is the winner's val_loss over seeds told apart from the runner-up's? None without confirm runs."""
    if not confirmations:
        return None
    by_trial = {item.trial_id: item for item in confirmations}
    winner = by_trial[ranking[0]["trial"]]
    winner_text = f"trial {winner.trial_id} (val_loss {_over_seeds(ranking[0], ' over {} seeds')})"
    if len(confirmations) < 2:
        return f"Only the winner, {winner_text}, was confirmed: there is no runner-up to compare it with."
    runner_up = by_trial[ranking[1]["trial"]]
    result = compare_seeds(winner.val_losses, runner_up.val_losses)
    test = f"Welch's t-test p = {result.p_value:.3f}" if result.p_value is not None else "no spread to test"
    both = (f"The winner, {winner_text}, and the runner-up, trial {runner_up.trial_id} "
            f"({_over_seeds(ranking[1], ' over {} seeds')}),")
    if result.distinguishable:
        return f"{both} are distinguishable over seeds ({test})."
    return f"{both} are not distinguishable over seeds ({test}): either is as good a pick; more seeds (--confirm K R) may tell them apart."


def write_results(run: Run, ranking: Sequence[dict[str, Any]], failed: Sequence[dict[str, Any]], running: int,
                  warnings: Sequence[str] = (), comparison: str | None = None, budget: Budget = Budget(),
                  excluded: Sequence[dict[str, Any]] = (), front: Sequence[dict[str, Any]] = ()) -> list[Path]:
    """Write RUN/results.csv (the ranking), RUN/results.md (ranking, exclusions, failures, notes) and RUN/results.json.

    Each file is replaced atomically.

    results.json holds the same ranking and failures as records, the budget and the trials it
    excluded, the Pareto front's trial ids, the notes, the comparison of winner and runner-up,
    and "winner": null until record_winner fills in its test score.
    """
    frame, failed_frame = to_dataframe(ranking), to_dataframe(failed) if failed else None
    excluded_frame = to_dataframe(excluded, exclusion_columns(excluded)) if excluded else None
    csv_path, markdown_path, json_path = run.results("csv"), run.results("md"), run.results("json")
    atomic_write_text(csv_path, format_table(frame, "csv"))
    ranked_by = "mean best val_loss over seeds for the confirmed trials, then best val_loss" if comparison else "best val_loss"
    within = f" within the budget ({budget.describe()})" if budget.active else ""
    parts = [f"# Results of {run.root.name}", "", f"{counts_line(ranking, failed, running, len(excluded))}; trials{within} "
             f"ranked by {ranked_by} (lowest first).", "", format_table(frame, "markdown") if ranking else "(none yet)"]
    if comparison:
        parts += ["", comparison]
    if front:
        parts += ["", front_line(front)]
    if excluded_frame is not None:
        parts += ["", f"## Excluded by the budget ({budget.describe()})", "", budget_line(budget, ranking, excluded), "",
                  format_table(excluded_frame, "markdown")]
    if failed:
        parts += ["", "## Failed trials", "", format_table(failed_frame, "markdown")]
    if warnings:
        parts += ["", "## Notes", "", *(f"- {message}" for message in warnings)]
    atomic_write_text(markdown_path, "\n".join(parts) + "\n")
    atomic_write_json(json_path, {
        "run": str(run.root.resolve()), "counts": counts_line(ranking, failed, running, len(excluded)),
        "ranking": _records(frame), "failed": _records(failed_frame) if failed else [],
        "budget": budget.to_json(), "excluded": _records(excluded_frame) if excluded else [],
        "pareto_front": [row["trial"] for row in front], "comparison": comparison, "notes": list(warnings),
        "winner": None,
    })
    return [csv_path, markdown_path, json_path]


def budget_line(budget: Budget, ranking: Sequence[dict[str, Any]], excluded: Sequence[dict[str, Any]]) -> str:
    """One sentence on the budget: how many trials fit, the winner's size and speed, and the best trial it excluded."""
    winner = ranking[0]
    text = (f"Budget ({budget.describe()}): {len(ranking)} of {len(ranking) + len(excluded)} ranked trials fit; the winner, "
            f"trial {winner['trial']}, has {_size_and_speed(winner)}.")
    best_excluded = min(excluded, key=lambda row: (row["val_loss"], row["trial"]), default=None)
    if best_excluded is not None and best_excluded["val_loss"] < winner["val_loss"]:
        text += (f" The best trial regardless of budget, trial {best_excluded['trial']} (val_loss "
                 f"{best_excluded['val_loss']:.4f}, {_size_and_speed(best_excluded)}), is excluded: {best_excluded['reason']}.")
    return text


def _size_and_speed(row: dict[str, Any]) -> str:
    if row.get("params") is None or row.get("latency_ms") is None:
        return "no recorded size or speed"
    return f"{row['params']:,} parameters and takes {row['latency_ms']:.3f} ms per image"


def exclusion_columns(excluded: Sequence[dict[str, Any]]) -> list[str]:
    """The columns of the excluded-trials table: trial, hyperparameters, val_loss, size and speed, and the reason."""
    names = list(hyperparameters_of(excluded[0])) if excluded else []
    return ["trial", *names, "val_loss", "params", "latency_ms", "reason"]


def front_line(front: Sequence[dict[str, Any]]) -> str:
    """One sentence naming the Pareto front's trials, from the smallest model up."""
    shown = "; ".join(f"trial {row['trial']} ({row['params']:,} parameters, val_loss {row['val_loss']:.4f})" for row in front)
    return f"Pareto front (no other trial is both smaller and lower in val_loss): {shown}."


def record_winner(run: Run, winner: dict[str, Any]) -> Path:
    """Fill in results.json's "winner" (its trial, how it was trained, its test score with the interval)."""
    path = run.results("json")
    results = read_json(path)
    if not isinstance(results, dict):
        raise TunerUsageError(f"'{path}' is damaged (expected a JSON object); run report.py again to rewrite it.")
    atomic_write_json(path, {**results, "winner": winner})
    return path


def damage_warnings(damaged: Sequence[DamagedFile]) -> list[str]:
    """Say which trial files could not be read: a trial is never left out of the ranking without a word."""
    unreadable = [item for item in damaged if item.path.name == "trial.json"]
    curves = [item for item in damaged if item.path.name != "trial.json"]
    messages = []
    if unreadable:
        messages.append(f"{len(unreadable)} trial file(s) could not be read, so their trials are not ranked: "
                        f"{'; '.join(item.describe() for item in unreadable)}. Restore them from a backup, or search "
                        f"afresh with python search.py --overwrite.")
    if curves:
        messages.append(f"{len(curves)} curve file(s) are damaged; their trials are ranked with what is left (KerasTuner's "
                        f"record of the best epoch for a lost curve, no size or speed for a lost footprint): "
                        f"{'; '.join(item.describe() for item in curves)}.")
    return messages


def build_report(settings: ReportSettings) -> Report:
    """Open a run, rank its trials, confirm the top ones over seeds, and write results.* and the plots into it.

    Args:
        settings: the report settings (run directory, --top, --confirm K R).

    Returns:
        The ranking (confirmed configurations first) and what was written.

    Raises:
        TunerUsageError: the run directory is missing, is not a run, or has no completed trial yet.
    """
    run, record = open_run(settings.run_dir)
    refuse_unwritable(run)  # before any confirm run or retrain spends time on results it could not write
    records, damaged = scan_trials(run)  # read once: the ranking and the damage notes come from the same files
    completed, failed, running = _rank(records)
    # rank_trials gives every row every hyperparameter, so any row names them all.
    names = list(hyperparameters_of((completed or failed or [{}])[0]))
    if not completed:
        write_results(run, completed, failed, running)
        reasons = sorted({row["reason"] for row in failed})
        raise TunerUsageError(
            f"run '{run.root}' has no completed trial yet ({running} running, {len(failed)} failed"
            + (f": {'; '.join(reasons)}" if reasons else "")
            + "); wait for the search to finish a trial, or run python search.py to resume it."
        )
    budget = settings.budget()
    fitting, excluded = apply_budget(completed, budget)
    if budget.active:  # the winner is rank 1 of the trials within the budget
        fitting = assign_ranks([dict(row) for row in fitting])
    top, seeds = settings.confirm_counts()
    confirmations = confirm_top(run, record, fitting, top, seeds)
    ranking = rank_confirmed(fitting, confirmations) if confirmations else fitting
    comparison = comparison_line(ranking, confirmations)
    front = pareto_front(completed)
    space = search_space(record, completed, names)
    warnings = boundary_warnings(ranking[0], space, record.dataset.img_size)
    if running:
        warnings.append(f"{running} trial(s) are still running or were interrupted; this ranking is provisional.")
    warnings += damage_warnings(damaged)
    if not front:
        warnings.append("no trial has its size and speed recorded (the run was searched before they were), so there is "
                        "no Pareto plot and no budget can be applied; search again with --overwrite to measure them.")
    written = write_results(run, ranking, failed, running, warnings, comparison, budget, excluded, front)
    written += write_plots(run, ranking, failed, names, space, top=settings.top or DEFAULT_PLOTTED_TRIALS)
    pareto = write_pareto_plot(run, completed, ranking[0], budget)
    written += [pareto] if pareto else []
    return Report(run, record, ranking, failed, running, names, warnings, written, comparison, budget, excluded, front)
