"""Reading a graph document: a bounded read, and YAML restricted to what JSON can say.

Whatever the source, reading takes bounded time and memory: a file is read only if it is a
regular file, and never more than ``max_bytes`` of it (a device, a FIFO or a directory is
refused without reading it); YAML aliases are counted as they would expand, so ten levels of
ten-way anchors are refused instead of hanging every later step. The values are JSON's:
mappings with string keys, lists, strings, finite numbers, booleans and null — a YAML date,
set, binary or other tag is refused with its line, and so is a key given twice.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from wgops.store.errors import DocumentError

DEFAULT_MAX_BYTES = 10_000_000
MAX_NODES = 1_000_000           # values a document may hold, aliases expanded


def read_bounded(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of the regular file at ``path``, at most ``max_bytes`` of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError(f"{path}: not a regular file (a graph document is a file)")
        if info.st_size > max_bytes:
            raise DocumentError(f"{path}: {info.st_size} bytes, over the {max_bytes}-byte "
                                "limit (max_document_bytes)")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise DocumentError(f"{path}: over the {max_bytes}-byte limit (max_document_bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DocumentError(f"{path}: not UTF-8 text (line {line})") from None


class _JsonValuesLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with JSON's values only and no key given twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue                    # ``<<: *base`` merges; its keys may be overridden
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _refused(key_node, f"the key {key!r} is not a string")
            if key in seen:
                raise _refused(key_node, f"the key {key!r} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _refuse_tag(what: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        raise _refused(node, f"a YAML {what} is not a JSON value (quote it to make it text)")
    return construct


for _tag, _what in (("timestamp", "date or time"), ("set", "set"), ("binary", "binary value"),
                    ("omap", "ordered map"), ("pairs", "list of pairs")):
    _JsonValuesLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag(_what))
_JsonValuesLoader.add_constructor(None, _refuse_tag("tag"))   # any other (local) tag


class _Refused(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def _refused(node: yaml.Node, message: str) -> _Refused:
    return _Refused(node.start_mark.line + 1, message)


def parse_text(text: str, source: str = "<document>", max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse YAML (JSON is YAML) into JSON's values, with the line of any problem."""
    if len(text) > max_bytes:
        raise DocumentError(f"{source}: over the {max_bytes}-byte limit (max_document_bytes)")
    nul = text.find("\x00")
    if nul >= 0:
        raise DocumentError(f"{source}: a NUL byte at line {text.count(chr(10), 0, nul) + 1}")
    try:
        loader = _JsonValuesLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise DocumentError(f"{source}: line {line}: the character #x{exc.character:04x} is "
                            "not allowed in YAML") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except _Refused as exc:
        raise DocumentError(f"{source}: line {exc.line}: {exc.message}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise DocumentError(f"{source}: line {line}: the character #x{exc.character:04x} is "
                            "not allowed in YAML") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join((exc.problem or exc.context or "syntax error").split())
        raise DocumentError(f"{source}: invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise DocumentError(f"{source}: invalid YAML: nested more than Python can parse") \
            from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand past ``MAX_NODES`` values, or that contains
    itself (counted without expanding: each node's size is computed once)."""
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] > MAX_NODES:
                raise _refused(node, f"aliases expand to more than {MAX_NODES} values")
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise _refused(node, "a YAML alias refers to itself (recursive data)")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def parse_scalar(text: str) -> Any:
    """One value given on the command line (``--set K=V``), read as YAML's JSON values; text
    that is not valid YAML, or that is a mapping or a list not written as one, stays text."""
    try:
        value = parse_text(text, "--set") if text.strip() else ""
    except DocumentError:
        return text
    if isinstance(value, (dict, list)) and not text.lstrip().startswith(("{", "[")):
        return text
    return value
