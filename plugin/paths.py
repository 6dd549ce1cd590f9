"""Paths: whether two paths name one file; clip names as shot names and safe file names."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["same_file", "safe_stem", "shot_name"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MEDIA_SUFFIXES = {".mov", ".mp4", ".m4v", ".mxf", ".avi", ".mkv", ".mts", ".m2ts", ".r3d", ".braw", ".ari", ".crm",
                   ".dng", ".exr", ".dpx", ".tif", ".tiff", ".png", ".jpg", ".wav", ".aif", ".aiff", ".mp3"}


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through `..`, links and case-insensitive file systems)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def safe_stem(name: str) -> str:
    """A clip name as a file name: no separators, no traversal, never empty."""
    stem = _SAFE.sub("_", name).strip("._") or "clip"
    return stem[:120]


def shot_name(clip_name: str) -> str:
    """A clip's name without a media file's extension ('sc01_sh010.mov' -> 'sc01_sh010'), for version names."""
    stem, dot, suffix = clip_name.rpartition(".")
    return stem if dot and stem and f".{suffix.lower()}" in _MEDIA_SUFFIXES else clip_name
