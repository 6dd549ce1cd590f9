"""Atomic writes: a temp file beside the target, written whole, synced and checked, renamed over it, folder synced.

Either the target holds the complete new bytes or it holds what it held before: a full disk, a short write,
a kill or a verify that fails leave the old file (or no file) and remove the temp file. Every file the project
writes for the editor goes through `write_atomic` (or `copy_atomic`, which is `write_atomic` over a copy):
timelines, version media, cuts, downloads, contact sheets, settings, the Resolve menu entry, journal backups.
Media writers hand in how to check their file (`verify`: a probe), so this module never needs ffmpeg.

`check_writable` and `check_room` say before anything is paid for whether a write will be possible: a folder
that cannot be written, a path that is a folder, a disk without room.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

from .errors import InputError

__all__ = ["write_atomic", "copy_atomic", "check_writable", "check_room", "free_bytes", "existing_ancestor",
           "temp_beside", "sync_folder", "WriteFailed", "PARTIAL"]

PARTIAL = ".partial"   # every temp file's name holds this: `.<stem>.<hex>.partial<suffix>` (swept by that name)
_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)


class WriteFailed(InputError):
    """The file could not be written whole; nothing was replaced."""


def temp_beside(path: Path) -> Path:
    """A hidden temp name in the target's folder (same file system, so the rename is atomic), swept by name later."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{PARTIAL}{path.suffix}")


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
            raise OSError(errno.ENOSPC, "No space left on device")
        view = view[written:]


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _advice(exc: OSError) -> str:
    if exc.errno in _NO_SPACE:
        return "Free some space on that disk, or choose another folder."
    return "Choose a folder you can write to."


def _put_in_place(temp: Path, path: Path, replace: bool) -> None:
    """Rename `temp` to `path`; with `replace` False, never over an existing file (a hard link is an exclusive create)."""
    if replace:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError as exc:  # a file system without hard links: check, then rename (a narrow race, nothing better)
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(temp, path)
        return
    os.unlink(temp)


def write_atomic(path: Path, data: bytes | Callable[[Path], None], *, verify: Callable[[Path], None] | None = None,
                 what: str = "", replace: bool = True) -> Path:
    """Write `data` (bytes, or a function that writes the file it is given) to `path` atomically and durably.

    `verify(temp)` runs on the complete, synced temp file before it replaces anything (re-read a timeline, probe
    media) and raises to refuse it. With `replace` False an existing `path` is never replaced (two writers of one
    name: the second fails). An OSError or an InputError raises `WriteFailed` naming the file and what to do;
    any other error (a MediaError from a probe) goes through as it is. Either way the target is left as it was
    and the temp file is removed.
    """
    path = Path(path).absolute()
    what = what or path.name
    temp = temp_beside(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(data):
            data(temp)
            if not temp.exists():
                raise InputError("the writer made no file")
            _sync_file(temp)
        else:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if temp.stat().st_size != len(data):
                raise OSError(errno.ENOSPC, "the file on disk is shorter than what was written")
        if verify is not None:
            verify(temp)
        try:
            _put_in_place(temp, path, replace)
        except FileExistsError:
            raise WriteFailed(f"{what} was not written: {path} already exists (another run wrote it meanwhile); "
                              "nothing was replaced.") from None
        sync_folder(path.parent)
    except InputError as exc:
        _remove(temp)
        if isinstance(exc, WriteFailed):
            raise
        raise WriteFailed(f"{what} was not written: {exc}") from None
    except OSError as exc:
        _remove(temp)
        reason = exc.strerror or str(exc)
        raise WriteFailed(f"Cannot write {what} in {path.parent}: {reason}; nothing was replaced. {_advice(exc)}") from None
    except BaseException:
        _remove(temp)
        raise
    return path


def copy_atomic(source: Path, path: Path, *, what: str = "", replace: bool = True) -> Path:
    """Copy `source` to `path` through `write_atomic` (the copy is checked to have the source's size)."""
    size = Path(source).stat().st_size

    def same_size(temp: Path) -> None:
        if temp.stat().st_size != size:
            raise OSError(errno.ENOSPC, "the copy on disk is shorter than its source")

    return write_atomic(path, lambda temp: shutil.copyfile(source, temp), verify=same_size, what=what, replace=replace)


def existing_ancestor(path: Path) -> Path:
    """`path` itself when it exists, else its nearest existing parent (where a write would have to start)."""
    path = Path(path).absolute()
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def check_writable(path: Path, what: str = "", *, folder: bool = False) -> None:
    """Refuse now, with the sentence a failed write would give, when `path` (a file, or with `folder` a folder)
    could not be written: a read-only or full-to-the-brim folder, a file where a folder should be, a folder
    where the file should be. Creates nothing that stays (a probe file is made and removed)."""
    path = Path(path).absolute()
    what = what or path.name
    if not folder and path.is_dir():
        raise WriteFailed(f"{path} is a folder; give the file to write, e.g. {path / 'retakes.otio'}.")
    start = existing_ancestor(path if folder else path.parent)
    if not start.is_dir():
        raise WriteFailed(f"Cannot write {what} in {start}: it is a file, not a folder. Choose a folder you can write to.")
    probe = start / f".ltx-retake-probe.{uuid.uuid4().hex[:8]}{PARTIAL}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise WriteFailed(f"Cannot write {what} in {start}: {exc.strerror or exc}. {_advice(exc)}") from None
    _remove(probe)


def free_bytes(folder: Path) -> int:
    """The bytes a program may still write under `folder` (or its nearest existing parent)."""
    return shutil.disk_usage(existing_ancestor(folder)).free


def check_room(needs: dict[Path, tuple[int, str]], *, free: Callable[[Path], int] = free_bytes) -> None:
    """Refuse when the disks cannot hold what is about to be written: `needs` maps a folder to (bytes, what).

    Folders on one file system share its free space. `free` is a seam (tests hand in a smaller disk)."""
    by_disk: dict[int, list[tuple[Path, int, str]]] = {}
    for folder, (size, what) in needs.items():
        start = existing_ancestor(folder)
        by_disk.setdefault(start.stat().st_dev, []).append((start, size, what))
    for items in by_disk.values():
        total = sum(size for _, size, _ in items)
        have = free(items[0][0])
        if total > have:
            parts = ", ".join(f"{what} about {_mb(size)}" for _, size, what in items)
            raise WriteFailed(f"Not enough space on the disk of {items[0][0]}: {parts}, {_mb(total)} in all, and "
                              f"{_mb(have)} are free. Free some space there, or choose other folders (-o, --media-dir).")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 10e9 else f"{size / 1e9:.1f} GB"


def _remove(temp: Path) -> None:
    try:
        temp.unlink()
    except OSError:
        pass
