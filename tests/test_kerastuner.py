"""tuner.search.kerastuner: the one adapter to KerasTuner's private API and state, its version check, its role changes
and the names of KerasTuner's state, held to what KerasTuner itself does."""

import importlib
import os

import keras_tuner
import pytest

import tuner.search.kerastuner as internals
from tuner.errors import TunerUsageError
from tuner.files import read_json
from tuner.search.kerastuner import (
    KERASTUNER_ENVIRONMENT,
    RPC_TIMEOUT_SECONDS,
    WRITTEN_FOR,
    ConfigurationHashMixin,
    HookedTuner,
    active_workers,
    check_oracle_state,
    check_version,
    checkpoint_path,
    configuration_hash,
    configure_keras_tuner,
    held_trials,
    hold_trial,
    kerastuner_role,
    oracle_state_path,
    queue_oldest_first,
    record_trial,
    release_worker,
    requeue,
    saved_held_trials,
    tensorboard_execution_dir,
)


def test_the_kerastuner_it_was_written_for_passes_and_any_other_is_refused_naming_both():
    check_version(WRITTEN_FOR)
    with pytest.raises(TunerUsageError) as raised:
        check_version("1.4.7")
    message = str(raised.value)
    assert "KerasTuner 1.4.7 is installed" in message and "pip install keras-tuner==1.4.8" in message
    assert "\n" not in message


def test_importing_the_adapter_under_another_kerastuner_is_refused(monkeypatch):
    monkeypatch.setattr(keras_tuner, "__version__", "1.5.0")
    with pytest.raises(TunerUsageError, match="KerasTuner 1.5.0 is installed; run pip install keras-tuner==1.4.8"):
        importlib.reload(internals)
    # The check comes before anything that uses KerasTuner's internals: those were left as they were.
    assert internals.kerastuner_role is kerastuner_role and internals.configure_keras_tuner is configure_keras_tuner


def _role_state():
    from keras_tuner.src.distribute import oracle_client

    return {name: os.environ.get(name) for name in KERASTUNER_ENVIRONMENT}, oracle_client.TIMEOUT


@pytest.mark.parametrize("before", [{}, {"KERASTUNER_TUNER_ID": "worker7", "KERASTUNER_ORACLE_IP": "10.0.0.1"}])
@pytest.mark.parametrize("role, address", [(None, None), ("chief", ("127.0.0.1", 8000)),
                                           ("worker", ("127.0.0.1", 8000))])
def test_a_role_is_undone_completely_environment_and_call_timeout(monkeypatch, before, role, address):
    from keras_tuner.src.distribute import oracle_client

    for name in KERASTUNER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in before.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(oracle_client, "TIMEOUT", 3600)
    saved = _role_state()
    with kerastuner_role(role, address) as tuner_id:
        if role is None:
            assert tuner_id == "tuner0" and not any(name in os.environ for name in KERASTUNER_ENVIRONMENT)
        else:
            assert os.environ["KERASTUNER_ORACLE_PORT"] == "8000" and oracle_client.TIMEOUT == RPC_TIMEOUT_SECONDS
            assert tuner_id == os.environ["KERASTUNER_TUNER_ID"]
            assert (tuner_id == "chief") == (role == "chief")
            if role == "worker" and before:
                assert tuner_id == "worker7"  # a restarted worker keeps its id
    assert _role_state() == saved


def test_a_role_is_undone_when_its_block_fails(monkeypatch):
    monkeypatch.delenv("KERASTUNER_TUNER_ID", raising=False)
    saved = _role_state()
    with pytest.raises(RuntimeError):
        with kerastuner_role("worker", ("127.0.0.1", 8000)):
            raise RuntimeError("the search stopped")
    assert _role_state() == saved


def test_the_atomic_state_patch_is_idempotent(tmp_path):
    from keras_tuner.src import config as kt_config
    from keras_tuner.src import utils as kt_utils

    configure_keras_tuner()
    patched = kt_utils.save_json
    configure_keras_tuner()
    assert kt_utils.save_json is patched and kt_config.DEBUG is False
    kt_utils.save_json(str(tmp_path / "state.json"), {"a": 1})
    assert (tmp_path / "state.json").read_text() == '{"a": 1}' and list(tmp_path.iterdir()) == [tmp_path / "state.json"]


# The functions below name KerasTuner's state for the rest of the tool; these tests hold them to what KerasTuner 1.4.8
# itself does (its private names are fine here: this is where the adapter's assumptions are checked).


def random_oracle(directory, max_trials=5):
    configure_keras_tuner()
    oracle = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("val_loss", "min"),
                                                   max_trials=max_trials, seed=1)
    oracle._set_project_dir(str(directory), "trials")
    space = keras_tuner.HyperParameters()
    space.Choice("nodes", [4, 8, 16, 32])
    oracle.update_space(space)
    return oracle


class _Declared(HookedTuner):
    built = []

    def declare_space(self, space):
        space.Choice("units", [2, 4])

    def model_built(self, model, hp):
        self.built.append(hp.values)


def _build(hp):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(hp.get("units"))])
    model.compile(loss="mse")
    return model


def test_the_file_names_are_the_ones_keras_tuner_writes(tmp_path):
    oracle = random_oracle(tmp_path)
    assert str(oracle_state_path(tmp_path / "trials")) == oracle._get_oracle_fname()
    tuner = _Declared(hypermodel=_build, oracle=oracle, directory=str(tmp_path), project_name="trials")
    trial_dir = tuner.get_trial_dir("03")
    assert str(checkpoint_path(trial_dir)) == tuner._get_checkpoint_fname("03")
    assert str(tensorboard_execution_dir(tmp_path / "logs" / "03")) == tuner._get_tensorboard_dir(
        tmp_path / "logs", "03", 0)


def test_the_hooked_tuner_declares_its_space_without_building_and_sees_every_model_it_builds(tmp_path):
    oracle = random_oracle(tmp_path)
    _Declared.built = []
    tuner = _Declared(hypermodel=_build, oracle=oracle, directory=str(tmp_path), project_name="trials")
    assert _Declared.built == [] and "units" in {hp.name for hp in oracle.get_space().space}
    hp = keras_tuner.HyperParameters()
    hp.values = {"units": 4}
    tuner._try_build(hp)
    assert _Declared.built == [{"units": 4}]


def test_a_saved_oracle_state_passes_its_check_and_names_its_trials(tmp_path):
    oracle = random_oracle(tmp_path)
    first, second = oracle.create_trial("worker0"), oracle.create_trial("worker1")
    state = read_json(oracle_state_path(tmp_path / "trials"))
    space, named = check_oracle_state(state)
    assert [entry["config"]["name"] for entry in space["space"]] == ["nodes"]
    assert named == {first.trial_id, second.trial_id}
    assert saved_held_trials(tmp_path / "trials") == {"worker0": first.trial_id, "worker1": second.trial_id}


# An oracle state of the right shape, for the cases that damage one part of it.
SOUND_STATE = {"ongoing_trials": {}, "hyperparameters": {"space": [], "values": {}}, "start_order": [], "end_order": [],
               "run_times": {}, "retry_queue": [], "seed": 1, "seed_state": 1, "tried_so_far": [], "id_to_hash": {},
               "display": {}}


@pytest.mark.parametrize("state, problem", [
    (None, "not valid JSON"), ([], "not a JSON object"),
    ({"seed": True}, "missing or mistyped: ongoing_trials, hyperparameters, start_order, end_order, run_times, "
                     "retry_queue, seed, seed_state, tried_so_far, id_to_hash, display"),
    # KerasTuner rebuilds the space from the hyperparameters' list and their values' object.
    ({**SOUND_STATE, "hyperparameters": {"values": {}}}, "missing or mistyped: hyperparameters.space"),
    ({**SOUND_STATE, "hyperparameters": {"space": [], "values": []}}, "missing or mistyped: hyperparameters.values"),
])
def test_a_damaged_oracle_state_is_named(state, problem):
    assert check_oracle_state(SOUND_STATE) == (SOUND_STATE["hyperparameters"], set())
    with pytest.raises(ValueError, match=f"^{problem}$"):
        check_oracle_state(state)


def test_a_project_without_a_readable_oracle_state_held_nothing(tmp_path):
    assert saved_held_trials(tmp_path) == {}
    oracle_state_path(tmp_path).write_text("[")
    assert saved_held_trials(tmp_path) == {}


def test_a_held_trial_is_handed_back_to_its_holder_and_a_released_worker_is_forgotten(tmp_path):
    oracle = random_oracle(tmp_path)
    trial = oracle.create_trial("worker0")
    assert held_trials(oracle) == {"worker0": trial} and active_workers(oracle) == {"worker0"}
    release_worker(oracle, "worker0")
    assert held_trials(oracle) == {} and active_workers(oracle) == set()
    hold_trial(oracle, "worker1", trial)
    assert oracle.create_trial("worker1") is trial
    hold_trial(oracle, "worker2", None)
    assert active_workers(oracle) == {"worker1", "worker2"} and set(held_trials(oracle)) == {"worker1"}


def test_a_trial_is_entered_in_the_books_once_and_the_oldest_queued_trial_is_handed_out_first(tmp_path):
    oracle = random_oracle(tmp_path)
    trials = [oracle.create_trial(f"worker{index}") for index in range(3)]
    oracle.start_order.clear()  # as if the oracle's file was saved before these trials were created
    for trial in trials + trials:
        record_trial(oracle, trial, ended=trial is trials[1])
    assert oracle.start_order == [trial.trial_id for trial in trials] and oracle.end_order == [trials[1].trial_id]
    for tuner_id in held_trials(oracle):
        release_worker(oracle, tuner_id)
    for trial in (trials[2], trials[0], trials[2]):
        requeue(oracle, trial.trial_id)
    assert queue_oldest_first(oracle) == [trials[0].trial_id, trials[2].trial_id]
    assert oracle.create_trial("worker9") is trials[0]


class _WithoutSchedule(ConfigurationHashMixin, keras_tuner.oracles.RandomSearchOracle):
    def hashed_values(self, values):
        return {name: value for name, value in values.items() if name != "schedule"}


def test_a_configuration_hash_leaves_out_what_the_oracle_says():
    plain = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=1)
    mixed = _WithoutSchedule(objective="val_loss", max_trials=1)
    assert configuration_hash(mixed, {"nodes": 4, "schedule": 2}) == configuration_hash(plain, {"nodes": 4})
    assert configuration_hash(plain, {"nodes": 4, "schedule": 2}) != configuration_hash(plain, {"nodes": 4})
