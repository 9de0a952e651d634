"""The allow-list: which ``module:function`` callables a worker may import and run.

Checked on the target *text* before anything is imported: a target that does not match
``WGOPS_ALLOW`` is never imported or executed. After import, the object must be a plain
function (or ``async def``) defined in that very module, so ``os:system``, builtins and
re-exported attributes are refused even when a broad pattern matches.

What a pattern means: fnmatch over ``module:function``. A pattern whose module part has a
wildcard (``*``, ``mylab.*:*``) never matches a module of the standard library (``*`` would
otherwise allow ``timeit:timeit``, which runs any statement it is given); a standard-library
function runs only when a pattern names its module exactly (``math:*``). Some modules can never
run at all (``os``, ``subprocess``, ``builtins``, ``importlib`` ...).
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from wgops.store.targets import canonical, is_target

logger = logging.getLogger(__name__)
_noted: set[str] = set()

FORBIDDEN_MODULES = ("builtins", "os", "sys", "subprocess", "importlib", "shutil", "pickle",
                     "marshal", "ctypes", "socket", "code", "codeop", "pty", "runpy", "timeit",
                     "pdb", "bdb", "multiprocessing", "asyncio", "threading", "signal", "posix",
                     "gc", "inspect", "types", "webbrowser", "ensurepip", "venv", "zipimport")


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


_ALLOWED: dict[tuple[str, tuple[str, ...]], str] = {}   # (target, allow-list) -> its name
_ALLOWED_MAX = 4096


def check(target: str, allow: tuple[str, ...], worker: str) -> str:
    """Raise NotAllowed unless ``target`` is well-formed and matches the allow-list; return
    its current name (a moved module renamed). A target found allowed is remembered for its
    allow-list (the check is pure; a worker asks it for every task)."""
    name = _ALLOWED.get((target, allow))
    if name is None:
        name = _check(target, allow, worker)
        if len(_ALLOWED) >= _ALLOWED_MAX:
            _ALLOWED.clear()
        _ALLOWED[(target, allow)] = name
    return name


def _check(target: str, allow: tuple[str, ...], worker: str) -> str:
    if not is_target(target):
        raise NotAllowed(f"{target!r} is not a module:function name; not allowed on worker "
                         f"{worker}")
    target = renamed(target)
    module = target.split(":", 1)[0]
    if module.split(".")[0] in FORBIDDEN_MODULES:
        raise NotAllowed(f"{target} is not allowed on worker {worker}")
    if module.split(".")[0] == "wgops" and not module.startswith("wgops.examples"):
        raise NotAllowed(f"{target} is not allowed on worker {worker}")
    stdlib = module.split(".")[0] in sys.stdlib_module_names
    if not any(_matches(target, renamed(pattern), stdlib) for pattern in allow):
        raise NotAllowed(f"{target} is not allowed on worker {worker} (WGOPS_ALLOW: "
                         f"{', '.join(allow) or 'empty'})")
    return target


def _matches(target: str, pattern: str, stdlib: bool) -> bool:
    if stdlib and any(c in pattern.split(":", 1)[0] for c in "*?["):
        return False                # a standard-library module must be named exactly
    return fnmatch.fnmatchcase(target, pattern)


def add_task_path(paths: tuple[str, ...]) -> None:
    """Put the task path at the *end* of the import path: a ``queue.py`` or ``uuid.py`` there
    never shadows the standard library or an installed package (see :func:`shadowing`)."""
    for path in paths:
        if path and path not in sys.path:
            sys.path.append(path)


def shadowing(paths: tuple[str, ...]) -> list[str]:
    """One line per module of the task path that has the name of a standard-library module or
    of an installed package: those names import the real module, never the task path's."""
    out = []
    for path in paths:
        try:
            entries = sorted(os.listdir(path))
        except OSError as exc:
            out.append(f"task path {path}: cannot be read ({exc.strerror or exc})")
            continue
        for entry in entries:
            name = entry[:-3] if entry.endswith(".py") else entry
            if not name.isidentifier() or not (entry.endswith(".py") or os.path.isfile(
                    os.path.join(path, entry, "__init__.py"))):
                continue
            if name in sys.stdlib_module_names:
                what = "the standard library's module"
            elif importlib.util.find_spec(name) is not None and \
                    not _found_in(name, path):
                what = "an installed package"
            else:
                continue
            out.append(f"task path {path}: {entry} has the name of {what} {name}; "
                       f"'{name}' imports that one, never this file (rename it)")
    return out


def _found_in(name: str, path: str) -> bool:
    spec = importlib.util.find_spec(name)
    origin = getattr(spec, "origin", None) or ""
    return os.path.abspath(origin).startswith(os.path.abspath(path) + os.sep)


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
