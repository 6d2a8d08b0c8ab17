"""tuner.search.oracles: a grid that resumes, and reloaded oracles reconciled with the trial files after a kill."""

import json

import keras_tuner
import pytest

from tuner.search.kerastuner import configure_keras_tuner
from tuner.search.oracles import ResumableGridOracle, planned_trials, repair_after_reload
from tuner.trials.records import COMPLETED, RUNNING, STOPPED

CONFIGURATIONS = {(1, 4), (1, 8), (2, 4), (2, 8)}


@pytest.fixture(autouse=True)
def atomic_keras_tuner():
    configure_keras_tuner()


def grid_oracle(directory):
    """A grid oracle over conv_layers 1 2 x nodes 4 8 in `directory`, reloaded if its state is there."""
    oracle = ResumableGridOracle(objective=keras_tuner.Objective("val_loss", "min"), max_trials=10, seed=1)
    oracle._set_project_dir(str(directory), "trials")
    space = keras_tuner.HyperParameters()
    space.Choice("conv_layers", [1, 2])
    space.Choice("nodes", [4, 8])
    oracle.update_space(space)
    if (directory / "trials" / "oracle.json").exists():
        oracle.reload()
    return oracle


def finish(oracle, trial, val_loss=0.5):
    oracle.update_trial(trial.trial_id, {"val_loss": val_loss})
    trial.status = COMPLETED
    oracle.end_trial(trial)


def configuration(trial):
    return trial.hyperparameters.values["conv_layers"], trial.hyperparameters.values["nodes"]


def test_the_grid_hands_out_every_configuration_once_then_stops(tmp_path):
    oracle = grid_oracle(tmp_path)
    seen = []
    for _ in range(4):
        trial = oracle.create_trial("tuner0")
        seen.append(configuration(trial))
        finish(oracle, trial)
    assert set(seen) == CONFIGURATIONS and len(seen) == 4
    assert oracle.create_trial("tuner0").status == STOPPED


def test_a_killed_grid_resumes_its_interrupted_trial_first_and_runs_nothing_twice(tmp_path):
    oracle = grid_oracle(tmp_path)
    first = oracle.create_trial("tuner0")
    finish(oracle, first)
    interrupted = oracle.create_trial("tuner0")  # the process dies during this trial
    oracle = grid_oracle(tmp_path)
    assert repair_after_reload(oracle) == [interrupted.trial_id]
    again = oracle.create_trial("tuner0")
    assert again.trial_id == interrupted.trial_id and configuration(again) == configuration(interrupted)
    finished = [configuration(first)]
    trial = again
    while trial.status != STOPPED:
        if trial is not again:
            finished.append(configuration(trial))
        finish(oracle, trial)
        trial = oracle.create_trial("tuner0")
    finished.append(configuration(again))
    assert sorted(finished) == sorted(CONFIGURATIONS)
    statuses = [json.loads(path.read_text())["status"] for path in (tmp_path / "trials").glob("trial_*/trial.json")]
    assert statuses == [COMPLETED] * 4


def test_a_trial_that_finished_just_before_the_kill_is_not_run_again(tmp_path):
    oracle = grid_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle_state = (tmp_path / "trials" / "oracle.json").read_text()
    finish(oracle, trial)
    # The kill came between writing trial.json and oracle.json: the oracle still lists the trial as ongoing.
    (tmp_path / "trials" / "oracle.json").write_text(oracle_state)
    oracle = grid_oracle(tmp_path)
    assert repair_after_reload(oracle) == []
    assert oracle.create_trial("tuner0").trial_id != trial.trial_id


def test_a_trial_the_oracle_never_recorded_is_queued(tmp_path):
    oracle = grid_oracle(tmp_path)
    oracle.save()
    before = (tmp_path / "trials" / "oracle.json").read_text()
    trial = oracle.create_trial("tuner0")
    # The kill came after trial.json was written (RUNNING) but before oracle.json knew of it.
    (tmp_path / "trials" / "oracle.json").write_text(before)
    oracle = grid_oracle(tmp_path)
    assert json.loads((tmp_path / "trials" / f"trial_{trial.trial_id}" / "trial.json").read_text())["status"] == RUNNING
    assert repair_after_reload(oracle) == [trial.trial_id]


def test_planned_trials_is_the_smaller_of_the_space_and_max_trials(tmp_path):
    assert planned_trials(grid_oracle(tmp_path), space_size=4) == 4
    sampled = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("val_loss", "min"), max_trials=3)
    assert planned_trials(sampled, space_size=27) == 3


def hyperband_oracle(max_epochs, max_trials=None):
    oracle = keras_tuner.oracles.HyperbandOracle(objective=keras_tuner.Objective("val_loss", "min"),
                                                 max_epochs=max_epochs, factor=3)
    oracle.max_trials = max_trials
    return oracle


def test_hyperband_plans_its_schedule_capped_by_max_trials():
    # epochs 3, factor 3: bracket 1 runs 3 trials of 1 epoch and continues the best one; bracket 0 runs 2.
    assert planned_trials(hyperband_oracle(3), space_size=27) == 6
    assert planned_trials(hyperband_oracle(3, max_trials=4), space_size=27) == 4
    assert planned_trials(hyperband_oracle(3, max_trials=50), space_size=27) == 6
    # epochs 10: brackets of 12+4+2, 6+2 and 4 trials.
    assert planned_trials(hyperband_oracle(10), space_size=27) == 30


def test_hyperband_plans_no_more_trials_than_its_space_has_new_configurations_for():
    # Bracket 1 tries 3 configurations and continues 1; bracket 0 finds 1 of the 2 it wants, then the search stops.
    assert planned_trials(hyperband_oracle(3), space_size=4) == 5
    assert planned_trials(hyperband_oracle(3), space_size=2) == 2
    assert planned_trials(hyperband_oracle(3), space_size=5) == 6


@pytest.mark.parametrize("name, max_trials, planned", [
    ("grid", None, 4), ("grid", 3, 3), ("random", None, 4), ("random", 3, 3), ("bayesian", 3, 3),
    ("hyperband", None, 5), ("hyperband", 3, 3),
    # asha, --epochs 3 (rungs of 2 and 3 epochs): the 4 configurations (fewer than its default 18) and the best
    # third of them continued; --max-trials 3 counts new configurations, so 3 + 1.
    ("asha", None, 5), ("asha", 3, 4)])
@pytest.mark.parametrize("role", [None, "chief", "worker"])
def test_every_tuner_plans_its_trials_on_every_role(tmp_path, name, max_trials, planned, role):
    from tuner.config import SearchSettings
    from tuner.model.hypermodel import CNNHyperModel
    from tuner.search.kerastuner import kerastuner_role
    from tuner.rundir import Run
    from tuner.search.tuners import make_tuner, space_size

    settings = SearchSettings(space="tutorial", tuner=name, epochs=3, conv_layers=(1, 2), nodes=(4, 8), dense_layers=(0,),
                              max_trials=max_trials)
    hypermodel = CNNHyperModel((16, 16, 1), 2, conv_layers=(1, 2), nodes=(4, 8), dense_layers=(0,))
    # A worker's tuner talks to its chief through an OracleClient; building it and counting make no call.
    with kerastuner_role(role, ("127.0.0.1", 9) if role else None):
        tuner = make_tuner(settings, hypermodel, Run(tmp_path))
        assert (type(tuner.oracle).__name__ == "OracleClient") == (role == "worker")
        assert planned_trials(tuner.oracle, space_size(settings)) == planned
