"""Task logs in the store: an attempt's captured output, written by its worker and read by the
CLI, the console and the API (``wgops graph logs``, DESIGN §12).

One row per (task, attempt) in ``task_log``; a worker rewrites its running attempt's row with
the tail captured so far and once more when the attempt ends (``complete``). Deleting a task
or its graph deletes its logs (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from typing import Any

from wgops.store.db import Statement, param
from wgops.store.errors import NotFound
from wgops.store.models import Graph, Task, TaskLog


def bounded(text: str, limit: int) -> tuple[str, int]:
    """``text`` made storable (no NUL, which PostgreSQL's text refuses; lone surrogates
    replaced) and cut to its last ``limit`` bytes of UTF-8 at a character boundary; returns
    it and how many characters were cut."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    data = text.encode("utf-8", "replace")
    if len(data) > limit:
        data = data[len(data) - limit:]
    kept = data.decode("utf-8", "ignore")
    return kept, max(0, len(text) - len(kept))


_SAVE = Statement(lambda: TaskLog.insert(
    task=param("task"), attempt=param("attempt"), text=param("text"), dropped=param("dropped"),
    complete=param("complete"), updated=param("updated")).on_conflict(
        conflict_target=[TaskLog.task, TaskLog.attempt],
        preserve=[TaskLog.text, TaskLog.dropped, TaskLog.complete, TaskLog.updated]))


def save(rows: list[dict[str, Any]]) -> None:
    """Insert or replace the logs of these attempts (inside the caller's write transaction):
    ``{"task", "attempt", "text", "dropped", "complete", "updated"}`` each. One compiled
    statement per row (building a peewee query costs more than running it)."""
    for row in rows:
        _SAVE.execute(**row)


def find_task(graph_id: int, name: str) -> Task:
    """The task ``name`` of graph ``graph_id`` (a mapped task's copy is ``NAME[i]``)."""
    if not Graph.select(Graph.id).where(Graph.id == graph_id).exists():
        raise NotFound(f"no graph {graph_id}")
    task = Task.select(Task.id, Task.name, Task.state, Task.attempts).where(
        Task.graph == graph_id, Task.name == name).first()
    if task is None:
        raise NotFound(f"no task {name!r} in graph {graph_id}")
    return task


def task_log(graph_id: int, name: str, attempt: int | None = None,
             tail: int | None = None) -> dict[str, Any]:
    """``{"graph", "task", "attempt", "text", "dropped", "running"}``: what attempt
    ``attempt`` (1 is the first; None: the last) printed. ``dropped``: characters that came
    before the kept text; ``running``: the attempt still runs (the text so far). A task that
    has not started is attempt 0 with no text. ``tail``: at most that many characters (the
    console's view). ``NotFound`` for an unknown graph or task, or an attempt out of range."""
    task = find_task(graph_id, name)
    if attempt is None:
        attempt = task.attempts
    elif isinstance(attempt, bool) or not isinstance(attempt, int) or \
            not 1 <= attempt <= task.attempts:
        runs = "has not run yet" if not task.attempts else \
            f"has attempts 1 to {task.attempts}" if task.attempts > 1 else "has attempt 1 only"
        raise NotFound(f"task {name!r} of graph {graph_id} {runs}: no attempt {attempt!r}")
    row = None if attempt == 0 else TaskLog.select(TaskLog.text, TaskLog.dropped).where(
        TaskLog.task == task.id, TaskLog.attempt == attempt).first()
    text, dropped = (row.text, row.dropped) if row is not None else ("", 0)
    if tail is not None and len(text) > tail:
        dropped += len(text) - tail
        text = text[len(text) - tail:]
    return {"graph": graph_id, "task": name, "attempt": attempt, "text": text,
            "dropped": dropped, "running": task.state == "running" and attempt == task.attempts}
