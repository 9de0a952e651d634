"""The schedulers' retention: terminal graphs that ended longer ago than ``retention`` are
deleted with everything under them (:mod:`wgops.store.deletion`).

Off the hot path: a task of its own on its own timer, never in a message handler; each
database call on a thread of the executor with a connection of its own (not the scheduler's
group-commit thread, which its messages need), and the work in slices of ``SLICE``
top-level graphs, each deleted in transactions of a few hundred rows. One scheduler at a
time: the one holding the ``retention`` lease (:mod:`wgops.store.leases`), renewed between
slices; a holder that dies frees it when it lapses. Where deleted rows' space is reused only
after ``VACUUM`` (PostgreSQL, whose autovacuum may be off), the holder vacuums the tables it
deleted from, at most every ``VACUUM_EVERY`` seconds (or the retention, if shorter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from wgops.store import deletion, leases
from wgops.store.db import Store, in_thread

logger = logging.getLogger(__name__)

LEASE = "retention"
SLICE = 200                # top-level graphs per slice
MAX_INTERVAL = 60.0        # seconds between passes at most
VACUUM_EVERY = 60.0        # seconds between two vacuums at least (a shorter retention: it)


class Retention:
    """Prunes, every ``interval`` seconds, the graphs past ``retention`` (seconds)."""

    def __init__(self, store: Store, holder: str, retention: float, heartbeat: float,
                 clock: Callable[[], float]):
        self.store = store
        self.holder = holder
        self.retention = retention
        self.interval = max(heartbeat, min(retention / 4, MAX_INTERVAL))
        self.ttl = max(3 * self.interval, 30.0)
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self.vacuum_every = max(self.interval, min(VACUUM_EVERY, retention))
        self._vacuumed = float("-inf")
        self._deleted_since_vacuum = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="retention")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(Exception):
            await in_thread(self.store, leases.release, LEASE, self.holder, write=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - loop boundary: the next pass tries again
                logger.exception("retention pass")

    async def _lease(self) -> bool:
        return await in_thread(self.store, leases.take, LEASE, self.holder, self.ttl,
                               write=True)

    async def run_once(self, now: float | None = None) -> dict[str, int] | None:
        """One pass; None when another scheduler holds the lease, else what was removed."""
        now = self.clock() if now is None else now
        if not await self._lease():
            return None
        total = {"graphs": 0, "tasks": 0}
        while True:
            counts = await in_thread(self.store, deletion.prune, self.store, self.retention,
                                     None, False, now, SLICE, self.holder)
            total = {k: total[k] + counts[k] for k in total}
            if not counts["graphs"] or not await self._lease():
                break
        events = await in_thread(self.store, deletion.prune_events, self.store,
                                 now - self.retention)
        if total["graphs"] or events:
            logger.info("retention: deleted %d graphs, %d tasks, %d daemon events",
                        total["graphs"], total["tasks"], events)
            self._deleted_since_vacuum = True
        if self._deleted_since_vacuum and now - self._vacuumed >= self.vacuum_every:
            await in_thread(self.store, deletion.vacuum, self.store)
            self._vacuumed, self._deleted_since_vacuum = now, False
        return total
