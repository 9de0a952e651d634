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


def cells(row: GraphRow, now: float) -> dict[str, Any]:
    return {"id": Text(str(row.id), justify="right"), "name": row.name,
            "state": fmt.state(row.state), "progress": fmt.progress(row.done, row.total),
            "scheduler": row.scheduler or Text("-", style="dim"),
            "priority": Text(str(row.priority), justify="right"),
            "age": Text(fmt.age(now - row.created), justify="right")}


class GraphsTable(DataTable):
    """Receives :attr:`page` and :attr:`now`; posts :class:`Open` and :class:`Sort`."""

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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.now = 0.0
        self._shown: dict[int, GraphRow] = {}
        self._order: list[int] = []
        self._ages: dict[int, str] = {}

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

    def watch_page(self, page: GraphsPage | None) -> None:
        if page is None:
            return
        selected = self.selected_id()
        wanted = {row.id: row for row in page.rows}
        for gid in [g for g in self._shown if g not in wanted]:
            self.remove_row(str(gid))
            del self._shown[gid]
            self._ages.pop(gid, None)
        for gid, row in wanted.items():
            old = self._shown.get(gid)
            if old is None:
                new = cells(row, self.now)
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
        new = cells(row, self.now)
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
