"""Graph detail: its tasks (nested graphs as a tree), why each one waits, value lineage; the
graph drawn (``d``) and its tasks on a time axis (``t``) in place of the table."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Footer

from wgops.console.data.model import Status
from wgops.console.messages import OpenGraph, OpenTask
from wgops.console.screens.base import GRAPH_BINDINGS, ConsoleScreen, GraphActions
from wgops.console.widgets.pictures import DagView, Timeline
from wgops.console.widgets.tasks import GraphSummary, LineagePanel, TasksTable
from wgops.console.widgets.topbar import TopBar
from wgops.store.errors import NotFound, WgopsError

REFRESH_EVERY = 2.0
VIEWS = {"tasks": "Tasks · enter opens, or folds a mapped task's copies · nested graphs indented",
         "dag": "Graph · boxes coloured by state · nested graphs as one box · d: back to tasks",
         "timeline": "Timeline · each task from start to finish · t: back to tasks"}


class GraphScreen(GraphActions, ConsoleScreen):
    """One graph. ``enter`` opens a task (or a nested graph), ``esc`` goes back."""

    BINDINGS = [Binding("escape", "back", "Back"), *GRAPH_BINDINGS,
                Binding("d", "view('dag')", "DAG"),
                Binding("t", "view('timeline')", "Timeline")]
    COMMANDS_HELP = {"view('dag')": "Draw the graph: tasks as boxes coloured by state, "
                                    "dependencies as arrows (d again: the table)",
                     "view('timeline')": "Timeline: each task from start to finish, like a "
                                         "Gantt chart (t again: the table)"}
    view: reactive[str] = reactive("tasks")

    def __init__(self, graph_id: int) -> None:
        super().__init__(classes="graph-screen")
        self.graph_id = graph_id
        self.detail: dict[str, Any] | None = None
        self.expanded: set[str] = set()     # mapped tasks whose copies are listed
        self._dirty = False
        self._since = 0.0

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        with Vertical(id="summary-box", classes="box"):
            yield GraphSummary(id="summary")
        with Vertical(id="tasks-box", classes="box"):
            yield TasksTable(id="tasks")
            yield DagView(id="dag", classes="picture")
            yield Timeline(id="timeline", classes="picture")
        with Vertical(id="lineage-box", classes="box"):
            yield LineagePanel(id="lineage")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#summary-box").border_title = f"Graph {self.graph_id}"
        self.query_one("#tasks-box").border_title = VIEWS["tasks"]
        self.query_one("#lineage-box").border_title = "Lineage"
        bar = self.query_one(TopBar)
        bar.readonly = self.console.readonly
        bar.title = f"graph {self.graph_id}"
        if self.console.status is not None:
            bar.status = self.console.status
        self.query_one(TasksTable).focus()
        self.set_interval(0.25, self._tick)
        self.load()

    def status_arrived(self, status: Status) -> None:
        self.query_one(TopBar).status = status

    def events_arrived(self, graphs: frozenset[int], caught_up: bool) -> None:
        mine = {self.graph_id}
        if self.detail:
            mine.update(r["graph"] for r in self.detail.get("rows", []))
        if caught_up or mine & graphs:
            self._dirty = True

    def _tick(self) -> None:
        self._since += 0.25
        if (self._dirty and self._since >= 0.5) or self._since >= REFRESH_EVERY:
            self.load()

    def load(self) -> None:
        self._dirty = False
        self._since = 0.0
        self.load_detail()

    @work(exclusive=True, group="detail")
    async def load_detail(self) -> None:
        try:
            detail = await self.console.backend.graph_detail(self.graph_id,
                                                             frozenset(self.expanded))
        except NotFound:
            self.notify(f"graph {self.graph_id} no longer exists", severity="error")
            return
        except WgopsError:
            return
        self.detail = detail
        summary = self.query_one(GraphSummary)
        summary.now = self.console.backend.now()
        summary.detail = detail
        self.query_one(TasksTable).detail = detail
        if self.view == "dag":
            self.query_one(DagView).detail = detail
        elif self.view == "timeline":
            timeline = self.query_one(Timeline)
            timeline.now = self.console.backend.now()
            timeline.detail = detail
        self._show_lineage(self.query_one(TasksTable).selected_key())

    def _show_lineage(self, key: str | None) -> None:
        if not self.detail:
            return
        lineage = self.detail.get("lineage", {})
        graph, _, name = (key or "").partition(":")
        if graph == str(self.graph_id) and name in lineage:
            self.query_one(LineagePanel).lineage = (name, lineage[name])
        elif key:
            self.query_one(LineagePanel).lineage = (
                f"{name} (in nested graph {graph}: open it for its lineage)",
                {"from": [], "to": []})

    def action_view(self, view: str) -> None:
        self.view = "tasks" if self.view == view else view

    def watch_view(self, view: str) -> None:
        for widget_id in ("tasks", "dag", "timeline"):
            self.query_one(f"#{widget_id}").display = widget_id == view
        self.query_one("#tasks-box").border_title = VIEWS[view]
        self.query_one(f"#{view}").focus()
        if self.detail is not None and view != "tasks":
            if view == "timeline":
                self.query_one(Timeline).now = self.console.backend.now()
            self.query_one(f"#{view}", DagView if view == "dag" else Timeline).detail = \
                self.detail

    @on(DagView.Selected)
    def box_selected(self, event: DagView.Selected) -> None:
        self._show_lineage(f"{self.graph_id}:{event.name}")

    @on(TasksTable.Highlighted)
    def highlighted(self, event: TasksTable.Highlighted) -> None:
        self._show_lineage(f"{event.graph_id}:{event.name}")

    @on(TasksTable.Open)
    def open_task(self, event: TasksTable.Open) -> None:
        if event.mapped:                     # a mapped task: enter shows or hides its copies
            key = f"{event.graph_id}:{event.name}"
            self.expanded ^= {key}
            self.load()
        elif event.child is not None:
            self.post_message(OpenGraph(event.child))
        else:
            self.post_message(OpenTask(event.graph_id, event.name))

    def current_graph(self) -> int | None:
        return self.graph_id

    def current_owner(self) -> str | None:
        return self.detail.get("scheduler") if self.detail else None

    def action_back(self) -> None:
        self.dismiss()
