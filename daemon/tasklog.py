"""The worker's side of task logs: one bounded log per running attempt, written to the store
off the hot path.

Each attempt the worker runs gets an :class:`AttemptLog` (a
:class:`~wgops.daemon.capture.TailBuffer` of ``max_log_bytes`` characters), fed by its executor:
the frames of its slot process, the routed prints of an ``async`` task, the pipes of a shell
command. :class:`TaskLogs` writes the logs that changed, at most once per ``interval`` each, on
the worker's heartbeat (one group-committed write for all of them), and an attempt's last text
ahead of its outcome (the same transaction or an earlier one takes it): the last texts of the
attempts that end together go in one statement (:class:`_Batch`). An attempt that printed
nothing costs no write at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from wgops.daemon.capture import TailBuffer
from wgops.store import tasklogs
from wgops.store.db import AsyncStore

logger = logging.getLogger(__name__)


class AttemptLog:
    """What one attempt printed so far (the tail of ``limit`` characters). Writes may come
    from threads of an ``async`` task (``asyncio.to_thread``): one lock."""

    def __init__(self, task: int, attempt: int, limit: int):
        self.task = task
        self.attempt = attempt
        self.limit = limit
        self._buffer = TailBuffer(limit)
        self._lock = threading.Lock()
        self.dirty = False
        self.written_at = 0.0

    def write(self, text: str) -> None:
        with self._lock:
            self._buffer.write(text)
            self.dirty = True

    def add(self, dropped: int, text: str) -> None:
        with self._lock:
            self._buffer.add(dropped, text)
            self.dirty = True

    def __bool__(self) -> bool:
        return bool(self._buffer)

    def row(self, complete: bool, now: float) -> dict[str, Any]:
        """The store's row: the tail cut to at most ``limit`` bytes of UTF-8."""
        with self._lock:
            text, dropped = self._buffer.text(), self._buffer.dropped
            self.dirty = False
        text, cut = tasklogs.bounded(text, self.limit)
        return {"task": self.task, "attempt": self.attempt, "text": text,
                "dropped": dropped + cut, "complete": complete, "updated": now}


class _Batch:
    """Last texts of attempts, written by one statement. Queued when its first row comes;
    rows join it until the database thread runs it (then it is sealed: a write may run
    again after a transient error, and must write the same rows)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.sealed = False
        self.future: asyncio.Future[Any] | None = None

    def join(self, row: dict[str, Any]) -> bool:
        with self.lock:
            if self.sealed:
                return False
            self.rows.append(row)
            return True

    def write(self) -> None:                       # on the database thread
        with self.lock:
            self.sealed = True
        tasklogs.save(self.rows)


class TaskLogs:
    """The logs of the attempts running on one worker."""

    def __init__(self, db: AsyncStore, limit: int, interval: float = 1.0):
        self.db = db
        self.limit = limit
        self.interval = interval
        self.running: dict[int, AttemptLog] = {}      # task id -> its running attempt's log
        self._batch: _Batch | None = None

    def open(self, task: int, attempt: int) -> AttemptLog | None:
        """The log of an attempt that starts now (None when ``max_log_bytes`` is 0)."""
        if self.limit <= 0:
            return None
        log = self.running[task] = AttemptLog(task, attempt, self.limit)
        return log

    def close(self, log: AttemptLog | None) -> "asyncio.Future[Any] | None":
        """The attempt ended: queue its last text (None if it printed nothing). Call just
        before the outcome's write, then :meth:`settle` the returned future."""
        if log is None:
            return None
        if self.running.get(log.task) is log:
            del self.running[log.task]
        if not log:
            return None
        row = log.row(True, time.time())
        batch = self._batch
        if batch is None or not batch.join(row):
            batch = self._batch = _Batch()
            batch.join(row)
            batch.future = self.db.queue_write(batch.write)
        assert batch.future is not None
        return batch.future

    def discard(self, log: AttemptLog | None) -> None:
        if log is not None and self.running.get(log.task) is log:
            del self.running[log.task]

    def flush(self, now: float | None = None) -> "asyncio.Future[Any] | None":
        """Queue the running logs that changed (each at most once per ``interval``)."""
        now = time.time() if now is None else now
        due = [log for log in self.running.values()
               if log.dirty and now - log.written_at >= self.interval]
        if not due:
            return None
        rows = []
        for log in due:
            rows.append(log.row(False, now))
            log.written_at = now
        return self.db.queue_write(tasklogs.save, rows)

    @staticmethod
    async def settle(future: "asyncio.Future[Any] | None") -> None:
        """Await a queued log write; a failure is logged, never raised (a log is not worth
        a task's outcome)."""
        if future is None:
            return
        try:
            await future
        except Exception as exc:  # noqa: BLE001 - the outcome matters, the log less
            logger.warning("could not store a task log: %s: %s", type(exc).__name__, exc)
