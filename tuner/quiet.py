"""Native libraries' output kept off the terminal: libjpeg's warnings, TensorFlow's and LiteRT's start-up lines."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator

_stderr_lock = threading.Lock()
_stderr_state = {"depth": 0, "saved": -1, "silenced": False}


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null meanwhile; re-entrant and thread-safe.

    Native code writes there past Python's and its own log levels: libjpeg's warnings, TensorFlow's start-up lines.
    """
    if _stderr_state["silenced"]:
        yield
        return
    with _stderr_lock:  # nested and concurrent users share one redirection, so stderr always comes back
        if _stderr_state["depth"] == 0:
            try:
                sys.stderr.flush()
                saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
                _stderr_state["saved"] = saved
            except (OSError, ValueError, AttributeError):
                _stderr_state["saved"] = -1
        _stderr_state["depth"] += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_state["depth"] -= 1
            if _stderr_state["depth"] == 0 and _stderr_state["saved"] >= 0:
                os.dup2(_stderr_state["saved"], 2)
                os.close(_stderr_state["saved"])
                _stderr_state["saved"] = -1


def silence_stderr() -> None:
    """Point file descriptor 2 at /dev/null for the rest of this process (a decoding worker); quiet_stderr() then does nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # libjpeg warnings from thousands of files would flood the terminal
    os.close(devnull)
    _stderr_state["silenced"] = True
