"""The console's data sources, free of any UI: plain classes and async functions.

* :mod:`wgops.console.data.model`   - the value types the screens display
* :mod:`wgops.console.data.store`   - database reads (bounded pages) on one dedicated thread
* :mod:`wgops.console.data.events`  - the ``{ns}.events`` subscriber (bounded queue, coalescing)
* :mod:`wgops.console.data.status`  - daemons, queues and slots (circus status + passive declares)
* :mod:`wgops.console.data.actions` - operator actions through the API client (the CLI's path)
* :mod:`wgops.console.data.backend` - the one object the app talks to (live, or the scene)
"""
