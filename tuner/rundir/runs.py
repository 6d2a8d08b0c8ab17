"""Finding a run directory and what it was searched on: the latest run, a run and its record, its prepared dataset."""

from __future__ import annotations

import os
from pathlib import Path

from tuner.data.cache import PreparedDataset, dataset_identity, load_prepared
from tuner.config import DEFAULT_RUNS_DIR
from tuner.errors import TunerUsageError
from tuner.rundir.layout import SETTINGS_FILE, Run
from tuner.rundir.record import RunRecord


def latest_run(runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Run:
    """The run under `runs_dir` whose settings were written most recently."""
    candidates = sorted(Path(runs_dir).glob(f"*/{SETTINGS_FILE}"), key=lambda path: path.stat().st_mtime)
    if not candidates:
        raise TunerUsageError(
            f"found no run under '{runs_dir}/' (a folder with {SETTINGS_FILE}); run python search.py "
            f"first or pass --run-dir."
        )
    return Run(candidates[-1].parent)


def open_run(run_dir: str | os.PathLike | None) -> tuple[Run, RunRecord]:
    """Find a finished or running run directory and read its record.

    Args:
        run_dir: the run's folder; None means the most recent run under runs/.

    Returns:
        The run and its settings.json as a RunRecord.
    """
    run = Run(run_dir) if run_dir is not None else latest_run()
    if not run.root.is_dir():
        raise TunerUsageError(f"run directory '{run.root}' does not exist; pass the --run-dir of a search.")
    if not run.settings.exists():
        raise TunerUsageError(
            f"'{run.root}' is not a run directory (no {SETTINGS_FILE}); pass the --run-dir a search wrote."
        )
    record = run.read_record()
    if record is None:  # removed since the check above
        raise TunerUsageError(f"'{run.settings}' disappeared while reading it; pass the --run-dir a search wrote.")
    return run, record


def load_run_dataset(record: RunRecord) -> PreparedDataset:
    """Load the prepared dataset a run was searched on, refusing it if it changed since."""
    try:
        dataset = load_prepared(record.dataset.path)
    except TunerUsageError as error:
        raise TunerUsageError(f"the dataset this run was searched on cannot be loaded: {error}") from None
    identity = dataset_identity(dataset)
    if identity != record.dataset.identity:
        raise TunerUsageError(
            f"the prepared dataset at '{record.dataset.path}' changed since this run's search (identity {identity}, "
            f"the run recorded {record.dataset.identity}); prepare it again as before, or search it anew with --overwrite."
        )
    return dataset
