"""Task.detached: when a worker acked a long task's message before the broker's
consumer_timeout; such a task has no message in flight, so the scheduler's liveness check
re-queues it when its worker dies (docs/reliability.md)."""

from playhouse.migrate import SchemaMigrator, migrate

from wgops.store.db import Store
from wgops.store.models import Task


def apply(store: Store) -> None:
    table = Task._meta.table_name
    if any(c.name == "detached" for c in store.db.get_columns(table)):
        return                      # created by m0001 from the current models
    migrate(SchemaMigrator.from_database(store.db).add_column(table, "detached",
                                                              Task.detached))
