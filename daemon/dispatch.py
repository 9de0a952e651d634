"""The scheduler's dispatch queue: which ready tasks go out next, and which wait, and why.

Pure logic, no I/O, time passed in: the scheduler pushes the tasks that became ready, takes
them in batches (highest graph priority first, first come first served within a priority) and
puts back those that could not go yet:

* **ready**: to be dispatched at the next flush;
* **capped**: held back by a pool cap; they go back to ready when room may have appeared (a
  task of the pool ended, the cap changed) — the database decides again;
* **retrying**: a failed attempt's retry, due at a time; it becomes ready then;
* **unsent**: queued in the database, but their message could not be published (broker
  away); they go back to ready at the next heartbeat.

An item names a task by (graph, task) ids only: the scheduler checks, as it takes a batch,
that it still holds that graph and that the task is still to be dispatched.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable

Item = tuple[int, int, int, int]            # (-priority, sequence, graph, task)


class DispatchQueue:
    def __init__(self) -> None:
        self._ready: list[Item] = []
        self._capped: dict[str, list[Item]] = {}
        self._retrying: list[tuple[float, int, int, int]] = []   # (when, sequence, graph, task)
        self._unsent: list[Item] = []
        self._sequence = itertools.count()

    # -- in -----------------------------------------------------------------------------------

    def push(self, priority: int, graph: int, task: int) -> None:
        """A task is ready to be dispatched."""
        heapq.heappush(self._ready, (-priority, next(self._sequence), graph, task))

    def retry_at(self, when: float, graph: int, task: int) -> None:
        """A task is to be dispatched again at ``when``."""
        heapq.heappush(self._retrying, (when, next(self._sequence), graph, task))

    def cap(self, pool: str, item: Item) -> None:
        """``item`` was held back by ``pool``'s cap."""
        self._capped.setdefault(pool, []).append(item)

    def unsent(self, items: Iterable[Item]) -> None:
        """These were queued in the database, but their messages were not published."""
        self._unsent.extend(items)

    # -- out ----------------------------------------------------------------------------------

    def take(self, limit: int, wanted: Callable[[Item], bool]) -> list[Item]:
        """Up to ``limit`` ready items, in order, for which ``wanted`` is true (the others
        are dropped: their graph or task moved on)."""
        out: list[Item] = []
        while self._ready and len(out) < limit:
            item = heapq.heappop(self._ready)
            if wanted(item):
                out.append(item)
        return out

    def due(self, now: float) -> list[tuple[int, int]]:
        """The (graph, task) retries due at ``now``, taken off the queue (the scheduler pushes
        them with their graph's current priority)."""
        out = []
        while self._retrying and self._retrying[0][0] <= now:
            _, _, graph, task = heapq.heappop(self._retrying)
            out.append((graph, task))
        return out

    def uncap(self) -> bool:
        """Every capped item back to ready; whether there was any."""
        moved = False
        for items in self._capped.values():
            for item in items:
                heapq.heappush(self._ready, item)
            moved = moved or bool(items)
            items.clear()
        return moved

    def resend(self) -> bool:
        """Every unsent item back to ready; whether there was any."""
        for item in self._unsent:
            heapq.heappush(self._ready, item)
        moved = bool(self._unsent)
        self._unsent.clear()
        return moved

    # -- questions ----------------------------------------------------------------------------

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    @property
    def next_retry(self) -> float | None:
        """When the earliest retry is due (None: none waits)."""
        return self._retrying[0][0] if self._retrying else None

    @property
    def has_capped(self) -> bool:
        return any(self._capped.values())

    def __len__(self) -> int:
        return (len(self._ready) + len(self._retrying) + len(self._unsent)
                + sum(len(items) for items in self._capped.values()))

