"""A run's trials ranked (and confirmed over seeds), as a pandas DataFrame, written out and plotted.

    rank_trials()      the trials of a run, best first (ranking.py)
    trials_dataframe() the same as a DataFrame, with any saved confirm runs: the documented entry point (tables.py)
    build_report()     what report.py does before retraining: rank, confirm, write results.*, plot (build.py)
    summary_lines()    what the terminal and results.md say below the ranking (summary.py)

The sentences are in notes.py, the results files in results.py; a row is a rows.TrialRow.
"""

from __future__ import annotations

from tuner.report.build import build_report
from tuner.report.notes import boundary_warnings, budget_line, comparison_line, counts_line, front_line
from tuner.trials.ranking import assign_ranks, rank_trials
from tuner.report.results import record_winner, write_results
from tuner.report.summary import Report, summary_lines
from tuner.report.tables import format_table, to_dataframe, trials_dataframe
from tuner.trials.rows import TrialRow

__all__ = [
    "Report", "TrialRow", "assign_ranks", "boundary_warnings", "budget_line", "build_report", "comparison_line",
    "counts_line", "format_table", "front_line", "rank_trials", "record_winner", "summary_lines", "to_dataframe",
    "trials_dataframe", "write_results",
]
