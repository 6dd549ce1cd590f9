"""`ltx-retake demo`: a three-shot project with real media, one retake on the local service, a before/after sheet."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from .errors import InputError
from .ports import RetakeMode
from .progress import Progress

__all__ = ["DemoResult", "build_project", "run_demo"]

RATE = Fraction(24)
SHOTS = (("shot010", "01:00:00:00"), ("shot020", "02:00:00:00"), ("shot030", "03:00:00:00"))
SHOT_FRAMES = 240          # 10 s of media per shot
CLIP_IN, CLIP_FRAMES = 48, 120   # each clip uses 5 s from 2 s into its media: the rest are handles
PROMPT = "the same shot at golden hour, warm light"


@dataclass(frozen=True)
class DemoResult:
    source_timeline: Path
    output_timeline: Path
    version_file: Path
    contact_sheet: Path


def build_project(folder: Path) -> Path:
    """Write three shots of real media (frames carry their index, sound carries sync marks) and a timeline."""
    from .compose import offline_wiring, write_demo_media
    from .settings import load_settings
    from .timing import parse_timecode

    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    tl = otio.schema.Timeline(name="ltx-retake demo")
    tl.global_start_time = otio.opentime.RationalTime(86400, float(RATE))
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for name, tc in SHOTS:
        path = media / f"{name}.mp4"
        if not path.exists():
            write_demo_media(path, frames=SHOT_FRAMES, rate=RATE, size=(640, 360), timecode=tc)
        start = parse_timecode(tc, RATE)
        for track in (video, audio):
            ref = otio.schema.ExternalReference(
                target_url=str(path.absolute()),
                available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(start, 24), otio.opentime.RationalTime(SHOT_FRAMES, 24)),
            )
            track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(start + CLIP_IN, 24), otio.opentime.RationalTime(CLIP_FRAMES, 24))))
    tl.tracks.extend([video, audio])
    return offline_wiring(load_settings()).store.write(tl, folder / "demo.otio", overwrite=True)


def run_demo(folder: Path, *, local_protocol: str = "fal", progress: Progress | None = None) -> DemoResult:
    """Build the project, retake 2.5 s in the middle of shot020 through the local service, and draw the sheet."""
    from .compose import wiring_for
    from .atomic import WriteFailed, check_writable
    from .orders import RetakeOrder
    from .runner import run
    from .settings import load_settings

    folder = Path(folder).absolute()
    try:
        check_writable(folder, "the demo project", folder=True)
    except WriteFailed as exc:
        raise InputError(f"{exc} Run the demo in a folder of yours: ltx-retake demo --dir ~/ltx-retake-demo.") from None
    source = build_project(folder)
    output = folder / "demo_retake.otio"
    # A demo run starts clean: remove what an earlier demo run wrote (only the demo's own files).
    output.unlink(missing_ok=True)
    shutil.rmtree(folder / "demo_retakes", ignore_errors=True)
    order = RetakeOrder(timeline=source, output=output, prompt=PROMPT, mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO,
                        provider="local", model="fal-ai/ltx-2/retake-video", range=("01:00:06:12", "01:00:09:00"))
    settings = load_settings()
    with wiring_for("local", settings, local_protocol=local_protocol) as wiring:
        outcome = run(order, wiring, progress)
    job = outcome.jobs[0]
    if outcome.exit_code or outcome.output is None:
        raise InputError(f"The demo retake did not finish: {job.error}")
    media = wiring.media
    # record timecodes, the clip, prompt and version; frames on both sides of each edge of the window
    sheet = media.retake_sheet(job.plan, job.version, folder / "demo_before_after.png")
    return DemoResult(source, outcome.output, job.version.path, sheet)
