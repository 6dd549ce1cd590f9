"""The `ltx_retake` metadata namespace on clips, and what a retaken clip was called before."""

from __future__ import annotations

import re

import opentimelineio as otio

__all__ = ["NS", "original_name", "original_reference", "has_versions", "version_keys", "media_key", "version_key",
           "version_name", "version_number", "is_version_key", "version_from_text", "version_of_stem"]

_VERSION = "retake_v"      # the one spelling of the version rule: keys retake_v001, names <shot>_retake_v001

NS = "ltx_retake"


def original_name(clip: otio.schema.Clip) -> str:
    """The clip's name before any retake renamed it to `<name>_retake_v###`."""
    meta = clip.metadata.get(NS)
    return meta.get("original_name", clip.name) if meta else clip.name


def version_key(number: int) -> str:
    """The media-reference key of version `number`: retake_v001."""
    return f"{_VERSION}{number:03d}"


def version_name(clip_name: str, number: int) -> str:
    """`<shot>_retake_v###`, the name version scanners (Hiero, Nuke Studio) look for (a media file's extension is
    left out of the shot's name)."""
    from .paths import shot_name

    return f"{shot_name(clip_name)}_{version_key(number)}"


def is_version_key(key: str) -> bool:
    return bool(re.fullmatch(rf"{_VERSION}\d{{3,}}", key))


def version_number(key: str) -> int | None:
    """The number in a version key (retake_v012 -> 12); None for anything else."""
    m = re.fullmatch(rf"{_VERSION}(\d{{3,}})", key)
    return int(m.group(1)) if m else None


def version_of_stem(stem: str, clip_name: str) -> int | None:
    """The version number a file stem names for `clip_name` (`shot010_retake_v003` -> 3), None when it names none."""
    from .paths import safe_stem, shot_name

    m = re.fullmatch(re.escape(safe_stem(shot_name(clip_name))) + rf"_{_VERSION}(\d{{3,}})", stem)
    return int(m.group(1)) if m else None


def version_from_text(text: str) -> str:
    """What an editor types for a version (v2, 002, retake_v002, shot_retake_v002) as its key; anything else as typed
    (lower case)."""
    t = text.strip().lower()
    if f"_{_VERSION}" in t:
        t = _VERSION + t.rsplit(f"_{_VERSION}", 1)[1]
    if t.startswith("v") and t[1:].isdigit():
        return version_key(int(t[1:]))
    if t.isdigit():
        return version_key(int(t))
    return t


def has_versions(clip) -> bool:
    """Whether a retake split this clip's window out and gave it versions (its media references hold them)."""
    return any(is_version_key(key) for key in clip.media_references())


def version_keys(clip) -> list[str]:
    """The clip's retake versions (`retake_v001`, ...), in order."""
    return sorted(key for key in clip.media_references() if is_version_key(key))


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
