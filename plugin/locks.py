"""One writer at a time across processes: locks on a timeline or a journal, and claims on version file names.

    hold(path, doing)      a `filelock` lock for one file's name (kept under the scratch root, never beside
                           the editor's files), held while a run numbers and records its versions (the
                           journal's) or reads, splices and writes a timeline (the output's). Another process
                           waits, is told it waits, and after a while gets a sentence.
    claim(version, owner)  an exclusive create of `.claims/<version>.claim` in a version's folder before anything is
                           sent: runs with different journals, even on other machines sharing the folder, never
                           both write one version name. A claim stays while its run can still be resumed (its
                           process lives, or its journal has the version in flight) and goes when the version
                           is written, the job ends, or the run is dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from .errors import InputError
from .scratch import pid_alive, process_start, scratch_root

__all__ = ["hold", "claim", "release", "claim_path", "claimed", "owner_record", "LOCK_WAIT_S"]

LOCK_WAIT_S = 120.0      # how long a run waits for another to finish numbering or saving before it gives up


def _lock_file(path: Path) -> Path:
    key = hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    folder = scratch_root() / "locks"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{key}.lock"


@contextlib.contextmanager
def hold(path: Path, doing: str, *, wait_s: float = LOCK_WAIT_S,
         on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock of `path` across processes while the block runs. `doing` says what the holder does
    ("numbering versions", "saving"); `on_wait` hears a sentence when another process holds it."""
    lock = FileLock(str(_lock_file(Path(path))), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(f"another ltx-retake run is {doing} {Path(path).name}; waiting for it (up to {wait_s:.0f} s)")
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise InputError(f"Another ltx-retake run kept {doing} {Path(path).name} for {wait_s:.0f} s; nothing was "
                             "sent. Wait for it to finish (`ltx-retake jobs` lists runs), then try again.") from None
    try:
        yield
    finally:
        lock.release()


def claim_path(version: Path) -> Path:
    """The claim file of a version file: `.claims/<name>.claim` in its folder (hidden from version scanners)."""
    version = Path(version)
    return version.parent / ".claims" / f"{version.name}.claim"


def owner_record(journal: Path | None) -> dict:
    """Who claims: this process (and its start, so a reused pid is not mistaken for it), host and journal."""
    pid = os.getpid()
    return {"pid": pid, "start": process_start(pid), "host": socket.gethostname(),
            "journal": str(Path(journal).absolute()) if journal else None}


def claim(version: Path, owner: dict, *, in_flight: Callable[[str, Path], bool] | None = None) -> bool:
    """Claim the name of `version` (creating its folder); False when another live run holds it (or the file exists).
    A claim left by a run nobody can resume any more (see `claimed`) is taken over."""
    version = Path(version)
    target = claim_path(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    if version.exists():
        return False
    for _ in range(2):
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if claimed(version, mine=owner, in_flight=in_flight):
                return False
            target.unlink(missing_ok=True)   # stale: its run is over or gone
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({**owner, "version": str(version)}, out)
        return True
    return False


def _read(version: Path) -> dict | None:
    try:
        return json.loads(claim_path(version).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def claimed(version: Path, *, mine: dict | None = None,
            in_flight: Callable[[str, Path], bool] | None = None) -> bool:
    """Whether another run still holds the name of `version`. A claim made through the same journal as `mine`
    by this process, or by one that is gone (the run being resumed here), is not another's.

    A claim holds while its process runs, or while its journal still has the version in flight (the run can
    be resumed); one made on another machine always holds. `in_flight(journal, version)` is the journal's word
    (`journal.version_in_flight`; without it a dead owner's claim still holds)."""
    if not claim_path(version).exists():
        return False
    owner = _read(version)
    if owner is None:
        return True          # being written this instant, or unreadable: respect it
    if owner.get("host") != socket.gethostname():
        return True
    alive = pid_alive(owner.get("pid"), owner.get("start") or 0)
    if mine is not None and owner.get("journal") == mine.get("journal") and (
            not alive or owner.get("pid") == mine.get("pid")):
        return False         # this journal's own claim: the run it belongs to is being resumed here
    if alive:
        return True
    journal = owner.get("journal")
    if not journal or not Path(journal).exists():
        return False
    return True if in_flight is None else in_flight(journal, Path(version))


def release(version: Path) -> None:
    """Let go of the claim on `version` (the file exists now, or never will); the claims folder goes when empty."""
    target = claim_path(Path(version))
    try:
        target.unlink()
    except OSError:
        pass
    try:
        target.parent.rmdir()
    except OSError:
        pass
