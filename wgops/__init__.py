"""wgops: run graphs (DAGs) of tasks on daemons connected by RabbitMQ, and operate them.

The installed distribution has one import name, ``wgops``: the public API lives here, and the
three layers of the implementation below it, each in its own folder of the repository:

* :mod:`wgops.store`   - what is kept: settings, the database, graph documents, transitions
* :mod:`wgops.daemon`  - what runs: the broker protocol, scheduler, worker, circus supervision
* :mod:`wgops.console` - what a person touches: the command line and the Textual console
"""

from __future__ import annotations

from typing import Any

from wgops.store.errors import Conflict, NotFound, Unreachable, WgopsError

__all__ = ["Conflict", "NotFound", "Unreachable", "WgopsError", "__version__"]


def __getattr__(name: str) -> Any:
    """``__version__`` is read from the installed distribution on first use (importing
    ``importlib.metadata`` costs a command's start-up 50 ms)."""
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("wgops")
        except metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
            return "0+unknown"
    raise AttributeError(f"module 'wgops' has no attribute {name!r}")
