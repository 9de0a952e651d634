"""References ``${inputs.K}``, ``${T}``, ``${T.K}``: finding them and substituting values."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

REF_RE = re.compile(r"\$\{([^${}]*)\}")


@dataclass(frozen=True)
class Ref:
    head: str                 # "inputs" or a task name
    path: tuple[str, ...]     # keys below it

    def __str__(self) -> str:
        return "${" + ".".join((self.head, *self.path)) + "}"


def parse_ref(text: str) -> Ref:
    parts = text.strip().split(".")
    return Ref(parts[0], tuple(parts[1:]))


def iter_refs(value: Any) -> Iterator[Ref]:
    """Every reference inside ``value`` (strings, lists and mappings, recursively)."""
    if isinstance(value, str):
        for match in REF_RE.finditer(value):
            yield parse_ref(match.group(1))
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_refs(item)


def task_refs(spec: dict[str, Any]) -> Iterator[tuple[str, Ref]]:
    """Every reference a task's document entry makes, with where it is: the argument's name,
    or ``(command)`` for a shell task's command. The one walk over a task's fields, for
    validation, dispatch and lineage alike."""
    for arg, value in (spec.get("args") or {}).items():
        for ref in iter_refs(value):
            yield str(arg), ref
    if isinstance(spec.get("shell"), str):
        for ref in iter_refs(spec["shell"]):
            yield "(command)", ref


def upstream(spec: dict[str, Any]) -> list[str]:
    """The names of the tasks whose results a task uses (sorted, each once)."""
    return sorted({ref.head for _, ref in task_refs(spec) if ref.head != "inputs"})


class MissingValue(LookupError):
    """A reference points at a key its target does not have."""


def lookup(ref: Ref, values: dict[str, Any]) -> Any:
    """The value of ``ref`` in ``values`` (``{"inputs": {...}, task: result, ...}``)."""
    if ref.head not in values:
        raise MissingValue(f"{ref}: no value for {ref.head!r}")
    value = values[ref.head]
    for key in ref.path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isascii() and key.isdigit() and \
                int(key) < len(value):
            value = value[int(key)]
        else:
            raise MissingValue(f"{ref}: {ref.head} has no key {key!r}")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """Replace references in ``value``. An exact ``${X}`` keeps the value's type; inside a
    longer string it becomes text (JSON for what is not a string). Shell commands do not come
    here: their values never become command text (:mod:`wgops.store.shell`)."""
    if isinstance(value, str):
        whole = REF_RE.fullmatch(value)
        if whole:
            return lookup(parse_ref(whole.group(1)), values)
        return REF_RE.sub(lambda m: _as_text(lookup(parse_ref(m.group(1)), values)), value)
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    return value
