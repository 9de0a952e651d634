"""One database proxy, selected by URL; SQLite pragmas and dialect capabilities in one place.

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
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee

from wgops.store.config import mask_url
from wgops.store.errors import ConfigError, Unreachable

logger = logging.getLogger(__name__)
T = TypeVar("T")

database = peewee.DatabaseProxy()


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


SQLITE = Capabilities("sqlite", "IMMEDIATE", False, False,
                      sqlite3.sqlite_version_info >= (3, 35, 0), "EXCLUSIVE", False)
POSTGRES = Capabilities("postgresql", None, True, True, True, None, True)

MIGRATION_LOCK = 0x77676F7073          # "wgops": the advisory lock of a migration

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 15000,
    "cache_size": -16000,
}


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
        options: dict[str, Any] = {"connect_timeout": 5}
        options.update(parse_qsl(parts.query))        # sslmode=..., password=..., ...
        db = peewee.PostgresqlDatabase(
            unquote((parts.path or "/").lstrip("/")) or "postgres",
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else options.pop(
                "password", None),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            **options,
        )
        return db, POSTGRES
    raise ConfigError(f"unsupported database URL {mask_url(url)!r}")


class Store:
    """The installation's database: the proxy initialised, with its capabilities.

    peewee's proxy is process-wide, so there is one Store per URL in a process: ``Store(url)``
    returns the existing one (shared by every thread; each thread has its own connection).
    """

    _instances: dict[str, "Store"] = {}

    def __new__(cls, url: str) -> "Store":
        existing = cls._instances.get(url)
        if existing is not None:
            if database.obj is not existing.db:
                database.initialize(existing.db)
            return existing
        return super().__new__(cls)

    def __init__(self, url: str):
        if getattr(self, "url", None) == url:
            return
        self.url = url
        self.db, self.caps = make_database(url)
        database.initialize(self.db)
        Store._instances[url] = self

    def connect(self) -> "Store":
        try:
            self.db.connect(reuse_if_open=True)
        except peewee.OperationalError as exc:
            raise Unreachable(f"database {mask_url(self.url)} unreachable: {first_line(exc)}") \
                from None
        return self

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    def write(self) -> Any:
        """A write transaction (SQLite takes the write lock at BEGIN, so no upgrade deadlock)."""
        if self.caps.begin_write:
            return self.db.atomic(self.caps.begin_write)
        return self.db.atomic()

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
    """The capabilities of the database the proxy points at (inside store functions)."""
    for store in Store._instances.values():
        if store.db is database.obj:
            return store.caps
    raise RuntimeError("no Store for the current database")


def open_store(url: str) -> Store:
    """The process's Store for ``url``."""
    return Store(url)


async def in_thread(store: Store, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
    """Run a synchronous store function from async code (a command, the console, the doctor):
    on a worker thread, with a connection of its own, in a write transaction if ``write``.
    Daemons use :class:`AsyncStore` instead (one thread, group commit)."""
    def call() -> T:
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
    """

    def __init__(self, store: Store, max_batch: int = 256):
        self.store = store
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="wgops-db", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.unavailable_since: float | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    async def stop(self) -> None:
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit(False, fn, args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit(True, fn, args)

    def _submit(self, write: bool, fn: Callable[..., Any], args: tuple) -> "asyncio.Future[Any]":
        assert self._loop is not None, "AsyncStore.start() first"
        future = self._loop.create_future()
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
                for _, fn, args, future in batch:
                    results.append((future, fn(*args), None))
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


class Statement:
    """A peewee query on a hot path, turned into SQL once per database.

    Building and compiling a peewee query costs far more than executing it (hundreds of
    microseconds against tens for a one-row update). ``build`` returns the query with
    :func:`param` where values go; its SQL is generated by peewee for the database in use
    (dialect quoting and placeholders) on first use, then only executed.
    """

    def __init__(self, build: Callable[[], Any]):
        self.build = build
        self._compiled: tuple[peewee.Database, str, list[Any]] | None = None

    def _sql(self) -> tuple[peewee.Database, str, list[Any]]:
        db = database.obj
        compiled = self._compiled
        if compiled is None or compiled[0] is not db:
            sql, params = self.build().sql()
            compiled = self._compiled = (db, sql, list(params))
        return compiled

    def execute(self, **values: Any) -> Any:
        """Run it; returns the DB-API cursor (``rowcount``, ``fetchone()``)."""
        db, sql, params = self._sql()
        return db.execute_sql(sql, [values[p.name] if isinstance(p, _Param) else p
                                    for p in params])
