"""The tables. JSON payloads are stored as text; times are Unix seconds (float).

Times are DoubleField: a FloatField is REAL (4 bytes) on PostgreSQL, 128 s apart at today's
Unix times.
"""

from __future__ import annotations

import json
import time
from typing import Any

import peewee
from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DeferredForeignKey,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from wgops.store.db import BaseModel, unindexed

GRAPH_STATES = ("queued", "running", "paused", "finished", "failed", "killed")
GRAPH_ACTIVE = ("queued", "running", "paused")
GRAPH_TERMINAL = ("finished", "failed", "killed")
GRAPH_DELETING = "deleting"    # marked by a delete or prune, its rows going (wgops.store.deletion)
TASK_STATES = ("waiting", "queued", "running", "finished", "failed", "skipped", "killed")
TASK_TERMINAL = ("finished", "failed", "skipped", "killed")
TASK_ACTIVE = ("waiting", "queued", "running")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Graph(BaseModel):
    """One submitted graph, or a nested graph spawned by ``parent_task``."""

    id = AutoField()
    name = CharField()
    state = CharField(default="queued", index=True)
    priority = IntegerField(default=0)
    scheduler = CharField(null=True, index=True)   # owner; NULL until claimed
    epoch = IntegerField(default=0)                # bumped on every owner change: the fence
    parent_task = DeferredForeignKey("Task", null=True, index=True, on_delete="CASCADE")
    root = IntegerField(null=True, index=True)     # the top-level graph of a nested one
    depth = IntegerField(default=0)
    source = CharField(null=True)                  # file it came from
    inputs = TextField(default="{}")
    outputs = TextField(null=True)
    error = TextField(null=True)
    created = DoubleField(default=time.time)
    started = DoubleField(null=True)
    finished = DoubleField(null=True, index=True)   # prune selects by it


class GraphDocument(BaseModel):
    """A graph's normalised document (JSON), written once when the graph is created and read
    when a scheduler loads it. Kept out of the graph row, which changes with every claim and
    state and is counted by every scrape: on PostgreSQL a new version of a row copies all of
    it, and a document below 2 kB (the size at which PostgreSQL moves a value out of line)
    would make each of those versions, and each page a count of graphs reads, that much
    larger."""

    graph = ForeignKeyField(Graph, primary_key=True, on_delete="CASCADE")
    document = TextField()

    class Meta:
        table_name = "graph_document"


class Task(BaseModel):
    """One task of a graph. ``attempts`` counts starts; ``lost`` counts starts whose worker died."""

    id = AutoField()
    graph = ForeignKeyField(Graph, backref="tasks", on_delete="CASCADE")
    name = CharField()
    kind = CharField()                             # python | shell | graph | build
    spec = TextField()                             # the task's document entry (JSON)
    deps = TextField(default="[]")                 # names of the tasks it depends on
    pool = CharField(default="default")
    state = CharField(default="waiting")
    attempts = IntegerField(default=0)
    lost = IntegerField(default=0)
    worker = CharField(null=True)
    detached = DoubleField(null=True)              # when its worker acked it early (long task)
    args = TextField(null=True)                    # arguments as dispatched (resolved)
    result = TextField(null=True)
    error = TextField(null=True)                   # {"type", "message", "traceback"}
    waiting_for = TextField(null=True)             # the scheduler's reason, when it has one
    queued_at = DoubleField(null=True)
    not_before = DoubleField(null=True)
    started = DoubleField(null=True)
    finished = DoubleField(null=True)
    map_of = IntegerField(null=True)               # a copy: the mapped task it is a copy of
    map_index = IntegerField(null=True)            # a copy: its element's position
    condition_false = BooleanField(default=False)  # skipped because its `when` was false

    class Meta:
        indexes = ((("graph", "name"), True), (("pool", "state"), False),
                   (("state", "worker"), False), (("map_of", "map_index"), False))


# The columns a compare-and-set checks beside a primary key (or a graph id), written so that
# no index on them is chosen over the key's (see store.db.unindexed): ``TASK_STATE ==
# "queued"`` where the row is found by ``Task.id``; ``Task.state`` where state selects.
TASK_STATE = unindexed(Task.state)
TASK_WORKER = unindexed(Task.worker)
GRAPH_STATE = unindexed(Graph.state)
GRAPH_OWNER = unindexed(Graph.scheduler)


class Scheduler(BaseModel):
    id = CharField(primary_key=True)
    host = CharField()
    pid = IntegerField()
    state = CharField(default="running")           # running | stopping | stopped | dead
    started = DoubleField(default=time.time)
    heartbeat = DoubleField(default=time.time)
    graphs = IntegerField(default=0)


class Worker(BaseModel):
    id = CharField(primary_key=True)
    host = CharField()
    pid = IntegerField()
    state = CharField(default="running")
    slots = IntegerField()
    pools = TextField(default='["default"]')
    busy = IntegerField(default=0)
    executing = TextField(default="[]")
    started = DoubleField(default=time.time)
    heartbeat = DoubleField(default=time.time)


class Pool(BaseModel):
    name = CharField(primary_key=True)
    max_running = IntegerField(null=True)          # NULL: unlimited


class LogEntry(BaseModel):
    """One row of the event log: a graph transition, a control action or a task's end
    (``wgops.store.eventlog``; not the broker's events)."""

    id = AutoField()
    ts = DoubleField(default=time.time, index=True)
    graph = IntegerField(null=True, index=True)
    task = IntegerField(null=True)
    kind = CharField()
    actor = CharField(null=True)
    data = TextField(null=True)

    class Meta:
        table_name = "event"


class DeadLetter(BaseModel):
    """A message refused on receipt, or a task quarantined after losing its worker."""

    id = AutoField()
    ts = DoubleField(default=time.time)
    queue = CharField()
    reason = TextField()
    body = TextField()
    daemon = CharField(null=True)


class TaskLog(BaseModel):
    """What one attempt of a task printed (stdout, stderr, logging records), its tail of at
    most ``max_log_bytes`` bytes; ``dropped``: how many characters came before it. Deleting a
    task (or its graph) deletes its logs (``ON DELETE CASCADE``)."""

    id = AutoField()
    task = ForeignKeyField(Task, backref="logs", on_delete="CASCADE")
    attempt = IntegerField()
    text = TextField(default="")
    dropped = BigIntegerField(default=0)
    complete = BooleanField(default=False)         # the attempt ended (else: so far)
    updated = DoubleField(default=time.time)

    class Meta:
        table_name = "task_log"
        indexes = ((("task", "attempt"), True),)


class Lease(BaseModel):
    """A named lease: at most one holder until ``expires`` (e.g. the scheduler that applies
    ``retention``; ``wgops.store.leases``)."""

    name = CharField(primary_key=True)
    holder = CharField(null=True)
    expires = DoubleField(default=0.0)


class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    applied = DoubleField(default=time.time)


MODELS: list[type[peewee.Model]] = [SchemaVersion, Graph, GraphDocument, Task, Scheduler, Worker,
                                    Pool, LogEntry, DeadLetter, TaskLog, Lease]
