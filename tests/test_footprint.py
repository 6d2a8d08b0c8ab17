"""tuner.model.footprint: every trial's size and speed, recorded when it ends, in the ranking and in TensorBoard."""

import json

import pytest

from tests.helpers import tiny_run
from tuner.model.footprint import Footprint, footprint_problem, measure_footprint
from tuner.rundir import Run
from tuner.search.tuners import footprint_tensorboard
from tuner.trials.records import COMPLETED, iter_trials


def test_a_models_footprint_counts_its_parameters_and_times_it():
    from tuner.model.hypermodel import CNNHyperModel, build_model

    model = build_model(CNNHyperModel((16, 16, 1), 3), {"conv_layers": 1, "nodes": 4, "dense_layers": 1})
    footprint = measure_footprint(model)
    assert footprint.params == model.count_params() > 0
    assert footprint.weight_bytes == 4 * footprint.params  # float32 weights
    assert footprint.latency_ms > 0 and footprint.images_per_second > 0 and footprint.passes >= 1
    assert footprint.threads >= 1 and footprint.batch == 64 and footprint.seconds > 0
    assert Footprint.from_json(json.loads(json.dumps(footprint.to_json()))) == footprint


GOOD = {"params": 10, "weight_bytes": 40, "latency_ms": 0.5, "images_per_second": 100.0, "threads": 1, "batch": 64,
        "passes": 10, "seconds": 0.1}


@pytest.mark.parametrize("damage", [None, [], {"params": 3}, {**GOOD, "params": "3"}, {**GOOD, "params": True},
                                    {**GOOD, "params": 3.5}, {**GOOD, "latency_ms": float("nan")},
                                    {**GOOD, "latency_ms": -1.0}, {**GOOD, "threads": 0}, {**GOOD, "batch": 0},
                                    {**GOOD, "passes": 0}, {**GOOD, "params": 0}, {**GOOD, "params": 2**60},
                                    {**GOOD, "latency_ms": 0.0}, {**GOOD, "images_per_second": 0},
                                    {**GOOD, "seconds": float("inf")}, {**GOOD, "latency_ms": 1e400},
                                    {**GOOD, "params": 10**400}, {**GOOD, "seconds": 10**400}])
def test_a_damaged_footprint_reads_as_none(damage):
    assert Footprint.from_json(GOOD) is not None
    assert Footprint.from_json(damage) is None


@pytest.mark.parametrize("damage, problem", [
    ({"threads": 0}, "its footprint's threads 0 is not a whole number from 1 to 2**53"),
    ({"params": 2**60}, f"its footprint's params {2**60} is not a whole number from 1 to 2**53"),
    ({"latency_ms": -1.0}, "its footprint's latency_ms -1.0 is not a number from 0 to 3.6e+06"),
    ({"seconds": float("nan")}, "its footprint's seconds nan is not a number from 0 to 1e+08"),
    # JSON's integers have no size limit: one beyond a float's range is refused, never converted (TypeError).
    ({"params": 10**400}, "its footprint's params 100000000000...(401 digits) is not a whole number from 1 to 2**53"),
    ({"images_per_second": 10**400}, "its footprint's images_per_second 100000000000...(401 digits) is not a number "
                                     "from 0 to 1e+12"),
    ({"images_per_second": 0.0}, "its footprint's images_per_second is 0, which no measurement gives"),
])
def test_a_footprints_problem_is_named(damage, problem):
    assert footprint_problem(GOOD) is None
    assert footprint_problem({**GOOD, **damage}) == problem
    assert footprint_problem({"params": 3}).startswith("its footprint has no weight_bytes")


def test_every_completed_trial_records_the_parameters_of_its_model(tmp_path_factory):
    from tuner.data.cache import load_prepared
    from tuner.config import SearchSettings
    from tuner.model.hypermodel import build_hypermodel, build_model

    prepared, run = tiny_run(tmp_path_factory)
    dataset = load_prepared(prepared)
    search = SearchSettings(conv_layers=(1, 2, 3), nodes=(4,), dense_layers=(0,))
    completed = [record for record in iter_trials(Run(run)) if record.status == COMPLETED]
    assert len(completed) == 2
    for record in completed:
        model = build_model(build_hypermodel(search, dataset), record.hyperparameters)
        assert record.footprint.params == model.count_params()
        assert record.footprint.weight_bytes == 4 * model.count_params() and record.footprint.latency_ms > 0


def test_the_footprint_is_a_tensorboard_hparams_metric_of_each_trial(tmp_path_factory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run = tiny_run(tmp_path_factory)
    for record in iter_trials(Run(run)):
        if record.status != COMPLETED:
            continue
        folder = footprint_tensorboard(Run(run), record.trial_id)
        # Inside the trial's HParams session folder (execution0), so the dashboard lists these as its metrics.
        assert folder.parent.name == "execution0" and any(folder.parent.glob("events.out.tfevents*"))
        events = EventAccumulator(str(folder), size_guidance={"tensors": 0}).Reload()
        assert set(events.Tags()["tensors"]) >= {"params", "weight_bytes", "latency_ms", "images_per_second"}
        from tensorboard.util import tensor_util

        params = tensor_util.make_ndarray(events.Tensors("params")[0].tensor_proto)
        assert float(params) == record.footprint.params
