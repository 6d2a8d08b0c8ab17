"""tuner.progress: each trial's curve written after every epoch, and one progress line per finished trial."""

import json
import logging
import math

from tuner.progress import EpochHistory, SearchProgress
from tuner.rundir import Run


def write_finished(run, trial_id, status, val_loss):
    run.trial_dir(trial_id).mkdir(parents=True)
    run.trial_state(trial_id).write_text(json.dumps({"trial_id": trial_id, "status": status,
                                                     "hyperparameters": {"values": {"nodes": 4}}}))
    EpochHistory(run.history(trial_id), trial_id).on_epoch_end(0, {"val_loss": val_loss})


def test_the_curve_is_on_disk_after_every_epoch(tmp_path):
    path = tmp_path / "history" / "trial_0.json"
    history = EpochHistory(path, "0")
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 0.9, "val_loss": 0.7})
    first = json.loads(path.read_text())
    history.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.6})
    second = json.loads(path.read_text())
    assert [row["epoch"] for row in first["epochs"]] == [1] and [row["epoch"] for row in second["epochs"]] == [1, 2]
    assert second["trial_id"] == "0" and second["epochs"][1]["val_loss"] == 0.6 and second["seconds"] >= 0


def test_a_progress_line_counts_from_the_run_directory(tmp_path, caplog):
    run = Run(tmp_path)
    write_finished(run, "0", "COMPLETED", 0.5)
    progress = SearchProgress(run, total=4)  # as after a resume: one trial already finished
    assert progress.finished == 1 and progress.best == (0.5, "0")
    write_finished(run, "1", "COMPLETED", 0.4)
    with caplog.at_level(logging.INFO, logger="tuner.progress"):
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
    with caplog.at_level(logging.INFO, logger="tuner.progress"):
        progress.trial_ended("1", "FAILED", {"nodes": 4}, None, "too small")
    assert "FAILED: too small | best -" in caplog.records[-1].getMessage()
