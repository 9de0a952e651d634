"""Shell values never execute: every quoting context, real shells, generated hostile values."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgops.store.refs import MissingValue
from wgops.store.shell import MAX_VALUE_BYTES, ShellSyntaxError, compile_command

SHELLS = [sh for sh in ("/bin/sh", "/bin/dash", shutil.which("bash")) if sh and Path(sh).exists()]
HOSTILE = ["$(touch {m})", "`touch {m}`", "'; touch {m}; '", '"; touch {m}; "', "a\ntouch {m}",
           "${{HOME}}$(touch {m})", "\\$(touch {m})", "*", "-n", "a  b\tc", "EOF\ntouch {m}\nEOF",
           "'\"`$\\", ""]

# (command with a reference to x, what the shell prints for the value v)
CONTEXTS = [
    ("printf %s ${x}", lambda v: v),
    ('printf %s "v=${x}"', lambda v: "v=" + v),
    ("printf %s 'v=${x}'", lambda v: "v=" + v),
    ("printf %s v=${x}=w", lambda v: "v=" + v + "=w"),
    ('printf %s "$(printf %s ${x})"', lambda v: v.rstrip("\n")),
    ('printf %s "$(printf %s "${x}")"', lambda v: v.rstrip("\n")),
    ('printf %s "`printf %s ${x}`"', lambda v: v.rstrip("\n")),
    ("cat <<EOF\nv=${x}\nEOF", lambda v: f"v={v}\n"),
    ("cat <<-EOF\n\tv=${x}\n\tEOF", lambda v: f"v={v}\n"),
    ("# a comment with ${x} and it's fine\nprintf %s done", lambda v: "done"),
    ("X=${x}; printf %s \"$X\"", lambda v: v),
    ("case ${x} in *) printf %s \"${x}\";; esac", lambda v: v),
]


def run(shell: str, command: str, value: str, tmp: Path) -> tuple[str, int]:
    compiled = compile_command(command)
    env = {"PATH": "/usr/bin:/bin", **compiled.environment({"x": value})}
    proc = subprocess.run([shell, "-c", compiled.template], env=env, capture_output=True,
                          timeout=10, cwd=tmp)                # bytes: no newline translation
    return proc.stdout.decode(), proc.returncode


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("command,expected", CONTEXTS, ids=[c for c, _ in CONTEXTS])
def test_hostile_values_are_text_in_every_context(shell: str, command: str, expected,
                                                  tmp_path: Path) -> None:
    marker = tmp_path / "m"
    for template in HOSTILE:
        value = template.format(m=marker)
        out, code = run(shell, command, value, tmp_path)
        assert not marker.exists(), (command, value)
        assert code == 0 and out == expected(value), (command, value, out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(value=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                     max_size=40),
       context=st.sampled_from(CONTEXTS))
def test_generated_values_never_execute(value: str, context, tmp_path: Path) -> None:
    command, expected = context
    marker = tmp_path / "m"
    hostile = f"{value}$(touch {marker})`touch {marker}`"
    out, code = run(SHELLS[0], command, hostile, tmp_path)
    assert not marker.exists()
    assert code == 0 and out == expected(hostile)


@pytest.mark.parametrize("command,why", [
    ("echo $(( ${x} + 1 ))", "arithmetic"),
    ("cat <<'EOF'\n${x}\nEOF", "quoted here-document"),
    ('cat <<"EOF"\n${x}\nEOF', "quoted here-document"),
    ('echo "${x}', "unterminated double quote"),
    ("echo '${x}", "unterminated single quote"),
    ("echo `${x}", "unterminated backquote"),
])
def test_unsafe_places_are_refused(command: str, why: str) -> None:
    with pytest.raises(ShellSyntaxError, match=why):
        compile_command(command)


def test_one_variable_per_reference_and_missing_or_unfit_values() -> None:
    compiled = compile_command('echo ${a} "${a}" ${b.k}')
    assert compiled.template == 'echo "${WGOPS_V1}" "${WGOPS_V1}" "${WGOPS_V2}"'
    assert compiled.variables == {"WGOPS_V1": "a", "WGOPS_V2": "b.k"}
    assert compiled.environment({"a": 1, "b": {"k": [1, "x"]}}) == {
        "WGOPS_V1": "1", "WGOPS_V2": '[1, "x"]'}
    with pytest.raises(MissingValue):
        compiled.environment({"a": 1, "b": {}})
    with pytest.raises(ValueError, match="NUL"):
        compiled.environment({"a": "x\x00y", "b": {"k": 1}})
    with pytest.raises(ValueError, match="up to"):
        compiled.environment({"a": "x" * (MAX_VALUE_BYTES + 1), "b": {"k": 1}})
