"""The scheduler's dispatch queue and its named intervals, as pure logic (no broker, no DB)."""

from __future__ import annotations

from wgops.daemon.dispatch import DispatchQueue
from wgops.daemon.watchdog import Every


def tasks(items: list[tuple[int, int, int, int]]) -> list[int]:
    return [item[3] for item in items]


def test_higher_priority_first_then_first_come_first_served() -> None:
    q = DispatchQueue()
    q.push(0, graph=1, task=10)
    q.push(5, graph=2, task=20)
    q.push(0, graph=1, task=11)
    q.push(5, graph=2, task=21)
    assert tasks(q.take(10, lambda item: True)) == [20, 21, 10, 11]
    assert not q.has_ready and len(q) == 0


def test_take_stops_at_the_limit_and_drops_what_is_not_wanted() -> None:
    q = DispatchQueue()
    for task in range(6):
        q.push(0, graph=1, task=task)
    assert tasks(q.take(2, lambda item: item[3] % 2 == 1)) == [1, 3]
    assert tasks(q.take(10, lambda item: True)) == [4, 5]      # 0 and 2 were dropped


def test_retries_become_due_in_time_order() -> None:
    q = DispatchQueue()
    q.retry_at(30.0, graph=1, task=3)
    q.retry_at(10.0, graph=1, task=1)
    q.retry_at(20.0, graph=2, task=2)
    assert q.next_retry == 10.0
    assert q.due(5.0) == []
    assert q.due(20.0) == [(1, 1), (2, 2)]
    assert q.next_retry == 30.0 and len(q) == 1
    assert q.due(100.0) == [(1, 3)] and q.next_retry is None


def test_capped_and_unsent_items_come_back_in_their_order() -> None:
    q = DispatchQueue()
    q.push(1, graph=1, task=1)
    q.push(1, graph=1, task=2)
    q.push(9, graph=2, task=3)
    first, second, third = q.take(3, lambda item: True)
    q.cap("licence", second)
    q.cap("licence", first)
    q.unsent([third])
    assert not q.has_ready and q.has_capped and len(q) == 3
    assert q.uncap() and not q.has_capped and not q.uncap()
    assert q.resend() and not q.resend()
    assert tasks(q.take(10, lambda item: True)) == [3, 1, 2]   # priority 9 first, then FIFO


def test_every_is_due_once_per_interval_on_the_callers_clock() -> None:
    every = Every(3.0)
    assert [t for t in (0.0, 1.0, 2.9, 3.0, 4.0, 6.5, 6.6) if every.due(t)] == [0.0, 3.0, 6.5]
