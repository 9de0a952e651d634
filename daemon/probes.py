"""Probes: can the broker and the database be reached, and which daemons have announced
themselves. Synchronous, with short timeouts, for the commands and the console (never for the
daemons' event loops)."""

from __future__ import annotations

import contextlib
import errno
import http.client
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aio_pika
import peewee

from wgops.daemon.eventloop import run_coroutine
from wgops.store.config import Settings, mask_url
from wgops.store.db import Store, first_line
from wgops.store.errors import ConfigError, Unreachable
from wgops.store.liveness import HOST, accepts_work
from wgops.store.migrations import migrate
from wgops.store.models import Scheduler, Worker


@contextlib.contextmanager
def db_session(settings: Settings) -> Iterator[None]:
    """A connection to the installation's database for the current thread, inside the block.

    The thread is bound to the installation's store for the block only (other threads and
    other stores of the process are left alone); a connection the thread already had open is
    reused and left open. An SQLite file that does not exist is not created."""
    parts = urlsplit(settings.db_url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        path = path[1:] if path.startswith("//") else path
        if not Path(path).exists():
            raise Unreachable(f"no database at {path} (run wgops init)")
    store = Store.of(settings.db_url)
    with store.bound():
        was_closed = store.db.is_closed()
        try:
            store.db.connect(reuse_if_open=True)
        except peewee.OperationalError as exc:
            raise Unreachable(f"database {mask_url(settings.db_url)} unreachable: "
                              f"{first_line(exc)}") from None
        try:
            yield
        finally:
            if was_closed and not store.db.is_closed():
                store.db.close()


def check_database(settings: Settings) -> None:
    """Raise Unreachable if the database cannot be reached; create the schema if needed."""
    store = Store(settings.db_url).connect()
    try:
        migrate(store)
    finally:
        store.close()


@contextlib.contextmanager
def quiet_amqp() -> Iterator[None]:
    """Silence aiormq/aio-pika while probing: an unreachable broker is reported once, by us."""
    loggers = [logging.getLogger(name) for name in ("aiormq", "aio_pika")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def check_broker(settings: Settings, raise_error: bool = True, timeout: float = 5.0) -> bool:
    """Whether the broker accepts a connection (with the configured credentials)."""
    async def attempt() -> None:
        connection = await aio_pika.connect(settings.broker_url, timeout=timeout)
        await connection.close()

    try:
        with quiet_amqp():
            run_coroutine(attempt())
        return True
    except Exception as exc:  # noqa: BLE001 - any failure to connect means unreachable
        if raise_error:
            raise Unreachable(f"broker {mask_url(settings.broker_url)} unreachable: "
                              f"{exc or type(exc).__name__}") from None
        return False


def announced_pids(settings: Settings, kind: str, pids: list[int]) -> set[int]:
    """Those of ``pids`` on this host whose daemon row says it is alive and accepts work."""
    if not pids:
        return set()
    model = Scheduler if kind == "scheduler" else Worker
    with db_session(settings):
        rows = model.select(model.pid).where(
            model.pid.in_(pids), model.host == HOST,
            accepts_work(model, settings.stale_after))
        return {row.pid for row in rows}


def listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    """The one-line error (exit 2) for a server that cannot listen on ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"port {port} on {host} is in use")
    return ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def check_port_free(host: str, port: int) -> None:
    """Raise the error of :func:`listen_error` if nothing may listen on ``host:port`` now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise listen_error(host, port, exc) from None


def http_answers(host: str, port: int, path: str, timeout: float = 1.0) -> bool:
    """Whether ``GET path`` on ``host:port`` answers 200."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
