"""Child processes of this tool: how many `--workers` means here, each started with its share of the cores (or one GPU),
its output relayed, ending with its parent, stopped for sure, and retired after `--trials-per-process` trainings."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

log = logging.getLogger(__name__)

# What one child process of this tool needs at most on a CPU: TensorFlow (~0.5 GB), a model and the
# dataset's tf.data copies, and the growth that --trials-per-process bounds. `auto` starts no more
# processes than the available memory holds at this much each.
WORKER_MEMORY_BYTES = 1.5 * 2**30
# Tells a child which process started it, so that it ends with it (see follow_parent).
PARENT_PID_ENV = "CNN_TUNER_PARENT_PID"
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
# The folder that holds the tuner package, so a child started as `python -m tuner...` imports it from any working directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How many of a child's last output lines are kept to quote when it dies without saying why.
TAIL_LINES = 5


def available_cores() -> int:
    """The cores this process may run on (CPU pinning and container limits included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes of memory available now."""
    import psutil

    return int(psutil.virtual_memory().available)


def visible_gpus() -> list[str]:
    """The ids to give each child in CUDA_VISIBLE_DEVICES: the user's own list if set, else every GPU found."""
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return [item.strip() for item in chosen.split(",") if item.strip() and item.strip() != "-1"]
    import tensorflow as tf  # already loaded by the scripts; listing devices allocates no GPU memory

    return [str(index) for index in range(len(tf.config.list_physical_devices("GPU")))]


def worker_count(requested: str, gpus: list[str], cores: int, memory: int) -> int:
    """How many child processes `--workers` means for a machine with these GPUs, cores and available memory.

    `auto` is one per GPU when there are GPUs; otherwise one single-threaded process per
    core, as far as memory allows: small CNNs cannot keep several cores busy from one
    process, and two such processes on 2 cores finish a grid 1.44x sooner than one.
    An explicit number is taken as given, but never above what the available memory holds at
    WORKER_MEMORY_BYTES each (six workers once took 5.3 GB for a one-trial grid): more is capped,
    with a warning saying how many run and why.

    Args:
        requested: the flag's value: "auto" or a number.
        gpus: the GPUs visible to the children.
        cores: the cores this process may use.
        memory: bytes of memory available now.
    """
    fits = max(1, int(memory // WORKER_MEMORY_BYTES))
    if requested != "auto":
        count = int(requested)
        if count > fits:
            log.warning("--workers %d: starting %d worker process(es) instead, as many as the %.1f GB of available "
                        "memory holds at %.1f GB each; free memory to run more.", count, fits,
                        memory / 2**30, WORKER_MEMORY_BYTES / 2**30)
            return fits
        return count
    if gpus:
        return len(gpus)
    return min(cores, fits)


def thread_environment(cores: int, count: int) -> dict[str, str]:
    """The thread variables of each of `count` CPU child processes sharing `cores`, set before TensorFlow loads.

    Each child gets its share of the cores, so N children don't oversubscribe the machine,
    unless the user chose a thread count already (TF_NUM_INTRAOP_THREADS).
    """
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS") or str(max(1, cores // count))
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": threads}


@dataclass(frozen=True)
class Placement:
    """How many child processes run, and the GPUs or cores they share out.

    Args:
        count: how many child processes.
        gpus: the GPUs they get one each of, in turn (none: they share the cores).
        cores: the cores they share.
    """

    count: int
    gpus: tuple[str, ...] = ()
    cores: int = 1

    @classmethod
    def here(cls, requested: str, jobs: int | None = None) -> Placement:
        """The placement `--workers` means on this machine, for at most `jobs` jobs (None: no limit); 0 processes
        for "0" or no jobs, which means: in this process."""
        if requested == "0" or jobs == 0:
            return cls(0)
        gpus, cores = visible_gpus(), available_cores()
        count = worker_count(requested, gpus, cores, available_memory())
        return cls(count if jobs is None else min(jobs, count), tuple(gpus), cores)

    def environment(self, index: int) -> dict[str, str]:
        """The environment of child `index`: this process's, plus its share of the cores and its GPU (if any),
        unbuffered output, this process as the parent it ends with, and the project importable."""
        return {**os.environ, **thread_environment(self.cores, max(1, self.count)), "PYTHONUNBUFFERED": "1",
                PARENT_PID_ENV: str(os.getpid()),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
                **({"CUDA_VISIBLE_DEVICES": self.gpus[index % len(self.gpus)]} if self.gpus else {})}

    def describe(self) -> str:
        """Where the children run, to end a "Starting N ... process(es)" line: " on GPUs 0, 1" or ", 2 thread(s) each"."""
        if self.gpus:
            return f" on GPUs {', '.join(self.gpus)}"
        return f", {thread_environment(self.cores, max(1, self.count))['TF_NUM_INTRAOP_THREADS']} thread(s) each"


class ChildProcess:
    """One child process: started (again, after a kill) with its environment, its output relayed to the log line by
    line under its name, and stopped for sure.

    Args:
        name: prefixes each relayed line ("[worker0] ...").
        command: the argv.
        env: its environment (Placement.environment).
        pipes: give it stdin and stdout as pipes for the parent's own use and relay only its stderr; otherwise
            stdout and stderr are relayed as one stream.
        level: the level at which its lines are logged.
    """

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], pipes: bool = False,
                 level: int = logging.INFO) -> None:
        self.name, self.command, self.env, self.pipes, self.level = name, list(command), env, pipes, level
        self.restarts = 0
        self.last_error = ""  # its last "error:" line: why it stopped, as the scripts say it
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.process: subprocess.Popen[str]
        self.start()

    def start(self) -> None:
        """Start it (again). From the thread that stays: PR_SET_PDEATHSIG fires when the thread that started it ends."""
        self.process = subprocess.Popen(self.command, env=self.env, text=True, bufsize=1,
                                        stdin=subprocess.PIPE if self.pipes else None, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE if self.pipes else subprocess.STDOUT)
        relayed = self.process.stderr if self.pipes else self.process.stdout
        threading.Thread(target=self._relay, args=(relayed,), daemon=True).start()

    def _relay(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            line = line.rstrip()
            if not line:
                continue
            self.tail.append(line)
            if line.startswith("error:"):
                self.last_error = line
            log.log(self.level, "[%s] %s", self.name, line)

    def stop(self) -> None:
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


def follow_parent() -> None:
    """In a child this tool started: end when the parent ends, however it ends (kill -9 included).

    Otherwise its children would train on as orphans, and a resumed search or report would compete
    with them for the cores. Linux's PR_SET_PDEATHSIG does it; it survives the child's own
    replacement (exec), and a parent that died before it was set is caught by the ppid check.
    """
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: children may outlive a killed parent
        return
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)


class Retirement:
    """The trainings (trials and confirm runs together) this process has started, toward `--trials-per-process`:
    once there are that many it takes no more and is replaced by a fresh process, as TensorFlow keeps memory from
    every model it traced.

    Args:
        limit: how many trainings before it retires (0: never).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.started = 0

    @property
    def due(self) -> bool:
        """Whether this process has started its `limit` trainings and must take no more."""
        return bool(self.limit) and self.started >= self.limit

    def count(self) -> None:
        """Note one training started (a trial or a confirm run)."""
        self.started += 1
