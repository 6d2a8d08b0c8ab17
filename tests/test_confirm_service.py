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
    """A chief's queue whose trials are done (or not), with the runs in `saved` saved already; queue.disk holds the
    saved runs' keys (a test adds to it as a worker's save would)."""
    disk = set(saved)
    queue = ConfirmQueue(lease_seconds, lambda: trials_done,
                         lambda job: None if (job["trial"], job["index"]) in disk else "not saved", hold_seconds,
                         now=clock or Clock())
    queue.disk = disk
    return queue


def _saved(job):
    """What train_confirm_run returns for a job: its record."""
    return {**job, "seed": 7, "epochs": [{"epoch": 1, "val_loss": 0.5, "val_accuracy": 0.75}], "seconds": 0.1}


def _finish(queue, worker, job):
    """A worker saves `job` and says so."""
    queue.disk.add((job["trial"], job["index"]))
    return queue.finish(worker, _saved(job))


def test_runs_go_out_once_the_trials_are_done_and_the_last_worker_is_told_done():
    queue = _queue()
    queue.expect("w0")
    queue.expect("w1")
    assert queue.next("w0") == {"wait": True} and not queue.finished()  # trials still running: nothing listed yet
    queue.list_jobs([A, B])
    assert queue.next("w0") == {"job": A} and queue.next("w1") == {"job": B}
    _finish(queue, "w1", B)
    # A may come back if w0 dies, so w1 waits instead of leaving.
    assert queue.next("w1") == {"wait": True} and not queue.finished()
    _finish(queue, "w0", A)
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
    _finish(queue, "w1", A)
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
    _finish(queue, "w1", B)
    assert queue.next("w1") == {"wait": True}
    _finish(queue, "w0", A)
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
        queue.disk.add((job["trial"], job["index"]))
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
    _finish(queue, "w0", B)
    assert queue.next("w0") == {"done": True} and queue.finished()


def test_a_late_beat_neither_revives_a_finished_run_nor_takes_one_another_worker_holds(caplog):
    clock = Clock()
    queue = _queue(lease_seconds=30, clock=clock)
    queue.list_jobs([A, B])
    assert queue.next("w0") == {"job": A}
    _finish(queue, "w0", A)
    queue.beat("w0", A)  # in flight when it finished
    assert queue.next("w0") == {"job": B}
    clock.advance(31)  # w0 falls silent: B goes to w1
    assert queue.next("w1") == {"job": B}
    queue.beat("w0", B)  # w0 was only slow: B stays w1's
    _finish(queue, "w1", B)
    assert queue.next("w1") == {"done": True} and queue.next("w0") == {"done": True} and queue.finished()


# The service checks its messages: what anyone reaching the chief's port may send.

import json  # noqa: E402
from dataclasses import replace  # noqa: E402

import pytest  # noqa: E402

from tuner.config import SearchSettings  # noqa: E402
from tuner.errors import TunerUsageError  # noqa: E402
from tuner.execution.distributed.joining import NOT_JOINED, Members, join_chief  # noqa: E402
from tuner.execution.distributed.messages import Refused  # noqa: E402
from tuner.execution.distributed.worker import _RetryingStub  # noqa: E402
from tuner.rundir import DatasetRecord, RunRecord  # noqa: E402

RECORD = RunRecord(SearchSettings(space="tutorial"),
                   DatasetRecord("/data/prepared", "abc123", ("cats", "dogs"), (28, 28, 1), 28, "grayscale"))


@pytest.fixture
def chief():
    """A chief's Workers and ConfirmRuns services over gRPC (its trials done, runs A and B listed): (queue, call)."""
    queue, members = _queue(), Members(RECORD)
    queue.list_jobs([A, B])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    members.add_to(server)
    queue.add_to(server, members)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def call(service, method, payload):
        """The raw call (bytes, or JSON for anything else): its answer, or the error's (code, details)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            return json.loads(channel.unary_unary(f"/{service}/{method}")(data, timeout=10))
        except grpc.RpcError as error:
            return error.code(), error.details()

    yield queue, call, f"127.0.0.1:{port}"
    channel.close()
    server.stop(grace=None)


def _lines(caplog):
    return [record.getMessage() for record in caplog.records if record.name.startswith("tuner")]


CONFIRM, WORKERS = "cnn_tuner.ConfirmRuns", "cnn_tuner.Workers"


@pytest.mark.parametrize("method, payload, says", [
    ("Next", b"\xff{not json", "not JSON"),
    ("Next", b"[" * 100000, "not JSON"),
    ("Next", [1, 2], "expected a JSON object, got list"),
    ("Next", {}, "missing field 'worker'"),
    ("Next", {"worker": 7}, "field 'worker' must be str, got int"),
    ("Next", {"worker": ""}, "field 'worker' is empty"),
    ("Beat", {"worker": "w0"}, "missing field 'job'"),
    ("Beat", {"worker": "w0", "job": {"trial": "0", "index": True, "hyperparameters": {}}}, "'index' must be int"),
    ("Beat", {"worker": "w0", "job": {"trial": 0, "index": 1, "hyperparameters": {}}}, "'trial' must be str"),
    ("Beat", {"worker": "w0", "job": {"trial": "0", "index": 0, "hyperparameters": {}}}, "index 0, expected 1 or more"),
    ("Finish", {"worker": "w0", "saved": None}, "field 'saved' must be dict, got NoneType"),
    ("Finish", {"worker": "w0", "saved": {"trial": "0", "index": 1}}, "missing field 'hyperparameters'"),
    ("Join", {"worker": "w0"}, "missing field 'record'"),
    ("Join", {"worker": "w0", "record": {"search": {}, "dataset": {}}}, "sent a run record that is not valid"),
], ids=lambda value: None if isinstance(value, str) and len(value) < 40 else "")
def test_a_malformed_call_gets_invalid_argument_and_one_log_line_never_a_traceback(chief, caplog, method, payload,
                                                                                     says):
    caplog.set_level(logging.INFO)
    queue, call, _ = chief
    call(WORKERS, "Join", {"worker": "w0", "record": RECORD.to_json()})
    caplog.clear()
    code, details = call(WORKERS if method == "Join" else CONFIRM, method, payload)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and says in details
    assert len(_lines(caplog)) == 1 and says in _lines(caplog)[0] and "Traceback" not in caplog.text
    assert call(CONFIRM, "Next", {"worker": "w0"}) == {"job": A}  # the chief goes on serving


def test_a_worker_that_has_not_joined_is_refused_and_a_joined_one_served(chief):
    queue, call, _ = chief
    code, details = call(CONFIRM, "Next", {"worker": "w0"})
    assert code == grpc.StatusCode.FAILED_PRECONDITION and NOT_JOINED in details
    assert call(WORKERS, "Join", {"worker": "w0", "record": RECORD.to_json()}) == {}
    assert call(CONFIRM, "Next", {"worker": "w0"}) == {"job": A}


def test_a_worker_whose_search_differs_is_refused_naming_what_differs(chief, caplog):
    caplog.set_level(logging.INFO)
    queue, call, address = chief
    other = replace(RECORD, search=replace(RECORD.search, tuner="random"))
    code, details = call(WORKERS, "Join", {"worker": "w9", "record": other.to_json()})
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "--tuner grid, not random" in details
    assert _lines(caplog) == [f"error: worker w9 refused: {details}; the search goes on without it."]
    assert call(CONFIRM, "Next", {"worker": "w9"})[0] == grpc.StatusCode.FAILED_PRECONDITION  # still unknown
    # The worker's side: one error naming the difference, as search.py prints it.
    other_data = replace(RECORD, dataset=replace(RECORD.dataset, identity="def456"))
    with pytest.raises(TunerUsageError, match=f"^the chief at {address} refuses this worker: .* another prepared dataset"):
        join_chief(address, "w9", other_data, timeout=10)
    join_chief(address, "w0", RECORD, timeout=10)  # the chief's own definition joins


def test_a_worker_of_another_release_is_refused_though_its_settings_match(chief):
    queue, call, _ = chief
    older = {**RECORD.to_json(), "format_version": 2}  # the release before blocks of two convolutions
    code, details = call(WORKERS, "Join", {"worker": "w8", "record": older})
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "(release of the tool)" in details
    assert "the search is run by a release that writes settings.json format_version 3, where the worker's writes 2; " \
           "run the same release of the tool on every machine" in details


def test_a_finish_for_a_run_never_handed_out_or_held_by_another_worker_is_refused_and_changes_nothing():
    clock = Clock()
    queue = _queue(lease_seconds=30, clock=clock)
    queue.list_jobs([A, B])
    stranger = {"trial": "5", "hyperparameters": {}, "index": 1}
    with pytest.raises(Refused, match="trial 5 seed 1 is not one this chief handed out") as refused:
        _finish(queue, "w0", stranger)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(Refused, match="other hyperparameters") as refused:
        queue.finish("w0", _saved({**A, "hyperparameters": {"nodes": 99}}))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert queue.next("w0") == {"job": A}
    clock.advance(31)  # w0 falls silent: A goes to w1
    assert queue.next("w1") == {"job": A}
    with pytest.raises(Refused, match="is worker w1's now"):
        queue.finish("w0", _saved(A))  # saved, but not counted for w0: A is w1's
    assert queue.next("w2") == {"job": B}
    _finish(queue, "w1", A)
    _finish(queue, "w2", B)
    assert [queue.next(worker) for worker in ("w0", "w1", "w2")] == [{"done": True}] * 3 and queue.finished()


def test_a_finish_whose_saved_record_is_missing_or_damaged_never_marks_the_run_done():
    problems = {("0", 1): "not saved"}
    queue = ConfirmQueue(60, lambda: True, lambda job: problems.get((job["trial"], job["index"])), now=Clock())
    queue.list_jobs([A])
    assert queue.next("w0") == {"job": A}
    with pytest.raises(Refused, match="trial 0 seed 1 does not count as done: not saved"):
        queue.finish("w0", _saved(A))
    problems[("0", 1)] = "'RUN/confirm/trial_0/seed_1.json' is damaged"
    with pytest.raises(Refused, match="is damaged"):
        queue.finish("w0", _saved(A))
    assert not queue.finished()
    # w0 asks again without a counted run: A goes back, and is handed out again (its damaged file is not "saved").
    assert queue.next("w1") == {"wait": True}
    assert queue.next("w0") == {"job": A}
    del problems[("0", 1)]  # saved again, whole
    queue.finish("w0", _saved(A))
    queue.finish("w0", _saved(A))  # a Finish made again after a cut-off call counts once
    assert queue.next("w0") == {"done": True} and queue.next("w1") == {"done": True} and queue.finished()


def test_a_beat_for_a_run_not_listed_is_refused_once_the_runs_are_listed():
    queue = _queue()
    queue.beat("w0", {"trial": "9", "hyperparameters": {}, "index": 1})  # before the listing: a restarted chief's claim
    queue.list_jobs([A])
    with pytest.raises(Refused, match="trial 5 seed 2 is not one this chief hands out"):
        queue.beat("w1", {"trial": "5", "hyperparameters": {}, "index": 2})
    assert queue.next("w1") == {"job": A}


class _Error(grpc.RpcError):
    def __init__(self, code, details=""):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def test_a_worker_goes_on_when_the_chief_does_not_count_its_finish(caplog):
    caplog.set_level(logging.WARNING)
    answers = [{"job": A}, {"done": True}]

    class Stub:
        def Next(self, request, **kwargs):
            return answers.pop(0)

        def Beat(self, request, **kwargs):
            return {}

        def Finish(self, request, **kwargs):
            raise _Error(grpc.StatusCode.FAILED_PRECONDITION, "the confirm run of trial 0 seed 1 is worker w1's now")

    assert confirm_for_chief(Stub(), "w0", _saved, heartbeat_seconds=60, idle_seconds=0) == DONE
    assert "The chief did not count the confirm run of trial 0 seed 1: " in caplog.text


def test_a_worker_joins_a_restarted_chief_again_and_calls_again():
    calls, joins = [], []

    class Stub:
        def Next(self, request):
            calls.append(request)
            if len(calls) == 1:
                raise _Error(grpc.StatusCode.FAILED_PRECONDITION, f"worker 'w0' {NOT_JOINED} (...)")
            return {"done": True}

    assert _RetryingStub(Stub(), rejoin=lambda: joins.append(1)).Next({"worker": "w0"}) == {"done": True}
    assert len(calls) == 2 and joins == [1]


def test_a_call_that_fails_inside_the_chief_is_internal_and_one_error_line_never_a_traceback(caplog):
    from tuner.execution.distributed.messages import Client, serve

    caplog.set_level(logging.INFO)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    serve(server, "test.Broken", {"Call": lambda request: request["missing"]})
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as error:
                Client(channel, "test.Broken", ("Call",)).Call({}, timeout=10)
        assert error.value.code() == grpc.StatusCode.INTERNAL
        [line] = _lines(caplog)
        assert line.startswith("error: test.Broken/Call from ") and line.endswith("failed: KeyError: 'missing'")
        assert "Traceback" not in caplog.text
    finally:
        server.stop(grace=None)
