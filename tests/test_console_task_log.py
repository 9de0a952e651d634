"""The console's task screen following a real task's log while it runs (real broker, daemons
and database): new output appears without a key press, and the view settles when the task
ends."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from tests.cluster import Cluster
from tests.test_console_live import SIZE, live_app, until
from wgops.console.messages import OpenTask
from wgops.console.screens.task import TaskScreen


async def test_the_task_screen_follows_a_running_tasks_log(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    gates = [str(tmp_path / "one"), str(tmp_path / "two")]
    gid = cluster.submit({"name": "grows", "tasks": {"t": {
        "run": "tests.tasks:print_between_gates",
        "args": {"texts": ["first line", "second line", "last line"], "gates": gates}}}})
    app = live_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(OpenTask(gid, "t"))
        screen = await until(pilot, lambda: isinstance(app.screen, TaskScreen) and app.screen,
                             "the task screen")

        def log() -> tuple[str, str]:
            found = screen.query("#task-log")
            box = found.first(Static) if found else None
            return (str(box.border_title), str(box.render())) if box else ("", "")

        await until(pilot, lambda: "first line" in log()[1] and "following" in log()[0],
                    "the first line while the task runs", 30)
        assert "second line" not in log()[1]
        Path(gates[0]).touch()
        await until(pilot, lambda: "second line" in log()[1], "the second line", 30)
        assert "following" in log()[0]
        Path(gates[1]).touch()
        await until(pilot, lambda: "last line" in log()[1] and "following" not in log()[0],
                    "the whole log once the task has finished", 30)
        assert log()[0] == "Log · attempt 1"
    assert cluster.wait_graph(gid)["state"] == "finished"
