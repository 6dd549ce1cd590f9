"""Builders for small OTIO timelines used by the tests (no media needed until a test probes)."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio

from ltx_retake.ports import MediaInfo

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange


def clip(name: str, url: str, start: float, dur: float, rate: float = 24, avail: tuple[float, float] | None = None) -> otio.schema.Clip:
    ref = otio.schema.ExternalReference(target_url=url)
    if avail is not None:
        ref.available_range = TR(RT(avail[0], rate), RT(avail[1], rate))
    return otio.schema.Clip(name=name, media_reference=ref, source_range=TR(RT(start, rate), RT(dur, rate)))


def timeline(*items, rate: float = 24, start: float | None = 86400, name: str = "cut") -> otio.schema.Timeline:
    tl = otio.schema.Timeline(name=name)
    if start is not None:
        tl.global_start_time = RT(start, rate)
    track = otio.schema.Track(name="V1")
    for it in items:
        track.append(it)
    tl.tracks.append(track)
    return tl


def info(path: str = "/m/a.mov", *, rate: Fraction = Fraction(24), frames: int = 2400, start_frame: int = 86400,
         tc: str | None = "01:00:00:00", size=(320, 180), audio: bool = True) -> MediaInfo:
    return MediaInfo(path=path, frame_rate=rate, frame_count=frames, width=size[0], height=size[1],
                     display_width=size[0], display_height=size[1], has_audio=audio, audio_rate=48000 if audio else None,
                     audio_channels=2 if audio else None, start_timecode=tc, start_frame=start_frame,
                     duration_s=float(frames / rate))
