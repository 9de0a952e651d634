"""Reading the daemons' log files: the last line, the last N lines, following as they grow.

Only the end of a file is read, however large; rotation and truncation are followed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def last_line(path: Path, limit: int = 200) -> str:
    """The last non-empty line of a log file, shortened; '' when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    text = lines[-1] if lines else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a log file (reading only its end)."""
    if count <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = 8192
            data = b""
            while size > 0 and data.count(b"\n") <= count:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
                block *= 2
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-count:]


def follow_files(paths: dict[str, Path], interval: float = 0.25,
                 stop: Callable[[], bool] = lambda: False) -> Iterator[tuple[str, str]]:
    """Yield (name, line) as lines are appended to the files; follows rotation."""
    offsets: dict[str, tuple[int, int]] = {}
    for name, path in paths.items():
        try:
            st = path.stat()
            offsets[name] = (st.st_ino, st.st_size)
        except OSError:
            offsets[name] = (0, 0)
    partial: dict[str, bytes] = {name: b"" for name in paths}
    while not stop():
        for name, path in paths.items():
            try:
                st = path.stat()
            except OSError:
                continue
            inode, offset = offsets[name]
            if st.st_ino != inode or st.st_size < offset:
                offset = 0          # rotated or truncated: read the new file from its start
            if st.st_size == offset:
                offsets[name] = (st.st_ino, offset)
                continue
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = partial[name] + fh.read()
                offsets[name] = (st.st_ino, fh.tell())
            *complete, partial[name] = data.split(b"\n")
            for line in complete:
                yield name, line.decode("utf-8", "replace")
        time.sleep(interval)
