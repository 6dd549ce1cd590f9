"""Versions: list the retakes on a timeline and switch a clip between its versions and the original."""

from __future__ import annotations

from dataclasses import dataclass

import opentimelineio as otio

from .errors import SelectionError
from .selection import clips_on_track, record_timecode, require_lengths, track_label
from .metadata import NS, original_name, version_from_text, version_name, version_number

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
    return version_from_text(t)


def _places(retaken: list[RetakenClip]) -> list[list[RetakenClip]]:
    """The separate windows the pieces cover, each a list of pieces: overlapping or abutting pieces are one place
    (a window retaken over earlier pieces leaves them side by side; a 15 fps picture and its 30 fps sound split a
    frame apart)."""
    places: list[list[RetakenClip]] = []
    end = None
    for r in sorted(retaken, key=lambda r: (r.track_index, r.record_range.start_time.to_seconds())):
        start = r.record_range.start_time.to_seconds()
        if places and end is not None and start <= end + 1e-6 and places[-1][0].track_index == r.track_index:
            places[-1].append(r)
        else:
            places.append([r])
            end = None
        end = max(end or 0.0, r.record_range.end_time_exclusive().to_seconds())
    # the same window on another track (linked sound) is the same place as the picture's
    merged: list[list[RetakenClip]] = []
    for place in places:
        span = (min(r.record_range.start_time.to_seconds() for r in place),
                max(r.record_range.end_time_exclusive().to_seconds() for r in place))
        for other in merged:
            o = (min(r.record_range.start_time.to_seconds() for r in other),
                 max(r.record_range.end_time_exclusive().to_seconds() for r in other))
            if span[0] < o[1] + 1e-6 and o[0] < span[1] + 1e-6:
                other.extend(place)
                break
        else:
            merged.append(place)
    return merged


def _span_text(place: list[RetakenClip]) -> str:
    first = min(place, key=lambda r: r.record_range.start_time.to_seconds())
    last = max(place, key=lambda r: r.record_range.end_time_exclusive().to_seconds())
    return f"{first.record_timecode.split('-')[0]}-{last.record_timecode.split('-')[1]}"


def use_version(timeline: otio.schema.Timeline, clip: str, version: str, at: str | None = None) -> list[RetakenClip]:
    """Make `version` (a name like v002 / retake_v002 / shot_retake_v002, or 'original') show on `clip`.

    `clip` is the original clip name or a version's name; `at` (a record timecode) picks one window when the
    clip was retaken in several places. Mutates the timeline; returns the clips it changed.
    """
    wanted = _normalise_version(version)
    name = clip.strip()
    matches = [r for r in list_versions(timeline)
               if r.original_name == name or r.clip.name == name or name.startswith(version_name(r.original_name, 1)[:-3])]
    if at:
        matches = [r for r in matches if r.record_timecode.startswith(at.strip()) or at.strip() in r.record_timecode]
    if not matches:
        raise SelectionError(f"No retaken clip {name!r}{' at ' + at if at else ''}; `ltx-retake versions` lists them.")
    splices = [r for r in matches if r.placement == "splice"]
    places = _places(splices)
    holding = [place for place in places if wanted == ORIGINAL or any(wanted in r.versions for r in place)]
    if len(places) > 1 and (len(holding) > 1 or wanted == ORIGINAL) and not at:
        where = ", ".join(_span_text(place) for place in places)
        raise SelectionError(f"{name!r} was retaken in several places ({where}); pick one with --at TIMECODE.")
    if wanted != ORIGINAL and splices and not holding:
        have = sorted({v for r in splices for v in r.versions})
        raise SelectionError(f"{name!r} has no version {version!r}; it has: original, {', '.join(have)}.")
    chosen = {id(r) for place in holding for r in place}
    changed = []
    for r in matches:
        if r.placement == "splice":
            if id(r) not in chosen:
                continue
            # a piece of the window that this version does not cover shows the original there
            shows = wanted if wanted in r.versions else ORIGINAL
            key = otio.schema.Clip.DEFAULT_MEDIA_KEY if shows == ORIGINAL else shows
            r.clip.active_media_reference_key = key
            r.clip.name = r.original_name if shows == ORIGINAL else version_name(r.original_name, version_number(shows))
            meta = dict(r.clip.metadata[NS])
            meta["active"] = shows
            r.clip.metadata[NS] = meta
        else:  # a retake placed above: it shows only when it is the one asked for
            r.clip.enabled = wanted in r.versions
        changed.append(r)
    if wanted != ORIGINAL and not any(wanted in r.versions for r in changed):
        raise SelectionError(f"{name!r} has no version {version!r}.")
    return changed
