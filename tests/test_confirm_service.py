"""tuner.execution.distributed.confirm_service: the confirm runs a search's chief hands its workers once the trials are done."""

import logging
import threading
import time
from concurrent import futures

import grpc

from tuner.execution.distributed.confirm_service import DONE, RETIRE, ConfirmClient, ConfirmQueue, confirm_for_chief
from tuner.execution.processes import Retirement

A = {"trial": "0", "hyperparameters": {"nodes": 4}, "index": 1}
B = {"trial": "1", "hyperparameters": {"nodes": 8}, "index": 1}


class Clock:
    """A clock the test moves by hand, so that leases run out without sleeping."""

    def __init__(self):
        self.seconds = 1000.0

    def __call__(self):
        return self.seconds

    def advance(self, seconds):
        self.seconds += seconds


def _queue(lease_seconds=60, saved=(), trials_done=True, hold_seconds=0.0, clock=None):
    """A chief's queue whose trials are done (or not), with the runs in `saved` saved already."""
    return ConfirmQueue(lease_seconds, lambda: trials_done, lambda job: (job["trial"], job["index"]) in saved,
                        hold_seconds, now=clock or Clock())


def _saved(job):
    """What train_confirm_run returns for a job: its record."""
    return {**job, "seed": 7, "epochs": [{"epoch": 1, "val_loss": 0.5, "val_accuracy": 0.75}], "seconds": 0.1}


def test_runs_go_out_once_the_trials_are_done_and_the_last_worker_is_told_done():
    queue = _queue()
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
    queue = _queue()
    queue.list_jobs([A, B])
    assert queue.next("w0") == {"job": A}
    assert queue.next("w1") == {"job": B}
    assert queue.next("w0") == {"job": A}


def test_a_silent_workers_run_goes_to_another_worker(caplog):
    caplog.set_level(logging.WARNING)
    clock = Clock()
    queue = _queue(lease_seconds=30, clock=clock)
    queue.list_jobs([A])
    assert queue.next("w0") == {"job": A}
    clock.advance(30)
    assert queue.next("w1") == {"wait": True}  # a lease that has just run out is still held
    clock.advance(1)
    assert queue.next("w1") == {"job": A}
    assert "worker w0 silent" in caplog.text and "trial 0 seed 1 goes back to the queue" in caplog.text
    queue.finish("w1", _saved(A))
    assert queue.next("w1") == {"done": True} and queue.finished()


def test_a_worker_told_its_last_trial_that_never_asks_is_forgotten_after_the_lease():
    clock = Clock()
    queue = _queue(lease_seconds=30, clock=clock)
    queue.expect("w0")
    queue.list_jobs([])
    clock.advance(30)
    assert not queue.finished()
    clock.advance(1)
    assert queue.finished()


def test_a_restarted_chief_leaves_a_run_with_the_worker_that_beats_for_it():
    # The restarted chief lists A as missing (not saved yet), but w0 is still training it.
    queue = _queue()
    queue.list_jobs([A, B])
    queue.beat("w0", A)
    assert queue.next("w1") == {"job": B}
    queue.finish("w1", _saved(B))
    assert queue.next("w1") == {"wait": True}
    queue.finish("w0", _saved(A))
    assert queue.next("w1") == {"done": True} and queue.next("w0") == {"done": True} and queue.finished()


def test_a_run_beaten_for_before_the_listing_is_not_listed_again():
    queue = _queue()
    queue.beat("w0", A)
    queue.list_jobs([A, B])
    assert queue.next("w1") == {"job": B}


def test_workers_train_every_run_once_over_grpc(caplog):
    caplog.set_level(logging.INFO)
    queue = _queue()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    queue.add_to(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    trained, counts = [], {}
    # w1 retires after 2 runs, as --trials-per-process 3 would have it after one trial.
    retirements = {"w0": Retirement(0), "w1": Retirement(3)}
    retirements["w1"].count()
    lock = threading.Lock()

    def train(job):
        with lock:
            trained.append((job["trial"], job["index"]))
        time.sleep(0.05)
        return _saved(job)

    def work(worker):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            counts[worker] = confirm_for_chief(ConfirmClient(channel), worker, train, heartbeat_seconds=0.01,
                                               idle_seconds=0.01, retirement=retirements[worker])

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
        assert counts["w1"] == RETIRE and counts["w0"] == DONE
        # w1 retired after its 2 runs, holding none; w0 trained the other 4. w1's fresh process is still to ask.
        assert not queue.finished()
        assert queue.next("w1") == {"done": True} and queue.finished()
        assert "confirm 6/6: trial" in caplog.text
    finally:
        server.stop(grace=None)


def test_a_worker_is_sent_back_to_its_trials_while_the_chief_has_trials_left():
    # A restarted chief (maybe with a larger --max-trials) learns of its trials from the workers' next requests.
    assert _queue(trials_done=False).next("w0") == {"trials": True}
    assert _queue(trials_done=True).next("w0") == {"wait": True}


def test_a_restarted_chief_holds_the_runs_back_for_the_hold_then_hands_them_out():
    clock = Clock()
    queue = _queue(hold_seconds=30, clock=clock)
    queue.list_jobs([A, B])
    assert queue.next("w1") == {"wait": True}
    queue.beat("w0", A)  # w0 was training A across the restart
    clock.advance(29)
    assert queue.next("w1") == {"wait": True}
    clock.advance(1)
    assert queue.next("w1") == {"job": B}


def test_a_run_saved_by_a_worker_killed_before_it_said_so_is_not_handed_out_again():
    queue = _queue(saved={("0", 1)})
    queue.list_jobs([A, B])
    assert queue.next("w0") == {"job": B}
    queue.finish("w0", _saved(B))
    assert queue.next("w0") == {"done": True} and queue.finished()


def test_a_late_beat_neither_revives_a_finished_run_nor_takes_one_another_worker_holds(caplog):
    clock = Clock()
    queue = _queue(lease_seconds=30, clock=clock)
    queue.list_jobs([A, B])
    assert queue.next("w0") == {"job": A}
    queue.finish("w0", _saved(A))
    queue.beat("w0", A)  # in flight when it finished
    assert queue.next("w0") == {"job": B}
    clock.advance(31)  # w0 falls silent: B goes to w1
    assert queue.next("w1") == {"job": B}
    queue.beat("w0", B)  # w0 was only slow: B stays w1's
    queue.finish("w1", _saved(B))
    assert queue.next("w1") == {"done": True} and queue.next("w0") == {"done": True} and queue.finished()
