"""Hostile graph documents: each is refused at validation with one clear line, quickly, and
without reading or building more than the bounds allow (DESIGN §13, invariant 10)."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest

from tests.conftest import wgops


def alias_bomb(levels: int) -> str:
    names = string.ascii_lowercase
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(['"xxxxxxxx"'] * 10) + "]"]
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 10) + "]")
    return ("\n".join(lines) + f"\nname: bomb\ntasks:\n  t: {{run: 'tests.tasks:noop', "
            f"args: {{v: *{names[levels - 1]}}}}}\n")


def refused(env: dict[str, str], path: Path | str, *args: str) -> str:
    proc = wgops("graph", "validate", str(path), *args, env=env, timeout=30)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgops: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def env(wgops_env: dict[str, str]) -> dict[str, str]:
    return wgops_env


def test_the_639_byte_alias_bomb_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(10))
    assert bomb.stat().st_size < 1000
    assert "aliases expand to more than" in refused(env, bomb)
    seven = tmp_path / "seven.yaml"            # 10**7 values: still over the bound
    seven.write_text(alias_bomb(7))
    assert "aliases expand to more than" in refused(env, seven)


def test_devices_fifos_directories_and_nested_devices_are_not_read(env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    assert "not a regular file" in refused(env, "/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)                            # nobody writes: opening it must not block
    assert "not a regular file" in refused(env, fifo)
    assert "is a directory" in refused(env, tmp_path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("name: n\ntasks:\n  g: {graph: ../../../../../../../../dev/zero}\n")
    assert "not a regular file" in refused(env, nested)


def test_a_document_over_max_document_bytes_is_refused(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: big\ntasks:\n  t: {run: 'tests.tasks:noop'}\n# " + "x" * 5000 + "\n")
    small = {**env, "WGOPS_MAX_DOCUMENT_BYTES": "2000"}
    assert "over the 2000-byte limit (max_document_bytes)" in refused(small, big)
    # the bound covers nested files each time they are used
    (tmp_path / "part.yaml").write_text(big.read_text().replace("# ", "#"))
    uses = tmp_path / "uses.yaml"
    uses.write_text("name: u\ntasks:\n" + "".join(
        f"  p{i}: {{graph: part.yaml}}\n" for i in range(20)))
    assert "max_document_bytes" in refused({**env, "WGOPS_MAX_DOCUMENT_BYTES": "60000"}, uses)


@pytest.mark.parametrize("text,expected", [
    ("name: g\ninputs: {a: [1]}\ntasks:\n"
     "  t: {run: 'tests.tasks:noop', args: {v: '${inputs.a.²}'}}\n",
     "malformed reference ${inputs.a.²}"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', timeout: .inf}\n",
     "tasks.t.timeout is not finite"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', retry_delay: .inf}\n",
     "tasks.t.retry_delay is not finite"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', timeout: 1e12}\n",
     "timeout must be a number of seconds more than 0 to 31536000"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', retries: 100000000000000000000000}\n",
     "tasks.t.retries is out of range"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', args: {v: .nan}}\n",
     "tasks.t.args.v is not finite"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop'}\n  t: {run: 'tests.tasks:noop'}\n",
     "line 4: the key 't' is given twice"),
    ('{"name": "g", "name": "h", "tasks": {"t": {"run": "tests.tasks:noop"}}}',
     "the key 'name' is given twice"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', args: {d: 2024-01-01}}\n",
     "line 3: a YAML date or time is not a JSON value"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', args: {s: !!set {a, b}}}\n",
     "line 3: a YAML set is not a JSON value"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop', args: {b: !!binary aGk=}}\n",
     "line 3: a YAML binary value is not a JSON value"),
    ('{"name": "g", "tasks": {"t": {"run": "tests.tasks:noop\\n"}}}',
     "run must be 'module:function'"),
    ('{"name": "\\u001b[31mred", "tasks": {"t": {"run": "tests.tasks:noop"}}}',
     "'name' must be at most 200 printable characters"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop'}\n\x00\n", "a NUL byte at line 4"),
    ("name: g\ntasks:\n  s: {shell: 'echo $(( ${inputs.n} + 1 ))'}\ninputs: {n: 1}\n",
     "would be evaluated as arithmetic"),
    ("name: g\ntasks:\n  t: {run: 'tests.tasks:noop'}\noutputs: {o: '${t.x y}'}\n",
     "malformed reference ${t.x y}"),
])
def test_refused_with_its_reason(env: dict[str, str], tmp_path: Path, text: str,
                                 expected: str) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_bytes(text.encode())
    assert expected in refused(env, doc)
