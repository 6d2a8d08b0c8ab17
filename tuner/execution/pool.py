"""Jobs (such as report.py's confirm runs) trained on worker processes, one job at a time each, that end with their parent.

The parent starts `--workers` processes of a command, each with its share of the cores (or one GPU)
set before TensorFlow loads, and hands every idle one the next job as a JSON line on its stdin.
A worker answers each job with one JSON line on its stdout ({"result": ...} or {"error": ...});
anything else it prints goes to its stderr, which the parent relays at debug level. Workers
follow the parent (launcher.follow_launcher), so a kill -9 of the parent leaves none training.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import traceback
from collections import deque
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence, cast

from tuner.errors import SearchFailedError, TunerUsageError
from tuner.execution.launcher import (LAUNCHER_PID_ENV, available_cores, follow_launcher, stop_process, thread_environment,
                            visible_gpus, worker_count)

log = logging.getLogger(__name__)

# The folder that holds the tuner package, so `python -c "from tuner..."` imports it from any working directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How many of a worker's last stderr lines an error message may quote when the worker died without saying why.
_STDERR_TAIL = 5


def process_count(requested: str, jobs: int) -> int:
    """How many worker processes `--workers` means for `jobs` jobs: never more than there are jobs, 0 for in-process."""
    if requested == "0" or jobs == 0:
        return 0
    import psutil

    return min(jobs, worker_count(requested, visible_gpus(), available_cores(), psutil.virtual_memory().available))


def run_jobs(command: Sequence[str], jobs: Sequence[dict[str, Any]], count: int,
             describe: Callable[[dict[str, Any]], str]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Run `jobs` on `count` processes of `command`, yielding (job, result) as each job finishes.

    Args:
        command: the worker's argv; it serves jobs with serve_jobs.
        jobs: JSON-ready jobs, handed out in this order to whichever worker is idle.
        count: how many worker processes (at least 1; process_count says how many `--workers` means).
        describe: names a job in an error message ("trial 3 seed 2").

    Raises:
        TunerUsageError: a worker refused its input (e.g. the dataset changed): its one line.
        SearchFailedError: a job failed, or a worker died: one line naming the job.
    """
    gpus, cores = visible_gpus(), available_cores()
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1", LAUNCHER_PID_ENV: str(os.getpid()),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    if not gpus:
        base_env.update(thread_environment(cores, count))
    log.info("Starting %d confirm process(es)%s.", count, f" on GPUs {', '.join(gpus)}" if gpus
             else f", {base_env['TF_NUM_INTRAOP_THREADS']} thread(s) each")
    pending: queue.Queue[dict[str, Any]] = queue.Queue()
    for job in jobs:
        pending.put(job)
    finished: queue.Queue[tuple[_Worker, dict[str, Any], dict[str, Any]]] = queue.Queue()
    workers: list[_Worker] = []
    try:
        # Started from this thread: PR_SET_PDEATHSIG fires when the thread that started a worker ends.
        for index in range(count):
            env = {**base_env, **({"CUDA_VISIBLE_DEVICES": gpus[index % len(gpus)]} if gpus else {})}
            workers.append(_Worker(f"confirm{index}", command, env))
        for worker in workers:
            threading.Thread(target=worker.serve, args=(pending, finished), daemon=True).start()
        for _ in jobs:
            worker, job, answer = _next(finished)
            if "result" not in answer:
                raise _failure(worker, job, answer, describe)
            yield job, answer["result"]
    finally:
        for worker in workers:
            worker.stop()


def _next(finished: queue.Queue[Any]) -> Any:
    # A timeout keeps the wait responsive to Ctrl-C on every platform.
    while True:
        try:
            return finished.get(timeout=0.5)
        except queue.Empty:
            continue


def _failure(worker: _Worker, job: dict[str, Any], answer: dict[str, Any], describe: Callable[[dict[str, Any]], str]) -> Exception:
    where = f"{worker.name} could not start" if answer.get("started") is False else f"{describe(job)} failed in {worker.name}"
    if "error" in answer:
        error_class = TunerUsageError if answer.get("usage") else SearchFailedError
        return error_class(f"{where}: {answer['error']}")
    return SearchFailedError(f"{where}: it stopped with exit code {answer.get('exit_code')}"
                             f"{': ' + answer['last_line'] if answer.get('last_line') else ''}; run report.py again "
                             f"to train the confirm runs that are missing.")


class _Worker:
    """One worker process: its pipes, the job it is on, and the last lines of its stderr."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
        self.process = subprocess.Popen(list(command), env=env, text=True, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1)
        # Popen made all three pipes, so none of them is None.
        self.stdin, self.stdout = cast(IO[str], self.process.stdin), cast(IO[str], self.process.stdout)
        threading.Thread(target=self._relay_stderr, daemon=True).start()

    def serve(self, pending: queue.Queue[dict[str, Any]], finished: queue.Queue[Any]) -> None:
        """Hand this worker jobs until none are left, reporting each answer (or its death) to `finished`."""
        try:
            while True:
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    break
                self.stdin.write(json.dumps(job) + "\n")
                self.stdin.flush()
                answer = self._read_answer()
                finished.put((self, job, answer))
                if "result" not in answer:
                    return
        except OSError:  # its stdin broke: it died, maybe after saying why on its stdout
            finished.put((self, job, self._read_answer()))
            return
        try:
            self.stdin.close()  # no more work: the worker ends
        except OSError:
            pass

    def _read_answer(self) -> dict[str, Any]:
        try:
            line = self.stdout.readline()
            return json.loads(line) if line else self._death()
        except (OSError, ValueError):  # its stdout broke or holds no answer: it died, or is being stopped
            return self._death()

    def _death(self) -> dict[str, Any]:
        code = self.process.wait()
        return {"exit_code": code, "last_line": self.stderr_tail[-1] if self.stderr_tail else ""}

    def _relay_stderr(self) -> None:
        for line in self.process.stderr or ():
            line = line.rstrip()
            if line:
                self.stderr_tail.append(line)
                log.debug("[%s] %s", self.name, line)

    def stop(self) -> None:
        stop_process(self.process)


def serve_jobs(start: Callable[[], Callable[[dict[str, Any]], dict[str, Any]]]) -> int:
    """A worker's side: follow the parent, then answer each job line of stdin with one JSON line on stdout.

    Args:
        start: sets the worker up (loads TensorFlow, the data) and returns the function that does one job.

    Returns:
        The worker's exit code: 0 when stdin closed, 1 after the error it reported, 130 on Ctrl-C.
    """
    follow_launcher()
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever else is printed must not mix with the answers
    started = False
    try:
        handle = start()
        started = True
        for line in sys.stdin:
            answers.write(json.dumps({"result": handle(json.loads(line))}) + "\n")
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # reported as one line; the parent names the job
        text = str(error) if isinstance(error, (TunerUsageError, SearchFailedError)) else f"{type(error).__name__}: {error}"
        traceback.print_exc()  # to stderr, which the parent shows with --debug
        answers.write(json.dumps({"error": text, "usage": isinstance(error, TunerUsageError), "started": started}) + "\n")
        return 1
