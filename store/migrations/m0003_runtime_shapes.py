"""Graphs shaped at run time: a mapped task's copies (``map_of``, ``map_index``, indexed
together) and the tasks skipped because their ``when`` was false (``condition_false``)."""

from playhouse.migrate import SchemaMigrator, migrate

from wgops.store.db import Store
from wgops.store.models import Task


def apply(store: Store) -> None:
    table = Task._meta.table_name
    have = {c.name for c in store.db.get_columns(table)}
    migrator = SchemaMigrator.from_database(store.db)
    steps = [migrator.add_column(table, name, getattr(Task, name))
             for name in ("map_of", "map_index", "condition_false") if name not in have]
    if steps:                       # else: created by m0001 from the current models
        migrate(*steps)
        migrate(migrator.add_index(table, ("map_of", "map_index"), False))
