"""The console over the deterministic scene: navigation, filter, sort, dialogs, read-only.

Behaviour against a real running installation is in ``test_console_live.py``; looks in
``test_console_snapshots.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Static

from wgops.console.app import WgopsApp
from wgops.console.data.events import EventBuffer, parse_event
from wgops.console.data.model import EventRow, GraphQuery
from wgops.console.messages import OpenTask
from wgops.console.scene import SceneBackend, use_utc
from wgops.console.screens.dialogs import ConfirmScreen, HelpScreen, PickScreen, SubmitScreen
from wgops.console.screens.graph import GraphScreen
from wgops.console.screens.main import MainScreen
from wgops.console.screens.task import TaskScreen
from wgops.console.screenshots import settle
from wgops.console.widgets.graphs import GraphsTable
from wgops.console.widgets.tasks import TasksTable

ROOT = Path(__file__).resolve().parent.parent
SIZE = (160, 46)


@pytest.fixture
def scene(tmp_path: Path) -> SceneBackend:
    use_utc()
    return SceneBackend.create(tmp_path / "scene")


def shown_ids(app: WgopsApp) -> list[int]:
    table = app.screen.query_one(GraphsTable)
    return [int(str(table.get_row_at(i)[0])) for i in range(table.row_count)]


async def test_overview_shows_the_newest_graphs_and_the_counts(scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        ids = shown_ids(app)
        assert ids == sorted(ids, reverse=True) and ids[0] == 21 and len(ids) == 20
        counts = app.screen.query_one("#counts").counts
        assert counts == {"finished": 13, "killed": 1, "running": 3, "paused": 1,
                          "failed": 1, "queued": 1}


async def test_filter_and_sort_are_queries(scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"running")
        await pilot.pause(0.6)                 # the table reads at most twice a second
        await settle(pilot)
        assert shown_ids(app) == [21, 17, 15]
        await pilot.press("enter", "escape")   # leave the input, then clear the filter
        await pilot.pause(0.6)
        await settle(pilot)
        assert len(shown_ids(app)) == 20
        table = app.screen.query_one(GraphsTable)
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:5]) + 1
        await pilot.click("#graphs", offset=(x, 0))        # the PRIO header
        await pilot.pause(0.6)
        await settle(pilot)
        assert shown_ids(app)[:4] == [20, 15, 17, 21]       # priority 9, 5, 3, 2


async def test_drill_down_graph_nested_task_and_back(scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(GraphsTable)
        table.move_cursor(row=table.get_row_index("15"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, GraphScreen) and app.screen.graph_id == 15
        tasks = app.screen.query_one(TasksTable)
        keys = [k.value for k in tasks.rows]
        assert keys[:4] == ["15:relax", "15:scf", "15:report", "15:bands"]
        assert "16:path" in keys and "16:gap" in keys        # the nested graph, inline
        lineage = app.screen.detail["lineage"]["scf"]["from"]
        assert "structure ← relax.structure" in lineage
        gap = app.screen.detail["rows"][keys.index("16:gap")]
        assert gap["waiting_for"] == "waiting for bands"
        await pilot.press("j")                               # scf
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TaskScreen) and app.screen.task_name == "scf"
        await pilot.press("escape")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_task_detail_shows_the_traceback(scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.post_message(OpenTask(18, "relax"))
        await settle(pilot)
        assert isinstance(app.screen, TaskScreen) and app.screen.detail is not None
        assert "SCF did not converge" in app.screen.detail["error"]["traceback"]
        titles = [s.border_title for s in app.screen.query(".section")]
        assert titles[-2:] == ["Error", "Log · attempt 3"] and "Arguments as dispatched" in titles
        log = app.screen.query_one("#task-log", Static)
        assert "ERROR wgops.examples.tasks: SCF did not converge" in str(log.render())


async def test_task_log_of_a_running_task_is_followed(scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.post_message(OpenTask(16, "bands"))
        await settle(pilot)
        await pilot.pause()
        assert isinstance(app.screen, TaskScreen)
        log = app.screen.query_one("#task-log", Static)
        assert log.border_title == "Log · attempt 1 · following"
        assert "k-point 11/16" in str(log.render())
        body = app.screen.query_one("#task-body")
        assert body.max_scroll_y > 0 and body.scroll_y == body.max_scroll_y   # at the end


async def test_destructive_actions_ask_and_pickers_list_choices(scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        table = app.screen.query_one(GraphsTable)
        table.move_cursor(row=table.get_row_index("15"))       # owned by sched-a1
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, PickScreen)
        assert [v for v, _ in app.screen.options] == ["sched-b2"]
        await pilot.press("escape", "minus")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)          # removing a worker asks
        await pilot.press("escape", "n")
        await settle(pilot)
        assert isinstance(app.screen, SubmitScreen)
        await pilot.press(*"/nonexistent.yaml", "enter")
        await settle(pilot)
        error = str(app.screen.query_one("#error").render())
        assert "nonexistent" in error                          # shown inline, still open
        assert isinstance(app.screen, SubmitScreen)


async def test_help_and_palette_list_every_action(scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for word in ("Pause", "Play", "Kill", "Retry", "Reassign", "Priority", "Submit",
                     "Add a worker", "Remove a scheduler", "Start", "Stop every daemon"):
            assert any(word in t for t in titles), word
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = dict(k for _, rows in app.screen.sections for k in rows)
        assert {"p", "P", "x", "R", "a", "=", "n", "+", "-", ">", "<", "D", "^d", "/"} <= \
            set(keys)
        main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
        footer_keys = {ab.binding.key_display or ab.binding.key
                       for ab in main.active_bindings.values() if ab.binding.show}
        assert {"p", "x", "a", "+", "-", "D"} <= footer_keys


async def test_readonly_hides_every_action(scene: SceneBackend) -> None:
    app = WgopsApp(scene, readonly=True, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = {ab.binding.action for ab in app.screen.active_bindings.values()
                 if ab.binding.show and app.screen.check_action(
                     ab.binding.action.split("(")[0], ()) is not False
                 and app.check_action(ab.binding.action, ()) is not False}
        assert not any(a.startswith(("graph", "scale", "submit", "start", "stop"))
                       for a in shown)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(w in t for t in titles for w in ("Kill", "Pause", "Submit", "worker"))
        await pilot.press("x", "n", "plus")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


def test_event_buffer_is_bounded_and_coalesces() -> None:
    clock = [100.0]
    buffer = EventBuffer(keep=50, clock=lambda: clock[0])
    for i in range(5000):
        buffer.add(EventRow(float(i), "task.running", graph=i % 7, name="t"))
        clock[0] = 100.0 + i / 1000
    batch = buffer.drain()
    assert len(batch.events) == 50 and batch.dropped == 4950 and batch.total == 5000
    assert batch.graphs == frozenset(range(7))
    assert buffer.drain().events == ()
    assert parse_event(b"not json") is None
    event = parse_event(b'{"type":"event","v":1,"topic":"graph.paused","ts":1.5,"graph":3}')
    assert event is not None and event.graph == 3 and event.topic == "graph.paused"


def test_next_sort_cycles() -> None:
    q = GraphQuery()
    seen = [q.sort]
    for _ in range(6):
        q = q.next_sort()
        seen.append(q.sort)
    assert seen[0] == seen[-1] == "id" and len(set(seen)) == 6


def test_store_and_daemon_layers_do_not_load_textual() -> None:
    code = ("import sys, console.data.backend, console.scene, daemon.control, store.graphs; "
            "assert 'textual' not in sys.modules, 'textual loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(ROOT))


async def test_a_mapped_task_is_one_row_that_folds_its_copies_out(scene: SceneBackend) -> None:
    from wgops.console.messages import OpenGraph

    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.post_message(OpenGraph(21))
        await settle(pilot)
        assert isinstance(app.screen, GraphScreen)
        table = app.screen.query_one(TasksTable)
        keys = [str(k.value) for k in table.rows]
        assert keys == ["21:grid", "21:energy", "21:best", "21:coarse", "21:report"]
        assert "5/9" in str(table.get_row("21:energy")[0])
        table.move_cursor(row=1)
        await pilot.press("enter")
        await settle(pilot)
        keys = [str(k.value) for k in table.rows]
        assert keys[2:11] == [f"21:energy[{i}]" for i in range(9)]
        assert isinstance(app.screen, GraphScreen)           # folded out, not opened
        await pilot.press("enter")                           # on energy again: folded in
        await settle(pilot)
        assert len(table.rows) == 5


async def test_marking_graphs_and_one_confirmation_for_the_marked_set(
        scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen
        table = main.query_one(GraphsTable)
        await pilot.press("space", "space", "down", "space")       # 21, 20 and 18
        await settle(pilot)
        assert table.marked_ids() == [21, 20, 18]
        assert str(table.get_row_at(0)[1]).startswith("● ")        # visibly marked
        assert not str(table.get_row_at(2)[1]).startswith("●")
        assert "3 marked" in str(main.query_one("#counts").render())
        await pilot.press("up", "space")                           # 18 again: unmarked
        await settle(pilot)
        assert table.marked_ids() == [21, 20]
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == "Kill 2 graphs?"
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen) and table.marked_ids() == [21, 20]
        # mark all shown by the filter; again: unmark them
        await pilot.press("slash", *"running", "enter")
        await pilot.pause(1.1)
        await settle(pilot)
        shown = shown_ids(app)
        assert table.marked_ids() == []                # marks of rows no longer shown go
        await pilot.press("M")
        await settle(pilot)
        assert table.marked_ids() == shown and len(shown) == 3
        await pilot.press("p")
        await settle(pilot)
        assert app.screen.question == "Pause 3 graphs?"
        await pilot.press("y")                         # the scene refuses: said, not crashed
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        await pilot.press("M")
        await settle(pilot)
        assert table.marked_ids() == []
        await pilot.press("p")                         # nothing marked: the cursor's graph
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        footer = {ab.binding.key_display or ab.binding.key
                  for ab in app.screen.active_bindings.values() if ab.binding.show}
        assert {"space", "M"} <= footer
        await pilot.press("question_mark")
        await settle(pilot)
        keys = dict(k for _, rows in app.screen.sections for k in rows)
        assert "Mark shown" in keys["M"] and "one confirmation" in keys["space"]


async def test_delete_asks_first_for_the_cursors_graph_and_for_the_marked_set(
        scene: SceneBackend) -> None:
    app = WgopsApp(scene, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(GraphsTable)
        gid = table.selected_id()
        await pilot.press("X")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == f"Delete graph {gid}?"
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("space", "space")
        await settle(pilot)
        await pilot.press("X")
        await settle(pilot)
        assert app.screen.question == "Delete 2 graphs?"
        assert "for good" in app.screen.detail
        await pilot.press("y")                   # the scene refuses: said, not crashed
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
