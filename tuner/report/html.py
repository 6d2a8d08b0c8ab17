"""RUN/report.html: the whole report in one file, every figure and style inside it, for a browser opened from disk.

    write_html()   the page of a reported run: the run, the ranking, curves, parallel coordinates,
                   importances, the Pareto plot, the winner, its mistakes and the data's health

The sections on the winner and the data are in html_winner.py, the HTML pieces in markup.py,
the figures in plots.py (shared with RUN/plots/*.png, their data from plot_data.py) and figures.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tuner.data.cache import PreparedDataset
from tuner.config.spaces import MODERN, FloatRange
from tuner.files import atomic_write_text, read_json
from tuner.search.halving import rung_epochs
from tuner.report.plot_data import curves_info, format_value, hyperparameters_info, pareto_info
from tuner.report.plots import curves_figure, hyperparameters_figure, pareto_figure, png_bytes
from tuner.report.figures import importances_png, parallel_coordinates_png
from tuner.report.html_winner import data_section, misclassified_section, winner_section
from tuner.report.markup import Markup, esc, facts, fmt, page, paragraph, png_image, table, unavailable
from tuner.report.notes import continuous_ranges, front_line, search_space
from tuner.report.summary import Report
from tuner.trials.rows import TrialRow
from tuner.rundir import Run
from tuner.rundir.checks import run_space

# The section ids (the page's anchors, checked by tests) and headings, in page order.
SECTIONS = (
    ("run", "The run"), ("ranking", "Ranking"), ("curves", "Learning curves"),
    ("parallel", "Every trial across the space"), ("importances", "Which hyperparameters mattered"),
    ("pareto", "Size against validation loss"), ("winner", "The winner on the test split"),
    ("misclassified", "What the winner gets wrong"), ("data", "The data's health"),
)
# Decimals of the measured columns: a second and a microsecond are as precise as the measurements are.
DIGITS = {"seconds": 1, "latency_ms": 3}
# The learning curves stay apart as lines up to about this many trials.
CURVES_SHOWN = 8


def write_html(run: Run, report: Report, winner_json: dict[str, Any] | None, dataset: PreparedDataset) -> Path:
    """Write RUN/report.html (atomically) from a report, its winner and the prepared dataset.

    Args:
        run: the run directory; results.json's "importances" is read from it when present.
        report: build_report's report (ranking, exclusions, failures, budget, notes).
        winner_json: results.json's "winner" (winner.Winner.to_json()), with "misclassified" when
            the winner's mistakes were listed; None before there is a winner.
        dataset: the prepared dataset the run searched (class names, the manifest, the test images).

    Returns:
        The path written.
    """
    results = read_json(run.results("json"), kind="results")
    importances = results.get("importances") if isinstance(results, dict) else None
    return atomic_write_text(run.html, render_html(report, winner_json, dataset, importances))


def render_html(report: Report, winner_json: dict[str, Any] | None, dataset: PreparedDataset,
                importances: dict[str, Any] | None = None) -> str:
    """The text of report.html (write_html's page, without writing it); `importances` as results.json holds them."""
    ranking, names = report.ranking, report.hyperparameters
    space = search_space(report.record, [*ranking, *report.excluded], names)
    parts = {
        "run": _run_section(report, dataset, space),
        "ranking": _ranking_section(report),
        "curves": [png_image(png_bytes(curves_figure(curves_info(report.records, ranking, names, CURVES_SHOWN)))
                             if ranking else None,
                             "validation loss by epoch of the top trials", missing="no ranked trial"),
                   paragraph(f"The best {min(CURVES_SHOWN, len(ranking))} trials by rank. A circle marks the epoch whose "
                             "weights a trial kept; a cross ends the curve of a trial stopped early: behind the median "
                             "of the finished trials at that epoch, or not among the best third of its rung of "
                             "successive halving.")],
        "parallel": _parallel_section(report, space),
        "importances": _importances_section(importances),
        "pareto": _pareto_section(report),
        "winner": winner_section(winner_json, ranking[0] if ranking else None, dataset),
        "misclassified": misclassified_section(winner_json, dataset),
        "data": data_section(dataset.manifest),
    }
    return page(f"Report of run {report.run.root.name}", [(anchor, heading, parts[anchor]) for anchor, heading in SECTIONS])


def searched_values(dimension: Any, tried: list[Any]) -> Markup:
    """A hyperparameter's row of "the space searched": its values, or a continuous range and how many values were tried."""
    if isinstance(dimension, FloatRange):
        scale = "log scale" if dimension.log else "linear"
        return Markup(f"<code>{esc(format_value(dimension.low))}</code> to <code>{esc(format_value(dimension.high))}"
                      f"</code>, {scale} ({len(tried)} values tried)")
    return Markup(", ".join(f"<code>{esc(format_value(value))}</code>" for value in tried))


def _run_section(report: Report, dataset: PreparedDataset, space: dict[str, list[Any]]) -> list[str]:
    search, counts = report.record.search, dataset.manifest.get("counts", {})
    splits = ("train", "val", "test")
    per_class = [[name, *(counts.get(name, {}).get(split) for split in splits), counts.get(name, {}).get("kept")]
                 for name in dataset.class_names]
    trials = [*report.ranking, *report.excluded, *report.failed]
    seconds = sum(row.seconds or 0.0 for row in trials)
    if search.tuner == "asha":  # what stops its trials instead of the median rule
        baseline = ", the recipe's baseline proposed first and continued to the full epochs" if search.space == MODERN else ""
        pruning = (f"successive halving: rungs of {', '.join(map(str, rung_epochs(search.epochs)))} epochs, the best "
                   f"third of each rung continued, {search.proposals} proposals{baseline}")
    elif search.median_pruning:
        pruning = (f"{search.prune} (after {search.prune_warmup_trials} finished trials, never in the first "
                   f"{search.prune_warmup_epochs} epoch(s))")
    else:
        pruning = "off"
    # How a run was executed is not saved (settings.json holds what defines it), but every process that
    # ran trials left KerasTuner's tuner file: worker*.json under a chief, tuner0.json for a search alone.
    workers = sorted(path.stem for path in report.run.project.glob("worker*.json"))
    alone = (report.run.project / "tuner0.json").exists()
    items = [
        ("run directory", str(report.run.root.resolve())),
        ("dataset", report.record.dataset.path),
        ("images", f"{dataset.img_size}x{dataset.img_size} px, {dataset.color}"),
        ("classes", f"{len(dataset.class_names)}: {', '.join(dataset.class_names)}"),
        ("tuner", f"{search.tuner}" + (f", at most {search.max_trials} trials" if search.max_trials else "")),
        ("training", f"at most {search.epochs} epochs per trial, batch {search.batch_size}, "
                     + (f"early stopping after {search.patience} epochs without a better val_loss, " if search.patience
                        else "no early stopping, ") + f"seed {search.seed}"),
        ("pruning", pruning),
        ("trials ran in", f"{len(workers)} worker process(es): {', '.join(workers)}" if workers
                          else "the search process itself (--workers 0)" if alone else "not recorded"),
        ("trials", report.counts()),
        ("training time", f"{seconds:,.0f} s summed over the trials (search only; with workers, wall time is less)"),
        ("report written", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    declared = run_space(search)
    space_rows = [[name, searched_values(declared.get(name), space.get(name, []))] for name in report.hyperparameters]
    notes = [paragraph(text) for text in (report.comparison,) if text]
    notes += [paragraph(f"note: {text}", "warning") for text in report.notes]
    return [facts(items), Markup("<h3>Images per class and split</h3>"),
            table(["class", "train", "validation", "test", "kept"], per_class),
            Markup("<h3>The space searched</h3>"), table(["hyperparameter", "values"], space_rows), *notes]


def _mean_over_seeds(row: TrialRow) -> Any:
    if not row.confirmed:
        return None
    if row.mean_val_loss is None:
        return f"diverged in a seed ({row.seeds})"
    return Markup(f'<span class="nowrap">{row.mean_val_loss:.4f} ± {fmt(row.std_val_loss)} ({row.seeds})</span>')


def _ranking_section(report: Report) -> list[str]:
    names, ranking = report.hyperparameters, report.ranking
    if not ranking:
        return [unavailable("no completed trial to rank")]
    confirmed = any(row.confirmed for row in ranking)
    headers = ["rank", "trial", *names, "val_loss", *(["mean ± std over seeds (runs)"] if confirmed else []),
               "val_accuracy", "best_epoch", "epochs", "pruned at epoch", "seconds", "params", "latency_ms"]
    rows = [[row.rank, row.trial, *(row.hyperparameters.get(name) for name in names), row.val_loss,
             *([_mean_over_seeds(row)] if confirmed else []), row.val_accuracy, row.best_epoch, row.epochs, row.pruned,
             row.seconds, row.params, row.latency_ms] for row in ranking]
    champion = " (the recipe's baseline first unless a challenger clearly beats it)" if report.champion else ""
    ranked_by = f"the mean over seeds for confirmed trials{champion}, then val_loss" if confirmed else "val_loss"
    parts: list[str] = [paragraph(f"{report.counts()}. Ranked by {ranked_by}, lowest first; the winner is highlighted. "
                                  "Click a column header to sort by it."),
                        table(headers, rows, sortable=True, row_classes=["winner"] + [""] * (len(rows) - 1), digits=DIGITS)]
    if report.excluded:
        parts += [Markup(f"<h3>Excluded by the budget ({esc(report.budget.describe())})</h3>"),
                  table(["trial", *names, "val_loss", "params", "latency_ms", "reason"],
                        [[row.trial, *(row.hyperparameters.get(name) for name in names), row.val_loss, row.params,
                          row.latency_ms, row.reason] for row in report.excluded], sortable=True, digits=DIGITS)]
    if report.failed:
        parts += [Markup(f"<h3>Failed trials ({len(report.failed)})</h3>"),
                  table(["trial", *names, "reason"], [[row.trial, *(row.hyperparameters.get(name) for name in names),
                                                       row.reason] for row in report.failed], sortable=True)]
    return parts


def _parallel_section(report: Report, space: dict[str, list[Any]]) -> list[str]:
    ranking, names = report.ranking, report.hyperparameters
    return [png_image(parallel_coordinates_png(ranking, names, space), "parallel coordinates of every trial",
                      missing="no ranked trial"),
            paragraph("Each line is a ranked trial: where it crosses a hyperparameter's axis is the value it tried, and "
                      "its colour (and the last axis) its best validation loss; the winner is the thick black line. "
                      "Failed trials have no validation loss and are left out."),
            png_image(png_bytes(hyperparameters_figure(hyperparameters_info(
                ranking, report.failed, names, space, continuous_ranges(report.record.search)))) if ranking else None,
                      "best validation loss at each hyperparameter value", missing="no ranked trial")]


def _importances_section(importances: Any) -> list[str]:
    values = importances.get("values") if isinstance(importances, dict) else None
    if not isinstance(values, list):
        return [unavailable("not available: results.json has no hyperparameter importances for this run")]
    pairs = [(str(item.get("hyperparameter")), float(item.get("importance") or 0.0))
             for item in values if isinstance(item, dict)]
    method = str(importances.get("method") or "unknown method")
    parts: list[str] = [png_image(importances_png(pairs, method), "hyperparameter importances",
                                  missing="no hyperparameter to rank")]
    parts.append(table(["hyperparameter", "importance"], [[name, value] for name, value in pairs]))
    parts.append(paragraph(f"Computed with {method} from {importances.get('trials', '?')} trials."))
    if importances.get("note"):
        parts.append(paragraph(str(importances["note"]), "" if importances.get("reliable") else "warning"))
    elif importances.get("reliable") is False:
        parts.append(paragraph("Too few trials for these importances to mean much.", "warning"))
    return parts


def _pareto_section(report: Report) -> list[str]:
    info = pareto_info([*report.ranking, *report.excluded], report.ranking[0], report.budget) if report.ranking else None
    parts: list[str] = [png_image(png_bytes(pareto_figure(info)) if info is not None else None,
                                  "validation loss against parameters",
                                  missing="not available: no trial has its size recorded (searched before sizes were)")]
    if report.front:
        parts.append(paragraph(front_line(report.front)))
    return parts
