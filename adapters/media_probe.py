"""Reads what a media file is (exact rate, frame count, geometry, timecode) in process with PyAV."""

from __future__ import annotations

import os
import struct
import threading
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from statistics import median

import av
import numpy as np

from ..errors import InputError, MediaError
from ..ports import MediaInfo
from ..timing import exact_rate, is_drop_frame_rate, parse_timecode

__all__ = [
    "probe_media",
    "timecode_frame",
    "decode_count",
    "read_frames",
    "open_media",
    "verify_clip",
]

# Containers whose index (the sample table) lists every frame, so counting it is exact and costs no reading.
_INDEXED_FORMATS = ("mov", "mp4")
_IMAGE_FORMATS = ("image2", "image2pipe", "png_pipe", "jpeg_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe",
                  "gif", "apng")


def timecode_frame(timecode: str, rate: Fraction) -> tuple[int, bool]:
    """A media file's timecode tag as a frame number, and whether it is drop-frame.

    Lenient as media tags need: a ';' at a rate without drop-frame (seen in the wild) counts as ':'.
    """
    drop = (";" in timecode or "," in timecode) and is_drop_frame_rate(rate)
    text = timecode.strip().replace(",", ";")
    if not drop:
        text = text.replace(";", ":").replace(".", ":")
    try:
        return parse_timecode(text, rate, drop_frame=drop), drop
    except InputError:
        raise MediaError(f"Timecode {timecode!r} is not of the form HH:MM:SS:FF; fix the timecode or leave it out.") from None


def open_media(path: str | Path, what: str = "media file"):
    """Open `path` with PyAV, turning every failure into a MediaError that says what to do."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"There is no {what} at {p}: check the path, or relink the clip to its media.")
    if p.is_dir():
        raise MediaError(f"{p} is a folder, not a {what}: point at the media file itself.")
    try:
        return av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(f"{p} is not a {what} that ffmpeg can read ({exc.__class__.__name__}: {exc}); "
                         "check that the file is complete and is a video.") from None


def _video_stream(container, path: Path):
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(f"{path} has no video stream: a retake needs a video clip, not audio or data alone.")


def _frame_times(container, stream, path: Path | None = None) -> tuple[list[int], int, bool]:
    """Timestamps of every coded frame of `stream`, how many of them are frames of the clip, and whether they
    came from the index alone.

    An MP4/MOV's index is read from its headers, so this costs nothing per byte of media; other containers
    (MKV, MXF, AVI, TS) are demuxed packet by packet, which reads the whole file. Frames an edit list cuts
    away (a losslessly trimmed file starts mid-GOP) are marked `discard`: the decoder drops them, so they are
    not counted, but their timestamps stay in the list, which keeps its even spacing for the rate check.
    """
    fmt = container.format.name
    if any(name in fmt.split(",") for name in _INDEXED_FORMATS):
        entries = stream.index_entries
        kept = sum(1 for e in entries if not e.is_discard)
        if kept and _index_is_whole(container, stream, len(entries), path):
            return [e.timestamp for e in entries], kept, True
    stamps, kept = [], 0
    for packet in container.demux(stream):
        if packet.size:
            stamps.append(packet.pts if packet.pts is not None else (packet.dts or 0))
            kept += not packet.is_discard
    container.seek(0)
    return stamps, kept, False


def _index_is_whole(container, stream, indexed: int, path: Path | None) -> bool:
    """Does the MP4/MOV index list every sample of the file?

    A plain file's sample table does, and agrees with the header's frame count. A fragmented file (moof
    boxes, as screen recorders and some cameras write) has its index built from the fragments' headers,
    which ffmpeg reads when it opens a seekable file; it is whole when samples are indexed beyond the last
    fragment's header and no box runs past the end of the file. Walking the top-level boxes reads a few
    bytes per box, never the media.
    """
    last_fragment = _last_fragment_offset(path) if path is not None else None
    if last_fragment is None:
        return indexed == stream.frames
    if last_fragment < 0:
        return False
    reach = max((e.pos for s in container.streams for e in s.index_entries if e.pos >= 0), default=-1)
    return reach > last_fragment


_MAX_TOP_BOXES = 2_000_000


def _last_fragment_offset(path: Path) -> int | None:
    """The byte offset of the last `moof` box of an MP4/MOV; None when it has none; -1 when it is fragmented
    and its boxes do not add up to the file (cut short, or still being written: its index is not whole)."""
    last = None
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            offset = 0
            for _ in range(_MAX_TOP_BOXES):
                if offset + 8 > end:
                    return last if last is None or offset == end else -1
                f.seek(offset)
                head = f.read(16)
                size, kind = struct.unpack(">I4s", head[:8])
                if size == 1 and len(head) == 16:
                    size = struct.unpack(">Q", head[8:16])[0]
                elif size == 0:
                    size = end - offset
                if size < 8:
                    return None if last is None else -1
                if kind == b"moof":
                    last = offset
                offset += size
    except (OSError, struct.error):
        return None
    return None if last is None else -1


def _is_variable(stamps: list[int]) -> bool:
    ordered = sorted(stamps)
    deltas = [b - a for a, b in zip(ordered, ordered[1:])]
    if len(deltas) < 2:
        return False
    mid = median(deltas)
    tolerance = max(1.0, 0.02 * mid)
    return any(abs(d - mid) > tolerance for d in deltas)


def _first_frame(container, stream, path: Path):
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path} does not decode ({exc}); the file is damaged or incomplete: fetch or export it again.") from None
    raise MediaError(f"{path} has a video stream with no decodable frames; export the clip again.")


def _timecode(container) -> str | None:
    for source in [container.metadata, *[s.metadata for s in container.streams]]:
        tc = source.get("timecode")
        if tc:
            return tc
    return None


def probe_media(path: str | Path) -> MediaInfo:
    """Probe `path`: exact frame rate and count, coded and display geometry, audio, timecode.

    Results are remembered per (path, size, modification time), so probing a long source again is free.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        st = None
    if st is None or not p.is_file():
        return _probe(p)
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _PROBING_GUARD:  # jobs probing one source together: one of them probes, the others wait and share it
        lock = _PROBING.setdefault(key, threading.Lock())
    with lock:
        info = _probe_cached(*key)
    with _PROBING_GUARD:
        _PROBING.pop(key, None)
    return info


_PROBING: dict[tuple, threading.Lock] = {}
_PROBING_GUARD = threading.Lock()


@lru_cache(maxsize=128)
def _probe_cached(path: str, size: int, mtime_ns: int) -> MediaInfo:
    return _probe(Path(path))


def _probe(p: Path) -> MediaInfo:
    with open_media(p) as container:
        if container.format.name in _IMAGE_FORMATS or container.format.name.endswith("_pipe"):
            raise MediaError(f"{p} is a still image, not a video clip; retakes need moving pictures.")
        vs = _video_stream(container, p)
        measured = vs.average_rate or vs.guessed_rate or vs.base_rate
        if not measured:
            raise MediaError(f"{p} does not say its frame rate; re-export it with a constant frame rate.")
        rate = exact_rate(Fraction(measured))
        stamps, count, _ = _frame_times(container, vs, p)
        count = count or (vs.frames or 0)
        variable = _is_variable(stamps)
        first = _first_frame(container, vs, p)
        rotation = (-int(round(first.rotation or 0))) % 360
        width, height = vs.codec_context.width or first.width, vs.codec_context.height or first.height
        sar = vs.sample_aspect_ratio or vs.codec_context.sample_aspect_ratio or Fraction(1)
        sar = Fraction(sar) if sar > 0 else Fraction(1)
        dw, dh = round(width * sar), height
        if rotation in (90, 270):
            dw, dh = dh, dw
        if not count:
            count = decode_count(p)
        audio = container.streams.audio[0] if container.streams.audio else None
        tc = _timecode(container)
        start_frame, drop = (0, False)
        if tc:
            try:
                start_frame, drop = timecode_frame(tc, rate)
            except MediaError:
                tc = None
        return MediaInfo(
            path=str(p),
            frame_rate=rate,
            frame_count=count,
            width=width,
            height=height,
            display_width=dw,
            display_height=dh,
            sample_aspect=sar,
            rotation=rotation,
            has_video=True,
            has_audio=audio is not None,
            audio_rate=audio.rate if audio else None,
            audio_channels=audio.channels if audio else None,
            start_timecode=tc,
            start_frame=start_frame,
            drop_frame=drop,
            duration_s=float(count / rate) if rate else 0.0,
            variable_frame_rate=variable,
            video_codec=vs.codec_context.name,
            audio_codec=audio.codec_context.name if audio else None,
        )


def decode_count(path: str | Path, *, what: str = "media file") -> int:
    """Decode every video frame of `path` and count them; a decoding error is a MediaError."""
    p = Path(path)
    with open_media(p, what) as container:
        vs = _video_stream(container, p)
        vs.thread_type = "AUTO"
        count = 0
        try:
            for frame in container.decode(vs):
                if frame.is_corrupt:
                    raise MediaError(f"Frame {count} of {p} is corrupt; the file is damaged: fetch or export it again.")
                count += 1
        except av.error.FFmpegError as exc:
            raise MediaError(f"{p} stops decoding after {count} frames ({exc}); the file is damaged or "
                             "incomplete: fetch or export it again.") from None
        return count


def read_frames(path: str | Path, indices, *, upright: bool = True) -> dict[int, np.ndarray]:
    """Frames of `path` at the given indices (0 = first frame) as RGB arrays (height, width, 3), uint8.

    Decodes sequentially from the start and stops after the last wanted frame, so indices are exact
    whatever the timestamps say. `upright` applies the file's display rotation (not its pixel aspect).
    """
    wanted = sorted(set(int(i) for i in indices))
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    p = Path(path)
    with open_media(p) as container:
        vs = _video_stream(container, p)
        vs.thread_type = "AUTO"
        last = wanted[-1]
        want = set(wanted)
        n = -1
        try:
            for n, frame in enumerate(container.decode(vs)):
                if n in want:
                    rgb = frame.to_ndarray(format="rgb24")
                    turns = round((frame.rotation or 0) / 90) % 4
                    out[n] = np.ascontiguousarray(np.rot90(rgb, turns)) if upright and turns else rgb
                if n >= last:
                    break
        except av.error.FFmpegError as exc:
            raise MediaError(f"{p} stops decoding at frame {n + 1} ({exc}); the file is damaged: export it again.") from None
    missing = [i for i in wanted if i not in out]
    if missing:
        raise MediaError(f"{p} has only {n + 1} frames; frame {missing[0]} does not exist.")
    return out


def verify_clip(path: str | Path, expect_frames: int, frame_rate: Fraction, *,
                expect_audio: bool | None = None, what: str = "clip") -> MediaInfo:
    """Decode every frame and sample of `path`; check frame count, rate and sound length, else MediaError."""
    p = Path(path)
    info = probe_media(p)
    rate = Fraction(frame_rate)
    if info.frame_rate != rate:
        raise MediaError(f"The {what} {p} runs at {info.frame_rate} fps, not {rate}; it cannot line up with "
                         "its source: make it again.")
    frames, samples = 0, 0
    with open_media(p) as container:
        vs = _video_stream(container, p)
        vs.thread_type = "AUTO"
        streams = [vs] + ([container.streams.audio[0]] if container.streams.audio else [])
        try:
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if packet.stream is vs:
                        frames += 1
                    else:
                        samples += frame.samples
        except av.error.FFmpegError as exc:
            raise MediaError(f"The {what} {p} stops decoding after {frames} frames ({exc}); it is damaged: "
                             "make it again.") from None
    if frames != expect_frames:
        raise MediaError(f"The {what} {p} has {frames} frames, not the {expect_frames} expected; it is "
                         "incomplete or mis-cut: make it again.")
    if expect_audio is not None and expect_audio != info.has_audio:
        raise MediaError(f"The {what} {p} {'lacks' if expect_audio else 'has'} a sound track, against its plan; "
                         "make it again.")
    if info.has_audio and info.audio_rate:
        want = float(Fraction(expect_frames) / rate) * info.audio_rate
        slack = info.audio_rate / float(rate) + 2048
        if abs(samples - want) > slack:
            raise MediaError(f"The {what} {p} has {samples / info.audio_rate:.3f} s of sound for "
                             f"{float(expect_frames / rate):.3f} s of picture; make it again.")
    return info
