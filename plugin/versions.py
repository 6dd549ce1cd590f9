"""Versions: list the retakes on a timeline and switch a clip between its versions and the original."""

from __future__ import annotations

from dataclasses import dataclass

import opentimelineio as otio

from .errors import SelectionError
from .selection import clips_on_track, record_timecode, require_lengths, track_label
from .metadata import NS, original_name
from .paths import shot_name

__all__ = ["RetakenClip", "list_versions", "use_version"]

ORIGINAL = "original"


@dataclass(frozen=True)
class RetakenClip:
    """A clip that carries retakes: where it is, which versions it has, which one shows."""

    clip: otio.schema.Clip
    track_index: int
    record_range: otio.opentime.TimeRange
    record_timecode: str
    track: str
    original_name: str
    versions: tuple[str, ...]
    active: str
    placement: str

    def describe(self) -> str:
        marks = ", ".join(f"{v}{'*' if v == self.active else ''}" for v in (ORIGINAL, *self.versions)
                          if not (v == ORIGINAL and self.placement == "above"))
        return f"{self.original_name}\t{self.record_timecode}\t{self.track}\t{self.placement}\t{marks}"


def list_versions(timeline: otio.schema.Timeline) -> list[RetakenClip]:
    """Every clip with retakes, in track then record order."""
    require_lengths(timeline)
    out = []
    for ti, track in enumerate(timeline.tracks):
        for clip, rng in clips_on_track(track):
            meta = clip.metadata.get(NS)
            if not meta or "versions" not in meta:
                continue
            placement = meta.get("placement", "splice")
            if placement == "splice":  # the active media reference says which version shows
                key = clip.active_media_reference_key
                active = ORIGINAL if key == otio.schema.Clip.DEFAULT_MEDIA_KEY else key
            else:  # a retake placed above shows while it is enabled
                active = meta.get("active", ORIGINAL) if clip.enabled else ORIGINAL
            tc = f"{record_timecode(timeline, rng.start_time)}-{record_timecode(timeline, rng.end_time_exclusive())}"
            out.append(RetakenClip(clip, ti, rng, tc, track_label(timeline, ti), original_name(clip),
                                   tuple(sorted(meta["versions"])), active, placement))
    return out


def _normalise_version(text: str) -> str:
    t = text.strip().lower()
    if t in (ORIGINAL, "orig", "default"):
        return ORIGINAL
    if "_retake_v" in t:
        t = "retake_v" + t.rsplit("_retake_v", 1)[1]
    if t.startswith("v") and t[1:].isdigit():
        t = f"retake_v{int(t[1:]):03d}"
    if t.isdigit():
        t = f"retake_v{int(t):03d}"
    return t


def _places(retaken: list[RetakenClip]) -> int:
    """How many separate windows the clips cover: overlapping or abutting ones are one (a 15 fps picture splits a
    frame apart from its 30 fps sound; a window retaken over earlier pieces leaves pieces side by side)."""
    places, end = 0, None
    for r in sorted(retaken, key=lambda r: r.record_range.start_time.to_seconds()):
        if end is None or r.record_range.start_time.to_seconds() > end + 1e-6:
            places += 1
        end = max(end or 0.0, r.record_range.end_time_exclusive().to_seconds())
    return places


def use_version(timeline: otio.schema.Timeline, clip: str, version: str, at: str | None = None) -> list[RetakenClip]:
    """Make `version` (a name like v002 / retake_v002 / shot_retake_v002, or 'original') show on `clip`.

    `clip` is the original clip name or a version's name; `at` (a record timecode) picks one window when the
    clip was retaken in several places. Mutates the timeline; returns the clips it changed.
    """
    wanted = _normalise_version(version)
    name = clip.strip()
    matches = [r for r in list_versions(timeline)
               if r.original_name == name or r.clip.name == name or name.startswith(shot_name(r.original_name) + "_retake_v")]
    if at:
        matches = [r for r in matches if r.record_timecode.startswith(at.strip()) or at.strip() in r.record_timecode]
    if not matches:
        raise SelectionError(f"No retaken clip {name!r}{' at ' + at if at else ''}; `ltx-retake versions` lists them.")
    splices = [r for r in matches if r.placement == "splice"]
    if _places(splices) > 1:
        where = ", ".join(sorted({r.record_timecode for r in splices}))
        raise SelectionError(f"{name!r} was retaken in several places ({where}); pick one with --at TIMECODE.")
    changed = []
    for r in matches:
        if wanted != ORIGINAL and wanted not in r.versions and r.placement == "splice":
            raise SelectionError(f"{r.original_name!r} at {r.record_timecode} has no version {version!r}; it has: original, {', '.join(r.versions)}.")
        if r.placement == "splice":
            key = otio.schema.Clip.DEFAULT_MEDIA_KEY if wanted == ORIGINAL else wanted
            r.clip.active_media_reference_key = key
            r.clip.name = r.original_name if wanted == ORIGINAL else f"{shot_name(r.original_name)}_{wanted}"
            r.clip.metadata[NS]["active"] = wanted
        else:  # a retake placed above: it shows only when it is the one asked for
            r.clip.enabled = wanted in r.versions
        changed.append(r)
    if wanted != ORIGINAL and not any(wanted in r.versions for r in changed):
        raise SelectionError(f"{name!r} has no version {version!r}.")
    return changed
