"""Stand-in media for real timelines whose media are not here: frame-index clips with the names, rates, lengths and
start timecodes the timeline refers to, so a corpus timeline can be relinked (--media-search) and retaken for real."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.errors import RetakeError
from ltx_retake.relink import Relinker, media_hints
from ltx_retake.timing import exact_rate, format_timecode, is_drop_frame_rate, to_frames

__all__ = ["StandIn", "standin_media", "standin_name"]

_STILLS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".dpx", ".psd", ".gif", ".bmp"}
_SOUND = {".wav", ".aif", ".aiff", ".mp3", ".m4a"}


@dataclass(frozen=True)
class StandIn:
    """One stand-in file: where it is, the rate and first source frame (its start timecode) and its length."""

    name: str
    path: Path
    rate: Fraction
    first: int
    frames: int


def standin_name(clip: otio.schema.Clip) -> str | None:
    """The file name the timeline knows the clip's media by (None: a generator, an image sequence, a web address)."""
    try:
        written = Relinker().written(clip.media_reference)
    except RetakeError:
        return None
    if written:
        return written.rsplit("/", 1)[-1]
    hints = media_hints(clip)
    if not hints:
        return None
    name = hints[0].replace("\\", "/").rsplit("/", 1)[-1].strip()   # what the relinker looks for by name
    return (name if Path(name).suffix else f"{name}.mov") if name else None


def standin_media(timeline: otio.schema.Timeline, folder: Path, *, size: tuple[int, int] = (96, 54),
                  handle_s: float = 4.0, max_frames: int = 6000, drop_frame: bool | None = None) -> dict[str, StandIn]:
    """Write a frame-index clip in `folder` for every movie the timeline's clips use (stills and sound files are
    left out; so is media that would need more than `max_frames`). Frame i of a stand-in carries index i; its
    start timecode is the source time of its first frame, so the timeline's source ranges land on known frames."""
    spans: dict[str, list] = {}
    for clip in timeline.find_clips():
        name = standin_name(clip)
        if name is None or Path(name).suffix.lower() in _STILLS | _SOUND:
            continue
        rng = clip.source_range
        if rng is None:
            continue
        rate = exact_rate(rng.start_time.rate)
        ref = clip.media_reference
        available = getattr(ref, "available_range", None)
        start = to_frames(rng.start_time, rate)
        end = start + to_frames(rng.duration, rate) * _speed(clip)
        exact = False
        if available is not None:  # the media's own extent is stated: the stand-in has exactly that, no handles
            a0 = to_frames(available.start_time, rate)
            a1 = a0 + to_frames(available.duration, rate)
            if a1 - a0 <= max_frames:
                start, end, exact = a0, a1 - 1, True
        spans.setdefault(name, []).append((rate, start, end, exact))
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, StandIn] = {}
    for name, uses in spans.items():
        rate = uses[0][0]
        handle = 0 if any(exact for *_, exact in uses) else round(handle_s * rate)
        first = max(0, int(min(s for _, s, _, _ in uses)) - handle)
        last = int(max(e for _, _, e, _ in uses)) + 1 + handle
        frames = last - first
        if frames > max_frames:
            continue
        df = is_drop_frame_rate(rate) if drop_frame is None else drop_frame and is_drop_frame_rate(rate)
        path = folder / name
        write_indexed_clip(path, frames=frames, rate=rate, size=size, timecode=format_timecode(first, rate, df),
                           drop_frame=df)
        made[name] = StandIn(name, path, rate, first, frames)
    return made


def _speed(clip: otio.schema.Clip) -> Fraction:
    speed = Fraction(1)
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp) and effect.time_scalar > 0:
            speed *= Fraction(effect.time_scalar).limit_denominator(1000)
    return max(speed, Fraction(1))
