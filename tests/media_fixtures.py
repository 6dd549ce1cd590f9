"""Shared media for the media tests: indexed clips made once per session, a simulated retake service, the corpus."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from ltx_retake.adapters.ffmpeg_exe import run_ffmpeg
from ltx_retake.adapters.media_probe import probe_media, read_frames
from ltx_retake.adapters.testcard import read_index, write_indexed_clip, write_marks_wav
from ltx_retake.adapters.timeline_files import write_timeline
from ltx_retake.timing import is_drop_frame_rate, parse_timecode

__all__ = [
    "RATES",
    "make_project",
    "CORPUS",
    "corpus_video",
    "clip_factory",
    "indices",
    "simulate_return",
    "tone_bursts",
    "leftovers",
    "SERVICE_MARK_HZ",
    "OUTSIDE_MARK_HZ",
]

RATES = [Fraction(24), Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(60000, 1001)]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SERVICE_MARK_HZ = 3000.0       # the simulated service's own sound inside the window
OUTSIDE_MARK_HZ = 2000.0       # ... and outside it


def corpus_video(name: str) -> Path:
    """A file of the shared corpus, or a clean skip when the corpus is not checked out beside the repo."""
    path = CORPUS / "video" / name
    if not path.exists():
        pytest.skip(f"corpus file {path} is not available")
    return path


@pytest.fixture(scope="session")
def clip_factory(tmp_path_factory):
    """make(name, **write_indexed_clip options) -> Path, each distinct clip written once per session."""
    made: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("indexed")

    def make(name: str, **options) -> Path:
        if name not in made:
            options.setdefault("frames", 96)
            options.setdefault("rate", Fraction(24))
            made[name] = write_indexed_clip(root / name, **options)
        return made[name]

    return make


def indices(path: Path, count: int | None = None) -> list[int | None]:
    """The index every frame of `path` carries (None where it does not read)."""
    n = probe_media(path).frame_count if count is None else count
    frames = read_frames(path, range(n))
    return [read_index(frames[i]) for i in range(n)]


def tone_bursts(count: int, fps: Fraction, audio_rate: int, marks: dict[int, float]) -> np.ndarray:
    """Stereo float audio for `count` frames at `fps`: a 20 ms burst of marks[j] Hz at the start of frame j."""
    total = round(Fraction(count) * audio_rate / fps)
    out = np.zeros(total, np.float32)
    t = np.arange(round(0.02 * audio_rate)) / audio_rate
    for j, hz in marks.items():
        start = round(Fraction(j) * audio_rate / fps)
        burst = 0.5 * np.cos(2 * np.pi * hz * t)
        end = min(total, start + len(burst))
        out[start:end] += burst[: end - start]
    return np.stack([out, out], axis=1)


def simulate_return(cut: Path, dest: Path, *, window_offset: int, window_frames: int, fps: Fraction | None = None,
                    snap_8k1: bool = False, keep_frames: int | None = None, audio_rate: int = 24000,
                    size: tuple[int, int] = (1920, 1080), tint: bool = True, mark_every: int = 6,
                    audio: bool = True, faststart: bool = True, resample: bool = False) -> Path:
    """What a retake service sends back for `cut`: the whole clip re-rendered, with real ffmpeg.

    The picture is scaled to `size`, written at `fps` frame by frame (so int(fps) relabels, as LTX does),
    optionally cut down to 8k+1 frames (or `keep_frames`), and the window is tinted red with a green border
    (like the local service's preview). The sound is new: bursts every `mark_every` frames from the window's
    start, SERVICE_MARK_HZ inside the window and OUTSIDE_MARK_HZ elsewhere, at `audio_rate`.
    With `resample` the picture is converted to `fps` by time instead (ffmpeg's fps filter drops or repeats
    frames), as a service that changes the frame rate does: the count changes and indices drift.
    """
    info = probe_media(cut)
    fps = Fraction(fps or info.frame_rate)
    count = info.frame_count
    if resample:
        count = int(count * fps / Fraction(info.frame_rate))
    if snap_8k1:
        count = (count - 1) // 8 * 8 + 1
    if keep_frames is not None:
        count = keep_frames
    w, h = size
    tb = 1 / fps
    convert = f"fps={fps.numerator}/{fps.denominator}," if resample else ""
    chain = f"[0:v]{convert}trim=end_frame={count},settb={tb.numerator}/{tb.denominator},setpts=N,scale={w}:{h}"
    if tint:
        last = window_offset + window_frames - 1
        on = f"enable='between(n,{window_offset},{last})'"
        chain += (f",drawbox=x=0:y=0:w=iw:h=ih:color=red@0.3:t=fill:{on}"
                  f",drawbox=x=0:y=0:w=iw:h=ih:color=green:t=ih*0.06:{on}")
    args = ["-i", str(cut)]
    maps = ["-map", "[v]"]
    if audio:
        marks = {j: (SERVICE_MARK_HZ if window_offset <= j < window_offset + window_frames else OUTSIDE_MARK_HZ)
                 for j in range(count) if (j - window_offset) % mark_every == 0}
        wav = write_marks_wav(dest.with_suffix(".wav"), tone_bursts(count, fps, audio_rate, marks), audio_rate)
        args += ["-i", str(wav)]
        maps += ["-map", "1:a", "-c:a", "aac", "-ar", str(audio_rate)]
    args += ["-filter_complex", chain + "[v]", *maps, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "26",
             "-pix_fmt", "yuv420p", "-r", f"{fps.numerator}/{fps.denominator}"]
    if faststart:
        args += ["-movflags", "+faststart"]
    run_ffmpeg(args + [str(dest)], what="Simulating the service")
    return dest


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer left behind in `folder`."""
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def make_project(folder: Path, rate: Fraction, tc: str, seconds: float = 6.0, suffix: str = ".otio") -> tuple[Path, int]:
    """One indexed source; three clips from it on V1 (1 s, the middle, 1 s), the timeline starting at `tc`."""
    frames = round(seconds * rate)
    src = folder / "source.mov"
    write_indexed_clip(src, frames=frames, rate=rate, size=(320, 180), timecode=tc, drop_frame=is_drop_frame_rate(rate))
    start = parse_timecode(tc, rate)
    one = round(rate)
    tl = otio.schema.Timeline(name="e2e")
    tl.global_start_time = otio.opentime.RationalTime(start, float(rate))
    track = otio.schema.Track(name="V1")
    for name, a, b in (("A", 0, one), ("B", one, frames - one), ("C", frames - one, frames)):
        ref = otio.schema.ExternalReference(target_url=str(src), available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(start, float(rate)), otio.opentime.RationalTime(frames, float(rate))))
        track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(start + a, float(rate)), otio.opentime.RationalTime(b - a, float(rate)))))
    tl.tracks.append(track)
    return write_timeline(tl, folder / f"cut{suffix}"), start
