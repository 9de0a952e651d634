"""The allow-list and the task path: what ``*`` means, and modules that would shadow the
standard library or an installed package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster import Cluster
from wgops.daemon import allow


@pytest.mark.parametrize("target,patterns,allowed", [
    ("timeit:timeit", ("*",), False),                 # a wildcard never reaches the stdlib
    ("json:dumps", ("*",), False),
    ("json:dumps", ("*:dumps",), False),
    ("json:dumps", ("js*:*",), False),
    ("json:dumps", ("json:*",), True),                # named exactly: allowed
    ("json:dumps", ("json:dumps",), True),
    ("timeit:timeit", ("timeit:timeit",), False),     # never, whatever the pattern
    ("os:system", ("os:system",), False),
    ("asyncio.subprocess:create_subprocess_shell", ("asyncio.subprocess:*",), False),
    ("wgops.daemon.worker:abandon", ("*",), False),   # wgops's own code is not a task
    ("wgops.examples.tasks:noop", ("*",), True),
    ("mylab.tasks:run", ("*",), True),
    ("mylab.tasks:run", ("mylab.*:*",), True),
    ("mylab.tasks:run", ("other.*:*",), False),
])
def test_what_a_pattern_allows(target: str, patterns: tuple[str, ...], allowed: bool) -> None:
    if allowed:
        assert allow.check(target, patterns, "w") == target
    else:
        with pytest.raises(allow.NotAllowed):
            allow.check(target, patterns, "w")


def test_a_remembered_verdict_is_per_allow_list() -> None:
    """What a worker remembers of a check is tied to its allow-list: allowed under one is
    not allowed under another, and a refusal is asked again each time."""
    assert allow.check("mylab.tasks:run", ("mylab.*:*",), "w") == "mylab.tasks:run"
    assert allow.check("mylab.tasks:run", ("mylab.*:*",), "w") == "mylab.tasks:run"
    for _ in range(2):
        with pytest.raises(allow.NotAllowed):
            allow.check("mylab.tasks:run", ("other.*:*",), "w")
        with pytest.raises(allow.NotAllowed, match="not a module:function"):
            allow.check("mylab.tasks", ("*",), "w")


def test_shadowing_modules_are_named(tmp_path: Path) -> None:
    for name in ("queue.py", "uuid.py", "peewee.py", "mine.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "hashlib").mkdir()
    (tmp_path / "hashlib" / "__init__.py").write_text("")
    lines = allow.shadowing((str(tmp_path), str(tmp_path / "missing")))
    text = "\n".join(lines)
    assert "queue.py has the name of the standard library's module queue" in text
    assert "uuid.py" in text and "hashlib has the name of the standard library" in text
    assert "peewee.py has the name of an installed package peewee" in text
    assert "mine.py" not in text and "missing: cannot be read" in text


def test_a_shadowing_task_path_never_runs_at_worker_start(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    mark = tmp_path / "imported"
    for name in ("queue", "uuid", "hashlib", "copy", "selectors"):
        (code / f"{name}.py").write_text(f"open({str(mark)!r}, 'a').write({name!r})\n")
    (code / "labtasks.py").write_text("def go():\n    return 'from the task path'\n")
    env = {"WGOPS_TASK_PATH": str(code), "WGOPS_ALLOW": "labtasks:*,tests.tasks:*"}
    cluster.env.update(env)
    cluster.scheduler()
    worker = cluster.worker(slots=2)
    gid = cluster.submit({"name": "path", "tasks": {"a": {"run": "labtasks:go"}}})
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "finished" and shown["tasks"][0]["result"] == "from the task path"
    assert not mark.exists()
    assert "queue.py has the name of the standard library's module queue" in cluster.log(
        worker.pid)
