"""Frame rates, timecode and the clocks a clip is counted in: the one place time is converted."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import opentimelineio as otio

from .errors import InputError

__all__ = [
    "exact_rate",
    "rate_text",
    "is_drop_frame_rate",
    "parse_timecode",
    "format_timecode",
    "frames_between_rates",
    "to_frames",
    "parse_rate",
    "through_seconds",
    "frames_as_time",
    "ClipClock",
]

_NTSC_BASES = (24, 30, 48, 60, 120, 240)


def exact_rate(rate: float | Fraction) -> Fraction:
    """The exact rate a measured or float rate stands for, within 0.02%: 23.976 and 23.976024627685547 ->
    24000/1001, 24.0001 -> 24; anything else (an iPhone's 625/26) stays as it is."""
    r = rate if isinstance(rate, Fraction) else Fraction(rate)
    if r <= 0:
        raise InputError(f"A frame rate of {float(r)} is not usable; the timeline or media must have a positive rate.")
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if abs(r - ntsc) / ntsc < Fraction(2, 10000):
            return ntsc
    whole = round(r)
    if whole and abs(r - whole) / r < Fraction(2, 10000):
        return Fraction(whole)
    return r.limit_denominator(1_000_000)


def parse_rate(text: str) -> Fraction:
    """A frame rate as an editor types it: 24, 23.976, 29.97, 29.97 DF, 59.94NDF, 30000/1001 (exact, never a float)."""
    t = str(text).strip().lower().replace(" ", "")
    for tag in ("ndf", "df", "fps"):
        if t.endswith(tag):
            t = t[: -len(tag)]
    try:
        value = Fraction(t)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"{text!r} is not a frame rate; write it as 24, 25, 23.976, 29.97, 30, 50, 59.94 or 60.") from None
    return exact_rate(value)


def rate_text(rate: Fraction) -> str:
    """A rate as an editor writes it: 24, 23.976, 29.97, 59.94."""
    r = exact_rate(rate)
    if r.denominator == 1:
        return str(r.numerator)
    return f"{float(r):.3f}".rstrip("0").rstrip(".")


def is_drop_frame_rate(rate: Fraction) -> bool:
    """Drop-frame timecode exists for 29.97 and 59.94 only."""
    return exact_rate(rate) in (Fraction(30000, 1001), Fraction(60000, 1001))


_TC = re.compile(r"^(\d{1,2})[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})$")


def parse_timecode(text: str, rate: Fraction, drop_frame: bool | None = None) -> int:
    """A timecode as a frame number at `rate`. `;` or `.` before the frames means drop-frame (29.97/59.94)."""
    m = _TC.match(text.strip())
    if not m:
        raise InputError(f"{text!r} is not a timecode; write HH:MM:SS:FF (or HH:MM:SS;FF for drop-frame).")
    hh, mm, ss, sep, ff = m.groups()
    r = exact_rate(rate)
    nominal = math.ceil(float(r) - 1e-9) if r.denominator != 1 else r.numerator
    if int(ff) >= nominal or int(mm) >= 60 or int(ss) >= 60:
        raise InputError(f"Timecode {text} is not valid at {rate_text(r)} fps (frames must be below {nominal}).")
    df = sep in ";." if drop_frame is None else drop_frame
    if df and not is_drop_frame_rate(r):
        raise InputError(f"Timecode {text} is drop-frame, but the rate is {rate_text(r)} fps; drop-frame exists only at 29.97 and 59.94.")
    total_minutes = int(hh) * 60 + int(mm)
    frames = ((total_minutes * 60) + int(ss)) * nominal + int(ff)
    if df:
        drop = 2 * (nominal // 30)
        frames -= drop * (total_minutes - total_minutes // 10)
    return frames


def format_timecode(frame: int, rate: Fraction, drop_frame: bool | None = None) -> str:
    """A frame number at `rate` as timecode; drop-frame (with `;`) by default at 29.97 and 59.94."""
    r = exact_rate(rate)
    df = is_drop_frame_rate(r) if drop_frame is None else drop_frame
    nominal = math.ceil(float(r) - 1e-9) if r.denominator != 1 else r.numerator
    sign = "-" if frame < 0 else ""
    frame = abs(int(frame))
    if df:
        drop = 2 * (nominal // 30)
        per_10min = nominal * 600 - drop * 9
        per_min = nominal * 60 - drop
        tens, rest = divmod(frame, per_10min)
        if rest < drop:
            rest = drop  # never happens for valid frames; keeps the arithmetic total
        frame += drop * 9 * tens + drop * ((rest - drop) // per_min)
    ff = frame % nominal
    ss = (frame // nominal) % 60
    mm = (frame // (nominal * 60)) % 60
    hh = (frame // (nominal * 3600)) % 24
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}{';' if df else ':'}{ff:02d}"


def frames_between_rates(value: float, from_rate: Fraction, to_rate: Fraction) -> Fraction:
    """Convert a count of frames between rates.

    Rates a 1000/1001 pull-down apart (24 and 23.976, 30 and 29.97) count frames one for one, as
    timecode labels do in EDLs and NLEs; other rates convert through seconds.
    """
    a, b = exact_rate(from_rate), exact_rate(to_rate)
    if a == b:
        return Fraction(value)
    ratio = a / b
    if ratio in (Fraction(1001, 1000), Fraction(1000, 1001)):
        return Fraction(value)
    return Fraction(value) * b / a


def to_frames(t: "otio.opentime.RationalTime", rate: Fraction) -> Fraction:
    """An OTIO time as an exact (possibly fractional) frame count at `rate`."""
    return frames_between_rates(Fraction(t.value).limit_denominator(1_000_000), exact_rate(t.rate), rate)



def through_seconds(frames: Fraction, from_rate: Fraction, to_rate: Fraction) -> Fraction:
    """A frame count at `from_rate` as frames at `to_rate`, through seconds (no conversion between equal rates)."""
    return frames if from_rate == to_rate else frames * to_rate / from_rate


def frames_as_time(frames: Fraction, from_rate: Fraction, to_rate: float) -> "otio.opentime.RationalTime":
    """A frame count at `from_rate` as a RationalTime at a file's `to_rate` (pull-down rates count one for one)."""
    return otio.opentime.RationalTime(float(frames_between_rates(frames, from_rate, to_rate)), to_rate)


class ClipClock:
    """The four clocks one clip is counted in, and the conversions between them.

        record frames   the timeline's exact rate, from the track's first frame (what an editor selects)
        track time      RationalTime at the rate the track's file writes (23.976 as written, not 24000/1001)
        clip time       the clip's source time, at the rate the file writes for the clip
        file frames     the media's frames from its first (0), at the media's exact rate

    Track time converts to record frames through seconds; clip time to file frames counting pull-down rates one for
    one, as timecode labels do. `scalar` is the clip's speed (media time per record time).
    """

    def __init__(self, *, record_rate: Fraction, track_rate: float, clip_rate: float, media_rate: Fraction,
                 clip_start: "otio.opentime.RationalTime", clip_record_start: "otio.opentime.RationalTime",
                 origin: Fraction, scalar: Fraction):
        self.record_rate, self.track_rate, self.clip_rate, self.media_rate = record_rate, track_rate, clip_rate, media_rate
        self.clip_start, self.scalar, self.origin = clip_start, scalar, origin
        self.clip_in_media = to_frames(clip_start, media_rate) - origin      # the file frame at the clip's in-point
        self.clip_record_origin = self.record_frames(clip_record_start)    # exact: may lie between record frames

    def record_frames(self, t: "otio.opentime.RationalTime") -> Fraction:
        """A track time as (fractional) record frames at the timeline's rate."""
        return through_seconds(Fraction(t.value).limit_denominator(1_000_000), exact_rate(t.rate), self.record_rate)

    def record_span(self, rng: "otio.opentime.TimeRange") -> tuple[int, int]:
        """A track range as whole record frames [a, b)."""
        a = round(self.record_frames(rng.start_time))
        return a, a + round(self.record_frames(rng.duration))

    def track_range(self, a: int, b: int) -> "otio.opentime.TimeRange":
        """Record frames [a, b) as track time at the track's own rate (which may not be the timeline's)."""
        native = exact_rate(self.track_rate)
        start = through_seconds(Fraction(a), self.record_rate, native)
        end = through_seconds(Fraction(b), self.record_rate, native)
        rt = otio.opentime.RationalTime
        return otio.opentime.TimeRange(rt(float(start), self.track_rate), rt(float(end - start), self.track_rate))

    def clip_frames(self, n: Fraction) -> Fraction:
        """A count of record frames as frames of the clip's own source time."""
        return through_seconds(Fraction(n), self.record_rate, exact_rate(self.clip_rate))

    def file_frame(self, rec: int | Fraction) -> Fraction:
        """The file frame shown at record frame `rec` (fractional between frames)."""
        offset_in_clip = self.clip_frames(rec - self.clip_record_origin) * self.scalar
        return self.clip_in_media + frames_between_rates(offset_in_clip, exact_rate(self.clip_rate), self.media_rate)

    def file_span(self, a: int, b: int) -> int:
        """How many file frames the record frames [a, b) touch."""
        return math.ceil(self.file_frame(b)) - math.floor(self.file_frame(a))

    def source_range(self, a: int, b: int) -> "otio.opentime.TimeRange":
        """Record frames [a, b) as the clip's source range (its in-point there, the record length in clip time)."""
        rt = otio.opentime.RationalTime
        start = self.clip_start + rt(float(self.clip_frames(a - self.clip_record_origin) * self.scalar), self.clip_rate)
        return otio.opentime.TimeRange(start, rt(float(self.clip_frames(Fraction(b - a))), self.clip_rate))

    def media_range(self, first: int, count: int) -> "otio.opentime.TimeRange":
        """File frames [first, first + count) in the clip's source time (what a version's file covers)."""
        return otio.opentime.TimeRange(frames_as_time(Fraction(first) + self.origin, self.media_rate, self.clip_rate),
                                       frames_as_time(Fraction(count), self.media_rate, self.clip_rate))
