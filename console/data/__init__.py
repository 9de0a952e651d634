"""The console's data sources, free of any UI: plain classes and async functions.

* :mod:`console.data.model`   - the value types the screens display
* :mod:`console.data.store`   - database reads (bounded pages) on one dedicated thread
* :mod:`console.data.events`  - the ``{ns}.events`` subscriber (bounded queue, coalescing)
* :mod:`console.data.status`  - daemons, queues and slots (circus status + passive declares)
* :mod:`console.data.actions` - operator actions through the CLI's control path
* :mod:`console.data.backend` - the one object the app talks to (live, or the scene)
"""
