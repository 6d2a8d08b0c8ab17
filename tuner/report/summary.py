"""The report object, and the summary lines below the ranking that the terminal and results.md both show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tuner.names import for_terminal
from tuner.report.budget import Budget
from tuner.report.importance import Importances
from tuner.report.notes import budget_line, counts_line, front_line
from tuner.report.tables import format_table, to_dataframe
from tuner.trials.records import TrialRecord
from tuner.trials.rows import TrialRow, excluded_columns
from tuner.rundir import Run, RunRecord


@dataclass(frozen=True)
class Report:
    """A run's trials, ranked, with what the report noticed and wrote.

    Attributes:
        run, record: the run directory and its settings.json.
        ranking: the trials within the budget (all ranked trials without one), confirmed
            configurations first, numbered 1, 2, ...: the first is the winner. Empty only in the
            report written before refusing a run with no completed trial.
        excluded: the ranked trials the budget left out, each with its reason, in ranking order.
        failed: the trials that failed or diverged, each with its reason.
        running: how many trials are still marked running (running now, or interrupted).
        hyperparameters: the hyperparameter names, in the order the search space declared them.
        front: the Pareto front of val_loss against parameters over every ranked trial, smallest first.
        comparison: the sentence on the winner against the runner-up over seeds; None without confirm runs.
        budget: the size and speed budget (inactive without --max-params/--max-latency-ms).
        notes: what a reader should know: a winner at the edge of the space, running trials, damaged files.
        written: the files written (results.*, plots), once they are.
        importances: which hyperparameters mattered, over every ranked trial (the budget's exclusions
            too); None in the report written before refusing a run with no completed trial.
        records: the trials as scan_trials read and checked them, whose histories the curves figure draws
            (plot_data.curves_info), so that no figure reads a file again.
        champion: the trial of the modern space's baseline, ranked first unless clearly beaten
            (confirm.selection); None when no trial trained it (another tuner, or the tutorial space).
    """

    run: Run
    record: RunRecord
    ranking: list[TrialRow]
    excluded: list[TrialRow]
    failed: list[TrialRow]
    running: int
    hyperparameters: list[str]
    front: list[TrialRow] = field(default_factory=list)
    comparison: str | None = None
    budget: Budget = Budget()
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    importances: Importances | None = None
    records: list[TrialRecord] = field(default_factory=list)
    champion: str | None = None

    def counts(self) -> str:
        """How the trials ended (notes.counts_line), the budget's exclusions counted."""
        return counts_line(self.ranking, self.failed, self.running, len(self.excluded))


def summary_lines(report: Report, markdown: bool = False) -> list[str]:
    """What the report says below the ranking table, on the terminal or (markdown=True) in results.md.

    One sentence on how the trials ended and how they are ranked, the winner against the
    runner-up over seeds, the Pareto front, which hyperparameters mattered (one line each), the
    trials the budget excluded, the failed trials and the notes; the two renderings differ only in
    headings and table format.

    Returns:
        Lines without trailing newlines; paragraphs are separated by an empty line.
    """
    fmt = "markdown" if markdown else "table"
    champion = " (the recipe's baseline first unless a challenger clearly beats it)" if report.champion else ""
    ranked_by = (f"mean best val_loss over seeds for the confirmed trials{champion}, then best val_loss"
                 if report.comparison else "best val_loss")
    within = f" within the budget ({report.budget.describe()})" if report.budget.active else ""
    paragraphs = [[f"{report.counts()}; trials{within} ranked by {ranked_by} (lowest first)."]]
    paragraphs += [[text] for text in (report.comparison, front_line(report.front) if report.front else None) if text]
    if report.importances is not None:
        paragraphs += _importance_section(report.importances, markdown)
    if report.excluded:
        excluded = to_dataframe(report.excluded, excluded_columns(report.excluded))
        paragraphs += _section(f"Excluded by the budget ({report.budget.describe()})", markdown,
                               [budget_line(report.budget, report.ranking, report.excluded)],
                               [format_table(excluded, fmt)])
    if report.failed:
        paragraphs += _section(f"Failed trials ({len(report.failed)})", markdown,
                               [format_table(to_dataframe(report.failed), fmt)])
    if report.notes and markdown:
        paragraphs += _section("Notes", markdown, [f"- {message}" for message in report.notes])
    elif report.notes:
        paragraphs.append([f"note: {message}" for message in report.notes])
    # Notes quote paths and failure reasons: each line is escaped, so a name can neither repaint the terminal nor reorder a line.
    return [for_terminal(line) for line in "\n\n".join("\n".join(paragraph) for paragraph in paragraphs).split("\n")]


def _importance_section(importances: Importances, markdown: bool) -> list[list[str]]:
    """Which hyperparameters mattered: one line per hyperparameter, highest first, then the note if any."""
    title = f"Which hyperparameters mattered ({importances.method} over {importances.trials} trials, summing to 1)"
    width = max((len(name) for name, _ in importances.values), default=0)
    if markdown:  # the note is a paragraph of its own, or Markdown would continue the list's last item with it
        lines = [f"- `{name}`: {value:.2f}" for name, value in importances.values]
        return _section(title, markdown, lines, *([[importances.note]] if importances.note else []))
    lines = [f"  {name:<{width}}  {value:.2f}" for name, value in importances.values]
    return _section(title, markdown, lines + ([f"note: {importances.note}"] if importances.note else []))


def _section(title: str, markdown: bool, *paragraphs: list[str]) -> list[list[str]]:
    """A titled section: a Markdown heading of its own, or on the terminal "title:" over its first paragraph."""
    if markdown:
        return [[f"## {title}"], *paragraphs]
    first, *rest = paragraphs
    return [[f"{title[0].lower()}{title[1:]}:", *first], *rest]
