"""The asynchronous client: submit graphs and operate them from asyncio programs.

:class:`AsyncClient` is the one path to an installation from code: the CLI's ``wgops graph``
commands, the console's actions and :class:`wgops.Client` all go through it. It reads the
installation's settings as the CLI does (``$WGOPS_HOME/config.toml`` < ``WGOPS_*`` < keyword
overrides) and returns the JSON documents of DESIGN §6 as dicts.

Connections are opened on first use and closed by :meth:`AsyncClient.close` (or ``async
with``): the broker only when a method needs it (``show``, ``list`` and ``pools`` read the
database alone); the database on threads of the event loop's executor, each call bound to
this client's database, so several clients of several installations share one process.
An AsyncClient belongs to the event loop it is used on; on another loop it connects anew.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import peewee

from wgops.graph import GraphSource, normalised, validate
from wgops.store import deletion
from wgops.store.config import AGE_FORMS, Settings, mask_url, parse_age
from wgops.store.db import Store, first_line, in_thread
from wgops.store.document import POOL_RE
from wgops.store.errors import Conflict, InvalidDocument, Unreachable, WaitTimeout
from wgops.store.graphs import get_graph, list_graphs, show_graph
from wgops.store.models import GRAPH_STATES, GRAPH_TERMINAL
from wgops.store.selection import select, states_of
from wgops.store.tasklogs import task_log

if TYPE_CHECKING:
    from wgops.daemon.broker import Broker
    from wgops.daemon.control import Controller
    from wgops.daemon.submit import GraphFollower
    from wgops.store.models import Graph as GraphRow

T = TypeVar("T")
Doc = dict[str, Any]
Docs = list[dict[str, Any]]

WAIT_BACKSTOP = 5.0        # seconds between database checks while waiting on events


def summary(graph: GraphRow) -> Doc:
    """What an action returns for each graph it acted on."""
    return {"id": graph.id, "name": graph.name, "state": graph.state,
            "priority": graph.priority, "scheduler": graph.scheduler}


def _state(graph_id: int) -> str:
    return get_graph(graph_id).state


def _pools() -> Docs:
    from wgops.store.control import pools

    return pools()


class _OnLoop:
    """What a client holds on one event loop: its lock, broker connection and follower."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.lock = asyncio.Lock()
        self.broker: Broker | None = None
        self.follower: GraphFollower | None = None


class AsyncClient:
    """A connection to one wgops installation, for asyncio code (``async with``).

    Settings are read as the CLI reads them; ``home``, ``broker_url``, ``db_url`` and
    ``namespace`` override them (``settings``: a ready :class:`~wgops.store.config.Settings`
    instead). ``actor`` names the client in the event log (``api``, ``cli``, ``console``).
    A bad setting raises :class:`~wgops.ConfigError`.
    """

    def __init__(self, *, home: str | None = None, broker_url: str | None = None,
                 db_url: str | None = None, namespace: str | None = None,
                 settings: Settings | None = None, actor: str = "api"):
        overrides = {"home": home, "broker_url": broker_url, "db_url": db_url,
                     "namespace": namespace}
        if settings is None:
            settings = Settings.load(**overrides)
        elif any(v is not None for v in overrides.values()):
            raise TypeError("give settings or the overrides (home=, broker_url=, ...), not both")
        self.settings = settings
        self.actor = actor
        self._store = Store.of(settings.db_url)
        self._on: _OnLoop | None = None
        self._ready = False

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.settings.namespace} "
                f"{mask_url(self.settings.db_url)}>")

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the broker connection (the database's are closed after each call)."""
        on, self._on = self._on, None
        if on is None or on.loop is not asyncio.get_running_loop():
            return
        if on.follower is not None:
            with contextlib.suppress(Exception):
                await on.follower.close()
        if on.broker is not None:
            await on.broker.close()

    # -- connections ----------------------------------------------------------------------------

    def _here(self) -> _OnLoop:
        loop = asyncio.get_running_loop()
        if self._on is None or self._on.loop is not loop:
            self._on = _OnLoop(loop)
        return self._on

    @contextlib.contextmanager
    def _errors(self, broker: bool = False) -> Iterator[None]:
        """A database (or, with ``broker``, a broker) gone mid-call is ``Unreachable``."""
        try:
            yield
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            raise Unreachable(f"database {mask_url(self.settings.db_url)} unreachable: "
                              f"{first_line(exc)}") from None
        except Exception as exc:
            if broker:
                from wgops.daemon.broker import BROKER_ERRORS

                if isinstance(exc, BROKER_ERRORS):
                    raise Unreachable(f"broker {mask_url(self.settings.broker_url)} "
                                      f"unreachable: {first_line(exc)}") from None
            raise

    async def _schema(self) -> None:
        """Create or migrate the database's tables once (as every command does)."""
        if self._ready:
            return
        from wgops.store.migrations import migrate

        async with self._here().lock:
            if not self._ready:
                with self._errors():
                    await in_thread(self._store, migrate, self._store)
                self._ready = True

    async def _db(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run a store function on a thread bound to this client's database."""
        await self._schema()
        with self._errors():
            return await in_thread(self._store, fn, *args, write=write)

    async def _broker(self) -> Broker:
        from wgops.daemon.broker import Broker

        on = self._here()
        async with on.lock:
            broker = on.broker
            if broker is None or broker.connection is None or broker.connection.is_closed:
                broker = on.broker = await Broker(self.settings, f"wgops-{self.actor}").connect()
        return broker

    async def _follower(self) -> GraphFollower:
        from wgops.daemon.submit import GraphFollower

        broker = await self._broker()
        on = self._here()
        async with on.lock:
            if on.follower is None or on.follower.broker is not broker:
                with self._errors(broker=True):
                    on.follower = await GraphFollower(broker).start()
            return on.follower

    async def _controller(self) -> Controller:
        from wgops.daemon.control import Controller

        await self._schema()
        return Controller(self.settings, self._store, await self._broker(), self.actor)

    async def _act(self, action: str, *args: Any) -> GraphRow:
        controller = await self._controller()
        with self._errors(broker=True):
            return await getattr(controller, action)(*args)

    # -- graphs -----------------------------------------------------------------------------------

    async def validate(self, graph: GraphSource, *,
                       inputs: Mapping[str, Any] | None = None) -> Doc:
        """Check a graph without storing it: ``{"name", "valid": True, "tasks": N}``, or
        ``InvalidDocument`` (the message ``wgops graph validate`` prints)."""
        return await asyncio.to_thread(validate, graph, inputs,
                                       self.settings.max_document_bytes)

    async def submit(self, graph: GraphSource, *, inputs: Mapping[str, Any] | None = None,
                     priority: int | None = None, scheduler: str | None = None) -> Doc:
        """Store a graph and launch it; return ``{"id", "name", "state"}``.

        ``graph``: a :class:`wgops.Graph`, the path of a YAML or JSON document, or a document
        dict. ``inputs`` override the document's input defaults (as ``--set``); ``priority``
        (0..9, 9 first) overrides its priority. ``scheduler``: hand the graph to that live
        scheduler instead of the graphs queue (``NotFound`` when there is none by that id,
        ``Conflict`` when it is dead or stopping). Nothing is stored when the graph is
        invalid (``InvalidDocument``), the scheduler refused, or the broker or the database
        unreachable (``Unreachable``).
        """
        from wgops.daemon.submit import submit

        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                     or not 0 <= priority <= 9):
            raise InvalidDocument(f"priority must be an integer from 0 to 9, not {priority!r}")
        if scheduler is not None and (not isinstance(scheduler, str) or not scheduler):
            raise ValueError(f"scheduler must be a scheduler's id, not {scheduler!r}")
        doc = await asyncio.to_thread(normalised, graph, inputs,
                                      self.settings.max_document_bytes)
        await self._schema()
        broker = await self._broker()
        with self._errors(broker=True):
            row = await submit(self.settings, self._store, broker, doc, priority, scheduler)
        return {"id": row.id, "name": row.name, "state": row.state}

    async def wait(self, graph_id: int, timeout: float | None = None) -> Doc:
        """Wait until the graph has ended (finished, failed or killed) and return its
        :meth:`show` document. It follows ``{ns}.events`` (no polling; the database is read
        again every few seconds as a backstop). ``timeout`` (seconds) passed first:
        :class:`~wgops.WaitTimeout`, a ``TimeoutError``. ``NotFound`` for an unknown id."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        follower = await self._follower()
        with follower.watch(graph_id) as ended:
            while True:
                ended.clear()
                state = await self._db(_state, graph_id)
                if state in GRAPH_TERMINAL:
                    return await self.show(graph_id)
                left = WAIT_BACKSTOP if deadline is None else \
                    min(WAIT_BACKSTOP, deadline - loop.time())
                if left <= 0:
                    raise WaitTimeout(f"graph {graph_id} is still {state} after {timeout:g}s",
                                      graph_id, state)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), left)

    async def show(self, graph_id: int) -> Doc:
        """The graph and its tasks: the document of ``wgops graph show --json`` (``id``,
        ``name``, ``state``, ``priority``, ``scheduler``, ``parent``, ``outputs``, ``error``,
        ``inputs``, ``created``/``started``/``finished`` and ``tasks``, each with ``name``,
        ``state``, ``attempts``, ``worker``, ``started``, ``finished``, ``result``,
        ``error``, ``waiting_for``, ``kind``, ``pool``, ``deps``, ``child``).
        ``NotFound`` for an unknown id."""
        return await self._db(show_graph, graph_id)

    async def list(self, state: str | None = None, *, limit: int | None = None,
                   nested: bool = False) -> Docs:
        """Graphs, newest first: the rows of ``wgops graph list --json`` (``id``, ``name``,
        ``state``, ``priority``, ``scheduler``, ``tasks_total``, ``tasks_done``). ``state``:
        only graphs in it; ``nested``: nested graphs too; ``limit``: at most that many."""
        if state is not None and state not in GRAPH_STATES:
            raise ValueError(f"state must be one of {', '.join(GRAPH_STATES)}, not {state!r}")
        return await self._db(list_graphs, state, limit, nested)

    async def logs(self, graph_id: int, task: str, attempt: int | None = None) -> Doc:
        """What a task printed: ``{"graph", "task", "attempt", "text", "dropped",
        "running"}`` (``wgops graph logs --json``). ``text``: the attempt's stdout, stderr and
        logging records (``2026-12-02 01:02:03.456 INFO name: message``) as captured, at
        most ``max_log_bytes`` (the tail); ``dropped``: characters written before it;
        ``running``: the attempt still runs (the text so far, flushed every second or so).
        ``task``: its name (a mapped task's copy is ``NAME[i]``); ``attempt``: 1 is the first,
        None the last (0 with no text when the task has not started). ``NotFound`` for an
        unknown graph or task, or an attempt it never had."""
        if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int)):
            raise ValueError(f"attempt must be an integer, not {attempt!r}")
        return await self._db(task_log, graph_id, task, attempt)

    async def _bulk(self, action: str, graph_ids: tuple[int, ...], ids: Iterable[int] | None,
                    state: str | Iterable[str] | None, name: str | None, all: bool) -> Docs:
        """Act on the graphs selected (:func:`wgops.store.selection.select`). Named graphs
        are acted on in order, the first that cannot be raising; graphs chosen by state,
        name or ``all`` are those the action applies to, and one that changed meanwhile is
        passed over."""
        chosen = [*graph_ids, *(ids or ())]
        states = states_of(state)
        if not (chosen or states or name is not None or all):
            raise ValueError(f"{action}: name graph ids, a state, a name pattern or all=True")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name must be a pattern (fnmatch), not {name!r}")
        await self._schema()
        with self._errors(broker=True):
            await self._broker()               # unreachable: say so before anything else
        selected = await self._db(select, chosen, states, name, action)
        out = []
        for gid, _ in selected:
            try:
                out.append(summary(await self._act(action, gid)))
            except Conflict:
                if chosen:
                    raise
        return out

    async def pause(self, *graph_ids: int, ids: Iterable[int] | None = None,
                    state: str | Iterable[str] | None = None, name: str | None = None,
                    all: bool = False) -> Docs:
        """Stop dispatching new tasks of the graphs (running tasks finish). Returns
        ``[{"id", "name", "state", "priority", "scheduler"}]``, one per graph acted on.

        Which graphs: the ids given (positional or ``ids=``), acted on in order, the first
        that cannot be paused raising (``Conflict`` or ``NotFound``); or the top-level graphs
        in ``state`` (one name or several), whose name matches ``name`` (fnmatch), or
        ``all=True``: of those, the ones the action applies to (here queued or running).
        Ids with ``state``/``name`` narrow the ids. None of them: ``ValueError``."""
        return await self._bulk("pause", graph_ids, ids, state, name, all)

    async def play(self, *graph_ids: int, ids: Iterable[int] | None = None,
                   state: str | Iterable[str] | None = None, name: str | None = None,
                   all: bool = False) -> Docs:
        """Resume paused graphs. Selects, returns and raises as :meth:`pause`."""
        return await self._bulk("play", graph_ids, ids, state, name, all)

    async def kill(self, *graph_ids: int, ids: Iterable[int] | None = None,
                   state: str | Iterable[str] | None = None, name: str | None = None,
                   all: bool = False) -> Docs:
        """Cancel the graphs' running tasks and mark the rest killed (also without a live
        scheduler); by state, name or all: the queued, running and paused ones. Selects,
        returns and raises as :meth:`pause`."""
        return await self._bulk("kill", graph_ids, ids, state, name, all)

    async def retry(self, *graph_ids: int, ids: Iterable[int] | None = None,
                    state: str | Iterable[str] | None = None, name: str | None = None,
                    all: bool = False) -> Docs:
        """Re-queue the failed, skipped and killed tasks of failed or killed top-level
        graphs. Selects, returns and raises as :meth:`pause`."""
        return await self._bulk("retry", graph_ids, ids, state, name, all)

    async def delete(self, *graph_ids: int, ids: Iterable[int] | None = None) -> Doc:
        """Delete finished, failed or killed top-level graphs with everything under them
        (nested and built graphs, tasks, their event-log rows): all of them or, when one is
        unknown (``NotFound``), nested or not terminal (``Conflict``), none. Returns
        ``{"graphs": N, "tasks": M}``, the rows removed (nested graphs counted)."""
        chosen = [int(i) for i in (*graph_ids, *(ids or ()))]
        if not chosen:
            raise ValueError("delete: name one or more graph ids")
        return await self._db(deletion.delete, self._store, chosen, self.actor)

    async def prune(self, older_than: str | float, states: str | Iterable[str] | None = None,
                    dry_run: bool = False) -> Doc:
        """Delete the top-level graphs in ``states`` (default: finished, failed and killed)
        that ended more than ``older_than`` ago (an AGE: ``"90s"``, ``"15m"``, ``"12h"``,
        ``"30d"``, or seconds) with everything under them, in batches. ``dry_run``: count
        only. Returns ``{"graphs": N, "tasks": M}`` (removed, or that would be). A malformed
        AGE raises :class:`~wgops.ConfigError`; a state that is not terminal, ``ValueError``."""
        if isinstance(older_than, str):
            seconds = parse_age(older_than)
        elif isinstance(older_than, (int, float)) and not isinstance(older_than, bool) \
                and older_than > 0:
            seconds = float(older_than)
        else:
            raise ValueError(f"older_than must be an age such as {AGE_FORMS}, not "
                             f"{older_than!r}")
        chosen = states_of(states)
        bad = [s for s in chosen if s not in GRAPH_TERMINAL]
        if bad:
            raise ValueError(f"prune: state {bad[0]!r} is not finished, failed or killed")
        return await self._db(deletion.prune, self._store, seconds, chosen or None, dry_run,
                              None, None, self.actor)

    async def reassign(self, graph_id: int, to: str) -> Doc:
        """Move a live top-level graph (and its nested graphs) to scheduler ``to``, which
        adopts it. Returns ``{"id", "name", "state", "priority", "scheduler"}``; ``NotFound``
        (no such graph or scheduler) or ``Conflict`` (not live, nested, dead scheduler)."""
        return summary(await self._act("reassign", graph_id, to))

    async def set_priority(self, graph_id: int, priority: int) -> Doc:
        """Change a graph's priority (0..9, 9 first), nested graphs included. Returns as
        :meth:`reassign`."""
        return summary(await self._act("priority", graph_id, priority))

    # -- pools ------------------------------------------------------------------------------------

    async def pools(self) -> Docs:
        """``[{"name", "max_running", "running", "queued"}]`` (``wgops pool list --json``)."""
        return await self._db(_pools)

    async def set_pool(self, name: str, max_running: int | None) -> Doc:
        """Cap how many tasks of pool ``name`` run at once (None: unlimited); it takes
        effect at once. Returns ``{"name", "max_running"}``."""
        if not isinstance(name, str) or not POOL_RE.fullmatch(name):
            raise ValueError(f"bad pool name {name!r}")
        pool = await self._act("set_pool", name, max_running)
        return {"name": pool.name, "max_running": pool.max_running}
