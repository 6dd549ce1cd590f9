"""The media adapter: FfmpegMediaTool probes, cuts, conforms and verifies clips with ffmpeg and PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..ports import ConformSpec, CutSpec, MediaInfo
from .ffmpeg_exe import ffmpeg_path
from .media_conform import conform_clip
from .media_cut import cut_clip
from .media_play import FrameReader, read_sound
from .media_probe import probe_media, read_frames, verify_clip
from .media_sheet import SheetItem, contact_sheet, retake_sheet

__all__ = ["FfmpegMediaTool"]


class FfmpegMediaTool:
    """The MediaTool port on ffmpeg (command lines built with ffmpeg-python) and PyAV (probing, decoding).

    Every file it writes appears complete or not at all (a temporary file beside the destination, verified,
    then renamed); every failure is a MediaError that says what is wrong and what to do.
    """

    def __init__(self, ffmpeg: str | None = None):
        self.ffmpeg = ffmpeg_path(ffmpeg)

    def probe(self, path: str | Path) -> MediaInfo:
        """What `path` is: exact rate, frame count, geometry, rotation, audio, start timecode, VFR."""
        return probe_media(path)

    def cut(self, spec: CutSpec, dest: Path) -> MediaInfo:
        """Write the retake's input clip: spec.total_frames frames, H.264/AAC 48 kHz MP4, upright, square pixels."""
        return cut_clip(spec, Path(dest), ffmpeg_bin=self.ffmpeg)

    def conform(self, returned: Path, spec: ConformSpec, dest: Path) -> MediaInfo:
        """Write the window of the service's result as a version of the source (its size, rate, sound, timecode)."""
        return conform_clip(Path(returned), spec, Path(dest), ffmpeg_bin=self.ffmpeg)

    def verify(self, path: Path, expect_frames: int, frame_rate: Fraction) -> MediaInfo:
        """Decode all of `path`; MediaError unless it has `expect_frames` frames at `frame_rate`."""
        return verify_clip(path, expect_frames, frame_rate)

    def read_frames(self, path: str | Path, indices: Iterable[int], *, upright: bool = True) -> dict[int, np.ndarray]:
        """The frames at `indices` (0 = first) as RGB arrays, decoded sequentially so the indices are exact."""
        return read_frames(path, indices, upright=upright)

    def frame_reader(self, *, max_size: tuple[int, int] | None = (1920, 1080)) -> FrameReader:
        """A reader for a viewer: frames by index from files kept open, sought rather than decoded from the start."""
        return FrameReader(max_size=max_size)

    def read_sound(self, path: str | Path, start_s: float, duration_s: float, *, rate: int = 48000,
                   channels: int = 2) -> np.ndarray:
        """The sound of `path` over a span (seconds from its first frame) as 16-bit PCM (samples, channels)."""
        return read_sound(path, start_s, duration_s, rate=rate, channels=channels)

    def contact_sheet(self, rows: Sequence[tuple[str, Sequence[SheetItem]]], dest: Path, *,
                      thumb_height: int = 120) -> Path:
        """A PNG of labelled thumbnail rows, e.g. [("before", [(src, 10), (src, 20)]), ("after", [...])]."""
        return contact_sheet(rows, Path(dest), thumb_height=thumb_height)

    def retake_sheet(self, plan, version, dest: Path, *, thumb_height: int = 90) -> Path:
        """A retake's before/after sheet: record timecodes, clip, prompt and version, frames on both sides of each edge."""
        return retake_sheet(plan, version, Path(dest), thumb_height=thumb_height)
