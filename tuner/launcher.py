"""`--workers N`: a chief and N worker processes of search.py on this machine, one output stream, stopped together."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tuner.config import SearchSettings, settings_to_argv
from tuner.distributed import wait_for_chief
from tuner.errors import SearchFailedError

log = logging.getLogger(__name__)

# How often the launcher restarts a worker that was killed before it gives up on it.
MAX_WORKER_RESTARTS = 3
SCRIPT = Path(__file__).resolve().parent.parent / "search.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Member:
    """One process of a local cluster: its command, environment, restarts and output relay."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.restarts = 0
        self.last_error = ""
        self.process: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(SCRIPT), *self.argv], env=self.env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        threading.Thread(target=self._relay, args=(self.process,), daemon=True).start()

    def _relay(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line.startswith("error:"):
                self.last_error = line
            log.info("[%s] %s", self.name, line)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_local_cluster(settings: SearchSettings) -> None:
    """A chief and settings.workers workers on this machine, their output relayed as one stream.

    A worker killed by a signal is restarted with its own id, so it picks its trial up again;
    a worker or chief that exits with an error stops the whole search.
    """
    address = f"127.0.0.1:{_free_port()}"
    common = settings_to_argv(settings, skip=("workers", "role", "oracle", "overwrite"))
    # The cores are shared out so that N workers don't oversubscribe the machine, unless the
    # user chose a thread count already.
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS") or str(max(1, (os.cpu_count() or 1) // settings.workers))
    base_env = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
                "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    chief_argv = common + ["--role", "chief", "--oracle", address] + (["--overwrite"] if settings.overwrite else [])
    chief = _Member("chief", chief_argv, base_env)
    workers: list[_Member] = []
    try:
        wait_for_chief(address, timeout=120)
        for index in range(settings.workers):
            env = {**base_env, "KERASTUNER_TUNER_ID": f"worker{index}"}
            workers.append(_Member(f"worker{index}", common + ["--role", "worker", "--oracle", address], env))
        _supervise(chief, workers)
    finally:
        for member in [*workers, chief]:
            member.stop()


def _supervise(chief: _Member, workers: list[_Member]) -> None:
    while True:
        time.sleep(0.5)
        chief_code = chief.process.poll() if chief.process else None
        if chief_code is not None:
            if chief_code != 0:
                raise SearchFailedError(f"the chief stopped with exit code {chief_code}: {chief.last_error or 'see its output above'}")
            for worker in workers:
                if worker.process is not None:
                    try:
                        worker.process.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        worker.stop()
            return
        for worker in workers:
            code = worker.process.poll() if worker.process else None
            if code is None or code == 0:
                continue
            if code < 0 and code != -signal.SIGINT and worker.restarts < MAX_WORKER_RESTARTS:
                worker.restarts += 1
                log.warning("[%s] was killed (signal %d); restarting it (%d/%d)", worker.name, -code,
                            worker.restarts, MAX_WORKER_RESTARTS)
                worker.start()
                continue
            raise SearchFailedError(f"{worker.name} stopped with exit code {code}: {worker.last_error or 'see its output above'}")
