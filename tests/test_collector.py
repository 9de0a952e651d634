"""The scheduler's garbage collector: full collections rare on their own, run at a known rate
from the periodic work, and cyclic garbage still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from wgops.daemon.collector import RARE_FULL, Collector


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The process's thresholds, restored afterwards (the tests share a process)."""
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def full_collections() -> int:
    return gc.get_stats()[2]["collections"]


def test_installed_full_collections_are_rare_and_the_young_ones_unchanged(thresholds):
    Collector().install()
    assert gc.get_threshold() == (thresholds[0], thresholds[1], RARE_FULL)
    assert RARE_FULL > 10 * thresholds[2]


def test_a_full_collection_runs_from_tick_once_it_is_due_and_not_before(thresholds):
    clock = Clock()
    collector = Collector(every=60.0, clock=clock)
    collector.install()
    gc.disable()                   # no automatic collection between the counts below
    try:
        before = full_collections()
        clock.now += 59.9
        assert not collector.tick()
        assert full_collections() == before
        clock.now += 0.2
        assert collector.tick()
        assert full_collections() == before + 1
        assert collector.collections == 1 and collector.seconds > 0
        assert not collector.tick()            # the next one a whole period later
        clock.now += 60.0
        assert collector.tick()
        assert full_collections() == before + 2
    finally:
        gc.enable()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_cyclic_garbage_is_freed_by_the_periodic_collection(thresholds):
    clock = Clock()
    collector = Collector(every=60.0, clock=clock)
    collector.install()
    gc.disable()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a                # a cycle: reference counting cannot free it
        freed = []
        weakref.finalize(a, freed.append, "a")
        del a, b
        assert not collector.tick() and freed == []
        clock.now += 60.0
        assert collector.tick()
        assert freed == ["a"]
    finally:
        gc.enable()
