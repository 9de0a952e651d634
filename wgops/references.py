"""References as objects: the ``${...}`` of a graph document, built in Python.

``g.inputs["n"]`` is ``${inputs.n}``; the handle a task returns is ``${a}`` (its whole
result); ``a["key"]`` is ``${a.key}`` and ``a["xs"][0]`` is ``${a.xs.0}``. ``str()`` and
f-strings give the ``${...}`` text (the value as text when it runs; in a shell command the
value of an environment variable, never command text); a reference used as a whole argument
value becomes exactly ``"${...}"``, which the scheduler replaces by the value itself, its type
preserved. A mapped task's element and its position are :data:`ITEM` (``${item}``) and
:data:`INDEX` (``${index}``), references of the same kind.
"""

from __future__ import annotations

from typing import NoReturn, Protocol

from wgops.store.document import NAME_RE, SEGMENT_RE
from wgops.store.errors import InvalidDocument


class Graph(Protocol):
    """What a reference knows of the graph it belongs to (a :class:`wgops.Graph`)."""

    name: str


class Reference:
    """A value known only when the graph runs: ``${head.key...}``."""

    __slots__ = ("head", "path", "graph")

    def __init__(self, head: str, path: tuple[str, ...] = (), graph: Graph | None = None):
        self.head = head
        self.path = path
        self.graph = graph          # the graph whose task or input it names (None: any)

    def __getitem__(self, key: str | int) -> Reference:
        """A key of the value (a mapping's key, or a list's index)."""
        if isinstance(key, int) and not isinstance(key, bool):
            if key < 0:
                raise InvalidDocument(f"{self}[{key}]: a list index in a reference counts "
                                      "from 0 (no negative indices)")
            part = str(key)
        elif isinstance(key, str):
            if not SEGMENT_RE.fullmatch(key):
                raise InvalidDocument(f"{self}[{key!r}]: a key in a reference is ASCII "
                                      "letters, digits, '_' and '-'")
            part = key
        else:
            raise TypeError(f"{self}: a reference's key is a string or an index, not "
                            f"{type(key).__name__}")
        return Reference(self.head, (*self.path, part), self.graph)

    def __iter__(self) -> NoReturn:
        raise TypeError(f"{self} is known only when the graph runs: it cannot be iterated "
                        "here (index it: ref[0], ref['key'])")

    def __str__(self) -> str:
        return "${" + ".".join((self.head, *self.path)) + "}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"<reference {self}>"


class TaskHandle(Reference):
    """What ``Graph.task``, ``shell`` and ``graph`` return: ``${name}``, the task's whole
    result; index it for a key of the result. Pass it in ``after=`` for ordering alone."""

    __slots__ = ()

    def __init__(self, name: str, graph: Graph):
        super().__init__(name, (), graph)

    @property
    def name(self) -> str:
        return self.head


class Inputs:
    """``g.inputs[NAME]``: the reference ``${inputs.NAME}`` to one of the graph's inputs
    (declared with ``Graph(..., inputs={NAME: default})``, or passed by a parent graph)."""

    __slots__ = ("_graph",)

    def __init__(self, graph: Graph):
        self._graph = graph

    def __getitem__(self, name: str) -> Reference:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InvalidDocument(f"bad input name {name!r}")
        return Reference("inputs", (name,), self._graph)

    def __iter__(self) -> NoReturn:
        raise TypeError("g.inputs is not iterable; index it (g.inputs['NAME'])")

    def __repr__(self) -> str:
        return f"<inputs of graph {self._graph.name!r}>"


#: a mapped task's element (``${item}``): ``g.task("sq", f, {"x": ITEM}, map=parts["xs"])``
ITEM = Reference("item")
#: a mapped task's element's position (``${index}``), from 0
INDEX = Reference("index")
