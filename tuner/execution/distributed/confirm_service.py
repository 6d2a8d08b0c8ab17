"""Confirm runs handed out by a search's chief to its workers once the trials are done, with leases as for trials.

When every trial has finished, the chief lists the confirm runs still missing (search.py --confirm K R:
the top K configurations under R more seeds each; saved ones are skipped) and hands them, one at a time,
to the workers that ask. A worker beats while it trains one (leases.Heartbeat), saves it
(confirm.runs.train_confirm_run, one atomic write) and says so. As for trials, a worker silent for longer
than the lease (leases.Leases) loses its run to another worker. The saved files are the state: a restarted chief lists again what is missing, waits one
lease before it hands anything out, and a worker that beats for a run it still trains keeps it.

The calls (Next, Beat, Finish) are a small gRPC service beside KerasTuner's on the chief's server, with
JSON messages checked as data from outside (messages.py): a call from a worker that has not joined (joining.py),
for a run this chief did not hand out, or held by another worker, is refused with a gRPC status and one log line.
A run is done only once its saved record is read back and checked, so a failed Finish never loses a run.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Any, Callable

import grpc

from tuner.errors import TunerUsageError
from tuner.execution.distributed.joining import Members
from tuner.execution.distributed.messages import Client, fields, invalid, job_of, precondition, serve, worker_of
from tuner.execution.leases import Heartbeat, Leases
from tuner.execution.processes import Retirement
from tuner.search.kerastuner import RPC_TIMEOUT_SECONDS
from tuner.search.progress import log_confirm_run

log = logging.getLogger(__name__)

SERVICE = "cnn_tuner.ConfirmRuns"
_METHODS = ("Next", "Beat", "Finish")


def _key(job: dict[str, Any]) -> tuple[str, int]:
    return job["trial"], job["index"]


def _named(job: dict[str, Any]) -> str:
    return f"the confirm run of trial {job['trial']} seed {job['index']}"


class ConfirmQueue:
    """The chief's side: the confirm runs still to train, which worker holds which, and who is still to be told
    that none are left. Every method is safe to call from the gRPC threads and the chief's own.

    Args:
        lease_seconds: how long a silent worker keeps its run.
        trials_done: whether every trial is finished and none is left to hand out (asked outside the lock).
        saved_problem: why a run's saved record does not count as the run done (missing, damaged), or None when it
            does; a run handed back is skipped if it does, and a worker's Finish counts only then.
        hold_seconds: after the listing, how long every worker is told to wait and the queue is not finished: a
            restarted chief gives the workers still training runs (or saving one) time to reach it first.
        now: the clock of the leases and the hold (injectable, so that a test moves time instead of sleeping).
    """

    def __init__(self, lease_seconds: float, trials_done: Callable[[], bool],
                 saved_problem: Callable[[dict[str, Any]], str | None], hold_seconds: float = 0.0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.hold_seconds = hold_seconds
        self._trials_done, self._saved_problem = trials_done, saved_problem
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] | None = None  # None until the trials are done and the runs are listed
        self._hold_until = 0.0
        self._held: dict[str, dict[str, Any]] = {}
        self._done: set[tuple[str, int]] = set()
        # Every run this chief handed out or may hand out, once listed: a call for any other is refused.
        self._jobs: dict[tuple[str, int], dict[str, Any]] = {}
        # Workers that will ask or are asking for runs, with when each was last heard; told "done", they leave.
        self._leases = Leases(lease_seconds, now)
        self._total = 0

    @property
    def listed(self) -> bool:
        return self._pending is not None

    def list_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """The runs to hand out (confirm.runs.missing_jobs), once the trials are done; runs workers already hold stay theirs."""
        with self._lock:
            held = {_key(job) for job in self._held.values()}
            self._pending = [job for job in jobs if _key(job) not in held | self._done]
            self._jobs = {_key(job): job for job in [*self._held.values(), *jobs]}
            self._total = len(jobs)
            self._hold_until = self._leases.now() + self.hold_seconds

    def expect(self, worker: str) -> None:
        """Note a worker that has been told its last trial: it will ask for confirm runs next."""
        with self._lock:
            self._leases.renew(worker)

    def next(self, worker: str) -> dict[str, Any]:
        """{"job": a run} for `worker`, {"wait": True} while runs may still come, {"trials": True} while trials are
        left (a restarted chief's, maybe with a larger --max-trials), or {"done": True}."""
        trials_done = self._trials_done()
        with self._lock:
            self._leases.renew(worker)
            abandoned = self._held.pop(worker, None)
            if abandoned is not None and self._pending is not None:  # it asks again, so it restarted without it
                self._pending.insert(0, abandoned)
            self._reclaim()
            if self._pending is None:
                return {"wait": True} if trials_done else {"trials": True}
            while self._pending and (_key(self._pending[0]) in self._done
                                     or self._saved_problem(self._pending[0]) is None):
                self._done.add(_key(self._pending.pop(0)))  # saved by a worker killed before it said so
            if self._pending:
                if self._leases.now() < self._hold_until:
                    return {"wait": True}
                self._held[worker] = self._pending.pop(0)
                return {"job": self._held[worker]}
            if self._held:
                return {"wait": True}  # a worker on the last runs may yet die and its run come back
            self._leases.release(worker)
            return {"done": True}

    def beat(self, worker: str, job: dict[str, Any]) -> dict[str, Any]:
        """`worker` still trains `job`: it keeps it, also after a chief restart that listed it as missing, unless
        the run is finished or another worker has it now (after this one's lease ran out).

        Raises:
            Refused: once the runs are listed, `job` is none of them. Before, any run may be claimed: a restarted
                chief learns from the beats which runs its workers still train.
        """
        with self._lock:
            self._leases.renew(worker)
            key = _key(job)
            if self._pending is not None and self._jobs.get(key) != job:
                raise precondition(f"{_named(job)} is not one this chief hands out (or not with these hyperparameters)")
            taken = any(_key(held) == key for other, held in self._held.items() if other != worker)
            if key not in self._done and not taken and self._held.get(worker) != job:
                self._held[worker] = job
                if self._pending is not None:
                    self._pending = [item for item in self._pending if _key(item) != key]
        return {}

    def finish(self, worker: str, saved: dict[str, Any]) -> dict[str, Any]:
        """`worker` saved a run (train_confirm_run's record): once its saved file checks out, it is no longer
        anyone's to train.

        Raises:
            Refused: the run is not one this chief handed out, another worker holds it now, or its saved record
                is missing or damaged. The run is not done then: it stays with its holder, or to be handed out.
        """
        key = _key(saved)
        with self._lock:
            self._leases.renew(worker)
            job = self._jobs.get(key) or next((held for held in self._held.values() if _key(held) == key), None)
            if job is None:
                raise precondition(f"{_named(saved)} is not one this chief handed out")
            if saved["hyperparameters"] != job["hyperparameters"]:
                raise invalid(f"{_named(saved)} was handed out with other hyperparameters")
            if key in self._done:
                return {}  # a Finish made again after a cut-off call, or a late worker's: counted once
            holder = next((other for other, held in self._held.items() if _key(held) == key), None)
            if holder not in (None, worker):
                raise precondition(f"{_named(saved)} is worker {holder}'s now (worker {worker}'s lease ran out)")
        problem = self._saved_problem(job)  # outside the lock: it reads the saved file
        if problem is not None:
            raise precondition(f"{_named(saved)} does not count as done: {problem}")
        with self._lock:
            if key in self._done:
                return {}
            for other, held in list(self._held.items()):
                if _key(held) == key:
                    del self._held[other]
            if self._pending is not None:
                self._pending = [item for item in self._pending if _key(item) != key]
            self._done.add(key)
            number, total = len(self._done), max(self._total, len(self._done))
        log_confirm_run(saved, number, total)
        return {}

    def finished(self) -> bool:
        """True once every run is saved and every worker that was to ask has been told there are no more; for a
        restarted chief, not before its hold is over, as it may not have heard yet from every worker."""
        with self._lock:
            self._reclaim()
            return (self._pending == [] and not self._held and not self._leases
                    and self._leases.now() >= self._hold_until)

    def _reclaim(self) -> None:
        # Under the lock: a silent worker's run goes back to the front of the queue, and the worker is forgotten.
        for worker, silence in self._leases.silent():
            self._leases.release(worker)
            job = self._held.pop(worker, None)
            if job is not None:
                log.warning("worker %s silent for %.0f s: the confirm run of trial %s seed %d goes back to the queue",
                            worker, silence, job["trial"], job["index"])
                if self._pending is not None:
                    self._pending.insert(0, job)

    def add_to(self, server: grpc.Server, members: Members | None = None) -> None:
        """Serve this queue's calls on the chief's gRPC `server` (before it starts), each message checked first;
        with `members`, only from workers that joined."""

        def sender(request: Any) -> str:
            worker = worker_of(request)
            if members is not None:
                members.check(worker)
            return worker

        serve(server, SERVICE, {
            "Next": lambda request: self.next(sender(request)),
            "Beat": lambda request: self.beat(sender(request), job_of(fields(request, {"job": dict})["job"])),
            "Finish": lambda request: self.finish(sender(request),
                                                  job_of(fields(request, {"saved": dict})["saved"], "saved")),
        })


class ConfirmClient(Client):
    """A worker's calls to the chief's ConfirmQueue, each waiting for a chief that is (re)starting."""

    def __init__(self, channel: grpc.Channel) -> None:
        super().__init__(channel, SERVICE, _METHODS)


# What ended a worker's confirm phase: no runs left, trials to run first, or its --trials-per-process reached.
DONE, TRIALS, RETIRE = "done", "trials", "retire"


def confirm_for_chief(stub: Any, worker: str, train: Callable[[dict[str, Any]], dict[str, Any]],
                      heartbeat_seconds: float, idle_seconds: float, retirement: Retirement | None = None) -> str:
    """A worker's side: train the confirm runs the chief hands out until it says there are none left.

    Args:
        stub: a ConfirmClient (wrapped to call again across a chief's restart).
        worker: this worker's id, as the oracle knows it.
        train: trains and saves one run (confirm.runs.train_confirm_run), returning its record.
        heartbeat_seconds: how often to beat while training.
        idle_seconds: how long to wait before asking again while other workers train the last runs.
        retirement: this process's trainings, trials included, toward --trials-per-process (None: no limit); once
            it is due the process stops to be replaced.

    Returns:
        DONE, TRIALS (the chief has trials to hand out: run them, then ask again) or RETIRE.
    """
    retirement = retirement if retirement is not None else Retirement(0)
    while True:
        if retirement.due:
            return RETIRE
        # As KerasTuner's own calls: a chief that is down is waited for, up to RPC_TIMEOUT_SECONDS.
        answer = stub.Next({"worker": worker}, wait_for_ready=True, timeout=RPC_TIMEOUT_SECONDS)
        if answer.get("done"):
            return DONE
        if answer.get("trials"):
            return TRIALS
        if "job" not in answer:
            time.sleep(idle_seconds)
            continue
        job = answer["job"]
        retirement.count()
        # Waiting for the connection (bounded by one beat) reaches a restarted chief as soon as it is back; a beat
        # that times out is not made again.
        beat = partial(stub.Beat, {"worker": worker, "job": job}, wait_for_ready=True, timeout=heartbeat_seconds)
        # A beat that cannot join a restarted chief again is forgiven too: the Finish below says why, on this thread.
        with Heartbeat(beat, heartbeat_seconds, forgiven=(grpc.RpcError, TunerUsageError)):
            saved = train(job)
        try:
            stub.Finish({"worker": worker, "saved": saved}, wait_for_ready=True, timeout=RPC_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            # Not counted (another worker holds it now, or a restarted chief has not listed it yet): the saved file
            # is the state, so the chief skips the run if it checks out and hands it out again if not.
            log.warning("The chief did not count %s: %s", _named(job), error.details())
