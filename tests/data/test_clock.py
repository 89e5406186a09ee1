"""The stack's clock: wall time by default; a simulation's clock runs on from where it is
set, never backwards, and every reading is later than the one before."""

from __future__ import annotations

import datetime as dt

import pytest

from revstack.agents.engine import add_person, people
from revstack.data import clock
from revstack.data.warehouse import Warehouse

START = dt.datetime(2026, 7, 2, 9, 0)


def test_readings_increase_and_the_clock_never_goes_back() -> None:
    c = clock.SimulatedClock(START)
    readings = [c.now() for _ in range(1000)]
    assert readings[0] >= START and readings == sorted(set(readings))
    c.set(START + dt.timedelta(days=3))
    assert c.now() >= START + dt.timedelta(days=3)
    with pytest.raises(ValueError, match="cannot go back"):
        c.set(START)


def test_what_the_stack_writes_carries_the_simulated_moment(wh: Warehouse) -> None:
    before = clock.now_utc()
    with clock.using(clock.SimulatedClock(START)):
        add_person(wh, "ana", "admin", by="ana")
        assert clock.now_utc() - START < dt.timedelta(minutes=1)
    after = clock.now_utc()
    assert before <= after  # the wall clock again once the block ends
    added = wh.read(people).row(0, named=True)
    assert START <= added["added_at"] < START + dt.timedelta(minutes=1)


def test_moving_to_a_moment_already_passed_leaves_the_clock_where_it_is() -> None:
    # The simulation moves the clock to "day 4, 16:00" after the week's work; on a large
    # company the work ran past it, and a peek followed by a set raced the running clock
    # by microseconds ("cannot go back"). advance_to decides under the clock's lock.
    c = clock.SimulatedClock(START)
    c.set(START + dt.timedelta(hours=5))
    for _ in range(2000):  # every call lands a moment just behind the running clock
        behind = c.peek()
        assert c.advance_to(behind) >= behind
    assert c.advance_to(START + dt.timedelta(days=2)) == START + dt.timedelta(days=2)
    assert c.now() >= START + dt.timedelta(days=2)
    moved = c.advance(dt.timedelta(minutes=3))
    assert moved >= START + dt.timedelta(days=2, minutes=3) and c.now() >= moved
    with pytest.raises(ValueError, match="never runs backwards"):
        c.advance(dt.timedelta(seconds=-1))
