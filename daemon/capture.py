"""Capturing what a task prints: a bounded tail buffer, and the streams and logging handler
that feed it.

A task's log is one text: its stdout and stderr as written, interleaved, and its ``logging``
records as lines ``2026-12-02 01:02:03.456 WARNING name: message`` (with a traceback when the
record has one). It is bounded while it is captured: :class:`TailBuffer` keeps the last
``limit`` characters and counts what it dropped, so a task that prints 100 MB costs at most
about twice ``limit`` of memory and never more than a slice copy per ``limit`` written.

Where the output comes from differs by executor: a slot process swaps its own ``sys.stdout``,
``sys.stderr`` and a root logging handler for the time of a call (:class:`Capture`); tasks on
the worker's event loop share one process, so the worker routes by a context variable
(:func:`route_to`: what runs in a task's context — the coroutine and whatever it spawns —
writes to that task's buffer, everything else to the real streams); shell tasks' pipes are
read as they come. This module does no I/O of its own.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class TailBuffer:
    """The last ``limit`` characters written, and how many characters came before them.

    ``write`` is amortised O(1): chunks are kept in a list and compacted to the tail only when
    they exceed twice the limit."""

    __slots__ = ("limit", "_chunks", "_size", "dropped", "written")

    def __init__(self, limit: int):
        self.limit = max(0, limit)
        self._chunks: list[str] = []
        self._size = 0
        self.dropped = 0              # characters written and no longer kept
        self.written = 0              # characters written in all

    def write(self, text: str) -> None:
        if not text:
            return
        self.written += len(text)
        if len(text) >= self.limit:
            self.dropped += self._size + len(text) - self.limit
            self._chunks = [text[len(text) - self.limit:]] if self.limit else []
            self._size = self.limit
            return
        self._chunks.append(text)
        self._size += len(text)
        if self._size > 2 * self.limit:
            self._compact()

    def add(self, dropped: int, text: str) -> None:
        """Append a chunk that was itself a tail (``dropped`` characters before it lost)."""
        self.dropped += dropped
        self.written += dropped
        self.write(text)

    def _compact(self) -> None:
        whole = "".join(self._chunks)
        cut = max(0, len(whole) - self.limit)
        self.dropped += cut
        self._chunks = [whole[cut:]] if len(whole) > cut else []
        self._size = len(whole) - cut

    def text(self) -> str:
        """The kept tail (at most ``limit`` characters)."""
        if self._size > self.limit:
            self._compact()
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def take(self) -> tuple[int, str]:
        """``(dropped, text)`` of what was written since the last take, and start afresh."""
        text, dropped = self.text(), self.dropped
        self._chunks, self._size, self.dropped = [], 0, 0
        return dropped, text

    def __bool__(self) -> bool:
        return self._size > 0 or self.dropped > 0


class CaptureStream(io.TextIOBase):
    """A text stream whose writes go to ``sink`` (a ``str -> None`` callable)."""

    def __init__(self, sink: Callable[[str], None], name: str):
        super().__init__()
        self._sink = sink
        self._name = name

    @property
    def name(self) -> str:          # type: ignore[override]
        return self._name

    @property
    def encoding(self) -> str:      # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:     # type: ignore[override]
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._sink(text)
        return len(text)


class CaptureHandler(logging.Handler):
    """A logging handler that writes each record, formatted with its level and time, to
    ``sink``; ``sink`` may be a callable that returns None for records it does not take."""

    def __init__(self, sink: Callable[[str], None]):
        super().__init__(logging.NOTSET)
        self._sink = sink
        self.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never fail the task
            self.handleError(record)


class Capture:
    """One slot process's capture: for the time of a call, ``sys.stdout``, ``sys.stderr``
    and a root logging handler write into a :class:`TailBuffer` (the root logger is set to
    INFO if it was less verbose, and stays so: records of INFO and above are kept).
    ``flush(send)`` hands what was written since the last flush to ``send(dropped, text)``;
    a thread may call it while the task runs (writes and flushes take one lock)."""

    def __init__(self, limit: int):
        self.buffer = TailBuffer(limit)
        self.lock = threading.Lock()
        self._saved: tuple[Any, Any] | None = None
        self._handler = CaptureHandler(self.write)
        self._streams = (CaptureStream(self.write, "<stdout>"),
                         CaptureStream(self.write, "<stderr>"))
        self.active = False

    def write(self, text: str) -> None:
        with self.lock:
            self.buffer.write(text)

    def start(self) -> None:
        """Capture from now on, into an empty buffer (a Capture serves call after call)."""
        root = logging.getLogger()
        with self.lock:
            self.buffer = TailBuffer(self.buffer.limit)
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._streams
        root.addHandler(self._handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)      # kept for the next calls (a level change clears
            #                                  every logger's cache: not twice per call)
        self.active = True

    def stop(self) -> None:
        if self._saved is None:
            return
        logging.getLogger().removeHandler(self._handler)
        sys.stdout, sys.stderr = self._saved
        self._saved = None
        self.active = False

    def flush(self, send: Callable[[int, str], None]) -> None:
        with self.lock:
            if not self.buffer:
                return
            dropped, text = self.buffer.take()
            send(dropped, text)


# -- tasks on the worker's event loop -------------------------------------------------------------

_current: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "wgops_task_log", default=None)


class _Routed(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of the worker: a write in a task's context goes to the
    task's log, any other to the stream it replaced."""

    def __init__(self, fallback: Any):
        super().__init__()
        self._fallback = fallback

    def __getattr__(self, name: str) -> Any:      # fileno, buffer ... of the real one
        return getattr(self._fallback, name)

    @property
    def encoding(self) -> str:      # type: ignore[override]
        return getattr(self._fallback, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:     # type: ignore[override]
        return getattr(self._fallback, "errors", None)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._fallback.isatty() if _current.get() is None else False

    def write(self, text: str) -> int:     # type: ignore[override]
        sink = _current.get()
        if sink is None:
            return self._fallback.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._fallback.flush()


class _RoutedHandler(CaptureHandler):
    def __init__(self) -> None:
        super().__init__(lambda text: None)

    def emit(self, record: logging.LogRecord) -> None:
        sink = _current.get()
        if sink is not None:
            try:
                sink(self.format(record) + "\n")
            except Exception:  # noqa: BLE001 - logging must never fail the task
                self.handleError(record)


_installed = False


def install_router() -> None:
    """Route the worker's ``sys.stdout``, ``sys.stderr`` and root logging by task context
    (once per process; the worker's own log handlers keep the streams they were given)."""
    global _installed
    if _installed:
        return
    sys.stdout = _Routed(sys.stdout)
    sys.stderr = _Routed(sys.stderr)
    logging.getLogger().addHandler(_RoutedHandler())
    _installed = True


def route_to(sink: Callable[[str], None]) -> contextvars.Context:
    """A copy of the current context in which prints and logging go to ``sink``: run a
    task's coroutine in it (``loop.create_task(coro, context=...)``)."""
    context = contextvars.copy_context()
    context.run(_current.set, sink)
    return context
