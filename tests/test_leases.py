"""tuner.execution.leases: who has been silent past the lease, on a clock the test moves, and the heartbeat thread."""

import threading

from tuner.execution.leases import Heartbeat, Leases


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.seconds = 500.0

    def __call__(self):
        return self.seconds


def test_a_holder_loses_its_lease_only_after_more_than_the_lease_of_silence():
    clock = Clock()
    leases = Leases(10, now=clock)
    leases.renew("w0")
    clock.seconds += 4
    leases.renew("w1")
    clock.seconds += 6
    assert leases.silence("w0") == 10 and not leases.expired("w0") and leases.silent() == []
    clock.seconds += 1
    assert leases.expired("w0") and leases.silent() == [("w0", 11)] and not leases.expired("w1")
    leases.renew("w0")
    assert leases.silent() == [] and sorted(leases) == ["w0", "w1"] and len(leases) == 2


def test_a_holder_never_heard_from_has_lost_nothing_and_a_released_one_is_forgotten():
    clock = Clock()
    leases = Leases(10, now=clock)
    assert leases.silence("stranger") == 0 and not leases.expired("stranger")
    leases.renew("w0")
    leases.release("w0")
    leases.release("w0")  # twice is harmless
    clock.seconds += 100
    assert leases.silent() == [] and not leases and list(leases) == []


def test_a_heartbeat_beats_until_its_block_ends_and_a_forgiven_error_does_not_stop_it():
    beats = []
    enough = threading.Event()

    def beat():
        beats.append(len(beats))
        if len(beats) == 1:
            raise ConnectionError("the owner is restarting")
        if len(beats) == 3:
            enough.set()

    heartbeat = Heartbeat(beat, 0.01, forgiven=(ConnectionError,))
    with heartbeat:
        assert enough.wait(timeout=30), "the heartbeat stopped after a forgiven error"
    assert not heartbeat._thread.is_alive()  # the block's end stopped it: it beats no more
