"""What the console's screens share: the graph actions (keys bound on every screen that shows
a graph) and the read-only switch that hides them."""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol, cast

from textual.binding import Binding
from textual.screen import Screen

from wgops.console.data.backend import Backend
from wgops.console.data.model import EventRow, Status
from wgops.console.messages import GraphAction

GRAPH_BINDINGS = [
    Binding("p", "graph('pause')", "Pause"),
    Binding("P", "graph('play')", "Play"),
    Binding("x", "graph('kill')", "Kill"),
    Binding("R", "graph('retry')", "Retry"),
    Binding("a", "graph('reassign')", "Reassign"),
    Binding("equals_sign", "graph('priority')", "Priority", key_display="="),
]
GRAPH_HELP = {
    "pause": "Pause the graph: no new tasks start, running ones finish",
    "play": "Play a paused graph",
    "kill": "Kill the graph: cancel running tasks, mark the rest killed (asks first)",
    "retry": "Retry a failed or killed graph's failed, skipped and killed tasks",
    "reassign": "Move the graph to another scheduler (pick from a list)",
    "priority": "Change the graph's priority (0..9, 9 runs first)",
    "delete": "Delete a finished, failed or killed graph with everything under it, for good "
              "(asks first)",
}


class ConsoleHost(Protocol):
    """What a screen reads of the app that shows it (attributes down; requests go up as
    :mod:`wgops.console.messages`)."""

    backend: Backend
    readonly: bool
    status: Status | None
    event_history: deque[EventRow]


class ConsoleScreen(Screen[None]):
    """Base of the full screens: data arrives as attributes set by the app.

    ``COMMANDS_HELP`` ({action: what it does}) names the screen's own bindings that the
    command palette and ``?`` list besides the graph actions."""

    COMMANDS_HELP: dict[str, str] = {}

    @property
    def console(self) -> ConsoleHost:
        return cast(ConsoleHost, self.app)

    def events_arrived(self, graphs: frozenset[int], caught_up: bool) -> None:
        """Called by the app after each events drain (graph ids touched)."""

    def status_arrived(self, status: Any) -> None:
        """Called by the app after each status poll."""

    def show_events(self, events: tuple[Any, ...]) -> None:
        """Called by the app with the events of one drain (bounded)."""


class GraphActions:
    """Mixin for screens that have a current graph: ``current_graph()`` names it."""

    def current_graph(self) -> int | None:
        raise NotImplementedError

    def current_owner(self) -> str | None:
        """The scheduler that owns the current graph, when known."""
        return None

    def action_graph(self, action: str) -> None:
        gid = self.current_graph()
        screen = cast(Screen[None], self)
        if gid is None:
            screen.notify("no graph selected", severity="warning")
            return
        screen.post_message(GraphAction(action, gid, self.current_owner()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "graph":
            return not getattr(self.app, "readonly", False)  # type: ignore[attr-defined]
        return True
