"""The one way the benchmarks run a step: as its own process from the project root, timed, stopping on failure."""

import subprocess
import sys
import time

from datasets import ROOT


def timed(command, log_path):
    """Run a command as its own process from the project root; its wall time in seconds and its stdout.

    Its stderr goes to `log_path`; a failed step stops the benchmark, naming the log.
    """
    started = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"benchmark step failed ({completed.returncode}): {' '.join(command)}; see {log_path}")
    return seconds, completed.stdout
