"""tuner.search.progress: one progress line per finished trial, counted from the run directory."""

import json
import logging
import math

from tuner.search.progress import SearchProgress
from tuner.rundir import Run
from tuner.model.training import CurveWriter


def write_finished(run, trial_id, status, val_loss):
    run.trial_dir(trial_id).mkdir(parents=True)
    run.trial_state(trial_id).write_text(json.dumps({"trial_id": trial_id, "status": status,
                                                     "hyperparameters": {"values": {"nodes": 4}}}))
    CurveWriter(run.history(trial_id), trial_id).on_epoch_end(0, {"val_loss": val_loss})


def test_a_progress_line_counts_from_the_run_directory(tmp_path, caplog):
    run = Run(tmp_path)
    write_finished(run, "0", "COMPLETED", 0.5)
    progress = SearchProgress(run, total=4)  # as after a resume: one trial already finished
    assert progress.finished == 1 and progress.best == (0.5, "0")
    write_finished(run, "1", "COMPLETED", 0.4)
    with caplog.at_level(logging.INFO, logger="tuner.search.progress"):
        progress.trial_ended("1", "COMPLETED", {"nodes": 4, "tuner/trial_id": "x"}, 0.4, None)
    line = caplog.records[-1].getMessage()
    assert line.startswith("[2/4] trial 1 nodes=4: val_loss 0.4000 | best 0.4000 (trial 1)") and "left" in line
    assert "tuner/" not in line


def test_a_failed_or_diverged_trial_never_becomes_the_best(tmp_path, caplog):
    run = Run(tmp_path)
    write_finished(run, "0", "COMPLETED", math.nan)
    write_finished(run, "1", "FAILED", 0.1)
    progress = SearchProgress(run)
    assert progress.finished == 2 and progress.best is None
    with caplog.at_level(logging.INFO, logger="tuner.search.progress"):
        progress.trial_ended("1", "FAILED", {"nodes": 4}, None, "too small")
    assert "FAILED: too small | best -" in caplog.records[-1].getMessage()
