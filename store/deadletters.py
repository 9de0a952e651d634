"""Dead letters: messages a daemon refused on receipt, and tasks quarantined after losing
their worker too often (``wgops dead list``)."""

from __future__ import annotations

from typing import Any

from peewee import fn

from wgops.store.models import DeadLetter

BODY_LIMIT = 20_000         # characters of a refused message kept with its reason


PRUNE_EVERY = 100           # dead letters between two prunes of the table


def record_dead_letter(queue: str, reason: str, body: str, daemon: str, now: float,
                       keep: int = 10_000) -> None:
    """Record one; past ``keep`` rows, the oldest are deleted (checked every ``PRUNE_EVERY``
    rows, so a burst costs one delete)."""
    row_id = DeadLetter.insert(ts=now, queue=queue, reason=reason, body=body[:BODY_LIMIT],
                               daemon=daemon).execute()
    if row_id % PRUNE_EVERY == 0 or keep < PRUNE_EVERY:
        DeadLetter.delete().where(DeadLetter.id <= row_id - keep).execute()


def dropped() -> int:
    """How many dead letters were deleted to stay under the cap (ids are never reused)."""
    newest = DeadLetter.select(fn.MAX(DeadLetter.id)).scalar() or 0
    return max(0, newest - DeadLetter.select().count())


def newest(limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` dead letters, newest first (bodies shortened)."""
    return [{"id": r.id, "ts": r.ts, "queue": r.queue, "reason": r.reason, "daemon": r.daemon,
             "body": r.body[:2000]}
            for r in DeadLetter.select().order_by(DeadLetter.id.desc()).limit(limit)]
