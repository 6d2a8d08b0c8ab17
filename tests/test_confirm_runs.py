"""tuner.distributed.confirm_runs: the confirm runs a search's chief hands its workers once the trials are done."""

import logging
import threading
import time
from concurrent import futures

import grpc

from tuner.distributed.confirm_runs import ConfirmClient, ConfirmQueue, confirm_for_chief

A = {"trial": "0", "hyperparameters": {"nodes": 4}, "index": 1}
B = {"trial": "1", "hyperparameters": {"nodes": 8}, "index": 1}


def _saved(job):
    """What train_confirm_run returns for a job: its record."""
    return {**job, "seed": 7, "epochs": [{"epoch": 1, "val_loss": 0.5, "val_accuracy": 0.75}], "seconds": 0.1}


def test_runs_go_out_once_the_trials_are_done_and_the_last_worker_is_told_done():
    queue = ConfirmQueue(lease_seconds=60)
    queue.expect("w0")
    queue.expect("w1")
    assert queue.next("w0") == {"wait": True} and not queue.finished()  # trials still running: nothing listed yet
    queue.list_jobs([A, B])
    assert queue.next("w0") == {"job": A} and queue.next("w1") == {"job": B}
    queue.finish("w1", _saved(B))
    # A may come back if w0 dies, so w1 waits instead of leaving.
    assert queue.next("w1") == {"wait": True} and not queue.finished()
    queue.finish("w0", _saved(A))
    assert queue.next("w1") == {"done": True}
    assert not queue.finished()  # w0 has not been told yet: the chief must still answer it
    assert queue.next("w0") == {"done": True} and queue.finished()


def test_a_worker_that_asks_again_without_finishing_gives_its_run_back():
    # A worker killed mid-run is restarted under its own id: its next call means the run it held is lost.
    queue = ConfirmQueue(lease_seconds=60)
    queue.list_jobs([A, B])
    assert queue.next("w0") == {"job": A}
    assert queue.next("w1") == {"job": B}
    assert queue.next("w0") == {"job": A}


def test_a_silent_workers_run_goes_to_another_worker(caplog):
    caplog.set_level(logging.WARNING)
    queue = ConfirmQueue(lease_seconds=0.05)
    queue.list_jobs([A])
    assert queue.next("w0") == {"job": A}
    time.sleep(0.1)
    assert queue.next("w1") == {"job": A}
    assert "worker w0 silent" in caplog.text and "trial 0 seed 1 goes back to the queue" in caplog.text
    queue.finish("w1", _saved(A))
    assert queue.next("w1") == {"done": True} and queue.finished()


def test_a_worker_told_its_last_trial_that_never_asks_is_forgotten_after_the_lease():
    queue = ConfirmQueue(lease_seconds=0.05)
    queue.expect("w0")
    queue.list_jobs([])
    assert not queue.finished()
    time.sleep(0.1)
    assert queue.finished()


def test_a_restarted_chief_leaves_a_run_with_the_worker_that_beats_for_it():
    # The restarted chief lists A as missing (not saved yet), but w0 is still training it.
    queue = ConfirmQueue(lease_seconds=60)
    queue.list_jobs([A, B])
    queue.beat("w0", A)
    assert queue.next("w1") == {"job": B}
    queue.finish("w1", _saved(B))
    assert queue.next("w1") == {"wait": True}
    queue.finish("w0", _saved(A))
    assert queue.next("w1") == {"done": True} and queue.next("w0") == {"done": True} and queue.finished()


def test_a_run_beaten_for_before_the_listing_is_not_listed_again():
    queue = ConfirmQueue(lease_seconds=60)
    queue.beat("w0", A)
    queue.list_jobs([A, B])
    assert queue.next("w1") == {"job": B}


def test_workers_train_every_run_once_over_grpc(caplog):
    caplog.set_level(logging.INFO)
    queue = ConfirmQueue(lease_seconds=60)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    queue.add_to(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    trained, counts = [], {}
    lock = threading.Lock()

    def train(job):
        with lock:
            trained.append((job["trial"], job["index"]))
        time.sleep(0.05)
        return _saved(job)

    def work(worker):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            counts[worker] = confirm_for_chief(ConfirmClient(channel), worker, train, heartbeat_seconds=0.01,
                                               idle_seconds=0.01)

    try:
        for worker in ("w0", "w1"):
            queue.expect(worker)
        threads = [threading.Thread(target=work, args=(worker,)) for worker in ("w0", "w1")]
        for thread in threads:
            thread.start()
        time.sleep(0.1)  # both wait while the "trials" run
        jobs = [{"trial": str(trial), "hyperparameters": {}, "index": index} for trial in range(3) for index in (1, 2)]
        queue.list_jobs(jobs)
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(trained) == [(str(trial), index) for trial in range(3) for index in (1, 2)]
        assert sum(counts.values()) == 6 and queue.finished()
        assert "confirm 6/6: trial" in caplog.text
    finally:
        server.stop(grace=None)
