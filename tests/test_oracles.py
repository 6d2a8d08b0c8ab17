"""tuner.oracles: a grid that resumes, and reloaded oracles reconciled with the trial files after a kill."""

import json

import keras_tuner
import pytest

from tuner.kerastuner_internals import configure_keras_tuner
from tuner.oracles import ResumableGridOracle, planned_trials, repair_after_reload
from tuner.trials import COMPLETED, RUNNING, STOPPED

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
