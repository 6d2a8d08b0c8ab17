"""Worker processes of search.py on this machine: how many, their cores or GPUs, one output stream, restarts."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.config import ExecutionOptions, SearchSettings, settings_to_argv
from tuner.errors import SearchFailedError

if TYPE_CHECKING:
    from tuner.execution.distributed import OracleServer

log = logging.getLogger(__name__)

# How often a worker that was killed is restarted before the search gives up on it.
MAX_WORKER_RESTARTS = 3
# What one worker process of this tool needs at most on a CPU: TensorFlow (~0.5 GB), a model and the
# dataset's tf.data copies, and the growth that --trials-per-process bounds. `auto` starts no more
# workers than the available memory holds at this much each.
WORKER_MEMORY_BYTES = 1.5 * 2**30
SCRIPT = Path(__file__).resolve().parents[2] / "search.py"
# Tells a worker which process started it, so that it ends with it (see follow_launcher).
LAUNCHER_PID_ENV = "CNN_TUNER_LAUNCHER_PID"
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def available_cores() -> int:
    """The cores this process may run on (CPU pinning and container limits included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The ids to give each worker in CUDA_VISIBLE_DEVICES: the user's own list if set, else every GPU found."""
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return [item.strip() for item in chosen.split(",") if item.strip() and item.strip() != "-1"]
    import tensorflow as tf  # already loaded by search.py; listing devices allocates no GPU memory

    return [str(index) for index in range(len(tf.config.list_physical_devices("GPU")))]


def worker_count(requested: str, gpus: list[str], cores: int, available_memory: int) -> int:
    """How many worker processes `--workers` means here.

    `auto` is one per GPU when there are GPUs; otherwise one single-threaded process per
    core, as far as memory allows: small CNNs cannot keep several cores busy from one
    process, and two such processes on 2 cores finish a grid 1.44x sooner than one.
    An explicit number is taken as given, but never above what the available memory holds at
    WORKER_MEMORY_BYTES each (six workers once took 5.3 GB for a one-trial grid): more is capped,
    with a warning saying how many run and why.

    Args:
        requested: the flag's value: "auto" or a number.
        gpus: the GPUs visible to workers.
        cores: the cores this process may use.
        available_memory: bytes of memory available now.
    """
    fits = max(1, int(available_memory // WORKER_MEMORY_BYTES))
    if requested != "auto":
        count = int(requested)
        if count > fits:
            log.warning("--workers %d: starting %d worker process(es) instead, as many as the %.1f GB of available "
                        "memory holds at %.1f GB each; free memory to run more.", count, fits,
                        available_memory / 2**30, WORKER_MEMORY_BYTES / 2**30)
            return fits
        return count
    if gpus:
        return len(gpus)
    return min(cores, fits)


def thread_environment(cores: int, count: int) -> dict[str, str]:
    """The thread variables of each of `count` CPU worker processes sharing `cores`, set before TensorFlow loads.

    Each worker gets its share of the cores, so N workers don't oversubscribe the machine,
    unless the user chose a thread count already (TF_NUM_INTRAOP_THREADS).
    """
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS") or str(max(1, cores // count))
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": threads}


def follow_launcher() -> None:
    """In a worker the launcher started: end when the launcher ends, however it ends (kill -9 included).

    Otherwise its workers would train on as orphans, and a resumed search would compete with
    them for the cores. Linux's PR_SET_PDEATHSIG does it; it survives the worker's own
    replacement (exec), and a launcher that died before it was set is caught by the ppid check.
    """
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if not launcher:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: workers may outlive a killed launcher
        return
    if os.getppid() != int(launcher):
        os.kill(os.getpid(), signal.SIGTERM)


class _Worker:
    """One worker process: its command, environment, restarts and output relay."""

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
        for line in process.stdout or ():
            line = line.rstrip()
            if line.startswith("error:"):
                self.last_error = line
            log.info("[%s] %s", self.name, line)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def stop_process(process: subprocess.Popen[str]) -> None:
    """End a child process: politely (SIGTERM) first, then for sure after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
    import psutil

    from tuner.search.kerastuner import worker_environment  # loads KerasTuner: kept out of a light import

    gpus, cores = visible_gpus(), available_cores()
    count = worker_count(options.workers, gpus, cores, psutil.virtual_memory().available)
    argv = settings_to_argv(settings, options.for_worker(address))
    threads = thread_environment(cores, count)
    base_env = {**os.environ, **threads, "PYTHONUNBUFFERED": "1", LAUNCHER_PID_ENV: str(os.getpid())}
    log.info("Starting %d worker process(es)%s.", count, f" on GPUs {', '.join(gpus)}" if gpus
             else f", {threads['TF_NUM_INTRAOP_THREADS']} thread(s) each")
    workers = []
    try:
        for index in range(count):
            env = {**base_env, **worker_environment(f"worker{index}")}
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
            workers.append(_Worker(f"worker{index}", argv, env))
        while not server.finished():
            time.sleep(0.5)
            server.poll()
            _check_workers(workers)
        for worker in workers:  # each has been told to stop; give it a moment to say goodbye
            if worker.process is not None:
                try:
                    worker.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.stop()
    finally:
        for worker in workers:
            worker.stop()


def _check_workers(workers: list[_Worker]) -> None:
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
