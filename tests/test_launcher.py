"""tuner.execution.launcher: how many worker processes --workers means, and which GPU each one gets."""

import ctypes
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.execution.launcher import (
    LAUNCHER_PID_ENV,
    WORKER_MEMORY_BYTES,
    follow_launcher,
    visible_gpus,
    worker_count,
)

ROOT = Path(__file__).resolve().parent.parent
PLENTY = 64 * 2**30


def test_auto_is_one_worker_per_core():
    assert worker_count("auto", [], cores=1, available_memory=PLENTY) == 1
    assert worker_count("auto", [], cores=2, available_memory=PLENTY) == 2
    assert worker_count("auto", [], cores=16, available_memory=PLENTY) == 16


def test_auto_starts_no_more_workers_than_memory_holds_and_always_one():
    assert worker_count("auto", [], cores=16, available_memory=int(3 * WORKER_MEMORY_BYTES)) == 3
    assert worker_count("auto", [], cores=16, available_memory=0) == 1


def test_auto_is_one_worker_per_gpu_and_a_number_is_taken_as_given():
    assert worker_count("auto", ["0", "1", "2"], cores=2, available_memory=PLENTY) == 3
    assert worker_count("3", [], cores=1, available_memory=PLENTY) == 3


def test_a_number_above_what_memory_holds_is_capped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="tuner.execution.launcher"):
        assert worker_count("6", [], cores=16, available_memory=int(2.5 * WORKER_MEMORY_BYTES)) == 2
        assert worker_count("6", [], cores=16, available_memory=0) == 1
    first, second = caplog.messages
    assert first.startswith("--workers 6: starting 2 worker process(es) instead") and "available memory" in first
    assert "1.5 GB each" in first and second.startswith("--workers 6: starting 1 worker process(es)")
    caplog.clear()
    assert worker_count("2", [], cores=16, available_memory=int(2.5 * WORKER_MEMORY_BYTES)) == 2
    assert not caplog.messages


def test_the_users_cuda_visible_devices_are_shared_out(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    import tensorflow as tf  # every GPU this machine has (none on CI's), so the test holds on a GPU machine too

    assert visible_gpus() == [str(index) for index in range(len(tf.config.list_physical_devices("GPU")))]


def test_following_a_launcher_is_nothing_without_one(monkeypatch):
    monkeypatch.delenv(LAUNCHER_PID_ENV, raising=False)
    follow_launcher()  # returns, and this process lives on
    # Without a launcher no parent-death signal is set (PR_GET_PDEATHSIG is 2 in <sys/prctl.h>).
    signal_number = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(signal_number))
    assert signal_number.value == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_whose_launcher_is_gone_ends_itself():
    # The "launcher" is this test's shell: a pid that is not the worker's parent, as after a kill -9.
    code = "from tuner.execution.launcher import follow_launcher; follow_launcher(); print('still alive')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, LAUNCHER_PID_ENV: "1"})
    assert result.returncode == -signal.SIGTERM and "still alive" not in result.stdout
