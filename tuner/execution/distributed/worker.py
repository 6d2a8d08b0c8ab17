"""A worker's side of a distributed search: find the chief, beat while training, call again across its restart, and
train the confirm runs the chief hands out once the trials are done."""

from __future__ import annotations

import logging
import socket
import time
from functools import partial
from typing import Any, Callable

import grpc

from tuner.execution.distributed.confirm_service import ConfirmClient, confirm_for_chief
from tuner.execution.distributed.joining import not_joined
from tuner.errors import SearchFailedError, TunerUsageError
from tuner.execution.leases import Heartbeat
from tuner.execution.processes import Retirement
from tuner.search.kerastuner import ask_for_space, make_trial, oracle_stub, replace_worker_calls
from tuner.trials.records import IDLE, STOPPED

log = logging.getLogger(__name__)
# A worker proves it is alive every HEARTBEAT_SECONDS while it trains (the chief's lease is longer).
HEARTBEAT_SECONDS = 2.0
# How long an idle worker waits before asking again while the last trials run elsewhere.
IDLE_WAIT_SECONDS = 1.0
# Attempts of a worker's call to the chief that a chief's restart cut off (each waits for the chief to be back).
CUT_OFF_CALL_ATTEMPTS = 5


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
            ask_for_space(oracle_stub(channel), timeout)
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


def join_as_worker(tuner: Any, retirement: Retirement, rejoin: Callable[[], None]) -> None:
    """Make a worker's tuner wait while the chief has nothing to hand out, and beat while it trains; `rejoin` joins
    a restarted chief again (joining.join_chief) when it refuses a call because it does not know this worker.

    Once `retirement` is due (--trials-per-process trainings, confirm runs included) the worker
    stops asking for trials, so that its process can be replaced by a fresh one: its search loop
    ends as if the chief had no more.
    """

    def waiting(create_trial: Callable[[str], Any]) -> Callable[[str], Any]:
        def create_trial_or_wait(tuner_id: str) -> Any:
            if retirement.due:
                return make_trial(STOPPED)
            trial = create_trial(tuner_id)
            if trial.status == IDLE:
                time.sleep(IDLE_WAIT_SECONDS)  # instead of spinning on the chief
            elif trial.status != STOPPED:
                retirement.count()
            return trial

        return create_trial_or_wait

    replace_worker_calls(tuner.oracle, create_trial=waiting, wrap_stub=partial(_RetryingStub, rejoin=rejoin))
    # While a trial trains, asking the chief for it is the heartbeat that keeps its lease (chief._LeasingServicer).
    tuner.trial_guard = lambda trial_id: Heartbeat(partial(tuner.oracle.get_trial, trial_id), HEARTBEAT_SECONDS,
                                                   forgiven=(grpc.RpcError,))


def confirm_as_worker(address: str, worker: str, train: Callable[[dict[str, Any]], dict[str, Any]],
                      retirement: Retirement, rejoin: Callable[[], None]) -> str:
    """Train the confirm runs the chief at `address` hands out, until it has none left (confirm_for_chief: DONE),
    has trials to hand out first (TRIALS), or `retirement` is due (RETIRE); `rejoin` as for join_as_worker."""
    # Reconnect within a second of a restarted chief's return (gRPC's default backoff grows to minutes), so its
    # hold (chief.OracleServer's `restarted`) is enough to hear from every worker.
    channel = grpc.insecure_channel(address, options=[("grpc.max_reconnect_backoff_ms", 1000)])
    try:
        return confirm_for_chief(_RetryingStub(ConfirmClient(channel), rejoin), worker, train, HEARTBEAT_SECONDS,
                                 IDLE_WAIT_SECONDS, retirement)
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise SearchFailedError(f"the chief at {address} stopped answering during the confirm runs "
                                    f"({error.code().name}); start it again with the same command, "
                                    f"then this worker") from None
        raise SearchFailedError(f"the chief at {address} refused a call of this worker's confirm runs "
                                f"({error.code().name}: {error.details()})") from None
    finally:
        channel.close()


class _RetryingStub:
    """The worker's gRPC stub to the chief's oracle, calling again when the chief's restart cuts a call off.

    KerasTuner's client waits for a chief that is down when a call starts (wait_for_ready), but a
    call in flight when the chief dies fails with UNAVAILABLE ("Stream removed"); called again, it
    waits for the restarted chief. Repeating is safe: the chief ignores a second EndTrial of a
    finished trial (chief._LeasingServicer), a repeated CreateTrial gets whatever trial is next (one
    the restart re-queued included), and UpdateTrial only records metrics.

    A restarted chief does not know the workers that joined the one before: it refuses their calls (joining.NOT_JOINED),
    and this stub joins again with `rejoin` and calls again (joining refuses a worker whose search differs).
    """

    def __init__(self, stub: Any, rejoin: Callable[[], None] | None = None) -> None:
        self._stub, self._rejoin = stub, rejoin

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, CUT_OFF_CALL_ATTEMPTS + 1):
                try:
                    return method(*args, **kwargs)
                except grpc.RpcError as error:
                    if self._rejoin is not None and not_joined(error) and attempt < CUT_OFF_CALL_ATTEMPTS:
                        log.info("The chief does not know this worker (it restarted); joining it again.")
                        self._rejoin()
                        continue
                    if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == CUT_OFF_CALL_ATTEMPTS:
                        raise
                    log.info("The chief's oracle went away during %s; calling again once it is back.", name)
                    time.sleep(IDLE_WAIT_SECONDS)

        return call
