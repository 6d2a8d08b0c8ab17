"""What report.py does before retraining: rank a run's trials, keep to the budget, confirm the top ones, write and plot."""

from __future__ import annotations

from dataclasses import replace

from tuner.report.budget import Budget, apply_budget, pareto_front
from tuner.config import ReportSettings
from tuner.confirm.runs import rank_confirmed
from tuner.confirm.selection import champion_trial
from tuner.execution.confirming import confirm_top
from tuner.errors import SearchFailedError, TunerUsageError
from tuner.report.importance import importances
from tuner.report.plots import DEFAULT_PLOTTED_TRIALS, write_pareto_plot, write_plots
from tuner.report.notes import boundary_warnings, comparison_line, continuous_ranges, damage_warnings, search_space
from tuner.trials.ranking import assign_ranks, hyperparameter_names, rank_records
from tuner.report.results import write_results
from tuner.report.summary import Report
from tuner.rundir import open_run
from tuner.trials.records import scan_trials
from tuner.rundir.writable import refuse_unwritable


def build_report(settings: ReportSettings) -> Report:
    """Open a run, rank its trials, confirm the top ones over seeds, and write results.* and the plots into it.

    Args:
        settings: the report settings (run directory, --top, --confirm K R, the budget).

    Returns:
        The report: the ranking (confirmed configurations first), what it noticed and what was written.

    Raises:
        TunerUsageError: the run directory is missing, is not a run, has no completed trial yet, or
            no trial fits the budget.
        SearchFailedError: every trial of the run failed.
    """
    run, record = open_run(settings.run_dir)
    refuse_unwritable(run)  # before any confirm run or retrain spends time on results it could not write
    records, damaged = scan_trials(run)  # read once: the ranking and the damage notes come from the same files
    ranked, failed, running = rank_records(records)
    names = hyperparameter_names(trial.hyperparameters for trial in records)
    if not ranked:
        write_results(Report(run, record, [], [], failed, running, names))
        reasons = sorted({row.reason for row in failed if row.reason})
        because = f": {'; '.join(reasons)}" if reasons else ""
        if failed and not running:
            # Not bad input: the work was done and failed, as search.py's own exit says (1).
            raise SearchFailedError(
                f"all {len(failed)} trial(s) of run '{run.root}' failed{because}, so there is nothing to rank; "
                f"fix the cause and search again with python search.py --overwrite."
            )
        raise TunerUsageError(
            f"run '{run.root}' has no completed trial yet ({running} running, {len(failed)} failed{because}); "
            f"its search was stopped before one finished: run python search.py to resume it."
        )
    budget = Budget(settings.max_params, settings.max_latency_ms)
    fitting, excluded = apply_budget(ranked, budget)
    if budget.active:  # the winner is rank 1 of the trials within the budget
        fitting = assign_ranks(fitting)
    top, seeds = settings.confirm_counts(record.search)
    confirmations = confirm_top(run, record, fitting, top, seeds, settings.workers)
    champion = champion_trial(fitting, record)
    ranking = rank_confirmed(fitting, confirmations, champion) if confirmations else fitting
    front = pareto_front(ranked)
    space = search_space(record, ranked, names)
    # The edge notes weigh every ranked trial, the budget's exclusions too: they are evidence about the space.
    notes = boundary_warnings(ranking[0].hyperparameters, space, record.dataset.img_size, record.search, ranked)
    if running:
        notes.append(f"{running} trial(s) are still running or were interrupted; this ranking is provisional.")
    notes += damage_warnings(damaged)
    if not front:
        notes.append("no trial has its size and speed recorded (the run was searched before they were), so there is "
                     "no Pareto plot and no budget can be applied; search again with --overwrite to measure them.")
    comparison = comparison_line(ranking, confirmations, champion)
    report = Report(run, record, ranking, excluded, failed, running, names, front, comparison, budget, notes,
                    importances=importances([*ranking, *excluded], names), records=records, champion=champion)
    written = write_results(report)
    written += write_plots(run, records, ranking, failed, names, space, continuous_ranges(record.search),
                           top=settings.top or DEFAULT_PLOTTED_TRIALS)
    pareto = write_pareto_plot(run, ranked, ranking[0], budget)
    return replace(report, written=written + ([pareto] if pareto else []))
