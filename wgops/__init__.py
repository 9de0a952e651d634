"""wgops: run graphs (DAGs) of tasks on daemons connected by RabbitMQ, and operate them.

The installed distribution has one import name, ``wgops``: the public API lives here, and the
three layers of the implementation below it, each in its own folder of the repository:

* :mod:`wgops.store`   - what is kept: settings, the database, graph documents, transitions
* :mod:`wgops.daemon`  - what runs: the broker protocol, scheduler, worker, circus supervision
* :mod:`wgops.console` - what a person touches: the command line and the Textual console
"""

from __future__ import annotations

from importlib import metadata

from wgops.store.errors import Conflict, NotFound, Unreachable, WgopsError

try:
    __version__ = metadata.version("wgops")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

__all__ = ["Conflict", "NotFound", "Unreachable", "WgopsError", "__version__"]
