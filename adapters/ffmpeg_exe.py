"""Finds the ffmpeg binary (a setting, `LTX_RETAKE_FFMPEG`, or the one imageio-ffmpeg ships) and runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

from ..errors import MediaError

__all__ = ["ffmpeg_path", "run_ffmpeg", "own_process_group"]


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
    MediaError instead. So ffmpeg runs in its own session (POSIX) or process group (Windows).
    """
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def run_ffmpeg(args: list[str], *, ffmpeg: str | None = None, what: str = "ffmpeg", input: bytes | None = None) -> None:
    """Run ffmpeg with `args` (no binary name); on failure raise MediaError with the tail of its log."""
    cmd = [ffmpeg_path(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, input=input, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **own_process_group())
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-6:]
        raise MediaError(f"{what} failed (ffmpeg exit {proc.returncode}): " + " | ".join(tail))
