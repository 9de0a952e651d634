"""``python -m wgops.console.screenshots``: the console's screens as SVG and PNG in screenshots/.

Rendered from the deterministic scene (:mod:`console.scene`), so the files change only when
the console's looks change. PNG needs ``rsvg-convert`` and the Fira Code font
(``scripts/ensure-screenshot-tools.sh``); without them only the SVG files are written.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from wgops.console.app import WgopsApp
from wgops.console.messages import OpenGraph, OpenTask
from wgops.console.scene import SceneBackend, use_utc

ROOT = Path(__file__).resolve().parent.parent
SIZE = (160, 46)


async def settle(pilot: Pilot[None]) -> None:
    """Wait until every worker has finished and the screen has been redrawn."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def overview(pilot: Pilot[None]) -> None:
    await settle(pilot)


async def graph_detail(pilot: Pilot[None]) -> None:
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, WgopsApp)
    app.post_message(OpenGraph(15))      # running, with a nested graph half done
    await settle(pilot)
    await pilot.press("down")            # lineage of scf
    await settle(pilot)


async def graph_dag(pilot: Pilot[None]) -> None:
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, WgopsApp)
    app.post_message(OpenGraph(17))      # fan-out, four branches in flight
    await settle(pilot)
    await pilot.press("d")
    await settle(pilot)


async def graph_timeline(pilot: Pilot[None]) -> None:
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, WgopsApp)
    app.post_message(OpenGraph(15))      # its nested graph's tasks indented under bands
    await settle(pilot)
    await pilot.press("t")
    await settle(pilot)


async def graph_map(pilot: Pilot[None]) -> None:
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, WgopsApp)
    app.post_message(OpenGraph(21))      # a mapped task: one row, its copies' progress
    await settle(pilot)
    await pilot.press("down", "enter")   # enter folds its nine copies out
    await settle(pilot)


async def task_detail(pilot: Pilot[None]) -> None:
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, WgopsApp)
    app.post_message(OpenTask(18, "relax"))
    await settle(pilot)


async def task_log(pilot: Pilot[None]) -> None:
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, WgopsApp)
    app.post_message(OpenTask(16, "bands"))      # running: its log so far, followed
    await settle(pilot)
    await pilot.pause()
    await settle(pilot)


async def command_palette(pilot: Pilot[None]) -> None:
    from textual.command import CommandList

    await settle(pilot)
    await pilot.press("colon")
    last, stable = -1, 0
    for _ in range(100):                 # the palette gathers its commands asynchronously
        await pilot.pause(0.02)
        found = pilot.app.screen.query(CommandList)
        count = found.first().option_count if found else 0
        stable = stable + 1 if count == last and count else 0
        last = count
        if stable >= 5:
            break
    from textual.widgets import Input

    for box in pilot.app.screen.query(Input):   # a blinking cursor is not deterministic
        box.cursor_blink = False
    await settle(pilot)


async def confirm_dialog(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("down", "down", "down", "down")      # graph 17, running
    await pilot.press("x")
    await settle(pilot)


async def graphs_marked(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("down", "space", "space", "down", "space")   # graphs 20, 19 and 17
    await settle(pilot)


async def bulk_confirm(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("slash", *"running", "enter")   # the filter shows the running graphs
    await pilot.pause(1.1)                             # the table reads at most once a second
    await settle(pilot)
    await pilot.press("M", "x")                        # mark them all, kill: asks once
    await settle(pilot)


SHOTS: dict[str, Callable[[Pilot[None]], Awaitable[None]]] = {
    "overview": overview, "graph-detail": graph_detail, "graph-dag": graph_dag,
    "graph-timeline": graph_timeline, "graph-map": graph_map, "task-detail": task_detail,
    "task-log": task_log, "command-palette": command_palette, "confirm-dialog": confirm_dialog,
    "graphs-marked": graphs_marked, "bulk-confirm": bulk_confirm,
}


async def take(name: str, out: Path, work: Path) -> Path:
    app = WgopsApp(SceneBackend.create(work / name), live=False)
    async with app.run_test(size=SIZE) as pilot:
        await SHOTS[name](pilot)
        svg = app.export_screenshot(title=f"wgops console: {name}")
    path = out / f"{name}.svg"
    path.write_text(svg)
    return path


def to_png(svg: Path) -> Path | None:
    tool = shutil.which("rsvg-convert")
    if tool is None:
        return None
    png = svg.with_suffix(".png")
    subprocess.run([tool, "--zoom", "1.5", "-o", str(png), str(svg)], check=True)
    return png


def main() -> int:
    import asyncio

    use_utc()
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in SHOTS:
            svg = asyncio.run(take(name, out, Path(tmp)))
            png = to_png(svg)
            print(f"{svg.relative_to(ROOT)}" + (f"  {png.relative_to(ROOT)}" if png else
                                               "  (no PNG: rsvg-convert missing)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
