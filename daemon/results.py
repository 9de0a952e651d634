"""A task's outcome as the worker reports it: its result as JSON text, or its failure.

One encoder for every executor (a python task in a slot process or on the worker's loop, a
shell task): the result must be JSON (DESIGN §4) and at most ``max_result_bytes``, or the task
fails with a clear error.
"""

from __future__ import annotations

import json
from typing import Any

HIDDEN_FROM_TASKS = ("WGOPS_MESSAGE_KEY",)     # environment a task never sees


class TaskFailed(Exception):
    """An attempt failed: ``kind`` (the error's type), a one-line ``message``, maybe a
    traceback."""

    def __init__(self, kind: str, message: str, tb: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.tb = tb


def encode_result(value: Any, what: str, max_bytes: int) -> str:
    """The JSON text of ``value``, the result of ``what`` (a target, or "the command")."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TaskFailed("TypeError", f"result of {what} is not JSON-serialisable: {exc}") \
            from None
    if len(text) > max_bytes:
        raise TaskFailed("ResultTooLarge", f"result of {what} is {len(text)} bytes, over the "
                         f"{max_bytes}-byte limit")
    return text
