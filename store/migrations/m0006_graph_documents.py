"""Graph documents in a table of their own (``graph_document``), out of the graph row: every
claim, state change and fence of a graph no longer carries its document (models.GraphDocument).
Copies the documents of the graphs already stored, then drops ``graph.document``."""

import sqlite3

from playhouse.migrate import SchemaMigrator, migrate

from wgops.store.db import Store
from wgops.store.errors import WgopsError
from wgops.store.models import Graph, GraphDocument


def apply(store: Store) -> None:
    store.db.create_tables([GraphDocument], safe=True)
    graphs, documents = Graph._meta.table_name, GraphDocument._meta.table_name
    if "document" not in {c.name for c in store.db.get_columns(graphs)}:
        return                      # created by m0001 from the current models
    if not store.caps.drop_column:
        # without ALTER TABLE ... DROP COLUMN the graph table would be copied and dropped,
        # and dropping it deletes its tasks (ON DELETE CASCADE): refuse, change nothing
        raise WgopsError(f"this database needs SQLite 3.35 or newer to be upgraded (migration "
                         f"6 drops graph.document); found {sqlite3.sqlite_version}")
    store.db.execute_sql(
        f'INSERT INTO "{documents}" ("graph_id", "document") SELECT "id", "document" '
        f'FROM "{graphs}" WHERE "id" NOT IN (SELECT "graph_id" FROM "{documents}")')
    migrate(SchemaMigrator.from_database(store.db).drop_column(graphs, "document"))
