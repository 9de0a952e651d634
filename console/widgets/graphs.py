"""The graphs table: one bounded page, updated in place (cells, not rows, change)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from wgops.console.data.model import GraphRow, GraphsPage
from wgops.console.widgets import fmt
from wgops.console.widgets.panels import VI_KEYS

COLUMNS = (("id", "ID"), ("name", "NAME"), ("state", "STATE"), ("progress", "PROGRESS"),
           ("scheduler", "SCHEDULER"), ("priority", "PRIO"), ("age", "AGE"))


def id_cell(graph_id: int, marked: bool) -> Text:
    return Text(str(graph_id), style=f"bold {fmt.MARK_STYLE}" if marked else "",
                justify="right")


def name_cell(name: str, marked: bool) -> Text | str:
    """A marked graph's name starts with a dot, in the mark's colour."""
    return Text(f"● {name}", style=f"bold {fmt.MARK_STYLE}") if marked else name


def cells(row: GraphRow, now: float, marked: bool = False) -> dict[str, Any]:
    return {"id": id_cell(row.id, marked), "name": name_cell(row.name, marked),
            "state": fmt.state(row.state), "progress": fmt.progress(row.done, row.total),
            "scheduler": row.scheduler or Text("-", style="dim"),
            "priority": Text(str(row.priority), justify="right"),
            "age": Text(fmt.age(now - row.created), justify="right")}


class GraphsTable(DataTable):
    """Receives :attr:`page` and :attr:`now`; posts :class:`Open`, :class:`Sort` and
    :class:`Marked`. Holds the marked graphs (the bulk selection): only shown rows stay
    marked, so what is marked is what the operator sees."""

    BINDINGS = VI_KEYS
    page: reactive[GraphsPage | None] = reactive(None, always_update=True)

    class Open(Message):
        def __init__(self, graph_id: int) -> None:
            super().__init__()
            self.graph_id = graph_id

    class Sort(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    class Marked(Message):
        """The marked set changed; ``count`` graphs are marked."""

        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.now = 0.0
        self._shown: dict[int, GraphRow] = {}
        self._order: list[int] = []
        self._ages: dict[int, str] = {}
        self.marked: set[int] = set()

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - cursor outside the rows
            return None
        return int(key.value) if key.value is not None else None

    def shown_row(self, graph_id: int | None) -> GraphRow | None:
        return None if graph_id is None else self._shown.get(graph_id)

    def marked_ids(self) -> list[int]:
        """The marked graphs, in the order shown."""
        return [gid for gid in self._order if gid in self.marked]

    def toggle_mark(self) -> None:
        """Mark or unmark the graph under the cursor, then move down a row."""
        gid = self.selected_id()
        if gid is None:
            return
        self._set_marks(self.marked ^ {gid})
        self.move_cursor(row=self.cursor_row + 1, animate=False)

    def mark_all_shown(self) -> None:
        """Mark every graph shown (what the filter matched, as far as the page goes);
        if all are marked already, unmark them."""
        shown = set(self._shown)
        self._set_marks(set() if shown and shown <= self.marked else shown)

    def _set_marks(self, marks: set[int]) -> None:
        changed = self.marked ^ marks
        self.marked = marks
        for gid in changed & set(self._shown):
            self._paint_mark(gid)
        if changed:
            self.post_message(self.Marked(len(self.marked)))

    def _paint_mark(self, gid: int) -> None:
        marked = gid in self.marked
        self.update_cell(str(gid), "id", id_cell(gid, marked))
        self.update_cell(str(gid), "name", name_cell(self._shown[gid].name, marked),
                         update_width=True)

    def watch_page(self, page: GraphsPage | None) -> None:
        if page is None:
            return
        selected = self.selected_id()
        wanted = {row.id: row for row in page.rows}
        for gid in [g for g in self._shown if g not in wanted]:
            self.remove_row(str(gid))
            del self._shown[gid]
            self._ages.pop(gid, None)
        if self.marked - set(wanted):
            self.marked &= set(wanted)
            self.post_message(self.Marked(len(self.marked)))
        for gid, row in wanted.items():
            old = self._shown.get(gid)
            if old is None:
                new = cells(row, self.now, gid in self.marked)
                self._ages[gid] = fmt.age(self.now - row.created)
                self.add_row(*(new[k] for k, _ in COLUMNS), key=str(gid))
            else:
                self._update(gid, old, row)
            self._shown[gid] = row
        order_list = [row.id for row in page.rows]
        if order_list != self._order:
            order = {gid: i for i, gid in enumerate(order_list)}
            self.sort("id", key=lambda cell: order.get(int(str(cell)), 0))
            self._order = order_list
            if selected is not None and selected in wanted:
                self.move_cursor(row=self.get_row_index(str(selected)), animate=False)

    def _update(self, gid: int, old: GraphRow, row: GraphRow) -> None:
        if old == row and self._ages.get(gid) == fmt.age(self.now - row.created):
            return
        new = cells(row, self.now, gid in self.marked)
        changed = []
        age = fmt.age(self.now - row.created)
        if self._ages.get(gid) != age:
            changed.append("age")
            self._ages[gid] = age
        if old.state != row.state:
            changed.append("state")
        if (old.done, old.total) != (row.done, row.total):
            changed.append("progress")
        if old.scheduler != row.scheduler:
            changed.append("scheduler")
        if old.priority != row.priority:
            changed.append("priority")
        if old.name != row.name:
            changed.append("name")
        for column in changed:
            self.update_cell(str(gid), column, new[column])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Open(int(event.row_key.value)))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = str(event.column_key.value)
        self.post_message(self.Sort("age" if column == "age" else
                                    "id" if column == "progress" else column))
