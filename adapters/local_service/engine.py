"""The local service's offline preview engine: re-renders the whole input at 1080p and marks the retake window.

It is NOT LTX-2 and says so: nothing is generated. Inside the window [start_time, start_time + duration)
(clamped to the input) `replace_video` tints the picture and draws a border (the centre stays readable),
`replace_audio` puts a tone whose pitch comes from the prompt, `replace_audio_and_video` does both.
Frames are addressed by number (`between(n,a,b)`), never by timestamp, so the output has exactly the
input's frames, re-timed to the input's rate, unless a quirk says otherwise.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ...errors import MediaError
from ..ffmpeg_exe import run_ffmpeg
from ..media_cut import rate_text

__all__ = [
    "PREVIEW_NOTE",
    "InputInfo",
    "PreviewResult",
    "probe_input",
    "window_frames",
    "tone_frequency",
    "snap_count",
    "render_preview",
]

PREVIEW_NOTE = ("ltx-retake local preview engine: NOT a generated retake. The window is marked (tint, border, "
                "tone); everything else is the input re-encoded.")
BORDER_FRACTION = 0.06            # border thickness as a share of the shorter side
TINT = "0xFF00FF@0.12"            # a mild magenta wash over the whole picture in the window
BORDER = "0xFF00FF"


@dataclass(frozen=True)
class InputInfo:
    """What the engine needs to know of an input clip."""

    frame_rate: Fraction
    frame_count: int
    display_width: int
    display_height: int
    has_audio: bool

    @property
    def portrait(self) -> bool:
        return self.display_height > self.display_width


@dataclass(frozen=True)
class PreviewResult:
    """What was rendered, for the result JSON."""

    path: Path
    width: int
    height: int
    frame_rate: Fraction
    frame_count: int
    duration: float
    audio_rate: int
    window: tuple[int, int]           # frames [first, end) of the output that were marked
    tone_hz: int | None


def _rate(stream) -> Fraction:
    guessed = stream.guessed_rate
    average = stream.average_rate
    if guessed and average and abs(float(guessed) - float(average)) / float(average) < 0.01:
        return Fraction(guessed)
    rate = average or guessed or stream.base_rate
    if not rate:
        raise MediaError("The input video has no frame rate; it cannot be previewed.")
    return Fraction(rate).limit_denominator(1001 * 1000)


def probe_input(path: Path) -> InputInfo:
    """Frame rate, frame count, displayed size and whether there is sound. Raises MediaError if it is not video."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("The input has no video stream.")
            stream = container.streams.video[0]
            rate = _rate(stream)
            width, height = stream.codec_context.width, stream.codec_context.height
            sar = stream.sample_aspect_ratio or Fraction(1)
            rotation = 0
            for frame in container.decode(stream):
                rotation = int(getattr(frame, "rotation", 0) or 0)
                break
            else:
                raise MediaError("The input video has no frames.")
            has_audio = bool(container.streams.audio)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count = sum(1 for packet in container.demux(stream) if packet.size)
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"The input is not a readable video ({type(exc).__name__}).") from None
    display_w = round(width * float(sar)) if sar and sar > 0 else width
    display_h = height
    if abs(rotation) % 180 == 90:
        display_w, display_h = display_h, display_w
    return InputInfo(frame_rate=rate, frame_count=count, display_width=display_w, display_height=display_h,
                     has_audio=has_audio)


def window_frames(start_time: float, duration: float, frame_rate: Fraction, frame_count: int) -> tuple[int, int]:
    """The frames [first, end) whose start times fall in [start_time, start_time + duration), clamped."""
    fps = float(frame_rate)
    eps = 1e-6
    first = max(0, math.ceil(start_time * fps - eps))
    end = max(first, math.ceil((start_time + duration) * fps - eps))
    return min(first, frame_count), min(end, frame_count)


def tone_frequency(prompt: str) -> int:
    """The tone's pitch for a prompt: 300 + crc32(prompt) % 600 Hz (stable across runs)."""
    return 300 + zlib.crc32(prompt.encode("utf-8")) % 600


def snap_count(frames: int) -> int:
    """The largest count of the form 8k+1 not above `frames`."""
    return frames if frames < 1 else ((frames - 1) // 8) * 8 + 1


def render_preview(
    source: Path,
    dest: Path,
    *,
    prompt: str,
    start_time: float,
    duration: float,
    mode: str,
    int_fps: bool = False,
    snap_8k1: bool = False,
    audio_24k: bool = False,
    crf: int = 30,
    preset: str = "ultrafast",
    ffmpeg: str | None = None,
    audio_codec: str = "aac",
) -> PreviewResult:
    """Render the preview of a retake of `source` into `dest` (H.264/AAC MP4; `audio_codec` pcm_s16le and a .mov
    `dest` give sound that can be checked sample by sample)."""
    info = probe_input(source)
    out_frames = snap_count(info.frame_count) if snap_8k1 else info.frame_count
    out_rate = Fraction(int(info.frame_rate)) if int_fps and info.frame_rate >= 1 else info.frame_rate
    width, height = (1080, 1920) if info.portrait else (1920, 1080)
    first, end = window_frames(start_time, duration, info.frame_rate, out_frames)
    seconds = out_frames / out_rate
    t0, t1 = float(first / out_rate), float(end / out_rate)
    audio_rate = 24000 if audio_24k else 48000
    marks_video = mode in ("replace_video", "replace_audio_and_video") and end > first
    marks_audio = mode in ("replace_audio", "replace_audio_and_video") and end > first
    tone = tone_frequency(prompt) if marks_audio else None

    marks: list[str] = []
    if marks_video:
        inside = f"enable='between(n,{first},{end - 1})'"
        border = BORDER_FRACTION * min(width, height)          # in output pixels, the same on every side
        fw, fh = border / width, border / height               # as shares of the frame, whatever its size
        marks = [f"drawbox=x=0:y=0:w=iw:h=ih:color={TINT}:t=fill:{inside}",
                 f"drawbox=x=0:y=0:w=iw:h=ih*{fh:.5f}:color={BORDER}:t=fill:{inside}",
                 f"drawbox=x=0:y=ih-h:w=iw:h=ih*{fh:.5f}:color={BORDER}:t=fill:{inside}",
                 f"drawbox=x=0:y=0:w=iw*{fw:.5f}:h=ih:color={BORDER}:t=fill:{inside}",
                 f"drawbox=x=iw-w:y=0:w=iw*{fw:.5f}:h=ih:color={BORDER}:t=fill:{inside}"]
    # Draw at whichever size is smaller: drawing is per pixel, and a small input is cheap to mark before scaling.
    small_input = info.display_width * info.display_height <= width * height
    video = [f"trim=end_frame={out_frames}" if out_frames < info.frame_count else "null", "format=yuv420p"]
    video += marks if small_input else []
    video += [f"scale={width}:{height}:flags=bicubic", "setsar=1", "format=yuv420p"]
    video += [] if small_input else marks
    video += [f"settb={rate_text(1 / out_rate)}", "setpts=N"]
    graph = [f"[0:v:0]{','.join(video)}[vout]"]

    dur = f"{float(seconds):.6f}"
    total = round(seconds * 48000)
    s0, s1 = round(t0 * 48000), round(t1 * 48000)   # the window's exact samples: sound is gated per sample, not per block
    inside = f"gte(n,{s0})*lt(n,{s1})"
    if info.has_audio:
        audio = ["aresample=48000", "aformat=sample_fmts=fltp:channel_layouts=stereo", "asetpts=N/SR/TB"]
        if marks_audio:
            audio.append(f"aeval=exprs='val(ch)*(1-{inside})':c=same")
        audio += [f"apad=whole_len={total}", f"atrim=end_sample={total}"]
        graph.append(f"[0:a:0]{','.join(audio)}[orig]")
    else:
        graph.append(f"anullsrc=r=48000:cl=stereo,atrim=end_sample={total}[orig]")
    if marks_audio:
        wave = f"if({inside},0.3*sin(2*PI*{tone}*t),0)"
        graph.append(f"aevalsrc=exprs='{wave}|{wave}':s=48000:d={dur}[tone]")
        graph.append(f"[orig][tone]amix=inputs=2:normalize=0:duration=first,aresample={audio_rate}[aout]")
    else:
        graph.append(f"[orig]aresample={audio_rate}[aout]")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.rendering{dest.suffix}")
    try:
        run_ffmpeg([
            "-i", str(source), "-filter_complex", ";".join(graph), "-map", "[vout]", "-map", "[aout]",
            "-fps_mode", "passthrough", "-enc_time_base", rate_text(1 / out_rate),
            "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-c:a", audio_codec, *(["-b:a", "128k"] if audio_codec == "aac" else []), "-ar", str(audio_rate), "-ac", "2",
            "-metadata", f"comment={PREVIEW_NOTE}", "-movflags", "+faststart",
            "-f", "mp4" if dest.suffix.lower() != ".mov" else "mov", str(tmp),
        ], ffmpeg=ffmpeg, what="The local preview render")
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)           # a failed render leaves no half-written file behind
    with av.open(str(dest)) as container:
        written = container.streams.video[0].frames
    return PreviewResult(path=dest, width=width, height=height, frame_rate=out_rate, frame_count=written,
                         duration=float(seconds), audio_rate=audio_rate, window=(first, end), tone_hz=tone)
