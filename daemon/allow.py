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
import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

from wgops.store.targets import canonical, is_target

logger = logging.getLogger(__name__)
_noted: set[str] = set()

FORBIDDEN_MODULES = ("builtins", "os", "sys", "subprocess", "importlib", "shutil", "pickle",
                     "marshal", "ctypes", "socket", "code", "pty", "runpy")


class NotAllowed(Exception):
    """The target may not run on this worker (message is for the task's error)."""


def renamed(text: str) -> str:
    """``text`` with a moved module renamed (:mod:`wgops.store.targets`); the notice is logged
    once per name."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = canonical(text)
    if caught and text not in _noted:
        _noted.add(text)
        logger.warning("deprecated: %s", caught[0].message)
    return new


def check(target: str, allow: tuple[str, ...], worker: str) -> str:
    """Raise NotAllowed unless ``target`` is well-formed and matches the allow-list; return
    its current name (a moved module renamed)."""
    if not is_target(target):
        raise NotAllowed(f"{target!r} is not a module:function name; not allowed on worker "
                         f"{worker}")
    target = renamed(target)
    module = target.split(":", 1)[0]
    if module.split(".")[0] in FORBIDDEN_MODULES:
        raise NotAllowed(f"{target} is not allowed on worker {worker}")
    if not any(fnmatch.fnmatchcase(target, renamed(pattern)) for pattern in allow):
        raise NotAllowed(f"{target} is not allowed on worker {worker} (WGOPS_ALLOW: "
                         f"{', '.join(allow) or 'empty'})")
    return target


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
