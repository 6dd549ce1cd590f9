"""The ports: value types that cross the core's edge, and the Protocols the adapters implement."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

__all__ = [
    "RetakeMode",
    "MediaInfo",
    "CutSpec",
    "ConformSpec",
    "RetakeRequest",
    "SubmittedJob",
    "ServiceStatus",
    "ResultMedia",
    "MediaTool",
    "RetakeService",
    "FileHost",
    "TimelineStore",
    "ProgressFn",
    "DELIVERIES",
    "delivery_of",
    "VIDEO_CODEC",
]

# How a version file can be delivered (RetakeOrder.delivery): auto is H.264/AAC, in .mov when the source is a .mov
# and .mp4 otherwise; h264 is H.264/AAC in .mp4; prores (422 HQ) and dnxhr (HQ) are .mov with PCM sound, for
# editors that cannot decode H.264/AAC (DaVinci Resolve on Linux, Resolve's free edition).
DELIVERIES = ("auto", "h264", "prores", "dnxhr")


def delivery_of(delivery: str, source: str | Path) -> tuple[str, str]:
    """The version's codec and file suffix for a delivery choice (auto: H.264, in .mov when the source is a .mov)."""
    if delivery == "auto":
        return "h264", ".mov" if Path(source).suffix.lower() == ".mov" else ".mp4"
    return delivery, ".mp4" if delivery == "h264" else ".mov"


VIDEO_CODEC = {"h264": "h264", "prores": "prores", "dnxhr": "dnxhd"}  # a delivery's codec as a probe names it



class RetakeMode(str, enum.Enum):
    """What the service regenerates inside the window (the API's `retake_mode` values)."""

    REPLACE_VIDEO = "replace_video"
    REPLACE_AUDIO = "replace_audio"
    REPLACE_AUDIO_AND_VIDEO = "replace_audio_and_video"

    @classmethod
    def parse(cls, text: str) -> "RetakeMode":
        aliases = {"video": cls.REPLACE_VIDEO, "audio": cls.REPLACE_AUDIO, "both": cls.REPLACE_AUDIO_AND_VIDEO,
                   "av": cls.REPLACE_AUDIO_AND_VIDEO}
        key = text.strip().lower()
        if key in aliases:
            return aliases[key]
        try:
            return cls(key)
        except ValueError:
            from .errors import InputError

            names = ", ".join(m.value for m in cls)
            raise InputError(f"Unknown retake mode {text!r}: use one of {names} (or video, audio, both).") from None


@dataclass(frozen=True)
class MediaInfo:
    """What a probe learned of a media file. Frame indices count from the file's first frame (0)."""

    path: str
    frame_rate: Fraction                 # exact (24000/1001, not 23.976)
    frame_count: int
    width: int                           # coded size
    height: int
    display_width: int                   # after sample aspect and rotation: what an editor sees
    display_height: int
    sample_aspect: Fraction = Fraction(1)
    rotation: int = 0                    # degrees clockwise that a player applies
    has_video: bool = True
    has_audio: bool = False
    audio_rate: int | None = None
    audio_channels: int | None = None
    start_timecode: str | None = None    # from a tmcd track or the container's timecode tag
    start_frame: int = 0                 # that timecode as a frame number at frame_rate (0 without one)
    drop_frame: bool = False
    duration_s: float = 0.0
    variable_frame_rate: bool = False
    video_codec: str | None = None
    audio_codec: str | None = None


@dataclass(frozen=True)
class CutSpec:
    """The input clip to send: frames [start_frame, start_frame + frame_count) of the source, at its rate.

    `pad_head` / `pad_tail` frames repeat the first / last frame when the source runs out before the
    cut reaches a frame count the model accepts (8k+1); the window never lies in the padding.
    """

    source_path: str
    start_frame: int
    frame_count: int
    frame_rate: Fraction
    pad_head: int = 0
    pad_tail: int = 0
    max_size: tuple[int, int] | None = (1920, 1080)   # the picture is scaled down to fit (either way up); None: as is

    @property
    def total_frames(self) -> int:
        return self.pad_head + self.frame_count + self.pad_tail


@dataclass(frozen=True)
class ConformSpec:
    """How to turn what the service returned into a version that lines up with the source.

    The returned file is the whole cut re-rendered. The window is frames
    [window_offset, window_offset + window_frames) of the cut (padding included), which are the source's
    frames [window_start_frame, window_start_frame + window_frames).
    """

    source: MediaInfo
    cut: CutSpec
    window_offset: int
    window_frames: int
    window_start_frame: int
    mode: RetakeMode
    timecode: str | None = None          # start timecode to stamp (the source's time at the window's start)
    codec: str = "h264"                  # "h264" (MP4/MOV), "prores" or "dnxhr" (MOV with PCM)
    crossfade_s: Fraction = Fraction(0)  # a changed sound crossfades from the source's at each edge (equal power)
    dissolve_frames: int = 0             # a changed picture dissolves from the source's at each edge over this many frames


@dataclass(frozen=True)
class RetakeRequest:
    """The inputs the retake API takes."""

    video_url: str
    prompt: str
    start_time: float
    duration: float
    mode: RetakeMode

    def as_json(self) -> dict:
        return {
            "video_url": self.video_url,
            "prompt": self.prompt,
            "start_time": self.start_time,
            "duration": self.duration,
            "retake_mode": self.mode.value,
        }


@dataclass(frozen=True)
class SubmittedJob:
    """A job the service accepted: its id and the URLs the submit answer gave."""

    request_id: str
    status_url: str
    result_url: str
    cancel_url: str


@dataclass(frozen=True)
class ServiceStatus:
    """One status report: state is 'queued', 'generating' or 'completed'."""

    state: str
    queue_position: int | None = None
    logs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResultMedia:
    """Where the finished retake can be downloaded, and what the service says about it."""

    url: str
    file_name: str | None = None
    content_type: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    num_frames: int | None = None
    extra: dict = field(default_factory=dict)


ProgressFn = Callable[[float], None]


@runtime_checkable
class MediaTool(Protocol):
    """Reads, cuts, conforms and verifies media files."""

    def probe(self, path: str | Path) -> MediaInfo: ...

    def cut(self, spec: CutSpec, dest: Path) -> MediaInfo: ...

    def conform(self, returned: Path, spec: ConformSpec, dest: Path) -> MediaInfo: ...

    def verify(self, path: Path, expect_frames: int, frame_rate: Fraction) -> MediaInfo: ...

    def read_frames(self, path: str | Path, indices, *, upright: bool = True) -> dict:
        """The frames at `indices` (0 = the file's first) as RGB arrays (height, width, 3)."""
        ...

    def contact_sheet(self, rows, dest: Path, *, thumb_height: int = 120) -> Path:
        """A PNG of labelled rows of thumbnails: [(row label, [(file, frame index) or (file, frame index, label)])]."""
        ...

    def retake_sheet(self, plan, version, dest: Path, *, thumb_height: int = 90) -> Path:
        """A retake's before/after sheet: record timecodes, clip, prompt and version, frames on both sides of each edge."""
        ...

    def frame_reader(self, *, max_size: tuple[int, int] | None = (1920, 1080)):
        """A reader for a viewer: `.read(path, index)` gives one frame's RGB array, sought rather than decoded from the
        file's start; `.close()` lets its files go."""
        ...

    def read_sound(self, path: str | Path, start_s: float, duration_s: float, *, rate: int = 48000, channels: int = 2):
        """The sound of `path` over a span (seconds from its first frame) as 16-bit PCM, shape (samples, channels)."""
        ...


@runtime_checkable
class FileHost(Protocol):
    """Makes a local file fetchable by a service: returns its URL."""

    def upload(self, path: Path, content_type: str, on_progress: ProgressFn | None = None) -> str: ...


@runtime_checkable
class RetakeService(Protocol):
    """A retake service: fal, RunComfy, or the embedded local service through either protocol."""

    provider: str
    model: str

    def submit(self, request: RetakeRequest) -> SubmittedJob: ...

    def follow(self, job: SubmittedJob, on_status: Callable[[ServiceStatus], None],
               should_stop: Callable[[], bool] | None = None) -> None:
        """Report status until the job completes; raise CancelledError soon after `should_stop()` turns true."""
        ...

    def result(self, job: SubmittedJob, should_stop: Callable[[], bool] | None = None) -> ResultMedia: ...

    def cancel(self, job: SubmittedJob) -> str:
        """Ask the service to stop the job; quick (a few seconds at most), so a cancelled command ends soon."""
        ...

    def download(self, url: str, dest: Path, on_progress: ProgressFn | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Path:
        """Fetch the result; raise CancelledError soon after `should_stop()` turns true, even while it drips."""
        ...


@runtime_checkable
class TimelineStore(Protocol):
    """Reads timeline files into documents and writes them back: an edit of the editor's own file in its format,
    or a conversion through OTIO's writers that lists what the target cannot hold."""

    def open(self, path: str | Path): ...

    def read(self, path: str | Path): ...

    def losses(self, timeline, path: str | Path, document=None) -> list[str]:
        """What writing `timeline` to `path` would lose (empty: nothing); raises InputError when it cannot be written."""
        ...

    def save(self, timeline, path: str | Path, *, document=None, overwrite: bool = False, protect=(),
             accept_losses: bool = False) -> Path: ...

    def write(self, timeline, path: str | Path, *, overwrite: bool = False, protect=()) -> Path: ...
