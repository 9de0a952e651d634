"""Slot processes: where a worker runs synchronous Python tasks.

Each slot is a child process (forkserver) with a pipe. CPU-bound tasks use every core; a task
that hangs or is cancelled is stopped by killing its process (a fresh one replaces it); a task
that crashes its process fails, the worker lives on. The event loop waits on the pipe with
``add_reader``: no threads in the worker.

What a task prints and logs is captured in its slot (:class:`~wgops.daemon.capture.Capture`,
bounded to the request's ``log_limit`` characters, the tail kept) and streamed to the worker as
``("log", dropped, text)`` frames on the same pipe: every ``LOG_FLUSH`` seconds by a thread of
the slot process while there is new output; the rest rides with the reply
(``("logged", dropped, text, reply)``). A task whose
process is killed (timeout, cancel) or dies keeps what reached the worker: all but its last
``LOG_FLUSH`` seconds at most.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import signal
import struct
import threading
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from wgops.daemon import allow
from wgops.daemon.capture import Capture
from wgops.daemon.results import HIDDEN_FROM_TASKS, TaskFailed, encode_result

LOG_FLUSH = 0.5          # seconds between a running task's log frames


class _Sender:
    """The slot's end of the pipe, shared by the main thread (replies, the last log frame)
    and the flusher thread (log frames while a task runs)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.lock = threading.Lock()
        self.capture: Capture | None = None      # the running call's, if it captures
        self._flusher: threading.Thread | None = None

    def send(self, message: tuple) -> None:
        with self.lock:
            self.conn.send(message)

    def send_log(self, dropped: int, text: str) -> None:
        self.send(("log", dropped, text))

    def start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="wgops-log",
                                             daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        while True:
            time.sleep(LOG_FLUSH)
            capture = self.capture
            if capture is not None:
                try:
                    capture.flush(self.send_log)
                except (OSError, ValueError):      # the pipe is gone: the worker is
                    return


def _call(request: tuple) -> tuple:
    target, args, max_bytes, document = request[:4]
    try:
        func = allow.resolve(target)
        return ("ok", encode_result(func(**args), target, max_bytes, document))
    except TaskFailed as exc:
        return ("err", exc.kind, exc.message, None)
    except allow.NotAllowed as exc:
        return ("err", "NotAllowed", str(exc), None)
    except BaseException as exc:  # noqa: BLE001 - user code: reported, the slot goes on
        return ("err", type(exc).__name__, str(exc) or type(exc).__name__,
                traceback.format_exc())


def _child(conn: Connection, task_path: tuple[str, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for name in HIDDEN_FROM_TASKS:              # user code never sees the message key
        os.environ.pop(name, None)
    allow.add_task_path(task_path)
    sender = _Sender(conn)
    capture: Capture | None = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        log_limit = request[4] if len(request) > 4 else 0
        if not log_limit:
            sender.send(_call(request))
            continue
        if capture is None or capture.buffer.limit != log_limit:
            capture = Capture(log_limit)
        capture.start()
        sender.capture = capture
        sender.start_flusher()
        try:
            reply = _call(request)
        finally:
            capture.stop()
            sender.capture = None
        with capture.lock:                      # the last of the log rides with the reply
            dropped, text = capture.buffer.take()
        sender.send(("logged", dropped, text, reply) if text or dropped else reply)


READ_SIZE = 1 << 16
_SIZE = struct.Struct("!i")
_LONG_SIZE = struct.Struct("!Q")


def _frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """A whole message at the start of ``buffer`` in multiprocessing's framing (a 4-byte
    length, or -1 and an 8-byte one): (bytes it takes, its payload), or None if incomplete."""
    if len(buffer) < _SIZE.size:
        return None
    (size,) = _SIZE.unpack_from(buffer)
    start = _SIZE.size
    if size == -1:
        if len(buffer) < start + _LONG_SIZE.size:
            return None
        (size,) = _LONG_SIZE.unpack_from(buffer, start)
        start += _LONG_SIZE.size
    if len(buffer) < start + size:
        return None
    return start + size, bytes(buffer[start:start + size])


class Slot:
    """A slot process and its pipe. The event loop watches the pipe for as long as the slot
    lives (registered once, not per call): a reply, or the EOF of a dead process, resolves
    the call in progress."""

    def __init__(self, ctx: Any, task_path: tuple[str, ...]):
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.process = ctx.Process(target=_child, args=(child, task_path), daemon=True)
        self.process.start()
        child.close()
        self.waiter: asyncio.Future[Any] | None = None
        self.on_log: Any = None           # the running call's log: add(dropped, text)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        # the process's sentinel is readable once it has exited; polled with one system call
        # (Process.is_alive builds and closes a selector on every call: 4 % of a worker)
        self._exited = select.poll()
        self._exited.register(self.process.sentinel, select.POLLIN)

    def alive(self) -> bool:
        """Whether the slot process is still running (a non-blocking check). Once ``join``
        or ``exitcode`` has read the exit status from the sentinel, the forkserver closes its
        end a moment later: until then the sentinel is not readable, but multiprocessing
        holds the status (its own ``is_alive`` looks there first)."""
        if self._exited.poll(0):
            return False
        popen = self.process._popen
        return popen is not None and popen.returncode is None

    def call(self, request: tuple, on_log: Any = None) -> "asyncio.Future[Any]":
        """Send a request; the future gets the reply (or EOFError/OSError); its log frames
        go to ``on_log.add(dropped, text)`` as they arrive."""
        fd = self.conn.fileno()
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self.loop.add_reader(fd, self._readable)
        self.waiter = self.loop.create_future()
        self.on_log = on_log
        # the event loop made the pipe non-blocking; a request is written whole (the idle
        # slot reads it at once), a reply is read as it comes (_readable)
        os.set_blocking(fd, True)
        try:
            self.conn.send(request)
        finally:
            os.set_blocking(fd, False)
        return self.waiter

    def _readable(self) -> None:
        """Read what the pipe holds; a reply resolves the call once it is whole (a reply
        over 16 KiB is written in two parts, and the second may not be there yet)."""
        try:
            data = os.read(self.conn.fileno(), READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._broken(exc)
            return
        if not data:
            self._broken(EOFError("the slot process closed its pipe"))
            return
        self._buffer += data
        while (frame := _frame(self._buffer)) is not None:
            size, payload = frame
            del self._buffer[:size]
            message = ForkingPickler.loads(payload)
            if message[0] in ("log", "logged"):
                if self.on_log is not None:
                    self.on_log.add(message[1], message[2])
                if message[0] == "log":
                    continue
                message = message[3]
            waiter, self.waiter = self.waiter, None
            self.on_log = None
            if waiter is not None and not waiter.done():
                waiter.set_result(message)

    def _broken(self, exc: BaseException) -> None:
        """EOF from a dead slot (or a broken pipe): fail the call in progress."""
        waiter, self.waiter = self.waiter, None
        assert self.loop is not None
        self.loop.remove_reader(self.conn.fileno())   # EOF stays readable: stop watching
        self.loop = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def kill(self) -> None:
        if self.loop is not None and not self.conn.closed:
            self.loop.remove_reader(self.conn.fileno())
            self.loop = None
        if self.process.is_alive():
            self.process.kill()
        self.process.join(2)
        self.conn.close()


class SlotProcesses:
    """``size`` slot processes; ``run`` borrows one for one call."""

    def __init__(self, size: int, task_path: tuple[str, ...]):
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(["wgops.daemon.slots"])
        self.task_path = task_path
        self.size = size
        self.idle: list[Slot] = []
        self.busy: dict[int, Slot] = {}     # task id -> slot
        self._sem = asyncio.Semaphore(size)

    def start(self) -> None:
        self.idle = [Slot(self.ctx, self.task_path) for _ in range(self.size)]

    def close(self) -> None:
        for slot in self.idle + list(self.busy.values()):
            slot.kill()
        self.idle, self.busy = [], {}

    def cancel(self, task_id: int) -> bool:
        slot = self.busy.get(task_id)
        if slot is None or not slot.alive():
            return False
        slot.process.kill()        # the pipe reports EOF; run() then retires the slot
        return True

    def _take(self) -> Slot:
        """An idle slot whose process is alive (one that died idle is replaced)."""
        while self.idle:
            slot = self.idle.pop()
            if slot.alive():
                return slot
            slot.kill()
        return Slot(self.ctx, self.task_path)

    @staticmethod
    async def _exit_code(slot: Slot, patience: float = 0.5) -> int | None:
        """The exit code of a slot whose pipe closed: the process may not be reaped yet."""
        deadline = asyncio.get_running_loop().time() + patience
        while slot.process.exitcode is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return slot.process.exitcode

    async def run(self, task_id: int, target: str, args: dict[str, Any],
                  timeout: float | None, max_bytes: int, document: bool = False,
                  log: Any = None) -> str:
        """Run ``target(**args)`` in a slot; return the JSON text of its result (a graph
        document's when ``document``: a builder's). ``log``: where what it prints goes
        (``log.add(dropped, text)``, at most ``log.limit`` characters kept)."""
        async with self._sem:
            slot = self._take()
            self.busy[task_id] = slot
            healthy = False
            try:
                limit = log.limit if log is not None else 0
                reply = await asyncio.wait_for(
                    slot.call((target, args, max_bytes, document, limit), log), timeout)
                healthy = True
            except TimeoutError:
                raise TaskFailed("Timeout", f"timed out after {timeout}s") from None
            except (EOFError, OSError):
                code = await self._exit_code(slot)
                raise TaskFailed("SlotDied", "the task's process died" + (
                    f" (exit code {code})" if code is not None else "")) from None
            finally:
                slot.on_log = None
                self.busy.pop(task_id, None)
                if healthy and slot.alive():
                    self.idle.append(slot)
                else:
                    slot.kill()
            if reply[0] == "ok":
                return reply[1]
            raise TaskFailed(reply[1], reply[2], reply[3])
