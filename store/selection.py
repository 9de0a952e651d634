"""Which top-level graphs an operator's bulk selection names: IDs, states, a name pattern
(fnmatch), or all of them; and the states each action applies to."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from wgops.store.errors import NotFound
from wgops.store.models import GRAPH_STATES, Graph

APPLIES_TO = {                     # the states a selection by state/name/all acts on
    "pause": ("queued", "running"),
    "play": ("paused",),
    "kill": ("queued", "running", "paused"),
    "retry": ("failed", "killed"),
    "delete": ("finished", "failed", "killed"),
}


def states_of(state: str | Iterable[str] | None) -> list[str]:
    """``state`` as a list (one name or several), each checked."""
    if state is None:
        return []
    names = [state] if isinstance(state, str) else list(state)
    for name in names:
        if name not in GRAPH_STATES:
            raise ValueError(f"state must be one of {', '.join(GRAPH_STATES)}, not {name!r}")
    return names


def select(ids: Iterable[int] = (), states: Iterable[str] = (), name: str | None = None,
           action: str | None = None) -> list[tuple[int, str]]:
    """``[(id, state)]`` of the top-level graphs selected, oldest first.

    ``ids`` named: exactly those (``NotFound`` for an unknown one), narrowed by ``states``
    and ``name`` when given. No ``ids``: every top-level graph matching ``states`` and
    ``name`` (neither: all), and of those only the ones ``action`` applies to."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    query = Graph.select(Graph.id, Graph.name, Graph.state).order_by(Graph.id)
    if wanted:
        query = query.where(Graph.id.in_(wanted))
    else:
        query = query.where(Graph.parent_task.is_null())
    states = list(states)
    if states:
        query = query.where(Graph.state.in_(states))
    if wanted:
        found = {gid for (gid,) in Graph.select(Graph.id).where(Graph.id.in_(wanted)).tuples()}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(f"no graph {missing[0]}")
    rows: list[Any] = list(query.tuples())
    if name is not None:
        rows = [r for r in rows if fnmatchcase(r[1], name)]
    if not wanted and action in APPLIES_TO:
        rows = [r for r in rows if r[2] in APPLIES_TO[action]]
    if wanted:
        order = {gid: n for n, gid in enumerate(wanted)}
        rows.sort(key=lambda r: order[r[0]])
    return [(r[0], r[2]) for r in rows]
