"""The overview: daemons, queues, slots and pools, the graphs table, the events tail."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input

from wgops.console.data.model import EventRow, GraphQuery, Status
from wgops.console.messages import GraphsAction, OpenGraph
from wgops.console.screens.base import GRAPH_BINDINGS, ConsoleScreen, GraphActions
from wgops.console.widgets.events import EventTail
from wgops.console.widgets.graphs import GraphsTable
from wgops.console.widgets.panels import DaemonsTable, QueuesTable, SlotsPanel, StateCounts
from wgops.console.widgets.topbar import TopBar
from wgops.store.errors import WgopsError

REFRESH_EVERY = 3.0        # seconds: the graphs page is re-read even without events
MIN_GAP = 1.0              # seconds: at most one page read a second, whatever the event rate
TAIL_PER_DRAIN = 8         # events rendered per drain in the overview's tail (it shows ~7)


class MainScreen(GraphActions, ConsoleScreen):
    """The whole installation at a glance."""

    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("space", "mark", "Mark", key_display="space"),
        Binding("M", "mark_all", "Mark shown"),
        *GRAPH_BINDINGS,
        Binding("X", "graph('delete')", "Delete"),
    ]
    COMMANDS_HELP = {
        "mark": "Mark: mark or unmark the graph under the cursor (pause, play, kill, "
                "retry and delete then act on every marked graph, after one confirmation)",
        "mark_all": "Mark shown: mark every graph the filter shows (again: unmark them)",
    }
    BULK = ("pause", "play", "kill", "retry", "delete")

    def __init__(self) -> None:
        super().__init__(id="main")
        self.query_state = GraphQuery()
        self._dirty = True
        self._since = REFRESH_EVERY

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        with Horizontal(id="top"):
            with Vertical(id="daemons-box", classes="box"):
                yield DaemonsTable(id="daemons")
            with Vertical(id="queues-box", classes="box"):
                yield QueuesTable(self.console.backend.namespace, id="queues")
            with Vertical(id="slots-box", classes="box"):
                yield SlotsPanel(id="slots")
        with Vertical(id="graphs-box", classes="box"):
            yield StateCounts(id="counts")
            yield Input(placeholder="filter: words match names; running, #12, sched:ID, prio:5",
                        id="filter")
            yield GraphsTable(id="graphs")
        with Vertical(id="events-box", classes="box"):
            yield EventTail(max_lines=200, id="events")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#daemons-box").border_title = "Daemons"
        self.query_one("#queues-box").border_title = "Queues"
        self.query_one("#slots-box").border_title = "Slots · exec/resv/free · pools"
        self.query_one("#graphs-box").border_title = "Graphs"
        self.query_one("#events-box").border_title = "Events"
        self.query_one(TopBar).readonly = self.console.readonly
        self.query_one(TopBar).title = self.console.backend.describe()
        self.query_one(GraphsTable).focus()
        if self.console.status is not None:
            self.status_arrived(self.console.status)
        self.query_one(EventTail).add(tuple(self.console.event_history))
        self.set_interval(0.25, self._tick)
        self._load()

    # -- data in ------------------------------------------------------------------------

    def status_arrived(self, status: Status) -> None:
        self.query_one(TopBar).status = status
        self.query_one(DaemonsTable).status = status
        self.query_one(QueuesTable).status = status
        self.query_one(SlotsPanel).status = status

    def events_arrived(self, graphs: frozenset[int], caught_up: bool) -> None:
        if graphs or caught_up:
            self._dirty = True

    def show_events(self, events: tuple[EventRow, ...]) -> None:
        self.query_one(EventTail).add(events, limit=TAIL_PER_DRAIN)

    def _tick(self) -> None:
        self._since += 0.25
        if (self._dirty and self._since >= MIN_GAP) or self._since >= REFRESH_EVERY:
            self._load()

    def _load(self) -> None:
        self._dirty = False
        self._since = 0.0
        self.load_graphs(self.query_state)

    @work(exclusive=True, group="graphs")
    async def load_graphs(self, query: GraphQuery) -> None:
        try:
            page = await self.console.backend.graphs_page(query)
        except WgopsError:
            return                  # the top bar says the database is gone; keep the picture
        table = self.query_one(GraphsTable)
        table.now = self.console.backend.now()
        table.page = page
        counts = self.query_one(StateCounts)
        counts.counts = page.counts
        counts.shown = (len(page.rows), page.matched)
        counts.sort = f"{query.sort} {'↓' if query.descending else '↑'}"

    # -- operator input -----------------------------------------------------------------

    def current_graph(self) -> int | None:
        return self.query_one(GraphsTable).selected_id()

    def current_owner(self) -> str | None:
        table = self.query_one(GraphsTable)
        row = table.shown_row(table.selected_id())
        return row.scheduler if row else None

    def action_mark(self) -> None:
        self.query_one(GraphsTable).toggle_mark()

    def action_mark_all(self) -> None:
        self.query_one(GraphsTable).mark_all_shown()

    @on(GraphsTable.Marked)
    def marks_changed(self, event: GraphsTable.Marked) -> None:
        self.query_one(StateCounts).marked = event.count

    def action_graph(self, action: str) -> None:
        marked = self.query_one(GraphsTable).marked_ids()
        if marked and action in self.BULK:
            self.post_message(GraphsAction(action, marked))
        else:
            super().action_graph(action)

    @on(GraphsTable.Open)
    def open_graph(self, event: GraphsTable.Open) -> None:
        self.post_message(OpenGraph(event.graph_id))

    def action_open(self) -> None:
        gid = self.current_graph()
        if gid is not None:
            self.post_message(OpenGraph(gid))

    @on(GraphsTable.Sort)
    def sort_by(self, event: GraphsTable.Sort) -> None:
        q = self.query_state
        descending = not q.descending if q.sort == event.column else event.column in (
            "id", "priority", "age")
        self._set_query(GraphQuery(q.text, event.column, descending, q.limit))

    def action_sort(self) -> None:
        self._set_query(self.query_state.next_sort())

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.value:
            box.value = ""
        box.remove_class("shown")
        self.query_one(GraphsTable).focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        q = self.query_state
        self._set_query(GraphQuery(event.value.strip(), q.sort, q.descending, q.limit))
        self.query_one(StateCounts).filter_text = event.value.strip()

    @on(Input.Submitted, "#filter")
    def filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("shown")
        self.query_one(GraphsTable).focus()

    def _set_query(self, query: GraphQuery) -> None:
        self.query_state = query
        self._dirty = True
        self._since = max(self._since, MIN_GAP)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.query_one("#filter", Input).value) or \
                self.query_one("#filter", Input).has_class("shown")
        return super().check_action(action, parameters)
