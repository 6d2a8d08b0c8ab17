"""One search at a time in a run directory: an flock the kernel drops when the process ends, however it ends."""

from __future__ import annotations

import errno
import fcntl
import os
from typing import Any

from tuner.errors import TunerUsageError
from tuner.rundir.layout import Run


class RunLock:
    """An exclusive lock on a run directory, held for the life of a search process.

    It is an flock(2) on a file in the run directory: the kernel drops it when the process
    ends in any way, kill -9 included, so a crashed search never leaves a stale lock.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self._handle: Any = None

    def __enter__(self) -> RunLock:
        self.run.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.run.lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise TunerUsageError(
                    f"run directory '{self.run.root}' is in use by {owner}; wait for that search to "
                    f"finish, stop it, or pass another --run-dir."
                ) from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {os.uname().nodename}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None
