"""Task executors, one per kind, behind one contract.

``await executor.execute(msg)`` returns the result's JSON text or raises
:class:`~daemon.slots.TaskFailed` (with a type, a message and maybe a traceback, and for shell
tasks the ``{stdout, stderr, returncode}`` result in ``result``); ``cancel(task_id)`` stops a
running task at once.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import traceback
from typing import Any

from wgops.daemon import allow
from wgops.daemon.protocol import RunTask
from wgops.daemon.results import TaskFailed, encode_result
from wgops.daemon.slots import SlotProcesses
from wgops.store.config import Settings

OUTPUT_LIMIT = 64_000


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

    def close(self) -> None:
        self.slots.close()

    def _is_async(self, target: str) -> bool:
        if target not in self._kinds:
            func = allow.resolve(target)
            self._kinds[target] = inspect.iscoroutinefunction(func)
        return self._kinds[target]

    async def execute(self, msg: RunTask) -> str:
        try:
            target = allow.check(msg.target, self.settings.allow, self.worker_id)
            is_async = self._is_async(target)
        except allow.NotAllowed as exc:
            raise TaskFailed("NotAllowed", str(exc)) from None
        if not is_async:
            return await self.slots.run(msg.task, target, msg.args, msg.timeout,
                                       self.settings.max_result_bytes)
        task = asyncio.ensure_future(allow.resolve(target)(**msg.args))
        self.running[msg.task] = task
        try:
            value = await asyncio.wait_for(task, msg.timeout)
        except TimeoutError:
            raise TaskFailed("Timeout", f"timed out after {msg.timeout}s") from None
        except asyncio.CancelledError:
            if task.cancelled() and not _current_cancelling():
                raise TaskFailed("Cancelled", "cancelled") from None
            raise
        except Exception as exc:  # noqa: BLE001 - user code
            raise TaskFailed(type(exc).__name__, str(exc) or type(exc).__name__,
                             traceback.format_exc()) from None
        finally:
            self.running.pop(msg.task, None)
        return encode_result(value, target, self.settings.max_result_bytes)

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

    async def execute(self, msg: RunTask) -> str:
        if not self.settings.shell:
            raise TaskFailed("NotAllowed", f"shell tasks are not allowed on worker "
                             f"{self.worker_id} (WGOPS_SHELL is off)")
        proc = await asyncio.create_subprocess_shell(
            msg.target, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        self.procs[msg.task] = proc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), msg.timeout)
        except TimeoutError:
            self._kill(proc)
            await proc.wait()
            raise TaskFailed("Timeout", f"timed out after {msg.timeout}s") from None
        finally:
            self.procs.pop(msg.task, None)
        result = {"stdout": out.decode("utf-8", "replace")[-OUTPUT_LIMIT:],
                  "stderr": err.decode("utf-8", "replace")[-OUTPUT_LIMIT:],
                  "returncode": proc.returncode}
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
