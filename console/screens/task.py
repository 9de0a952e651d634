"""Task detail: arguments, result, error with traceback, shell stdout and stderr, and the log
of its last attempt (what it printed and logged), followed live while it runs."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from wgops.console.data.model import Status
from wgops.console.screens.base import ConsoleScreen
from wgops.console.widgets import fmt
from wgops.console.widgets.topbar import TopBar
from wgops.store.errors import WgopsError


def _json(value: Any) -> RenderableType:
    return Syntax(json.dumps(value, indent=2, default=str), "json", theme="ansi_dark",
                  word_wrap=True, background_color="default")


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


LOG_VIEW_LINES = 2000           # lines of a log the screen holds (the tail)


def log_title(log: dict[str, Any]) -> str:
    title = f"Log · attempt {log['attempt']}"
    if log.get("running"):
        title += " · following"
    if log.get("dropped"):
        title += f" · first {log['dropped']:,} characters not shown"
    return title


def log_view(log: dict[str, Any] | None) -> RenderableType:
    """The tail of the task's log as text (no markup: it is what the task printed)."""
    if not log or log.get("attempt", 0) == 0:
        return Text("(not started)", style="dim")
    text = log.get("text") or ""
    if not text:
        return Text("(nothing printed yet)" if log.get("running") else "(nothing printed)",
                    style="dim")
    lines = text.splitlines()
    if len(lines) > LOG_VIEW_LINES:
        text = "\n".join(lines[-LOG_VIEW_LINES:])
    return Text(text.rstrip("\n"), no_wrap=False)


def sections(t: dict[str, Any]) -> list[tuple[str, RenderableType]]:
    """The task detail as (title, renderable) sections."""
    head = Table.grid(padding=(0, 2))
    for _ in range(4):
        head.add_column(no_wrap=True)
    took = (t["finished"] or time.time()) - t["started"] if t["started"] else None
    head.add_row(Text("state", style="dim"), fmt.state(t["state"]),
                 Text("kind", style="dim"), t["kind"])
    head.add_row(Text("attempts", style="dim"), f"{t['attempts']} (lost {t['lost']})",
                 Text("worker", style="dim"), t["worker"] or "-")
    head.add_row(Text("pool", style="dim"), t["pool"], Text("took", style="dim"),
                 fmt.duration(took))
    head.add_row(Text("started", style="dim"), _when(t["started"]),
                 Text("finished", style="dim"), _when(t["finished"]))
    if t.get("waiting_for"):
        head.add_row(Text("waits for", style="dim"), Text(t["waiting_for"], style="#d7af5f"),
                     "", "")
    out: list[tuple[str, RenderableType]] = [("Task", head),
                                             ("Runs", Text(str(t["target"]), style="bold"))]
    out.append(("Arguments as declared", _json(t.get("declared_args") or {})))
    if t.get("args") is not None:
        out.append(("Arguments as dispatched", _json(t["args"])))
    result = t.get("result")
    if t["kind"] == "shell" and isinstance(result, dict):
        out.append(("Return code", Text(str(result.get("returncode")),
                                        style="#5faf5f" if result.get("returncode") == 0
                                        else "bold #ff5f5f")))
        out.append(("stdout", Text(result.get("stdout") or "(empty)")))
        out.append(("stderr", Text(result.get("stderr") or "(empty)", style="#ff8787")))
    elif result is not None:
        out.append(("Result", _json(result)))
    error = t.get("error")
    if error:
        parts: list[RenderableType] = [Text(f"{error.get('type', 'Error')}: "
                                            f"{error.get('message', '')}", style="bold #ff5f5f")]
        if error.get("traceback"):
            parts.append(Syntax(error["traceback"].rstrip(), "pytb", theme="ansi_dark",
                                word_wrap=True, background_color="default"))
        if t["kind"] == "shell" and isinstance(error.get("stderr"), str):
            parts.append(Text(error["stderr"], style="#ff8787"))
        out.append(("Error", Group(*parts)))
    return out


class TaskScreen(ConsoleScreen):
    """One task; refreshed while it is not finished (its log too: while the task runs, the
    view follows the end of it unless scrolled up). ``esc`` goes back."""

    BINDINGS = [Binding("escape", "back", "Back"),
                Binding("j", "scroll('down')", show=False),
                Binding("k", "scroll('up')", show=False)]

    def __init__(self, graph_id: int, name: str) -> None:
        super().__init__(classes="task-screen")
        self.graph_id, self.task_name = graph_id, name
        self._state = ""
        self.detail: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield VerticalScroll(id="task-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        bar = self.query_one(TopBar)
        bar.readonly = self.console.readonly
        bar.title = f"graph {self.graph_id} › task {self.task_name}"
        if self.console.status is not None:
            bar.status = self.console.status
        self.query_one("#task-body").focus()
        self.set_interval(1.0, self._tick)
        self.load()

    def status_arrived(self, status: Status) -> None:
        self.query_one(TopBar).status = status

    def _tick(self) -> None:
        if self._state not in ("finished", "failed", "skipped", "killed"):
            self.load()

    @work(exclusive=True, group="task")
    async def load(self) -> None:
        try:
            task = await self.console.backend.task_detail(self.graph_id, self.task_name)
        except WgopsError as exc:
            self.notify(str(exc), severity="error")
            return
        if task["state"] == self._state and self._state in ("finished", "failed", "skipped",
                                                            "killed"):
            return
        self._state = task["state"]
        previous, self.detail = self.detail, task
        body = self.query_one("#task-body", VerticalScroll)
        following = previous is None or body.scroll_y >= body.max_scroll_y - 1
        parts = sections(task)
        log = task.get("log")
        parts.append((log_title(log) if log else "Log", log_view(log)))
        boxes = list(body.query(".section").results(Static))
        if [b.border_title for b in boxes[:-1]] == [title for title, _ in parts[:-1]] and \
                len(boxes) == len(parts):
            for box, (title, renderable) in zip(boxes, parts, strict=True):
                box.update(renderable)             # in place: the scroll position stays
                box.border_title = title
        else:
            await body.remove_children()
            widgets = []
            for title, renderable in parts:
                box = Static(renderable, classes="section")
                box.border_title = title
                widgets.append(box)
            widgets[-1].id = "task-log"
            await body.mount_all(widgets)
        if following and log and log.get("running"):
            self.call_after_refresh(body.scroll_end, animate=False)

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#task-body", VerticalScroll)
        (body.scroll_down if direction == "down" else body.scroll_up)(animate=False)

    def action_back(self) -> None:
        self.dismiss()
