"""The run directory: one Run names every file (layout), settings.json is a RunRecord (record), one search locks it (lock)."""

from __future__ import annotations

from tuner.rundir.layout import (
    FLOAT_FILE,
    INT8_FILE,
    METADATA_FILE,
    MODEL_FILE,
    RESULTS_FORMATS,
    SETTINGS_FILE,
    Run,
)
from tuner.rundir.lock import RunLock
from tuner.rundir.record import DatasetRecord, RunRecord
from tuner.rundir.runs import latest_run, load_run_dataset, open_run

__all__ = [
    "FLOAT_FILE", "INT8_FILE", "METADATA_FILE", "MODEL_FILE", "RESULTS_FORMATS", "SETTINGS_FILE", "DatasetRecord",
    "Run", "RunLock", "RunRecord", "latest_run", "load_run_dataset", "open_run",
]
