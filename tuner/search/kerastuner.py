"""Every use of KerasTuner's private API, in one place, checked against the KerasTuner it was written for.

KerasTuner 1.4.8 offers no public way to write its state atomically, to requeue a trial, to
count Hyperband's schedule, to serve its oracle with leases or to tell a worker where its chief
is; this tool does all of that through the names below. Nothing else in `tuner/` imports
`keras_tuner.src` or touches a private attribute of a KerasTuner object (tests/test_imports.py
checks), so a new KerasTuner release is adapted here, and an untested one is refused at import.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any, Callable, Iterator

import keras_tuner

from tuner.errors import TunerUsageError
from tuner.files import atomic_write_text

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


# --- State files -------------------------------------------------------------------------------

def _atomic_save_json(path: str, obj: Any) -> str:
    text = kt_utils.json.dumps(obj)
    atomic_write_text(path, text)
    return text


def configure_keras_tuner() -> None:
    """Make KerasTuner write its state atomically and keep failed trials' tracebacks off the terminal.

    KerasTuner writes oracle.json, trial.json and tuner0.json in place (`utils.save_json`), so a
    kill mid-write leaves truncated JSON and the next reload crashes. Every Stateful.save goes
    through that one function, so replacing it covers them all. Its DEBUG flag prints each
    failed trial's traceback; the reason is kept in trial.json and shown on the progress line.

    The patch stays for the life of the process rather than for a block: the gRPC server's
    threads and the tuner save state at any moment while a search runs, and an atomic write is
    what any later KerasTuner use in the process wants too. Calling it again changes nothing.
    """
    if kt_utils.save_json is not _atomic_save_json:
        kt_utils.save_json = _atomic_save_json
    kt_config.DEBUG = False


# --- The base Oracle's bookkeeping -------------------------------------------------------------

def retry_queue(oracle: keras_tuner.Oracle) -> list[str]:
    """The oracle's queue of trial ids to hand out again before any new trial (popped from its end); live, not a copy."""
    return oracle._retry_queue


def requeue(oracle: keras_tuner.Oracle, trial_id: str) -> None:
    """Queue `trial_id` to be handed out again (once)."""
    if trial_id not in oracle._retry_queue:
        oracle._retry_queue.append(trial_id)


def unqueue(oracle: keras_tuner.Oracle, trial_id: str) -> None:
    """Take `trial_id` off the retry queue, if it is there."""
    if trial_id in oracle._retry_queue:
        oracle._retry_queue.remove(trial_id)


def oldest_queued_first(oracle: keras_tuner.Oracle) -> None:
    """Order the retry queue so that the oldest interrupted trial runs first (the queue is popped from its end)."""
    oracle._retry_queue.sort(reverse=True)


def record_values(oracle: keras_tuner.Oracle, trial: Any) -> None:
    """Add a trial's values to the hashes the grid and the random oracle never hand out again (_tried_so_far)."""
    oracle._record_values(trial)


def already_tried(oracle: keras_tuner.Oracle, values: dict[str, Any]) -> bool:
    """Whether a configuration's hash is among those tried so far (the base Oracle's hook for subclasses)."""
    return oracle._duplicate(values)


def make_trial(status: str, hyperparameters: keras_tuner.HyperParameters | None = None) -> Any:
    """A Trial with no id that only carries `status` (IDLE: wait, STOPPED: stop) to a tuner."""
    return trial_module.Trial(hyperparameters=hyperparameters or keras_tuner.HyperParameters(), status=status)


# --- Hyperband -------------------------------------------------------------------------------

def local_oracle(oracle: Any) -> Any:
    """The oracle built in this process: on a worker, the one its OracleClient wraps (same flags as the chief's)."""
    return oracle._oracle if isinstance(oracle, oracle_client.OracleClient) else oracle


def hyperband_brackets(oracle: Any) -> list[list[int]] | None:
    """The number of trials in each round of each of Hyperband's brackets, in the order it runs them; None if not Hyperband.

    The first round of a bracket tries new configurations; each later round continues the
    best of the round before (a new trial each). KerasTuner's HyperbandOracle follows this
    schedule through its private helpers (_get_num_brackets, _get_num_rounds, _get_size),
    starting from its most aggressive bracket, once per Hyperband iteration.
    """
    oracle = local_oracle(oracle)
    if not isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        return None
    one_iteration = [[oracle._get_size(bracket, round_number) for round_number in range(oracle._get_num_rounds(bracket))]
                     for bracket in reversed(range(oracle._get_num_brackets()))]
    return one_iteration * int(oracle.hyperband_iterations)


# --- Successive halving --------------------------------------------------------------------

# KerasTuner's names for a trial's place in a schedule of growing trainings (HyperbandOracle's docstring):
# the trial it continues, the epochs it trains to and from, its bracket and its round (our rung).
CONTINUES, EPOCHS, INITIAL_EPOCH, BRACKET, ROUND = (
    "tuner/trial_id", "tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round")
SCHEDULE_PREFIX = "tuner/"
# The weights and optimizer state of a trial's last epoch, beside KerasTuner's best-epoch checkpoint.
LAST_EPOCH_WEIGHTS = "last_epoch.weights.h5"


class ConfigurationHashMixin:
    """An Oracle mixin: a trial's hash is its configuration's, without the schedule's `tuner/` values.

    The base Oracle never hands out a hash twice (`_tried_so_far`); a first-rung trial carries its
    schedule, so without this a random draw could repeat a configuration already trained.
    """

    def _compute_values_hash(self, values: dict[str, Any]) -> str:
        configuration = {name: value for name, value in values.items() if not name.startswith(SCHEDULE_PREFIX)}
        return super()._compute_values_hash(configuration)  # type: ignore[misc]


class ContinuingTuner(keras_tuner.Hyperband):
    """KerasTuner's Hyperband tuner over any oracle: a trial with `tuner/trial_id` continues that trial.

    Hyperband's run_trial trains from `tuner/initial_epoch` to `tuner/epochs`. Its model loading is
    replaced: Hyperband loads the earlier trial's BEST epoch's weights into a model whose optimizer
    is not built yet, so Keras skips the saved optimizer state (a warning) and Adam starts again
    with empty moments. Here the optimizer is built first and the earlier trial's LAST epoch
    (weights, optimizer moments and step count) is loaded, so the training goes on as if it had
    never stopped; KerasTuner's best-epoch checkpoint is the fallback for a trial without one.
    """

    def __init__(self, oracle: keras_tuner.Oracle, **kwargs: Any) -> None:
        # Hyperband's own __init__ would build a HyperbandOracle; the Tuner's takes the one given.
        keras_tuner.Tuner.__init__(self, oracle=oracle, **kwargs)

    def last_epoch_weights(self, trial_id: str) -> str:
        """Where a trial's last epoch is saved (training.CurveWriter writes it)."""
        return os.path.join(self.get_trial_dir(trial_id), LAST_EPOCH_WEIGHTS)

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> Any:
        model = keras_tuner.Tuner._build_hypermodel(self, hp)
        earlier = hp.values.get(CONTINUES)
        if earlier is not None:
            path = self.last_epoch_weights(earlier)
            if not os.path.exists(path):
                path = self._get_checkpoint_fname(earlier)
            model.optimizer.build(model.trainable_variables)
            model.load_weights(path)
        return model


# --- The tuner -------------------------------------------------------------------------------

class DeclaredSpaceMixin:
    """A Tuner mixin whose search space is declared by its hypermodel, without building a default model first.

    KerasTuner's Tuner builds the default model in `_populate_initial_space` to discover
    conditional hyperparameters; a space without any needs only the declaration, and that
    default model may be impossible for the images (a failed trial later, but a crash there).
    """

    oracle: Any
    hypermodel: Any

    def _populate_initial_space(self) -> None:
        space = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(space)
        self.oracle.update_space(space)


# --- Roles and the chief's service -----------------------------------------------------------

@contextlib.contextmanager
def kerastuner_role(role: str | None, address: tuple[str, int] | None = None) -> Iterator[str]:
    """Tell KerasTuner this process's part ("chief", "worker", or None: on its own) for a block.

    Everything it changes comes back afterwards (the environment variables and the worker
    client's call timeout), so a search run as a library call leaves no role behind for the
    next one. A worker keeps a KERASTUNER_TUNER_ID it was given: a restarted worker with the
    same id gets its interrupted trial back at once.

    Args:
        role: "chief", "worker" or None.
        address: the chief's (host, port); needed unless role is None.

    Yields:
        This process's tuner id.
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
    """On a worker's OracleClient: wrap its create_trial and its gRPC stub (every call to the chief goes through it).

    Args:
        oracle: the worker tuner's oracle (KerasTuner's OracleClient).
        create_trial: given the client's create_trial, returns the one to use instead.
        wrap_stub: given the client's stub, returns the one to use instead.
    """
    oracle.create_trial = create_trial(oracle.create_trial)
    oracle.stub = wrap_stub(oracle.stub)
