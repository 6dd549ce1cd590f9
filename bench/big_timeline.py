"""Big timelines: read, plan 100 selections, splice 100 versions and write, at 1,000 to 10,000 clips, and how each grows.

The timeline: one picture track of N clips (3 s each at 24 fps) cut from a few real small plates (4 s, indexed
frames, sound with sync marks), and, unless --no-sound, one sound track mirroring it clip for clip (same media,
same ranges), so the sound is linked and takes every retake too. It is written to a .otio file once per size
(not timed) and then, per size, timed step by step (time.perf_counter; the median of --runs runs):

  read    `OtioFiles().read` of the .otio (OTIO's JSON reader plus the project's checks)
  plan    `ltx_retake.runner.prepare` with --clip NAME for 100 clips spread evenly over the track (select each
          clip by name, trace it to its media, plan the window and input cut, number the version); the store
          hands prepare the timeline just read, so the read is not counted twice; every plate is probed once
          beforehand (probes are cached per file), so this is planning, not ffprobe
  splice  `ltx_retake.runner.splice_into` of those 100 jobs, each carrying a real version file (a copy of a
          plate), into the timeline: each splice all or nothing, picture and linked sound
  write   `write_timeline` of the spliced timeline (atomic: a temp file in the folder, then a rename)

Growth: for each step, the time at the largest size over the time at the smallest, against the size ratio (10
for 1,000 -> 10,000 clips: linear is about 10, quadratic about 100), and the exponent k of a least-squares fit
time ~ clips^k over every size (1 is linear, 2 quadratic).

Run it with `python -m bench big_timeline [--sizes 1000,2000,5000,10000] [--selections 100] [--runs 1]`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import opentimelineio as otio

from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.adapters.timeline_files import OtioFiles, write_timeline
from ltx_retake.ports import RetakeMode
from ltx_retake.progress import Step
from ltx_retake.jobs import Wiring
from ltx_retake.landing import splice_into
from ltx_retake.orders import RetakeOrder
from ltx_retake.runner import prepare
from ltx_retake.splice import Version

__all__ = ["build_timeline", "measure", "growth", "main"]

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

RATE = Fraction(24)
PLATE_TC, PLATE_START = "01:00:00:00", 86400
PLATE_FRAMES = 96                   # 4 s
CLIP_IN, CLIP_FRAMES = 12, 72       # each clip shows 3 s of its plate
STEPS = ("read", "plan", "splice", "write")


class _Preloaded(OtioFiles):
    """The OTIO file store, except that reading the bench's timeline hands back the copy already read."""

    def __init__(self, path: Path, timeline: otio.schema.Timeline):
        super().__init__()
        self._path, self._timeline = path.absolute(), timeline

    def read(self, path):
        return self._timeline if Path(path).absolute() == self._path else super().read(path)


def write_plates(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """`count` small real plates whose frames carry their index (a different first index each)."""
    return [write_indexed_clip(folder / "media" / f"plate{i + 1}.mp4", frames=PLATE_FRAMES, rate=RATE, size=size,
                               timecode=PLATE_TC, first_index=i * 1000) for i in range(count)]


def clip_name(n: int) -> str:
    return f"sc{n // 100:03d}_sh{n % 100:03d}0"


def build_timeline(clips: int, plates: Sequence[Path], *, sound: bool = True) -> otio.schema.Timeline:
    """V1: `clips` named 3 s clips cycling over the plates; A1 (with `sound`) mirroring them clip for clip."""
    tl = otio.schema.Timeline(name=f"big {clips} clips")
    tl.global_start_time = RT(PLATE_START, float(RATE))
    kinds = [otio.schema.TrackKind.Video] + ([otio.schema.TrackKind.Audio] if sound else [])
    for kind in kinds:
        track = otio.schema.Track(name="V1" if kind == otio.schema.TrackKind.Video else "A1", kind=kind)
        for n in range(clips):
            ref = otio.schema.ExternalReference(target_url=str(plates[n % len(plates)].absolute()),
                                                available_range=TR(RT(PLATE_START, 24), RT(PLATE_FRAMES, 24)))
            track.append(otio.schema.Clip(name=clip_name(n), media_reference=ref,
                                          source_range=TR(RT(PLATE_START + CLIP_IN, 24), RT(CLIP_FRAMES, 24))))
        tl.tracks.append(track)
    return tl


def chosen(clips: int, selections: int) -> tuple[str, ...]:
    """`selections` clip names spread evenly over the track."""
    return tuple(clip_name(i * clips // selections) for i in range(selections))


def one_pass(folder: Path, source: Path, clips: int, selections: int, version_file: Path, run: int) -> dict[str, float]:
    """Read, plan, splice and write once; the seconds each step took."""
    out = folder / f"out_{clips}_{run}.otio"
    media_dir = folder / f"retakes_{clips}_{run}"
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    timeline = OtioFiles().read(source)
    times["read"] = time.perf_counter() - t0

    order = RetakeOrder(timeline=source, output=out, prompt="the same shot in the rain",
                        mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, provider="local", model="preview",
                        clip=chosen(clips, selections), media_dir=media_dir)
    wiring = Wiring(media=FfmpegMediaTool(), store=_Preloaded(source, timeline))
    t0 = time.perf_counter()
    planned, jobs, _ = prepare(order, wiring)
    times["plan"] = time.perf_counter() - t0

    media_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:  # a finished job: its version file conformed and verified, waiting to be spliced
        shutil.copyfile(version_file, job.version.path)
        job.version = Version(job.version.number, job.version.clip_name, job.version.path,
                              {"prompt": job.plan.prompt, "file": job.version.path.name})
        job.step = Step.READY
    t0 = time.perf_counter()
    problems = splice_into(planned, jobs, "splice")
    times["splice"] = time.perf_counter() - t0
    if problems:
        raise SystemExit(f"{len(problems)} splices failed at {clips} clips, the first: {problems[0]}")

    t0 = time.perf_counter()
    write_timeline(planned, out, overwrite=True)
    times["write"] = time.perf_counter() - t0
    spliced = sum(1 for c in planned.find_clips() if c.metadata.get("ltx_retake"))
    times["versions"] = spliced
    out.unlink()
    shutil.rmtree(media_dir, ignore_errors=True)
    return times


def measure(folder: Path, sizes: Sequence[int], *, selections: int = 100, runs: int = 1, sound: bool = True,
            plates: int = 4, size: tuple[int, int] = (160, 90), say=print) -> dict[int, dict[str, float]]:
    """The median seconds of every step at every size."""
    plate_files = write_plates(folder, plates, size)
    media = FfmpegMediaTool()
    for plate in plate_files:  # probes are cached per file: pay for them before anything is timed
        media.probe(plate)
    warm = folder / "warm.otio"  # so is loading OTIO's adapters, on the first read
    OtioFiles().read(write_timeline(build_timeline(10, plate_files, sound=sound), warm, overwrite=True))
    warm.unlink()
    results: dict[int, dict[str, float]] = {}
    for clips in sizes:
        source = folder / f"big_{clips}.otio"
        write_timeline(build_timeline(clips, plate_files, sound=sound), source, overwrite=True)
        passes = [one_pass(folder, source, clips, selections, plate_files[0], r) for r in range(runs)]
        results[clips] = {k: statistics.median(p[k] for p in passes) for k in passes[0]}
        r = results[clips]
        say(f"  {clips:>6,} clips: " + ", ".join(f"{k} {r[k]:.3f} s" for k in STEPS) + f", {int(r['versions'])} spliced clips")
        source.unlink()
    return results


def growth(sizes: Sequence[int], seconds: Sequence[float]) -> tuple[float, float]:
    """(time at the largest size / time at the smallest, the exponent k of a least-squares fit time ~ size^k)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(t, 1e-9)) for t in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return seconds[-1] / seconds[0], k


def table(results: dict[int, dict[str, float]], selections: int) -> str:
    sizes = sorted(results)
    lines = ["| step | " + " | ".join(f"{s:,} clips" for s in sizes) + f" | ratio {sizes[-1]:,}/{sizes[0]:,} "
             f"(size x{sizes[-1] / sizes[0]:g}) | exponent k (time ~ clips^k) |",
             "| --- |" + " --- |" * (len(sizes) + 2)]
    for step in STEPS + ("total",):
        values = [sum(results[s][k] for k in STEPS) if step == "total" else results[s][step] for s in sizes]
        ratio, k = growth(sizes, values)
        lines.append(f"| {step} | " + " | ".join(_fmt(v) for v in values) + f" | {ratio:.1f} | {k:.2f} |")
    per = [results[s]["plan"] / selections for s in sizes]
    lines.append(f"| plan, per selection | " + " | ".join(_fmt(v) for v in per) + " | | |")
    per = [results[s]["splice"] / selections for s in sizes]
    lines.append(f"| splice, per job | " + " | ".join(_fmt(v) for v in per) + " | | |")
    return "\n".join(lines)


def _fmt(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench big_timeline", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,5000,10000", help="clips on the picture track, comma separated")
    parser.add_argument("--selections", type=int, default=100, help="clips retaken (planned and spliced) at every size")
    parser.add_argument("--runs", type=int, default=1, help="passes per size (the median is reported)")
    parser.add_argument("--plates", type=int, default=4, help="real media files the clips cycle over")
    parser.add_argument("--no-sound", action="store_true", help="no sound track mirroring the picture")
    parser.add_argument("--folder", type=Path, help="work here and keep the plates (default: a temp folder, removed)")
    args = parser.parse_args(argv)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    except ValueError:
        parser.error("--sizes is a comma-separated list of clip counts, for example 1000,2000,5000,10000")
    if len(sizes) < 2 or args.selections < 1 or sizes[0] < args.selections or args.runs < 1 or args.plates < 1:
        parser.error("give at least two sizes, each with at least --selections clips, and positive --runs and --plates")
    folder = args.folder.absolute() if args.folder else Path(tempfile.mkdtemp(prefix="ltx-retake-big-timeline-"))
    folder.mkdir(parents=True, exist_ok=True)
    sound = "" if args.no_sound else " + a sound track mirroring it (linked: every retake splices both)"
    print(f"big timeline: N clips on V1{sound}; {args.selections} clips retaken; median of {args.runs} run(s); "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, OTIO {otio.__version__}")
    started = time.perf_counter()
    try:
        results = measure(folder, sizes, selections=args.selections, runs=args.runs, sound=not args.no_sound,
                          plates=args.plates)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(table(results, args.selections))
    print(f"\n(wall {time.perf_counter() - started:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
