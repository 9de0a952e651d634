"""The pictures of a graph: the pure DAG layout (layers, order, boxes, edges, collapsing) and
the timeline's bars, then both widgets in the graph screen over the deterministic scene."""

from __future__ import annotations

from pathlib import Path

import pytest

from wgops.console.app import WgopsApp
from wgops.console.messages import OpenGraph
from wgops.console.scene import SceneBackend, use_utc
from wgops.console.screens.graph import GraphScreen
from wgops.console.screenshots import settle
from wgops.console.widgets.dag_layout import (
    BOX_H,
    DagNode,
    collapse,
    layers,
    layout,
    order,
)
from wgops.console.widgets.gantt import chart
from wgops.console.widgets.pictures import DagView, Timeline
from wgops.console.widgets.tasks import TasksTable

SIZE = (160, 46)


def n(key: str, *deps: str, state: str = "waiting", nested: bool = False) -> DagNode:
    return DagNode(key, key, state, tuple(deps), nested)


def overlaps(a, b) -> bool:  # noqa: ANN001 - two boxes
    return not (a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + BOX_H <= b.y or
                b.y + BOX_H <= a.y)


def test_layers_follow_the_longest_path() -> None:
    nodes = [n("a"), n("b", "a"), n("c", "b"), n("d", "a", "c"), n("e"), n("x", "ghost")]
    assert layers(nodes) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0, "x": 0}
    assert layers([n("p", "q"), n("q", "p")]) == {"p": 0, "q": 0}       # a cycle: no crash


def test_order_untangles_crossings() -> None:
    # a1 feeds b2 and a2 feeds b1: sorting b by its parents' rows puts b2 first
    cols = order([["a1", "a2"], ["b1", "b2"]], [("a1", "b2"), ("a2", "b1")])
    assert cols == [["a1", "a2"], ["b2", "b1"]]


def test_a_diamond_is_drawn_with_every_edge_and_no_overlap() -> None:
    picture = layout([n("split", state="finished"), n("left", "split", state="running"),
                      n("right", "split", state="failed"), n("join", "left", "right")])
    boxes = picture.boxes
    assert boxes["split"].x < boxes["left"].x == boxes["right"].x < boxes["join"].x
    text = picture.text()
    assert text.count("▶") == 3                   # one arrow into each box with deps
    assert "─ running ─" in text and "─ failed ─" in text
    assert all(not overlaps(a, b) for a in boxes.values() for b in boxes.values()
               if a is not b)
    for box in boxes.values():                     # each arrow ends at a box's left side
        assert (box.x - 1, box.y + 1) in picture.arrows or box.key == "split"
    styles = {style for row in picture.rows() for _, style in row}
    assert {"edge", "arrow", "box:running", "label:failed"} <= styles


def test_a_long_edge_runs_around_the_boxes_it_skips() -> None:
    picture = layout([n("a"), n("b", "a"), n("c", "b"), n("d", "c", "a")])
    dummies = [b for b in picture.boxes.values() if b.dummy]
    assert len(dummies) == 2                       # a -> d crosses the columns of b and c
    real = [b for b in picture.boxes.values() if not b.dummy]
    for dummy in dummies:
        assert not any(overlaps(dummy, box) for box in real)
        assert (dummy.x, dummy.y + 1) in picture.links          # the edge passes through


def test_mapped_copies_and_nested_graphs_become_one_box() -> None:
    nodes = [n("parts", state="finished"),
             *(n(f"sq[{i}]", "parts", state=s) for i, s in enumerate(("finished", "running",
                                                                       "queued"))),
             n("total", "sq[0]", "sq[1]", "sq[2]"), n("sub", "total", nested=True)]
    merged = {m.key: m for m in collapse(nodes)}
    assert set(merged) == {"parts", "sq", "total", "sub"}
    assert merged["sq"].count == 3 and merged["sq"].state == "running"
    assert merged["sq"].label == "sq ×3" and merged["total"].deps == ("sq",)
    text = layout(nodes).text()
    assert "sq ×3" in text and "╔" in text and "║ sub" in text


def test_a_big_graph_is_bigger_than_the_screen() -> None:
    nodes = [n("root")] + [n(f"t{i}", "root") for i in range(40)] + \
        [n(f"u{i}", f"t{i}") for i in range(40)]
    picture = layout(nodes)
    assert picture.height == 40 * (BOX_H + 1) - 1 and picture.width > 30
    assert len(picture.rows()) == picture.height


def test_timeline_bars_from_start_to_end() -> None:
    rows = [{"label": "a", "state": "finished", "started": 100.0, "finished": 110.0},
            {"label": "b", "state": "running", "started": 105.0, "finished": None},
            {"label": "c", "state": "waiting", "started": None, "finished": None}]
    picture = chart(rows, now=120.0, width=40)
    a, b, c = picture.bars
    assert (a.start, a.end, a.open) == (0, 20, False)
    assert (b.start, b.end, b.open) == (10, 39, True)
    assert c.start is None
    assert picture.ticks()[0] == (0, 0.0) and picture.ticks()[-1][1] == 20.0
    assert chart(rows[2:], now=1.0, width=10).span == 0
    instant = chart([{"label": "x", "state": "finished", "started": 5.0, "finished": 5.0}],
                    now=9.0, width=10)
    assert instant.bars[0].start == instant.bars[0].end == 0


@pytest.fixture
def scene(tmp_path: Path) -> SceneBackend:
    use_utc()
    return SceneBackend.create(tmp_path / "scene")


async def test_d_and_t_switch_the_graph_screen_between_table_dag_and_timeline(
        scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.post_message(OpenGraph(17))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GraphScreen)
        dag, timeline, table = screen.query_one(DagView), screen.query_one(Timeline), \
            screen.query_one(TasksTable)
        assert table.display and not dag.display and not timeline.display
        await pilot.press("d")
        await settle(pilot)
        assert dag.display and not table.display and dag.has_focus
        assert {b.key for b in dag.picture.boxes.values() if not b.dummy} >= {"split", "total"}
        assert dag.picture.boxes["fetch1"].state == "running"
        box = dag.picture.boxes["fetch0"]
        await pilot.click(DagView, offset=(box.x + 2, box.y + 1))
        await settle(pilot)
        assert screen.query_one("#lineage").lineage[0] == "fetch0"
        await pilot.press("t")
        await settle(pilot)
        assert timeline.display and not dag.display
        assert timeline.virtual_size.height == len(screen.detail["rows"]) + 1
        await pilot.press("t")
        await settle(pilot)
        assert table.display and not timeline.display
        keys = dict(k for _, rows in app.key_sections(screen) for k in rows)
        assert "DAG" not in keys.get("d", "") and "Draw the graph" in keys["d"]
        assert "Timeline" in keys["t"]
        titles = [c.title for c in app.get_system_commands(screen)]
        assert any(t.startswith("Draw the graph") and "(d)" in t for t in titles)
        assert any(t.startswith("Timeline") and "(t)" in t for t in titles)
