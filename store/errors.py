"""The one root exception of wgops and its short subclasses."""


class WgopsError(Exception):
    """Root of every error wgops raises on purpose; its message is one line for a user."""

    exit_code = 2


class ConfigError(WgopsError):
    """A setting is missing, malformed or out of range."""


class InvalidDocument(WgopsError, ValueError):
    """A graph document cannot be parsed or is invalid (nothing was stored); also a
    ``ValueError``. The message is the one ``wgops graph validate`` prints."""


DocumentError = InvalidDocument     # its former name (older code and tests use it)


class NotFound(WgopsError):
    """A graph, task, scheduler or pool named by the user does not exist."""


class Conflict(WgopsError):
    """The requested transition is not possible from the current state."""


class Unreachable(WgopsError):
    """The broker or the database cannot be reached (the message masks passwords)."""

    exit_code = 3


class WaitTimeout(WgopsError, TimeoutError):
    """A wait for a graph ended before the graph did; also a ``TimeoutError``."""

    exit_code = 1

    def __init__(self, message: str, graph_id: int, state: str):
        super().__init__(message)
        self.graph_id = graph_id
        self.state = state


class ProtocolError(WgopsError):
    """A broker message is malformed, of an unknown version or too large."""


class SupervisorError(WgopsError):
    """The circus arbiter could not be started, reached or stopped as asked."""
