"""The blocking client: :class:`wgops.AsyncClient`'s methods for scripts, notebooks and the CLI.

:class:`Client` runs an :class:`~wgops.aclient.AsyncClient` on an event loop of its own, on a
thread it starts at the first call and stops at :meth:`Client.close` (or the end of a
``with`` block). So it works the same in a plain script and in a notebook, whose own event
loop already runs, and one process may hold clients of several installations.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Concatenate, ParamSpec, TypeVar

from wgops.aclient import AsyncClient
from wgops.store.config import Settings

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]]) \
        -> Callable[Concatenate[Client, P], R]:
    """The blocking twin of an AsyncClient method: same signature, same documentation."""
    def call(self: Client, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(method(self._client, *args, **kwargs))

    functools.update_wrapper(call, method)
    call.__qualname__ = f"Client.{method.__name__}"
    call.__module__ = __name__
    return call


class _Loop:
    """An event loop on a thread of its own (``asyncio.run`` there: its clean-up too)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()),
                                        name="wgops-client", daemon=True)
        self._thread.start()
        self._ready.wait()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        assert self.loop is not None
        future: Future[R] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:          # KeyboardInterrupt in the caller: stop the call too
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


class Client:
    """A connection to one wgops installation, blocking (``with wgops.Client() as c:``).

    Settings are read as the CLI reads them; ``home``, ``broker_url``, ``db_url`` and
    ``namespace`` override them (``settings``: a ready :class:`~wgops.store.config.Settings`
    instead). ``actor`` names the client in the event log. The methods are those of
    :class:`wgops.AsyncClient`, returning their results instead of awaitables. A client may
    be used from several threads at once.
    """

    def __init__(self, *, home: str | None = None, broker_url: str | None = None,
                 db_url: str | None = None, namespace: str | None = None,
                 settings: Settings | None = None, actor: str = "api"):
        self._client = AsyncClient(home=home, broker_url=broker_url, db_url=db_url,
                                   namespace=namespace, settings=settings, actor=actor)
        self._loop: _Loop | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        """The installation's settings, as read at construction."""
        return self._client.settings

    def __repr__(self) -> str:
        return repr(self._client).replace("AsyncClient", "Client", 1)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        with self._lock:
            if self._loop is None:
                self._loop = _Loop()
            loop = self._loop
        return loop.run(coro)

    def close(self) -> None:
        """Close the connections and stop the client's thread (it starts again if used)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            try:
                loop.run(self._client.close())
            finally:
                loop.stop()

    validate = _blocking(AsyncClient.validate)
    submit = _blocking(AsyncClient.submit)
    wait = _blocking(AsyncClient.wait)
    show = _blocking(AsyncClient.show)
    list = _blocking(AsyncClient.list)
    logs = _blocking(AsyncClient.logs)
    pause = _blocking(AsyncClient.pause)
    play = _blocking(AsyncClient.play)
    kill = _blocking(AsyncClient.kill)
    retry = _blocking(AsyncClient.retry)
    delete = _blocking(AsyncClient.delete)
    prune = _blocking(AsyncClient.prune)
    reassign = _blocking(AsyncClient.reassign)
    set_priority = _blocking(AsyncClient.set_priority)
    pools = _blocking(AsyncClient.pools)
    set_pool = _blocking(AsyncClient.set_pool)
