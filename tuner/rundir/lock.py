"""One process at a time writes a run directory: an flock the kernel drops when the process ends, however it ends."""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from tuner.errors import TunerUsageError
from tuner.rundir.layout import Run

# What a search refused by a held lock should do.
SEARCH_ADVICE = "wait for it to finish, stop it, or pass another --run-dir."
# The holder's line ("process 123 on host (search.py)") is short; more than this is not a holder's line.
_OWNER_BYTES = 512


class RunLock:
    """An exclusive lock on a run directory, held for the life of a search process or of a report.

    It is an flock(2) on a file in the run directory: the kernel drops it when the process
    ends in any way, kill -9 included, so a crashed search never leaves a stale lock. The
    holder writes who it is into the file, so the one refused can name it.

    Args:
        run: the run directory.
        holder: the script taking the lock, named to whoever is refused while it holds it.
        advice: what the refused process's `error:` line tells its user to do.
    """

    def __init__(self, run: Run, holder: str = "search.py", advice: str = SEARCH_ADVICE) -> None:
        self.run = run
        self.holder = holder
        self.advice = advice
        self._descriptor = -1

    def __enter__(self) -> RunLock:
        self.run.root.mkdir(parents=True, exist_ok=True)
        descriptor, writable = self._open()
        if descriptor < 0:
            return self  # no lock file and none can be made: no search holds one here (report.py then refuses the folder)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            owner = os.pread(descriptor, _OWNER_BYTES, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(descriptor)
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise TunerUsageError(
                    f"run directory '{self.run.root}' is in use by {owner.splitlines()[0]}; {self.advice}") from None
            raise
        if writable:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"process {os.getpid()} on {os.uname().nodename} ({self.holder})\n".encode(), 0)
        self._descriptor = descriptor
        return self

    def _open(self) -> tuple[int, bool]:
        """The lock file's descriptor, opened to write the holder's name, or read-only where it cannot be written.

        flock needs no write permission, so a run copied read-only still excludes a search on it; report.py
        then refuses the folder itself, with its own advice, rather than failing here. A symbolic link is not
        followed and only a regular file is used: truncating the lock file must never truncate another file.
        """
        flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open
        try:
            descriptor, writable = os.open(self.run.lock, os.O_RDWR | os.O_CREAT | flags, 0o666), True
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise self._refusal("cannot be opened", error) from None
            try:
                descriptor, writable = os.open(self.run.lock, os.O_RDONLY | flags), False
            except FileNotFoundError:
                return -1, False
            except OSError as error:
                raise self._refusal("cannot be opened", error) from None
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise self._refusal("is not a regular file")
        return descriptor, writable

    def _refusal(self, problem: str, error: OSError | None = None) -> TunerUsageError:
        reason = f" ({error.strerror})" if error is not None and error.strerror else ""
        return TunerUsageError(
            f"the run's lock file '{self.run.lock}' {problem}{reason}; remove it (it holds no data) and run the same "
            f"command again."
        )

    def __exit__(self, *exc_info: object) -> None:
        if self._descriptor >= 0:
            os.close(self._descriptor)  # closing the file releases the flock
            self._descriptor = -1
