"""Distributed search on loopback: a chief and workers as real processes, every wait bounded."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.helpers import finished_configurations
from tests.tiny_data import write_tiny_prepared
from tuner.rundir import Run
from tuner.trials.records import iter_trials

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


def search_argv(prepared, run_dir, epochs=1, prune="none", confirm=("0",)):
    # Six configurations of the tutorial's space: conv_layers 1, 2 x nodes 4, 8, 16 (its grid); no confirm runs
    # unless a test is about them.
    return ["--data", str(prepared), "--run-dir", str(run_dir), "--space", "tutorial", "--epochs", str(epochs), "--conv-layers", "1", "2",
            "--nodes", "4", "8", "16", "--dense-layers", "0", "--patience", "0", "--prune", prune, "--confirm", *confirm]


def start(argv, tuner_id=None, command=(), **popen):
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    env.pop("KERASTUNER_TUNER_ID", None)
    if tuner_id:
        env["KERASTUNER_TUNER_ID"] = tuner_id
    return subprocess.Popen([*command, sys.executable, "search.py", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


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


def finish_cleanly(*processes):
    """Wait for each process in turn, each of which must exit 0; the last one's output."""
    for process in processes:
        code, output = finish(process)
        assert code == 0, output[-3000:]
    return output


def assert_each_configuration_once(run_dir, count=6, statuses=("COMPLETED",)):
    counts = finished_configurations(run_dir)
    assert len(counts) == count and set(counts.values()) == {1}, counts
    ended = Counter(record.status for record in iter_trials(Run(run_dir)))
    assert sum(ended.values()) == count and set(ended) <= set(statuses), ended


def running_trial_files(run_dir):
    return [record for record in iter_trials(Run(run_dir)) if record.status == "RUNNING" and record.history]


def test_local_cluster_runs_each_configuration_once(prepared, tmp_path):
    code, output = finish(start(search_argv(prepared, tmp_path / "run") + ["--workers", "2"]))
    assert code == 0, output[-3000:]
    assert "[worker0]" in output and "[worker1]" in output
    assert_each_configuration_once(tmp_path / "run")


def test_workers_replaced_after_each_trial_lose_nothing(prepared, tmp_path):
    # The default search: pruning on, every core; each worker process is replaced after every trial.
    # Four configurations (--nodes 4 8): four trial processes, then one more per worker that finds none left.
    argv = search_argv(prepared, tmp_path / "run", epochs=3, prune="median") + [
        "--nodes", "4", "8", "--trials-per-process", "1", "--prune-warmup-trials", "2", "--prune-warmup-epochs", "1"]
    code, output = finish(start(argv))
    assert code == 0, output[-3000:]
    # Each replacement starts the worker afresh, and it joins again under its own name.
    assert output.count("[worker0] Worker worker0 joined") + output.count("[worker1] Worker worker1 joined") >= 5
    assert_each_configuration_once(tmp_path / "run", count=4, statuses=("COMPLETED", "PRUNED"))


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux) to run on one core")
def test_workers_auto_on_one_core_runs_one_worker(prepared, tmp_path):
    argv = search_argv(prepared, tmp_path / "run") + ["--nodes", "4"]  # two configurations: what counts is the start
    code, output = finish(start(argv, command=("taskset", "-c", "0")))
    assert code == 0, output[-3000:]
    assert "Starting 1 worker process(es)" in output and "[worker1]" not in output
    assert_each_configuration_once(tmp_path / "run", count=2)


def test_ctrl_c_stops_every_process_within_seconds_and_a_rerun_resumes(prepared, tmp_path):
    run_dir = tmp_path / "run"
    argv = search_argv(prepared, run_dir, epochs=8) + ["--nodes", "4"]  # two configurations, one per worker
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the launcher and its workers.
    launcher = start(argv, start_new_session=True)
    try:
        wait_until(lambda: len(running_trial_files(run_dir)) >= 1, 120, "a trial under way")
        children = psutil.Process(launcher.pid).children(recursive=True)
        os.killpg(launcher.pid, signal.SIGINT)
        code, output = finish(launcher, timeout=20)
        assert code == 130, output[-3000:]
        assert "run the same command again to continue" in output
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, alive
    finally:
        launcher.kill()
    code, output = finish(start(argv))
    assert code == 0, output[-3000:]
    assert "Resuming" in output
    assert_each_configuration_once(run_dir, count=2)


def confirm_records(run_dir):
    return {path: path.read_bytes() for path in Run(run_dir).confirm_records()}


def confirm_lines(output):
    return [line for line in output.splitlines() if " confirm " in f" {line}" and ": trial " in line]


def test_a_worker_then_the_launcher_killed_during_the_searchs_confirm_runs_lose_nothing_and_train_nothing_twice(
        prepared, tmp_path):
    run_dir = tmp_path / "run"
    argv = search_argv(prepared, run_dir, epochs=3, confirm=("2", "3"))
    launcher = start(argv)
    try:
        # A confirm run is under way once its TensorBoard folder exists: kill the worker on it.
        wait_until(lambda: list((run_dir / "tensorboard" / "confirm").glob("*")), 180, "a confirm run under way")
        assert not confirm_records(run_dir)
        psutil.Process(launcher.pid).children()[0].send_signal(signal.SIGKILL)
        # The launcher restarts it under its own id, and asking again gives its unfinished run back at once.
        wait_until(lambda: confirm_records(run_dir), 180, "a finished confirm run")
        children = psutil.Process(launcher.pid).children(recursive=True)
        launcher.send_signal(signal.SIGKILL)
        output, _ = launcher.communicate()
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"orphan workers still running: {alive}"
    finally:
        launcher.kill()
    assert "was killed (signal 9); restarting it" in output
    saved = confirm_records(run_dir)
    assert 1 <= len(saved) < 6, "the kill came after the last confirm run; make the runs longer"
    code, output_again = finish(start(argv))
    assert code == 0, output_again[-3000:]
    assert f"Confirming the top 2 configuration(s) with 3 more seed(s) each: {6 - len(saved)} run(s) to train, " \
           f"{len(saved)} saved." in output_again
    after = confirm_records(run_dir)
    assert all(after[path] == data for path, data in saved.items())  # nothing finished was trained again
    assert sorted(path.relative_to(run_dir / "confirm").as_posix() for path in after) == [
        f"trial_{trial}/seed_{index}.json" for trial in sorted({path.parent.name[6:] for path in after})
        for index in (1, 2, 3)]
    # No run was finished twice ("trial 3 seed 1"); the kill may fall between a run's save and its line, so one may
    # lack its line.
    finished = [line.split(": ")[1] for line in confirm_lines(output + output_again)]
    assert len(finished) == len(set(finished)) >= 5, finished
    assert_each_configuration_once(run_dir)
    assert f"confirm runs: 6 saved in {run_dir / 'confirm'}" in output_again


def test_a_chief_killed_during_the_confirm_runs_and_restarted_leaves_each_run_to_its_worker(prepared, tmp_path):
    # Two configurations (--nodes 4), then their best one under 2 more seeds: one run per worker, long enough
    # (8 epochs) to be under way when the chief is killed and, often, still when it is back.
    address, run_dir = free_address(), tmp_path / "run"
    argv = search_argv(prepared, run_dir, epochs=8, confirm=("1", "2")) + ["--nodes", "4"]
    # A short lease: the restarted chief holds the confirm runs back for one lease before handing any out.
    chief_argv = argv + ["--role", "chief", "--oracle", address, "--lease-seconds", "6"]
    chief = start(chief_argv)
    workers = [start(argv + ["--role", "worker", "--oracle", address], tuner_id=f"worker{index}") for index in (0, 1)]
    try:
        wait_until(lambda: len(list((run_dir / "tensorboard" / "confirm").glob("*"))) >= 2, 180,
                   "two confirm runs under way")
        chief.send_signal(signal.SIGKILL)
        chief.wait()
        saved = confirm_records(run_dir)
        assert len(saved) < 2, "the kill came after the last confirm run; make the runs longer"
        chief = start(chief_argv)
        for worker in workers:
            code, output = finish(worker)
            assert code == 0, output[-3000:]
        code, output = finish(chief)
        assert code == 0, output[-3000:]
    finally:
        for process in (chief, *workers):
            process.kill()
    # The restarted chief sent the workers back to their trials (none left), listed what was missing, and left
    # each run with the worker training it (it beat for it): no run was finished twice, none is lost.
    finished = [line.split(": ")[1] for line in confirm_lines(output)]
    assert len(finished) == len(set(finished)), output[-3000:]
    after = confirm_records(run_dir)
    assert len(after) == 2 and all(after[path] == data for path, data in saved.items())
    assert_each_configuration_once(run_dir, count=2)


def test_a_worker_killed_mid_trial_loses_nothing(prepared, tmp_path):
    address, run_dir = free_address(), tmp_path / "run"
    argv = search_argv(prepared, run_dir, epochs=8)
    # A short lease, so the victim's trial goes back to the queue soon after the kill.
    chief = start(argv + ["--role", "chief", "--oracle", address, "--lease-seconds", "6"])
    victim = start(argv + ["--role", "worker", "--oracle", address], tuner_id="worker-victim")
    survivor = start(argv + ["--role", "worker", "--oracle", address], tuner_id="worker-survivor")
    try:
        # Kill the victim once both workers are inside a trial (each curve has a first epoch).
        wait_until(lambda: len(running_trial_files(run_dir)) >= 2, 120, "two trials under way")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        output = finish_cleanly(survivor, chief)
        assert "goes back to the queue" in output
    finally:
        for process in (chief, victim, survivor):
            process.kill()
    assert_each_configuration_once(run_dir)


def test_a_killed_chief_restarted_resumes_with_nothing_lost(prepared, tmp_path):
    address, run_dir = free_address(), tmp_path / "run"
    argv = search_argv(prepared, run_dir, epochs=2) + ["--nodes", "4", "8"]  # four configurations, two before the kill
    chief = start(argv + ["--role", "chief", "--oracle", address])
    worker = start(argv + ["--role", "worker", "--oracle", address], tuner_id="worker0")
    try:
        wait_until(lambda: sum(finished_configurations(run_dir).values()) >= 2, 120, "two finished trials")
        chief.send_signal(signal.SIGKILL)
        chief.wait()
        chief = start(argv + ["--role", "chief", "--oracle", address])
        finish_cleanly(worker, chief)
    finally:
        chief.kill()
        worker.kill()
    assert_each_configuration_once(run_dir, count=4)


def test_a_worker_without_a_chief_says_so_in_bounded_time(prepared, tmp_path):
    worker = start(search_argv(prepared, tmp_path / "run") + ["--role", "worker", "--oracle", free_address(),
                                                               "--connect-timeout", "3"])
    code, output = finish(worker, timeout=60)  # the bound: a worker still waiting after it fails the test
    assert code == 2
    assert output.strip().splitlines()[-1].startswith("error: cannot reach the chief's oracle at 127.0.0.1:")


def test_a_worker_of_another_search_is_refused_before_it_writes_and_the_chiefs_run_finishes(prepared, tmp_path):
    # One configuration, one epoch: the chief's run is only there to be kept intact.
    address, run_dir = free_address(), tmp_path / "run"
    argv = search_argv(prepared, run_dir) + ["--conv-layers", "1", "--nodes", "4"]
    chief = start(argv + ["--role", "chief", "--oracle", address])
    try:
        for other, differs in ((["--space", "modern", "--epochs", "2"], "--space"), (["--tuner", "random"], "--tuner")):
            foreign = tmp_path / f"foreign{differs}"
            code, output = finish(start(search_argv(prepared, foreign) + other + [
                "--role", "worker", "--oracle", address, "--connect-timeout", "60"], tuner_id="foreign"), timeout=120)
            errors = [line for line in output.splitlines() if line.startswith("error:")]
            assert code == 2 and len(errors) == 1 and errors == output.strip().splitlines()[-1:], output[-3000:]
            assert errors[0].startswith(f"error: the chief at {address} refuses this worker: ") and differs in errors[0]
            assert not foreign.exists() and "Traceback" not in output
        worker = start(argv + ["--role", "worker", "--oracle", address], tuner_id="worker0")
        output = finish_cleanly(worker, chief)
    finally:
        chief.kill()
    refused = [line for line in output.splitlines() if line.startswith("error: worker foreign refused: ")]
    assert len(refused) == 2 and "--space" in refused[0] and "--tuner" in refused[1], output[-3000:]
    assert "Traceback" not in output
    assert_each_configuration_once(run_dir, count=1)


def test_a_worker_pointed_at_something_else_is_told_it_is_not_a_chief(prepared, tmp_path):
    from concurrent import futures

    import grpc

    # A plain TCP listener (not gRPC) and a gRPC server without KerasTuner's oracle.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        code, output = finish(start(search_argv(prepared, tmp_path / "run") + [
            "--role", "worker", "--oracle", address, "--connect-timeout", "3"]), timeout=60)
    assert code == 2 and output.strip().splitlines()[-1].startswith(f"error: something listens at {address} but does not speak gRPC")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        code, output = finish(start(search_argv(prepared, tmp_path / "run") + [
            "--role", "worker", "--oracle", f"127.0.0.1:{port}", "--connect-timeout", "3"]), timeout=60)
    finally:
        server.stop(0)
    assert code == 2 and output.strip().splitlines()[-1] == (
        f"error: the gRPC server at 127.0.0.1:{port} is not a search.py chief (UNIMPLEMENTED); fix --oracle to the chief's HOST:PORT.")


def test_a_chief_whose_port_is_taken_says_so_in_one_line(prepared, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        code, output = finish(start(search_argv(prepared, tmp_path / "run") + ["--role", "chief", "--oracle", address]),
                              timeout=120)
    lines = output.strip().splitlines()
    assert code == 2 and lines[-1] == (f"error: the chief cannot listen on {address} (port in use or address not local); "
                                       f"pick another --oracle port.")
    assert not any("Traceback" in line or "grpc" in line.lower() for line in lines), output


def test_a_workers_call_cut_off_by_a_chief_restart_is_made_again():
    import threading
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos

    from tuner.execution.distributed.worker import _RetryingStub

    address, calls, servers = free_address(), [], []

    class SlowFirstCall(protos.get_service_grpc().OracleServicer):
        def GetSpace(self, request, context):
            calls.append(time.monotonic())
            if len(calls) == 1:
                time.sleep(5)  # in flight when the "chief" below stops
            return protos.get_service().GetSpaceResponse()

    def serve():
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        protos.get_service_grpc().add_OracleServicer_to_server(SlowFirstCall(), server)
        server.add_insecure_port(address)
        server.start()
        servers.append(server)

    def restart():
        while not calls:
            time.sleep(0.05)
        servers[0].stop(0)  # the chief dies mid-call...
        time.sleep(0.5)
        serve()  # ...and comes back on the same address

    serve()
    channel = grpc.insecure_channel(address)
    try:
        restarter = threading.Thread(target=restart)
        restarter.start()
        _RetryingStub(protos.get_service_grpc().OracleStub(channel)).GetSpace(
            protos.get_service().GetSpaceRequest(), wait_for_ready=True, timeout=30)
        restarter.join()
        assert len(calls) == 2  # answered by the restarted server
    finally:
        channel.close()
        for server in servers:
            server.stop(0)
