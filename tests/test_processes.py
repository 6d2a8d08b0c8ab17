"""tuner.execution.processes: how many child processes --workers means, their cores or GPU, their parent, retirement."""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuner.execution import processes
from tuner.execution.processes import (
    PARENT_PID_ENV,
    WORKER_MEMORY_BYTES,
    ChildProcess,
    Placement,
    Retirement,
    follow_parent,
    visible_gpus,
    worker_count,
)

ROOT = Path(__file__).resolve().parent.parent
PLENTY = 64 * 2**30


def test_auto_is_one_worker_per_core():
    assert worker_count("auto", [], cores=1, memory=PLENTY) == 1
    assert worker_count("auto", [], cores=2, memory=PLENTY) == 2
    assert worker_count("auto", [], cores=16, memory=PLENTY) == 16


def test_auto_starts_no_more_workers_than_memory_holds_and_always_one():
    assert worker_count("auto", [], cores=16, memory=int(3 * WORKER_MEMORY_BYTES)) == 3
    assert worker_count("auto", [], cores=16, memory=0) == 1


def test_auto_is_one_worker_per_gpu_and_a_number_is_taken_as_given():
    assert worker_count("auto", ["0", "1", "2"], cores=2, memory=PLENTY) == 3
    assert worker_count("3", [], cores=1, memory=PLENTY) == 3


def test_a_number_above_what_memory_holds_is_capped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="tuner.execution.processes"):
        assert worker_count("6", [], cores=16, memory=int(2.5 * WORKER_MEMORY_BYTES)) == 2
        assert worker_count("6", [], cores=16, memory=0) == 1
    first, second = caplog.messages
    assert first.startswith("--workers 6: starting 2 worker process(es) instead") and "available memory" in first
    assert "1.5 GB each" in first and second.startswith("--workers 6: starting 1 worker process(es)")
    caplog.clear()
    assert worker_count("2", [], cores=16, memory=int(2.5 * WORKER_MEMORY_BYTES)) == 2
    assert not caplog.messages


def test_the_users_cuda_visible_devices_are_shared_out(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []


def test_without_the_users_list_every_gpu_tensorflow_finds_is_shared_out(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    found = {"GPU": ["gpu a", "gpu b", "gpu c"]}  # what TensorFlow lists, faked so the test holds on any machine
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: found.get(kind, []))
    assert visible_gpus() == ["0", "1", "2"]
    found.clear()
    assert visible_gpus() == []


def test_children_share_the_cores_out_or_take_one_gpu_each(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    on_cpus = Placement(count=4, cores=10)
    assert {key: on_cpus.environment(0)[key] for key in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                                         "OMP_NUM_THREADS")} == {
        "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "2"}
    assert on_cpus.describe() == ", 2 thread(s) each"
    assert Placement(count=3, cores=2).describe() == ", 1 thread(s) each"  # never fewer than one
    on_gpus = Placement(count=3, gpus=("4", "7"), cores=8)
    assert [on_gpus.environment(index)["CUDA_VISIBLE_DEVICES"] for index in range(3)] == ["4", "7", "4"]
    assert on_gpus.describe() == " on GPUs 4, 7"
    child = on_cpus.environment(1)
    assert child[PARENT_PID_ENV] == str(os.getpid()) and child["PYTHONUNBUFFERED"] == "1"
    assert str(ROOT) in child["PYTHONPATH"].split(os.pathsep)  # `python -m tuner...` works from any folder


def test_the_users_thread_count_is_kept(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "3")
    assert Placement(count=4, cores=16).environment(0)["OMP_NUM_THREADS"] == "3"
    assert Placement(count=4, cores=16).describe() == ", 3 thread(s) each"


def test_the_placement_here_is_nothing_for_0_or_no_jobs_and_never_more_processes_than_jobs(monkeypatch):
    monkeypatch.setattr(processes, "visible_gpus", lambda: [])
    monkeypatch.setattr(processes, "available_cores", lambda: 6)
    monkeypatch.setattr(processes, "available_memory", lambda: PLENTY)
    assert Placement.here("0", 5).count == 0 and Placement.here("auto", 0).count == 0
    assert Placement.here("3", 1).count == 1 and Placement.here("2", 5).count == 2
    assert Placement.here("auto") == Placement(count=6, cores=6)
    assert Placement.here("auto", 4) == Placement(count=4, cores=6)


def test_retirement_counts_every_training_toward_the_limit():
    retirement = Retirement(limit=3)
    for _ in range(2):
        retirement.count()
    assert not retirement.due
    retirement.count()
    assert retirement.due
    never = Retirement(limit=0)
    for _ in range(100):
        never.count()
    assert not never.due


def test_a_child_is_relayed_under_its_name_and_its_last_error_kept(caplog):
    caplog.set_level(logging.INFO, logger="tuner.execution.processes")
    code = "import sys; print('hello'); print(); print('error: no data', file=sys.stderr); sys.exit(2)"
    child = ChildProcess("child0", [sys.executable, "-c", code], dict(os.environ))
    assert child.process.wait(timeout=60) == 2
    child.stop()
    _wait_for(lambda: len(child.tail) == 2)
    assert list(child.tail) == ["hello", "error: no data"] and child.last_error == "error: no data"
    assert "[child0] hello" in caplog.messages and "[child0] error: no data" in caplog.messages


def test_following_a_parent_is_nothing_without_one(monkeypatch):
    monkeypatch.delenv(PARENT_PID_ENV, raising=False)
    follow_parent()  # returns, and this process lives on
    # Without a launcher no parent-death signal is set (PR_GET_PDEATHSIG is 2 in <sys/prctl.h>).
    signal_number = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(signal_number))
    assert signal_number.value == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_whose_parent_is_gone_ends_itself():
    # The "parent" is pid 1: not the child's parent, as after a kill -9 of the real one.
    code = "from tuner.execution.processes import follow_parent; follow_parent(); print('still alive')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, PARENT_PID_ENV: "1"})
    assert result.returncode == -signal.SIGTERM and "still alive" not in result.stdout


def _wait_for(condition, timeout=30):
    # The relay thread reads the child's last lines after it ended; bounded, so a broken relay fails the test.
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()
