"""Budgets (report.py --max-params, --max-latency-ms) and the Pareto front of val_loss against model size."""

import json

import pytest

import report as report_script
from tests.helpers import edit_json, one_error_line
from tuner.report.budget import Budget, apply_budget, pareto_front
from tuner.errors import TunerUsageError
from tuner.report import rank_trials
from tuner.trials.rows import TrialRow
from tuner.rundir import Run

QUICK = ["--confirm", "0", "--no-retrain", "--no-export"]


def _row(trial, val_loss, params, latency_ms=1.0):
    return TrialRow(trial, {"nodes": 4}, rank=1, val_loss=val_loss, params=params, latency_ms=latency_ms)


def test_a_budget_keeps_the_ranking_order_and_says_why_each_trial_is_out():
    ranked = [_row("a", 0.1, 500_000, 2.0), _row("b", 0.2, 50_000, 0.5), _row("c", 0.3, 5_000, 3.0), _row("d", 0.4, None, None)]
    fitting, excluded = apply_budget(ranked, Budget(max_params=100_000, max_latency_ms=1.0))
    assert [row.trial for row in fitting] == ["b"]
    reasons = {row.trial: row.reason for row in excluded}
    assert reasons["a"] == "500,000 parameters > 100,000; 2.000 ms per image > 1"
    assert reasons["c"] == "3.000 ms per image > 1" and "not measured" in reasons["d"]
    assert apply_budget(ranked, Budget()) == (ranked, [])


def test_a_budget_nothing_fits_names_the_smallest_and_fastest():
    ranked = [_row("a", 0.1, 500_000, 2.0), _row("b", 0.2, 50_000, 0.5)]
    with pytest.raises(TunerUsageError, match=r"smallest model has 50,000 parameters \(trial b\) and the fastest takes "
                                              r"0.500 ms per image \(trial b\); raise --max-params"):
        apply_budget(ranked, Budget(max_params=10))


def test_the_pareto_front_holds_the_trials_no_other_beats_on_size_and_val_loss():
    rows = [_row("big-best", 0.1, 1_000_000), _row("mid", 0.2, 50_000), _row("mid-worse", 0.3, 60_000),
            _row("small", 0.4, 5_000), _row("small-worse", 0.5, 5_000), _row("unmeasured", 0.05, None)]
    assert [row.trial for row in pareto_front(rows)] == ["small", "mid", "big-best"]


def _make_best_trial_big(run_copy):
    """Record the best trial's model as 10x the size of the largest: a budget between them excludes it."""
    completed, _, _ = rank_trials(Run(run_copy))
    best, rest = completed[0], completed[1:]
    largest_other = max(row.params for row in rest)
    edit_json(run_copy / "history" / f"trial_{best.trial}.json",
              lambda data: data["footprint"].update(params=10 * largest_other, weight_bytes=40 * largest_other))
    return best, rest, largest_other


def test_a_budget_that_excludes_the_best_trial_picks_the_best_within_it(run_copy, capsys):
    best, rest, largest_other = _make_best_trial_big(run_copy)
    assert report_script.main(["--run-dir", str(run_copy), "--max-params", str(largest_other), *QUICK]) == 0
    out = capsys.readouterr().out
    results = json.loads((run_copy / "results.json").read_text())
    metadata = json.loads((run_copy / "best" / "metadata.json").read_text())
    assert metadata["trial_id"] == rest[0].trial == results["ranking"][0]["trial"] and results["ranking"][0]["rank"] == 1
    assert [row["trial"] for row in results["excluded"]] == [best.trial]
    assert results["excluded"][0]["reason"] == f"{10 * largest_other:,} parameters > {largest_other:,}"
    assert results["budget"] == {"max_params": largest_other, "max_latency_ms": None}
    assert f"the best trial regardless of budget, trial {best.trial}" in out.lower() and "1 over the budget" in out
    assert "Excluded by the budget" in (run_copy / "results.md").read_text()
    assert (run_copy / "plots" / "pareto.png").stat().st_size > 0


def test_a_latency_budget_compares_the_measured_latency(run_copy):
    completed, _, _ = rank_trials(Run(run_copy))
    fastest = min(completed, key=lambda row: row.latency_ms)
    assert report_script.main(["--run-dir", str(run_copy), "--max-latency-ms", str(fastest.latency_ms), *QUICK]) == 0
    results = json.loads((run_copy / "results.json").read_text())
    assert all(row["latency_ms"] <= fastest.latency_ms for row in results["ranking"])
    assert all(row["latency_ms"] > fastest.latency_ms for row in results["excluded"])


def test_a_budget_nothing_meets_exits_2_with_one_line_and_leaves_the_winner(run_copy, capsys):
    before = sorted(path.name for path in run_copy.iterdir())
    assert report_script.main(["--run-dir", str(run_copy), "--max-params", "1", *QUICK]) == 2
    one_error_line(capsys, "no trial fits the budget (at most 1 parameters)")
    assert sorted(path.name for path in run_copy.iterdir()) == before


def test_a_run_searched_before_footprints_has_no_pareto_plot_and_refuses_a_budget(run_copy, capsys):
    for path in (run_copy / "history").glob("trial_*.json"):
        edit_json(path, lambda data: data.pop("footprint", None))
    assert report_script.main(["--run-dir", str(run_copy), *QUICK]) == 0
    assert "no trial has its size and speed recorded" in capsys.readouterr().out
    assert not (run_copy / "plots" / "pareto.png").exists()
    assert report_script.main(["--run-dir", str(run_copy), "--max-params", "1000000", *QUICK]) == 2
    one_error_line(capsys, "none of its trials has its size and speed recorded")


def test_a_damaged_footprint_is_noted_and_its_trial_ranked_without_it(run_copy, capsys):
    completed, _, _ = rank_trials(Run(run_copy))
    path = run_copy / "history" / f"trial_{completed[0].trial}.json"
    edit_json(path, lambda data: data["footprint"].update(params="many"))
    assert report_script.main(["--run-dir", str(run_copy), *QUICK]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "footprint" in out
    assert rank_trials(Run(run_copy))[0][0].params is None
