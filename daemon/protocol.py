"""The wire protocol: queue names and one frozen dataclass per message type.

Every message is a JSON object ``{"type": ..., "v": 1, ...fields}``. :func:`decode` checks
the size, the JSON, the type, the version and every field's type, and raises
:class:`~store.errors.ProtocolError` with a reason that ends up in ``{ns}.dead``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from wgops.store.errors import ProtocolError

VERSION = 1
INT_LIMIT = 2 ** 63            # integers beyond a 64-bit column are refused on receipt
DONE_STATES = ("queued", "running", "finished", "failed", "skipped", "killed")
# the Control ops each daemon understands, with the field each needs
SCHEDULER_OPS: dict[str, str | None] = {"refresh": "graph", "adopt": "graph", "drop": "graph",
                                        "ping": None}
WORKER_OPS: dict[str, str | None] = {"cancel": "task", "ping": None}
MAX_PRIORITY = 9


@dataclass(frozen=True)
class Names:
    """Every exchange and queue name, derived from the namespace."""

    ns: str

    @property
    def graphs(self) -> str:
        return f"{self.ns}.graphs"

    @property
    def events(self) -> str:
        return f"{self.ns}.events"

    @property
    def dead(self) -> str:
        return f"{self.ns}.dead"

    def tasks(self, pool: str) -> str:
        return f"{self.ns}.tasks.{pool}"

    def scheduler(self, sid: str) -> str:
        return f"{self.ns}.scheduler.{sid}"

    def worker(self, wid: str) -> str:
        return f"{self.ns}.worker.{wid}"

    def is_task_queue(self, name: str) -> bool:
        return name.startswith(f"{self.ns}.tasks.")


class Message:
    """Base of the message types; ``TYPE`` is the value of the ``type`` field."""

    TYPE: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        # shallow: the fields are JSON values, no nested dataclass (``asdict`` deep-copies)
        return {name: getattr(self, name) for name in _layout(type(self))[0]}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "v": VERSION, **self.fields()}

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


@dataclass(frozen=True)
class LaunchGraph(Message):
    """Submit -> ``{ns}.graphs``: a stored graph waits for a scheduler to claim it."""

    TYPE: ClassVar[str] = "launch"
    graph: int


@dataclass(frozen=True)
class RunTask(Message):
    """Scheduler -> ``{ns}.tasks.{pool}``: run attempt ``attempt + 1`` of a leaf task.

    ``attempt`` is the task's ``attempts`` when dispatched; the worker's start is a
    compare-and-set on it, so a stale or duplicate message never runs. ``owner`` is the
    scheduler to notify; ``max_lost`` bounds redeliveries after lost workers.
    """

    TYPE: ClassVar[str] = "run"
    task: int
    graph: int
    name: str
    attempt: int
    kind: str                      # python | shell
    target: str                    # module:function, or the shell command (substituted)
    args: dict = field(default_factory=dict)
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    pool: str = "default"
    owner: str = ""


@dataclass(frozen=True)
class TaskDone(Message):
    """Worker -> owner scheduler, after the task's row is committed. ``state`` is the
    committed state (``queued`` means a retry is due at ``not_before``)."""

    TYPE: ClassVar[str] = "done"
    task: int
    graph: int
    state: str
    attempt: int
    worker: str = ""
    not_before: float | None = None

    def __post_init__(self) -> None:
        if self.state not in DONE_STATES:
            raise ProtocolError(f"TaskDone.state: unknown state {self.state!r}")


MAX_DONE_ITEMS = 1000


@dataclass(frozen=True)
class TasksDone(Message):
    """Worker -> owner scheduler: several :class:`TaskDone` of one loop turn in one message
    (the completions of a burst; each is validated as a ``TaskDone`` on receipt)."""

    TYPE: ClassVar[str] = "done_many"
    items: list

    def __post_init__(self) -> None:
        if not 1 <= len(self.items) <= MAX_DONE_ITEMS:
            raise ProtocolError(f"TasksDone.items: {len(self.items)} items, expected 1 to "
                                f"{MAX_DONE_ITEMS}")
        done = []
        for i, item in enumerate(self.items):
            if not isinstance(item, dict):
                raise ProtocolError(f"TasksDone.items[{i}]: expected an object")
            done.append(_build(TaskDone, dict(item), f"TasksDone.items[{i}]"))
        object.__setattr__(self, "done", tuple(done))

    @classmethod
    def of(cls, done: list[TaskDone]) -> "TasksDone":
        return cls(items=[d.fields() for d in done])


@dataclass(frozen=True)
class Control(Message):
    """CLI/console -> a daemon's control queue. ``op`` names the action; replies (when
    ``reply_to`` is set on the AMQP message) are :class:`Reply`."""

    TYPE: ClassVar[str] = "control"
    op: str
    graph: int | None = None
    task: int | None = None
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Reply(Message):
    TYPE: ClassVar[str] = "reply"
    ok: bool
    data: dict = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Event(Message):
    """Published on ``{ns}.events`` with routing key ``{topic}`` (``graph.running``,
    ``task.finished``, ``daemon.heartbeat``, ``control.pause`` ...)."""

    TYPE: ClassVar[str] = "event"
    topic: str
    ts: float
    graph: int | None = None
    task: int | None = None
    name: str | None = None
    state: str | None = None
    data: dict = field(default_factory=dict)


M = TypeVar("M", bound=Message)

TYPES: dict[str, type[Message]] = {cls.TYPE: cls for cls in
                                   (LaunchGraph, RunTask, TaskDone, TasksDone, Control, Reply,
                                    Event)}


def _options(hint: Any) -> tuple[Any, ...]:
    """The types a field accepts: ``int | None`` -> ``(int, NoneType)``."""
    origin = typing.get_origin(hint)
    return typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)


def _check(cls: type, name: str, value: Any, hint: Any, allowed: tuple[Any, ...]) -> None:
    for option in allowed:
        if option is type(None) and value is None:
            return
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ProtocolError(f"{cls.__name__}.{name}: {value} is not a finite number")
            return
        if option in (int, str, dict, bool, list) and isinstance(value, option) and not (
                option is int and isinstance(value, bool)):
            if option is int and not -INT_LIMIT <= value < INT_LIMIT:
                raise ProtocolError(f"{cls.__name__}.{name}: {value} is out of range")
            return
    raise ProtocolError(f"{cls.__name__}.{name}: expected {hint}, got {type(value).__name__}")


@functools.cache
def _layout(cls: type) -> tuple[dict[str, dataclasses.Field], dict[str, Any],
                                dict[str, tuple[Any, ...]], frozenset[str]]:
    """A message class's fields, resolved type hints, the types each field accepts and the
    required fields, computed once per class (``typing.get_type_hints`` re-evaluates every
    annotation string on each call)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    required = frozenset(name for name, f in fields.items() if f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING)
    return fields, hints, {name: _options(hints[name]) for name in fields}, required


def decode(body: bytes, expect: tuple[type[Message], ...] | None = None,
           max_bytes: int = 4_000_000) -> Message:
    """Validate and decode one message body."""
    if len(body) > max_bytes:
        raise ProtocolError(f"message of {len(body)} bytes is over the {max_bytes}-byte limit")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    kind = data.pop("type", None)
    cls = TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    if expect and cls not in expect:
        raise ProtocolError(f"unexpected message type {kind!r} here")
    version = data.pop("v", None)
    if type(version) is not int or version != VERSION:         # true == 1 in Python
        raise ProtocolError(f"unsupported {kind} message version {version!r}")
    return _build(cls, data)


def _build(cls: type[M], data: dict[str, Any], where: str | None = None) -> M:
    """Check a message's fields (names, presence, types) and build it."""
    fields, hints, options, required = _layout(cls)
    if not data.keys() <= fields.keys():
        unknown = sorted(set(data) - set(fields))
        raise ProtocolError(f"{where or cls.__name__}: unknown field {unknown[0]!r}")
    for name, allowed in options.items():
        if name in data:
            _check(cls, name, data[name], hints[name], allowed)
        elif name in required:
            raise ProtocolError(f"{where or cls.__name__}: missing field {name!r}")
    return cls(**data)


def check_control(msg: Control, ops: dict[str, str | None]) -> Control:
    """Refuse a Control message whose op this daemon does not know or that lacks its field."""
    if msg.op not in ops:
        raise ProtocolError(f"Control.op: unknown op {msg.op!r} here (known: "
                            f"{', '.join(sorted(ops))})")
    need = ops[msg.op]
    if need is not None and getattr(msg, need) is None:
        raise ProtocolError(f"Control {msg.op}: needs {need}")
    return msg
