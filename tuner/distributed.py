"""KerasTuner's chief/worker engine made to survive dead workers: leases, heartbeats and a restartable chief."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from concurrent import futures
from typing import Any, Callable, Iterator

import grpc
import keras_tuner
# Private KerasTuner 1.4.8 modules: its gRPC protocol (protos), the chief's servicer and the worker's client.
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import trial as trial_module

from tuner.errors import TunerUsageError
from tuner.trials import FINISHED, IDLE, STOPPED

log = logging.getLogger(__name__)
# A worker proves it is alive every HEARTBEAT_SECONDS while it trains; after LEASE_SECONDS of
# silence its trial goes back to the queue for another worker (keras-team/keras-tuner#990).
HEARTBEAT_SECONDS = 2.0
LEASE_SECONDS = 30.0
# How long one call may wait for a chief that went away (e.g. while it restarts); KerasTuner waits an hour.
RPC_TIMEOUT_SECONDS = 600
# How long an idle worker waits before asking again while the last trials run elsewhere.
IDLE_WAIT_SECONDS = 1.0
# Attempts of a worker's call to the chief that a chief's restart cut off (each waits for the chief to be back).
CUT_OFF_CALL_ATTEMPTS = 5


def parse_address(address: str) -> tuple[str, int]:
    """Split HOST:PORT, with a clear error for anything else."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TunerUsageError(f"--oracle must be HOST:PORT (e.g. 127.0.0.1:8000), got {address!r}.")
    return host.strip("[]"), int(port)


# KerasTuner 1.4.8 reads a process's part in a distributed search from these environment variables.
KERASTUNER_ENVIRONMENT = ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")


@contextlib.contextmanager
def kerastuner_role(role: str | None, address: str = "") -> Iterator[str]:
    """Set the environment KerasTuner reads for `role` ("chief", "worker", or None: on its own) for a block.

    The previous values come back afterwards, so a search run as a library call leaves no
    role behind for the next one. A worker keeps a KERASTUNER_TUNER_ID it was given: a
    restarted worker with the same id gets its interrupted trial back at once.

    Yields:
        This process's tuner id.
    """
    saved = {name: os.environ.get(name) for name in KERASTUNER_ENVIRONMENT}
    try:
        if role is None:
            for name in KERASTUNER_ENVIRONMENT:
                os.environ.pop(name, None)
            yield "tuner0"  # KerasTuner's own id for a search on its own
            return
        host, port = parse_address(address)
        os.environ["KERASTUNER_ORACLE_IP"] = host
        os.environ["KERASTUNER_ORACLE_PORT"] = str(port)
        if role == "chief":
            os.environ["KERASTUNER_TUNER_ID"] = "chief"
        elif "chief" in os.environ.get("KERASTUNER_TUNER_ID", "chief"):
            os.environ["KERASTUNER_TUNER_ID"] = f"worker-{socket.gethostname()}-{os.getpid()}"
        # KerasTuner 1.4.8 reads this module global as every worker call's timeout.
        oracle_client.TIMEOUT = RPC_TIMEOUT_SECONDS
        yield os.environ["KERASTUNER_TUNER_ID"]
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_for_chief(address: str, timeout: float) -> None:
    """Fail within `timeout` seconds, with a clear message, unless a search.py chief's oracle answers at `address`."""
    channel = grpc.insecure_channel(address)
    try:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            if _accepts_connections(address):
                raise TunerUsageError(
                    f"something listens at {address} but does not speak gRPC, so it is not a search.py chief; "
                    f"fix --oracle to the chief's HOST:PORT."
                ) from None
            raise TunerUsageError(
                f"cannot reach the chief's oracle at {address} within {timeout:.0f} s; start it first with "
                f"python search.py --role chief --oracle {address} (same flags), or fix --oracle."
            ) from None
        try:
            # Any oracle call will do: a gRPC server that is not KerasTuner's oracle answers UNIMPLEMENTED.
            protos.get_service_grpc().OracleStub(channel).GetSpace(protos.get_service().GetSpaceRequest(), timeout=timeout)
        except grpc.RpcError as error:
            raise TunerUsageError(
                f"the gRPC server at {address} is not a search.py chief ({error.code().name}); fix --oracle to the "
                f"chief's HOST:PORT."
            ) from None
    finally:
        channel.close()


def _accepts_connections(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


class _LeasingServicer(oracle_chief.OracleServicer):
    """KerasTuner's oracle service, plus leases: a silent worker's trial is handed to another worker."""

    def __init__(self, oracle: keras_tuner.Oracle, lease_seconds: float) -> None:
        super().__init__(oracle)
        self.lease_seconds = lease_seconds
        self.last_seen: dict[str, float] = {tuner_id: time.monotonic() for tuner_id in oracle.ongoing_trials}

    def _seen_trial(self, trial_id: str) -> None:
        for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                self.last_seen[tuner_id] = time.monotonic()

    def CreateTrial(self, request: Any, context: Any) -> Any:
        self.last_seen[request.tuner_id] = time.monotonic()
        reclaim_silent_trials(self.oracle, self.last_seen, self.lease_seconds)
        trial = _create_trial_or_wait(self.oracle, request.tuner_id)
        if trial.status == STOPPED:
            self.stop_triggered = True  # KerasTuner 1.4.8's servicer flag: every worker has been told to stop
        return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def GetTrial(self, request: Any, context: Any) -> Any:
        # Workers call GetTrial as their heartbeat while they train.
        self._seen_trial(request.trial_id)
        return super().GetTrial(request, context)

    def UpdateTrial(self, request: Any, context: Any) -> Any:
        self._seen_trial(request.trial_id)
        return super().UpdateTrial(request, context)

    def EndTrial(self, request: Any, context: Any) -> Any:
        trial_id = request.trial.trial_id
        known = self.oracle.trials.get(trial_id)
        if known is not None and known.status in FINISHED:
            # A worker that was presumed dead finished after all; its trial was already ended.
            log.info("trial %s was already finished by another worker; ignoring the late result", trial_id)
            return protos.get_service().EndTrialResponse()
        return super().EndTrial(request, context)


@keras_tuner.synchronized
def _create_trial_or_wait(oracle: keras_tuner.Oracle, tuner_id: str) -> Any:
    """The oracle's next trial, but "wait" instead of "stop" while other workers still hold trials.

    Once every trial has been handed out, KerasTuner tells the next worker to stop; if a
    busy worker then died, its trial would come back to the queue with nobody left to run it.
    """
    trial = oracle.create_trial(tuner_id)
    if trial.status == STOPPED and oracle.ongoing_trials:
        oracle.tuner_ids.add(tuner_id)
        trial = trial_module.Trial(hyperparameters=oracle.get_space(), status=IDLE)
    return trial


@keras_tuner.synchronized
def reclaim_silent_trials(oracle: keras_tuner.Oracle, last_seen: dict[str, float], lease_seconds: float) -> None:
    """Send the trials of workers silent for longer than the lease back to the queue (under the oracle's lock)."""
    now = time.monotonic()
    for tuner_id, trial in list(oracle.ongoing_trials.items()):
        if now - last_seen.get(tuner_id, now) <= lease_seconds:
            continue
        log.warning("worker %s silent for %.0f s: trial %s goes back to the queue", tuner_id,
                    now - last_seen[tuner_id], trial.trial_id)
        del oracle.ongoing_trials[tuner_id]
        oracle.tuner_ids.discard(tuner_id)
        # KerasTuner 1.4.8's Oracle hands out the ids in _retry_queue before any new trial.
        if trial.trial_id not in oracle._retry_queue:
            oracle._retry_queue.append(trial.trial_id)
        oracle.save()
    for tuner_id in list(oracle.tuner_ids):
        if tuner_id not in oracle.ongoing_trials and now - last_seen.get(tuner_id, now) > lease_seconds:
            oracle.tuner_ids.discard(tuner_id)


@keras_tuner.synchronized
def _search_finished(oracle: keras_tuner.Oracle) -> bool:
    return not oracle.ongoing_trials and not oracle.tuner_ids


def keep_ongoing_after_restart(oracle: keras_tuner.Oracle, ongoing: dict[str, str]) -> None:
    """After a chief restart, let live workers finish the trials they hold instead of re-running them.

    KerasTuner's reload queues every ongoing trial to run again; a restarted chief instead
    keeps each with its worker, and the lease sends it back to the queue only if that worker
    stays silent.
    """
    for tuner_id, trial_id in ongoing.items():
        trial = oracle.trials.get(trial_id)
        if trial is None or trial.status in FINISHED:
            continue
        if trial_id in oracle._retry_queue:
            oracle._retry_queue.remove(trial_id)
        oracle.ongoing_trials[tuner_id] = trial
        oracle.tuner_ids.add(tuner_id)


class OracleServer:
    """The chief's gRPC service of `oracle` at `address`, with leases; poll() it until finished() says so.

    Used as a context manager: the port is bound on entry (a port in use is an `error:`) and
    the server stopped on exit, however the block ends.
    """

    def __init__(self, oracle: keras_tuner.Oracle, address: str, lease_seconds: float = LEASE_SECONDS) -> None:
        self.oracle, self.address, self.lease_seconds = oracle, address, lease_seconds
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        self._servicer = _LeasingServicer(oracle, lease_seconds)
        protos.get_service_grpc().add_OracleServicer_to_server(self._servicer, self._server)

    def __enter__(self) -> OracleServer:
        try:
            bound = self._server.add_insecure_port(self.address)
        except RuntimeError:  # grpcio 1.6x+ raises where older releases returned 0
            bound = 0
        if bound == 0:
            raise TunerUsageError(f"the chief cannot listen on {self.address} (port in use or address not local); "
                                  f"pick another --oracle port.")
        self._server.start()
        log.info("Chief serving the oracle at %s (no authentication: keep it on loopback or a trusted network).",
                 self.address)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(grace=2)

    def poll(self) -> None:
        """Send the trials of silent workers back to the queue; call it every second or so."""
        reclaim_silent_trials(self.oracle, self._servicer.last_seen, self.lease_seconds)

    def finished(self) -> bool:
        """True once every trial is finished and every worker has been told to stop."""
        return self._servicer.stop_triggered and _search_finished(self.oracle)

    def serve_until_finished(self) -> None:
        while not self.finished():
            time.sleep(1)
            self.poll()


class Heartbeat:
    """A background thread that tells the chief, every few seconds, that this worker is still on its trial."""

    def __init__(self, oracle: Any, trial_id: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(oracle, trial_id), daemon=True)

    def _beat(self, oracle: Any, trial_id: str) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                oracle.get_trial(trial_id)
            except grpc.RpcError:
                pass  # the chief may be restarting; the next beat tries again

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_SECONDS * 2)


def join_as_worker(tuner: Any, trials_per_process: int = 0) -> Callable[[], bool]:
    """Make a worker's tuner wait while the chief has nothing to hand out, and beat while it trains.

    After `trials_per_process` trials (0: never) the worker stops asking for more, so that its
    process can be replaced by a fresh one: TensorFlow keeps memory from every model it traced.

    Returns:
        A function that tells, after the search loop ended, whether it ended for that reason.
    """
    create_trial = tuner.oracle.create_trial
    started = 0
    retired = False

    def create_trial_or_wait(tuner_id: str) -> Any:
        nonlocal started, retired
        if trials_per_process and started >= trials_per_process:
            retired = True
            return trial_module.Trial(hyperparameters=keras_tuner.HyperParameters(), status=STOPPED)
        trial = create_trial(tuner_id)
        if trial.status == IDLE:
            time.sleep(IDLE_WAIT_SECONDS)  # instead of spinning on the chief
        elif trial.status != STOPPED:
            started += 1
        return trial

    tuner.oracle.create_trial = create_trial_or_wait
    tuner.oracle.stub = _RetryingStub(tuner.oracle.stub)
    tuner.trial_guard = lambda trial_id: Heartbeat(tuner.oracle, trial_id)
    return lambda: retired


class _RetryingStub:
    """The worker's gRPC stub to the chief's oracle, calling again when the chief's restart cuts a call off.

    KerasTuner's client waits for a chief that is down when a call starts (wait_for_ready), but a
    call in flight when the chief dies fails with UNAVAILABLE ("Stream removed"); called again, it
    waits for the restarted chief. Repeating is safe: the chief ignores a second EndTrial of a
    finished trial (_LeasingServicer), a repeated CreateTrial gets whatever trial is next (one the
    restart re-queued included), and UpdateTrial only records metrics.
    """

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, CUT_OFF_CALL_ATTEMPTS + 1):
                try:
                    return method(*args, **kwargs)
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == CUT_OFF_CALL_ATTEMPTS:
                        raise
                    log.info("The chief's oracle went away during %s; calling again once it is back.", name)
                    time.sleep(IDLE_WAIT_SECONDS)

        return call
