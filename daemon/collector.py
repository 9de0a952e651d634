"""Python's cyclic garbage collector in a daemon that holds many long-lived objects.

A scheduler holds every active graph it owns in memory: at 10,000 graphs, some 300,000
objects. CPython's collector looks at all of them in a full (generation 2) collection, about
80 ms on this machine, and with its default thresholds it runs one every few seconds while
events flow (the objects of each graph that starts count towards the next): a pause in the
middle of the work, whose cost per event grows with the graphs held (DESIGN §3.5: 10,000
active graphs cost memory, not per-event time).

:class:`Collector` makes the automatic full collections rare (one per ``RARE_FULL``
collections of generation 1 instead of 10) and runs one itself from the daemon's periodic
work, every ``FULL_EVERY`` seconds: the same pause, at a known rate. Cyclic garbage (objects
freed only by the collector: an exception and its frames, say) waits at most that long;
everything else is freed by reference counting as before. The young generations are
collected as before.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

FULL_EVERY = 60.0      # seconds between the full collections the daemon runs itself
RARE_FULL = 1000       # generation-1 collections before an automatic full one (CPython: 10)


class Collector:
    def __init__(self, every: float = FULL_EVERY, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self.clock = clock
        self.last = clock()
        self.collections = 0           # full collections run by tick
        self.seconds = 0.0             # and the time they took

    def install(self) -> None:
        """Automatic full collections rare from now on (for the whole process)."""
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, RARE_FULL)
        self.last = self.clock()

    def tick(self) -> bool:
        """A full collection if one is due (True if it ran)."""
        if self.clock() - self.last < self.every:
            return False
        started = time.perf_counter()
        found = gc.collect()
        took = time.perf_counter() - started
        self.last = self.clock()
        self.collections += 1
        self.seconds += took
        if took > 0.5:
            logger.info("a full garbage collection took %.2fs (%d unreachable objects)",
                        took, found)
        return True
