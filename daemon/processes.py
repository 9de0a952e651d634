"""Processes by PID (psutil): a process and everything below it, whether it still runs, a
signal that reaches only the process it was meant for (psutil checks the PID was not
reused)."""

from __future__ import annotations

import psutil


def tree(proc: psutil.Process) -> set[psutil.Process]:
    """``proc`` and every process below it."""
    try:
        return {proc, *proc.children(recursive=True)}
    except psutil.Error:
        return {proc}


def alive(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs (a zombie does not)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def send_signal(proc: psutil.Process, sig: int) -> None:
    """Signal ``proc`` if it is still the process it was (never a reused PID)."""
    try:
        proc.send_signal(sig)   # psutil checks the pid still names the same process
    except psutil.Error:
        pass
