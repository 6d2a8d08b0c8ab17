"""The shared shell of every script: bad input becomes one `error:` line and exit 2."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Callable

from tuner.errors import SearchFailedError, TunerUsageError

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) is noise for this tool's users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_cli(body: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run a script's body and map its outcome to the exit-code contract.

    Args:
        body: parses `argv` and does the work; returns the exit code.
        argv: the arguments (default: sys.argv[1:]).

    Returns:
        0 on success, 2 on bad input (TunerUsageError), 1 when the work failed (SearchFailedError),
        130 on Ctrl-C, or what `body` returned.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return body(argv)
    except TunerUsageError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SearchFailedError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: what was finished is saved; run the same command again to resume.", file=sys.stderr)
        return 130
