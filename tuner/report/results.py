"""The results files of a report: RUN/results.csv, results.md and results.json, and the winner's entry in the last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.errors import TunerUsageError
from tuner.files import atomic_write_json, atomic_write_text, read_json
from tuner.report.summary import Report, summary_lines
from tuner.report.tables import format_table, frame_records, to_dataframe
from tuner.trials.rows import excluded_columns
from tuner.rundir import Run


def write_results(report: Report) -> list[Path]:
    """Write RUN/results.csv (the ranking), RUN/results.md (the ranking and the summary lines) and RUN/results.json.

    Each file is replaced atomically. results.csv holds the ranking only: with a budget, the
    trials within it (the excluded ones are in results.md and results.json).

    results.json holds the same ranking and failures as records, the budget and the trials it
    excluded, the Pareto front's trial ids, the notes, the comparison of winner and runner-up,
    "importances" (importance.Importances.to_json(): which hyperparameters mattered; null before
    any trial completed), and "winner": null until record_winner fills in its test score.

    Returns:
        The three paths.
    """
    run = report.run
    frame = to_dataframe(report.ranking)
    csv_path, markdown_path, json_path = run.results("csv"), run.results("md"), run.results("json")
    atomic_write_text(csv_path, format_table(frame, "csv"))
    table = format_table(frame, "markdown") if report.ranking else "(none yet)"
    atomic_write_text(markdown_path, "\n".join([f"# Results of {run.root.name}", "", table, "",
                                                *summary_lines(report, markdown=True)]) + "\n")
    excluded = to_dataframe(report.excluded, excluded_columns(report.excluded))
    atomic_write_json(json_path, {
        "run": str(run.root.resolve()), "counts": report.counts(),
        "ranking": frame_records(frame), "failed": frame_records(to_dataframe(report.failed)) if report.failed else [],
        "budget": report.budget.to_json(), "excluded": frame_records(excluded) if report.excluded else [],
        "pareto_front": [row.trial for row in report.front], "comparison": report.comparison,
        "notes": list(report.notes),
        "importances": report.importances.to_json() if report.importances is not None else None, "winner": None,
    })
    return [csv_path, markdown_path, json_path]


def record_winner(run: Run, winner: dict[str, Any]) -> Path:
    """Fill in results.json's "winner" (winner.Winner.to_json(): its trial, how it was trained, its test score)."""
    path = run.results("json")
    results = read_json(path, kind="results")
    if not isinstance(results, dict):
        raise TunerUsageError(f"'{path}' is damaged (expected a JSON object); run report.py again to rewrite it.")
    atomic_write_json(path, {**results, "winner": winner})
    return path
