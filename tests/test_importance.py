"""Which hyperparameters mattered: PED-ANOVA on synthetic trials where the answer is known, and in a real report."""

import json
import math

import numpy as np
import pytest

import report as report_script
from tuner.config import ReportSettings
from tuner.report.importance import MIN_TRIALS, categories_of, importances
from tuner.report import build_report, trials_dataframe
from tuner.trials.rows import TrialRow

NAMES = ["conv_layers", "nodes", "dense_layers"]
# val_loss as a function of nodes alone: the deciding hyperparameter.
LOSS_BY_NODES = {32: 0.50, 64: 0.30, 128: 0.10}


def synthetic_rows(count, seed, **fixed):
    """`count` ranked rows whose val_loss is decided by nodes (plus small noise); the others are drawn at random."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        values = {"conv_layers": int(rng.choice([1, 2, 3])), "nodes": int(rng.choice([32, 64, 128])),
                  "dense_layers": int(rng.choice([0, 1, 2])), **fixed}
        loss = LOSS_BY_NODES[values["nodes"]] + rng.normal(0.0, 0.02)
        rows.append(TrialRow(f"{index:02d}", values, rank=0, val_loss=float(loss)))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_deciding_hyperparameter_ranks_first_with_a_clear_margin(seed):
    result = importances(synthetic_rows(40, seed), NAMES)
    (first, top), (_, second), _ = result.values
    assert first == "nodes" and top > 0.6 and top > 3 * second, result.values
    assert math.isclose(sum(value for _, value in result.values), 1.0)
    assert result.method == "PED-ANOVA" and result.trials == 40 and result.reliable and result.note is None


def test_a_hyperparameter_with_a_single_value_gets_zero_and_a_note():
    result = importances(synthetic_rows(40, 0, dense_layers=1), NAMES)
    values = dict(result.values)
    assert values["dense_layers"] == 0.0 and result.values[-1][0] == "dense_layers"
    assert math.isclose(sum(values.values()), 1.0) and result.reliable
    assert "dense_layers took a single value" in result.note


def test_a_confirmed_trial_counts_with_its_mean_over_seeds():
    rows = synthetic_rows(40, 0)
    # Every 128-node trial's mean over seeds turns out worst: by the means, nodes still decides, now the other way.
    confirmed = [row if row.hyperparameters["nodes"] != 128 else
                 TrialRow(row.trial, row.hyperparameters, rank=0, val_loss=row.val_loss, seeds=3, mean_val_loss=0.9)
                 for row in rows]
    assert importances(confirmed, NAMES).values[0][0] == "nodes"
    # A configuration that diverged under a seed (no mean) is never among the best.
    diverged = [TrialRow(row.trial, row.hyperparameters, rank=0, val_loss=row.val_loss, seeds=3, mean_val_loss=None)
                if row.hyperparameters["nodes"] == 128 else row for row in rows]
    assert importances(diverged, NAMES).values[0][0] == "nodes"


def test_few_trials_are_computed_but_marked_unreliable_with_a_note():
    result = importances(synthetic_rows(6, 0), NAMES)
    assert result.trials == 6 and not result.reliable
    assert "only 6 ranked trial(s): too few" in result.note and f"{MIN_TRIALS} or more" in result.note
    assert math.isclose(sum(value for _, value in result.values), 1.0) and len(result.values) == 3


def test_nothing_to_tell_apart_gives_zeros_or_equal_shares_never_a_division_by_zero():
    constant = importances(synthetic_rows(12, 0, conv_layers=1, nodes=64, dense_layers=0), NAMES)
    assert [value for _, value in constant.values] == [0.0, 0.0, 0.0] and not constant.reliable
    assert "no hyperparameter took more than one value" in constant.note
    # Every trial tied: the best are all of them, so no hyperparameter stands out.
    tied = [TrialRow(row.trial, row.hyperparameters, rank=1, val_loss=0.5) for row in synthetic_rows(12, 0)]
    result = importances(tied, NAMES)
    assert [value for _, value in result.values] == pytest.approx([1 / 3] * 3) and not result.reliable
    assert "none stands out" in result.note
    assert importances([], NAMES).values == [(name, 0.0) for name in NAMES]


def test_failed_rows_are_left_out():
    rows = synthetic_rows(20, 0) + [TrialRow("99", {"conv_layers": 3, "nodes": 32, "dense_layers": 0}, reason="OOM")]
    assert importances(rows, NAMES).trials == 20


def test_to_json_is_the_shared_format():
    result = importances(synthetic_rows(20, 0), NAMES)
    document = json.loads(json.dumps(result.to_json()))
    assert set(document) == {"method", "trials", "reliable", "note", "values"}
    assert [item["hyperparameter"] for item in document["values"]] == [name for name, _ in result.values]
    assert [item["importance"] for item in document["values"]] == sorted(
        (item["importance"] for item in document["values"]), reverse=True)


def test_a_real_report_shows_them_on_the_terminal_and_writes_them_everywhere(run_copy, capsys):
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain", "--no-export", "--confirm", "0"]) == 0
    out = capsys.readouterr().out
    written = json.loads((run_copy / "results.json").read_text())["importances"]
    # The tiny run: conv_layers 1 and 2 completed, nodes and dense_layers took one value.
    assert written["method"] == "PED-ANOVA" and written["trials"] == 2 and written["reliable"] is False
    assert [item["hyperparameter"] for item in written["values"]] == ["conv_layers", "nodes", "dense_layers"]
    assert [item["importance"] for item in written["values"]] == [1.0, 0.0, 0.0]
    assert "which hyperparameters mattered (PED-ANOVA over 2 trials, summing to 1):" in out
    lines = out.splitlines()
    for name, value in [("conv_layers", "1.00"), ("nodes", "0.00"), ("dense_layers", "0.00")]:
        assert any(line.split() == [name, value] for line in lines), out
    assert "note: only 2 ranked trial(s): too few" in out
    markdown = (run_copy / "results.md").read_text()
    assert "## Which hyperparameters mattered (PED-ANOVA over 2 trials, summing to 1)" in markdown
    assert "- `conv_layers`: 1.00" in markdown
    assert trials_dataframe(run_copy).attrs["importances"] == written


def test_the_trials_a_budget_excluded_count_too(run_copy):
    smallest = min(trials_dataframe(run_copy)["params"])
    report = build_report(ReportSettings(run_dir=str(run_copy), confirm=(0,), max_params=int(smallest)))
    assert len(report.ranking) == 1 and len(report.excluded) == 1
    assert report.importances.trials == 2 and report.importances.values[0] == ("conv_layers", 1.0)


def test_a_continuous_hyperparameter_is_binned_into_quantile_bins_and_a_choice_is_not():
    rates = [0.0001 * 1.5 ** index for index in range(12)]  # 12 distinct values: continuous
    bins = categories_of(rates)
    assert [category[1] for category in bins] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert categories_of([0.1, 0.2, 0.1, 0.3]) == [("float", 0.1), ("float", 0.2), ("float", 0.1), ("float", 0.3)]
    assert categories_of([1, 2, 3, 4, 5, 6]) == [("int", value) for value in range(1, 7)]  # whole numbers are choices
    assert categories_of([True, 1]) == [("bool", True), ("int", 1)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_a_continuous_learning_rate_that_decides_the_loss_ranks_first(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(40):
        rate = float(10 ** rng.uniform(-4, -2))  # log-uniform, as the modern space samples it
        values = {"conv_layers": int(rng.choice([1, 2, 3])), "nodes": int(rng.choice([32, 64, 128])),
                  "learning_rate": rate, "dropout": float(rng.choice([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]))}
        # The best rates are near 1.8e-4 (the middle of the lowest quarter of the range, on the log scale):
        # the loss grows with the distance from it.
        loss = 0.1 + 0.2 * abs(math.log10(rate) + 3.75) + rng.normal(0.0, 0.01)
        rows.append(TrialRow(f"{index:02d}", values, rank=0, val_loss=float(loss)))
    result = importances(rows, ["conv_layers", "nodes", "learning_rate", "dropout"])
    (first, top), (_, second), *_ = result.values
    assert first == "learning_rate" and top > 2 * second, result.values
    assert math.isclose(sum(value for _, value in result.values), 1.0)
