"""KerasTuner's chief/worker engine made to survive dead workers: leases and a restartable chief (chief.py),
heartbeats and calls made again across a chief's restart (worker.py), the confirm runs the chief hands
its workers once the trials are done (confirm_service.py), only to workers of the chief's own search (joining.py),
every message checked (messages.py)."""

from tuner.execution.distributed.address import parse_address
from tuner.execution.distributed.chief import (
    LEASE_SECONDS,
    OracleServer,
    keep_ongoing_after_restart,
    reclaim_silent_trials,
)
from tuner.execution.distributed.worker import HEARTBEAT_SECONDS, confirm_as_worker, join_as_worker, wait_for_chief

__all__ = [
    "HEARTBEAT_SECONDS", "LEASE_SECONDS", "OracleServer", "confirm_as_worker", "join_as_worker",
    "keep_ongoing_after_restart",
    "parse_address", "reclaim_silent_trials", "wait_for_chief",
]
