"""What the console's screens ask of the app: typed messages that bubble up to it.

Screens never call into the app (and never import it): they post one of these, and
:class:`~wgops.console.app.WgopsApp` opens the screen, asks for confirmation or runs the
action.
"""

from __future__ import annotations

from textual.message import Message


class OpenGraph(Message):
    """Show one graph (its detail screen)."""

    def __init__(self, graph_id: int) -> None:
        super().__init__()
        self.graph_id = graph_id


class OpenTask(Message):
    """Show one task of a graph."""

    def __init__(self, graph_id: int, name: str) -> None:
        super().__init__()
        self.graph_id = graph_id
        self.name = name


class GraphAction(Message):
    """Run an operator action on a graph (pause, play, kill, retry, reassign, priority); the
    app asks first where the action needs it. ``owner``: the graph's scheduler, when known."""

    def __init__(self, action: str, graph_id: int, owner: str | None = None) -> None:
        super().__init__()
        self.action = action
        self.graph_id = graph_id
        self.owner = owner


class GraphsAction(Message):
    """Run an operator action (pause, play, kill, retry) on several graphs at once, the
    marked ones; the app asks once, saying how many."""

    def __init__(self, action: str, graph_ids: list[int]) -> None:
        super().__init__()
        self.action = action
        self.graph_ids = graph_ids
