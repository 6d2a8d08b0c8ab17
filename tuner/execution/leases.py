"""Leases and heartbeats: when each holder of work (a worker) was last heard from, so that a silent one's work goes to
another, and the thread by which a holder says it is still alive."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator


class Leases:
    """The holders of work and when each was last heard from; a holder silent for longer than the lease has lost it.

    Not thread-safe by itself: its users call it under their own lock (the oracle's, the confirm queue's).

    Args:
        seconds: how long a silent holder keeps its work.
        now: the clock, in seconds (injectable, so that a test moves time instead of sleeping).
    """

    def __init__(self, seconds: float, now: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.now = seconds, now
        self._last_seen: dict[str, float] = {}

    def renew(self, holder: str) -> None:
        """`holder` was heard from just now."""
        self._last_seen[holder] = self.now()

    def release(self, holder: str) -> None:
        """Forget `holder`: it holds nothing and will not be waited for."""
        self._last_seen.pop(holder, None)

    def silence(self, holder: str) -> float:
        """Seconds since `holder` was last heard from; 0 for one never heard from, which has not lost anything yet."""
        seen = self._last_seen.get(holder)
        return 0.0 if seen is None else self.now() - seen

    def expired(self, holder: str) -> bool:
        """Whether `holder` has been silent for longer than the lease."""
        return self.silence(holder) > self.seconds

    def silent(self) -> list[tuple[str, float]]:
        """The holders silent for longer than the lease, each with its silence in seconds."""
        return [(holder, silence) for holder in list(self._last_seen) if (silence := self.silence(holder)) > self.seconds]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._last_seen))

    def __len__(self) -> int:
        return len(self._last_seen)


class Heartbeat:
    """A background thread that calls `beat` every `seconds` while the `with` block runs, so the holder keeps its lease.

    Args:
        beat: tells the lease holder's owner that this holder is still alive.
        seconds: how often (shorter than the lease).
        forgiven: the errors of a beat that the next beat tries again after (the owner may be restarting).
    """

    def __init__(self, beat: Callable[[], object], seconds: float,
                 forgiven: tuple[type[BaseException], ...] = ()) -> None:
        self.seconds = seconds
        self._beat, self._forgiven = beat, forgiven
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self._beat()
            except self._forgiven:
                pass  # the next beat tries again

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.seconds * 2)
