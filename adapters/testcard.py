"""Test media whose frames carry their own index and whose sound carries sync marks, and their readers.

Picture: a 4 x 7 grid of black/white cells over the central 80% of the frame. The four corner cells are
references (top white, bottom black: they set the threshold and the orientation); the other 24 carry the
16-bit frame index (most significant bit first) and its CRC-8, so a misread is refused, not believed.
Around and between the cells a colour gradient, a moving bar and the index in digits (bottom margin, for
people) make it look like a picture.

Sound: silence with a 20 ms tone burst starting exactly at the first sample of every frame whose index is a
multiple of `mark_every`; the burst's pitch, 500 + 250 * ((index // mark_every) % 4) Hz, tells neighbouring
marks apart. `audio_marks` finds the bursts' onsets (to well under a millisecond) and pitches.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import ffmpeg
import numpy as np

from ..atomic import copy_atomic
from ..errors import MediaError
from ..scratch import scratch_dir
from .ffmpeg_exe import ffmpeg_path, own_process_group, run_ffmpeg
from .media_sheet import draw_text, text_width

__all__ = [
    "write_indexed_clip",
    "render_frame",
    "read_index",
    "encode_cells",
    "audio_marks",
    "mark_frequency",
    "write_marks_wav",
    "AudioMark",
    "ROWS",
    "COLS",
]

ROWS, COLS = 4, 7
_REF_WHITE = (0, COLS - 1)                              # top corners
_REF_BLACK = ((ROWS - 1) * COLS, ROWS * COLS - 1)       # bottom corners
_DATA_CELLS = [i for i in range(ROWS * COLS) if i not in _REF_WHITE + _REF_BLACK]   # 24: 16 index + 8 CRC
_MARGIN = 0.10                                          # the grid spans [10%, 90%] of each side
_GAP = 0.08                                             # gap between cells, as a share of a cell
_INSETS = (0.0, 0.03, 0.06)                             # picture shrunk inside a border this wide per side
_MARK_SECONDS = 0.020
_MARK_AMPLITUDE = 0.5


def _crc8(value: int) -> int:
    crc = 0
    for byte in ((value >> 8) & 0xFF, value & 0xFF):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode_cells(index: int) -> list[bool]:
    """The 28 cells (row-major, True = white) that encode `index` (taken modulo 65536)."""
    value = index & 0xFFFF
    bits = [bool(value >> (15 - b) & 1) for b in range(16)] + [bool(_crc8(value) >> (7 - b) & 1) for b in range(8)]
    cells = [False] * (ROWS * COLS)
    for i in _REF_WHITE:
        cells[i] = True
    for cell, bit in zip(_DATA_CELLS, bits):
        cells[cell] = bit
    return cells


def _background(width: int, height: int) -> np.ndarray:
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    bg = np.empty((height, width, 3), np.float32)
    bg[..., 0] = 40 + 170 * x + 0 * y
    bg[..., 1] = 60 + 140 * y + 0 * x
    bg[..., 2] = 200 - 120 * x * y
    return bg.astype(np.uint8)


def _cell_box(row: int, col: int, width: int, height: int, inner: float) -> tuple[int, int, int, int]:
    cw, ch = (1 - 2 * _MARGIN) / COLS, (1 - 2 * _MARGIN) / ROWS
    pad = (1 - inner) / 2
    x0, x1 = _MARGIN + (col + pad) * cw, _MARGIN + (col + 1 - pad) * cw
    y0, y1 = _MARGIN + (row + pad) * ch, _MARGIN + (row + 1 - pad) * ch
    return round(x0 * width), round(x1 * width), round(y0 * height), round(y1 * height)


def render_frame(index: int, width: int, height: int, _bg: np.ndarray | None = None) -> np.ndarray:
    """One RGB frame (height, width, 3) carrying `index`."""
    frame = (_background(width, height) if _bg is None else _bg).copy()
    bar_w = max(2, width // 40)
    bar_x = (index * max(1, width // 60)) % max(1, width - bar_w)
    frame[: max(2, round(height * _MARGIN * 0.6)), bar_x:bar_x + bar_w] = (255, 230, 0)
    for cell, white in enumerate(encode_cells(index)):
        x0, x1, y0, y1 = _cell_box(cell // COLS, cell % COLS, width, height, 1 - _GAP)
        frame[y0:y1, x0:x1] = 255 if white else 0
    scale = int(height * _MARGIN * 0.8 // 7)
    if scale >= 1:
        label = str(index)
        draw_text(frame, label, (width - text_width(label, scale)) // 2, height - round(height * _MARGIN * 0.9),
                  scale=scale)
    return frame


def _read_grid(rgb: np.ndarray, inset: float) -> int | None:
    h, w = rgb.shape[:2]
    ox, oy = round(w * inset), round(h * inset)
    iw, ih = w - 2 * ox, h - 2 * oy
    if iw < COLS * 2 or ih < ROWS * 2:
        return None
    means = []
    for cell in range(ROWS * COLS):
        x0, x1, y0, y1 = _cell_box(cell // COLS, cell % COLS, iw, ih, 0.5)
        step = max(1, (x1 - x0) // 12)
        patch = rgb[oy + y0:oy + max(y1, y0 + 1):step, ox + x0:ox + max(x1, x0 + 1):step]
        means.append(float(patch.mean()))
    white = min(means[i] for i in _REF_WHITE)
    black = max(means[i] for i in _REF_BLACK)
    contrast = white - black
    if contrast < 48:
        return None
    threshold = (white + black) / 2
    bits = []
    for cell in _DATA_CELLS:
        v = means[cell]
        if abs(v - threshold) < 0.2 * contrast:
            return None
        bits.append(v > threshold)
    value = int("".join("1" if b else "0" for b in bits[:16]), 2)
    crc = int("".join("1" if b else "0" for b in bits[16:]), 2)
    return value if _crc8(value) == crc else None


def read_index(rgb: np.ndarray) -> int | None:
    """The index a frame carries (modulo 65536), or None when no reading checks out.

    Survives heavy H.264 compression, scaling to any size (also non-uniform), a tint, a coloured border
    drawn over the frame or around a shrunk picture (up to ~6% per side), and rotation by 90/180/270 degrees.
    """
    frame = np.asarray(rgb)
    if frame.ndim == 2:
        frame = frame[..., None]
    for turns in (0, 1, 3, 2):
        view = np.rot90(frame, turns) if turns else frame
        for inset in _INSETS:
            found = _read_grid(view, inset)
            if found is not None:
                return found
    return None


def mark_frequency(index: int, mark_every: int) -> float:
    """The pitch of the sync mark at frame `index` (a multiple of `mark_every`)."""
    return 500.0 + 250.0 * ((index // mark_every) % 4)


def _marks_audio(frames: int, rate: Fraction, audio_rate: int, channels: int, mark_every: int,
                 first_index: int = 0) -> np.ndarray:
    total = round(Fraction(frames) * audio_rate / rate)
    samples = np.zeros(total, np.float32)
    burst = round(_MARK_SECONDS * audio_rate)
    t = np.arange(burst, dtype=np.float32) / audio_rate
    fade = np.minimum(1.0, (burst - np.arange(burst)) / max(1, burst // 4)).astype(np.float32)
    for i in range(frames):
        index = first_index + i
        if index % mark_every:
            continue
        start = round(Fraction(i) * audio_rate / rate)
        tone = _MARK_AMPLITUDE * np.sin(2 * np.pi * mark_frequency(index, mark_every) * t + np.pi / 2) * fade
        end = min(total, start + burst)
        samples[start:end] += tone[: end - start]
    return np.repeat(samples[:, None], channels, axis=1)


def write_marks_wav(path: Path, samples: np.ndarray, audio_rate: int) -> Path:
    """Write float samples (n, channels) in [-1, 1] as a 16-bit WAV file."""
    data = np.clip(np.asarray(samples, np.float32), -1, 1)
    if data.ndim == 1:
        data = data[:, None]
    pcm = (data * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(audio_rate)
        out.writeframes(pcm.tobytes())
    return Path(path)


_CODECS = {
    "h264": {"c:v": "libx264", "preset": "veryfast", "crf": 18, "pix_fmt": "yuv420p"},
    "prores": {"c:v": "prores_ks", "profile:v": 3, "pix_fmt": "yuv422p10le"},
    "mjpeg": {"c:v": "mjpeg", "q:v": 3, "pix_fmt": "yuvj420p"},
}


def write_indexed_clip(path: str | Path, *, frames: int, rate: Fraction, size: tuple[int, int] = (320, 180),
                       timecode: str | None = None, audio: bool = True, audio_rate: int = 48000,
                       audio_channels: int = 2, sar: Fraction | None = None, drop_frame: bool = False,
                       rotation: int = 0, codec: str = "h264", crf: int | None = None, mark_every: int | None = None,
                       first_index: int = 0, ffmpeg_bin: str | None = None) -> Path:
    """Write a clip of `frames` frames at `rate` whose frame i shows index first_index + i.

    `timecode` is stamped as the start timecode (with `drop_frame` its last ':' becomes ';'); `sar` makes
    it anamorphic; `rotation` (degrees clockwise a player applies) is written as a display matrix;
    `codec` is "h264" (default, MP4/MOV), "prores" (MOV) or "mjpeg". Audio marks (see module doc) come
    every `mark_every` frames (default: about twice a second). Returns `path`.
    """
    dest = Path(path)
    rate = Fraction(rate)
    width, height = size
    if codec not in _CODECS:
        raise MediaError(f"write_indexed_clip cannot write codec {codec!r}; use one of {', '.join(_CODECS)}.")
    mark_every = mark_every or max(1, round(rate / 2))
    if timecode and drop_frame and ";" not in timecode:
        timecode = timecode[:8] + ";" + timecode[9:]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = scratch_dir("testcard")    # intermediate files: never beside the clip, swept after a kill
    try:
        video_in = ffmpeg.input("pipe:", f="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=str(rate))
        v = video_in.video
        if sar is not None:
            v = v.filter("setsar", f"{Fraction(sar).numerator}/{Fraction(sar).denominator}")
        streams = [v]
        out_opts = dict(_CODECS[codec])
        if crf is not None and codec == "h264":
            out_opts["crf"] = crf
        if audio:
            wav = write_marks_wav(Path(tmp) / "marks.wav",
                                  _marks_audio(frames, rate, audio_rate, audio_channels, mark_every, first_index),
                                  audio_rate)
            streams.append(ffmpeg.input(str(wav)).audio)
            out_opts["c:a"] = "pcm_s16le" if codec == "prores" else "aac"
            if codec != "prores":
                out_opts["b:a"] = "256k"
        if timecode:
            out_opts["timecode"] = timecode
        encoded = Path(tmp) / ("encoded" + dest.suffix)
        out_opts["r"] = str(rate)
        args = ffmpeg.output(*streams, str(encoded), **out_opts).get_args()
        cmd = [ffmpeg_path(ffmpeg_bin), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
        _pipe_frames(cmd, frames, width, height, first_index)
        final = Path(tmp) / ("final" + dest.suffix)
        if rotation % 360:
            # ffmpeg's display_rotation is counter-clockwise; ours is what a player turns clockwise.
            run_ffmpeg(["-display_rotation:v:0", str((-rotation) % 360), "-i", str(encoded), "-map", "0",
                        "-c", "copy", str(final)], ffmpeg=ffmpeg_bin, what="Writing the rotation")
        else:
            final = encoded
        copy_atomic(final, dest, what=f"the test clip {dest.name}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _pipe_frames(cmd: list[str], frames: int, width: int, height: int, first_index: int) -> None:
    bg = _background(width, height)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            **own_process_group())
    try:
        for i in range(frames):
            proc.stdin.write(render_frame(first_index + i, width, height, bg).tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode("utf-8", "replace")
    if proc.wait() != 0:
        raise MediaError("Writing the test clip failed: " + " | ".join(err.strip().splitlines()[-4:]))


class AudioMark(NamedTuple):
    """A sync mark heard in a file: when it starts (seconds, in the file's presentation time) and its pitch."""

    time: float
    frequency: float


def _decode_mono(path: Path) -> tuple[np.ndarray, int, float]:
    from .media_probe import open_media

    with open_media(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path} has no audio stream, so it has no sync marks to find.")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None and frame.pts is not None:
                start = float(frame.pts * frame.time_base)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
        data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        return data, stream.rate, start or 0.0


def audio_marks(path: str | Path, *, threshold: float = 0.2) -> list[AudioMark]:
    """The sync marks in the first audio stream of `path`: onset time and pitch of each tone burst.

    An onset is the first sample whose magnitude passes `threshold` (the marks peak at 0.5) after at
    least 30 ms below it.
    """
    data, rate, start = _decode_mono(Path(path))
    loud = np.flatnonzero(np.abs(data) >= threshold)
    marks: list[AudioMark] = []
    quiet = round(0.030 * rate)
    last = -quiet - 1
    window = round(0.012 * rate)
    for pos in loud:
        if pos - last > quiet:
            seg = data[pos:pos + window]
            spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n=8192))
            freq = float(np.argmax(spectrum) * rate / 8192)
            marks.append(AudioMark(start + pos / rate, freq))
        last = pos
    return marks
