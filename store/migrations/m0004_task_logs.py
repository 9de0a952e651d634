"""Task logs: what each attempt of a task printed (``task_log``: one row per task and attempt,
deleted with its task by ``ON DELETE CASCADE``)."""

from wgops.store.db import Store
from wgops.store.models import TaskLog


def apply(store: Store) -> None:
    store.db.create_tables([TaskLog], safe=True)      # else: created by m0001 from the models
