"""The `ltx_retake` metadata namespace on clips, and what a retaken clip was called before."""

from __future__ import annotations

import opentimelineio as otio

__all__ = ["NS", "original_name"]

NS = "ltx_retake"


def original_name(clip: otio.schema.Clip) -> str:
    """The clip's name before any retake renamed it to `<name>_retake_v###`."""
    meta = clip.metadata.get(NS)
    return meta.get("original_name", clip.name) if meta else clip.name
