"""One copy of each equal string a scheduler holds: the texts of its tasks' rows.

Every row the database returns brings its own copies of the task's name, kind, pool, state
and document entry (``spec``), and most of them are equal from task to task and from graph to
graph (a document submitted many times, the ten tasks of a fan-out). An :class:`Interner`
hands back the copy it already holds, so a scheduler keeps one string where it would keep
thousands.

Unlike :func:`sys.intern` (whose strings may live for good, depending on the Python version)
it forgets what nobody holds any more: when it has doubled since it last looked, it drops the
strings only it refers to. Pure, CPython's reference counts are what it looks at.
"""

from __future__ import annotations

import sys

MIN_SWEEP = 1024          # entries before the first look for strings nobody holds


def _counts(table: dict[str, str]) -> list[tuple[str, int]]:
    """Each key with its reference count (as seen from here: calibrated in the constructor)."""
    return [(key, sys.getrefcount(key)) for key in list(table)]


class Interner:
    """``interner(text)`` returns a string equal to ``text``: the one it already holds if any."""

    __slots__ = ("_table", "_limit", "_unused")

    def __init__(self) -> None:
        self._table: dict[str, str] = {}
        self._limit = MIN_SWEEP
        probe: dict[str, str] = {}
        text = "".join(["wgops-", "probe"])       # a string nobody else holds
        probe[text] = text
        del text
        self._unused = _counts(probe)[0][1]      # the count of an entry held only here

    def __call__(self, text: str) -> str:
        held = self._table.get(text)
        if held is not None:
            return held
        if len(self._table) >= self._limit:
            self.sweep()
        self._table[text] = text
        return text

    def sweep(self) -> int:
        """Forget the strings nobody but this table holds; how many it forgot."""
        unused = [key for key, count in _counts(self._table) if count <= self._unused]
        for key in unused:
            del self._table[key]
        self._limit = max(MIN_SWEEP, 2 * len(self._table))
        return len(unused)

    def __len__(self) -> int:
        return len(self._table)
