"""Frame rates and timecode: exact rates, drop-frame aware parsing and printing, frames between rates."""

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

