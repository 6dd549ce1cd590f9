"""Atomic writes: a temp file beside the target, written whole, synced and checked, renamed over it, folder synced.

Either the target holds the complete new bytes or it holds what it held before: a full disk, a short write,
a kill or a verify that fails leave the old file (or no file) and remove the temp file. Every timeline and
settings file the project writes goes through `write_atomic`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

from .errors import InputError

__all__ = ["write_atomic", "check_writable", "temp_beside", "sync_folder", "WriteFailed"]


class WriteFailed(InputError):
    """The file could not be written whole; nothing was replaced."""


def temp_beside(path: Path) -> Path:
    """A hidden temp name in the target's folder (same file system, so the rename is atomic), swept by name later."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")


def sync_folder(folder: Path) -> None:
    """Make a rename in `folder` survive a power cut (POSIX; Windows cannot open a folder, and needs no sync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(28, "No space left on device")
        view = view[written:]


def write_atomic(path: Path, data: bytes | Callable[[Path], None], *, verify: Callable[[Path], None] | None = None,
                 what: str = "") -> Path:
    """Write `data` (bytes, or a function that writes the file it is given) to `path` atomically and durably.

    `verify(temp)` runs on the complete temp file before it replaces anything (re-read a timeline, probe media)
    and raises to refuse it. Any failure raises `WriteFailed` naming the file and what to do; the target is
    left as it was.
    """
    path = Path(path).absolute()
    what = what or path.name
    temp = temp_beside(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(data):
            data(temp)
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if temp.stat().st_size != len(data):
                raise OSError(28, "the file on disk is shorter than what was written")
        if verify is not None:
            verify(temp)
        os.replace(temp, path)
        sync_folder(path.parent)
    except InputError as exc:
        _remove(temp)
        if isinstance(exc, WriteFailed):
            raise
        raise WriteFailed(f"{what} was not written: {exc}") from None
    except OSError as exc:
        _remove(temp)
        reason = exc.strerror or str(exc)
        advice = "Free some space on that disk." if exc.errno == 28 else "Choose a folder you can write to."
        raise WriteFailed(f"Cannot write {what} in {path.parent}: {reason}; nothing was replaced. {advice}") from None
    except BaseException:
        _remove(temp)
        raise
    return path


def check_writable(path: Path, what: str = "") -> None:
    """Refuse now, with the sentence a failed write would give, when a file cannot be created beside `path`
    (a read-only or missing-and-uncreatable folder, a file where a folder should be)."""
    path = Path(path).absolute()
    write_atomic(temp_beside(path).with_name(f".{path.stem}.probe.partial{path.suffix}"), b"", what=what or path.name)
    _remove(path.with_name(f".{path.stem}.probe.partial{path.suffix}"))


def _remove(temp: Path) -> None:
    try:
        temp.unlink()
    except OSError:
        pass
