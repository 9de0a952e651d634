"""The event log: an append-only row per graph transition, control action and task end.

Not to be confused with the broker's events (:class:`wgops.daemon.protocol.Event`), which tell
live listeners; these rows are what happened, kept in the database (``LogEntry``).
"""

from __future__ import annotations

import time
from typing import Any

from wgops.store.db import Statement, param
from wgops.store.models import LogEntry, dumps

_LOG_EVENT = Statement(lambda: LogEntry.insert(ts=param("ts"), graph=param("graph"),
                                               task=param("task"), kind=param("kind"),
                                               actor=param("actor"), data=param("data")))


def log_event(kind: str, graph: int | None = None, task: int | None = None,
              actor: str | None = None, **data: Any) -> None:
    """Append one row (inside the caller's transaction)."""
    _LOG_EVENT.execute(ts=time.time(), graph=graph, task=task, kind=kind, actor=actor,
                       data=dumps(data) if data else None)
