"""tuner.report.plot_data: what each figure shows, computed from records and rows built here (no run, no matplotlib)."""

import math

from tuner.config.spaces import FloatRange
from tuner.report.budget import Budget
from tuner.report.plot_data import curves_info, hyperparameters_info, pareto_info
from tuner.trials.records import COMPLETED, TrialRecord
from tuner.trials.rows import TrialRow


def record(trial, losses):
    history = [{"epoch": epoch, "val_loss": loss, "val_accuracy": 0.5} for epoch, loss in enumerate(losses, start=1)]
    return TrialRecord(trial, COMPLETED, {"nodes": 8}, None, history, 1.0)


def row(trial, rank, val_loss, best_epoch=1, pruned=None, params=None, **hyperparameters):
    return TrialRow(trial, hyperparameters or {"nodes": 8}, rank=rank, val_loss=val_loss, best_epoch=best_epoch,
                    pruned=pruned, params=params)


def test_curves_come_from_the_records_best_first_with_the_best_epoch_and_the_pruned_end():
    records = [record("0", [0.9, 0.5, 0.6]), record("1", [0.8, math.nan, 0.4]), record("2", [0.7]), record("3", [])]
    ranking = [row("1", 1, 0.4, best_epoch=3), row("0", 2, 0.5, best_epoch=2, pruned=3), row("3", 3, 0.6),
               row("2", 4, 0.7)]
    info = curves_info(records, ranking, ["nodes"], top=3)
    # Trial 3's history is gone (a damaged curve file): it has no curve, and only the top 3 are looked at.
    assert [curve.trial for curve in info.curves] == ["1", "0"] and info.ranked == 4
    winner, pruned = info.curves
    assert winner.winner and winner.title == "#1 trial 1 (winner)" and winner.configuration == ("nodes=8",)
    # A diverged epoch (NaN) is left out of the line; the best epoch is the row's.
    assert winner.points == ((1, 0.8), (3, 0.4)) and winner.best == (3, 0.4) and winner.stopped is None
    assert not pruned.winner and pruned.title == "#2 trial 0 (pruned at epoch 3)" and pruned.stopped == (3, 0.6)


def test_the_legend_shows_a_sampled_learning_rate_short():
    ranking = [row("0", 1, 0.3, learning_rate=0.0043037812, head="gap")]
    info = curves_info([record("0", [0.3])], ranking, ["learning_rate", "head"])
    assert info.curves[0].configuration == ("learning_rate=0.0043", "head=gap")


def test_each_hyperparameter_panel_holds_every_trial_the_best_per_value_the_failures_and_the_winner():
    ranking = [row("0", 1, 0.2, nodes=64, head="gap"), row("1", 2, 0.3, nodes=8, head="gap"),
               row("2", 3, 0.5, nodes=8, head="flatten")]
    failed = [TrialRow("3", {"nodes": 32, "head": "gap"}, reason="out of memory")]
    space = {"nodes": [8, 32, 64], "head": ["flatten", "gap"], "fixed": [1]}
    info = hyperparameters_info(ranking, failed, ["nodes", "head", "fixed"], space)
    # A hyperparameter searched over one value has no panel: it cannot tell values apart.
    assert [panel.name for panel in info.panels] == ["nodes", "head"]
    assert (info.winner_trial, info.winner_loss) == ("0", 0.2)
    nodes, head = info.panels
    assert nodes.labels == ("8", "32", "64") and nodes.log is None and nodes.bounds is None
    assert nodes.losses == ((0.3, 0.5), (), (0.2,)) and nodes.best == (0.3, None, 0.2)
    assert nodes.failed == (False, True, False) and nodes.winner == 2
    assert head.best == (0.5, 0.2) and head.failed == (False, False) and head.winner == 1


def test_a_continuous_range_is_placed_by_size_on_its_scale():
    ranking = [row("0", 1, 0.2, learning_rate=0.003), row("1", 2, 0.4, learning_rate=0.0002)]
    space = {"learning_rate": [0.0002, 0.003]}
    info = hyperparameters_info(ranking, [], ["learning_rate"], space, {"learning_rate": FloatRange(1e-4, 1e-2, log=True)})
    panel = info.panels[0]
    assert panel.log is True and panel.bounds == (1e-4, 1e-2) and panel.values == (0.0002, 0.003) and panel.winner == 1


def test_values_that_print_alike_stay_apart():
    # True and 1 (or 1 and "1") are different values of a hyperparameter, and each keeps its own trials.
    ranking = [row("0", 1, 0.2, flag=True), row("1", 2, 0.3, flag=1)]
    panel = hyperparameters_info(ranking, [], ["flag"], {"flag": [True, 1]}).panels[0]
    assert panel.losses == ((0.2,), (0.3,))


def test_the_pareto_data_places_the_confirmed_winner_at_its_mean_and_names_the_best_regardless_of_budget():
    rows = [row("0", 1, 0.30, params=1_000), row("1", 2, 0.20, params=50_000), row("2", 3, 0.40, params=2_000),
            row("3", 4, 0.50)]
    winner = TrialRow("0", {"nodes": 8}, rank=1, val_loss=0.30, params=1_000, seeds=3, mean_val_loss=0.32)
    info = pareto_info(rows, winner, Budget(max_params=10_000))
    assert [point.trial for point in info.points] == ["0", "1", "2"]  # trial 3 has no recorded size
    assert [point.trial for point in info.front] == ["0", "1"]
    assert info.best.trial == "1" and info.winner.val_loss == 0.32 and info.winner_seeds == 3
    assert info.max_params == 10_000 and info.spread == 50
    assert pareto_info([row("3", 1, 0.5)], row("3", 1, 0.5), Budget()) is None

