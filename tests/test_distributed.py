"""Distributed search on loopback: a chief and workers as real processes, every wait bounded."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import finished_configurations
from tests.tiny_data import write_tiny_prepared
from tuner.rundir import Run
from tuner.trials import iter_trials

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    # Big enough that a trial of a few epochs lasts seconds, so a kill can land inside one.
    return write_tiny_prepared(tmp_path_factory.mktemp("prepared"), per_class=(300, 20, 20))


def free_address():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def search_argv(prepared, run_dir, epochs=1):
    # Six configurations: conv_layers 1, 2 x nodes 4, 8, 16.
    return ["--data", str(prepared), "--run-dir", str(run_dir), "--epochs", str(epochs), "--conv-layers", "1", "2",
            "--nodes", "4", "8", "16", "--dense-layers", "0", "--patience", "0"]


def start(argv, tuner_id=None):
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    env.pop("KERASTUNER_TUNER_ID", None)
    if tuner_id:
        env["KERASTUNER_TUNER_ID"] = tuner_id
    return subprocess.Popen([sys.executable, "search.py", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def finish(process, timeout=240):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"process did not finish in {timeout} s:\n{output[-3000:]}")
    return process.returncode, output


def assert_each_configuration_once(run_dir, count=6):
    counts = finished_configurations(run_dir)
    assert len(counts) == count and set(counts.values()) == {1}, counts
    assert Counter(record.status for record in iter_trials(Run(run_dir))) == {"COMPLETED": count}


def running_trial_files(run_dir):
    return [record for record in iter_trials(Run(run_dir)) if record.status == "RUNNING" and record.history]


def test_local_cluster_runs_each_configuration_once(prepared, tmp_path):
    code, output = finish(start(search_argv(prepared, tmp_path / "run") + ["--workers", "2"]))
    assert code == 0, output[-3000:]
    assert "[worker0]" in output and "[worker1]" in output
    assert_each_configuration_once(tmp_path / "run")


def test_a_worker_killed_mid_trial_loses_nothing(prepared, tmp_path):
    address, run_dir = free_address(), tmp_path / "run"
    argv = search_argv(prepared, run_dir, epochs=8)
    chief = start(argv + ["--role", "chief", "--oracle", address])
    victim = start(argv + ["--role", "worker", "--oracle", address], tuner_id="worker-victim")
    survivor = start(argv + ["--role", "worker", "--oracle", address], tuner_id="worker-survivor")
    try:
        # Kill the victim once both workers are inside a trial (each curve has a first epoch).
        wait_until(lambda: len(running_trial_files(run_dir)) >= 2, 120, "two trials under way")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        code, output = finish(survivor)
        assert code == 0, output[-3000:]
        code, output = finish(chief)
        assert code == 0, output[-3000:]
        assert "goes back to the queue" in output
    finally:
        for process in (chief, victim, survivor):
            process.kill()
    assert_each_configuration_once(run_dir)


def test_a_killed_chief_restarted_resumes_with_nothing_lost(prepared, tmp_path):
    address, run_dir = free_address(), tmp_path / "run"
    argv = search_argv(prepared, run_dir, epochs=2)
    chief = start(argv + ["--role", "chief", "--oracle", address])
    worker = start(argv + ["--role", "worker", "--oracle", address], tuner_id="worker0")
    try:
        wait_until(lambda: sum(finished_configurations(run_dir).values()) >= 2, 120, "two finished trials")
        chief.send_signal(signal.SIGKILL)
        chief.wait()
        chief = start(argv + ["--role", "chief", "--oracle", address])
        code, output = finish(worker)
        assert code == 0, output[-3000:]
        code, output = finish(chief)
        assert code == 0, output[-3000:]
    finally:
        chief.kill()
        worker.kill()
    assert_each_configuration_once(run_dir)


def test_a_worker_without_a_chief_says_so_in_bounded_time(prepared, tmp_path):
    started = time.monotonic()
    worker = start(search_argv(prepared, tmp_path / "run") + ["--role", "worker", "--oracle", free_address(),
                                                               "--connect-timeout", "3"])
    code, output = finish(worker, timeout=60)
    assert code == 2 and time.monotonic() - started < 60
    assert output.strip().splitlines()[-1].startswith("error: cannot reach the chief's oracle at 127.0.0.1:")
