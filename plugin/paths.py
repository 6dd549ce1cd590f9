"""Paths: whether two paths name one file, a file's hash, clip names as shot names and safe file names."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["same_file", "file_sha256", "safe_file_name", "safe_stem", "shot_name", "MAX_NAME", "MEDIA_SUFFIXES"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DEVICE = re.compile(r"con|prn|aux|nul|com[0-9]|lpt[0-9]", re.I)    # Windows device names, with any extension
MAX_NAME = 120
MEDIA_SUFFIXES = {".mov", ".mp4", ".m4v", ".mxf", ".avi", ".mkv", ".mts", ".m2ts", ".r3d", ".braw", ".ari", ".crm",
                   ".dng", ".exr", ".dpx", ".tif", ".tiff", ".png", ".jpg", ".wav", ".aif", ".aiff", ".mp3"}


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through `..`, links and case-insensitive file systems)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def safe_file_name(name: str, default: str = "file", *, limit: int = MAX_NAME) -> str:
    """Any name from outside (a clip's, a service's `file_name`, an upload header) as one file name in one folder.

    Only ASCII letters, digits, `.`, `_` and `-` survive: path separators, `..`, NUL, control characters and
    everything else become `_`. No leading or trailing dot or underscore (no hidden files, no `..`); a Windows
    device name (CON, NUL, COM1, LPT1, ...) gets a leading `_`; at most `limit` characters, keeping a short
    extension; never empty (`default` instead).
    """
    text = _SAFE.sub("_", str(name or "")).strip("._")
    if _DEVICE.fullmatch(text.split(".")[0]):
        text = "_" + text
    if len(text) > limit:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and len(ext) <= 10:
            text = f"{stem[:limit - len(ext) - 1].rstrip('._')}.{ext}"
        else:
            text = text[:limit].rstrip("._")
    return text or default


def safe_stem(name: str) -> str:
    """A clip name as a file name: no separators, no traversal, never empty (see `safe_file_name`)."""
    return safe_file_name(name, "clip")


def shot_name(clip_name: str) -> str:
    """A clip's name without a media file's extension ('sc01_sh010.mov' -> 'sc01_sh010'), for version names."""
    stem, dot, suffix = clip_name.rpartition(".")
    return stem if dot and stem and f".{suffix.lower()}" in MEDIA_SUFFIXES else clip_name
