"""Worker processes of search.py on this machine: how many, their cores or GPUs, one output stream, restarts."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.config import ExecutionOptions, SearchSettings, settings_to_argv
from tuner.errors import SearchFailedError
from tuner.execution.processes import ChildProcess, Placement

if TYPE_CHECKING:
    from tuner.execution.distributed import OracleServer

log = logging.getLogger(__name__)

# How often a worker that was killed is restarted before the search gives up on it.
MAX_WORKER_RESTARTS = 3
SCRIPT = Path(__file__).resolve().parents[2] / "search.py"


def run_local_workers(settings: SearchSettings, options: ExecutionOptions, address: str, server: OracleServer) -> None:
    """Start `--workers` worker processes for the chief served at `address`, until `server.finished()`.

    Their output is relayed as one stream, each line prefixed with the worker's name. A
    worker killed by a signal is restarted with its own id, so it picks its trial up again;
    one that exits with an error stops the whole search.

    Args:
        settings: the search settings; the workers get the same flags.
        options: this process's execution options; the workers get them as workers of this chief.
        address: HOST:PORT of the chief's oracle, in this process.
        server: the server of that oracle (polled here for leases).
    """
    from tuner.search.kerastuner import worker_environment  # loads KerasTuner: kept out of a light import

    placement = Placement.here(options.workers)
    argv = [sys.executable, str(SCRIPT), *settings_to_argv(settings, options.for_worker(address))]
    log.info("Starting %d worker process(es)%s.", placement.count, placement.describe())
    workers: list[ChildProcess] = []
    try:
        for index in range(placement.count):
            env = {**placement.environment(index), **worker_environment(f"worker{index}")}
            workers.append(ChildProcess(f"worker{index}", argv, env))
        while not server.finished():
            time.sleep(0.5)
            server.poll()
            _check_workers(workers)
        for worker in workers:  # each has been told to stop; give it a moment to say goodbye
            try:
                worker.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.stop()
    finally:
        for worker in workers:
            worker.stop()


def _check_workers(workers: list[ChildProcess]) -> None:
    for worker in workers:
        code = worker.process.poll()
        if code is None or code == 0:
            continue
        if code < 0 and code != -signal.SIGINT and worker.restarts < MAX_WORKER_RESTARTS:
            worker.restarts += 1
            log.warning("[%s] was killed (signal %d); restarting it (%d/%d)", worker.name, -code,
                        worker.restarts, MAX_WORKER_RESTARTS)
            worker.start()
            continue
        raise SearchFailedError(f"{worker.name} stopped with exit code {code}: {worker.last_error or 'see its output above'}")
