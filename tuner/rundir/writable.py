"""Whether report.py can write what it writes into a run directory, checked before it trains anything."""

from __future__ import annotations

import os
from pathlib import Path

from tuner.errors import TunerUsageError
from tuner.rundir import RESULTS_FORMATS, Run


def report_targets(run: Run) -> tuple[list[Path], list[Path]]:
    """The folders report.py writes into or replaces, and the files it replaces, of a run (whether they exist or not).

    results.* and report.html go into the run's folder, and so does RUN/best (swapped in by renames); the plots go
    into RUN/plots; each confirm run into its RUN/confirm/trial_<id>/ and a TensorBoard folder that
    replaces any earlier one, as the retrain's RUN/tensorboard/best does.
    """
    folders = [run.root, run.plots, run.confirm_dir, *sorted(run.confirm_dir.glob("trial_*")), run.tensorboard,
               run.tensorboard / "confirm", run.retrain_tensorboard, run.best]
    return folders, [*(run.results(extension) for extension in RESULTS_FORMATS), run.html]


def refuse_unwritable(run: Run) -> None:
    """Refuse a run that report.py could not write into, before its confirm runs and retrain spend any time.

    os.access asks the kernel itself, so a read-only mount and an immutable folder (chattr +i) are
    refused for root too, not only a folder without write permission; a path that should be a
    folder but is a file is refused as well. Checked once, at the start: a folder made read-only
    while the report runs still fails at its write.

    Raises:
        TunerUsageError: naming the first path that cannot be written and what to do.
    """
    folders, files = report_targets(run)
    for path in folders:
        if path.exists() and not path.is_dir():
            problem = "is a file where report.py writes a folder"
        elif path.is_dir() and not os.access(path, os.W_OK):
            problem = "is not writable"
        else:
            continue
        raise _refusal(run, path, problem)
    for path in files:
        if path.is_dir():
            raise _refusal(run, path, "is a folder where report.py writes a file")
        if path.exists() and not os.access(path, os.W_OK):
            raise _refusal(run, path, "is not writable")


def _refusal(run: Run, path: Path, problem: str) -> TunerUsageError:
    return TunerUsageError(
        f"'{path}' {problem}, so report.py cannot write its results into run '{run.root}'; make the run directory "
        f"writable (e.g. chmod -R u+w '{run.root}'), or copy it somewhere writable and pass that --run-dir."
    )
