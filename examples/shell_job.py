"""The Python twin of ``shell_job.yaml``: shell tasks whose commands take other tasks' results
through f-strings (each value reaches the shell as an environment variable, never as command
text; workers run shell tasks only with WGOPS_SHELL=on)."""

from __future__ import annotations

import wgops
from wgops.examples import tasks


def graph() -> wgops.Graph:
    g = wgops.Graph("shell_job", inputs={"greeting": "hello, world", "count": 3})
    hello = g.shell("hello", f"printf '%s' {g.inputs['greeting']}")
    shout = g.shell("shout", f"printf '%s' {hello['stdout']} | tr a-z A-Z")
    repeat = g.shell("repeat", f"for i in $(seq {g.inputs['count']}); do echo \"$i: \""
                               f"{shout['stdout']}; done")
    count = g.task("count", tasks.word_count, {"text": repeat["stdout"]})
    g.shell("env", "echo running in $PWD as $(id -un)", after=[count])
    return g.outputs(text=repeat["stdout"], words=count["words"])
