"""The tasks of a graph as a tree table (nested and built graphs indented under their task, a
mapped task as one row with its copies' progress — ``enter`` folds its copies in and out), and
the lineage panel of the highlighted task."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from wgops.console.widgets import fmt
from wgops.console.widgets.panels import RowsTable


def task_key(graph: int, name: str) -> str:
    return f"{graph}:{name}"


def split_key(key: str) -> tuple[int, str]:
    graph, _, name = key.partition(":")
    return int(graph), name


def task_cells(row: dict[str, Any]) -> tuple:
    depth = row["depth"]
    label = Text(no_wrap=True)
    if depth:
        label.append("  " * (depth - 1) + "└ ", style="dim")
    label.append(row["name"], style="bold" if row.get("child") or row.get("copies") else "")
    if row.get("copies"):
        copies = row["copies"]
        label.append(f"  {copies['done']}/{copies['total']}",
                     style="#ff8787" if copies["failed"] else "#5fafff")
    if row.get("child"):
        built = "built " if row.get("kind") == "build" else ""
        label.append(f" ▸ {built}graph {row['child']}", style="#af87ff")
    if row.get("condition_false"):
        note = Text("skipped: condition false", style="dim")
    elif row.get("error"):
        note = Text(fmt.short(row["error"].get("message") or row["error"].get("type"), 80),
                    style="#ff8787")
    elif row.get("waiting_for"):
        note = Text(fmt.short(row["waiting_for"], 80), style="#d7af5f")
    else:
        note = Text("")
    return (label, row.get("kind") or "", fmt.state(row["state"]),
            Text(str(row["attempts"]), justify="right"), row.get("worker") or "-",
            Text(fmt.duration(row.get("took")), justify="right"), row.get("pool") or "",
            note)


class TasksTable(RowsTable):
    """Receives :attr:`detail` (``graph_detail``); posts :class:`Open` and
    :class:`Highlighted` with the task's (graph, name)."""

    COLUMNS = (("task", "TASK"), ("kind", "KIND"), ("state", "STATE"), ("att", "ATT"),
               ("worker", "WORKER"), ("took", "TOOK"), ("pool", "POOL"),
               ("why", "WHY IT WAITS / ERROR"))
    detail: reactive[dict[str, Any] | None] = reactive(None, always_update=True)

    class Open(Message):
        """Enter on a task: ``mapped`` when it is a mapped task (its copies fold in and out),
        ``child`` its nested or built graph, if any."""

        def __init__(self, graph_id: int, name: str, child: int | None,
                     mapped: bool = False) -> None:
            super().__init__()
            self.graph_id, self.name, self.child, self.mapped = graph_id, name, child, mapped

    class Highlighted(Message):
        def __init__(self, graph_id: int, name: str) -> None:
            super().__init__()
            self.graph_id, self.name = graph_id, name

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(show_cursor=True, zebra_stripes=True, **kwargs)
        self.children_of: dict[str, int | None] = {}
        self.mapped: set[str] = set()

    def watch_detail(self, detail: dict[str, Any] | None) -> None:
        if detail is None:
            return
        rows = detail.get("rows", [])
        self.children_of = {task_key(r["graph"], r["name"]): r.get("child") for r in rows}
        self.mapped = {task_key(r["graph"], r["name"]) for r in rows if r.get("copies")}
        self.set_rows([(task_key(r["graph"], r["name"]), task_cells(r)) for r in rows])

    def on_data_table_row_selected(self, event: Any) -> None:
        event.stop()
        key = event.row_key.value
        if key:
            graph, name = split_key(key)
            self.post_message(self.Open(graph, name, self.children_of.get(key),
                                        key in self.mapped))

    def on_data_table_row_highlighted(self, event: Any) -> None:
        event.stop()
        key = event.row_key.value
        if key:
            self.post_message(self.Highlighted(*split_key(key)))


class GraphSummary(Static):
    """The graph's header: identity, state, owner, timing, inputs and outputs."""

    detail: reactive[dict[str, Any] | None] = reactive(None, always_update=True)
    now: float = 0.0

    def watch_detail(self, d: dict[str, Any] | None) -> None:
        if d is None:
            return
        grid = Table.grid(padding=(0, 2))
        for _ in range(4):
            grid.add_column(no_wrap=True)
        done = sum(1 for t in d["tasks"] if t["state"] in ("finished", "failed", "skipped",
                                                           "killed"))
        took = ((d["finished"] or self.now) - d["started"]) if d.get("started") else None
        grid.add_row(Text(f"graph {d['id']}", style="bold"), Text(d["name"], style="bold"),
                     fmt.state(d["state"]), fmt.progress(done, len(d["tasks"])))
        grid.add_row(Text("owner", style="dim"), d["scheduler"] or "-",
                     Text("priority", style="dim"), str(d["priority"]))
        grid.add_row(Text("age", style="dim"), fmt.duration(self.now - d["created"]),
                     Text("running for" if not d.get("finished") else "took", style="dim"),
                     fmt.duration(took))
        if d.get("parent"):
            grid.add_row(Text("parent", style="dim"), f"graph {d['parent']}", "", "")
        grid.add_row(Text("inputs", style="dim"), fmt.short(d.get("inputs") or {}, 70), "", "")
        if d.get("outputs") is not None:
            grid.add_row(Text("outputs", style="dim"), fmt.short(d["outputs"], 70), "", "")
        if d.get("error"):
            grid.add_row(Text("error", style="bold #ff5f5f"),
                         Text(fmt.short(d["error"].get("message", d["error"]), 70),
                              style="#ff8787"), "", "")
        self.update(grid)


class LineagePanel(Static):
    """Which task's result fed which argument of the highlighted task, and what it feeds."""

    lineage: reactive[tuple[str, dict[str, list[str]]] | None] = reactive(None,
                                                                         always_update=True)

    def watch_lineage(self, value: tuple[str, dict[str, list[str]]] | None) -> None:
        if value is None:
            self.update(Text("lineage: highlight a task", style="dim"))
            return
        name, links = value
        text = Text()
        text.append("lineage of ", style="dim")
        text.append(name, style="bold")
        text.append("\n  fed by  ", style="dim")
        text.append(", ".join(links["from"]) or "nothing (no references)")
        text.append("\n  feeds   ", style="dim")
        text.append(", ".join(links["to"]) or "nothing")
        self.update(text)
