"""Paths: whether two paths name one file, and a clip name made safe to use as a file name."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["same_file", "safe_stem"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
