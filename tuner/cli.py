"""The shared shell of every script: bad input becomes one `error:` line and exit 2, a failure one `error:` line and exit 1."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Callable

from tuner.errors import SearchFailedError, TunerUsageError
from tuner.names import for_terminal

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) is noise for this tool's users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# gRPC's C++ core logs its own lines (e.g. a port it cannot bind) beside the one `error:` line this tool prints.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def run_cli(body: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run a script's body and map its outcome to the exit-code contract.

    Args:
        body: parses `argv` and does the work; returns the exit code.
        argv: the arguments (default: sys.argv[1:]).

    Returns:
        0 on success, 2 on bad input (TunerUsageError), 1 when the work failed (SearchFailedError) or
        an unexpected exception reached here, 130 on Ctrl-C, or what `body` returned.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_EscapingFormatter("%(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])
    try:
        return body(argv)
    except TunerUsageError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {for_terminal(str(error))}", file=sys.stderr)
        return 2
    except SearchFailedError as error:
        if debug:
            traceback.print_exc()
        print(f"error: {for_terminal(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; run the same command again to continue.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (e.g. `| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        # A bug or a failure nobody foresaw: still one line, naming the exception's type so it can be
        # reported; the traceback is for --debug, as the README promises.
        if debug:
            traceback.print_exc()
        print(f"error: {for_terminal(f'{type(error).__name__}: {error}')}", file=sys.stderr)
        return 1


class _EscapingFormatter(logging.Formatter):
    """Log lines with control characters escaped: a file name cannot add lines or send terminal escapes."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return for_terminal(super().formatMessage(record))


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices with the C++ start-up logs silenced.

    TensorFlow 2.21 logs oneDNN and CUDA probing lines through absl before any log level
    applies (TF_CPP_MIN_LOG_LEVEL does not stop them), so a user's terminal would get half a
    dozen lines of noise, and an `error:` line would no longer be the only one on stderr.
    """
    from tuner.quiet import quiet_stderr  # here, not at the top: --help then never loads numpy

    with quiet_stderr():
        try:
            import tensorflow as tf
        except ImportError:
            raise TunerUsageError(
                f"TensorFlow is not installed in this Python ({sys.executable}); run pip install -r requirements.txt "
                f"(predict.py --runtime litert runs report.py's LiteRT export without it)."
            ) from None
        tf.config.list_physical_devices()
