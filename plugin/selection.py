"""Selections: which clip and which record range on a track, picked by clip, by range or by markers."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import opentimelineio as otio

from .errors import SelectionError, UnsupportedEditError
from .timing import exact_rate, format_timecode, parse_timecode

__all__ = [
    "Selection",
    "timeline_rate",
    "find_track",
    "select_clip",
    "select_range",
    "select_markers",
    "clip_at",
    "selections_in",
    "record_timecode",
]

_TR = otio.opentime.TimeRange
_RT = otio.opentime.RationalTime


@dataclass(frozen=True)
class Selection:
    """A clip and the part of it to retake, in the top-level track's time (0 = the track's first frame)."""

    track_index: int                       # index in timeline.tracks
    clip: otio.schema.Clip                 # may sit inside nested stacks
    record_range: otio.opentime.TimeRange  # at the timeline's rate, track time (no global start)
    prompt: str | None = None              # from a marker, in batch mode
    label: str = ""                        # how messages name it
    track_kind: str = otio.schema.TrackKind.Video


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's rate: its global start's, else its first track's, else its first clip's."""
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    for track in timeline.tracks:
        for item in track:
            if item.source_range is not None:
                return exact_rate(item.source_range.duration.rate)
    raise SelectionError(f"The timeline {timeline.name!r} has no clips with a rate; there is nothing to retake.")


def _global_start_frames(timeline: otio.schema.Timeline, rate: Fraction) -> int:
    g = timeline.global_start_time
    return 0 if g is None else round(g.rescaled_to(float(rate)).value)


def record_timecode(timeline: otio.schema.Timeline, t: otio.opentime.RationalTime) -> str:
    """A track time as the record timecode an editor sees (global start added)."""
    rate = timeline_rate(timeline)
    return format_timecode(_global_start_frames(timeline, rate) + round(t.rescaled_to(float(rate)).value), rate)


def find_track(timeline: otio.schema.Timeline, track: str | int | None, kind: str = otio.schema.TrackKind.Video) -> int:
    """A track by name, by NLE label (V1, A2), or by 1-based number among tracks of `kind`; default V1."""
    tracks = list(timeline.tracks)
    of_kind = [i for i, t in enumerate(tracks) if t.kind == kind]
    if track is None:
        if not of_kind:
            raise SelectionError(f"The timeline has no {kind.lower()} track.")
        return of_kind[0]
    text = str(track).strip()
    named = [i for i, t in enumerate(tracks) if t.name == text]
    if len(named) == 1:
        return named[0]
    label = text.upper()
    if label[:1] in ("V", "A") and label[1:].isdigit():
        pool = [i for i, t in enumerate(tracks) if t.kind == (otio.schema.TrackKind.Video if label[0] == "V" else otio.schema.TrackKind.Audio)]
        n = int(label[1:])
        if 1 <= n <= len(pool):
            return pool[n - 1]
    elif text.isdigit() and 1 <= int(text) <= len(of_kind):
        return of_kind[int(text) - 1]
    names = ", ".join(_track_label(timeline, i) for i in range(len(tracks)))
    raise SelectionError(f"No track {text!r}; the timeline has: {names}.")


def _track_label(timeline: otio.schema.Timeline, index: int) -> str:
    tracks = list(timeline.tracks)
    t = tracks[index]
    n = sum(1 for x in tracks[: index + 1] if x.kind == t.kind)
    prefix = "V" if t.kind == otio.schema.TrackKind.Video else "A"
    return f"{prefix}{n}" + (f" ({t.name!r})" if t.name else "")


def _clips_in(track: otio.schema.Track) -> list[tuple[otio.schema.Clip, otio.opentime.TimeRange]]:
    """Every clip on the track, nested ones included, with its range in the track's time."""
    out = []
    ranges = track.range_of_all_children()
    for item in track:
        if isinstance(item, otio.schema.Clip):
            out.append((item, ranges[item]))
        elif isinstance(item, otio.core.Composition):
            for clip in item.find_clips():
                out.append((clip, clip.transformed_time_range(clip.trimmed_range(), track)))
    return out


def select_clip(timeline: otio.schema.Timeline, clip: str, track: str | int | None = None) -> Selection:
    """The whole of one clip: by name, or by `#N` (the N-th clip on the track, counting from 1)."""
    ti = find_track(timeline, track)
    track_obj = timeline.tracks[ti]
    clips = _clips_in(track_obj)
    text = clip.strip()
    if text.startswith("#") and text[1:].isdigit():
        n = int(text[1:])
        if not 1 <= n <= len(clips):
            raise SelectionError(f"Track {_track_label(timeline, ti)} has {len(clips)} clips; #{n} does not exist.")
        found = [clips[n - 1]]
    else:
        found = [(c, r) for c, r in clips if c.name == text]
        if not found:
            others = [c.name for c, _ in clips][:12]
            hint = f" Clips there: {', '.join(repr(n) for n in others)}{' ...' if len(clips) > 12 else ''}." if others else ""
            raise SelectionError(f"No clip named {text!r} on track {_track_label(timeline, ti)}.{hint}")
        if len(found) > 1:
            places = ", ".join(record_timecode(timeline, r.start_time) for _, r in found)
            raise SelectionError(
                f"{len(found)} clips are named {text!r} on track {_track_label(timeline, ti)} (at {places}); "
                "pick one with --range or with #N."
            )
    c, r = found[0]
    return selections_in(timeline, ti, r, per_clip=False, label=f"{c.name} on {_track_label(timeline, ti)}")[0]


def _parse_point(text: str, timeline: otio.schema.Timeline, rate: Fraction) -> int:
    """A record point: timecode (with the timeline's start) or a bare frame count from the timeline's start."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return parse_timecode(text, rate) - _global_start_frames(timeline, rate)


def select_range(timeline: otio.schema.Timeline, start: str, end: str, track: str | int | None = None,
                 *, per_clip: bool = False) -> list[Selection]:
    """A record range [start, end) on a track. A range across a cut needs `per_clip` (one job per clip)."""
    rate = timeline_rate(timeline)
    a, b = _parse_point(start, timeline, rate), _parse_point(end, timeline, rate)
    if b <= a:
        raise SelectionError(f"The range {start} - {end} is empty or backwards; the out point is exclusive and must come after the in point.")
    ti = find_track(timeline, track)
    rng = _TR(_RT(a, float(rate)), _RT(b - a, float(rate)))
    return selections_in(timeline, ti, rng, per_clip=per_clip)


def selections_in(timeline, ti: int, rng: otio.opentime.TimeRange, *, per_clip: bool, prompt: str | None = None,
                   label: str | None = None) -> list[Selection]:
    track = timeline.tracks[ti]
    end = track.range_of_child_at_index(len(track) - 1).end_time_exclusive() if len(track) else _RT(0, rng.start_time.rate)
    if rng.start_time < _RT(0, rng.start_time.rate) or rng.end_time_exclusive() > end:
        raise SelectionError(
            f"The range {_span(timeline, rng)} lies outside track {_track_label(timeline, ti)}, "
            f"which runs {_span(timeline, _TR(_RT(0, end.rate), end))}."
        )
    hits = []
    ranges = track.range_of_all_children()
    for item in track:
        r = ranges[item]
        if isinstance(item, otio.schema.Transition):
            covered = _TR(r.start_time - item.in_offset, item.in_offset + item.out_offset)
            if covered.intersects(rng) and covered.duration.value > 0:
                raise UnsupportedEditError(
                    f"The range {_span(timeline, rng)} touches the transition {item.name or item.transition_type!r} "
                    f"at {_span(timeline, covered)}; pick a range clear of it (retaking inside a dissolve would mix two shots)."
                )
            continue
        if not r.intersects(rng) or r.duration.value == 0:
            continue
        part = _TR(max(r.start_time, rng.start_time), min(r.end_time_exclusive(), rng.end_time_exclusive()) - max(r.start_time, rng.start_time))
        hits.append((item, part))
    if not hits:
        raise SelectionError(f"Nothing on track {_track_label(timeline, ti)} at {_span(timeline, rng)}.")
    out: list[Selection] = []
    for item, part in hits:
        if isinstance(item, otio.schema.Gap):
            raise SelectionError(f"The range {_span(timeline, rng)} includes a gap at {_span(timeline, part)}; there is no media there to retake.")
        if isinstance(item, otio.core.Composition):
            for clip, cr in _clips_in_composition(item, track):
                if cr.intersects(part) and cr.duration.value > 0:
                    sub = _TR(max(cr.start_time, part.start_time), min(cr.end_time_exclusive(), part.end_time_exclusive()) - max(cr.start_time, part.start_time))
                    out.append(Selection(ti, clip, sub, prompt, label or f"{clip.name} on {_track_label(timeline, ti)}", track.kind))
        else:
            out.append(Selection(ti, item, part, prompt, label or f"{item.name} on {_track_label(timeline, ti)}", track.kind))
    if len(out) > 1 and not per_clip:
        names = ", ".join(f"{s.clip.name!r} ({_span(timeline, s.record_range)})" for s in out)
        raise SelectionError(
            f"The range {_span(timeline, rng)} crosses a cut: it covers {names}. A retake regenerates one shot; "
            "narrow the range to one clip, or pass --per-clip for one job per clip."
        )
    return out


def _clips_in_composition(comp, track) -> list[tuple[otio.schema.Clip, otio.opentime.TimeRange]]:
    out = []
    for clip in comp.find_clips():
        out.append((clip, clip.transformed_time_range(clip.trimmed_range(), track)))
    return out


def _span(timeline, rng: otio.opentime.TimeRange) -> str:
    return f"{record_timecode(timeline, rng.start_time)}-{record_timecode(timeline, rng.end_time_exclusive())}"


def select_markers(timeline: otio.schema.Timeline, track: str | int | None = None) -> list[Selection]:
    """Batch mode: every marker (on the timeline, the track or its clips) is a selection; its name or comment the prompt."""
    ti = find_track(timeline, track)
    trk = timeline.tracks[ti]
    found: list[tuple[otio.schema.Marker, otio.opentime.TimeRange]] = []
    for m in timeline.tracks.markers:
        found.append((m, m.marked_range))
    for m in trk.markers:
        found.append((m, m.marked_range))
    for clip, _ in _clips_in(trk):
        for m in clip.markers:
            found.append((m, clip.transformed_time_range(m.marked_range, trk)))
    if not found:
        raise SelectionError(f"Track {_track_label(timeline, ti)} and the timeline have no markers; add markers or use --clip / --range.")
    out = []
    rate = timeline_rate(timeline)
    for marker, rng in sorted(found, key=lambda mr: mr[1].start_time.value / mr[1].start_time.rate):
        prompt = (marker.comment or "").strip() or (marker.name or "").strip()
        if not prompt:
            raise SelectionError(f"The marker at {record_timecode(timeline, rng.start_time)} has no name or comment to use as the prompt.")
        if rng.duration.value <= 0:
            rng = _TR(rng.start_time, _RT(1, rng.start_time.rate))
        rng = _TR(rng.start_time.rescaled_to(float(rate)), rng.duration.rescaled_to(float(rate)))
        label = f"marker {marker.name or prompt[:20]!r} at {record_timecode(timeline, rng.start_time)}"
        out.extend(selections_in(timeline, ti, rng, per_clip=False, prompt=prompt, label=label))
    return out


def clip_at(timeline: otio.schema.Timeline, ti: int, t: otio.opentime.RationalTime) -> tuple[otio.schema.Clip, otio.opentime.TimeRange] | None:
    """The clip (nested ones included) that shows at track time `t` on track `ti`, with its track range."""
    for clip, r in _clips_in(timeline.tracks[ti]):
        if r.contains(t):
            return clip, r
    return None

