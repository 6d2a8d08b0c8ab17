"""tuner.execution.pool and confirming: report.py's confirm runs trained on the job pool, identical to one by one, and
safe to kill."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import report as report_script
from tests.helpers import copy_run, edit_json, one_error_line
from tuner.confirm.runs import read_confirm_run
from tuner.execution import processes
from tuner.report import rank_trials
from tuner.rundir import Run

REPORT = Path(report_script.__file__).resolve()


def _val_losses(run_dir):
    return {path.relative_to(run_dir).as_posix(): [row["val_loss"] for row in json.loads(path.read_text())["epochs"]]
            for path in sorted((run_dir / "confirm").rglob("*.json"))}


def test_the_pool_gives_the_same_confirm_runs_as_the_report_process(run, run_copy, tmp_path, caplog, monkeypatch):
    # A 2-core machine without a GPU, whatever this one is: 2 pool processes of 1 thread each.
    monkeypatch.setattr(processes, "available_cores", lambda: 2)
    monkeypatch.setattr(processes, "available_memory", lambda: 64 * 2**30)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    caplog.set_level(logging.INFO)
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "2", "1", "--no-retrain"]) == 0
    assert "Starting 2 confirm process(es), 1 thread(s) each." in caplog.text
    alone = copy_run(run, tmp_path / "alone")
    caplog.clear()
    assert report_script.main(["--run-dir", str(alone), "--confirm", "2", "1", "--no-retrain", "--workers", "0"]) == 0
    assert "confirm process" not in caplog.text and "confirm 2/2: trial" in caplog.text
    parallel = _val_losses(run_copy)
    assert list(parallel) == ["confirm/trial_0/seed_1.json", "confirm/trial_1/seed_1.json"]
    assert parallel == _val_losses(alone)


def test_a_failed_confirm_run_is_one_error_line_naming_it(run_copy, capsys):
    # Three conv+pool blocks do not fit the tiny run's 16x16 images: the worker's model cannot be built.
    edit_json(run_copy / "trials" / "trial_0" / "trial.json", lambda data: data["hyperparameters"]["values"].update(conv_layers=3))
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1", "--no-retrain"]) == 1
    one_error_line(capsys, "the confirm run of trial 0 seed 1 ({\"conv_layers\": 3, \"nodes\": 4, \"dense_layers\": 0}) failed in confirm0: ")
    assert not (run_copy / "confirm" / "trial_0" / "seed_1.json").exists()


def test_a_dataset_changed_since_the_search_is_refused_by_the_workers(run_copy, capsys):
    edit_json(run_copy / "settings.json", lambda data: data["dataset"].update(identity="0" * 16))
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1", "--no-retrain"]) == 2
    one_error_line(capsys, "changed since this run's search")


def test_workers_are_refused_as_search_py_refuses_them(capsys):
    for value in ("00", "+1", "-1", "1025", "many"):
        assert report_script.main(["--workers", value]) == 2
        one_error_line(capsys, "--workers must be auto or a number of processes from 0 to 1024")


@pytest.mark.slow
def test_kill_9_during_parallel_confirm_runs_leaves_no_worker_and_loses_no_run(run_copy):
    command = [sys.executable, str(REPORT), "--run-dir", str(run_copy), "--confirm", "2", "2", "--no-retrain"]
    report = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPORT.parent)
    records = run_copy / "confirm"
    deadline = time.monotonic() + 300
    children = []
    while not list(records.rglob("*.json")) and time.monotonic() < deadline:
        children = psutil.Process(report.pid).children(recursive=True) or children
        time.sleep(0.05)
    assert list(records.rglob("*.json")), "no confirm run finished in time"
    children = psutil.Process(report.pid).children(recursive=True) or children
    assert len(children) == 2
    os.kill(report.pid, signal.SIGKILL)
    report.wait()
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"orphan workers still running: {alive}"

    saved = {path: path.read_bytes() for path in records.rglob("*.json")}
    assert 1 <= len(saved) < 4
    # The rerun trains what is missing in its own process: what is checked here is what the kill left.
    again = subprocess.run([*command, "--workers", "0"], capture_output=True, text=True, cwd=REPORT.parent, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{4 - len(saved)} run(s) to train, {len(saved)} saved" in again.stderr
    assert all(path.read_bytes() == data for path, data in saved.items())  # nothing finished was trained again
    run = Run(run_copy)
    rows = {row.trial: row for row in rank_trials(run)[0]}
    assert sorted(path.relative_to(records).as_posix() for path in records.rglob("*.json")) == [
        f"trial_{trial}/seed_{index}.json" for trial in ("0", "1") for index in (1, 2)]
    assert all(read_confirm_run(run, rows[trial], index) is not None for trial in ("0", "1") for index in (1, 2))
