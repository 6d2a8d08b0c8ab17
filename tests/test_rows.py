"""tuner.trials.rows: a trial row keeps its hyperparameters apart from its metrics, and the table columns come from it."""

import dataclasses

import pytest

from tuner.model.footprint import Footprint
from tuner.trials.ranking import assign_ranks, rank_records
from tuner.trials.rows import (CONFIRM_COLUMNS, FOOTPRINT_COLUMNS, METRIC_COLUMNS, TrialRow, excluded_columns, failed_columns,
                        ranked_columns)
from tuner.trials.records import COMPLETED, FAILED, TrialRecord

FOOTPRINT = Footprint(params=1234, weight_bytes=4936, latency_ms=0.5, images_per_second=900.0, threads=2, batch=64,
                      passes=10, seconds=0.1)


def _record(trial_id, status=COMPLETED, val_loss=0.5, **values):
    history = [{"epoch": 1, "val_loss": val_loss + 0.1, "val_accuracy": 0.5},
               {"epoch": 2, "val_loss": val_loss, "val_accuracy": 0.75}]
    return TrialRecord(trial_id, status, values, "Traceback\nValueError: too small" if status == FAILED else None,
                       history if status == COMPLETED else [], 3.25, footprint=FOOTPRINT,
                       pruned={"epoch": 2} if trial_id == "1" else None)


def test_a_ranked_row_keeps_only_hyperparameters_in_its_configuration():
    ranked, failed, running = rank_records([_record("0", val_loss=0.4, conv_layers=2, dropout=0.25),
                                            _record("1", val_loss=0.3, conv_layers=1),
                                            _record("2", FAILED, conv_layers=3)])
    assert [row.trial for row in ranked] == ["1", "0"] and running == 0
    # Every row names every hyperparameter of the run; what a model is built with leaves out the unset ones.
    assert ranked[0].hyperparameters == {"conv_layers": 1, "dropout": None}
    assert ranked[0].configuration() == {"conv_layers": 1}
    assert ranked[1].configuration() == {"conv_layers": 2, "dropout": 0.25}
    # However many metrics a row carries, none of them reaches build_model.
    for row in ranked:
        assert not set(row.configuration()) & {"rank", "trial", *METRIC_COLUMNS, *FOOTPRINT_COLUMNS, *CONFIRM_COLUMNS}
    assert (ranked[0].pruned, ranked[0].best_epoch, ranked[0].val_accuracy, ranked[0].params) == (2, 2, 0.75, 1234)
    assert failed[0].failed and failed[0].reason == "too small" and failed[0].rank is None


def test_rows_are_frozen_and_ranked_again_by_replacing_them():
    rows = [TrialRow("a", {}, rank=1, val_loss=0.2), TrialRow("b", {}, rank=2, val_loss=0.2),
            TrialRow("c", {}, rank=3, val_loss=0.3)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows[0].rank = 5
    assert [row.rank for row in assign_ranks(rows[1:])] == [1, 2]
    assert [row.rank for row in assign_ranks(rows)] == [1, 1, 3] and rows[2].rank == 3


def test_the_columns_are_the_documented_ones_in_order():
    row = TrialRow("0", {"conv_layers": 2, "nodes": 64}, rank=1, val_loss=0.3, params=10, latency_ms=0.1)
    assert ranked_columns([row]) == ["rank", "trial", "conv_layers", "nodes", *METRIC_COLUMNS, *FOOTPRINT_COLUMNS]
    confirmed = dataclasses.replace(row, seeds=3, mean_val_loss=0.31, std_val_loss=0.01, median_best_epoch=4)
    assert ranked_columns([confirmed, row])[-4:] == list(CONFIRM_COLUMNS)
    assert failed_columns([row]) == ["trial", "conv_layers", "nodes", "reason"]
    assert excluded_columns([row]) == ["trial", "conv_layers", "nodes", "val_loss", "params", "latency_ms", "reason"]
    assert confirmed.to_record(["trial", "nodes", "val_loss", "seeds"]) == {"trial": "0", "nodes": 64, "val_loss": 0.3,
                                                                            "seeds": 3}
