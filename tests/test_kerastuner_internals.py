"""tuner.search.kerastuner: the one adapter to KerasTuner's private API, its version check and its role changes."""

import importlib
import os

import keras_tuner
import pytest

import tuner.search.kerastuner as internals
from tuner.errors import TunerUsageError
from tuner.search.kerastuner import (
    KERASTUNER_ENVIRONMENT,
    RPC_TIMEOUT_SECONDS,
    WRITTEN_FOR,
    check_version,
    configure_keras_tuner,
    kerastuner_role,
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
