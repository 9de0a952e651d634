"""The wgops console: a thin Textual app over a :class:`~console.data.backend.Backend`.

The app owns the three I/O loops (broker link, status poll, events drain), all in workers;
it hands their results down to the screens as attributes, and turns the screens' requests
(open a graph, run an action) into screens, dialogs and workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen

from wgops.console.data.backend import Backend
from wgops.console.data.model import EventRow, Status
from wgops.console.messages import GraphAction, GraphsAction, OpenGraph, OpenTask
from wgops.console.screens.base import GRAPH_HELP, ConsoleScreen
from wgops.console.screens.dialogs import ConfirmScreen, HelpScreen, PickScreen, SubmitScreen
from wgops.console.screens.events import EventsScreen
from wgops.console.screens.graph import GraphScreen
from wgops.console.screens.main import MainScreen
from wgops.console.screens.task import TaskScreen
from wgops.store.errors import WgopsError

logger = logging.getLogger(__name__)

STATUS_EVERY = 2.0          # seconds between status polls
DRAIN_EVERY = 0.5           # seconds between events drains
HISTORY = 2000              # events kept for the events screen

# actions that change something: hidden (bindings, palette, help) with --readonly
MUTATING = {"graph", "submit", "scale", "start_daemons", "stop_daemons", "mark", "mark_all"}
NAVIGATION = [("↑ ↓ / j k", "Move"), ("enter", "Drill down (graph → task / nested graph)"),
              ("esc", "Back, or clear the filter"), ("/", "Filter the graphs or the events"),
              ("s", "Sort the graphs (or click a column header)"), ("mouse", "Click, scroll")]


class WgopsApp(App[None]):
    """The operations console."""

    CSS_PATH = "console.tcss"
    TITLE = "wgops console"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("colon", "command_palette", "Palette", key_display=":"),
        Binding("e", "events", "Events"),
        Binding("n", "submit", "Submit"),
        Binding("plus", "scale('worker', 1)", "Worker", key_display="+"),
        Binding("minus", "scale('worker', -1)", "Worker", key_display="-"),
        Binding("greater_than_sign", "scale('scheduler', 1)", "Sched", key_display=">"),
        Binding("less_than_sign", "scale('scheduler', -1)", "Sched", key_display="<"),
        Binding("D", "start_daemons", "Start"),
        Binding("ctrl+d", "stop_daemons", "Stop", key_display="^d"),
    ]
    HELP = {
        "quit": "Quit the console (the daemons keep running)",
        "help": "This list of keys", "command_palette": "Command palette (also ctrl+p)",
        "events": "All events, filterable", "submit": "Submit a graph document (validated)",
        "scale('worker', 1)": "Add a worker", "scale('worker', -1)": "Remove a worker (asks)",
        "scale('scheduler', 1)": "Add a scheduler",
        "scale('scheduler', -1)": "Remove a scheduler (asks)",
        "start_daemons": "Start the circus arbiter and the daemons",
        "stop_daemons": "Stop every daemon and the arbiter (asks)",
    }

    def __init__(self, backend: Backend, readonly: bool = False, live: bool = True):
        super().__init__()
        self.backend = backend
        self.readonly = readonly
        self.live = live                  # False: no polling loops (screenshots, snapshots)
        self.status: Status | None = None
        self.event_history: deque[EventRow] = deque(maxlen=HISTORY)
        self._generation = 0

    # -- life cycle ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(MainScreen())
        self.run_worker(self._broker_link(), name="broker", group="io")
        self.status_loop()
        self.events_loop()

    async def _broker_link(self) -> None:
        try:
            await self.backend.start()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged; the indicator shows the broker down
            logger.exception("broker link stopped")

    @work(group="io", exclusive=False)
    async def status_loop(self) -> None:
        while True:
            try:
                status = await self.backend.status()
            except Exception:  # noqa: BLE001 - loop boundary: logged, the loop goes on
                logger.exception("status poll")
            else:
                self.status = status
                self._tell_screens("status_arrived", status)
            if not self.live:
                return
            await asyncio.sleep(STATUS_EVERY)

    @work(group="io", exclusive=False)
    async def events_loop(self) -> None:
        while True:
            batch = self.backend.drain_events()
            caught_up = self.backend.generation != self._generation
            self._generation = self.backend.generation
            if batch.events:
                self.event_history.extend(batch.events)
            if batch.events:
                self._tell_screens("show_events", batch.events)
            if batch.events or caught_up:
                self._tell_screens("events_arrived", batch.graphs, caught_up)
            if not self.live:
                return
            await asyncio.sleep(DRAIN_EVERY)

    def _console_screens(self) -> Iterable[ConsoleScreen]:
        return [s for s in self.screen_stack if isinstance(s, ConsoleScreen) and s.is_mounted]

    def _tell_screens(self, method: str, *args: Any) -> None:
        """Hand data down to every console screen (``status_arrived``, ``show_events``,
        ``events_arrived``); one whose widgets are not there (composing, or being taken down as
        the app exits) is skipped this time."""
        for screen in self._console_screens():
            try:
                getattr(screen, method)(*args)
            except NoMatches:
                logger.debug("screen %s not ready for data", screen)

    async def action_quit(self) -> None:
        self.exit()

    async def on_unmount(self) -> None:
        self.workers.cancel_group(self, "io")
        await self.backend.close()

    # -- navigation ---------------------------------------------------------------------

    def on_open_graph(self, message: OpenGraph) -> None:
        self.push_screen(GraphScreen(message.graph_id))

    def on_open_task(self, message: OpenTask) -> None:
        self.push_screen(TaskScreen(message.graph_id, message.name))

    def action_events(self) -> None:
        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_sections(self.screen)))

    def key_sections(self, screen: Screen[Any]) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every key usable on ``screen``, as shown by ``?``."""
        own = getattr(screen, "COMMANDS_HELP", {})
        here = [(b.key_display or b.key, GRAPH_HELP.get(b.action[7:-2], b.description)
                 if b.action.startswith("graph(") else own.get(b.action, b.description))
                for b in screen.BINDINGS if isinstance(b, Binding) and self._allowed(b.action)]
        everywhere = [(b.key_display or b.key, self.HELP.get(b.action, b.description))
                      for b in self.BINDINGS if isinstance(b, Binding)
                      and self._allowed(b.action)]
        return [("This screen", here), ("Everywhere", everywhere), ("Navigation", NAVIGATION)]

    def _allowed(self, action: str) -> bool:
        return not (self.readonly and action.split("(")[0] in MUTATING)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self._allowed(action)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every console action in the command palette, with its key."""
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.action.startswith("graph(") and \
                    self._allowed(binding.action):
                name = binding.action[7:-2]
                key = binding.key_display or binding.key
                yield SystemCommand(f"{binding.description} graph  ({key})",
                                    GRAPH_HELP[name],
                                    partial(screen.run_action, binding.action))
            elif isinstance(binding, Binding) and binding.action in getattr(
                    screen, "COMMANDS_HELP", {}):
                text = screen.COMMANDS_HELP[binding.action]  # type: ignore[attr-defined]
                yield SystemCommand(f"{text.split(':')[0]}  ({binding.key_display or binding.key})",
                                    text, partial(screen.run_action, binding.action))
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and self._allowed(binding.action) and \
                    binding.action != "command_palette":
                title = self.HELP.get(binding.action, binding.description).split(" (")[0]
                yield SystemCommand(f"{title}  ({binding.key_display or binding.key})",
                                    self.HELP.get(binding.action, binding.description),
                                    partial(self.run_action, binding.action))
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    # -- actions ------------------------------------------------------------------------

    def on_graph_action(self, message: GraphAction) -> None:
        """Run a graph action, asking or picking first where it needs it."""
        action, graph_id, owner = message.action, message.graph_id, message.owner
        if self.readonly:
            return
        if action == "delete":
            self.push_screen(ConfirmScreen(f"Delete graph {graph_id}?",
                                           self.BULK_DETAIL["delete"], "Delete"),
                             lambda yes: self._run_graph("delete", graph_id) if yes else None)
        elif action == "kill":
            self.push_screen(ConfirmScreen(f"Kill graph {graph_id}?",
                                           "Running tasks are cancelled, the rest marked "
                                           "killed, nested graphs included.", "Kill"),
                             lambda yes: self._run_graph("kill", graph_id) if yes else None)
        elif action == "reassign":
            options = [(d.id, f"{d.id}  (pid {d.pid}, {d.graphs or 0} graphs)")
                       for d in (self.status.daemons if self.status else ())
                       if d.kind == "scheduler" and d.state == "running" and d.id != owner]
            self.push_screen(PickScreen(f"Reassign graph {graph_id} (owner {owner or '-'}) to",
                                        options, "no other live scheduler"),
                             lambda sid: self._run_graph("reassign", graph_id, sid)
                             if sid else None)
        elif action == "priority":
            options = [(str(p), f"{p}{'  (runs first)' if p == 9 else ''}")
                       for p in range(9, -1, -1)]
            self.push_screen(PickScreen(f"Priority of graph {graph_id}", options),
                             lambda p: self._run_graph("priority", graph_id, int(p))
                             if p is not None else None)
        else:
            self._run_graph(action, graph_id)

    BULK_DETAIL = {
        "pause": "No new tasks start in them; running tasks finish.",
        "play": "The paused ones resume.",
        "kill": "Running tasks are cancelled, the rest marked killed, nested graphs included.",
        "retry": "The failed, skipped and killed tasks of the failed and killed ones are "
                 "queued again.",
        "delete": "Removed for good with everything under them (nested and built graphs, "
                  "tasks, logs, events); only finished, failed or killed graphs.",
    }

    def on_graphs_action(self, message: GraphsAction) -> None:
        """An action on the marked graphs, after one confirmation that says how many."""
        action, ids = message.action, list(message.graph_ids)
        if self.readonly or not ids:
            return
        what = f"{len(ids)} graph{'s' if len(ids) != 1 else ''}"
        self.push_screen(ConfirmScreen(f"{action.capitalize()} {what}?",
                                       self.BULK_DETAIL.get(action, ""), action.capitalize()),
                         lambda yes: self._run_graphs(action, ids) if yes else None)

    @work(group="actions")
    async def _run_graphs(self, action: str, graph_ids: list[int]) -> None:
        await self._report(self.backend.actions.graphs(action, graph_ids))

    @work(group="actions")
    async def _run_graph(self, action: str, graph_id: int, *args: Any) -> None:
        await self._report(self.backend.actions.graph(action, graph_id, *args))

    async def _report(self, coro: Any) -> None:
        try:
            line = await coro
        except WgopsError as exc:
            self.notify(str(exc), title="refused", severity="error", timeout=6)
            return
        except Exception as exc:  # noqa: BLE001 - an action failed: show it, keep running
            logger.exception("action failed")
            self.notify(f"{type(exc).__name__}: {exc}", title="failed", severity="error")
            return
        self.notify(line, timeout=4)
        self._tell_screens("events_arrived", frozenset(), True)

    def action_submit(self) -> None:
        actions = self.backend.actions
        self.push_screen(SubmitScreen(actions.validate, actions.submit),
                         lambda line: self.notify(line) if line else None)

    def action_scale(self, kind: str, delta: int) -> None:
        if delta > 0:
            self._daemons("incr", kind, delta)
            return
        self.push_screen(ConfirmScreen(f"Stop one {kind}?",
                                       "Its running tasks finish first (workers) or its graphs "
                                       "are adopted by another scheduler.", "Stop"),
                         lambda yes: self._daemons("decr", kind, -delta) if yes else None)

    def action_start_daemons(self) -> None:
        self._daemons("start")

    def action_stop_daemons(self) -> None:
        self.push_screen(ConfirmScreen("Stop every daemon?",
                                       "The circus arbiter, all schedulers and all workers "
                                       "stop; graphs wait until daemons start again.",
                                       "Stop all"),
                         lambda yes: self._daemons("stop") if yes else None)

    @work(group="actions")
    async def _daemons(self, action: str, kind: str = "", n: int = 1) -> None:
        await self._report(self.backend.actions.daemons(action, kind, n))
