"""Scratch folders under one root (`$TMPDIR/ltx-retake/`), named after their owner process and swept once it is gone.

A folder the project makes for a while (the embedded service's uploads and results, a test card's
intermediate files) is `scratch_dir(kind)`: `<root>/<kind>.<pid>.<start>.<random>`. A process killed with
SIGKILL cannot remove its own; `sweep()` (run when the CLI or the panel starts) removes every folder
whose owner process is no longer running, and nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

__all__ = ["scratch_root", "scratch_dir", "sweep", "pid_alive", "process_start"]

_NAME = re.compile(r"^(?P<kind>[a-z0-9-]+)\.(?P<pid>\d+)\.(?P<start>\d+)\.[0-9a-f]{8}$")


def scratch_root() -> Path:
    """The one folder every scratch folder lives in (this user's; created private when missing)."""
    base = Path(tempfile.gettempdir())
    root = base / "ltx-retake"
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        if uid is not None and root.stat().st_uid != uid:   # another user's: never share scratch with them
            root = base / f"ltx-retake-{uid}"
            root.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        root = base / f"ltx-retake-{uuid.uuid4().hex[:6]}"
        root.mkdir(mode=0o700, exist_ok=True)
    return root


def process_start(pid: int) -> int:
    """When a process started (Linux clock ticks since boot; 0 where that cannot be read): a pid reused by a
    later process has another start, so a folder is never kept alive by a stranger."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def pid_alive(pid: int | None, start: int = 0) -> bool:
    """Whether process `pid` runs on this machine (a zombie does not count; with `start`, it must be that process)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is gone for our purposes
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if fh.read().rsplit(b") ", 1)[1][:1] == b"Z":
                return False
    except (OSError, IndexError):
        return True
    return not start or not process_start(pid) or process_start(pid) == start


def scratch_dir(kind: str) -> Path:
    """A new, private scratch folder owned by this process (the caller removes it; `sweep` does after a kill)."""
    pid = os.getpid()
    folder = scratch_root() / f"{kind}.{pid}.{process_start(pid)}.{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o700)
    return folder


def sweep(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders whose owner process is gone; returns what was removed. Never raises."""
    removed = []
    try:
        root = root or scratch_root()
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _NAME.match(entry.name)
        if not m or not entry.is_dir() or pid_alive(int(m["pid"]), int(m["start"])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed

