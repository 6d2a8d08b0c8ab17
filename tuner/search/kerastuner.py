"""The one seam to KerasTuner's private API and undocumented state, checked against the KerasTuner it was written for.

Its functions say what the tool needs (`configuration_hash`, `checkpoint_path`, `hold_trial`, ...); how KerasTuner
1.4.8 does it stays here. Nothing else in `tuner/` touches a private name, state key or file name of KerasTuner's
(tests/test_imports.py checks), so a new release is adapted here, and an untested one is refused at import.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

import keras_tuner

from tuner.errors import TunerUsageError
from tuner.files import atomic_write_text, read_json

# The KerasTuner release whose internals this module was written against and tested with.
WRITTEN_FOR = "1.4.8"


def check_version(installed: str) -> None:
    """Refuse any KerasTuner other than WRITTEN_FOR: its private names may be gone or mean something else."""
    if installed != WRITTEN_FOR:
        raise TunerUsageError(
            f"this tool relies on KerasTuner {WRITTEN_FOR}'s internals, but KerasTuner {installed} is installed; "
            f"run pip install keras-tuner=={WRITTEN_FOR}."
        )


check_version(keras_tuner.__version__)

# Imported after the check: another release may not have these modules, which would be a traceback.
from keras_tuner.src import config as kt_config  # noqa: E402
from keras_tuner.src import protos  # noqa: E402
from keras_tuner.src import utils as kt_utils  # noqa: E402
from keras_tuner.src.distribute import oracle_chief, oracle_client  # noqa: E402
from keras_tuner.src.engine import trial as trial_module  # noqa: E402

# How long one worker call may wait for a chief that went away (e.g. while it restarts); KerasTuner waits an hour.
RPC_TIMEOUT_SECONDS = 600
# KerasTuner reads a process's part in a distributed search from these environment variables.
ORACLE_IP, ORACLE_PORT, TUNER_ID = "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"
KERASTUNER_ENVIRONMENT = (ORACLE_IP, ORACLE_PORT, TUNER_ID)
# KerasTuner's own tuner id for a search on its own (BaseTuner's default when TUNER_ID is unset).
ALONE_TUNER_ID = "tuner0"


# --- State: atomic saves, the files KerasTuner names, oracle.json's schema -------------------------------------

def _atomic_save_json(path: str, obj: Any) -> str:
    text = kt_utils.json.dumps(obj)
    atomic_write_text(path, text)
    return text


def configure_keras_tuner() -> None:
    """Make KerasTuner write its state atomically and keep failed trials' tracebacks off the terminal (the reason is in
    trial.json and on the progress line). It writes in place (`utils.save_json`, which every Stateful.save calls), so a
    kill mid-write leaves truncated JSON; the patch stays for the process's life, as the gRPC server's threads save at
    any moment. Calling it again changes nothing."""
    if kt_utils.save_json is not _atomic_save_json:
        kt_utils.save_json = _atomic_save_json
    kt_config.DEBUG = False


def checkpoint_path(trial_dir: Path) -> Path:
    """The best-epoch weights (optimizer state included) KerasTuner saves in a trial's folder, under Keras 3."""
    return Path(trial_dir) / "checkpoint.weights.h5"


def oracle_state_path(project: Path) -> Path:
    """The oracle's state file in a KerasTuner project folder; its existence means the project has started."""
    return Path(project) / "oracle.json"


def tensorboard_execution_dir(trial_tensorboard: Path) -> Path:
    """The folder inside a trial's TensorBoard folder where KerasTuner logs its one execution and HParams session."""
    return Path(trial_tensorboard) / "execution0"


# The parts of oracle.json every KerasTuner 1.4.8 oracle reads back (Oracle.set_state), with their JSON types.
ORACLE_STATE_TYPES: dict[str, type] = {
    "ongoing_trials": dict, "hyperparameters": dict, "start_order": list, "end_order": list, "run_times": dict,
    "retry_queue": list, "seed": int, "seed_state": int, "tried_so_far": list, "id_to_hash": dict, "display": dict,
}


def check_oracle_state(state: Any) -> tuple[dict[str, Any], set[str]]:
    """A saved oracle state (the JSON read back; None if it was not JSON) checked as KerasTuner will reload it: the
    config of its hyperparameter space and the ids of the trials it names, or a ValueError saying what is wrong."""
    if not isinstance(state, dict):
        raise ValueError("not valid JSON" if state is None else "not a JSON object")
    wrong = [name for name, kind in ORACLE_STATE_TYPES.items()
             if not isinstance(state.get(name), kind) or isinstance(state.get(name), bool)]
    # HyperParameters.from_config reads the space's list and its values' object.
    wrong += [f"hyperparameters.{name}" for name, kind in (("space", list), ("values", dict))
              if not wrong and not isinstance(state["hyperparameters"].get(name), kind)]
    if wrong:
        raise ValueError(f"missing or mistyped: {', '.join(wrong)}")
    named = [*state["ongoing_trials"].values(), *state["start_order"], *state["end_order"]]
    return state["hyperparameters"], {str(trial_id) for trial_id in named}


def saved_held_trials(project: Path) -> dict[str, str]:
    """The trial each tuner id held when the project's oracle state was last saved; {} without a readable one."""
    state = read_json(oracle_state_path(project), kind="oracle")
    held = state.get("ongoing_trials", {}) if isinstance(state, dict) else {}
    return held if isinstance(held, dict) else {}


# --- The oracle's books: trials held, workers searching, the retry queue, configurations tried -----------------

def held_trials(oracle: keras_tuner.Oracle) -> dict[str, Any]:
    """The trials the oracle has handed out and not yet ended, by the tuner id that holds each (a copy)."""
    return dict(oracle.ongoing_trials)


def active_workers(oracle: keras_tuner.Oracle) -> set[str]:
    """The tuner ids the oracle counts as searching: not yet told to stop (a copy)."""
    return set(oracle.tuner_ids)


def hold_trial(oracle: keras_tuner.Oracle, tuner_id: str, trial: Any | None) -> None:
    """Count `tuner_id` as searching, holding `trial` as its ongoing trial (handed back to it when it asks again); with
    None, a worker the oracle answered with STOPPED, and so forgot, that is told to wait instead."""
    if trial is not None:
        oracle.ongoing_trials[tuner_id] = trial
    oracle.tuner_ids.add(tuner_id)


def release_worker(oracle: keras_tuner.Oracle, tuner_id: str) -> None:
    """Forget `tuner_id`: its ongoing trial (if any) is no longer held, and the search no longer waits for it."""
    oracle.ongoing_trials.pop(tuner_id, None)
    oracle.tuner_ids.discard(tuner_id)


def observe_trials(oracle: keras_tuner.Oracle, trials: list[Any], running: str) -> None:
    """Give a fresh oracle exactly `trials`; those whose status is `running` count as held by a tuner (each its own)."""
    oracle.trials = {trial.trial_id: trial for trial in trials}
    oracle.ongoing_trials = {trial.trial_id: trial for trial in trials if trial.status == running}


def record_trial(oracle: keras_tuner.Oracle, trial: Any, ended: bool) -> None:
    """Enter a trial in the oracle's books, once: started, ended too if `ended`, and its values among those tried
    (which the grid and the random oracle never hand out again)."""
    for order in (oracle.start_order, oracle.end_order) if ended else (oracle.start_order,):
        if trial.trial_id not in order:
            order.append(trial.trial_id)
    oracle._record_values(trial)


def requeue(oracle: keras_tuner.Oracle, trial_id: str) -> None:
    """Queue `trial_id` to be handed out again (once)."""
    if trial_id not in oracle._retry_queue:
        oracle._retry_queue.append(trial_id)


def unqueue(oracle: keras_tuner.Oracle, trial_id: str) -> None:
    """Take `trial_id` off the retry queue, if it is there."""
    if trial_id in oracle._retry_queue:
        oracle._retry_queue.remove(trial_id)


def queue_oldest_first(oracle: keras_tuner.Oracle) -> list[str]:
    """Order the retry queue so that the oldest interrupted trial runs first; returns the queued ids in that order."""
    oracle._retry_queue.sort(reverse=True)  # the queue is popped from its end
    return oracle._retry_queue[::-1]


def already_tried(oracle: keras_tuner.Oracle, values: dict[str, Any]) -> bool:
    """Whether a configuration's hash is among those tried so far (the base Oracle's hook for subclasses)."""
    return oracle._duplicate(values)


def configuration_hash(oracle: keras_tuner.Oracle, values: dict[str, Any]) -> str:
    """The hash by which `oracle` knows a configuration (the one it records so as never to hand it out twice)."""
    return oracle._compute_values_hash(values)


class ConfigurationHashMixin:
    """An Oracle mixin whose hash of a trial's values (never handed out twice) is that of `hashed_values(values)`:
    an oracle that keeps more than the configuration in a trial's values says there what to leave out."""

    def hashed_values(self, values: dict[str, Any]) -> dict[str, Any]:
        return values

    def _compute_values_hash(self, values: dict[str, Any]) -> str:
        return super()._compute_values_hash(self.hashed_values(values))  # type: ignore[misc]


def make_trial(status: str, hyperparameters: keras_tuner.HyperParameters | None = None) -> Any:
    """A Trial with no id that only carries `status` (IDLE: wait, STOPPED: stop) to a tuner."""
    return trial_module.Trial(hyperparameters=hyperparameters or keras_tuner.HyperParameters(), status=status)


# --- Tuners and Hyperband --------------------------------------------------------------------------------------

class HookedTuner(keras_tuner.Tuner):
    """KerasTuner's Tuner with two private steps open to a subclass: `declare_space(space)` instead of building a
    default model to discover conditional hyperparameters (a space without any needs only its declaration, and that
    model may be impossible for the images: a crash, not a failed trial); `model_built(model, hp)` before training."""

    def declare_space(self, space: keras_tuner.HyperParameters) -> None:
        raise NotImplementedError

    def model_built(self, model: Any, hp: keras_tuner.HyperParameters) -> None:
        pass

    def _populate_initial_space(self) -> None:
        space = self.oracle.get_space()
        self.declare_space(space)
        self.oracle.update_space(space)

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> Any:
        model = super()._build_hypermodel(hp)
        self.model_built(model, hp)
        return model


def local_oracle(oracle: Any) -> Any:
    """The oracle built in this process: on a worker, the one its OracleClient wraps (same flags as the chief's)."""
    return oracle._oracle if isinstance(oracle, oracle_client.OracleClient) else oracle


def hyperband_brackets(oracle: Any) -> list[list[int]] | None:
    """The trials in each round of each of Hyperband's brackets, in the order it runs them; None if not Hyperband.
    A bracket's first round tries new configurations, each later one continues the best of the one before."""
    oracle = local_oracle(oracle)
    if not isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        return None
    one_iteration = [[oracle._get_size(bracket, round_number) for round_number in range(oracle._get_num_rounds(bracket))]
                     for bracket in reversed(range(oracle._get_num_brackets()))]
    return one_iteration * int(oracle.hyperband_iterations)


# --- Roles and the chief's service -----------------------------------------------------------------------------

@contextlib.contextmanager
def kerastuner_role(role: str | None, address: tuple[str, int] | None = None) -> Iterator[str]:
    """Tell KerasTuner this process's part ("chief", "worker", or None: on its own) for a block; yields its tuner id.

    Everything it changes (the environment and the worker client's call timeout) comes back
    afterwards, so a search run as a library call leaves no role behind. A worker keeps a tuner
    id it was given: restarted with the same id, it gets its interrupted trial back at once.
    `address` is the chief's (host, port), needed unless role is None.
    """
    saved = {name: os.environ.get(name) for name in KERASTUNER_ENVIRONMENT}
    saved_timeout = oracle_client.TIMEOUT
    try:
        if role is None:
            for name in KERASTUNER_ENVIRONMENT:
                os.environ.pop(name, None)
            yield ALONE_TUNER_ID
            return
        if address is None:
            raise ValueError(f"the {role} role needs the chief's address")
        os.environ[ORACLE_IP], os.environ[ORACLE_PORT] = address[0], str(address[1])
        if role == "chief":
            os.environ[TUNER_ID] = "chief"
        elif "chief" in os.environ.get(TUNER_ID, "chief"):
            # KerasTuner takes any id containing "chief" for the chief's.
            os.environ[TUNER_ID] = f"worker-{socket.gethostname()}-{os.getpid()}"
        # The worker client reads this module global as every call's timeout.
        oracle_client.TIMEOUT = RPC_TIMEOUT_SECONDS
        yield os.environ[TUNER_ID]
    finally:
        oracle_client.TIMEOUT = saved_timeout
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def worker_environment(tuner_id: str) -> dict[str, str]:
    """The environment entries that give a worker process its tuner id (kept across its restarts)."""
    return {TUNER_ID: tuner_id}


class OracleServicerBase(oracle_chief.OracleServicer):
    """KerasTuner's gRPC oracle service, with its stop flag under public names for a subclass."""

    def told_every_worker_to_stop(self) -> None:
        """Note that the oracle has handed out its last STOPPED trial."""
        self.stop_triggered = True

    @property
    def stopping(self) -> bool:
        """True once a worker has been told to stop (the search has nothing left to hand out)."""
        return self.stop_triggered


def create_trial_response(trial: Any) -> Any:
    return protos.get_service().CreateTrialResponse(trial=trial.to_proto())


def end_trial_response() -> Any:
    return protos.get_service().EndTrialResponse()


def add_oracle_service(servicer: Any, server: Any) -> None:
    """Serve `servicer` as KerasTuner's Oracle service on the gRPC `server`."""
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)


def oracle_stub(channel: Any) -> Any:
    """A client stub of KerasTuner's Oracle service over a gRPC channel."""
    return protos.get_service_grpc().OracleStub(channel)


def ask_for_space(stub: Any, timeout: float) -> None:
    """Make one GetSpace call: any KerasTuner oracle answers it; another gRPC server says UNIMPLEMENTED."""
    stub.GetSpace(protos.get_service().GetSpaceRequest(), timeout=timeout)


def replace_worker_calls(oracle: Any, create_trial: Callable[[Callable[[str], Any]], Callable[[str], Any]],
                         wrap_stub: Callable[[Any], Any]) -> None:
    """On a worker's OracleClient: replace its create_trial and its gRPC stub (every call to the chief goes through it)
    by what `create_trial` and `wrap_stub` return given the client's own."""
    oracle.create_trial = create_trial(oracle.create_trial)
    oracle.stub = wrap_stub(oracle.stub)
