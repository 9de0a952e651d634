"""The database chosen by URL, behind one proxy whose target is per thread; SQLite pragmas and
dialect capabilities in one place.

The models carry one proxy, :data:`database`. Which database it stands for is decided per
thread: a thread works on the :class:`Store` it connected (``Store.connect``, or for a block
``Store.bound``), so one process can hold several installations (two API clients, a test
and its fixtures) without any thread's queries reaching another's database. A thread that
never connected one falls back to the process's default, the Store constructed last.

The CLI uses the database synchronously. Daemons are asyncio programs: they go through
:class:`AsyncStore`, which runs store functions on one dedicated thread and commits the writes
that arrive together in one transaction (group commit), so the event loop never blocks on I/O
and a burst of task results costs one commit, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee

from wgops.store.config import mask_url
from wgops.store.errors import ConfigError, Unreachable
from wgops.store.postgres import PostgresDatabase

logger = logging.getLogger(__name__)
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class ThreadBoundProxy(peewee.DatabaseProxy):
    """peewee's database proxy, pointing at the database bound to the calling thread, else at
    the process's default (what ``initialize`` sets)."""

    __slots__ = ("_local", "_default")

    def __init__(self) -> None:
        object.__setattr__(self, "_local", threading.local())
        object.__setattr__(self, "_default", None)
        super().__init__()

    @property  # type: ignore[override]
    def obj(self) -> peewee.Database | None:
        bound = self._local.__dict__.get("db")
        return self._default if bound is None else bound

    @obj.setter
    def obj(self, value: peewee.Database | None) -> None:
        object.__setattr__(self, "_default", value)

    def __setattr__(self, attr: str, value: Any) -> None:
        object.__setattr__(self, attr, value)      # slots only: anything else still fails

    def bind(self, db: peewee.Database | None) -> peewee.Database | None:
        """Point the calling thread at ``db`` (None: the default); return what it was."""
        previous = self._local.__dict__.get("db")
        self._local.db = db
        return previous


database = ThreadBoundProxy()


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


@dataclass(frozen=True)
class Capabilities:
    """Dialect differences, as flags (never ``if postgres:`` in the code)."""

    name: str
    begin_write: str | None      # lock type for write transactions (SQLite: IMMEDIATE)
    alter_add_foreign_key: bool  # PostgreSQL can add the deferred graph -> task key
    writable_cte: bool           # WITH x AS (UPDATE ... RETURNING ...): several writes, one trip
    returning: bool              # UPDATE ... RETURNING: a write and its read in one statement
    begin_exclusive: str | None  # lock type that keeps every other writer out (migrations)
    advisory_lock: bool          # pg_advisory_xact_lock: a lock held for a transaction
    clock_sql: str               # the database's own time, in epoch seconds (liveness's clock)
    vacuum: bool = False         # deleted rows' space is reused only after VACUUM (PostgreSQL;
    #                              SQLite reuses freed pages by itself)
    local_reads: bool = False    # a short read costs less than a hand-off to the database
    #                              thread (a file on this host, WAL: readers never wait)
    id_sequence: bool = False    # ids come from a sequence an insert can draw from itself
    row_lock: str | None = None  # a row locked by a read, as a no-op update would lock it
    #                              but without writing a new version of it (PostgreSQL: a
    #                              new version of a wide row, and an entry in every index
    #                              when the page is full; SQLite's writers lock the file)
    drop_column: bool = True     # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35; else a table
    #                              would be rebuilt, and dropping a parent table cascades)


SQLITE = Capabilities("sqlite", "IMMEDIATE", False, False,
                      sqlite3.sqlite_version_info >= (3, 35, 0), "EXCLUSIVE", False,
                      "((julianday('now') - 2440587.5) * 86400.0)", local_reads=True,
                      drop_column=sqlite3.sqlite_version_info >= (3, 35, 0))
POSTGRES = Capabilities("postgresql", None, True, True, True, None, True,
                        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
                        vacuum=True, id_sequence=True, row_lock="FOR NO KEY UPDATE")

MIGRATION_LOCK = 0x77676F7073          # "wgops": the advisory lock of a migration

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 15000,
    "cache_size": -16000,
}

# libpq options a URL may override (``?keepalives_idle=60``). A connection whose peer is cut
# off silently (a host's link down, a dropped route) would otherwise wait for the kernel's
# retransmission timeout, about 15 minutes, before the database thread could reconnect:
# keepalives find an idle dead link in 10 + 3 x 5 s, ``tcp_user_timeout`` one with unanswered
# writes in 30 s. A long query is not cut: the server's kernel answers the probes.
PG_CONNECTION_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
    "keepalives_count": 3, "tcp_user_timeout": 30_000}


def make_database(url: str) -> tuple[peewee.Database, Capabilities]:
    """Build (not connect) the database for ``url``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if path.startswith("//"):
            path = path[1:]
        if not path or path == "/":
            raise ConfigError(f"WGOPS_DB_URL {url!r} names no file")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = peewee.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=15)
        return db, SQLITE
    if parts.scheme in ("postgresql", "postgres"):
        try:
            import psycopg2  # noqa: F401
        except ImportError:  # pragma: no cover - a dependency of the package
            raise ConfigError("PostgreSQL needs psycopg2: pip install psycopg2-binary") from None
        options: dict[str, Any] = dict(PG_CONNECTION_DEFAULTS)
        options.update(parse_qsl(parts.query))        # sslmode=..., password=..., ...
        prepare = str(options.pop("prepare", "on")).lower()
        if prepare not in ("on", "off"):
            raise ConfigError(f"WGOPS_DB_URL: prepare={prepare!r} is not on or off")
        db = PostgresDatabase(
            unquote((parts.path or "/").lstrip("/")) or "postgres",
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else options.pop(
                "password", None),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            prepare=prepare == "on",
            **options,
        )
        return db, POSTGRES
    raise ConfigError(f"unsupported database URL {mask_url(url)!r}")


_CAPS: dict[int, Capabilities] = {}      # id(db) -> its capabilities, for every Store


class Store:
    """An installation's database: the peewee database for its URL, with its capabilities.

    There is one Store per URL in a process, shared by every thread (each thread has its own
    connection). :meth:`of` returns it and changes nothing else; ``Store(url)`` returns it
    too and also makes it the process's default and the calling thread's database (what
    code that never binds a thread relies on). Code that holds several stores binds its
    threads: :meth:`connect` binds the calling thread for good, :meth:`bound` for a block.
    """

    _instances: ClassVar[dict[str, "Store"]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()
    url: str
    db: peewee.Database
    caps: Capabilities

    def __new__(cls, url: str) -> "Store":
        store = cls.of(url)
        database.initialize(store.db)
        database.bind(store.db)
        return store

    def __init__(self, url: str):
        """(The instance is built by :meth:`of`.)"""

    @classmethod
    def of(cls, url: str) -> "Store":
        """The process's Store for ``url``, built on first use; binds no thread."""
        with cls._lock:
            store = cls._instances.get(url)
            if store is None:
                store = object.__new__(cls)
                store.url = url
                store.db, store.caps = make_database(url)
                _CAPS[id(store.db)] = store.caps
                cls._instances[url] = store
        return store

    def connect(self) -> "Store":
        """Bind the calling thread to this store and open its connection (if not open)."""
        database.bind(self.db)
        try:
            self.db.connect(reuse_if_open=True)
        except peewee.OperationalError as exc:
            raise Unreachable(f"database {mask_url(self.url)} unreachable: {first_line(exc)}") \
                from None
        return self

    @contextlib.contextmanager
    def bound(self) -> Iterator["Store"]:
        """The calling thread works on this store inside the block (as it did before after)."""
        previous = database.bind(self.db)
        try:
            yield self
        finally:
            database.bind(previous)

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    def write(self) -> Any:
        """A write transaction (SQLite takes the write lock at BEGIN, so no upgrade deadlock)."""
        if self.caps.begin_write:
            return self.db.atomic(self.caps.begin_write)
        return self.db.atomic()

    def lead_alone(self) -> None:
        """Inside :meth:`write`, before its first statement: that statement commits on its
        own where that saves a round trip (PostgreSQL: :meth:`PostgresDatabase.lead_alone`);
        elsewhere nothing changes. Only for a :func:`lead_alone` write."""
        mark = getattr(self.db, "lead_alone", None)
        if mark is not None:
            mark()

    @contextlib.contextmanager
    def migration(self) -> Iterator[None]:
        """A write transaction that no other process migrates in at the same time."""
        with self.db.atomic(self.caps.begin_exclusive) if self.caps.begin_exclusive \
                else self.db.atomic():
            if self.caps.advisory_lock:
                self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            yield

    def ping(self) -> bool:
        try:
            self.connect()
            self.db.execute_sql("SELECT 1")
            return True
        except (Unreachable, peewee.DatabaseError):
            return False


def capabilities() -> Capabilities:
    """The capabilities of the database the calling thread works on (inside store functions)."""
    db = database.obj
    caps = None if db is None else _CAPS.get(id(db))
    if caps is None:
        raise RuntimeError("no Store for the current database")
    return caps


def open_store(url: str) -> Store:
    """The process's Store for ``url``, made the default and the calling thread's."""
    return Store(url)


async def in_thread(store: Store, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
    """Run a synchronous store function from async code (a command, the console, the doctor):
    on a worker thread, with a connection of its own, in a write transaction if ``write``.
    Daemons use :class:`AsyncStore` instead (one thread, group commit). The thread is bound
    to ``store`` for the call only, so callers with different stores can share threads."""
    def call() -> T:
        with store.bound():
            store.connect()
            try:
                if write:
                    with store.write():
                        return fn(*args)
                return fn(*args)
            finally:
                store.close()
    return await asyncio.to_thread(call)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# Unreachable: Store.connect() failing while the server restarts ("shutting down", refused)
_TRANSIENT = (peewee.OperationalError, peewee.InterfaceError, Unreachable)


class AsyncStore:
    """Runs store functions off the event loop, on one thread, with group commit.

    ``await read(fn, *a)`` runs ``fn`` outside a transaction. ``await write(fn, *a)`` runs
    ``fn`` inside a write transaction shared with the other writes queued at that moment; each
    sits in its own savepoint, so one failing write does not undo the others. A transient
    database error (locked, restarted, unreachable) is retried with back-off and never
    surfaces to the caller: the daemon waits for the database instead of exiting.

    A write function may run more than once (after a transient error, or when another
    write of its batch fails and the batch is redone with savepoints): it must act on the
    database only.

    A write function may have a ``many`` form (``fn.many = fn_many``: a list of argument
    tuples in, the list of their results out): the calls of one batch are then handed to it
    together, where statements are round trips one statement for all (``execution.start``,
    ``execution.finish``). If the batch fails, each call is redone alone, without it.
    """

    def __init__(self, store: Store, max_batch: int = 256):
        self.store = store
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="wgops-db", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.unavailable_since: float | None = None
        self._here: int | None = None      # the thread whose connection quick_read set up
        self._pending = 0                  # jobs handed to the thread, not yet handed back
        self.writes = 0                    # writes asked for (write, queue_write, quick_write)
        self.writes_here = 0               # of them run on the event loop (quick_write)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    async def stop(self) -> None:
        if self.writes_here:
            logger.info("database: %d of %d writes ran on the event loop", self.writes_here,
                        self.writes)
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)
        if self._here == threading.get_ident():
            self.store.close()                 # the loop's own connection (quick_read)
            self._here = None

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit(False, fn, args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit(True, fn, args)

    async def quick_read(self, fn: Callable[..., T], *args: Any) -> T:
        """``read`` for a short indexed read on a hot path: on a database with
        ``local_reads`` (SQLite) it runs here, on the event loop's own connection, which
        never waits for a lock (busy timeout 0) — if the database is busy or the read
        fails for a transient reason, it goes to the database thread as ``read`` does.
        It sees what is committed, as ``read`` does; saves the thread's two hand-offs."""
        if self.store.caps.local_reads:
            try:
                self._connect_here()
                return fn(*args)
            except _TRANSIENT:
                pass
        return await self.read(fn, *args)

    async def quick_write(self, fn: Callable[..., T], *args: Any) -> T:
        """``write`` for a short write on a hot path (a task's start, its outcome, the
        dispatch of a few tasks): on a database with ``local_reads`` (SQLite), while the
        database thread has nothing queued or running, it runs here, on the event loop's own
        connection, as a transaction of its own that never waits for the lock (busy timeout
        0) and never checkpoints (the thread's commits do). If the database is locked or the
        attempt fails for a transient reason (rolled back), it goes to the thread as
        ``write`` does. Still in order with every other write of this store: none was
        waiting before it, and it commits before the loop runs anything else. Saves the
        thread's two hand-offs (~0.1 ms a write on this machine)."""
        if self.store.caps.local_reads and not self._pending:
            try:
                self._connect_here()
                with self.store.write():
                    value = fn(*args)
                self.writes += 1
                self.writes_here += 1
                return value
            except _TRANSIENT:
                pass
        return await self.write(fn, *args)

    def _connect_here(self) -> None:
        if self._here != threading.get_ident():
            self.store.connect()
            self.store.db.execute_sql("PRAGMA busy_timeout = 0")
            self.store.db.execute_sql("PRAGMA wal_autocheckpoint = 0")
            self._here = threading.get_ident()

    def queue_write(self, fn: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
        """Queue a write now (ahead of any write queued after it, so in the same or an
        earlier transaction) and await its future later."""
        return self._submit(True, fn, args)

    def _submit(self, write: bool, fn: Callable[..., Any], args: tuple) -> "asyncio.Future[Any]":
        assert self._loop is not None, "AsyncStore.start() first"
        future = self._loop.create_future()
        self._pending += 1
        self.writes += write
        self._jobs.put((write, fn, args, future))
        return future

    # -- the database thread --------------------------------------------------------------

    def _resolve(self, future: asyncio.Future, value: Any = None, error: BaseException | None
                 = None) -> None:
        self._resolve_all([(future, value, error)])

    def _resolve_all(self, results: list[tuple[asyncio.Future, Any, BaseException | None]]) \
            -> None:
        """Hand results to the loop: one wake-up for a whole batch."""
        def apply() -> None:
            self._pending -= len(results)
            for future, value, error in results:
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(value)
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(apply)
        except RuntimeError:  # loop closed while shutting down
            pass

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            batch = [job]
            if job[0]:
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._jobs.put(None)
                        break
                    if not nxt[0]:
                        self._retrying(self._do_read, nxt)
                        continue
                    batch.append(nxt)
                self._retrying(self._do_writes, batch)
            else:
                self._retrying(self._do_read, job)
        self.store.close()

    def _retrying(self, step: Callable[[Any], None], arg: Any) -> None:
        delay = 0.05
        while True:
            try:
                step(arg)
                if self.unavailable_since is not None:
                    logger.warning("database %s is back after %.1fs", mask_url(self.store.url),
                                   time.monotonic() - self.unavailable_since)
                    self.unavailable_since = None
                return
            except _TRANSIENT as exc:
                if self.unavailable_since is None:
                    self.unavailable_since = time.monotonic()
                    logger.warning("database %s unavailable (%s); retrying",
                                   mask_url(self.store.url), first_line(exc))
                try:
                    self.store.db.close()
                except Exception:  # noqa: BLE001 - the connection is already broken
                    pass
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _do_read(self, job: Any) -> None:
        _, fn, args, future = job
        self.store.connect()
        try:
            value = fn(*args)
        except _TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            self._resolve(future, error=exc)
            return
        self._resolve(future, value)

    def _do_writes(self, batch: list[Any]) -> None:
        try:
            self._commit(batch)
        except _Failed as failed:
            self._resolve(failed.future, error=failed.error)

    def _commit(self, batch: list[Any]) -> None:
        """One transaction for the batch. Optimistically without savepoints (two statements
        fewer per write); if one write raises, the transaction is rolled back and the batch
        is done again with each write in its own savepoint, so only that one fails."""
        self.store.connect()
        results: list[tuple[Any, Any, BaseException | None]] = []
        try:
            with self.store.write():
                if len(batch) == 1 and getattr(batch[0][1], "lead_alone", False):
                    self.store.lead_alone()
                for fn, jobs in _coalesced(batch):
                    if len(jobs) == 1:
                        results.append((jobs[0][3], fn(*jobs[0][2]), None))
                        continue
                    values = fn.many([job[2] for job in jobs])
                    if len(values) != len(jobs):     # (then redone one by one, below)
                        raise RuntimeError(f"{fn.__name__}.many gave {len(values)} results "
                                           f"for {len(jobs)} calls")
                    results.extend((job[3], value, None) for job, value in zip(jobs, values))
        except _TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - rolled back: isolate the failing write
            if len(batch) == 1:
                raise _Failed(batch[0][3], exc) from None
            results = []
            with self.store.write():
                for _, fn, args, future in batch:
                    try:
                        with self.store.db.savepoint():
                            results.append((future, fn(*args), None))
                    except _TRANSIENT:
                        raise
                    except Exception as exc:  # noqa: BLE001 - handed to the caller
                        results.append((future, None, exc))
        self._resolve_all(results)


def lead_alone(fn: F) -> F:
    """Mark a write function whose first statement may commit on its own when the function
    is a transaction by itself (one write of the database thread's batch; on PostgreSQL that
    saves the ``COMMIT``'s round trip: :meth:`Store.lead_alone`). The function promises that
    whenever a second statement follows its first, the first changed nothing (a
    compare-and-set that did not apply, a read), and that nothing it does after a first
    statement that changed something can fail: what follows runs in a transaction of its
    own, which a failure rolls back without undoing the first."""
    fn.lead_alone = True  # type: ignore[attr-defined]
    return fn


def lead_in_transaction() -> None:
    """Inside a :func:`lead_alone` write, before its first statement: that statement opens the
    transaction as usual — for a call that finds its first statement must hold what it locks
    until the end (a fence followed by the writes it guards). A no-op elsewhere."""
    mark = getattr(database.obj, "lead_in_transaction", None)
    if mark is not None:
        mark()


def _coalesced(batch: list[Any]) -> list[tuple[Callable[..., Any], list[Any]]]:
    """A batch's writes as (function, jobs): the calls of a function that has a ``many``
    form (``fn.many(list of argument tuples) -> list of results``, one statement for all
    where statements are round trips) together, where the first of them was; any other call
    on its own. Calls brought together must commute with the writes between them: they touch
    rows of their own (a worker's starts of different deliveries, its outcomes)."""
    groups: list[tuple[Callable[..., Any], list[Any]]] = []
    together: dict[Any, list[Any]] = {}
    for job in batch:
        fn = job[1]
        if getattr(fn, "many", None) is None:
            groups.append((fn, [job]))
        elif fn in together:
            together[fn].append(job)
        else:
            together[fn] = [job]
            groups.append((fn, together[fn]))
    return groups


class _Failed(Exception):
    def __init__(self, future: asyncio.Future, error: BaseException):
        super().__init__(str(error))
        self.future = future
        self.error = error


# -- statements compiled once -------------------------------------------------------------------

class _Param:
    """A named placeholder inside a query built for :class:`Statement`."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def param(name: str) -> peewee.Value:
    """A parameter of a :class:`Statement`, bound by name at each execution (unconverted:
    pass values of the column's database type)."""
    return peewee.Value(_Param(name), converter=False)


def unindexed(field: peewee.Field) -> peewee.ColumnBase:
    """A text column as a condition no index serves (``column || ''``, the same value).

    A compare-and-set finds its row by primary key and checks ``state`` (or ``worker``,
    ``scheduler``) beside it. Those columns lead indexes of their own, and a planner without
    fresh statistics — PostgreSQL on a table that grew since its last ANALYZE, SQLite
    without ``sqlite_stat1`` for an ``IN`` list — may pick that index and read every queued
    or waiting task to update one: a cost per event that grows with the queue. With the
    checked columns written this way the key is the only way in.
    """
    return field.concat("")


def _execute(db: peewee.Database, sql: str, params: list[Any]) -> Any:
    """A hot statement: prepared once per connection where the database keeps prepared
    statements of its own making (PostgreSQL; SQLite's driver caches them by itself)."""
    if isinstance(db, PostgresDatabase):
        return db.execute_prepared(sql, params)
    return db.execute_sql(sql, params)


def execute_text(sql: str, params: list[Any]) -> Any:
    """A hot statement written as text for the database in use (placeholders its
    ``param``): prepared once per connection where :func:`_execute` prepares."""
    return _execute(database.obj, sql, params)


class Statement:
    """A peewee query on a hot path, turned into SQL once per database.

    Building and compiling a peewee query costs far more than executing it (hundreds of
    microseconds against tens for a one-row update). ``build`` returns the query with
    :func:`param` where values go; its SQL is generated by peewee for the database in use
    (dialect quoting and placeholders) on first use, then only executed.
    """

    def __init__(self, build: Callable[[], Any]):
        self.build = build
        self._compiled: dict[int, tuple[peewee.Database, str, list[Any]]] = {}

    def _sql(self) -> tuple[peewee.Database, str, list[Any]]:
        db = database.obj
        compiled = self._compiled.get(id(db))
        if compiled is None or compiled[0] is not db:
            sql, params = self.build().sql()
            compiled = self._compiled[id(db)] = (db, sql, list(params))
        return compiled

    def execute(self, **values: Any) -> Any:
        """Run it; returns the DB-API cursor (``rowcount``, ``fetchone()``)."""
        db, sql, params = self._sql()
        return _execute(db, sql, [values[p.name] if isinstance(p, _Param) else p
                                  for p in params])


class ListStatement:
    """A hot query whose one parameter is a list of ids (``WHERE column IN (...)``), turned
    into SQL once per database and per list length rounded up to a power of two: a list is
    padded with repeats of its first id, which changes no ``IN``. Lists longer than
    ``CHUNK`` are run in chunks (``execute`` yields the rows of each)."""

    CHUNK = 512

    def __init__(self, build: Callable[[list[int]], Any]):
        self.build = build
        self._compiled: dict[tuple[int, int], tuple[peewee.Database, str]] = {}

    def _sql(self, size: int) -> tuple[peewee.Database, str]:
        db = database.obj
        compiled = self._compiled.get((id(db), size))
        if compiled is None or compiled[0] is not db:
            sql, params = self.build(list(range(size))).sql()
            if len(params) != size:
                raise ValueError(f"ListStatement: the query has {len(params)} parameters, "
                                 f"not the {size} ids")
            compiled = self._compiled[(id(db), size)] = (db, sql)
        return compiled

    def execute(self, ids: list[int]) -> Any:
        """The rows (tuples) for ``ids``."""
        for start in range(0, len(ids), self.CHUNK):
            chunk = list(ids[start:start + self.CHUNK])
            size = 1 << (len(chunk) - 1).bit_length()
            db, sql = self._sql(size)
            yield from _execute(db, sql, chunk + chunk[:1] * (size - len(chunk)))
