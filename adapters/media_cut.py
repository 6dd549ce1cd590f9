"""Cuts the input clip for a retake: exact source frames by index, padded, upright, square-pixel, CFR MP4."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import ffmpeg

from ..errors import MediaError
from ..ports import CutSpec, MediaInfo
from .ffmpeg_exe import run_ffmpeg
from ..timing import exact_rate
from .media_probe import open_media, probe_media

__all__ = [
    "cut_clip",
    "SourceTiming",
    "source_timing",
    "source_video_window",
    "audio_window",
    "silence",
    "even_size",
    "layout_for",
    "temp_beside",
    "ffmpeg_number",
    "rate_text",
    "stamp_by_index",
    "atomic_target",
]

MAX_W, MAX_H = 3840, 2160
_SEEK_LEAD_FRAMES = 24          # CFR: seek this many frames before the cut, then trim by index
_SEEK_LEAD_SECONDS = 1          # VFR: seek this long before the cut, then resample to CFR by time


@dataclass(frozen=True)
class SourceTiming:
    """Where a file's streams sit on ffmpeg's input timeline (container start = 0)."""

    video_index: int
    audio_index: int | None
    video_start: Fraction        # the first video frame's time, seconds after the container's start


def source_timing(path: str | Path) -> SourceTiming:
    """The stream indices and video start offset ffmpeg will see when it reads `path`."""
    p = Path(path)
    with open_media(p) as container:
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            raise MediaError(f"{p} has no video stream: a retake needs a video clip.")
        vs = videos[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        origin = Fraction(container.start_time or 0, 1_000_000)
        start = Fraction(vs.start_time or 0) * Fraction(vs.time_base) if vs.start_time is not None else origin
        return SourceTiming(vs.index, audio.index if audio else None, max(Fraction(0), start - origin))


def ffmpeg_number(value: Fraction | float) -> str:
    """A number as ffmpeg options take it (seconds with microsecond precision)."""
    return f"{float(value):.6f}"


def layout_for(channels: int) -> str:
    """ffmpeg's channel layout name for a channel count."""
    return {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}.get(channels, f"{channels}c")


def even_size(width: float, height: float, *, limit: tuple[int, int] | None = (MAX_W, MAX_H)) -> tuple[int, int]:
    """(width, height) rounded to even numbers, scaled down to fit `limit` (either orientation) if given."""
    if limit:
        long_side, short_side = max(limit), min(limit)
        box = (long_side, short_side) if width >= height else (short_side, long_side)
        scale = min(1.0, box[0] / width, box[1] / height)
        width, height = width * scale, height * scale
    return max(2, int(width / 2 + 0.5) * 2), max(2, int(height / 2 + 0.5) * 2)


def source_video_window(info: MediaInfo, timing: SourceTiming, start: int, count: int, rate: Fraction):
    """An ffmpeg input of the source, seeked near `start`, and its video: frames [start, start+count) at `rate`.

    A constant-rate source is cut by frame index (seek half a frame before a frame shortly ahead, then trim
    by count), so float seconds never decide which frame comes first. A variable-rate source is resampled to
    `rate` by time (frame i shows what is on screen at start/rate + i/rate). Returns (input, video, audio_t0,
    span_s): the first frame's sound begins at audio_t0 on that input's timeline and the frames span span_s
    seconds of the source (count / the source's rate when cut by index, so the sound stretches with them).
    """
    if info.variable_frame_rate:
        t0 = timing.video_start + Fraction(start) / rate
        seek = t0 - _SEEK_LEAD_SECONDS if t0 > _SEEK_LEAD_SECONDS else Fraction(0)
        inp = ffmpeg.input(info.path, ss=ffmpeg_number(seek)) if seek else ffmpeg.input(info.path)
        video = (inp[str(timing.video_index)]
                 .filter("fps", fps=rate_text(rate), start_time=ffmpeg_number(t0 - seek))
                 .filter("trim", end_frame=count))
        return inp, stamp_by_index(video, rate), t0 - seek, Fraction(count) / rate
    first = max(0, start - _SEEK_LEAD_FRAMES)
    if first > 0:
        seek = timing.video_start + (first - Fraction(1, 2)) / Fraction(info.frame_rate)
        inp = ffmpeg.input(info.path, ss=ffmpeg_number(seek))
    else:
        seek = Fraction(0)
        inp = ffmpeg.input(info.path)
    video = inp[str(timing.video_index)].filter("trim", start_frame=start - first, end_frame=start - first + count)
    source_rate = Fraction(info.frame_rate)
    return (inp, stamp_by_index(video, rate), timing.video_start + Fraction(start) / source_rate - seek,
            Fraction(count) / source_rate)


def rate_text(rate: Fraction) -> str:
    """A rate as ffmpeg takes it: '30000/1001'."""
    return f"{rate.numerator}/{rate.denominator}"


def stamp_by_index(video, rate: Fraction):
    """Give every frame the timestamp of its index at `rate` (frame n at n/rate, exactly)."""
    tb = 1 / Fraction(rate)
    return video.filter("settb", f"{tb.numerator}/{tb.denominator}").filter("setpts", "N")


def audio_window(audio, *, start_s: Fraction, duration_s: Fraction, out_rate: int, channels: int,
                 trim_rate: int | None = None, play_s: Fraction | None = None,
                 head_s: Fraction = Fraction(0), total_s: Fraction | None = None):
    """Sound from `start_s` for `duration_s` on the input's timeline, sample-accurate, at out_rate/channels.

    Silence fills where the input has no sound. `play_s` stretches the window to last that long instead:
    by resampling for a pull-down-sized change (0.1%, as NLEs do), otherwise with rubberband, which keeps the
    pitch (a service that writes 29 fps for 29.97 would else raise every voice by 3.4%) and, with crisp
    transients, the timing (atempo smeared sync marks by 20 ms). `head_s` of silence
    goes before it and the result is padded or cut to `total_s`, so its length is exact either way.
    """
    trim_rate = trim_rate or out_rate
    first = round(start_s * trim_rate)
    length = round(duration_s * trim_rate)
    a = (audio.filter("aresample", trim_rate, first_pts=0, min_hard_comp=0.02)
         .filter("atrim", start_sample=first, end_sample=first + length)
         .filter("asetpts", "N/SR/TB"))
    if play_s is not None and play_s != duration_s:
        speed = duration_s / play_s
        if abs(speed - 1) <= Fraction(2, 1000):
            a = a.filter("asetrate", max(1, round(trim_rate * speed)))
        else:
            a = a.filter("rubberband", tempo=f"{float(speed):.9f}", transients="crisp", detector="percussive", window="short")
    a = a.filter("aresample", out_rate).filter("aformat", sample_fmts="fltp", channel_layouts=layout_for(channels))
    head = round(head_s * out_rate)
    if head:
        a = a.filter("adelay", delays=f"{head}S", all=1)
    total = round((total_s if total_s is not None else head_s + (play_s or duration_s)) * out_rate)
    return a.filter("apad", whole_len=total).filter("atrim", end_sample=total).filter("asetpts", "N/SR/TB")


def silence(total_s: Fraction, out_rate: int, channels: int):
    """A silent track of exactly total_s seconds."""
    total = round(total_s * out_rate)
    return (ffmpeg.input(f"anullsrc=r={out_rate}:cl={layout_for(channels)}", f="lavfi")
            .filter("atrim", end_sample=total).filter("asetpts", "N/SR/TB"))


def temp_beside(dest: Path) -> Path:
    """A temporary name next to `dest` (same folder, same suffix) for an atomic write."""
    return dest.with_name(f".{dest.stem}.{uuid.uuid4().hex[:8]}.partial{dest.suffix}")


@contextmanager
def atomic_target(dest: Path):
    """Yield a temporary path beside `dest`; it is removed unless the caller os.replace()d it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(dest)
    try:
        yield tmp
    finally:
        if tmp.exists():
            tmp.unlink()


def cut_clip(spec: CutSpec, dest: Path, *, ffmpeg_bin: str | None = None) -> MediaInfo:
    """Write the retake's input clip for `spec` to `dest` (MP4) and return its probe."""
    dest = Path(dest)
    info = probe_media(spec.source_path)
    rate = exact_rate(Fraction(spec.frame_rate))
    if spec.frame_count < 1 or spec.start_frame < 0 or spec.pad_head < 0 or spec.pad_tail < 0:
        raise MediaError(f"Cannot cut {spec.frame_count} frames from frame {spec.start_frame} "
                         f"(padding {spec.pad_head}/{spec.pad_tail}); the plan is inconsistent: plan the retake again.")
    if _frames_past_end(info, spec) > 0:
        raise MediaError(f"{info.path} has {info.frame_count} frames, but the cut needs frames {spec.start_frame} "
                         f"to {spec.start_frame + spec.frame_count - 1}; choose a range inside the clip's media.")
    timing = source_timing(info.path)
    inp, video, audio_t0, span_s = source_video_window(info, timing, spec.start_frame, spec.frame_count, rate)
    if spec.pad_head or spec.pad_tail:
        video = stamp_by_index(video.filter("tpad", start=spec.pad_head, stop=spec.pad_tail,
                                    start_mode="clone", stop_mode="clone"), rate)
    width, height = even_size(info.display_width, info.display_height, limit=spec.max_size or (MAX_W, MAX_H))
    video = (video.filter("scale", width, height, flags="bicubic").filter("setsar", "1")
             .filter("format", "yuv420p"))
    total_s = Fraction(spec.total_frames) / rate
    if timing.audio_index is not None:
        audio = audio_window(inp[str(timing.audio_index)], start_s=audio_t0, duration_s=span_s,
                             play_s=Fraction(spec.frame_count) / rate, out_rate=48000, channels=2,
                             head_s=Fraction(spec.pad_head) / rate, total_s=total_s)
    else:
        audio = silence(total_s, 48000, 2)
    with atomic_target(dest) as tmp:
        args = ffmpeg.output(
            video, audio, str(tmp),
            **{"c:v": "libx264", "preset": "veryfast", "crf": 16, "pix_fmt": "yuv420p", "r": rate_text(rate),
               "c:a": "aac", "b:a": "192k", "ar": 48000, "ac": 2, "movflags": "+faststart",
               "map_metadata": -1, "f": "mp4"},
        ).get_args()
        run_ffmpeg(args, ffmpeg=ffmpeg_bin, what=f"Cutting frames {spec.start_frame}+{spec.frame_count} of {info.path}")
        out = probe_media(tmp)
        if out.frame_count != spec.total_frames or out.frame_rate != rate:
            raise MediaError(f"The cut came out with {out.frame_count} frames at {out.frame_rate} fps instead of "
                             f"{spec.total_frames} at {rate}; the source may be damaged near frame {spec.start_frame}.")
        os.replace(tmp, dest)
    return replace(out, path=str(dest))


def _frames_past_end(info: MediaInfo, spec: CutSpec) -> float:
    """How far (in frames) the cut runs past the source's end (by index, or by time for a VFR source)."""
    end = spec.start_frame + spec.frame_count
    if not info.variable_frame_rate:
        return end - info.frame_count
    return float(Fraction(end) / Fraction(spec.frame_rate) - Fraction(info.frame_count) / Fraction(info.frame_rate)) \
        * float(spec.frame_rate) - 0.5
