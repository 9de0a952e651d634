"""What is kept: settings, the database, graph documents and every state transition.

``wgops.store`` imports neither ``wgops.daemon`` nor ``wgops.console``.

* settings and errors: :mod:`.config`, :mod:`.errors`
* the database: :mod:`.db` (by URL, capability flags, the daemons' group-commit thread),
  :mod:`.models` (the tables), :mod:`.migrations` (numbered, plain scripts)
* graph documents: :mod:`.document` (parse, validate, normalise), :mod:`.refs` (``${...}``),
  :mod:`.targets` (``module:function`` names)
* graphs as rows: :mod:`.graphs` (create, list, show, why a task waits)
* transitions, each a compare-and-set: :mod:`.loading` (what a scheduler reads and claims),
  :mod:`.scheduling` (its fenced writes), :mod:`.execution` (a worker's writes),
  :mod:`.liveness` (the one rule for "is this daemon alive?", heartbeats, adoption),
  :mod:`.control` (operator actions), :mod:`.selection` (which graphs a bulk action names),
  :mod:`.deletion` (delete and prune in batches), :mod:`.leases`, :mod:`.eventlog`,
  :mod:`.deadletters`,
  :mod:`.doctor` (consistency checks)
"""
