"""Property tests: whatever the document, ``normalise`` returns or raises DocumentError.

Random data (nested dicts, lists, strings, numbers) and random mutations of valid documents;
never any other exception (no TypeError, KeyError, RecursionError...).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgops.store.document import normalise, parse_overrides, parse_text
from wgops.store.errors import DocumentError

FAST = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NAMES = st.sampled_from(["a", "b", "c", "inputs", "x-1", "_y", "1z", "", "a b", "name",
                         "tasks", "run", "shell", "graph", "args", "after"])
REFS = st.builds(lambda head, path: "${" + ".".join([head, *path]) + "}", NAMES,
                 st.lists(st.sampled_from(["k", "0", "", "inputs", "a"]), max_size=3))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 20),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    NAMES, REFS,
                    st.sampled_from(["wgops.examples.tasks:noop", "m:f", "a.b:c", ":"]))
KEYS = st.one_of(NAMES, st.sampled_from(["name", "priority", "inputs", "tasks", "outputs",
                                         "run", "shell", "graph", "args", "after", "retries",
                                         "retry_delay", "timeout", "pool", "description"]),
                 st.integers(0, 3), st.none(), st.booleans())
DATA = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)), max_leaves=25)


def _check(document: Any, base: Path | None = None) -> None:
    try:
        result = normalise(document, "fuzz.yaml", base)
    except DocumentError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    json.dumps(result, default=str)
    assert set(result) == {"name", "priority", "inputs", "tasks", "outputs", "source"}


@FAST
@given(DATA)
def test_random_data(document: Any) -> None:
    _check(document)


@FAST
@given(st.dictionaries(KEYS, DATA, max_size=5), st.dictionaries(KEYS, DATA, max_size=4))
def test_random_graph_shaped(top: dict[Any, Any], tasks: dict[Any, Any]) -> None:
    _check({"name": "g", **top, "tasks": tasks})


TASK = st.fixed_dictionaries(
    {"run": st.just("wgops.examples.tasks:noop")},
    optional={"args": st.dictionaries(st.sampled_from(["x", "y"]), st.one_of(REFS, SCALARS),
                                      max_size=2),
              "after": st.lists(NAMES, max_size=3), "retries": SCALARS, "timeout": SCALARS,
              "pool": SCALARS})


@FAST
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), TASK, min_size=1, max_size=4))
def test_random_wiring(tasks: dict[str, Any]) -> None:
    """Random references and orderings: cycles, unknown names, self-dependencies."""
    _check({"name": "g", "inputs": {"k": 1}, "tasks": tasks})


VALID = {
    "name": "bands", "priority": 3, "inputs": {"structure": "Si"},
    "tasks": {
        "relax": {"run": "wgops.examples.tasks:relax", "args": {"structure": "${inputs.structure}"},
                  "retries": 2},
        "scf": {"run": "wgops.examples.tasks:scf", "args": {"structure": "${relax.structure}"}},
        "report": {"shell": "echo ${scf.energy}"},
        "bands": {"graph": {"name": "sub", "tasks": {
            "b": {"run": "wgops.examples.tasks:bands", "args": {"density": "${inputs.density}"}}}},
            "args": {"density": "${scf.density}"}, "after": ["report"]},
    },
    "outputs": {"bands": "${bands.bands}"},
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, prefix + (i,)))
    return out


MUTATION_PATHS = _paths(VALID)[1:]


@FAST
@given(st.sampled_from(MUTATION_PATHS), st.sampled_from(["replace", "delete", "add"]), DATA, KEYS)
def test_mutated_valid_document(path: tuple[Any, ...], how: str, value: Any, key: Any) -> None:
    document = copy.deepcopy(VALID)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    else:
        parent[last] = [parent[last], value]
    _check(document)


def test_the_unmutated_document_is_valid() -> None:
    assert normalise(copy.deepcopy(VALID), "v")["tasks"]["bands"]["deps"] == ["report", "scf"]


@FAST
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    try:
        data = parse_text(text, "fuzz.yaml")
    except DocumentError:
        return
    _check(data)


@FAST
@given(st.lists(st.text(max_size=20), max_size=4))
def test_random_overrides(pairs: list[str]) -> None:
    try:
        parse_overrides(pairs)
    except DocumentError:
        pass


@FAST
@given(st.sampled_from(["a.yaml", "../a.yaml", "/", "", ".", "sub", "\x00", "a" * 300]))
def test_nested_graph_paths(spec: str) -> None:
    _check({"name": "g", "tasks": {"t": {"graph": spec}}}, base=Path("/nonexistent-dir"))
