"""Fixtures and helpers for the service tests: small real clips, a local service, sleeps that do not sleep."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import httpx
import numpy as np
import pytest

from ltx_retake.adapters.ffmpeg_exe import run_ffmpeg
from ltx_retake.adapters.local_service import Fault, LocalService, LocalServiceConfig

__all__ = [
    "make_clip",
    "read_bar_indices",
    "probe",
    "Probe",
    "window_marked",
    "dominant_frequency",
    "RecordingSleep",
    "tone_seconds",
    "running_service",
    "clip97",
    "tiny_clip",
    "http",
    "Fault",
    "LocalServiceConfig",
]

BARS = 8


def make_clip(path: Path, *, frames: int, rate: str = "24", size: str = "320x240", audio_hz: int | None = 1000,
              audio_rate: int = 44100) -> Path:
    """A clip whose frame n shows n in binary as 8 black/white vertical bars (bar k = bit k), with a sine."""
    pattern = f"geq=lum='if(mod(floor(N/pow(2,floor(X*{BARS}/W))),2),235,16)':cb=128:cr=128"
    args = ["-f", "lavfi", "-i", f"color=c=gray:size={size}:rate={rate}"]
    if audio_hz:
        args += ["-f", "lavfi", "-i", f"sine=frequency={audio_hz}:sample_rate={audio_rate}"]
    args += ["-vf", pattern, "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12",
             "-pix_fmt", "yuv420p"]
    if audio_hz:
        args += ["-c:a", "aac", "-shortest"]
    run_ffmpeg([*args, str(path)], what="making a test clip")
    return path


def read_bar_indices(path: Path) -> list[int]:
    """The index each decoded frame shows, read at the middle row of the picture."""
    found = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            luma = frame.to_ndarray(format="gray")
            row = luma[luma.shape[0] // 2]
            width = luma.shape[1]
            bits = [row[int((k + 0.5) * width / BARS)] > 128 for k in range(BARS)]
            found.append(sum(1 << k for k, on in enumerate(bits) if on))
    return found


class Probe:
    """What a test wants to know of a rendered file."""

    def __init__(self, path: Path):
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            self.width, self.height = video.width, video.height
            self.rate = Fraction(video.average_rate)
            self.frames = sum(1 for _ in container.decode(video=0))
            self.audio_rate = container.streams.audio[0].rate if container.streams.audio else None
            self.comment = container.metadata.get("comment", "")


def probe(path: Path) -> Probe:
    return Probe(path)


def window_marked(path: Path) -> list[bool]:
    """Per frame: is the preview engine's magenta border drawn (left edge, middle row)?"""
    marked = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            r, g, b = (int(v) for v in rgb[rgb.shape[0] // 2, 10])
            marked.append(r > 180 and b > 180 and g < 90)
    return marked


def _samples(path: Path) -> tuple[np.ndarray, int]:
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            chunks.append(data[0] if data.ndim == 2 else data)
    return np.concatenate(chunks).astype(np.float64), rate


def dominant_frequency(path: Path, start: float, end: float) -> tuple[float, float]:
    """(frequency in Hz, RMS level) of the sound between two times."""
    samples, rate = _samples(path)
    part = samples[int(start * rate): int(end * rate)]
    if len(part) == 0:
        return 0.0, 0.0
    rms = float(np.sqrt(np.mean(part ** 2)))
    spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
    freqs = np.fft.rfftfreq(len(part), 1 / rate)
    return float(freqs[int(np.argmax(spectrum))]), rms


class RecordingSleep:
    """An injected sleep: records what was asked, really waits at most `cap` seconds (so jobs can progress)."""

    def __init__(self, cap: float = 0.02):
        self.cap = cap
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        import time

        self.calls.append(seconds)
        if self.cap > 0:
            time.sleep(min(seconds, self.cap))


def running_service(**config) -> LocalService:
    """A started LocalService (the caller stops it, or uses it as a context manager)."""
    service = LocalService(LocalServiceConfig(**config))
    service.start()
    return service


@pytest.fixture(scope="session")
def clip97(tmp_path_factory) -> Path:
    """97 frames at 24 fps, 320x240, frame-index bars, a 1 kHz sine at 44.1 kHz."""
    return make_clip(tmp_path_factory.mktemp("media") / "clip97.mp4", frames=97)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """25 frames at 24 fps, 96x64: cheap to render, for protocol tests."""
    return make_clip(tmp_path_factory.mktemp("media") / "tiny.mp4", frames=25, size="96x64")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(20.0)) as client:
        yield client


def tone_seconds(window: tuple[int, int], rate: Fraction) -> tuple[float, float]:
    """The window in seconds, shrunk a little at both ends (audio frames blur its edges)."""
    start, end = window
    return float(start / rate) + 0.03, float(end / rate) - 0.03
