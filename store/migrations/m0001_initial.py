"""Initial schema: graphs, tasks, schedulers, workers, pools, the event log, dead letters."""

from wgops.store.db import Store
from wgops.store.models import MODELS, Graph, Pool


def apply(store: Store) -> None:
    store.db.create_tables(MODELS, safe=True)
    if store.caps.alter_add_foreign_key:
        Graph._schema.create_foreign_key(Graph.parent_task)
    Pool.get_or_create(name="default", defaults={"max_running": None})
