"""The one root exception of wgops and its short subclasses."""


class WgopsError(Exception):
    """Root of every error wgops raises on purpose; its message is one line for a user."""

    exit_code = 2


class ConfigError(WgopsError):
    """A setting is missing, malformed or out of range."""


class DocumentError(WgopsError):
    """A graph document cannot be parsed or is invalid."""


class NotFound(WgopsError):
    """A graph, task, scheduler or pool named by the user does not exist."""


class Conflict(WgopsError):
    """The requested transition is not possible from the current state."""


class Unreachable(WgopsError):
    """The broker or the database cannot be reached."""

    exit_code = 3


class ProtocolError(WgopsError):
    """A broker message is malformed, of an unknown version or too large."""


class SupervisorError(WgopsError):
    """The circus arbiter could not be started, reached or stopped as asked."""
