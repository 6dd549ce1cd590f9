"""Pictures and sound for playback: a frame reader that seeks (a viewer's scrubbing) and a span of sound as PCM."""

from __future__ import annotations

import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import MediaError
from .media_probe import _video_stream, open_media

__all__ = ["FrameReader", "read_sound"]

_FORWARD = 48          # a wanted frame at most this far ahead of the last one decoded is reached by decoding on


class _Open:
    """One open file: its container, video stream and where decoding stands."""

    def __init__(self, path: Path, max_size: tuple[int, int] | None):
        self.container = open_media(path)
        self.stream = _video_stream(self.container, path)
        self.stream.thread_type = "AUTO"
        s = self.stream
        self.rate = Fraction(s.average_rate or s.guessed_rate or 24)
        self.tb = s.time_base
        self.start = s.start_time if s.start_time is not None else 0
        self.frames = s.frames or 0
        self.max_size = max_size
        self.last = -1                   # index of the last frame decoded
        self.decoder = None

    def index_of(self, frame) -> int:
        pts = frame.pts if frame.pts is not None else 0
        return round(float((pts - self.start) * self.tb * self.rate))

    def seek(self, index: int) -> None:
        target = self.start + round(Fraction(index) / self.rate / self.tb)
        self.container.seek(max(self.start, target), stream=self.stream, backward=True, any_frame=False)
        self.decoder = self.container.decode(self.stream)
        self.last = -1

    def rgb(self, frame) -> np.ndarray:
        if self.max_size is not None:
            w, h = frame.width, frame.height
            scale = min(1.0, self.max_size[0] / w, self.max_size[1] / h)
            if scale < 1.0:
                return frame.to_ndarray(width=max(2, round(w * scale)) // 2 * 2, height=max(2, round(h * scale)) // 2 * 2,
                                        format="rgb24")
        return frame.to_ndarray(format="rgb24")

    def read(self, index: int) -> np.ndarray:
        if self.decoder is None or not (self.last < index <= self.last + _FORWARD):
            self.seek(index)
        found = None
        for frame in self.decoder:
            n = self.index_of(frame)
            self.last = n
            if n >= index:
                found = frame
                break
        if found is None:
            self.decoder = None
            raise MediaError(f"{self.container.name} has no frame {index} (it ends before it).")
        return self.rgb(found)

    def close(self) -> None:
        self.container.close()


class FrameReader:
    """Frames by index (0 = the first) from files kept open, for a viewer: a frame just ahead of the last one read is
    decoded on, any other is sought (to the keyframe before it, then decoded on). The index is taken from the
    frame's time at the stream's average rate, so it is exact for constant-rate files (a variable-rate file shows
    the frame nearest in time). Thread-safe; at most `keep_open` files stay open. `max_size` scales pictures down."""

    def __init__(self, *, keep_open: int = 4, max_size: tuple[int, int] | None = (1920, 1080)):
        self.keep_open, self.max_size = keep_open, max_size
        self._open: OrderedDict[Path, _Open] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, path: str | Path, index: int) -> np.ndarray:
        """The RGB picture (height, width, 3) of frame `index` of `path`; MediaError when it cannot be had."""
        p = Path(path)
        with self._lock:
            handle = self._open.pop(p, None)
            try:
                if handle is None:
                    handle = _Open(p, self.max_size)
                image = handle.read(max(0, int(index)))
            except av.error.FFmpegError as exc:
                if handle is not None:
                    handle.close()
                raise MediaError(f"{p} does not decode at frame {index} ({exc}); the file may be damaged.") from None
            except MediaError:
                if handle is not None:
                    self._open[p] = handle
                raise
            self._open[p] = handle
            while len(self._open) > self.keep_open:
                self._open.popitem(last=False)[1].close()
            return image

    def close(self) -> None:
        with self._lock:
            for handle in self._open.values():
                handle.close()
            self._open.clear()


def read_sound(path: str | Path, start_s: float, duration_s: float, *, rate: int = 48000, channels: int = 2) -> np.ndarray:
    """The sound of `path` over [start_s, start_s + duration_s) as 16-bit PCM, shape (samples, channels).

    Seconds count from the file's first video frame (from the sound's start when there is no video), the same origin
    as frame indices. Silence where the file has no sound there (or none at all). MediaError when it cannot be read.
    """
    want = max(0, round(duration_s * rate))
    out = np.zeros((want, channels), np.int16)
    if want == 0:
        return out
    p = Path(path)
    layout = "mono" if channels == 1 else "stereo"
    with open_media(p) as container:
        if not container.streams.audio:
            return out
        audio = container.streams.audio[0]
        video = next((s for s in container.streams.video), None)
        zero = 0.0
        if video is not None and video.start_time is not None:
            zero = float(video.start_time * video.time_base)
        elif audio.start_time is not None:
            zero = float(audio.start_time * audio.time_base)
        t0 = zero + start_s
        try:
            container.seek(max(0, int((t0 - 0.5) / audio.time_base)), stream=audio, backward=True)
        except av.error.FFmpegError:
            container.seek(0, stream=audio)
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        filled = 0
        try:
            for frame in container.decode(audio):
                if frame.pts is None:
                    continue
                at = float(frame.pts * frame.time_base)
                for res in resampler.resample(frame):
                    data = res.to_ndarray().reshape(-1, channels)
                    first = round((at - t0) * rate)            # where this chunk's first sample lands in `out`
                    at += data.shape[0] / rate
                    a, b = max(0, first), min(want, first + data.shape[0])
                    if b > a:
                        out[a:b] = data[a - first:b - first]
                        filled = max(filled, b)
                if filled >= want or at > t0 + duration_s + 0.1:
                    break
        except av.error.FFmpegError as exc:
            raise MediaError(f"The sound of {p} does not decode ({exc}); the file may be damaged.") from None
    return out
