"""Named leases in the database: one holder at a time, for a time.

A lease is taken (or renewed by its holder) with one compare-and-set; it lapses at
``expires`` unless renewed, so a holder that dies frees it without anyone's help. Expiry is
judged by the database's clock (:func:`wgops.store.liveness.db_now`), like every liveness
question: a host whose clock is off neither keeps a lease too long nor steals one.
"""

from __future__ import annotations

from wgops.store.liveness import db_now
from wgops.store.models import Lease


def take(name: str, holder: str, ttl: float) -> bool:
    """Take lease ``name`` for ``ttl`` seconds if it is free, lapsed or already ours (call
    inside a write transaction); True when ``holder`` holds it afterwards."""
    Lease.insert(name=name, holder=None, expires=0.0).on_conflict_ignore().execute()
    now = db_now()
    return bool(Lease.update(holder=holder, expires=now + ttl).where(
        Lease.name == name, (Lease.holder == holder) | Lease.holder.is_null()
        | (Lease.expires < now)).execute())


def release(name: str, holder: str) -> None:
    """Give the lease up if ``holder`` holds it."""
    Lease.update(holder=None, expires=0.0).where(Lease.name == name,
                                                 Lease.holder == holder).execute()


def holder(name: str) -> str | None:
    """Who holds lease ``name`` now (None: nobody, or it lapsed)."""
    row = Lease.select(Lease.holder).where(Lease.name == name,
                                           Lease.expires >= db_now()).first()
    return None if row is None else row.holder
