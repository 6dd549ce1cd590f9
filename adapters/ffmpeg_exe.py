"""Finds the ffmpeg binary (a setting, `LTX_RETAKE_FFMPEG`, or the one imageio-ffmpeg ships) and runs it."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from functools import lru_cache

from ..errors import MediaError
from ..priority import BACKGROUND_NICE   # renders yield the CPU to the editor's programs (the panel, the NLE)

__all__ = ["ffmpeg_path", "run_ffmpeg", "own_process_group", "die_with"]


@lru_cache(maxsize=8)
def _resolve(explicit: str | None) -> str:
    candidate = explicit or os.environ.get("LTX_RETAKE_FFMPEG")
    if candidate:
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if not found:
            raise MediaError(f"ffmpeg was set to {candidate!r}, which does not exist; fix LTX_RETAKE_FFMPEG or the 'ffmpeg' setting.")
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - imageio-ffmpeg is a dependency
        raise MediaError("No ffmpeg: install imageio-ffmpeg or set LTX_RETAKE_FFMPEG to an ffmpeg binary.") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_path(explicit: str | None = None) -> str:
    """The ffmpeg binary to run."""
    return _resolve(explicit)


def own_process_group() -> dict:
    """subprocess keywords that start a child outside the terminal's process group.

    A Ctrl-C reaches every process of the terminal's foreground group. ltx-retake turns it into a clean
    cancellation; an ffmpeg in the same group would die of it mid-cut, and the cancel would surface as a
    MediaError instead. So ffmpeg runs in its own process group. Not in a session of its own: Linux schedules
    every session as one group (autogroup), so twenty ffmpeg sessions would each get as much CPU as the
    panel's window, whatever their nice value. On Linux the child also dies with this process (see
    `_die_with_parent`): a group of its own would otherwise outlive a killed CLI.
    """
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    flags: dict = {"process_group": 0}
    die = _die_with_parent()
    if die is not None:
        flags["preexec_fn"] = die
    return flags


@lru_cache(maxsize=1)
def _prctl():
    """libc's prctl (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent():
    """A preexec function that has the kernel SIGKILL the child when this process dies (Linux PR_SET_PDEATHSIG):
    a killed CLI or panel never leaves an ffmpeg encoding on. Only a system call runs in the child."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG
        if os.getppid() != parent:               # the parent died before the line above: go now
            os._exit(1)

    return preexec


def die_with(parent: int) -> None:
    """Have the kernel SIGKILL this process when `parent` (the process that started it) dies, as `_die_with_parent`
    does for ffmpeg: a panel's worker never goes on alone. Where the OS cannot, nothing changes."""
    prctl = _prctl()
    if prctl is None:
        return
    prctl(1, int(signal.SIGKILL), 0, 0, 0)       # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def run_ffmpeg(args: list[str], *, ffmpeg: str | None = None, what: str = "ffmpeg", input: bytes | None = None) -> None:
    """Run ffmpeg with `args` (no binary name) at background priority; on failure raise MediaError with the tail of
    its log."""
    cmd = [ffmpeg_path(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    flags = own_process_group()
    if os.name == "nt":
        flags["creationflags"] |= subprocess.BELOW_NORMAL_PRIORITY_CLASS
    with subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **flags) as proc:
        if os.name != "nt":
            try:  # twenty encodes at once on two cores must not starve the window the user is working in
                os.setpriority(os.PRIO_PROCESS, proc.pid, BACKGROUND_NICE)
            except OSError:
                pass  # already gone, or not allowed: it runs at normal priority
        _, stderr = proc.communicate(input)
    if proc.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-6:]
        raise MediaError(f"{what} failed (ffmpeg exit {proc.returncode}): " + " | ".join(tail))
