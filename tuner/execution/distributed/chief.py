"""The chief's side of a distributed search: its oracle served with leases, a restart that keeps live workers' trials,
only to workers whose search is the chief's (joining), and the confirm runs it hands out once the trials are done
(confirm_service)."""

from __future__ import annotations

import logging
import time
from concurrent import futures
from typing import Any, Callable

import grpc
import keras_tuner

from tuner.config.settings import DEFAULT_LEASE_SECONDS
from tuner.execution.distributed.confirm_service import ConfirmQueue
from tuner.execution.distributed.joining import Members
from tuner.execution.distributed.messages import Refused
from tuner.execution.leases import Leases
from tuner.errors import TunerUsageError
from tuner.rundir import RunRecord
from tuner.search.kerastuner import (
    OracleServicerBase,
    add_oracle_service,
    create_trial_response,
    end_trial_response,
    active_workers,
    held_trials,
    hold_trial,
    make_trial,
    release_worker,
    requeue,
    unqueue,
)
from tuner.trials.records import FINISHED, IDLE, STOPPED

log = logging.getLogger(__name__)
# After LEASE_SECONDS without a word from a worker (its heartbeat: worker.HEARTBEAT_SECONDS), its
# trial goes back to the queue for another worker (keras-team/keras-tuner#990); --lease-seconds sets it.
LEASE_SECONDS = float(DEFAULT_LEASE_SECONDS)


class _LeasingServicer(OracleServicerBase):
    """KerasTuner's oracle service, plus leases: a silent worker's trial is handed to another worker; and trials only
    for workers that joined (members)."""

    def __init__(self, oracle: keras_tuner.Oracle, leases: Leases, confirm: ConfirmQueue, members: Members) -> None:
        super().__init__(oracle)
        self.leases = leases
        self.confirm = confirm
        self.members = members
        for tuner_id in held_trials(oracle):  # a restarted chief's: each worker's lease starts now
            leases.renew(tuner_id)

    def _seen_trial(self, trial_id: str) -> None:
        for tuner_id, trial in held_trials(self.oracle).items():
            if trial.trial_id == trial_id:
                self.leases.renew(tuner_id)

    def CreateTrial(self, request: Any, context: Any) -> Any:
        try:
            # A worker that skipped its Join gets no trial; one that joined before this chief's restart joins again.
            self.members.check(request.tuner_id)
        except Refused as refused:
            log.warning("CreateTrial refused: %s", refused)
            context.abort(refused.code, str(refused))
        self.leases.renew(request.tuner_id)
        reclaim_silent_trials(self.oracle, self.leases)
        trial = _create_trial_or_wait(self.oracle, request.tuner_id)
        if trial.status == STOPPED:
            self.told_every_worker_to_stop()
            self.confirm.expect(request.tuner_id)  # it asks for confirm runs next
        return create_trial_response(trial)

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
            return end_trial_response()
        return super().EndTrial(request, context)


@keras_tuner.synchronized
def _create_trial_or_wait(oracle: keras_tuner.Oracle, tuner_id: str) -> Any:
    """The oracle's next trial, but "wait" instead of "stop" while other workers still hold trials.

    Once every trial has been handed out, KerasTuner tells the next worker to stop; if a
    busy worker then died, its trial would come back to the queue with nobody left to run it.
    """
    trial = oracle.create_trial(tuner_id)
    if trial.status == STOPPED and held_trials(oracle):
        hold_trial(oracle, tuner_id, None)  # still searching, with no trial yet
        trial = make_trial(IDLE, oracle.get_space())
    return trial


@keras_tuner.synchronized
def reclaim_silent_trials(oracle: keras_tuner.Oracle, leases: Leases) -> None:
    """Send the trials of workers silent for longer than the lease back to the queue (under the oracle's lock)."""
    for tuner_id, trial in held_trials(oracle).items():
        if not leases.expired(tuner_id):
            continue
        log.warning("worker %s silent for %.0f s: trial %s goes back to the queue", tuner_id,
                    leases.silence(tuner_id), trial.trial_id)
        release_worker(oracle, tuner_id)
        # The Oracle hands out the queued ids before any new trial.
        requeue(oracle, trial.trial_id)
        oracle.save()
    for tuner_id in active_workers(oracle):
        if tuner_id not in held_trials(oracle) and leases.expired(tuner_id):
            release_worker(oracle, tuner_id)


@keras_tuner.synchronized
def _search_finished(oracle: keras_tuner.Oracle) -> bool:
    return not held_trials(oracle) and not active_workers(oracle)


@keras_tuner.synchronized
def _trials_finished(oracle: keras_tuner.Oracle) -> bool:
    return not held_trials(oracle)


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
        unqueue(oracle, trial_id)
        hold_trial(oracle, tuner_id, trial)


class OracleServer:
    """The chief's gRPC service of `oracle` at `address`, with leases, then of the confirm runs; poll() it until
    finished() says so.

    Used as a context manager: the port is bound on entry (a port in use is an `error:`) and
    the server stopped on exit, however the block ends.

    Args:
        oracle: the search's oracle.
        address: HOST:PORT to serve at.
        lease_seconds: how long a silent worker keeps its trial or confirm run.
        confirm_jobs: lists the confirm runs still to train once the trials are done (confirm.runs.missing_jobs).
        confirm_saved: why a confirm run's saved record does not count as the run done (missing, damaged), or None.
        restarted: this chief resumes a run whose workers may still be training confirm runs: it waits one lease
            before handing any out, so that they can claim theirs.
        record: the run's settings.json: a worker whose own differs is refused (joining.Members); None: any worker.
        now: the clock of the leases (injectable, so that a test moves time instead of sleeping).
    """

    def __init__(self, oracle: keras_tuner.Oracle, address: str, lease_seconds: float = LEASE_SECONDS,
                 confirm_jobs: Callable[[], list[dict[str, Any]]] = list,
                 confirm_saved: Callable[[dict[str, Any]], str | None] = lambda job: "not saved",
                 restarted: bool = False, record: RunRecord | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.oracle, self.address, self.lease_seconds = oracle, address, lease_seconds
        self._confirm_jobs = confirm_jobs
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        self.confirm = ConfirmQueue(lease_seconds, self._trials_done, confirm_saved,
                                    hold_seconds=lease_seconds if restarted else 0.0, now=now)
        self.members = Members(record)
        self._servicer = _LeasingServicer(oracle, Leases(lease_seconds, now), self.confirm, self.members)
        add_oracle_service(self._servicer, self._server)
        self.members.add_to(self._server)
        self.confirm.add_to(self._server, self.members)

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
        """Send the trials of silent workers back to the queue, and list the confirm runs once the trials are done;
        call it every second or so, from the thread that may raise (a damaged confirm run is an `error:`)."""
        reclaim_silent_trials(self.oracle, self._servicer.leases)
        if not self.confirm.listed and self._trials_done():
            self.confirm.list_jobs(self._confirm_jobs())

    def finished(self) -> bool:
        """True once every trial and confirm run is finished and every worker has been told to stop."""
        return self._trials_done() and _search_finished(self.oracle) and self.confirm.finished()

    def _trials_done(self) -> bool:
        # A worker is told to stop only when no trial is left. After a restart, workers that were confirming are
        # sent back to their trials first (ConfirmQueue.next), so this chief learns it too, or hands out new ones.
        return self._servicer.stopping and _trials_finished(self.oracle)

    def serve_until_finished(self) -> None:
        while not self.finished():
            time.sleep(1)
            self.poll()
