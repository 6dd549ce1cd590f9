"""Turns what a retake service returned into a version of the source: the window only, at the source's terms."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import ffmpeg

from ..atomic import write_atomic
from ..errors import MediaError
from ..ports import ConformSpec, MediaInfo, RetakeMode
from .ffmpeg_exe import run_ffmpeg
from .media_cut import (audio_window, even_size, rate_text, source_timing, source_video_window,
                        stamp_by_index)
from ..timing import format_timecode
from .media_probe import decode_count, probe_media, timecode_frame, verify_clip

__all__ = ["conform_clip", "output_geometry", "crossfade_edges", "dissolve_edges", "DNXHR_MIN_SIZE"]

# codec -> (ffmpeg output options, the picture's pixel format, the file suffixes it may be written as).
# The intermediate codecs carry PCM sound, 16-bit unless the version keeps a source's deeper sound (see _pcm_for).
# DNxHR HQ is 8-bit 4:2:2 at a rate its profile sets (about 3.5 bits a pixel, 176 Mb/s at 1080p24), any size from
# 256x120 up: what Resolve's free edition and Resolve on Linux decode (they cannot decode H.264/AAC there). ProRes
# 422 HQ (profile 3) keeps 10 bits, for sources that have them. H.264 at CRF 14 with x264's veryfast preset: on a
# 1080p window it encodes 1.8 times as fast as "fast" for an SSIM 0.001 lower (0.9946 against 0.9956, both far
# above what an editor sees; bench steps --context-table has the times).
_CODECS = {
    "h264": ({"c:v": "libx264", "preset": "veryfast", "crf": 14, "pix_fmt": "yuv420p", "c:a": "aac", "b:a": "256k"},
             "yuv420p", (".mp4", ".mov")),
    "prores": ({"c:v": "prores_ks", "profile:v": 3, "vendor": "apl0", "pix_fmt": "yuv422p10le"},
               "yuv422p10le", (".mov",)),
    "dnxhr": ({"c:v": "dnxhd", "profile:v": "dnxhr_hq", "pix_fmt": "yuv422p"},
              "yuv422p", (".mov",)),
}
_PCM_CODECS = ("prores", "dnxhr")
DNXHR_MIN_SIZE = (256, 120)     # ffmpeg's DNxHR encoder refuses smaller pictures
_LOSSLESS_AUDIO = {"flac", "alac", "wavpack", "tta", "truehd", "mlp"}


def output_geometry(source: MediaInfo) -> tuple[int, int, Fraction]:
    """The version's (width, height, sample aspect): the source's coded size and aspect; upright if it is rotated."""
    if source.rotation % 360:
        w, h = even_size(source.display_width, source.display_height, limit=None)
        return w, h, Fraction(1)
    w, h = even_size(source.width, source.height, limit=None)
    return w, h, Fraction(source.sample_aspect or 1)


def _pcm_for(source: MediaInfo, mode: RetakeMode) -> str:
    """The PCM format of an intermediate version's sound: 24-bit when it is the source's own sound and that is
    deeper than 16 bits (PCM or lossless at 24/32 bits or float), else 16-bit (the service's sound is AAC)."""
    if mode is not RetakeMode.REPLACE_VIDEO or not source.has_audio:
        return "pcm_s16le"
    name = (source.audio_codec or "").lower()
    if not (name.startswith("pcm_") or name in _LOSSLESS_AUDIO):
        return "pcm_s16le"
    try:
        with av.open(str(source.path)) as container:
            fmt = container.streams.audio[0].codec_context.format
            deep = bool(fmt and fmt.bytes > 2)
    except (av.error.FFmpegError, OSError, IndexError):
        deep = False
    return "pcm_s24le" if deep else "pcm_s16le"


def _check_size(codec: str, source: MediaInfo) -> None:
    """MediaError, before anything is decoded, when the version's picture is too small for `codec`."""
    width, height, _ = output_geometry(source)
    min_w, min_h = DNXHR_MIN_SIZE
    if codec == "dnxhr" and (width < min_w or height < min_h):
        raise MediaError(f"DNxHR needs a picture of at least {min_w}x{min_h}, and a version of "
                         f"{Path(source.path).name} is {width}x{height}; deliver it as prores or h264 instead "
                         "(--deliver prores).")


def _stampable(timecode: str, rate: Fraction) -> str:
    """`timecode` as ffmpeg accepts it at `rate`: HH:MM:SS:FF, with ';' only for drop-frame 29.97/59.94."""
    frame, drop = timecode_frame(timecode, rate)      # a malformed timecode is a MediaError here
    return format_timecode(frame, rate, drop)


def _snap_8k1(frames: int) -> int:
    """The largest count of the form 8k+1 not above `frames` (what the model keeps of a longer input)."""
    return frames if frames < 1 else (frames - 1) // 8 * 8 + 1


def _check_returned(returned: Path, spec: ConformSpec) -> MediaInfo:
    try:
        info = probe_media(returned)
        decoded = decode_count(returned, what="returned retake")
    except MediaError as exc:
        raise MediaError(f"The retake the service returned cannot be used: {exc}") from None
    if decoded < info.frame_count:
        raise MediaError(f"The retake the service returned ({returned}) lists {info.frame_count} frames but only "
                         f"{decoded} decode: the download is incomplete or damaged; download the result again.")
    sent = spec.cut.total_frames
    kept = _snap_8k1(sent)
    if decoded not in (sent, kept):
        # Frames are taken by index, so a return with another count (resampled to another rate, frames dropped
        # or added) would put the window on the wrong frames and still look fine. Only the whole cut, or the cut
        # snapped down to 8k+1 frames (the model drops the trailing rest), maps frame for frame.
        usable = f"{sent}" if kept == sent else f"{sent}, or {kept} after the model's snap to 8k+1"
        raise MediaError(f"The service returned {decoded} frames for an input of {sent} frames (a usable return "
                         f"has {usable}); the window cannot be located frame-accurately, so the result was not "
                         "used. The service resampled or trimmed the clip: retake again, and if it keeps happening "
                         "use another provider or model.")
    needed = spec.window_offset + spec.window_frames
    if decoded < needed:
        raise MediaError(f"The service returned {decoded} frames, but the window needs frames up to {needed} "
                         f"(the cut had {spec.cut.total_frames}); the result is too short to conform: retake with a "
                         "window that ends earlier, or check the service's frame limits.")
    return info


def crossfade_edges(before, after, *, samples: int, fade: int):
    """`after` (the new sound), crossfaded from `before` (the source's, same length) over `fade` samples at each edge:
    equal power (cos/sin gains), so a sound that changes keeps its loudness; the first and the last sample are the
    source's own, so the pieces either side of the window join it without a step."""
    fade = max(1, min(fade, samples // 2))
    p = f"if(lt(n,{fade}),n/{fade},if(gte(n,{samples - fade}),({samples - 1}-n)/{fade},1))"
    old = before.filter("aeval", exprs=f"val(ch)*cos(PI/2*{p})", c="same")
    new = after.filter("aeval", exprs=f"val(ch)*sin(PI/2*{p})", c="same")
    return ffmpeg.filter([old, new], "amix", inputs=2, normalize=0, duration="first").filter("asetpts", "N/SR/TB")


def dissolve_edges(before, after, *, frames: int, length: int, rate: Fraction):
    """`after` (the new picture), dissolving from `before` (the source's frames, same size) over `length` frames at
    each edge: frame i of a dissolve shows (i+1)/(length+1) of the new picture, so no frame inside the window is
    the source's alone and the frames either side of it are."""
    length = max(1, min(length, frames // 2))
    n = f"trunc(T*{rate.numerator}/{rate.denominator}+0.5)"   # the frame's index (blend's own N counts from 1)
    w = f"if(lt({n},{length}),({n}+1)/{length + 1},if(gte({n},{frames - length}),({frames}-{n})/{length + 1},1))"
    a = before.filter("format", "yuv444p")
    b = after.filter("format", "yuv444p")
    return ffmpeg.filter([a, b], "blend", all_expr=f"A*(1-{w})+B*{w}", shortest=1)


def conform_clip(returned: Path, spec: ConformSpec, dest: Path, *, ffmpeg_bin: str | None = None) -> MediaInfo:
    """Write the window of `returned` as a version of the source to `dest`, verified, atomically."""
    returned, dest = Path(returned), Path(dest)
    if spec.codec not in _CODECS:
        raise MediaError(f"Unknown version codec {spec.codec!r}; use one of {', '.join(_CODECS)}.")
    options, pix_fmt, suffixes = _CODECS[spec.codec]
    if dest.suffix.lower() not in suffixes:
        raise MediaError(f"A {spec.codec} version cannot be written as {dest.name}; name it with "
                         f"{' or '.join(suffixes)}.")
    if spec.window_frames < 1 or spec.window_offset < 0:
        raise MediaError(f"The window ({spec.window_frames} frames at offset {spec.window_offset}) is empty or "
                         "negative; plan the retake again.")
    source = spec.source
    _check_size(spec.codec, source)
    rate = Fraction(source.frame_rate)
    mode = RetakeMode(spec.mode)
    ret = _check_returned(returned, spec)
    ret_timing = source_timing(returned)
    width, height, sar = output_geometry(source)
    fades_sound = mode is not RetakeMode.REPLACE_VIDEO and source.has_audio and spec.crossfade_s > 0
    dissolves = mode is not RetakeMode.REPLACE_AUDIO and source.has_video and spec.dissolve_frames > 0
    need_source = (mode is RetakeMode.REPLACE_AUDIO or (mode is RetakeMode.REPLACE_VIDEO and source.has_audio)
                   or fades_sound or dissolves)
    if need_source and not source.variable_frame_rate and \
            spec.window_start_frame + spec.window_frames > source.frame_count:
        raise MediaError(f"The window (source frames {spec.window_start_frame} to "
                         f"{spec.window_start_frame + spec.window_frames - 1}) runs past the end of {source.path} "
                         f"({source.frame_count} frames); plan the retake again.")
    if need_source:
        src_timing = source_timing(source.path)
        src_inp, src_video, src_t0, src_span = source_video_window(
            source, src_timing, spec.window_start_frame, spec.window_frames, rate)
    ret_inp = ffmpeg.input(str(returned))
    if mode is RetakeMode.REPLACE_AUDIO:
        video = src_video
    else:
        video = stamp_by_index(ret_inp[str(ret_timing.video_index)]
                       .filter("trim", start_frame=spec.window_offset,
                               end_frame=spec.window_offset + spec.window_frames), rate)
    video = video.filter("scale", width, height, flags="bicubic")
    if dissolves:
        before = src_video.filter("scale", width, height, flags="bicubic")
        video = dissolve_edges(before, video, frames=spec.window_frames, length=spec.dissolve_frames, rate=rate)
    video = video.filter("setsar", f"{sar.numerator}/{sar.denominator}").filter("format", pix_fmt)
    out_rate = source.audio_rate or 48000
    channels = source.audio_channels or 2
    window_s = Fraction(spec.window_frames) / rate
    if mode is RetakeMode.REPLACE_VIDEO:
        audio = (audio_window(src_inp[str(src_timing.audio_index)], start_s=src_t0, duration_s=src_span,
                              play_s=window_s, out_rate=out_rate, channels=channels) if source.has_audio else None)
    else:
        if ret_timing.audio_index is None or not ret.audio_rate:
            raise MediaError(f"The service returned no sound, but mode {mode.value} keeps the returned sound; "
                             "retake with replace_video, or check the service's output settings.")
        ret_rate = Fraction(ret.frame_rate)
        audio = audio_window(ret_inp[str(ret_timing.audio_index)],
                             start_s=ret_timing.video_start + Fraction(spec.window_offset) / ret_rate,
                             duration_s=Fraction(spec.window_frames) / ret_rate, trim_rate=ret.audio_rate,
                             play_s=window_s, out_rate=out_rate, channels=channels)
        if fades_sound:
            before = audio_window(src_inp[str(src_timing.audio_index)], start_s=src_t0, duration_s=src_span,
                                  play_s=window_s, out_rate=out_rate, channels=channels)
            audio = crossfade_edges(before, audio, samples=round(window_s * out_rate),
                                    fade=round(spec.crossfade_s * out_rate))
    opts = dict(options)
    if spec.codec in _PCM_CODECS:
        opts["c:a"] = _pcm_for(source, mode)
    opts.update({"r": rate_text(rate), "map_metadata": -1, "f": "mp4" if dest.suffix.lower() == ".mp4" else "mov",
                 "movflags": "+faststart"})
    if audio is not None:
        opts["ar"] = out_rate
    if spec.timecode:
        opts["timecode"] = _stampable(spec.timecode, rate)
    streams = [video] + ([audio] if audio is not None else [])
    found: list[MediaInfo] = []

    def encode(tmp: Path) -> None:
        args = ffmpeg.output(*streams, str(tmp), **opts).get_args()
        run_ffmpeg(args, ffmpeg=ffmpeg_bin, what=f"Conforming the retake of {Path(source.path).name}")

    def verify(tmp: Path) -> None:
        found.append(verify_clip(tmp, spec.window_frames, rate, expect_audio=audio is not None, what="conformed version"))

    write_atomic(dest, encode, verify=verify, what=f"the version {dest.name}")
    return replace(found[-1], path=str(dest))
