"""Selections: which clip and which record range on a track, picked by clip, by range or by markers."""

from __future__ import annotations

import re

from dataclasses import dataclass
from fractions import Fraction

import opentimelineio as otio

from .errors import SelectionError, UnsupportedEditError
from .metadata import has_versions, media_key, original_name, original_reference
from .timing import exact_rate, format_timecode, parse_timecode

__all__ = [
    "Selection",
    "timeline_rate",
    "find_track",
    "select_clip",
    "select_clips",
    "select_range",
    "select_markers",
    "clip_at",
    "selections_in",
    "clips_on_track",
    "visible_range",
    "clip_showing",
    "shown_span",
    "require_lengths",
    "track_label",
    "native_rate",
    "record_timecode",
    "shot_run",
    "same_shot",
    "select_frames",
    "select_clip_object",
    "item_path",
    "item_at",
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
    notes: tuple[str, ...] = ()            # what the user should be told about how it was chosen


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's rate: its global start's, else its first track's, else its first clip's."""
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    for track in timeline.tracks:
        rate = _first_rate(track)
        if rate is not None:
            return exact_rate(rate)
    raise SelectionError(f"The timeline {timeline.name!r} has no clips with a rate; there is nothing to retake.")


def native_rate(timeline: otio.schema.Timeline, ti: int | None = None) -> float:
    """The rate as the file writes it (23.976, 29.97, 23.976023976 ...), for building times.

    Times built at the exact rate (24000/1001) miss the file's own by a hair at every cut (23.976 is not
    24000/1001), so `contains` and `intersects` fail on the boundaries: build at the file's rate instead.
    """
    tracks = [timeline.tracks[ti]] if ti is not None else list(timeline.tracks)
    for track in tracks:
        rate = _first_rate(track)
        if rate is not None:
            return rate
    g = timeline.global_start_time
    return g.rate if g is not None else float(timeline_rate(timeline))


def _first_rate(track: otio.schema.Track) -> float | None:
    """The rate of the first item on the track that has a source range (inside nests too); transitions have none."""
    for item in track:
        if isinstance(item, otio.schema.Transition):
            continue
        if item.source_range is not None:
            return item.source_range.duration.rate
        if isinstance(item, otio.core.Composition):
            for clip in item.find_clips():
                if clip.source_range is not None:
                    return clip.source_range.duration.rate
    return None


def _global_start_frames(timeline: otio.schema.Timeline, rate: Fraction) -> int:
    g = timeline.global_start_time
    return 0 if g is None else round(g.rescaled_to(float(rate)).value)


def record_timecode(timeline: otio.schema.Timeline, t: otio.opentime.RationalTime) -> str:
    """A track time as the record timecode an editor sees (global start added)."""
    rate = timeline_rate(timeline)
    return format_timecode(_global_start_frames(timeline, rate) + round(t.rescaled_to(float(rate)).value), rate)


def require_lengths(timeline: otio.schema.Timeline, track_index: int | None = None, error: type[Exception] = SelectionError) -> None:
    """Refuse a clip OTIO cannot give a length: no source range, and media without an available range."""
    tracks = list(timeline.tracks) if track_index is None else [timeline.tracks[track_index]]
    for track in tracks:
        for clip in track.find_clips():
            if clip.source_range is not None:
                continue
            try:
                clip.available_range()
            except otio.exceptions.OTIOError:
                raise error(
                    f"Clip {clip.name!r} on track {track.name or track.kind} has no length: it has no source range and its "
                    "media has no available range. Export the timeline again with the media online, or trim the clip."
                ) from None


def find_track(timeline: otio.schema.Timeline, track: str | int | None, kind: str = otio.schema.TrackKind.Video) -> int:
    """A track by position (`V1`, `A2` as NLEs number them; a bare number among tracks of `kind`) or by name
    (`name:TEXT` forces the name); default V1. Where a name and a position both fit different tracks, refused."""
    tracks = list(timeline.tracks)
    of_kind = [i for i, t in enumerate(tracks) if t.kind == kind]
    if track is None:
        if not of_kind:
            raise SelectionError(f"The timeline has no {kind.lower()} track.")
        return of_kind[0]
    text = str(track).strip()
    labelled = re.match(r"^([VA]\d+) \('.*'\)$", text) or re.match(r'^([VA]\d+) \(".*"\)$', text)
    if labelled:  # what track_label writes for a named track: "V2 ('Video 2')"
        text = labelled.group(1)
    everything = ", ".join(track_label(timeline, i) for i in range(len(tracks)))
    if text.lower().startswith("name:"):
        wanted = text[5:].strip()
        named = [i for i, t in enumerate(tracks) if t.name == wanted]
        if len(named) == 1:
            return named[0]
        many = f"{len(named)} tracks are named {wanted!r}" if named else f"No track is named {wanted!r}"
        raise SelectionError(f"{many}; pick one by position (V1, A2). The timeline has: {everything}.")
    named = [] if labelled else [i for i, t in enumerate(tracks) if t.name == text]   # a label is a position
    placed = None
    label = text.upper()
    if label[:1] in ("V", "A") and label[1:].isdigit():
        pool = [i for i, t in enumerate(tracks) if t.kind == (otio.schema.TrackKind.Video if label[0] == "V" else otio.schema.TrackKind.Audio)]
        n = int(label[1:])
        if 1 <= n <= len(pool):
            placed = pool[n - 1]
    elif text.isdigit() and 1 <= int(text) <= len(of_kind):
        placed = of_kind[int(text) - 1]
    if placed is not None and named and named != [placed]:
        where = " and ".join(track_label(timeline, i) for i in named)
        raise SelectionError(
            f"--track {text} is ambiguous: by position it is {track_label(timeline, placed)}, but {where} "
            f"{'is' if len(named) == 1 else 'are'} named {text!r}. Write the position as V1/A2, or the name as name:{text}."
        )
    if placed is not None:
        return placed
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise SelectionError(f"{len(named)} tracks are named {text!r}; pick one by position (V1, A2). The timeline has: {everything}.")
    raise SelectionError(f"No track {text!r}; the timeline has: {everything}.")


def track_label(timeline: otio.schema.Timeline, index: int) -> str:
    """A track as an NLE labels it (V1, A2), with its name when it has another one."""
    tracks = list(timeline.tracks)
    t = tracks[index]
    n = sum(1 for x in tracks[: index + 1] if x.kind == t.kind)
    label = f"{'V' if t.kind == otio.schema.TrackKind.Video else 'A'}{n}"
    return label + (f" ({t.name!r})" if t.name and t.name != label else "")


def _speed(clip: otio.schema.Clip) -> tuple:
    return tuple((type(e).__name__, getattr(e, "time_scalar", None)) for e in clip.effects)


def same_shot(a, b) -> bool:
    """Whether clip `b` plays on from clip `a` as pieces a retake split out of one clip: one of them carries versions,
    both the same original clip and media at the same speed, `b`'s source starting where `a`'s ends. (Two clips an
    editor cut apart themselves, a through edit, stay two clips.)"""
    if not (isinstance(a, otio.schema.Clip) and isinstance(b, otio.schema.Clip)) or a.enabled != b.enabled:
        return False
    if not (has_versions(a) or has_versions(b)):
        return False
    if original_name(a) != original_name(b) or _speed(a) != _speed(b) or \
            media_key(original_reference(a)) != media_key(original_reference(b)):
        return False
    ra, rb = a.source_range, b.source_range
    if ra is None or rb is None:
        return False
    end, start = ra.end_time_exclusive(), rb.start_time
    return abs(end.to_seconds() - start.to_seconds()) < 0.5 / max(end.rate, 1)


def shot_run(clip: otio.schema.Clip) -> list[otio.schema.Clip]:
    """The pieces of one shot `clip` belongs to (neighbours in its parent that `same_shot` joins), in order."""
    parent = clip.parent()
    if parent is None:
        return [clip]
    items = list(parent)
    i = next(k for k, it in enumerate(items) if it is clip)
    a = b = i
    while a > 0 and same_shot(items[a - 1], items[a]):
        a -= 1
    while b + 1 < len(items) and same_shot(items[b], items[b + 1]):
        b += 1
    return items[a:b + 1]


def clips_on_track(track: otio.schema.Track) -> list[tuple[otio.schema.Clip, otio.opentime.TimeRange]]:
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


def visible_range(clip: otio.schema.Clip, track: otio.schema.Track) -> otio.opentime.TimeRange | None:
    """The part of a clip that shows, in the track's time: a nest's trims hide the rest (None when nothing shows).

    `transformed_time_range` maps a nested clip's whole range out of its nests without clipping it to their
    trims, so a clip a nest has trimmed away would seem to sit where nothing of it shows.
    """
    rng = clip.range_in_parent()
    node = clip.parent()
    while node is not None and node is not track:
        trimmed = node.trimmed_range()
        start = max(rng.start_time, trimmed.start_time)
        end = min(rng.end_time_exclusive(), trimmed.end_time_exclusive())
        if end <= start:
            return None
        rng = node.transformed_time_range(_TR(start, end - start), node.parent())
        node = node.parent()
    if node is None or rng.duration.value <= 0:
        return None
    return rng


def select_clip(timeline: otio.schema.Timeline, clip: str, track: str | int | None = None) -> Selection:
    """The whole of one clip: by name, or by `#N` (the N-th clip on the track, counting from 1)."""
    return select_clips(timeline, (clip,), track)[0]


def select_clips(timeline: otio.schema.Timeline, clips: tuple[str, ...] | list[str], track: str | int | None = None) -> list[Selection]:
    """`select_clip` of every name (or #N) in turn, with the track looked at once for all of them: on a long
    timeline, a scan of every clip per name made many names cost names x clips."""
    if not clips:
        return []
    ti = find_track(timeline, track)
    require_lengths(timeline, ti)
    track_obj = timeline.tracks[ti]
    on_track = clips_on_track(track_obj)
    named: dict[str, list] = {}
    first_of_run: set[int] = set()   # a shot split into pieces by retakes is one clip: found once, by any of its names
    for c, r in on_track:
        run = shot_run(c)
        if run[0] is c:
            first_of_run.add(id(c))
        for name in {c.name, original_name(c)}:
            named.setdefault(name, []).append((run[0], r))
    for name, found in named.items():
        seen, kept = set(), []
        for c, r in found:
            if id(c) not in seen:
                seen.add(id(c))
                kept.append((c, r))
        named[name] = kept
    ranges = track_obj.range_of_all_children()
    return [_select_one(timeline, ti, track_obj, on_track, named, ranges, text.strip()) for text in clips]


def _select_one(timeline, ti: int, track_obj, clips: list, named: dict, ranges: dict, text: str) -> Selection:
    if text.startswith("#") and text[1:].isdigit():
        n = int(text[1:])
        if not 1 <= n <= len(clips):
            raise SelectionError(f"Track {track_label(timeline, ti)} has {len(clips)} clips; #{n} does not exist.")
        found = [clips[n - 1]]
    else:
        found = named.get(text, [])
        if not found:
            others = [c.name for c, _ in clips][:12]
            hint = f" Clips there: {', '.join(repr(n) for n in others)}{' ...' if len(clips) > 12 else ''}." if others else ""
            raise SelectionError(f"No clip named {text!r} on track {track_label(timeline, ti)}.{hint}")
        if len(found) > 1:
            places = ", ".join(record_timecode(timeline, r.start_time) for _, r in found)
            raise SelectionError(
                f"{len(found)} clips are named {text!r} on track {track_label(timeline, ti)} (at {places}); "
                "pick one with --range or with #N."
            )
    return _selection_of(timeline, ti, track_obj, found[0][0], ranges)


def select_clip_object(timeline: otio.schema.Timeline, ti: int, clip: otio.schema.Clip) -> Selection:
    """The whole of `clip`, an item of track `ti` of this very timeline (a face's pick), as a selection."""
    track_obj = timeline.tracks[ti]
    node = clip.parent()
    while node is not None and node is not track_obj:
        node = node.parent()
    if node is None:
        raise SelectionError(f"{clip.name!r} is not on track {track_label(timeline, ti)} of this timeline; select it again.")
    require_lengths(timeline, ti)
    return _selection_of(timeline, ti, track_obj, clip, track_obj.range_of_all_children())


def _selection_of(timeline, ti: int, track_obj, c: otio.schema.Clip, ranges: dict) -> Selection:
    """The whole of clip `c` (and the pieces earlier retakes split out of it) where it shows, clear of dissolves."""
    run = shot_run(c)
    c = run[0]
    label = f"{original_name(c)} on {track_label(timeline, ti)}"
    shown = _run_visible(run, track_obj)
    if shown is None:
        raise SelectionError(f"{label} is trimmed out of its nest: none of it shows on the timeline. Pick a clip that shows.")
    r = shown
    clear = _clear_of_transitions(track_obj, r)
    if clear is None:
        raise UnsupportedEditError(f"{label} lies wholly under transitions; there is no clean part of it to retake.")
    hidden = not c.enabled or not track_obj.enabled  # a disabled clip, or any on a disabled track, shows nothing
    if hidden or any(not any(item is piece for piece in run) for item, _ in _visible(track_obj, clear, ranges)):
        why = ("it is disabled" if not c.enabled else "its track is disabled" if not track_obj.enabled
               else "a clip on a layer above covers it")
        fix = "enable it in the NLE and export again" if why != "a clip on a layer above covers it" else "change the nest in the NLE"
        raise SelectionError(
            f"{label} does not show over {_span(timeline, clear)}: {why}. Retake the clip that shows there "
            f"(select it with --range), or {fix}."
        )
    notes = ()
    if clear != r:
        notes = (f"the clip's dissolves were left out: the retake covers {_span(timeline, clear)} of {_span(timeline, r)}",)
    return Selection(ti, c, clear, label=label, track_kind=track_obj.kind, notes=notes)


def _run_visible(run: list[otio.schema.Clip], track) -> otio.opentime.TimeRange | None:
    """The stretch of track time the pieces of one shot show over (None when none of it shows)."""
    spans = [r for r in (visible_range(piece, track) for piece in run) if r is not None]
    if not spans:
        return None
    start = min(r.start_time for r in spans)
    return _TR(start, max(r.end_time_exclusive() for r in spans) - start)


def _parse_point(text: str, timeline: otio.schema.Timeline, rate: Fraction) -> int:
    """A record point: timecode (with the timeline's start) or a bare frame count from the timeline's start."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return parse_timecode(text, rate) - _global_start_frames(timeline, rate)


def select_range(timeline: otio.schema.Timeline, start: str, end: str, track: str | int | None = None,
                 *, per_clip: bool = False) -> list[Selection]:
    """A record range [start, end) on a track, as typed (timecode, or frames from the timeline's start). A range across
    a cut needs `per_clip` (one job per clip)."""
    rate = timeline_rate(timeline)
    a, b = _parse_point(start, timeline, rate), _parse_point(end, timeline, rate)
    if b <= a:
        raise SelectionError(f"The range {start} - {end} is empty or backwards; the out point is exclusive and must come after the in point.")
    return select_frames(timeline, find_track(timeline, track), a, b, per_clip=per_clip)


def select_frames(timeline: otio.schema.Timeline, ti: int, a: int, b: int, *, per_clip: bool = False) -> list[Selection]:
    """Record frames [a, b) from the timeline's start on track `ti` (a face's marks)."""
    rate = timeline_rate(timeline)
    if b <= a:
        raise SelectionError("The range is empty or backwards; mark an out point after the in point.")
    require_lengths(timeline, ti)
    native = native_rate(timeline, ti)
    if exact_rate(native) == rate:
        rng = _TR(_RT(a, native), _RT(b - a, native))
    else:  # a track at another rate than the timeline's (mixed-rate files): convert through seconds
        rng = _TR(_RT(a, float(rate)).rescaled_to(native), _RT(b - a, float(rate)).rescaled_to(native))
    return selections_in(timeline, ti, rng, per_clip=per_clip)


def selections_in(timeline, ti: int, rng: otio.opentime.TimeRange, *, per_clip: bool, prompt: str | None = None,
                  label: str | None = None) -> list[Selection]:
    """What shows on track `ti` over `rng`: one selection, or one per clip with `per_clip` (refused otherwise)."""
    track = timeline.tracks[ti]
    end = track.duration() if len(track) else _RT(0, rng.start_time.rate)
    if rng.start_time < _RT(0, rng.start_time.rate) or rng.end_time_exclusive() > end:
        raise SelectionError(
            f"The range {_span(timeline, rng)} lies outside track {track_label(timeline, ti)}, "
            f"which runs {_span(timeline, _TR(_RT(0, end.rate), end))}."
        )
    _refuse_transitions(timeline, track, rng)
    out: list[Selection] = []
    for item, part in _visible(track, rng):
        if item is not None and (not item.enabled or not track.enabled):
            item = None  # a disabled clip, or any on a disabled track, shows nothing
        if item is None:
            raise SelectionError(f"The range {_span(timeline, rng)} includes a gap or a disabled clip at {_span(timeline, part)}; "
                                 "nothing shows there to retake.")
        if out and (out[-1].clip is item or any(piece is item for piece in shot_run(out[-1].clip))):
            joined = _TR(out[-1].record_range.start_time, part.end_time_exclusive() - out[-1].record_range.start_time)
            out[-1] = Selection(ti, out[-1].clip, joined, prompt, out[-1].label, track.kind)
            continue
        out.append(Selection(ti, item, part, prompt, label or f"{original_name(item)} on {track_label(timeline, ti)}",
                             track.kind))
    if not out:
        raise SelectionError(f"Nothing on track {track_label(timeline, ti)} at {_span(timeline, rng)}.")
    if len(out) > 1 and not per_clip:
        names = ", ".join(f"{s.clip.name!r} ({_span(timeline, s.record_range)})" for s in out)
        raise SelectionError(
            f"The range {_span(timeline, rng)} crosses a cut: it covers {names}. A retake regenerates one shot; "
            "narrow the range to one clip, or pass --per-clip for one job per clip."
        )
    return out


def _transition_spans(track: otio.schema.Track) -> list[tuple[otio.schema.Transition, otio.opentime.TimeRange]]:
    """Every transition on or inside the track with the record range it covers."""
    out = []
    for t in track.find_children(descended_from_type=otio.schema.Transition):
        parent = t.parent()
        covered = parent.range_of_child(t)  # OTIO gives a transition the range it covers: cut - in .. cut + out
        if parent is not track:
            covered = parent.transformed_time_range(covered, track)
        if covered.duration.value > 0:
            out.append((t, covered))
    return out


def _clear_of_transitions(track, r: otio.opentime.TimeRange) -> otio.opentime.TimeRange | None:
    """The longest part of `r` that no transition covers (None when nothing is left)."""
    pieces = [r]
    for _, covered in _transition_spans(track):
        nxt = []
        for p in pieces:
            if not covered.intersects(p):
                nxt.append(p)
                continue
            if covered.start_time > p.start_time:
                nxt.append(_TR(p.start_time, covered.start_time - p.start_time))
            if covered.end_time_exclusive() < p.end_time_exclusive():
                nxt.append(_TR(covered.end_time_exclusive(), p.end_time_exclusive() - covered.end_time_exclusive()))
        pieces = nxt
    return max(pieces, key=lambda p: p.duration.to_seconds()) if pieces else None


def _refuse_transitions(timeline, track: otio.schema.Track, rng: otio.opentime.TimeRange) -> None:
    for t, covered in _transition_spans(track):
        if covered.intersects(rng):
            raise UnsupportedEditError(
                f"The range {_span(timeline, rng)} touches the transition {t.name or t.transition_type!r} "
                f"at {_span(timeline, covered)}; pick a range clear of it (retaking inside a dissolve would mix two shots)."
            )


def _visible(track: otio.schema.Track, rng: otio.opentime.TimeRange,
             ranges: dict | None = None) -> list[tuple[otio.schema.Clip | None, otio.opentime.TimeRange]]:
    """The clips that show over `rng` in time order (None for gaps). In a nested stack the top layer shows.
    `ranges` is the track's `range_of_all_children()`, when the caller has it already."""
    pieces: list[tuple[otio.schema.Clip | None, otio.opentime.TimeRange]] = []
    ranges = track.range_of_all_children() if ranges is None else ranges
    over = [(item, r) for item, r in ranges.items()  # only the items over `rng`, not a Python step per item of the track
            if r.intersects(rng) and r.duration.value > 0 and not isinstance(item, otio.schema.Transition)]
    if isinstance(track, otio.schema.Track):  # its items lie end to end: by start time is track order
        over.sort(key=lambda ir: ir[1].start_time)
    else:
        order = {id(item): i for i, item in enumerate(track)}
        over.sort(key=lambda ir: order[id(ir[0])])
    for item, r in over:
        part = _intersection(r, rng)
        if isinstance(item, otio.schema.Clip):
            pieces.append((item, part))
        elif isinstance(item, otio.core.Composition):
            pieces.extend(_visible_in_composition(item, track, part))
        else:
            pieces.append((None, part))
    return pieces


def clip_showing(track: otio.schema.Track, rng: otio.opentime.TimeRange, ranges: dict | None = None) -> otio.schema.Clip | None:
    """The clip that shows over the middle of `rng` (in a nest, its top enabled layer); None over a gap.
    `ranges` is the track's `range_of_all_children()`, when the caller has it already."""
    mid = rng.start_time + _RT(rng.duration.value / 2, rng.duration.rate)
    pieces = [(item, part) for item, part in _visible(track, rng, ranges) if item is not None]
    for item, part in pieces:
        if part.start_time <= mid < part.end_time_exclusive():
            return item
    return max(pieces, key=lambda ip: ip[1].duration.to_seconds())[0] if pieces else None


def shown_span(track: otio.schema.Track, clip: otio.schema.Clip, around: otio.opentime.TimeRange,
               ranges: dict | None = None) -> otio.opentime.TimeRange | None:
    """The stretch of track time around `around` over which `clip` is what shows: within the nests' trims and
    not under a layer above (None when it does not show there). `ranges`: the track's range_of_all_children()."""
    whole = visible_range(clip, track)
    if whole is None:
        return None
    mid = around.start_time + _RT(around.duration.value / 2, around.duration.rate)
    run: list[otio.opentime.TimeRange] = []
    for item, part in _visible(track, whole, ranges):
        if item is not clip:
            if run and run[-1].end_time_exclusive() > mid:
                break
            run = []
            continue
        run.append(part)
    if not run or not (run[0].start_time <= mid < run[-1].end_time_exclusive()):
        return None
    return _TR(run[0].start_time, run[-1].end_time_exclusive() - run[0].start_time)


def _visible_in_composition(comp, top: otio.schema.Track, part) -> list:
    layered = []  # (layer, clip, range in top time); later layers of a stack sit on top
    for clip in comp.find_clips():
        r = visible_range(clip, top)
        if r is not None and r.intersects(part) and clip.enabled:
            layer, node = 0, clip
            while node.parent() is not comp and node.parent() is not None:
                node = node.parent()
            if isinstance(comp, otio.schema.Stack):
                layer = list(comp).index(node)
            layered.append((layer, clip, _intersection(r, part)))
    cuts = sorted({part.start_time.to_seconds(), part.end_time_exclusive().to_seconds()}
                  | {x for _, _, r in layered for x in (r.start_time.to_seconds(), r.end_time_exclusive().to_seconds())})
    rate = part.start_time.rate
    out: list = []
    for a, b in zip(cuts, cuts[1:]):
        mid = _RT.from_seconds((a + b) / 2, rate)
        showing = [(layer, clip) for layer, clip, r in layered if r.contains(mid)]
        clip = max(showing, key=lambda lc: lc[0])[1] if showing else None
        seg = _TR(_RT.from_seconds(a, rate).round(), _RT.from_seconds(b, rate).round() - _RT.from_seconds(a, rate).round())
        if seg.duration.value <= 0:
            continue
        if out and out[-1][0] is clip:
            prev = out[-1][1]
            out[-1] = (clip, _TR(prev.start_time, seg.end_time_exclusive() - prev.start_time))
        else:
            out.append((clip, seg))
    return out


def _intersection(a: otio.opentime.TimeRange, b: otio.opentime.TimeRange) -> otio.opentime.TimeRange:
    start = max(a.start_time, b.start_time)
    return _TR(start, min(a.end_time_exclusive(), b.end_time_exclusive()) - start)


def _span(timeline, rng: otio.opentime.TimeRange) -> str:
    return f"{record_timecode(timeline, rng.start_time)}-{record_timecode(timeline, rng.end_time_exclusive())}"


def select_markers(timeline: otio.schema.Timeline, track: str | int | None = None) -> list[Selection]:
    """Batch mode: every marker (on the timeline, the track or its clips) is a selection; its name or comment the prompt."""
    ti = find_track(timeline, track)
    require_lengths(timeline, ti)
    trk = timeline.tracks[ti]
    found: list[tuple[otio.schema.Marker, otio.opentime.TimeRange]] = []
    for m in timeline.tracks.markers:
        found.append((m, m.marked_range))
    for m in trk.markers:
        found.append((m, m.marked_range))
    hidden = 0
    for clip, _ in clips_on_track(trk):
        shown = visible_range(clip, trk)
        for m in clip.markers:
            at = clip.transformed_time_range(m.marked_range, trk)
            if not _shows(clip.trimmed_range(), m.marked_range.start_time) or shown is None or not _shows(shown, at.start_time):
                hidden += 1  # outside the clip's used range (or trimmed out of its nest): not on the timeline as the editor sees it
                continue
            found.append((m, at))
    if not found:
        extra = f" ({hidden} clip markers lie outside their clips' used ranges and do not show)" if hidden else ""
        raise SelectionError(f"Track {track_label(timeline, ti)} and the timeline have no markers{extra}; add markers or use --clip / --range.")
    out = []
    native = native_rate(timeline, ti)
    for marker, rng in sorted(found, key=lambda mr: mr[1].start_time.value / mr[1].start_time.rate):
        prompt = (marker.comment or "").strip() or (marker.name or "").strip()
        if not prompt:
            raise SelectionError(f"The marker at {record_timecode(timeline, rng.start_time)} has no name or comment to use as the prompt.")
        if rng.duration.value <= 0:
            rng = _TR(rng.start_time, _RT(1, rng.start_time.rate))
        rng = _TR(rng.start_time.rescaled_to(native), rng.duration.rescaled_to(native))
        label = f"marker {marker.name or prompt[:20]!r} at {record_timecode(timeline, rng.start_time)}"
        out.extend(selections_in(timeline, ti, rng, per_clip=False, prompt=prompt, label=label))
    return out


def _shows(rng: otio.opentime.TimeRange, t: otio.opentime.RationalTime) -> bool:
    return rng.start_time <= t < rng.end_time_exclusive()


def clip_at(timeline: otio.schema.Timeline, ti: int, t: otio.opentime.RationalTime) -> tuple[otio.schema.Clip, otio.opentime.TimeRange] | None:
    """The clip (nested ones included) that shows at track time `t` on track `ti`, with its track range."""
    track = timeline.tracks[ti]
    for clip, r in clips_on_track(track):
        shown = visible_range(clip, track)
        if shown is not None and shown.contains(t):
            return clip, r
    return None



def item_path(timeline: otio.schema.Timeline, item) -> tuple[int, ...]:
    """Where an item sits: its track's index, then its index in each composition down to it (to find it in a copy)."""
    path = []
    node = item
    while node.parent() is not None:
        parent = node.parent()
        path.append(next(i for i, child in enumerate(parent) if child is node))
        node = parent
    if node is not timeline.tracks:
        raise SelectionError(f"{getattr(item, 'name', 'The item')!r} is not on this timeline; select it again.")
    return tuple(reversed(path))


def item_at(timeline: otio.schema.Timeline, path: tuple[int, ...]):
    """The item at `path` (see item_path) in this timeline, e.g. a copy of the one the path was taken on."""
    node = timeline.tracks
    for i in path:
        node = node[i]
    return node
