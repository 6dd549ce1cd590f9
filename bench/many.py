"""Many jobs at once: one run of 50 retakes (max_parallel=50) against the local service, beside one job alone.

What runs: the runner's own concurrency, as the CLI and the panel use it: ONE `ltx_retake.runner.run` whose
order names N clips (`--clip` N times) with `max_parallel=N`, so N jobs are in flight together on the run's
thread pool. (Not N separate runs in threads: those would only add N plans and N writes of the timeline.)
The service is the embedded local one, started in the run's process by `open_service("local")` exactly as
`--provider local` starts it (fal protocol, no delays, no faults), with a journal as the CLI keeps one. The
media is real: one small indexed plate (4 s, 640x360, 24 fps, with sound); the timeline has N clips of 3 s
of it, and every job retakes a whole clip (cut 89 frames, upload, submit, follow, download, conform).

Each case runs in a fresh Python process (`python -m bench many --case N`), so its peaks are its own. A
sampler thread reads, every --sample-ms:
  threads          threading.active_count() and the Threads line of /proc/self/status (native threads too)
  ffmpeg alive     child processes of the run whose name says ffmpeg (cuts, conforms, the service's renders)
  RSS              VmRSS of /proc/self/status
  ffmpeg RSS       VmRSS (summed) and VmHWM (largest) of those children, read from their /proc status
and at the end: peak RSS of the process (VmHWM, and getrusage's ru_maxrss) and the wall time of `run`.
(getrusage's RUSAGE_CHILDREN is no use for ffmpeg's size: a child's high-water mark counts the Python process
it was started from, before it became ffmpeg.)

Where the time goes (job-seconds summed over the jobs, from the run's own progress events, each step lasting
until the job's next step; and the wall-clock span during which any job was in it):
  cutting / conforming  split into the ffmpeg work itself (timed around the media tool's calls) and the wait
                        for the runner's media-work slots (`_MEDIA_WORK`: cores - 1 cuts and conforms at once)
  queued + generating   the service's side: its renders run one at a time on its single engine thread, so
                        the render seconds (from the service's own job records) add up end to end

Run it with `python -m bench many [--jobs 50] [--size 640x360]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Sequence

__all__ = ["Sampler", "TimedMedia", "run_case", "main"]

RATE = Fraction(24)
PLATE_TC, PLATE_START = "01:00:00:00", 86400
PLATE_FRAMES = 96                       # 4 s
CLIP_IN, CLIP_FRAMES = 12, 72           # each clip shows 3 s of the plate
STEP_NOTES = {"planned": "planned (until its thread takes it)", "queued": "queued (the service's queue)",
              "generating": "generating (the service renders)", "ready": "ready (waiting for the run's other jobs: all "
              "splice at the end)"}
TIMED_STEPS = ("planned", "cutting", "uploading", "submitting", "queued", "generating", "downloading", "conforming",
               "ready", "splicing", "saving")


# -- the project ----------------------------------------------------------------------------------------------------

def write_project(folder: Path, jobs: int, size: tuple[int, int]) -> Path:
    """The plate and a timeline of `jobs` clips of it; returns the timeline's path."""
    import opentimelineio as otio

    from ltx_retake.adapters.testcard import write_indexed_clip
    from ltx_retake.adapters.timeline_files import write_timeline

    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    plate = write_indexed_clip(folder / "media" / "plate.mp4", frames=PLATE_FRAMES, rate=RATE, size=size,
                               timecode=PLATE_TC)
    tl = otio.schema.Timeline(name=f"many {jobs}")
    tl.global_start_time = rt(PLATE_START, float(RATE))
    track = otio.schema.Track(name="V1")
    for n in range(jobs):
        ref = otio.schema.ExternalReference(target_url=str(plate.absolute()),
                                            available_range=tr(rt(PLATE_START, 24), rt(PLATE_FRAMES, 24)))
        track.append(otio.schema.Clip(name=f"shot{n + 1:03d}", media_reference=ref,
                                      source_range=tr(rt(PLATE_START + CLIP_IN, 24), rt(CLIP_FRAMES, 24))))
    tl.tracks.append(track)
    return write_timeline(tl, folder / "many.otio", overwrite=True)


# -- measuring inside a case ------------------------------------------------------------------------------------------

def _status() -> dict[str, int]:
    """/proc/self/status's numbers we watch (kB for memory)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def ffmpeg_children(pid: int) -> list[int]:
    """Processes whose parent is `pid` and whose name says ffmpeg."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        if ppid == pid and "ffmpeg" in name:
            found.append(int(entry))
    return found


def _rss_of(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB; zeros when it is gone or has not exec'd yet."""
    out = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in out:
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out["VmRSS"], out["VmHWM"]


class Sampler(threading.Thread):
    """Samples thread counts, ffmpeg children and RSS of this process until stopped; keeps the peaks."""

    def __init__(self, every: float):
        super().__init__(name="bench-sampler", daemon=True)
        self.every = every
        self.stop = threading.Event()
        self.peak = {"threads_py": 0, "threads_os": 0, "ffmpeg": 0, "rss_kb": 0, "ffmpeg_rss_kb": 0, "ffmpeg_one_kb": 0}
        self.samples = 0
        self._pid = os.getpid()

    def sample(self) -> None:
        st = _status()
        children = ffmpeg_children(self._pid)
        sizes = [_rss_of(pid) for pid in children]
        for key, value in (("threads_py", threading.active_count()), ("threads_os", st.get("Threads", 0)),
                           ("ffmpeg", len(children)), ("rss_kb", st.get("VmRSS", 0)),
                           ("ffmpeg_rss_kb", sum(rss for rss, _ in sizes)), ("ffmpeg_one_kb", max((h for _, h in sizes), default=0))):
            self.peak[key] = max(self.peak[key], value)
        self.samples += 1

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)


class TimedMedia:
    """The real media tool, with the seconds its cuts and conforms take (the ffmpeg work, no waiting) added up."""

    def __init__(self, media):
        self._media = media
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def __getattr__(self, name):
        return getattr(self._media, name)

    def _timed(self, what: str, fn, *args):
        t0 = time.monotonic()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.seconds[what] += time.monotonic() - t0
                self.calls[what] += 1

    def cut(self, spec, dest):
        return self._timed("cutting", self._media.cut, spec, dest)

    def conform(self, returned, spec, dest):
        return self._timed("conforming", self._media.conform, returned, spec, dest)


def _step_times(events) -> tuple[dict[str, float], dict[str, float]]:
    """(job-seconds per step summed over the jobs, wall-clock seconds during which any job was in the step)."""
    entries: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for e in events:
        if e.job == "run":
            continue
        seen = entries[e.job]
        if not seen or seen[-1][1] != e.step.value:
            seen.append((e.at, e.step.value))
    summed: dict[str, float] = defaultdict(float)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for seen in entries.values():
        for (t0, step), (t1, _) in zip(seen, seen[1:]):
            summed[step] += t1 - t0
            spans[step].append((t0, t1))
    covered = {}
    for step, pieces in spans.items():  # the union of the intervals
        total, end = 0.0, None
        for a, b in sorted(pieces):
            if end is None or a > end:
                total += b - a
                end = b
            elif b > end:
                total += b - end
                end = b
        covered[step] = total
    return dict(summed), covered


def run_case(folder: Path, timeline: Path, jobs: int, *, every: float = 0.025, protocol: str = "fal") -> dict:
    """One run of `jobs` retakes at once against the local service, in this process; what it measured."""
    from ltx_retake.adapters.media import FfmpegMediaTool
    from ltx_retake.adapters.services import open_service
    from ltx_retake.adapters.timeline_files import OtioFiles
    from ltx_retake.journal import Journal
    from ltx_retake.ports import RetakeMode
    from ltx_retake.progress import EventLog, Step
    from ltx_retake.jobs import Wiring
    from ltx_retake.orders import RetakeOrder
    from ltx_retake.runner import run
    from ltx_retake.settings import Settings
    from ltx_retake.adapters.local_service import LocalServiceConfig

    settings = Settings()
    case = folder / f"case{jobs}"
    case.mkdir(parents=True, exist_ok=True)
    names = tuple(f"shot{n + 1:03d}" for n in range(jobs))
    order = RetakeOrder(timeline=timeline, output=case / "retaken.otio", prompt="the same shot at golden hour",
                        mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, provider="local", model=settings.fal_model, clip=names,
                        media_dir=case / "retakes", max_parallel=jobs, local_protocol=protocol)
    media = TimedMedia(FfmpegMediaTool())
    sampler = Sampler(every)
    log = EventLog()
    with open_service("local", settings, local_protocol=protocol,
                      local_config=LocalServiceConfig(storage_dir=case / "service")) as opened, \
            Journal(case / "journal.sqlite") as journal:
        wiring = Wiring(media=media, store=OtioFiles(), service=opened.service, host=opened.host)
        sampler.sample()  # the service started, nothing sent yet
        at_start = dict(sampler.peak)
        sampler.start()
        t0 = time.monotonic()
        outcome = run(order, wiring, log, journal=journal)
        wall = time.monotonic() - t0
        sampler.stop.set()
        sampler.join()
        served = list(opened.local.jobs.values())
    renders = [j.finished_at - j.started_at for j in served if j.started_at and j.finished_at]
    waits = [j.started_at - j.submitted_at for j in served if j.started_at]
    summed, covered = _step_times(log.events)
    st = _status()
    return {
        "jobs": jobs, "spliced": sum(j.step == Step.SPLICED for j in outcome.jobs),
        "errors": sorted({j.error for j in outcome.jobs if j.error})[:3],
        "wall": wall, "peak": sampler.peak, "at_start": at_start, "samples": sampler.samples,
        "vm_hwm_kb": st.get("VmHWM", 0), "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "step_sum": summed, "step_span": covered,
        "media_work": dict(media.seconds), "media_calls": dict(media.calls),
        "renders": renders, "service_waits": waits,
    }


# -- the two cases, each in its own process ----------------------------------------------------------------------------

def _child(folder: Path, timeline: Path, jobs: int, every: float, protocol: str) -> dict:
    cmd = [sys.executable, "-m", "bench.many", "--case", str(jobs), "--folder", str(folder), "--sample-ms",
           str(every * 1000), "--protocol", protocol]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise SystemExit(f"the {jobs}-job case failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mb(kb: float) -> str:
    return f"{kb / 1024:.0f} MB"


def _s(x: float) -> str:
    return f"{x:.1f} s"


def report(one: dict, many: dict, cpus: int) -> str:
    n = many["jobs"]
    rows = [
        ("jobs spliced", f"{one['spliced']} / 1", f"{many['spliced']} / {n}", ""),
        ("wall time of the run", _s(one["wall"]), _s(many["wall"]), f"x{many['wall'] / one['wall']:.1f} "
         f"({many['wall'] / n:.2f} s per job vs {one['wall']:.2f})"),
        ("peak RSS of the process (VmHWM)", _mb(one["vm_hwm_kb"]), _mb(many["vm_hwm_kb"]),
         f"+{(many['vm_hwm_kb'] - one['vm_hwm_kb']) / 1024:.0f} MB"),
        ("peak RSS, getrusage ru_maxrss", _mb(one["ru_maxrss_kb"]), _mb(many["ru_maxrss_kb"]), ""),
        ("RSS before the run (service up, sampled)", _mb(one["at_start"]["rss_kb"]), _mb(many["at_start"]["rss_kb"]), ""),
        ("peak RSS of one ffmpeg (sampled VmHWM)", _mb(one["peak"]["ffmpeg_one_kb"]), _mb(many["peak"]["ffmpeg_one_kb"]),
         "cut, conform or the service's render"),
        ("peak RSS of the ffmpegs alive at once (sampled)", _mb(one["peak"]["ffmpeg_rss_kb"]),
         _mb(many["peak"]["ffmpeg_rss_kb"]), ""),
        ("peak threads, threading.active_count()", str(one["peak"]["threads_py"]), str(many["peak"]["threads_py"]),
         f"{one['at_start']['threads_py']} before the run"),
        ("peak threads, /proc/self/status", str(one["peak"]["threads_os"]), str(many["peak"]["threads_os"]),
         f"{one['at_start']['threads_os']} before the run"),
        ("peak ffmpeg processes alive at once", str(one["peak"]["ffmpeg"]), str(many["peak"]["ffmpeg"]), ""),
        ("sampler samples", str(one["samples"]), str(many["samples"]), ""),
    ]
    out = [f"many: {n} jobs in one run (max_parallel={n}) vs 1 job, local service in-process; "
           f"{cpus} cores, media-work slots {max(1, cpus - 1)}; Python {sys.version.split()[0]}", "",
           "| measure | 1 job | %d jobs | note |" % n, "| --- | --- | --- | --- |"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    out += ["", f"where the time goes in the {n}-job run (job-seconds summed over jobs; wall = span with any job in it)", "",
            "| step | job-seconds (1 job) | job-seconds (%d jobs) | per job (%d jobs) | wall span (%d jobs) |" % (n, n, n),
            "| --- | --- | --- | --- | --- |"]
    for step in TIMED_STEPS:
        a, b = one["step_sum"].get(step, 0.0), many["step_sum"].get(step, 0.0)
        if a == 0 and b == 0:
            continue
        out.append(f"| {STEP_NOTES.get(step, step)} | {a:.1f} | {b:.1f} | {b / n:.2f} | {many['step_span'].get(step, 0.0):.1f} |")
        if step in ("cutting", "conforming"):
            wa, wb = one["media_work"].get(step, 0.0), many["media_work"].get(step, 0.0)
            out.append(f"|   of which ffmpeg work | {wa:.1f} | {wb:.1f} | {wb / n:.2f} | |")
            out.append(f"|   of which waiting for a media-work slot (+ hashing) | {a - wa:.1f} | {b - wb:.1f} | "
                       f"{(b - wb) / n:.2f} | |")
    r1, rn = one["renders"], many["renders"]
    out.append(f"| service renders (one at a time, its engine thread) | {sum(r1):.1f} | {sum(rn):.1f} | "
               f"{sum(rn) / max(1, len(rn)):.2f} | {sum(rn):.1f} (serial) |")
    w = many["service_waits"]
    out.append(f"| service queue wait, submit to render start | {sum(one['service_waits']):.1f} | {sum(w):.1f} | "
               f"{sum(w) / max(1, len(w)):.2f} | max {max(w, default=0):.1f} |")
    errors = [e for c in (one, many) for e in c["errors"]]
    if errors:
        out += ["", "errors:"] + [f"  {e}" for e in errors]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench many", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50, help="jobs in flight together in the big case (default 50)")
    parser.add_argument("--size", default="640x360", help="picture size of the plate (default 640x360)")
    parser.add_argument("--protocol", default="fal", choices=("fal", "runcomfy"), help="how the local service is driven")
    parser.add_argument("--sample-ms", type=float, default=25.0, help="the sampler's interval (default 25 ms)")
    parser.add_argument("--folder", type=Path, help="work here and keep everything (default: a temp folder, removed)")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args(argv)
    every = max(0.001, args.sample_ms / 1000)
    if args.case is not None:  # the child: the project is in --folder already
        result = run_case(args.folder, args.folder / "many.otio", args.case, every=every, protocol=args.protocol)
        print(json.dumps(result))
        return 0
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error("--size is WIDTHxHEIGHT, for example 640x360")
    if args.jobs < 2:
        parser.error("--jobs must be at least 2")
    folder = args.folder.absolute() if args.folder else Path(tempfile.mkdtemp(prefix="ltx-retake-many-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        timeline = write_project(folder, args.jobs, (width, height))
        one = _child(folder, timeline, 1, every, args.protocol)
        print(f"  1 job: {one['wall']:.1f} s", flush=True)
        many = _child(folder, timeline, args.jobs, every, args.protocol)
        print(f"  {args.jobs} jobs: {many['wall']:.1f} s", flush=True)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(report(one, many, os.cpu_count() or 1))
    return 0 if one["spliced"] == 1 and many["spliced"] == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
