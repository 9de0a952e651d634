"""Pictures of a graph: :class:`DagView` (the graph drawn, boxes coloured by state) and
:class:`Timeline` (its tasks from start to finish). Both receive :attr:`detail` (the
``graph_detail`` document) and draw lines only for what is on screen; both scroll.

The layout is pure and lives beside them (:mod:`.dag_layout`, :mod:`.gantt`); here it is only
coloured and cut to the visible window.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from wgops.console.widgets import fmt
from wgops.console.widgets.dag_layout import DagNode, Picture, layout
from wgops.console.widgets.gantt import Chart, chart

EDGE = Style(color="#6c6c6c")
ARROW = Style(color="#9e9e9e")
AXIS = Style(color="#8a8a8a")
LABEL_W = 22                  # the timeline's name column


def state_style(state: str, bold: bool = False) -> Style:
    style = Style.parse(fmt.STATE_STYLE.get(state, "") or "none")
    return style + Style(bold=True) if bold else style


def dag_nodes(detail: dict[str, Any]) -> list[DagNode]:
    """The graph's own tasks as nodes; a nested or built graph is one box (its tasks are its
    own picture: open it); a mapped task is one box ``NAME ×N`` for its copies."""
    out = []
    for t in detail.get("tasks", []):
        if t.get("copy_of"):
            continue
        copies = (t.get("copies") or {}).get("total", 1)
        label = t["name"] + (f" ×{copies}" if t.get("copies") else "") + (
            " ▸" if t.get("child") else "")
        out.append(DagNode(t["name"], label, t["state"], tuple(t.get("deps") or ()),
                           t.get("kind") in ("graph", "build"), copies))
    return out


class LinesView(ScrollView):
    """A scrolling view of prepared lines (strips) of a given size."""

    def set_lines(self, lines: list[Strip], width: int) -> None:
        self._lines = lines
        self.virtual_size = Size(width, len(lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        lines: list[Strip] = getattr(self, "_lines", [])
        index = y + scroll_y
        width = self.size.width
        if not 0 <= index < len(lines):
            return Strip.blank(width, self.rich_style)
        return lines[index].crop_extend(scroll_x, scroll_x + width, self.rich_style)


class DagView(LinesView):
    """The graph drawn left to right: a box per task coloured by its state, an arrow per
    dependency, nested graphs as one double-bordered box, mapped copies as one box ×N.
    Clicking a box posts :class:`Selected`."""

    detail: reactive[dict[str, Any] | None] = reactive(None, always_update=True)

    class Selected(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def watch_detail(self, detail: dict[str, Any] | None) -> None:
        if detail is None:
            return
        self.picture: Picture = layout(dag_nodes(detail))
        base = self.rich_style
        lines = []
        for row in self.picture.rows():
            segments = [Segment(text, base + self._style(kind)) for text, kind in row]
            lines.append(Strip(segments))
        self.set_lines(lines, self.picture.width)

    @staticmethod
    def _style(kind: str) -> Style:
        if kind == "edge":
            return EDGE
        if kind == "arrow":
            return ARROW
        if kind.startswith("box:"):
            return state_style(kind[4:])
        if kind.startswith("label:"):
            return state_style(kind[6:], bold=True)
        return Style()

    def on_click(self, event: Any) -> None:
        picture = getattr(self, "picture", None)
        if picture is None:
            return
        x, y = event.x + int(self.scroll_x), event.y + int(self.scroll_y)
        for box in picture.boxes.values():
            if not box.dummy and box.x <= x < box.x + box.w and box.y <= y < box.y + 3:
                self.post_message(self.Selected(box.key))
                return


class Timeline(LinesView):
    """Each task (nested graphs' tasks indented under theirs) as a bar from its start to its
    end, on one time axis; a task still running ends in ``▶`` at now."""

    detail: reactive[dict[str, Any] | None] = reactive(None, always_update=True)
    now: float = 0.0

    def watch_detail(self, detail: dict[str, Any] | None) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        detail = self.detail
        if detail is None or self.size.width == 0:
            return
        rows = [{"label": ("  " * (r["depth"] - 1) + "└ " if r["depth"] else "") + r["name"],
                 "state": r["state"],
                 "started": r.get("started"), "finished": r.get("finished")}
                for r in detail.get("rows", [])]
        width = max(10, self.size.width - LABEL_W - 1 - (1 if len(rows) + 1 >
                                                           self.size.height else 0))
        picture = chart(rows, self.now, width)
        base = self.rich_style
        lines = [self._axis(picture, base)]
        lines += [self._bar(bar, picture, base) for bar in picture.bars]
        self.set_lines(lines, LABEL_W + 1 + width)

    @staticmethod
    def _axis(picture: Chart, base: Style) -> Strip:
        cells = [" "] * picture.width
        for column, seconds in picture.ticks():
            label = "│" + fmt.duration(seconds) if seconds else "│0"
            if column + len(label) > picture.width:
                column = max(0, picture.width - len(label))
            for i, char in enumerate(label):
                cells[column + i] = char
        return Strip([Segment(" " * LABEL_W + " ", base),
                      Segment("".join(cells), base + AXIS)])

    @staticmethod
    def _bar(bar: Any, picture: Chart, base: Style) -> Strip:
        label = bar.label if len(bar.label) <= LABEL_W else bar.label[:LABEL_W - 1] + "…"
        segments = [Segment(label.ljust(LABEL_W) + " ", base + state_style(bar.state))]
        if bar.start is None:
            note = "·" + (f" {bar.state}" if bar.state else "")
            segments.append(Segment(note, base + AXIS))
            return Strip(segments)
        length = bar.end - bar.start + 1
        body = "█" * (length - 1) + ("▶" if bar.open else "█")
        segments += [Segment(" " * bar.start, base),
                     Segment(body, base + state_style(bar.state))]
        return Strip(segments)
