"""tuner.confirm.selection: the baseline is always confirmed, and a challenger replaces it only when clearly better."""

import math

from tuner.config import SearchSettings
from tuner.config.spaces import modern_baseline
from tuner.confirm.runs import Confirmation, rank_confirmed
from tuner.confirm.selection import (CHALLENGE_Z, MIN_RELATIVE_NOISE, beats_champion, champion_trial, confirm_choice,
                                     seed_noise)
from tuner.rundir import DatasetRecord, RunRecord
from tuner.trials.rows import TrialRow

DATASET = DatasetRecord(path="/data/prepared", identity="0123456789abcdef", class_names=("cat", "dog"),
                        input_shape=(28, 28, 1), img_size=28, color="grayscale")
MODERN = RunRecord(SearchSettings(space="modern"), DATASET)
BASELINE = modern_baseline(MODERN.search.conv_layers, MODERN.search.nodes, MODERN.search.dense_layers, 28)
OTHER = {**BASELINE, "dropout": 0.4, "learning_rate": 0.001}


def _rows(*trials):
    """Ranked rows (trial id, configuration, val_loss), in the order given."""
    return [TrialRow(trial, dict(values), rank=rank, val_loss=loss, best_epoch=5)
            for rank, (trial, values, loss) in enumerate(trials, start=1)]


def test_the_champion_is_the_trial_of_the_baseline_and_only_in_the_modern_space():
    rows = _rows(("3", OTHER, 0.08), ("0", BASELINE, 0.10))
    assert champion_trial(rows, MODERN) == "0"
    assert champion_trial(_rows(("3", OTHER, 0.08)), MODERN) is None
    assert champion_trial(rows, RunRecord(SearchSettings(space="tutorial"), DATASET)) is None


def test_the_champion_is_confirmed_even_outside_the_top_k():
    rows = _rows(("3", OTHER, 0.08), ("4", {**OTHER, "dropout": 0.1}, 0.09), ("0", BASELINE, 0.10))
    assert [row.trial for row in confirm_choice(rows, 2, MODERN)] == ["3", "4", "0"]
    assert [row.trial for row in confirm_choice(rows, 3, MODERN)] == ["3", "4", "0"]
    assert confirm_choice(rows, 0, MODERN) == []


def test_a_challenger_within_the_seed_noise_does_not_replace_the_champion():
    rows = _rows(("3", OTHER, 0.090), ("0", BASELINE, 0.100))
    # Lower on both seeds, by 8% of the champion's mean: less than the noise allows.
    confirmations = [Confirmation("3", [0.090, 0.098], [5, 5]), Confirmation("0", [0.100, 0.104], [6, 6])]
    ranked = rank_confirmed(rows, confirmations, champion="0")
    assert [(row.rank, row.trial) for row in ranked] == [(1, "0"), (2, "3")]
    # Without a champion the mean alone decides, as it always did.
    assert [row.trial for row in rank_confirmed(rows, confirmations)] == ["3", "0"]


def test_a_clearly_better_challenger_replaces_the_champion():
    rows = _rows(("3", OTHER, 0.060), ("0", BASELINE, 0.100))
    confirmations = [Confirmation("3", [0.060, 0.062], [5, 5]), Confirmation("0", [0.100, 0.104], [6, 6])]
    assert [row.trial for row in rank_confirmed(rows, confirmations, champion="0")] == ["3", "0"]


def test_the_champion_goes_before_the_first_challenger_that_does_not_beat_it():
    rows = _rows(("3", OTHER, 0.05), ("4", {**OTHER, "dropout": 0.1}, 0.095), ("0", BASELINE, 0.10), ("5", OTHER, 0.2))
    confirmations = [Confirmation("3", [0.05, 0.05], [5, 5]), Confirmation("4", [0.095, 0.096], [5, 5]),
                     Confirmation("0", [0.10, 0.10], [6, 6])]
    ranked = rank_confirmed(rows, confirmations, champion="0")
    assert [(row.trial, row.seeds) for row in ranked] == [("3", 2), ("0", 2), ("4", 2), ("5", None)]
    assert [row.rank for row in ranked] == [1, 2, 3, 4]


def test_the_noise_is_pooled_over_seeds_and_never_below_its_floor():
    assert seed_noise([[0.10, 0.10], [0.2]], champion_mean=0.10) == MIN_RELATIVE_NOISE * 0.10
    spread = seed_noise([[0.1, 0.3], [0.2, 0.2]], champion_mean=0.10)  # squares 0.02 over 2 degrees of freedom
    assert math.isclose(spread, 0.1)
    margin = CHALLENGE_Z * 0.01 * math.sqrt(1 / 2 + 1 / 2)
    assert beats_champion([0.05, 0.05], [0.05 + margin + 1e-9] * 2, noise=0.01)
    assert not beats_champion([0.05, 0.05], [0.05 + margin - 1e-9] * 2, noise=0.01)


def test_a_diverged_run_never_wins_and_a_diverged_champion_is_beaten():
    assert not beats_champion([0.01, math.inf], [0.5, 0.5], noise=0.01)
    assert beats_champion([0.3, 0.3], [0.1, math.inf], noise=0.01)
    assert not beats_champion([], [0.1], noise=0.01)


def test_the_report_says_why_the_baseline_kept_its_place():
    from tuner.report.notes import comparison_line

    rows = _rows(("3", OTHER, 0.090), ("0", BASELINE, 0.100))
    confirmations = [Confirmation("3", [0.090, 0.098], [5, 5]), Confirmation("0", [0.100, 0.104], [6, 6])]
    line = comparison_line(rank_confirmed(rows, confirmations, champion="0"), confirmations, champion="0")
    assert line.startswith("The winner is the recipe's baseline, trial 0") and "trial 3" in line and "clearly better" in line


def test_a_challenger_that_beats_the_champion_wins_though_one_with_a_lower_mean_and_fewer_runs_does_not():
    rows = _rows(("3", OTHER, 0.082), ("4", {**OTHER, "dropout": 0.1}, 0.083), ("0", BASELINE, 0.10))
    # 3 was cut short by the search: its one confirm run alone needs a larger margin than 4's two runs.
    confirmations = [Confirmation("3", [0.082], [5]), Confirmation("4", [0.083, 0.083], [5, 5]),
                     Confirmation("0", [0.10, 0.10], [6, 6])]
    assert not beats_champion([0.082], [0.10, 0.10], seed_noise([[0.10, 0.10]], 0.10))
    assert [row.trial for row in rank_confirmed(rows, confirmations, champion="0")] == ["4", "0", "3"]


def test_the_summary_names_the_baseline_rule_only_where_a_trial_trained_the_baseline(tmp_path):
    from dataclasses import replace

    from tuner.report.summary import Report, summary_lines
    from tuner.rundir import Run

    rows = rank_confirmed(_rows(("3", OTHER, 0.09), ("0", BASELINE, 0.10)),
                          [Confirmation("3", [0.09, 0.098], [5, 5]), Confirmation("0", [0.10, 0.104], [6, 6])], "0")
    report = Report(Run(tmp_path), MODERN, rows, [], [], 0, list(BASELINE), comparison="compared", champion="0")
    assert "(the recipe's baseline first unless a challenger clearly beats it)" in summary_lines(report)[0]
    # A random search of the same space proposed no baseline: its confirmed trials are ranked by their mean alone.
    assert "baseline" not in summary_lines(replace(report, champion=None))[0]
