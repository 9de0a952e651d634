"""Dead letters: messages a daemon refused on receipt, and tasks quarantined after losing
their worker too often (``wgops dead list``)."""

from __future__ import annotations

from typing import Any

from wgops.store.models import DeadLetter

BODY_LIMIT = 20_000         # characters of a refused message kept with its reason


def record_dead_letter(queue: str, reason: str, body: str, daemon: str, now: float) -> None:
    DeadLetter.insert(ts=now, queue=queue, reason=reason, body=body[:BODY_LIMIT],
                      daemon=daemon).execute()


def newest(limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` dead letters, newest first (bodies shortened)."""
    return [{"id": r.id, "ts": r.ts, "queue": r.queue, "reason": r.reason, "daemon": r.daemon,
             "body": r.body[:2000]}
            for r in DeadLetter.select().order_by(DeadLetter.id.desc()).limit(limit)]
