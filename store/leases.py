"""Named leases in the database: one holder at a time, for a time.

A lease is taken (or renewed by its holder) with one compare-and-set; it lapses at
``expires`` unless renewed, so a holder that dies frees it without anyone's help.

Like liveness, a lease is timed by the database's clock (``now=None``, what the daemons pass:
:func:`wgops.store.liveness.db_now`), so a host whose clock is off neither steals a lease
nor keeps one past its time; an explicit ``now`` is for tests that drive time.
"""

from __future__ import annotations

from typing import Any

from wgops.store.liveness import db_now
from wgops.store.models import Lease


def take(name: str, holder: str, now: float | None, ttl: float) -> bool:
    """Take lease ``name`` for ``ttl`` seconds if it is free, lapsed or already ours (call
    inside a write transaction); True when ``holder`` holds it afterwards."""
    now = _clock(now)
    Lease.insert(name=name, holder=None, expires=0.0).on_conflict_ignore().execute()
    return bool(Lease.update(holder=holder, expires=now + ttl).where(
        Lease.name == name, (Lease.holder == holder) | Lease.holder.is_null()
        | (Lease.expires < now)).execute())


def release(name: str, holder: str) -> None:
    """Give the lease up if ``holder`` holds it."""
    Lease.update(holder=None, expires=0.0).where(Lease.name == name,
                                                 Lease.holder == holder).execute()


def holder(name: str, now: float | None = None) -> str | None:
    row = Lease.select(Lease.holder).where(Lease.name == name,
                                           Lease.expires >= _clock(now)).first()
    return row.holder if row is not None else None


def _clock(now: float | None) -> Any:
    return db_now() if now is None else now
