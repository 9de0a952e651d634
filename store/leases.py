"""Named leases in the database: one holder at a time, for a time.

A lease is taken (or renewed by its holder) with one compare-and-set; it lapses at
``expires`` unless renewed, so a holder that dies frees it without anyone's help.
"""

from __future__ import annotations

from wgops.store.models import Lease


def take(name: str, holder: str, now: float, ttl: float) -> bool:
    """Take lease ``name`` for ``ttl`` seconds if it is free, lapsed or already ours (call
    inside a write transaction); True when ``holder`` holds it afterwards."""
    Lease.insert(name=name, holder=None, expires=0.0).on_conflict_ignore().execute()
    return bool(Lease.update(holder=holder, expires=now + ttl).where(
        Lease.name == name, (Lease.holder == holder) | Lease.holder.is_null()
        | (Lease.expires < now)).execute())


def release(name: str, holder: str) -> None:
    """Give the lease up if ``holder`` holds it."""
    Lease.update(holder=None, expires=0.0).where(Lease.name == name,
                                                 Lease.holder == holder).execute()


def holder(name: str, now: float) -> str | None:
    row = Lease.get_or_none(Lease.name == name)
    return row.holder if row is not None and row.expires >= now else None
