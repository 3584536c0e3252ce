"""maxReceivesPerSecond: one slot per 1/rate seconds per subscription."""

from __future__ import annotations

from pushgate.delivery.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slots_are_spaced_by_the_rate_per_subscription() -> None:
    clock = Clock()
    throttle = Throttle(max_wait=5.0, clock=clock)
    assert [throttle.wait(1, 2.0) for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert throttle.wait(2, 2.0) == 0.0  # another subscription has its own slots
    clock.now += 10  # idle: the next post goes at once, no burst is saved up
    assert throttle.wait(1, 2.0) == 0.0
    assert throttle.wait(1, 2.0) == 0.5


def test_a_slot_too_far_off_is_not_taken() -> None:
    clock = Clock()
    throttle = Throttle(max_wait=5.0, clock=clock)
    waits = [throttle.wait(7, 1.0) for _ in range(8)]
    assert waits == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, None, None]
    clock.now += 3
    assert throttle.wait(7, 1.0) == 3.0  # slot 6 s after the start, 3 s from now


def test_no_rate_no_wait() -> None:
    throttle = Throttle()
    assert [throttle.wait(1, None) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.wait(1, 0) == 0.0
