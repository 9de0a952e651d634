"""wgops: run graphs (DAGs) of tasks on daemons connected by RabbitMQ, and operate them.

The public API (DESIGN §10, docs/python-api.md)::

    import wgops

    g = wgops.Graph("hello", inputs={"x": 1})
    a = g.task("a", "mylab.tasks:double", {"x": g.inputs["x"]})
    g.outputs(result=a)
    with wgops.Client() as client:
        graph_id = client.submit(g)["id"]
        print(client.wait(graph_id, timeout=60)["outputs"])

* :class:`Graph` builds a graph document in Python (:mod:`wgops.graph`);
* :data:`ITEM` and :data:`INDEX` are a mapped task's element and its position
  (``g.task("sq", square, {"x": wgops.ITEM}, map=parts["xs"])``);
* :class:`Client` and :class:`AsyncClient` submit graphs and operate them
  (:mod:`wgops.client`, :mod:`wgops.aclient`);
* every error raised on purpose is a :class:`WgopsError`: :class:`InvalidDocument` (also a
  ``ValueError``), :class:`Unreachable`, :class:`NotFound`, :class:`Conflict`,
  :class:`ConfigError`, :class:`WaitTimeout` (also a ``TimeoutError``).

The installed distribution has one import name, ``wgops``; the three layers of the
implementation live below it, each in its own folder of the repository:

* :mod:`wgops.store`   - what is kept: settings, the database, graph documents, transitions
* :mod:`wgops.daemon`  - what runs: the broker protocol, scheduler, worker, circus supervision
* :mod:`wgops.console` - what a person touches: the command line and the Textual console

Importing ``wgops`` loads only the errors: the builder and the clients are loaded on first
use, so the store and the daemons can import ``wgops.store`` without the broker's client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from wgops.store.errors import (
    ConfigError,
    Conflict,
    InvalidDocument,
    NotFound,
    Unreachable,
    WaitTimeout,
    WgopsError,
)

if TYPE_CHECKING:
    from wgops.aclient import AsyncClient
    from wgops.client import Client
    from wgops.graph import Graph
    from wgops.references import INDEX, ITEM

_LAZY = {"Graph": "wgops.graph", "Client": "wgops.client", "AsyncClient": "wgops.aclient",
         "ITEM": "wgops.references", "INDEX": "wgops.references"}

__all__ = ["INDEX", "ITEM", "AsyncClient", "Client", "ConfigError", "Conflict", "Graph",
           "InvalidDocument", "NotFound", "Unreachable", "WaitTimeout", "WgopsError",
           "__version__"]


def __getattr__(name: str) -> Any:
    """``Graph``, ``Client`` and ``AsyncClient`` are imported on first use, and
    ``__version__`` is read from the installed distribution on first use (importing
    ``importlib.metadata`` costs a command's start-up 50 ms)."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("wgops")
        except metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
            return "0+unknown"
    raise AttributeError(f"module 'wgops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
