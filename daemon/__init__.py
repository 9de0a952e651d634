"""What runs: the broker protocol, the scheduler, the worker, operator control, supervision.

``wgops.daemon`` imports ``wgops.store``, never ``wgops.console``, textual or click.

* the broker: :mod:`.protocol` (queue names, one dataclass per message), :mod:`.broker`
  (aio-pika, confirmed publishes, events), :mod:`.transport` (corked socket writes),
  :mod:`.eventloop` (uvloop; running a coroutine from synchronous code)
* the scheduler: :mod:`.scheduler` (messages and graph life), :mod:`.graphrun` (dependency
  logic, pure), :mod:`.dispatch` (which ready task goes next, pure), :mod:`.watchdog` (its
  periodic liveness checks), :mod:`.retention` (pruning graphs past ``retention``)
* the worker: :mod:`.worker`, :mod:`.executors` (python, async, shell), :mod:`.slots` (slot
  processes), :mod:`.results` (a task's outcome), :mod:`.allow` (the allow-list),
  :mod:`.notify` (completions to schedulers)
* one daemon in the foreground: :mod:`.runner`
* operating (under the API client, :mod:`wgops.aclient`): :mod:`.control` (actions with
  their wake-ups), :mod:`.submit` (store, launch, follow), :mod:`.doctor`
* supervision: :mod:`.circus_config` (the generated configuration, pure),
  :mod:`.supervisor` (the circus client), :mod:`.orphans` (daemons outside any
  arbiter), :mod:`.flapping` (the crash-loop plugin),
  :mod:`.managed_broker`, :mod:`.status`, :mod:`.probes`, :mod:`.logfiles`,
  :mod:`.processes`
"""
