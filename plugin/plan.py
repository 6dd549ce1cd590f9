"""Planning: a selection becomes a source window, an input cut with context handles, and the API window."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from .errors import PlanError, SelectionError, UnsupportedEditError
from .limits import DEFAULT_CONTEXT_S, WORKING_SIZE, Limits, largest_input_frames
from .metadata import media_key, original_name, original_reference, version_keys
from .ports import CutSpec, MediaInfo, RetakeMode
from .relink import Relinker
from .selection import Selection, record_timecode, shot_run, shown_span, timeline_rate, visible_range
from .timing import ClipClock, exact_rate, format_timecode, rate_text, to_frames

__all__ = ["SourceClip", "Plan", "media_path_of", "source_clip", "plan_retake", "time_scalar", "timecode_at",
           "constant_rate_view",
           "working_size"]


_TR = otio.opentime.TimeRange
_RT = otio.opentime.RationalTime


def media_path_of(ref: otio.core.MediaReference, base_dir: Path | None) -> Path:
    """A media reference's file as written: absolute paths, file:// URLs, paths relative to the timeline's folder.
    Another system's absolute path (a Windows drive on Linux) is kept as written, never put under `base_dir`;
    `relink.Relinker` finds where such a file is here."""
    if isinstance(ref, otio.schema.MissingReference) or ref is None:
        raise SelectionError("The clip's media is offline (a missing reference); relink it (--media-search DIR, "
                             "--map-path FROM=TO) or in the NLE, and export again.")
    relinker = Relinker(base_dir)
    try:
        written = relinker.written(ref)
    except (SelectionError, UnsupportedEditError) as exc:
        raise type(exc)(f"The clip {exc}") from None
    if not written:
        raise SelectionError("The clip's media reference has no file path; relink the clip.")
    here = relinker.as_written(written)
    return here if here is not None else Path(written)


def time_scalar(clip: otio.schema.Clip) -> Fraction:
    """The speed the clip plays its media at: 1, a LinearTimeWarp's scalar, or a refusal for what we cannot map."""
    scalar = Fraction(1)
    for effect in clip.effects:
        if isinstance(effect, otio.schema.FreezeFrame) or (isinstance(effect, otio.schema.LinearTimeWarp) and effect.time_scalar == 0):
            raise UnsupportedEditError(
                f"Clip {clip.name!r} is a freeze frame: it shows one frame of media. Retake the source clip without the freeze instead."
            )
        if isinstance(effect, otio.schema.LinearTimeWarp):
            if effect.time_scalar < 0:
                raise UnsupportedEditError(f"Clip {clip.name!r} plays in reverse ({effect.time_scalar:g}x); reverse clips are not supported: retake the forward clip.")
            scalar *= Fraction(effect.time_scalar).limit_denominator(100000)
        elif isinstance(effect, otio.schema.TimeEffect):
            raise UnsupportedEditError(
                f"Clip {clip.name!r} has a time effect {effect.effect_name or effect.schema_name()!r} whose speed curve cannot be read; "
                "render it to a new clip, or remove the effect, then retake."
            )
    parent = clip.parent()
    while parent is not None:
        if any(isinstance(e, otio.schema.TimeEffect) for e in getattr(parent, "effects", [])):
            raise UnsupportedEditError(f"Clip {clip.name!r} sits inside a retimed nest; retake it in the nested sequence instead.")
        parent = parent.parent()
    return scalar


@dataclass(frozen=True)
class SourceClip:
    """A selection traced to its media: the file, the clip's own source range, and the speed."""

    selection: Selection
    media_path: Path
    scalar: Fraction                        # media time per record time (LinearTimeWarp)
    clip_range: otio.opentime.TimeRange     # the clip's source_range (media in-point, record duration)
    clip_record: otio.opentime.TimeRange    # where the whole clip sits in the top-level track
    record_rate: Fraction
    shown_record: otio.opentime.TimeRange | None = None  # the part a nest's trims let show (None: all of clip_record)


def source_clip(timeline: otio.schema.Timeline, sel: Selection, base_dir: Path | None, *,
                track_ranges: dict | None = None, media: Path | None = None) -> SourceClip:
    """Trace a selection to its media file (no I/O: the file is probed by the caller). `media` is where the caller
    found the file (a `Relinker`'s answer); without it, the path the reference names.

    `track_ranges`, a dict the caller keeps while the timeline is not edited, holds each track's ranges of its items
    once for many selections (on a long timeline, working them out per selection was most of planning's time).
    """
    clip = sel.clip
    track = timeline.tracks[sel.track_index] if 0 <= sel.track_index < len(timeline.tracks) else None
    node = clip.parent()
    while node is not None and node is not track:
        node = node.parent()
    if track is None or node is None:  # OTIO crashes the interpreter when asked to map time to a track that is not an ancestor
        raise SelectionError(
            f"{sel.label or repr(clip.name)}: the selection was made on another timeline (or on this one before it was edited); "
            "select again on the current timeline."
        )
    path = media if media is not None else media_path_of(original_reference(clip), base_dir)
    scalar = time_scalar(clip)
    run = shot_run(clip)   # pieces earlier retakes split out of this clip: one shot, retaken from its original media
    first, last = run[0], run[-1]
    clip_range = _TR(first.trimmed_range().start_time,
                     last.trimmed_range().end_time_exclusive() - first.trimmed_range().start_time)
    clip_record = first.transformed_time_range(first.trimmed_range(), track)
    if last is not first:
        end = last.transformed_time_range(last.trimmed_range(), track).end_time_exclusive()
        clip_record = _TR(clip_record.start_time, end - clip_record.start_time)
    ranges = None
    if track_ranges is not None:
        ranges = track_ranges.get(sel.track_index)
        if ranges is None:
            ranges = track_ranges[sel.track_index] = track.range_of_all_children()
    shown = _shown_run(track, run, sel.record_range, ranges)
    if shown is None:
        raise SelectionError(f"{sel.label}: the clip does not show there (a nest trims it away, or a layer above covers it); "
                             "select what shows on the timeline.")
    return SourceClip(sel, path, scalar, clip_range, clip_record, timeline_rate(timeline), shown)


def _shown_run(track, run: list, around: otio.opentime.TimeRange, ranges: dict | None) -> otio.opentime.TimeRange | None:
    """Where the shot shows around `around`: each piece's own stretch, joined where they meet."""
    if len(run) == 1:
        return shown_span(track, run[0], around, ranges)
    spans = []
    for piece in run:
        whole = visible_range(piece, track)
        part = shown_span(track, piece, whole, ranges) if whole is not None else None
        if part is not None:
            spans.append(part)
    mid = around.start_time + _RT(around.duration.value / 2, around.duration.rate)
    joined: list = []
    for span in sorted(spans, key=lambda r: r.start_time.to_seconds()):
        if joined and abs(joined[-1].end_time_exclusive().to_seconds() - span.start_time.to_seconds()) < 1e-6:
            joined[-1] = _TR(joined[-1].start_time, span.end_time_exclusive() - joined[-1].start_time)
        else:
            joined.append(span)
    for span in joined:
        if span.start_time <= mid < span.end_time_exclusive():
            return span
    return None


@dataclass(frozen=True)
class Plan:
    """Everything a job needs to know before any upload or spend. Pure data; built by `plan_retake`."""

    label: str
    clip_name: str
    track_index: int
    prompt: str
    mode: RetakeMode
    provider: str
    model: str
    media: MediaInfo
    record_range: otio.opentime.TimeRange   # what gets replaced on the track (track time)
    source_range: otio.opentime.TimeRange   # the replaced part as the clip's source range (media in-point, record duration)
    version_range: otio.opentime.TimeRange  # the version file's available range, in the clip's source time
    window_start_frame: int                 # file frames regenerated: [start, start + frames)
    window_frames: int
    cut: CutSpec
    window_offset: int                      # frames into the cut (padding included)
    start_time: float                       # API window, seconds
    duration: float
    scalar: Fraction = Fraction(1)
    notes: tuple[str, ...] = field(default=())
    estimate_usd: float | None = None
    price_basis: str = ""
    record_timecode: str = ""
    source_url: str = ""                    # the clip's media reference as the timeline writes it
    context: tuple[int, int] = (0, 0)       # file frames of context sent before and after the window

    @property
    def input_seconds(self) -> float:
        return float(Fraction(self.cut.total_frames) / self.media.frame_rate)

    def summary(self) -> str:
        rate = self.media.frame_rate
        before, after = (float(Fraction(n) / rate) for n in self.context)
        cost = f", estimated ${self.estimate_usd:.2f}" if self.estimate_usd is not None else ""
        return (
            f"{self.label}: retake {self.record_timecode} ({self.window_frames} frames, {self.duration:.3f} s) "
            f"from {Path(self.media.path).name} frames {self.window_start_frame}-{self.window_start_frame + self.window_frames - 1}; "
            f"context {before:.2f} s before and {after:.2f} s after; input cut {self.cut.total_frames} frames "
            f"({self.input_seconds:.2f} s at {rate_text(rate)} fps){cost}, window at {self.start_time:.3f} s"
        )


def _origin_frames(ref, info: MediaInfo, clip_range, rate: Fraction) -> Fraction:
    """The source time (in file frames at the media rate) of the file's first frame."""
    ar = getattr(ref, "available_range", None)
    if ar is not None:
        return to_frames(ar.start_time, rate)
    start = to_frames(clip_range.start_time, rate)
    if info.start_frame and start >= info.start_frame:
        return Fraction(info.start_frame)
    return Fraction(0)


def plan_retake(
    timeline: otio.schema.Timeline,
    src: SourceClip,
    info: MediaInfo,
    limits: Limits,
    *,
    prompt: str,
    mode: RetakeMode,
    provider: str,
    model: str,
    split: bool = False,
    context_s: float | None = DEFAULT_CONTEXT_S,
    max_size: tuple[int, int] | None = WORKING_SIZE,
) -> list[Plan]:
    """Plan the retake of one selection: widen short windows, refuse long ones (or split when asked), add handles.

    `context_s` is the footage sent on each side of the window (None: as much as the service takes); `max_size` the
    picture size the input is cut at when the source is larger (None: the source's own size). The selection is in
    record frames, the window in file frames; `timing.ClipClock` converts between them.
    """
    sel = src.selection
    prompt = (prompt or "").strip()
    if not prompt:
        raise PlanError(f"{sel.label}: the prompt is empty; say what the retake should show.")
    if len(prompt) > limits.max_prompt_chars:
        raise PlanError(f"The prompt has {len(prompt)} characters; the service takes at most {limits.max_prompt_chars}. Shorten it.")
    if not info.has_video and mode != RetakeMode.REPLACE_AUDIO:
        raise PlanError(f"{Path(info.path).name} has no picture; only --mode replace_audio can retake it.")
    if info.variable_frame_rate:  # phone footage: its frames are counted by time, at the clip's rate
        info = constant_rate_view(info, exact_rate(src.clip_range.start_time.rate))
    clock = _clock_of(src, info)
    rate = clock.media_rate
    ra, rb = clock.record_span(sel.record_range)
    if rb <= ra:
        raise PlanError(
            f"{sel.label}: the selection lasts less than one frame of the timeline ({rate_text(src.record_rate)} fps); "
            "select at least one whole frame."
        )
    notes: list[str] = list(sel.notes) + _earlier_versions(sel.clip)
    max_w = limits.max_window_frames(rate)
    if clock.file_span(ra, rb) > max_w:
        return _split(timeline, src, info, limits, clock, (ra, rb), split, prompt=prompt, mode=mode, provider=provider,
                      model=model, context_s=context_s, max_size=max_size)
    ra, rb = _widened(timeline, src, clock, ra, rb, limits, notes)
    wa, wb = _media_window(sel, info, clock, ra, rb, limits, notes)
    context = None if context_s is None else math.ceil(Fraction(context_s).limit_denominator(1000) * rate)
    cut, offset, cut_notes = _input_cut(info, wa, wb, limits, rate, context)
    notes.extend(cut_notes)
    cut, size_note = _at_working_size(cut, info, max_size)
    if size_note:
        notes.append(size_note)
    record = _inside_the_clip(clock.track_range(ra, rb), src)
    w = wb - wa
    seconds_in = float(Fraction(cut.total_frames) / rate)
    return [
        Plan(
            label=sel.label,
            clip_name=original_name(sel.clip),
            track_index=sel.track_index,
            prompt=prompt,
            mode=mode,
            provider=provider,
            model=model,
            media=info,
            record_range=record,
            source_range=clock.source_range(ra, rb),
            version_range=clock.media_range(wa, w),
            window_start_frame=wa,
            window_frames=w,
            cut=cut,
            window_offset=offset,
            start_time=float(Fraction(offset) / rate),
            duration=float(Fraction(w) / rate),
            scalar=src.scalar,
            notes=tuple(notes),
            estimate_usd=limits.estimate_usd(seconds_in),
            price_basis=limits.price_basis,
            record_timecode=f"{record_timecode(timeline, record.start_time)}-{record_timecode(timeline, record.end_time_exclusive())}",
            source_url=media_key(original_reference(sel.clip)),
            context=(wa - cut.start_frame, cut.start_frame + cut.frame_count - wb),
        )
    ]


def _clock_of(src: SourceClip, info: MediaInfo) -> ClipClock:
    """The clocks of the selected clip: the timeline's, the track's, the clip's and its media's."""
    rate = exact_rate(info.frame_rate)
    return ClipClock(record_rate=src.record_rate, track_rate=src.selection.record_range.start_time.rate,
                     clip_rate=src.clip_range.start_time.rate, media_rate=rate, clip_start=src.clip_range.start_time,
                     clip_record_start=src.clip_record.start_time,
                     origin=_origin_frames(original_reference(src.selection.clip), info, src.clip_range, rate),
                     scalar=src.scalar)


def _earlier_versions(clip: otio.schema.Clip) -> list[str]:
    earlier = sorted({key for piece in shot_run(clip) for key in version_keys(piece)})
    if not earlier:
        return []
    kept = ", ".join(k.replace("retake_", "") for k in earlier)
    return [f"retaken from the original media; {kept} {'stays' if len(earlier) == 1 else 'stay'} available"]


def _split(timeline, src: SourceClip, info: MediaInfo, limits: Limits, clock: ClipClock, window: tuple[int, int],
           split: bool, **options) -> list[Plan]:
    """A window longer than the service takes: refused, or (`split`) planned as several jobs of record frames."""
    sel = src.selection
    ra, rb = window
    rate, max_w = clock.media_rate, limits.max_window_frames(clock.media_rate)
    seconds = float(Fraction(clock.file_span(ra, rb)) / rate)
    if not split:
        raise PlanError(
            f"{sel.label}: the selection is {seconds:.2f} s of media; a retake window can be at most "
            f"{float(Fraction(max_w) / rate):.2f} s ({max_w} frames at {rate_text(rate)} fps: the input must stay within "
            f"{limits.max_input_s:g} s with a frame count of 8k+1). Select less, or pass --split to make several jobs."
        )
    pieces = math.ceil(clock.file_span(ra, rb) / max_w)
    while True:
        bounds = [ra + (rb - ra) * i // pieces for i in range(pieces + 1)]
        if all(clock.file_span(a, b) <= max_w for a, b in zip(bounds, bounds[1:])):
            break
        pieces += 1
    out = []
    for a, b in zip(bounds, bounds[1:]):
        piece = Selection(sel.track_index, sel.clip, clock.track_range(a, b), sel.prompt,
                          f"{sel.label} part {len(out) + 1}/{pieces}", sel.track_kind)
        sub = SourceClip(piece, src.media_path, src.scalar, src.clip_range, src.clip_record, src.record_rate, src.shown_record)
        for p in plan_retake(timeline, sub, info, limits, **options):
            out.append(_with_note(p, f"split {seconds:.2f} s into {pieces} jobs"))
    return out


def _widened(timeline, src: SourceClip, clock: ClipClock, ra: int, rb: int, limits: Limits,
             notes: list[str]) -> tuple[int, int]:
    """A selection shorter than the service's minimum, widened in record frames over what of the clip shows."""
    min_w = limits.min_window_frames(clock.media_rate)
    before = clock.file_span(ra, rb)
    if before >= min_w:
        return ra, rb
    shown = src.shown_record or src.clip_record
    shown_start, shown_end = clock.record_span(shown) if src.shown_record is not None else (
        round(clock.clip_record_origin), round(clock.clip_record_origin) + round(clock.record_frames(shown.duration)))
    sa, sb = ra, rb
    while clock.file_span(sa, sb) < min_w and (sa > shown_start or sb < shown_end):
        if sb < shown_end and (sb - rb <= ra - sa or sa <= shown_start):
            sb += 1
        else:
            sa -= 1
    rec = float(src.record_rate)
    notes.append(
        f"the selection was {float(Fraction(before) / clock.media_rate):.2f} s; the service needs at least "
        f"{limits.min_window_s:g} s, so it was widened to {record_timecode(timeline, _RT(sa, rec))}-{record_timecode(timeline, _RT(sb, rec))}"
    )
    return sa, sb


def _media_window(sel: Selection, info: MediaInfo, clock: ClipClock, ra: int, rb: int, limits: Limits,
                  notes: list[str]) -> tuple[int, int]:
    """The file frames [wa, wb) the record frames [ra, rb) show; grown beyond the clip's in and out points (the same
    shot) when the clip itself is shorter than the service's minimum."""
    rate = clock.media_rate
    min_w = limits.min_window_frames(rate)
    wa, wb = math.floor(clock.file_frame(ra)), math.ceil(clock.file_frame(rb))
    if wa < 0 or wb > info.frame_count:
        raise SelectionError(
            f"{sel.label}: the clip asks for frames {wa}-{wb - 1} of {Path(info.path).name}, which has frames 0-{info.frame_count - 1}; "
            "the clip's source range lies outside its media (relink to the right file, or check the media's start timecode)."
        )
    if wb - wa < min_w:
        grow = min_w - (wb - wa)
        take_after = min(grow - grow // 2, info.frame_count - wb)
        take_before = min(grow - take_after, wa)
        take_after = min(grow - take_before, info.frame_count - wb)
        wa, wb = wa - take_before, wb + take_after
        if wb - wa < min_w:
            raise PlanError(
                f"{sel.label}: the media {Path(info.path).name} has only {info.frame_count} frames "
                f"({float(Fraction(info.frame_count) / rate):.2f} s); a retake window needs at least {limits.min_window_s:g} s."
            )
        notes.append(f"the clip is shorter than {limits.min_window_s:g} s; the window uses media beyond its in and out points")
    return wa, wb


def _inside_the_clip(record: otio.opentime.TimeRange, src: SourceClip) -> otio.opentime.TimeRange:
    """What goes back on the track stays inside the clip (one at another rate than the timeline's starts or ends
    between record frames)."""
    shown = src.shown_record or src.clip_record
    if record.start_time >= shown.start_time and record.end_time_exclusive() <= shown.end_time_exclusive():
        return record
    native = record.start_time.rate
    start = max(record.start_time, shown.start_time)
    end = min(record.end_time_exclusive(), shown.end_time_exclusive())
    return _TR(start.rescaled_to(native), (end - start).rescaled_to(native))


def _with_note(plan: Plan, note: str) -> Plan:
    return replace(plan, notes=(note, *plan.notes))


def _input_cut(info: MediaInfo, wa: int, wb: int, limits: Limits, rate: Fraction,
               context: int | None = None) -> tuple[CutSpec, int, list[str]]:
    """The input clip: the window plus `context` frames each side (None: as much as the limits allow), balanced
    around it, 8k+1 frames, never under the model's minimum input (the context grows to reach it, and says so)."""
    w = wb - wa
    longest = limits.max_input_frames(rate)
    notes_: list[str] = []
    if context is not None:
        wanted = largest_input_frames(w + 2 * context, limits.frame_multiple)
        floor = max(limits.min_input_frames, w)
        if wanted < floor:
            wanted = floor if (floor - 1) % limits.frame_multiple == 0 else \
                largest_input_frames(floor, limits.frame_multiple) + limits.frame_multiple
            if wanted > w + 2 * context:
                notes_.append(f"the context grew to {float(Fraction(wanted - w, 2) / rate):.2f} s a side: the model "
                              f"needs an input of at least {limits.min_input_frames} frames")
        longest = min(longest, max(wanted, w))
    before, after = wa, info.frame_count - wb
    context = longest - w
    pre = min(before, max(context // 2, context - after))
    post = min(after, context - pre)
    total = w + pre + post
    notes: list[str] = []
    fitted = largest_input_frames(total, limits.frame_multiple)
    if fitted >= max(w, limits.min_input_frames):
        excess = total - fitted
        while excess:  # trim the larger handle first, keeping the balance
            if pre >= post and pre > 0:
                pre -= 1
            else:
                post -= 1
            excess -= 1
        pad_head = pad_tail = 0
    else:
        needed = max(limits.min_input_frames, w)
        target = needed if (needed - 1) % limits.frame_multiple == 0 else largest_input_frames(needed, limits.frame_multiple) + limits.frame_multiple
        pad = target - total
        if pad > limits.frame_multiple - 1 or target > longest:
            raise PlanError(
                f"{Path(info.path).name} has only {info.frame_count} frames ({float(Fraction(info.frame_count) / rate):.2f} s); "
                f"the model needs an input of at least {limits.min_input_frames} frames. Use a longer source clip."
            )
        pad_tail = pad if after == post else 0
        pad_head = pad - pad_tail
        notes.append(f"the media runs out before {target} frames: {pad} frame(s) of its {'last' if pad_tail else 'first'} frame pad the input (never the window)")
    cut = CutSpec(info.path, wa - pre, w + pre + post, rate, pad_head=pad_head, pad_tail=pad_tail)
    return cut, pad_head + pre, notes_ + notes


def constant_rate_view(info: MediaInfo, rate: Fraction) -> MediaInfo:
    """A variable-frame-rate file seen as frames at `rate` by time (frame i is what shows at i / rate): how an NLE
    plays it in a clip at that rate, and how it is cut and conformed (by time, to constant-rate frames)."""
    frames = math.floor(Fraction(info.duration_s).limit_denominator(1_000_000) * rate + Fraction(1, 1000))
    start = 0
    if info.start_timecode:
        start = math.floor(Fraction(info.start_frame) / exact_rate(info.frame_rate) * rate) if info.frame_rate else 0
    return replace(info, frame_rate=rate, frame_count=frames, start_frame=start)


def working_size(width: int, height: int, max_size: tuple[int, int] | None) -> tuple[int, int]:
    """A picture's size scaled down to fit `max_size` either way up (never up), in even numbers."""
    if max_size:
        long_side, short_side = max(max_size), min(max_size)
        box = (long_side, short_side) if width >= height else (short_side, long_side)
        scale = min(Fraction(1), Fraction(box[0], width), Fraction(box[1], height))
        width, height = width * scale, height * scale
    return max(2, int(width / 2 + Fraction(1, 2)) * 2), max(2, int(height / 2 + Fraction(1, 2)) * 2)


def _at_working_size(cut: CutSpec, info: MediaInfo, max_size: tuple[int, int] | None) -> tuple[CutSpec, str]:
    """The cut at the service's working size when the source is larger, and a sentence saying so."""
    shown = (info.display_width, info.display_height)
    sent = working_size(*shown, max_size)
    cut = replace(cut, max_size=max_size)
    if sent == working_size(*shown, None):
        return cut, ""
    return cut, (f"the picture is sent at {sent[0]}x{sent[1]}, the size the model works at, and the version is scaled "
                 f"back up to {shown[0]}x{shown[1]} (--full-res sends the original size)")


def timecode_at(info: MediaInfo, frame: int) -> str | None:
    """The source timecode of a file frame (None when the media has no timecode)."""
    if info.start_timecode is None:
        return None
    return format_timecode(info.start_frame + frame, info.frame_rate, info.drop_frame)
