"""Drawing a DAG on a character grid, left to right: pure layout, no Textual.

1. **collapse**: the copies of a mapped task (``NAME[i]``) become one box ``NAME ×N``;
2. **layers**: each task one column right of its furthest dependency (longest path);
3. **dummies**: an edge that skips columns passes through a placeholder in each column it
   crosses, so it runs through free rows, never through a box;
4. **order**: within each column, boxes sorted by the mean row of their neighbours
   (barycentre sweeps, down and up), which untangles most crossings;
5. **place and route**: boxes of 3 rows; every edge leaves its box on the right, turns in
   the middle of the gap, and enters its target from the left with an arrow. Edges that share
   cells merge into proper junctions (``┬ ├ ┼``...).

:func:`layout` returns a :class:`Picture`; :meth:`Picture.rows` gives each row as runs of
``(text, style)`` with styles ``edge``, ``arrow``, ``box:STATE``, ``label:STATE`` for the
widget to colour.
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass, field

BOX_H = 3
ROW_GAP = 1
COL_GAP = 6
MIN_W, MAX_W = 10, 26
MAPPED = re.compile(r"^(.+)\[(\d+)\]$")
# a group of copies shows the state that matters most
STATE_RANK = ("failed", "killed", "running", "queued", "waiting", "paused", "skipped",
              "finished")
UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8
JUNCTIONS = {LEFT | RIGHT: "─", UP | DOWN: "│", DOWN | RIGHT: "┌", DOWN | LEFT: "┐",
             UP | RIGHT: "└", UP | LEFT: "┘", UP | DOWN | RIGHT: "├", UP | DOWN | LEFT: "┤",
             DOWN | LEFT | RIGHT: "┬", UP | LEFT | RIGHT: "┴",
             UP | DOWN | LEFT | RIGHT: "┼", LEFT: "─", RIGHT: "─", UP: "│", DOWN: "│"}
ROUND = "╭╮╰╯─│"
DOUBLE = "╔╗╚╝═║"


@dataclass(frozen=True)
class DagNode:
    """One task as the picture needs it."""

    key: str
    label: str
    state: str
    deps: tuple[str, ...] = ()
    nested: bool = False        # a nested graph, drawn with a double border
    count: int = 1              # copies collapsed into this box


@dataclass
class Box:
    key: str
    x: int
    y: int
    w: int
    label: str = ""
    state: str = ""
    nested: bool = False
    dummy: bool = False         # a long edge's place in a column it crosses


@dataclass
class Picture:
    width: int
    height: int
    boxes: dict[str, Box] = field(default_factory=dict)
    links: dict[tuple[int, int], int] = field(default_factory=dict)     # cell -> directions
    arrows: set[tuple[int, int]] = field(default_factory=set)

    def rows(self) -> list[list[tuple[str, str]]]:
        """Each row of the picture as runs of (text, style)."""
        grid: list[list[tuple[str, str]]] = [[(" ", "")] * self.width
                                             for _ in range(self.height)]
        for (x, y), dirs in self.links.items():
            if dirs:
                grid[y][x] = (JUNCTIONS.get(dirs, "┼"), "edge")
        for x, y in self.arrows:
            grid[y][x] = ("▶", "arrow")
        for box in self.boxes.values():
            if not box.dummy:
                _draw_box(grid, box)
        out = []
        for row in grid:
            runs: list[tuple[str, str]] = []
            for char, style in row:
                if runs and runs[-1][1] == style:
                    runs[-1] = (runs[-1][0] + char, style)
                else:
                    runs.append((char, style))
            out.append(runs)
        return out

    def text(self) -> str:
        """The picture without colours (for tests and logs)."""
        return "\n".join("".join(t for t, _ in row).rstrip() for row in self.rows())


def _draw_box(grid: list[list[tuple[str, str]]], box: Box) -> None:
    tl, tr, bl, br, h, v = DOUBLE if box.nested else ROUND
    edge, text = f"box:{box.state}", f"label:{box.state}"
    inner = box.w - 2
    label = box.label if len(box.label) <= inner - 2 else box.label[:inner - 3] + "…"
    state = f" {box.state} " if len(box.state) + 4 <= inner else ""
    top = tl + h * inner + tr
    middle = f" {label}".ljust(inner)
    bottom = bl + h + state + h * (inner - 1 - len(state)) + br
    for dx, char in enumerate(top):
        grid[box.y][box.x + dx] = (char, edge)
    grid[box.y + 1][box.x] = (v, edge)
    for dx, char in enumerate(middle):
        grid[box.y + 1][box.x + 1 + dx] = (char, text)
    grid[box.y + 1][box.x + box.w - 1] = (v, edge)
    for dx, char in enumerate(bottom):
        grid[box.y + 2][box.x + dx] = (char, edge)


# -- 1 collapse -------------------------------------------------------------------------------

def collapse(nodes: list[DagNode]) -> list[DagNode]:
    """Copies ``NAME[i]`` of a mapped task become one node ``NAME`` (when no task is called
    ``NAME`` already), their states summed up by :data:`STATE_RANK`."""
    names = {n.key for n in nodes}
    base: dict[str, str] = {}
    for n in nodes:
        match = MAPPED.match(n.key)
        base[n.key] = match.group(1) if match and match.group(1) not in names else n.key
    groups: dict[str, list[DagNode]] = {}
    for n in nodes:
        groups.setdefault(base[n.key], []).append(n)
    out = []
    for key, members in groups.items():
        deps = tuple(dict.fromkeys(base.get(d, d) for m in members for d in m.deps
                                   if base.get(d, d) != key))
        if len(members) == 1 and members[0].key == key:
            out.append(DagNode(key, members[0].label, members[0].state, deps,
                               members[0].nested))
            continue
        states = {m.state for m in members}
        state = next((s for s in STATE_RANK if s in states), members[0].state)
        out.append(DagNode(key, f"{key} ×{len(members)}", state, deps,
                           any(m.nested for m in members), len(members)))
    return out


# -- 2 layers ---------------------------------------------------------------------------------

def layers(nodes: list[DagNode]) -> dict[str, int]:
    """Column of each node: 0 for a node without (known) dependencies, else one more than its
    furthest dependency. A cycle (never in a validated document) puts its nodes in column 0."""
    known = {n.key: n for n in nodes}
    deps = {n.key: [d for d in n.deps if d in known and d != n.key] for n in nodes}
    try:
        order = list(graphlib.TopologicalSorter(deps).static_order())
    except graphlib.CycleError:
        return {n.key: 0 for n in nodes}
    column: dict[str, int] = {}
    for key in order:
        column[key] = 1 + max((column[d] for d in deps[key]), default=-1)
    return column


# -- 3 dummies and 4 order --------------------------------------------------------------------

def _chains(nodes: list[DagNode], column: dict[str, int]) \
        -> tuple[list[list[str]], list[tuple[str, str]]]:
    """Columns of keys (dummies ``~a>b#i`` included) and the one-column edges between them."""
    columns: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for n in nodes:
        columns[column[n.key]].append(n.key)
    edges: list[tuple[str, str]] = []
    for n in nodes:
        for dep in dict.fromkeys(n.deps):
            if dep not in column or dep == n.key:
                continue
            prev = dep
            for c in range(column[dep] + 1, column[n.key]):
                dummy = f"~{dep}>{n.key}#{c}"
                columns[c].append(dummy)
                edges.append((prev, dummy))
                prev = dummy
            edges.append((prev, n.key))
    return columns, edges


def order(columns: list[list[str]], edges: list[tuple[str, str]], sweeps: int = 4) \
        -> list[list[str]]:
    """Barycentre ordering: each column sorted by the mean position of its neighbours in the
    column before (sweeping right) or after (sweeping left). Ties keep the previous order."""
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for a, b in edges:
        succs.setdefault(a, []).append(b)
        preds.setdefault(b, []).append(a)
    cols = [list(c) for c in columns]
    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        indices = range(1, len(cols)) if forward else range(len(cols) - 2, -1, -1)
        for i in indices:
            ref = cols[i - 1] if forward else cols[i + 1]
            pos = {k: p for p, k in enumerate(ref)}
            near = preds if forward else succs
            current = {k: p for p, k in enumerate(cols[i])}

            def centre(key: str, pos: dict[str, int] = pos, near: dict[str, list[str]] = near,
                       current: dict[str, int] = current) -> float:
                linked = [pos[k] for k in near.get(key, ()) if k in pos]
                return sum(linked) / len(linked) if linked else float(current[key])
            cols[i].sort(key=lambda k: (centre(k), current[k]))
    return cols


# -- 5 place and route ------------------------------------------------------------------------

def box_width(node: DagNode) -> int:
    return max(MIN_W, min(MAX_W, max(len(node.label) + 4, len(node.state) + 6)))


def layout(nodes: list[DagNode]) -> Picture:
    """The whole picture of ``nodes`` (collapsed first)."""
    nodes = collapse(nodes)
    if not nodes:
        return Picture(0, 0)
    by_key = {n.key: n for n in nodes}
    column = layers(nodes)
    columns, edges = _chains(nodes, column)
    columns = order(columns, edges)
    widths = [max((box_width(by_key[k]) for k in col if k in by_key), default=MIN_W)
              for col in columns]
    xs = [sum(widths[:i]) + COL_GAP * i for i in range(len(columns))]
    tallest = max(len(c) for c in columns)
    picture = Picture(xs[-1] + widths[-1], tallest * (BOX_H + ROW_GAP) - ROW_GAP)
    for i, col in enumerate(columns):
        offset = (tallest - len(col)) // 2
        for row, key in enumerate(col):
            y = (offset + row) * (BOX_H + ROW_GAP)
            node = by_key.get(key)
            if node is None:
                picture.boxes[key] = Box(key, xs[i], y, widths[i], dummy=True)
            else:
                picture.boxes[key] = Box(key, xs[i], y, box_width(node), node.label,
                                         node.state, node.nested)
    for box in picture.boxes.values():
        if box.dummy:                              # the long edge runs across the column
            _path(picture, [(box.x, box.y + 1), (box.x + widths[_col(xs, box.x)] - 1,
                                                 box.y + 1)])
    for a, b in edges:
        _route(picture, picture.boxes[a], picture.boxes[b], xs, widths)
    return picture


def _col(xs: list[int], x: int) -> int:
    return xs.index(x)


def _route(picture: Picture, a: Box, b: Box, xs: list[int], widths: list[int]) -> None:
    i = _col(xs, a.x)
    start = (a.x + widths[i] if a.dummy else a.x + a.w, a.y + 1)
    turn = xs[i] + widths[i] + COL_GAP // 2
    end = (b.x if b.dummy else b.x - 1, b.y + 1)
    _path(picture, [start, (turn, start[1]), (turn, end[1]), end])
    if not b.dummy:
        picture.arrows.add(end)


def _path(picture: Picture, points: list[tuple[int, int]]) -> None:
    """Join consecutive points with straight lines; each cell records its neighbours."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        dx = (x1 > x0) - (x1 < x0)
        dy = (y1 > y0) - (y1 < y0)
        x, y = x0, y0
        while (x, y) != (x1, y1):
            nx, ny = x + dx, y + dy
            _link(picture, (x, y), (nx, ny))
            x, y = nx, ny
        picture.links.setdefault((x1, y1), 0)
    if len(points) == 1:
        picture.links.setdefault(points[0], 0)


def _link(picture: Picture, a: tuple[int, int], b: tuple[int, int]) -> None:
    (ax, ay), (bx, by) = a, b
    if bx > ax:
        forward, back = RIGHT, LEFT
    elif bx < ax:
        forward, back = LEFT, RIGHT
    elif by > ay:
        forward, back = DOWN, UP
    else:
        forward, back = UP, DOWN
    picture.links[a] = picture.links.get(a, 0) | forward
    picture.links[b] = picture.links.get(b, 0) | back
