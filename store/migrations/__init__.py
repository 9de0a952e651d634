"""Numbered schema migrations: ``mNNNN_name.py`` each with ``apply(store)``.

``migrate(store)`` applies, in order, every migration newer than the recorded version; it is
idempotent, so ``wgops init`` may run any number of times.
"""

from __future__ import annotations

import importlib
import pkgutil
import time

from wgops.store.db import Store
from wgops.store.models import SchemaVersion


def available() -> list[tuple[int, str]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            found.append((int(info.name[1:5]), info.name))
    return sorted(found)


def current_version(store: Store) -> int:
    if not store.db.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select(SchemaVersion.version).order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def migrate(store: Store) -> list[int]:
    """Apply pending migrations; return the numbers applied.

    Serialised across processes and hosts: on PostgreSQL by an advisory lock held for the
    transaction, on SQLite by an exclusive transaction; whoever comes second finds the
    schema done. A schema already current costs one read and no lock."""
    applied = []
    store.connect()
    if current_version(store) >= latest():
        return applied
    with store.migration():
        SchemaVersion.create_table(safe=True)
        have = current_version(store)
        for number, name in available():
            if number <= have:
                continue
            module = importlib.import_module(f"{__name__}.{name}")
            module.apply(store)
            SchemaVersion.create(version=number, applied=time.time())
            applied.append(number)
    return applied


def latest() -> int:
    return available()[-1][0]
