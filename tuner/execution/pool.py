"""The job pool: jobs (report.py's confirm runs) handed out to child processes, one job at a time each.

The parent starts its placement's processes of a command (processes.Placement: `--workers` of them, each
with its share of the cores or one GPU, set before TensorFlow loads) and hands every idle one the next job
as a JSON line on its stdin. A pool process answers each job with one JSON line on its stdout
({"result": ...} or {"error": ...}); anything else it prints goes to its stderr, which the parent relays
at debug level. Pool processes follow the parent (processes.follow_parent), so a kill -9 of the parent
leaves none training.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import traceback
from typing import IO, Any, Callable, Iterator, Sequence, cast

from tuner.errors import SearchFailedError, TunerUsageError
from tuner.execution.processes import ChildProcess, Placement, follow_parent

log = logging.getLogger(__name__)


def run_jobs(command: Sequence[str], jobs: Sequence[dict[str, Any]], placement: Placement,
             describe: Callable[[dict[str, Any]], str], name: str = "job",
             redo: str = "run the same command again") -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Run `jobs` on the job pool: `placement`'s processes of `command`, yielding (job, result) as each job finishes.

    Args:
        command: a pool process's argv; it serves jobs with serve_jobs.
        jobs: JSON-ready jobs, handed out in this order to whichever pool process is idle.
        placement: how many pool processes (at least 1) and their cores or GPUs (Placement.here).
        describe: names a job in an error message ("the confirm run of trial 3 seed 2").
        name: names the pool's processes in the log and in errors ("confirm" names them confirm0, confirm1, ...).
        redo: what to do when a pool process died, to end its error message.

    Raises:
        TunerUsageError: a pool process refused its input (e.g. the dataset changed): its one line.
        SearchFailedError: a job failed, or a pool process died: one line naming the job.
    """
    log.info("Starting %d %s process(es)%s.", placement.count, name, placement.describe())
    pending: queue.Queue[dict[str, Any]] = queue.Queue()
    for job in jobs:
        pending.put(job)
    finished: queue.Queue[tuple[_PoolProcess, dict[str, Any], dict[str, Any]]] = queue.Queue()
    pool: list[_PoolProcess] = []
    try:
        # Started from this thread, which outlives them (processes.ChildProcess.start).
        pool = [_PoolProcess(ChildProcess(f"{name}{index}", command, placement.environment(index), pipes=True,
                                          level=logging.DEBUG)) for index in range(placement.count)]
        for member in pool:
            threading.Thread(target=member.serve, args=(pending, finished), daemon=True).start()
        for _ in jobs:
            member, job, answer = _next(finished)
            if "result" not in answer:
                raise _failure(member.child.name, job, answer, describe, redo)
            yield job, answer["result"]
    finally:
        for member in pool:
            member.child.stop()


def _next(finished: queue.Queue[Any]) -> Any:
    # A timeout keeps the wait responsive to Ctrl-C on every platform.
    while True:
        try:
            return finished.get(timeout=0.5)
        except queue.Empty:
            continue


def _failure(name: str, job: dict[str, Any], answer: dict[str, Any], describe: Callable[[dict[str, Any]], str],
             redo: str) -> Exception:
    where = f"{name} could not start" if answer.get("started") is False else f"{describe(job)} failed in {name}"
    if "error" in answer:
        error_class = TunerUsageError if answer.get("usage") else SearchFailedError
        return error_class(f"{where}: {answer['error']}")
    return SearchFailedError(f"{where}: it stopped with exit code {answer.get('exit_code')}"
                             f"{': ' + answer['last_line'] if answer.get('last_line') else ''}; {redo}.")


class _PoolProcess:
    """One process of the job pool: the jobs handed to it over its pipes, one at a time, and its answers."""

    def __init__(self, child: ChildProcess) -> None:
        self.child = child
        # Popen made all three pipes (pipes=True), so none of them is None.
        self.stdin, self.stdout = cast(IO[str], child.process.stdin), cast(IO[str], child.process.stdout)

    def serve(self, pending: queue.Queue[dict[str, Any]], finished: queue.Queue[Any]) -> None:
        """Hand this process jobs until none are left, reporting each answer (or its death) to `finished`."""
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
            self.stdin.close()  # no more work: the process ends
        except OSError:
            pass

    def _read_answer(self) -> dict[str, Any]:
        try:
            line = self.stdout.readline()
            return json.loads(line) if line else self._death()
        except (OSError, ValueError):  # its stdout broke or holds no answer: it died, or is being stopped
            return self._death()

    def _death(self) -> dict[str, Any]:
        code = self.child.process.wait()
        return {"exit_code": code, "last_line": self.child.tail[-1] if self.child.tail else ""}


def serve_jobs(start: Callable[[], Callable[[dict[str, Any]], dict[str, Any]]]) -> int:
    """A pool process's side: follow the parent, then answer each job line of stdin with one JSON line on stdout.

    Args:
        start: sets the process up (loads TensorFlow, the data) and returns the function that does one job.

    Returns:
        The process's exit code: 0 when stdin closed, 1 after the error it reported, 130 on Ctrl-C.
    """
    follow_parent()
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
