"""The `ltx_retake` metadata namespace on clips, and what a retaken clip was called before."""

from __future__ import annotations

import opentimelineio as otio

__all__ = ["NS", "original_name", "original_reference", "has_versions", "version_keys", "media_key"]

NS = "ltx_retake"


def original_name(clip: otio.schema.Clip) -> str:
    """The clip's name before any retake renamed it to `<name>_retake_v###`."""
    meta = clip.metadata.get(NS)
    return meta.get("original_name", clip.name) if meta else clip.name


def has_versions(clip) -> bool:
    """Whether a retake split this clip's window out and gave it versions (its media references hold them)."""
    return any(key.startswith("retake_v") for key in clip.media_references())


def version_keys(clip) -> list[str]:
    """The clip's retake versions (`retake_v001`, ...), in order."""
    return sorted(key for key in clip.media_references() if key.startswith("retake_v"))


def original_reference(clip):
    """The media the clip had before any retake (what a new retake is cut from), whichever version it shows now."""
    if has_versions(clip):
        return clip.media_references().get(otio.schema.Clip.DEFAULT_MEDIA_KEY, clip.media_reference)
    return clip.media_reference


def media_key(ref) -> str:
    """What names a clip's media, to tell linked picture and sound and the pieces of one shot: its URL; for offline
    media (an EDL names no file) the name the reader gave it, e.g. the source file or reel. Empty when nothing names it."""
    url = getattr(ref, "target_url", None)
    if url is not None:
        return url
    if isinstance(ref, otio.schema.MissingReference) and ref.name:
        return f"offline:{ref.name}"
    return ""
