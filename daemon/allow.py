"""The allow-list: which ``module:function`` callables a worker may import and run.

Checked on the target *text* before anything is imported: a target that does not match
``WGOPS_ALLOW`` is never imported or executed. After import, the object must be a plain
function (or ``async def``) defined in that very module, so ``os:system``, builtins and
re-exported attributes are refused even when a broad pattern matches.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
import sys
from collections.abc import Callable
from typing import Any

TARGET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*$")
FORBIDDEN_MODULES = ("builtins", "os", "sys", "subprocess", "importlib", "shutil", "pickle",
                     "marshal", "ctypes", "socket", "code", "pty", "runpy")


class NotAllowed(Exception):
    """The target may not run on this worker (message is for the task's error)."""


def check(target: str, allow: tuple[str, ...], worker: str) -> None:
    """Raise NotAllowed unless ``target`` is well-formed and matches the allow-list."""
    if not isinstance(target, str) or not TARGET_RE.match(target):
        raise NotAllowed(f"{target!r} is not a module:function name; not allowed on worker "
                         f"{worker}")
    module = target.split(":", 1)[0]
    if module.split(".")[0] in FORBIDDEN_MODULES:
        raise NotAllowed(f"{target} is not allowed on worker {worker}")
    if not any(fnmatch.fnmatchcase(target, pattern) for pattern in allow):
        raise NotAllowed(f"{target} is not allowed on worker {worker} (WGOPS_ALLOW: "
                         f"{', '.join(allow) or 'empty'})")


def add_task_path(paths: tuple[str, ...]) -> None:
    for path in reversed(paths):
        if path and path not in sys.path:
            sys.path.insert(0, path)


def resolve(target: str) -> Callable[..., Any]:
    """Import an already-checked target and return the function."""
    module_name, func_name = target.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotAllowed(f"cannot import {module_name}: {exc}") from None
    func = module.__dict__.get(func_name)
    if func is None:
        raise NotAllowed(f"{module_name} has no function {func_name!r}")
    if not inspect.isfunction(func) or func.__module__ != module.__name__:
        raise NotAllowed(f"{target} is not a function defined in {module_name}")
    return func
