"""One run, one definition: a worker joins a chief's search by showing its run record first, and one whose search
differs (space, tuner, core values, training, dataset: what settings.json saves as defining the run) is refused
before it writes anything, so its trials never mix into the chief's run.

The chief's side is `Members` (the workers that joined this chief process); the worker's is `join_chief`. A
restarted chief knows no one: a worker's next call is refused as NOT_JOINED, and the worker joins again and
calls again (worker._RetryingStub).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import grpc

from tuner.config import COMPARED_ON_RESUME, flag_of
from tuner.errors import SearchFailedError, TunerUsageError
from tuner.execution.distributed.messages import Client, fields, invalid, precondition, serve, worker_of
from tuner.rundir import RunRecord
from tuner.rundir.record import FORMAT_VERSION

log = logging.getLogger(__name__)

SERVICE = "cnn_tuner.Workers"
# In the message of a call refused because its worker has not joined this chief process (a restarted chief's).
NOT_JOINED = "has not joined this chief"


class Members:
    """The chief's side: the workers that joined, each after its run record matched the chief's.

    Args:
        record: the chief's run record (settings.json); None lets any worker join (an oracle served on its own).
    """

    def __init__(self, record: RunRecord | None) -> None:
        self._record = record
        self._joined: set[str] = set()
        self._lock = threading.Lock()

    def join(self, request: Any) -> dict[str, Any]:
        """A worker's Join: {"worker": id, "record": its settings.json as JSON}; refused (Refused) if they differ."""
        worker = worker_of(request)
        try:
            theirs = RunRecord.from_json(fields(request, {"record": dict})["record"])
        except (TypeError, ValueError, KeyError) as error:  # the tool's usage errors are ValueErrors too
            raise invalid(f"worker {worker!r} sent a run record that is not valid: {error}") from None
        why = self._record.difference(theirs) if self._record is not None else None
        if why is None and theirs.format_version != FORMAT_VERSION:
            # Another release of the tool: it would build other models from the same hyperparameter values.
            why = (f"is run by a release that writes settings.json format_version {FORMAT_VERSION}, where the worker's "
                   f"writes {theirs.format_version}; run the same release of the tool on every machine")
        if why:
            differing = _differing(self._record, theirs)
            message = f"the worker's settings differ from the chief's ({differing}): the search {why}"
            raise precondition(message,
                               line=f"error: worker {worker} refused: {message}; the search goes on without it.")
        with self._lock:
            self._joined.add(worker)
        log.debug("worker %s joined", worker)
        return {}

    def check(self, worker: str) -> None:
        """Refuse (Refused) a call from a worker that has not joined this chief."""
        with self._lock:
            known = worker in self._joined
        if not known:
            raise precondition(f"worker {worker!r} {NOT_JOINED} (a worker joins before its first trial)")

    def add_to(self, server: grpc.Server) -> None:
        """Serve Join on the chief's gRPC `server` (before it starts)."""
        serve(server, SERVICE, {"Join": self.join})


def _differing(ours: RunRecord, theirs: RunRecord) -> str:
    # Every setting that differs, by its flag: difference() details only the first, and a worker started with
    # another --space also has another default --tuner, which alone would not say what to fix.
    names = [flag_of(name) for name in COMPARED_ON_RESUME if getattr(ours.search, name) != getattr(theirs.search, name)]
    if ours.dataset.identity != theirs.dataset.identity:
        names.append("prepared dataset (--data)")
    if ours.format_version != theirs.format_version:
        names.append("release of the tool")
    return ", ".join(names)


def not_joined(error: grpc.RpcError) -> bool:
    """Whether a call was refused because its worker has not joined this chief (a restarted one)."""
    return error.code() == grpc.StatusCode.FAILED_PRECONDITION and NOT_JOINED in (error.details() or "")


def join_chief(address: str, worker: str, record: RunRecord, timeout: float) -> None:
    """Join the chief at `address` as `worker`, showing `record`; waits up to `timeout` for a (re)starting chief.

    Raises:
        TunerUsageError: the chief refuses this worker (its search differs), naming what differs.
        SearchFailedError: the chief did not answer.
    """
    channel = grpc.insecure_channel(address)
    try:
        Client(channel, SERVICE, ("Join",)).Join({"worker": worker, "record": record.to_json()},
                                                 wait_for_ready=True, timeout=timeout)
    except grpc.RpcError as error:
        code = error.code()
        if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
            raise TunerUsageError(f"the chief at {address} refuses this worker: {error.details()}; start the worker "
                                  f"with the chief's flags and prepared dataset.") from None
        if code == grpc.StatusCode.UNIMPLEMENTED:
            raise TunerUsageError(f"the chief at {address} does not check its workers (another release of this tool); "
                                  f"run the same release on the chief and every worker.") from None
        raise SearchFailedError(f"the chief at {address} did not answer this worker's join ({code.name}); start it "
                                f"again with the same command, then this worker.") from None
    finally:
        channel.close()
