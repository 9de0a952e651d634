"""Delete and prune: leases (the one scheduler at a time that applies ``retention`` holds
one) and an index on ``graph.finished`` (prune selects graphs by it)."""

from playhouse.migrate import SchemaMigrator, migrate

from wgops.store.db import Store
from wgops.store.models import Graph, Lease


def apply(store: Store) -> None:
    store.db.create_tables([Lease], safe=True)
    table = Graph._meta.table_name
    if not any(ix.columns == ["finished"] for ix in store.db.get_indexes(table)):
        migrate(SchemaMigrator.from_database(store.db).add_index(table, ("finished",), False))
