"""Task executors, one per kind, behind one contract.

``await executor.execute(job, log)`` runs one :class:`Job` — a task's attempt as its *stored*
row says (its message only names it) — writing what it prints to ``log`` (an
:class:`~wgops.daemon.tasklog.AttemptLog`, or None: not captured), and returns the result's
JSON text or raises
:class:`~wgops.daemon.results.TaskFailed` (with a type, a message and maybe a traceback, and
for shell tasks the ``{stdout, stderr, returncode}`` result in ``result``);
``cancel(task_id)`` stops a running task at once.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import os
import signal
import traceback
from dataclasses import dataclass, field
from typing import Any

from wgops.daemon import allow
from wgops.daemon.capture import TailBuffer, install_router, route_to
from wgops.daemon.results import HIDDEN_FROM_TASKS, TaskFailed, encode_result
from wgops.daemon.slots import SlotProcesses
from wgops.daemon.tasklog import AttemptLog
from wgops.store.config import Settings
from wgops.store.execution import StartedTask
from wgops.store.shell import compile_command

OUTPUT_LIMIT = 64_000


@dataclass(frozen=True)
class Job:
    """One attempt of a task, from its stored row: what to call (or the command to run) and
    with what, and how to retry it."""

    task: int
    graph: int
    name: str
    kind: str                   # python | shell | build (a python call returning a document)
    attempts: int
    target: str                 # module:function, or the command for /bin/sh -c
    args: dict[str, Any] = field(default_factory=dict)   # keyword arguments of a python call
    env: dict[str, str] = field(default_factory=dict)    # a shell command's values
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    pool: str = "default"

    @classmethod
    def of(cls, task_id: int, started: StartedTask) -> "Job":
        spec = started.spec
        common = dict(task=task_id, graph=started.graph, name=started.name, kind=started.kind,
                      attempts=started.attempts, timeout=spec.get("timeout"),
                      retries=spec.get("retries", 0), retry_delay=spec.get("retry_delay", 0.0),
                      pool=spec.get("pool", "default"))
        if started.kind == "shell":
            env = started.args.get("env") or {}
            return cls(target=compile_command(spec["shell"]).template,
                       env={str(k): str(v) for k, v in env.items()}, **common)
        return cls(target=str(spec.get("build" if started.kind == "build" else "run", "")),
                   args=started.args, **common)


def task_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a task runs with: the worker's, less its secrets, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN_FROM_TASKS}
    env.update(extra or {})
    return env


class ShellFailed(TaskFailed):
    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__("ShellError", message, result.get("stderr") or None)
        self.result = result


class PythonExecutor:
    """Allowed callables: ``async def`` on the worker's loop, plain functions in slot
    processes (see :mod:`daemon.slots`)."""

    def __init__(self, settings: Settings, worker_id: str, slots: int):
        self.settings = settings
        self.worker_id = worker_id
        self.slots = SlotProcesses(slots, settings.task_path)
        self.running: dict[int, asyncio.Task[Any]] = {}
        self._kinds: dict[str, bool] = {}        # target -> is coroutine function
        allow.add_task_path(settings.task_path)

    def start(self) -> None:
        self.slots.start()
        if self.settings.max_log_bytes:
            install_router()        # async tasks' prints and logging go to their own logs

    def close(self) -> None:
        self.slots.close()

    def _is_async(self, target: str) -> bool:
        if target not in self._kinds:
            func = allow.resolve(target)
            self._kinds[target] = inspect.iscoroutinefunction(func)
        return self._kinds[target]

    async def execute(self, job: Job, log: AttemptLog | None = None) -> str:
        try:
            target = allow.check(job.target, self.settings.allow, self.worker_id)
            is_async = self._is_async(target)
        except allow.NotAllowed as exc:
            raise TaskFailed("NotAllowed", str(exc)) from None
        builder = job.kind == "build"
        if not is_async:
            return await self.slots.run(job.task, target, job.args, job.timeout,
                                        self.settings.max_result_bytes, builder, log)
        coro = allow.resolve(target)(**job.args)
        loop = asyncio.get_running_loop()
        task = loop.create_task(coro) if log is None else \
            loop.create_task(coro, context=route_to(log.write))
        self.running[job.task] = task
        try:
            value = await asyncio.wait_for(task, job.timeout)
        except TimeoutError:
            raise TaskFailed("Timeout", f"timed out after {job.timeout}s") from None
        except asyncio.CancelledError:
            if task.cancelled() and not _current_cancelling():
                raise TaskFailed("Cancelled", "cancelled") from None
            raise
        except Exception as exc:  # noqa: BLE001 - user code
            raise TaskFailed(type(exc).__name__, str(exc) or type(exc).__name__,
                             traceback.format_exc()) from None
        finally:
            self.running.pop(job.task, None)
        return encode_result(value, target, self.settings.max_result_bytes, builder)

    def cancel(self, task_id: int) -> bool:
        task = self.running.get(task_id)
        if task is not None:
            task.cancel()
            return True
        return self.slots.cancel(task_id)


def _current_cancelling() -> int:
    current = asyncio.current_task()
    return current.cancelling() if current else 0


class ShellExecutor:
    """Shell commands (only where ``WGOPS_SHELL`` is on), each in its own process group."""

    def __init__(self, settings: Settings, worker_id: str):
        self.settings = settings
        self.worker_id = worker_id
        self.procs: dict[int, asyncio.subprocess.Process] = {}

    async def execute(self, job: Job, log: AttemptLog | None = None) -> str:
        if not self.settings.shell:
            raise TaskFailed("NotAllowed", f"shell tasks are not allowed on worker "
                             f"{self.worker_id} (WGOPS_SHELL is off)")
        proc = await asyncio.create_subprocess_shell(
            job.target, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
            env=task_environment(job.env))
        self.procs[job.task] = proc
        out, err = TailBuffer(OUTPUT_LIMIT), TailBuffer(OUTPUT_LIMIT)
        assert proc.stdout is not None and proc.stderr is not None
        try:
            await asyncio.wait_for(asyncio.gather(_pump(proc.stdout, out, log),
                                                  _pump(proc.stderr, err, log), proc.wait()),
                                   job.timeout)
        except TimeoutError:
            self._kill(proc)
            await proc.wait()
            raise TaskFailed("Timeout", f"timed out after {job.timeout}s") from None
        finally:
            self.procs.pop(job.task, None)
        result = {"stdout": out.text(), "stderr": err.text(), "returncode": proc.returncode}
        if proc.returncode != 0:
            if proc.returncode is not None and proc.returncode < 0:
                why = f"killed by signal {-proc.returncode}"
            else:
                why = f"exited with code {proc.returncode}"
            tail = result["stderr"].strip().splitlines()[-1:] if result["stderr"] else []
            raise ShellFailed(f"command {why}" + (f": {tail[0]}" if tail else ""), result)
        return encode_result(result, "the command", self.settings.max_result_bytes)

    @staticmethod
    def _kill(proc: asyncio.subprocess.Process) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cancel(self, task_id: int) -> bool:
        proc = self.procs.get(task_id)
        if proc is None:
            return False
        self._kill(proc)
        return True


async def _pump(stream: asyncio.StreamReader, tail: TailBuffer, log: AttemptLog | None) -> None:
    """Read a command's pipe as it comes: its last ``OUTPUT_LIMIT`` characters for the
    result, everything (bounded there) for the task's log. Memory stays bounded whatever
    the command prints."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while True:
        chunk = await stream.read(1 << 16)
        text = decoder.decode(chunk, final=not chunk)
        if text:
            tail.write(text)
            if log is not None:
                log.write(text)
        if not chunk:
            return
