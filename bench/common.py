"""What several benchmarks share: the machine line under a table, and a one-clip timeline over a source file."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import opentimelineio as otio

__all__ = ["machine", "one_clip_timeline"]


def machine(*packages: str) -> str:
    """`machine: N CPUs, Python x.y.z (platform)`, plus the installed version of each of `packages`."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} ({sys.platform})"]
    for name in packages:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)


def one_clip_timeline(source: Path, frame_count: int, rate: float, name: str) -> otio.schema.Timeline:
    """A timeline whose V1 holds the whole of `source` as one clip named "camera"."""
    whole = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frame_count, rate))
    tl = otio.schema.Timeline(name=name)
    track = otio.schema.Track(name="V1")
    track.append(otio.schema.Clip(name="camera", source_range=whole, media_reference=otio.schema.ExternalReference(
        target_url=str(source), available_range=whole)))
    tl.tracks.append(track)
    return tl
