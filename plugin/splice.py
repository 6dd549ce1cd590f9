"""Splicing: a retake goes back as a new version of the clip (split at the window) or on a free track above.

These functions MUTATE the timeline they are given (callers work on a copy they read from disk; the
input file is never written). Neighbours never ripple and the timeline's duration never changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import opentimelineio as otio

from .errors import SpliceError
from .metadata import NS, media_key, original_name, version_key, version_name, version_number, version_of_stem
from .plan import Plan
from .ports import RetakeMode
from .selection import clip_showing, clips_on_track, shot_run, timeline_rate, track_label

__all__ = ["NS", "Version", "splice_version", "place_above", "carries_sound_above", "RETAKE_SOUND_TRACK_NAME", "version_key", "version_name", "next_version_number",
           "versions_on", "RETAKE_TRACK_NAME", "describe_landing", "linked_sound"]

RETAKE_TRACK_NAME = "LTX Retakes"
RETAKE_SOUND_TRACK_NAME = "LTX Retakes (sound)"
_TR = otio.opentime.TimeRange
_RT = otio.opentime.RationalTime


@dataclass(frozen=True)
class Version:
    """A conformed retake ready to splice: its number, file and provenance."""

    number: int
    clip_name: str
    path: Path
    provenance: dict

    @property
    def key(self) -> str:
        return version_key(self.number)

    @property
    def name(self) -> str:
        return version_name(self.clip_name, self.number)


def versions_on(timeline: otio.schema.Timeline) -> dict[str, int]:
    """The highest version on the timeline of every retaken clip, by its original name, in one pass over the clips."""
    highest: dict[str, int] = {}
    for clip in timeline.find_clips():
        meta = clip.metadata.get(NS)
        name = meta.get("original_name") if meta else None
        if name is None:
            continue
        top = highest.get(name, 0)
        for key in clip.media_references():
            top = max(top, version_number(key) or 0)
        if "version" in meta:
            top = max(top, int(meta["version"]))
        highest[name] = top
    return highest


def next_version_number(timeline: otio.schema.Timeline, clip_name: str, taken_files: set[str] = frozenset(), *,
                        on_timeline: dict[str, int] | None = None) -> int:
    """1 + the highest version of `clip_name` on the timeline or among file stems already on disk.

    `on_timeline` is `versions_on(timeline)` when the caller numbers many clips (one pass instead of one per clip).
    """
    highest = (versions_on(timeline) if on_timeline is None else on_timeline).get(clip_name, 0)
    for stem in taken_files:
        highest = max(highest, version_of_stem(stem, clip_name) or 0)
    return highest + 1


def _version_reference(plan: Plan, version: Version) -> otio.schema.ExternalReference:
    ref = otio.schema.ExternalReference(target_url=str(version.path), available_range=plan.version_range)
    ref.name = version.name
    ref.metadata[NS] = dict(version.provenance)
    return ref


def _frames(t: otio.opentime.RationalTime, rate: float) -> int:
    """Whole frames at `rate`: record times meet at frame boundaries, whatever float rate each was built at."""
    return round(t.rescaled_to(rate).value)


def _covers(rng: otio.opentime.TimeRange, window: otio.opentime.TimeRange, timeline: otio.schema.Timeline) -> bool:
    """Whether the clip at `rng` holds the window: its middle inside, its ends within half a frame of the clip's.

    Half a frame (of the coarsest rate at play) absorbs what rounding to record frames does where a clip's
    rate is not the timeline's (its cuts fall between record frames); a window one whole frame over is refused.
    """
    slack = 0.5 / min(rng.start_time.rate, window.start_time.rate, float(timeline_rate(timeline))) + 1e-6
    s0, e0 = rng.start_time.to_seconds(), rng.end_time_exclusive().to_seconds()
    w0, w1 = window.start_time.to_seconds(), window.end_time_exclusive().to_seconds()
    return w0 >= s0 - slack and w1 <= e0 + slack and s0 <= (w0 + w1) / 2 < e0


def _window_in_clip(rng: otio.opentime.TimeRange, window: otio.opentime.TimeRange, rate: float, frames: int) -> tuple[int, int]:
    """The window as whole frames [first, end) of the clip (at its own `rate`), kept inside its `frames`."""
    first = _frames(window.start_time - rng.start_time, rate)
    end = _frames(window.end_time_exclusive() - rng.start_time, rate)
    return max(0, first), min(frames, end)


def _locate(timeline: otio.schema.Timeline, plan: Plan) -> tuple[otio.schema.Clip, otio.opentime.TimeRange]:
    """The clip that shows the planned record range now (earlier splices may have split the original)."""
    return _locate_run(timeline, plan)[0]


def _locate_run(timeline: otio.schema.Timeline, plan: Plan) -> list[tuple[otio.schema.Clip, otio.opentime.TimeRange]]:
    """The pieces of the planned shot that the window falls on, in order, with their ranges in the track: one clip, or
    several where earlier retakes split it (original | v001 | original is one shot)."""
    track = timeline.tracks[plan.track_index]
    ranges = track.range_of_all_children()  # once: a splice looks at one window, not at every clip twice
    shown = clip_showing(track, plan.record_range, ranges)  # in a nest, lower layers hold the window too: the top one shows
    if shown is not None and original_name(shown) == plan.clip_name:
        def where(piece):  # its range as clips_on_track gives it: the track's own for a clip on it, else through the nests
            return ranges[piece] if piece in ranges else piece.transformed_time_range(piece.trimmed_range(), track)
        w = plan.record_range
        run = [(piece, where(piece)) for piece in shot_run(shown)]
        touched = [(piece, rng) for piece, rng in run
                   if rng.end_time_exclusive().to_seconds() > w.start_time.to_seconds() + 1e-9
                   and rng.start_time.to_seconds() < w.end_time_exclusive().to_seconds() - 1e-9]
        if touched:
            first, last = touched[0][1], touched[-1][1]
            whole = _TR(first.start_time, last.end_time_exclusive() - first.start_time)
            if _covers(whole, w, timeline):
                return touched
    raise SpliceError(
        f"{plan.label}: the timeline no longer shows clip {plan.clip_name!r} across {plan.record_timecode}; "
        "it was edited since the retake was planned. Retake again on the current timeline."
    )


def linked_sound(timeline: otio.schema.Timeline, plan: Plan) -> list[Plan]:
    """The sound clips linked to the planned picture: on audio tracks, same media, in sync over the window.

    A retake that changes the sound must reach them too, or the editor hears the old take under the new one.
    """
    out = []
    w = plan.record_range
    mid = (w.start_time.to_seconds() + w.end_time_exclusive().to_seconds()) / 2
    for ti, track in enumerate(timeline.tracks):
        if track.kind != otio.schema.TrackKind.Audio or ti == plan.track_index:
            continue
        ranges = track.range_of_all_children()
        if isinstance(track, otio.schema.Track) and not any(isinstance(item, otio.core.Composition) for item in ranges):
            # no nests: clips lie end to end, so at most one holds the window's middle
            candidates = sorted(((item, rng) for item, rng in ranges.items() if isinstance(item, otio.schema.Clip)
                                 and rng.start_time.to_seconds() <= mid < rng.end_time_exclusive().to_seconds()),
                                key=lambda ir: ir[1].start_time)
        else:
            candidates = clips_on_track(track)
        for item, rng in candidates:
            # the window's middle inside the clip first: one of _covers' own tests, without its rate look-up per clip
            if not rng.start_time.to_seconds() <= mid < rng.end_time_exclusive().to_seconds():
                continue
            whole = _run_range(item, rng, ranges, track)   # sound an earlier retake split is one clip still
            if not _covers(whole, w, timeline):
                continue
            default = item.media_references().get(otio.schema.Clip.DEFAULT_MEDIA_KEY)
            if not plan.source_url or media_key(default) != plan.source_url or plan.scalar != 1 or item.effects:
                break
            rate = item.trimmed_range().start_time.rate
            media_at_start = _frames(item.trimmed_range().start_time, rate) + _frames(plan.record_range.start_time, rate) - _frames(rng.start_time, rate)
            if media_at_start == _frames(plan.source_range.start_time, rate):
                out.append(replace(plan, track_index=ti, clip_name=original_name(item), label=f"{plan.label} (linked sound)"))
            break
    return out


def _run_range(item, rng: otio.opentime.TimeRange, ranges: dict, track) -> otio.opentime.TimeRange:
    """The track range of all the pieces of `item`'s shot (just `rng` when a retake never split it)."""
    run = shot_run(item)
    if len(run) == 1:
        return rng

    def where(piece):
        return ranges[piece] if piece in ranges else piece.transformed_time_range(piece.trimmed_range(), track)
    first, last = where(run[0]), where(run[-1])
    return _TR(first.start_time, last.end_time_exclusive() - first.start_time)


def _keep_markers(piece: otio.schema.Clip, source: otio.opentime.TimeRange) -> None:
    kept = [m for m in piece.markers if source.contains(m.marked_range.start_time)]
    del piece.markers[:]
    piece.markers.extend(kept)


def splice_version(timeline: otio.schema.Timeline, plan: Plan, version: Version, *, undo: list | None = None) -> otio.schema.Clip:
    """Split the clip at the window's edges; the part inside gets the retake as its active media reference.

    Where earlier retakes split the shot into pieces, each piece the window falls on is split the same way and the
    parts inside all get the new version (beside the versions they had). All or nothing: a refusal leaves the
    timeline as it was. `undo`, when given, gets a function that takes the splice back (for a caller splicing several
    tracks as one). Returns the first part that shows the new version.
    """
    pieces = _locate_run(timeline, plan)
    before = _lengths(timeline, plan)
    done: list = []
    inside: list[otio.schema.Clip] = []
    try:
        for clip, rng in reversed(pieces):   # from the last: splitting a piece never moves the ones before it
            middle = _splice_piece(plan, version, clip, rng, done, whole=len(pieces) == 1)
            if middle is not None:
                inside.insert(0, middle)
        if not inside:
            raise SpliceError(f"{plan.label}: the window {plan.record_timecode} holds no whole frame of clip "
                              f"{plan.clip_name!r}; retake a longer part of it.")
        _check_unchanged(timeline, before, plan)
    except BaseException:
        for take_back in reversed(done):
            take_back()
        raise
    if undo is not None:
        undo.extend(done)
    return inside[0]


def _splice_piece(plan: Plan, version: Version, clip: otio.schema.Clip, rng: otio.opentime.TimeRange, done: list, *,
                  whole: bool) -> otio.schema.Clip | None:
    """Split one piece at the window's edges (clamped to it) and give the part inside the version; None when the window
    holds none of its frames (and `whole` is False: the piece only touches the window by rounding)."""
    trimmed = clip.trimmed_range()
    rate = trimmed.duration.rate
    clip_frames = _frames(trimmed.duration, rate)
    offset_f, end_f = _window_in_clip(rng, plan.record_range, rate, clip_frames)
    length_f = end_f - offset_f
    length = otio.opentime.RationalTime(length_f, rate)
    if length_f < 1:
        if not whole:
            return None
        raise SpliceError(f"{plan.label}: the window {plan.record_timecode} holds no whole frame of clip {clip.name!r}; "
                          "retake a longer part of it.")
    if version.key in clip.media_references():
        raise SpliceError(f"{clip.name!r} already has a version {version.key}; pick the next number.")
    if offset_f == 0 and length_f == clip_frames and "versions" in (clip.metadata.get(NS) or {}):
        middle = clip.clone()  # the same window was retaken before: add a version, no split
        pieces = [middle]
    else:
        offset_c = otio.opentime.RationalTime(offset_f, rate)
        end_c = otio.opentime.RationalTime(offset_f + length_f, rate)
        pieces = []
        if offset_c.value > 0:
            left = clip.clone()
            left.source_range = _TR(trimmed.start_time, offset_c)
            pieces.append(left)
        scalar = float(plan.scalar)
        middle = clip.clone()  # its media goes on from where the left piece's stops (the clip's own frames)
        middle_start = trimmed.start_time + _RT(offset_f * scalar, rate)
        middle.source_range = _TR(middle_start, length)
        pieces.append(middle)
        rest = trimmed.duration - end_c
        if rest.value > 0:
            right = clip.clone()
            right_start = middle_start + _RT(length_f * scalar, rate)
            right.source_range = _TR(right_start, rest)
            pieces.append(right)
        for piece in pieces:
            _keep_markers(piece, piece.source_range)
    refs = dict(middle.media_references())
    refs[version.key] = _version_reference(plan, version)
    middle.set_media_references(refs, version.key)
    meta = dict(middle.metadata.get(NS, {}))
    meta.setdefault("original_name", plan.clip_name)
    versions = dict(meta.get("versions", {}))
    versions[version.key] = dict(version.provenance)
    meta.update(active=version.key, versions=versions, placement="splice")
    middle.metadata[NS] = meta
    middle.name = version.name
    parent = clip.parent()
    index = _index_in(parent, clip)
    # A copy to put back on failure: OTIO may free the clip itself once it leaves its parent (a wrapper first
    # made by range_of_all_children does not keep it alive), and putting a freed clip back crashes Python.
    backup = clip.clone()
    del parent[index]
    for i, piece in enumerate(pieces):
        parent.insert(index + i, piece)
    done.append(lambda: _put_back(parent, index, len(pieces), backup))
    return middle


def _index_in(parent: otio.core.Composition, clip: otio.schema.Clip) -> int:
    """The clip's place in its parent: on a track, by halving on start times (items lie end to end) and checked;
    else, or when that misses (transitions overlap their neighbours), by going through the items."""
    if isinstance(parent, otio.schema.Track):
        try:
            start = parent.range_of_child(clip).start_time
            lo, hi = 0, len(parent)
            while lo < hi:
                mid = (lo + hi) // 2
                if parent.range_of_child_at_index(mid).start_time < start:
                    lo = mid + 1
                else:
                    hi = mid
        except otio.exceptions.OTIOError:
            lo = 0
        for i in range(max(0, lo - 2), min(len(parent), lo + 3)):  # zero-length items share a start
            if parent[i] is clip:
                return i
    return list(parent).index(clip)


def _put_back(parent: otio.core.Composition, index: int, count: int, backup: otio.schema.Clip) -> None:
    """Replace the `count` pieces a splice put at `index` by the copy of the clip they came from."""
    del parent[index:index + count]
    parent.insert(index, backup)


def place_above(timeline: otio.schema.Timeline, plan: Plan, version: Version) -> otio.schema.Clip:
    """Put the retake on the first track above that is free over the window (a new track when none is). A retake that
    changes the sound of a picture clip puts the new sound on the first free sound track above the clip's own sound
    (a new one when none is), in sync: the original tracks are untouched. All or nothing."""
    clip, rng = _locate(timeline, plan)
    before = _lengths(timeline, plan)
    source_track = timeline.tracks[plan.track_index]
    window = _inside(plan.record_range, rng)
    sound_too = carries_sound_above(timeline, plan)
    sound_from = _sound_track_above(timeline, plan) if sound_too else None
    undo: list = []
    try:
        new = _place_on_free_track(timeline, plan, version, clip, source_track.kind, plan.track_index + 1, window,
                                   RETAKE_TRACK_NAME, undo)
        if sound_too:
            _place_on_free_track(timeline, plan, version, clip, otio.schema.TrackKind.Audio, sound_from, window,
                                 RETAKE_SOUND_TRACK_NAME, undo)
        _check_unchanged(timeline, before, plan)
    except BaseException:  # all or nothing: the tracks above go back to what they were
        for take_back in reversed(undo):
            take_back()
        raise
    return new


def carries_sound_above(timeline: otio.schema.Timeline, plan: Plan) -> bool:
    """Whether a retake placed above puts new sound on a sound track too: its mode changes the sound of a picture clip
    whose media has sound."""
    return (plan.mode != RetakeMode.REPLACE_VIDEO and plan.media.has_audio
            and timeline.tracks[plan.track_index].kind == otio.schema.TrackKind.Video)


def _sound_track_above(timeline: otio.schema.Timeline, plan: Plan) -> int:
    """Where the search for a free sound track starts: above the clip's own (linked) sound, else at the first one."""
    linked = [p.track_index for p in linked_sound(timeline, plan)]
    if linked:
        return max(linked) + 1
    audio = [i for i, t in enumerate(timeline.tracks) if t.kind == otio.schema.TrackKind.Audio]
    return audio[0] if audio else len(timeline.tracks)


def _place_on_free_track(timeline: otio.schema.Timeline, plan: Plan, version: Version, clip: otio.schema.Clip, kind: str,
                         first: int, window: otio.opentime.TimeRange, name: str, undo: list) -> otio.schema.Clip:
    """Put the version on the first track of `kind` from index `first` that is free over the window, or on a new one."""
    target = None
    for i in range(first, len(timeline.tracks)):
        t = timeline.tracks[i]
        if t.kind == kind and _is_free(t, window):
            target = t
            break
    if target is None:
        target = otio.schema.Track(name=name, kind=kind)
        timeline.tracks.append(target)
        undo.append(lambda: timeline.tracks.__delitem__(len(timeline.tracks) - 1))
    else:
        kept = [item.clone() for item in target]  # copies, for the reason splice_version keeps one

        def restore(track=target, items=kept):
            del track[:]
            track.extend(items)
        undo.append(restore)
    rate = plan.source_range.duration.rate  # as long on the track as the window, whatever rate the media counts in
    new = otio.schema.Clip(name=version.name, source_range=_TR(plan.source_range.start_time, window.duration.rescaled_to(rate)))
    new.set_media_references({version.key: _version_reference(plan, version)}, version.key)
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):
            new.effects.append(copy.deepcopy(effect))
    source_track = timeline.tracks[plan.track_index]
    new.metadata[NS] = {
        "original_name": plan.clip_name,
        "version": version.number,
        "active": version.key,
        "versions": {version.key: dict(version.provenance)},
        "placement": "above",
        "source_track": source_track.name or plan.track_index,
    }
    _overwrite_gap(target, new, window)
    return new


def _inside(window: otio.opentime.TimeRange, rng: otio.opentime.TimeRange) -> otio.opentime.TimeRange:
    """The window cut to the clip's range (it can spill a hair over where the clip's rate is not the timeline's)."""
    start = max(window.start_time, rng.start_time)
    end = min(window.end_time_exclusive(), rng.end_time_exclusive())
    if start == window.start_time and end == window.end_time_exclusive():
        return window
    rate = window.start_time.rate
    return _TR(start.rescaled_to(rate), (end - start).rescaled_to(rate))


def _is_free(track: otio.schema.Track, rng: otio.opentime.TimeRange) -> bool:
    ranges = track.range_of_all_children()
    for item in track:
        r = ranges[item]
        if r.intersects(rng) and not isinstance(item, otio.schema.Gap) and r.duration.value > 0:
            return False
        if isinstance(item, otio.schema.Transition) and r.intersects(rng):
            return False
    return True


def _overwrite_gap(track: otio.schema.Track, item: otio.schema.Clip, rng: otio.opentime.TimeRange) -> None:
    """Put `item` at `rng` on a track that is empty there (gaps or past its end)."""
    rate = rng.duration.rate
    end = track.duration().rescaled_to(rate) if len(track) else _RT(0, rate)
    if end <= rng.start_time:
        if rng.start_time > end:
            track.append(otio.schema.Gap(source_range=_TR(_RT(0, rate), rng.start_time - end)))
        track.append(item)
        return
    ranges = track.range_of_all_children()
    items = list(track)
    first = next((i for i, it in enumerate(items)
                  if isinstance(it, otio.schema.Gap) and ranges[it].contains(rng.start_time)), None)
    if first is None:
        raise SpliceError(f"The track {track.name or 'above'} has no free space at the window; place the retake as a splice instead.")
    last = first  # the run of gaps the window covers (editing often leaves several in a row)
    while last + 1 < len(items) and ranges[items[last]].end_time_exclusive() < rng.end_time_exclusive():
        if not isinstance(items[last + 1], otio.schema.Gap):
            raise SpliceError(f"The track {track.name or 'above'} is not free over the whole window; place the retake as a splice instead.")
        last += 1
    head = rng.start_time - ranges[items[first]].start_time
    tail = ranges[items[last]].end_time_exclusive() - rng.end_time_exclusive()  # below zero: the track ends inside the window
    pieces = []
    if head.value > 0:
        pieces.append(otio.schema.Gap(source_range=_TR(_RT(0, rate), head.rescaled_to(rate))))
    pieces.append(item)
    if tail.value > 0:
        pieces.append(otio.schema.Gap(source_range=_TR(_RT(0, rate), tail.rescaled_to(rate))))
    del track[first:last + 1]
    for i, piece in enumerate(pieces):
        track.insert(first + i, piece)


def _lengths(timeline: otio.schema.Timeline, plan: Plan) -> tuple[otio.opentime.RationalTime, otio.opentime.RationalTime]:
    """The timeline's and the spliced track's lengths: a longer track elsewhere must not hide a change."""
    return timeline.duration(), timeline.tracks[plan.track_index].duration()


def _check_unchanged(timeline, before, plan: Plan) -> None:
    # Within a microsecond: a track mixing rates sums its pieces in floating point, a hair off the whole clip's.
    for was, now, what in zip(before, _lengths(timeline, plan), ("the timeline's", f"track {track_label(timeline, plan.track_index)}'s")):
        if abs(now.to_seconds() - was.to_seconds()) > 1e-6:
            raise SpliceError(
                f"Splicing {plan.label} would change {what} length from {was.to_seconds():.3f} s to "
                f"{now.to_seconds():.3f} s; nothing was saved. Please report this with the timeline."
            )


def describe_landing(timeline: otio.schema.Timeline, plan: Plan, placement: str) -> str:
    """One sentence saying where the result will land, for the user before anything is sent."""
    where = f"{plan.record_timecode} on {track_label(timeline, plan.track_index)}"
    if placement == "above":
        said = f"The retake of {plan.clip_name!r} will go on the first free track above, at {where}; the original track is untouched."
        if carries_sound_above(timeline, plan):
            said += (" Its new sound goes on the first free sound track above the clip's own sound, in sync; the "
                     "original sound still plays under it there, so mute it to hear only the retake.")
        elif plan.mode != RetakeMode.REPLACE_VIDEO and timeline.tracks[plan.track_index].kind == otio.schema.TrackKind.Video:
            said += " The source has no sound, so no sound track is added."
        return said
    return (f"The retake of {plan.clip_name!r} will replace {where} as a new version (the original stays one call away); "
            "neighbours do not move.")
