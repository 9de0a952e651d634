"""Task targets: the ``module:function`` names that ``run`` (and ``build``) tasks call.

One pattern for what a target may look like, shared by document validation and the worker's
allow-list, and the renames of modules that moved (the examples became ``wgops.examples``):
an old name still resolves, with a deprecation notice, so stored and written documents keep
working.
"""

from __future__ import annotations

import re
import warnings

# a public function (no leading underscore, so no dunder) of an absolute module path, in ASCII
TARGET_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*\Z", re.ASCII)
MOVED = {"examples.": "wgops.examples."}     # old module prefix -> new


class MovedTargetWarning(DeprecationWarning):
    """A target (or allow-list pattern) names a module by its old name."""


def canonical(text: str, warn: bool = True) -> str:
    """``text`` (a target or an fnmatch pattern of targets) with a moved module renamed."""
    for old, new in MOVED.items():
        if text.startswith(old):
            renamed = new + text[len(old):]
            if warn:
                warnings.warn(MovedTargetWarning(
                    f"{text} names the module by its old name; use {renamed}"), stacklevel=2)
            return renamed
    return text


def is_target(text: object) -> bool:
    return isinstance(text, str) and TARGET_RE.match(text) is not None
