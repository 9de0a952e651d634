"""The events tail on a whole screen, with a filter."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input

from wgops.console.data.model import EventRow, Status
from wgops.console.screens.base import ConsoleScreen
from wgops.console.widgets.events import EventTail
from wgops.console.widgets.topbar import TopBar


class EventsScreen(ConsoleScreen):
    """``/`` filters (all words must match), ``esc`` goes back."""

    BINDINGS = [Binding("escape", "back", "Back"),
                Binding("slash", "filter", "Filter", key_display="/")]

    def __init__(self) -> None:
        super().__init__(classes="events-screen")

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield Input(placeholder="filter events: words that must all match (topic, graph=N, "
                                "name, state)", id="event-filter")
        yield EventTail(max_lines=2000, id="all-events")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        bar = self.query_one(TopBar)
        bar.readonly = self.console.readonly
        bar.title = "events"
        if self.console.status is not None:
            bar.status = self.console.status
        tail = self.query_one(EventTail)
        tail.border_title = f"{self.console.backend.namespace}.events"
        tail.history = tuple(self.console.event_history)
        tail.replay(tail.history)
        tail.focus()

    def status_arrived(self, status: Status) -> None:
        self.query_one(TopBar).status = status

    def show_events(self, events: tuple[EventRow, ...]) -> None:
        tail = self.query_one(EventTail)
        tail.history = tuple(self.console.event_history)
        tail.add(events, limit=200)

    def action_filter(self) -> None:
        self.query_one("#event-filter", Input).focus()

    @on(Input.Changed, "#event-filter")
    def changed(self, event: Input.Changed) -> None:
        self.query_one(EventTail).filter_text = event.value.strip()

    @on(Input.Submitted, "#event-filter")
    def submitted(self, _event: Input.Submitted) -> None:
        self.query_one(EventTail).focus()

    def action_back(self) -> None:
        if self.query_one("#event-filter", Input).has_focus and \
                self.query_one("#event-filter", Input).value:
            self.query_one("#event-filter", Input).value = ""
            return
        self.dismiss()
