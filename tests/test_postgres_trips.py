"""PostgreSQL in few round trips (store/postgres.py): a transaction's BEGIN rides with its first
statement and the hot statements are prepared once per connection — and neither changes what a
transaction means. Every statement sent is seen through a counting cursor."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import peewee
import psycopg2
import psycopg2.extensions
import pytest

from wgops.store.db import Store, make_database
from wgops.store.errors import ConfigError
from wgops.store.postgres import PostgresDatabase, numbered

SENT: list[str] = []


class CountingCursor(psycopg2.extensions.cursor):
    def execute(self, sql, vars=None):  # type: ignore[no-untyped-def, override]
        SENT.append(sql if isinstance(sql, str) else sql.decode())
        return super().execute(sql, vars)


def _connect(pg_url: str, **options: object) -> PostgresDatabase:
    db = PostgresDatabase(pg_url.rsplit("/", 1)[1], user="postgres", host="127.0.0.1",
                          port=5432, cursor_factory=CountingCursor, **options)
    db.connect()
    return db


@pytest.fixture
def db(pg_url: str) -> Iterator[PostgresDatabase]:
    d = _connect(pg_url)
    d.execute_sql("CREATE TABLE t (id integer PRIMARY KEY, v integer)")
    d.execute_sql("INSERT INTO t VALUES (1, 0), (2, 0)")
    SENT.clear()
    yield d
    d.close()


def value(pg_url: str, row: int = 1) -> int:
    """Row ``row``'s value as another connection sees it (what is committed)."""
    conn = psycopg2.connect(pg_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT v FROM t WHERE id = %s", (row,))
        return cur.fetchone()[0]
    finally:
        conn.close()


UPDATE = "UPDATE t SET v = v + %s WHERE id = %s"


def test_the_begin_rides_with_the_first_statement(db: PostgresDatabase, pg_url: str) -> None:
    with db.atomic():
        db.execute_sql(UPDATE, (1, 1))
        db.execute_sql(UPDATE, (1, 2))
    assert SENT == [f"BEGIN; {UPDATE}", UPDATE, "COMMIT"]
    assert (value(pg_url, 1), value(pg_url, 2)) == (1, 1)


def test_the_transaction_is_one_until_its_commit(db: PostgresDatabase, pg_url: str) -> None:
    """If the BEGIN were lost, the update would be committed on its own at once."""
    with db.atomic():
        db.execute_sql(UPDATE, (5, 1))
        assert value(pg_url) == 0, "another connection sees an uncommitted write"
    assert value(pg_url) == 5


def test_a_failed_transaction_leaves_nothing(db: PostgresDatabase, pg_url: str) -> None:
    with pytest.raises(RuntimeError), db.atomic():
        db.execute_sql(UPDATE, (5, 1))
        raise RuntimeError("undo")
    assert value(pg_url) == 0
    assert SENT[-1] == "ROLLBACK"
    with pytest.raises(peewee.IntegrityError), db.atomic():
        db.execute_sql(UPDATE, (5, 1))
        db.execute_sql("INSERT INTO t VALUES (1, 0)")
    assert value(pg_url) == 0
    with db.atomic():                       # the connection is usable afterwards
        db.execute_sql(UPDATE, (2, 1))
    assert value(pg_url) == 2


def test_a_transaction_that_ran_nothing_sends_nothing(db: PostgresDatabase) -> None:
    with db.atomic():
        pass
    with pytest.raises(RuntimeError), db.atomic():
        raise RuntimeError("nothing to undo")
    assert SENT == []


def test_a_savepoint_inside_keeps_the_transaction(db: PostgresDatabase, pg_url: str) -> None:
    with db.atomic():
        with db.savepoint():
            db.execute_sql(UPDATE, (1, 1))
        with pytest.raises(peewee.IntegrityError), db.savepoint():
            db.execute_sql("INSERT INTO t VALUES (2, 0)")
        db.execute_sql(UPDATE, (1, 2))
    assert SENT[0].startswith("BEGIN; SAVEPOINT")
    assert (value(pg_url, 1), value(pg_url, 2)) == (1, 1)


def test_a_connection_replaced_inside_a_transaction_is_refused(db: PostgresDatabase,
                                                               pg_url: str) -> None:
    db.begin()
    db._state.conn = psycopg2.connect(pg_url)
    try:
        with pytest.raises(peewee.InterfaceError, match="changed inside a transaction"):
            db.execute_sql(UPDATE, (1, 1))
    finally:
        db._state.conn.close()
        db._state.reset()
    assert value(pg_url) == 0


def test_placeholders_are_numbered() -> None:
    assert numbered("a = %s AND b LIKE 'x%%' AND c IN (%s, %s)") == \
        ("a = $1 AND b LIKE 'x%%' AND c IN ($2, $3)", 3)
    assert numbered("SELECT 1") == ("SELECT 1", 0)


def prepared(db: PostgresDatabase) -> list[str]:
    """The statements prepared on ``db``'s connection, as ``name: text``."""
    rows = db.execute_sql("SELECT name, statement FROM pg_prepared_statements").fetchall()
    return sorted(f"{name}: {text.split(' AS ', 1)[1].split(';')[0]}" for name, text in rows)


def test_a_statement_is_prepared_once_per_connection(db: PostgresDatabase,
                                                     pg_url: str) -> None:
    for _ in range(3):
        with db.atomic():
            assert db.execute_prepared(UPDATE, [1, 1]).rowcount == 1
            assert db.execute_prepared(UPDATE, [1, 99]).rowcount == 0
    assert db.execute_prepared("SELECT v FROM t WHERE id = %s", [1]).fetchall() == [(3,)]
    assert db.execute_prepared("SELECT count(*) FROM t", []).fetchone() == (2,)
    assert sum(s.count("PREPARE ") for s in SENT) == 3
    executes = [s for s in SENT if "EXECUTE " in s]
    assert len(executes) == 8 and all("UPDATE" not in s.split("EXECUTE")[-1] for s in executes)
    assert prepared(db) == ["wgops_0: UPDATE t SET v = v + $1 WHERE id = $2",
                            "wgops_1: SELECT v FROM t WHERE id = $1",
                            "wgops_2: SELECT count(*) FROM t"]
    assert value(pg_url) == 3
    db.close()                               # a new connection prepares them again
    db.connect()
    assert db.execute_prepared(UPDATE, [1, 1]).rowcount == 1
    assert len(prepared(db)) == 1
    assert value(pg_url) == 4


def test_a_literal_percent_survives_the_prepare(db: PostgresDatabase) -> None:
    """peewee writes a literal ``%`` as ``%%`` (psycopg2 interpolates every statement)."""
    sql = "SELECT %s || '%%' || v FROM t WHERE id = %s"
    for _ in range(2):
        assert db.execute_prepared(sql, ["a", 1]).fetchone() == ("a%0",)
    assert prepared(db) == ["wgops_0: SELECT $1 || '%' || v FROM t WHERE id = $2"]


def test_a_statement_the_server_cannot_prepare_runs_as_it_is(db: PostgresDatabase,
                                                             pg_url: str) -> None:
    """``$1 IS NULL`` gives its parameter no type: the PREPARE fails inside a savepoint, the
    transaction goes on, and the statement is never offered to the server again."""
    unpreparable = "SELECT %s IS NULL"
    with db.atomic():
        db.execute_prepared(UPDATE, [1, 1])
        assert db.execute_prepared(unpreparable, [None]).fetchone() == (True,)
        db.execute_prepared(UPDATE, [1, 1])
    assert value(pg_url) == 2
    SENT.clear()
    assert db.execute_prepared(unpreparable, [1]).fetchone() == (False,)
    assert SENT == ["SELECT %s IS NULL"]


def test_prepare_off_sends_every_statement_as_it_is(pg_url: str) -> None:
    d = _connect(pg_url, prepare=False)
    try:
        d.execute_sql("CREATE TABLE t (id integer PRIMARY KEY, v integer)")
        d.execute_sql("INSERT INTO t VALUES (1, 0)")
        SENT.clear()
        d.execute_prepared(UPDATE, [1, 1])
        assert SENT == [UPDATE] and prepared(d) == []
    finally:
        d.close()


def test_the_url_turns_preparing_off_and_refuses_nonsense(pg_url: str) -> None:
    db, _ = make_database(pg_url + "?prepare=off")
    assert isinstance(db, PostgresDatabase) and db.prepare is False
    db, _ = make_database(pg_url)
    assert isinstance(db, PostgresDatabase) and db.prepare is True
    with pytest.raises(ConfigError, match="prepare='maybe' is not on or off"):
        make_database(pg_url + "?prepare=maybe")


def test_the_stores_hot_statements_are_prepared(pg_url: str) -> None:
    """Through the store: the worker's start compare-and-set is prepared on first use."""
    from wgops.store import execution
    from wgops.store.document import normalise
    from wgops.store.graphs import create_graph
    from wgops.store.migrations import migrate
    from wgops.store.models import Task

    store = Store(pg_url).connect()
    try:
        migrate(store)
        with store.write():
            create_graph(normalise({"name": "g", "tasks": {
                "a": {"run": "wgops.examples.tasks:add"}}}, "trips"))
        task = Task.get()
        Task.update(state="queued").execute()
        with store.write():
            verdict, _ = execution.start(task.id, 0, "w1", False, 3, 30.0, 0.0)
        assert verdict == "run"
        assert any('UPDATE "task"' in s for s in prepared(store.db))  # type: ignore[arg-type]
    finally:
        store.close()


# -- a write whose first statement stands alone (PostgresDatabase.lead_alone) ------------------


def test_a_lead_alone_statement_commits_as_it_runs(db: PostgresDatabase, pg_url: str) -> None:
    """One round trip: no BEGIN, no COMMIT; another connection sees it inside the block."""
    with db.atomic():
        db.lead_alone()
        db.execute_sql(UPDATE, (1, 1))
        assert value(pg_url) == 1
    assert SENT == [UPDATE]


def test_a_second_statement_opens_the_transaction(db: PostgresDatabase, pg_url: str) -> None:
    """What follows the lead statement is a transaction of its own: a failure rolls it back
    and leaves the lead statement's change (which the function promised was nothing, or
    final)."""
    with pytest.raises(RuntimeError), db.atomic():
        db.lead_alone()
        db.execute_sql(UPDATE, (1, 1))
        db.execute_sql(UPDATE, (1, 2))
        assert value(pg_url, 2) == 0, "the second statement ran outside a transaction"
        raise RuntimeError("undo the rest")
    assert SENT == [UPDATE, f"BEGIN; {UPDATE}", "ROLLBACK"]
    assert (value(pg_url, 1), value(pg_url, 2)) == (1, 0)
    SENT.clear()
    with db.atomic():
        db.lead_alone()
        db.execute_sql(UPDATE, (1, 1))
        db.execute_sql(UPDATE, (1, 2))
    assert SENT == [UPDATE, f"BEGIN; {UPDATE}", "COMMIT"]
    assert (value(pg_url, 1), value(pg_url, 2)) == (2, 1)


def test_an_unused_lead_alone_leaks_into_nothing_after(db: PostgresDatabase,
                                                       pg_url: str) -> None:
    with db.atomic():
        db.lead_alone()
    with pytest.raises(RuntimeError), db.atomic():
        db.lead_alone()
        raise RuntimeError("nothing ran")
    db.lead_alone()                      # outside a transaction: nothing to change
    with db.atomic():
        db.execute_sql(UPDATE, (5, 1))
        assert value(pg_url) == 0
    assert SENT == [f"BEGIN; {UPDATE}", "COMMIT"]


def test_a_first_use_is_prepared_inside_the_transaction(db: PostgresDatabase,
                                                        pg_url: str) -> None:
    """``SAVEPOINT`` (around a first ``PREPARE``) needs a transaction: the lead statement of
    a statement not yet prepared goes in one, as it did before."""
    for _ in range(2):
        with db.atomic():
            db.lead_alone()
            db.execute_prepared(UPDATE, [1, 1])
    assert SENT[0].startswith("BEGIN; SAVEPOINT wgops_prepare; PREPARE wgops_0")
    assert SENT[-1] == "EXECUTE wgops_0(%s, %s)" and "COMMIT" in SENT
    assert value(pg_url) == 2


async def test_the_database_thread_leads_alone_only_with_a_lone_marked_write(
        db: PostgresDatabase, pg_url: str) -> None:
    """Through the AsyncStore: a marked write alone in its batch is one round trip; an
    unmarked one, or a batch of two, keeps its transaction."""
    import threading

    from wgops.store.db import AsyncStore, lead_alone

    store = Store.of(pg_url)
    store.db.connect_params["cursor_factory"] = CountingCursor
    returning = UPDATE + " RETURNING v"

    @lead_alone
    def bump(row: int) -> int:
        return int(store.db.execute_prepared(returning, [1, row]).fetchone()[0])

    def plain(row: int) -> int:
        return int(store.db.execute_prepared(returning, [1, row]).fetchone()[0])

    gate = threading.Event()
    astore = AsyncStore(store)
    astore.start()
    try:
        await astore.write(bump, 1)                      # prepared (inside a transaction)
        SENT.clear()
        assert await astore.write(bump, 1) == 2
        assert SENT == ["EXECUTE wgops_0(%s, %s)"]
        SENT.clear()
        assert await astore.write(plain, 1) == 3
        assert SENT == ["BEGIN; EXECUTE wgops_0(%s, %s)", "COMMIT"]
        held = astore.write(gate.wait, 10)               # the thread busy: the next two wait
        await asyncio.sleep(0.05)
        pair = [astore.queue_write(bump, 1), astore.queue_write(bump, 2)]
        SENT.clear()
        gate.set()
        await held
        assert await asyncio.gather(*pair) == [4, 1]
        assert SENT == ["BEGIN; EXECUTE wgops_0(%s, %s)", "EXECUTE wgops_0(%s, %s)", "COMMIT"]
    finally:
        gate.set()
        await astore.stop()
        store.db.connect_params.pop("cursor_factory", None)


async def test_a_lone_dispatch_is_one_round_trip_and_the_long_way_keeps_its_fence(
        pg_url: str) -> None:
    """The scheduler's dispatch alone in its batch: a few tasks to a pool without a cap are
    one statement committed as it runs; one with a cap among them, after that statement
    changed nothing, takes the long way in a transaction of its own (its fence opens it);
    more than a chunk of tasks takes it from the start, the fence leading the transaction."""
    from wgops.store import scheduling
    from wgops.store.db import AsyncStore
    from wgops.store.document import normalise
    from wgops.store.graphs import create_graph
    from wgops.store.migrations import migrate
    from wgops.store.models import Pool, Task

    store = Store.of(pg_url)
    migrate(store)
    n = scheduling.QUEUE_CHUNK + 1
    with store.write():
        g = create_graph(normalise({"name": "g", "tasks": {
            **{f"d{k}": {"run": "wgops.examples.tasks:add"} for k in range(n + 2)},
            **{f"c{k}": {"run": "wgops.examples.tasks:add", "pool": "gpu"} for k in range(2)}}},
            "trips"), owner="s1", state="running")
    Pool.update(max_running=1).where(Pool.name == "gpu").execute()
    ids = {t.name: t.id for t in Task.select(Task.id, Task.name)}
    store.db.close()
    store.db.connect_params["cursor_factory"] = CountingCursor
    astore = AsyncStore(store)
    astore.start()
    try:
        def items(names: list[str], pool: str = "default") -> list[tuple[int, str, str]]:
            return [(ids[name], pool, "{}") for name in names]
        await astore.write(scheduling.dispatch, g.id, "s1", g.epoch, items(["d0"]), 1.0)
        SENT.clear()
        owned, queued, _ = await astore.write(scheduling.dispatch, g.id, "s1", g.epoch,
                                              items(["d1"]), 2.0)
        assert owned and queued == [ids["d1"]]
        assert len(SENT) == 1 and SENT[0].startswith("EXECUTE "), SENT
        # (a statement's first use is prepared inside a transaction: a stale owner's
        # dispatch of the same shape prepares it, changing nothing)
        assert await astore.write(scheduling.dispatch, g.id, "s9", g.epoch,
                                  items(["c0", "c1"], "gpu"), 3.0) == (False, [], {})
        SENT.clear()
        owned, queued, capped = await astore.write(scheduling.dispatch, g.id, "s1", g.epoch,
                                                   items(["c0", "c1"], "gpu"), 3.0)
        assert owned and queued == [ids["c0"]] and list(capped) == [ids["c1"]]
        assert not SENT[0].startswith("BEGIN") and SENT[1].startswith("BEGIN; ") and \
            SENT[-1] == "COMMIT", SENT
        SENT.clear()
        many = [f"d{k}" for k in range(2, n + 2)]
        owned, queued, _ = await astore.write(scheduling.dispatch, g.id, "s1", g.epoch,
                                              items(many), 4.0)
        assert owned and sorted(queued) == sorted(ids[name] for name in many)
        assert SENT[0].startswith("BEGIN; ") and SENT[-1] == "COMMIT", SENT[:1] + SENT[-1:]
    finally:
        await astore.stop()
        store.db.connect_params.pop("cursor_factory", None)
        store.close()


async def test_a_lone_spawn_is_one_round_trip_and_the_long_way_keeps_its_fence(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested graph's spawn alone in its batch (store/spawning.py): one statement,
    committed as it runs; a graph too large for it takes the statement-by-statement way in
    one transaction that its fence opens (the parent's row stays locked to the end)."""
    from wgops.store import scheduling, spawning
    from wgops.store.db import AsyncStore
    from wgops.store.document import normalise
    from wgops.store.graphs import create_graph
    from wgops.store.migrations import migrate
    from wgops.store.models import Graph, Task

    child = {"name": "child", "tasks": {"leaf": {"run": "wgops.examples.tasks:add"}}}
    store = Store.of(pg_url)
    migrate(store)
    with store.write():
        g = create_graph(normalise({"name": "g", "tasks": {
            f"n{k}": {"graph": child} for k in range(3)}}, "trips"), owner="s1",
            state="running")
    ids = {t.name: t.id for t in Task.select(Task.id, Task.name)}
    doc = normalise(child, "trips")
    store.db.close()
    store.db.connect_params["cursor_factory"] = CountingCursor
    astore = AsyncStore(store)
    astore.start()
    try:
        def spawn(name: str) -> object:
            return astore.write(scheduling.spawn_child, g.id, "s1", g.epoch, ids[name], doc,
                                {}, 0, g.id, 0, 1.0)
        assert await spawn("n0") is not None             # (prepared inside a transaction)
        SENT.clear()
        row = await spawn("n1")
        assert row is not None and [t.name for t in row.tasks] == ["leaf"]
        assert len(SENT) == 1 and SENT[0].startswith("EXECUTE "), SENT
        monkeypatch.setattr(spawning, "AT_ONCE_TASKS", 0)
        SENT.clear()
        assert await spawn("n2") is not None
        assert SENT[0].startswith("BEGIN; ") and SENT[-1] == "COMMIT" and len(SENT) > 5, SENT
    finally:
        await astore.stop()
        store.db.connect_params.pop("cursor_factory", None)
        store.close()
    assert Graph.select().where(Graph.parent_task.in_(list(ids.values()))).count() == 3
