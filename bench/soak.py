"""Soak: hundreds of retakes through the real runner and the local service over HTTP, a share of every call faulted.

The local service runs in-process with no delays and random faults on every route a job touches (429 with
Retry-After, 500, 502, 503, dropped connections, slow answers, expired results, corrupt results, dropped
status streams), drawn from a seeded generator. The project is real media: one small indexed plate and,
per reel, a timeline of short clips with a marker on each (the marker's name is the job's prompt, and it
names the job, so the service's own records tell which job each submit belongs to). The reels run one
after another through `ltx_retake.runner.run`, alternating the fal and RunComfy protocols and 4 to 8 jobs
at a time.

What it prints, from the service's records and the runner's outcomes:
  completed            jobs spliced into their reel's new timeline
  failed, clear error  jobs failed with a sentence that names the request id when there was one
  failed, unclear      jobs failed otherwise (must be 0)
  duplicated submits   jobs the service created beyond one per retake (must be 0)
  lost results         results the service finished that the client neither spliced nor reported failed
                       with their request id (must be 0)
  recoverable          failed jobs whose result the service holds (`recoverable_jobs`), and how many of them
                       the runner marked recoverable
  faulted calls        faulted requests over all requests, from the service's request log

The runs keep a job journal. After every reel has run, one resume pass (faults still on) goes over the
runs the runner left with recoverable jobs, as a user's `ltx-retake resume` would; its outcomes replace
those records before the table is drawn.

Run it with `python -m bench.soak [--jobs N] [--fault-rate F] [--seed S]`. The fault draws repeat with
the seed; which request meets which draw still depends on the threads' timing, so counts vary a little.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import httpx
import opentimelineio as otio

from ltx_retake.adapters.fal import FalClient, FalStorage
from ltx_retake.adapters.hosting import LoopbackUpload
from ltx_retake.adapters.local_service import Fault, LocalService, LocalServiceConfig
from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.runcomfy import RunComfyClient
from ltx_retake.adapters.services import http_client
from ltx_retake.adapters.wire import UrlRule
from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.adapters.timeline_files import OtioFiles, write_timeline
from ltx_retake.ports import RetakeMode
from ltx_retake.progress import EventLog, Step
from ltx_retake.journal import Journal
from ltx_retake.jobs import Job, Wiring
from ltx_retake.orders import RetakeOrder
from ltx_retake.runner import resume, run
from ltx_retake.settings import Settings

__all__ = ["ROUTE_FAULTS", "fault_plan", "Reel", "JobRecord", "ServerJob", "SoakReport", "soak",
           "recoverable_jobs", "lost_results", "duplicated_submits", "clear_error", "unclear_because", "main"]

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

# What each route may suffer, as a hosted service and a network can; a route's share is split evenly among them.
ROUTE_FAULTS: dict[str, tuple[str, ...]] = {
    "token": ("429", "500", "503", "drop", "slow"),
    "upload": ("429", "500", "502", "503", "drop", "slow"),
    "submit": ("429", "500", "502", "503", "drop", "slow"),
    "status": ("429", "500", "502", "503", "drop", "slow"),
    "stream": ("500", "503", "drop", "slow"),
    "result": ("429", "500", "502", "503", "drop", "slow", "expired", "corrupt"),
    "download": ("429", "500", "502", "503", "drop", "slow", "expired", "corrupt"),
}

RATE = Fraction(24)
PLATE_TC, PLATE_START = "01:00:00:00", 86400       # the plate's start timecode, as a frame number at 24 fps
PLATE_FRAMES = 96                                  # 4 s: the whole plate fits in one input cut
CLIP_IN, CLIP_FRAMES = 12, 72                      # each clip shows 3 s of the plate
MARK_IN, MARK_FRAMES = 6, 60                       # each marker asks for 2.5 s of its clip
PHRASES = ("rain on the window", "a red kite over the field", "the same shot at golden hour", "fog rolling in",
           "a passing train", "snow settling on the sill", "a candle flickering", "waves on the rocks")
MODES = (RetakeMode.REPLACE_AUDIO_AND_VIDEO, RetakeMode.REPLACE_VIDEO, RetakeMode.REPLACE_AUDIO)
PARALLEL = (4, 6, 8)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}", re.I)
_SENTENCE = re.compile(r"^[A-Za-z0-9\"'].*[.!?](\s+\(.*\))?$", re.S)


def fault_plan(rate: float, *, retry_after: float = 1.0, slow: float = 0.3) -> list[Fault]:
    """Rate rules that fault `rate` of the calls on every route, mixed evenly among the route's kinds."""
    rules = []
    for route, kinds in ROUTE_FAULTS.items():
        for kind in kinds:
            rules.append(Fault(route, kind, rate=rate / len(kinds), delay=slow,
                               retry_after=retry_after if kind == "429" else None))
    return rules


def prompt_for(number: int) -> str:
    """The prompt of job `number`: a marker name that also tells the service's records which job sent it."""
    return f"soak job {number:04d}: {PHRASES[number % len(PHRASES)]}"


def job_number(prompt: str) -> int | None:
    match = re.match(r"soak job (\d+):", prompt)
    return int(match.group(1)) if match else None


# -- the project ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reel:
    """One run of the runner: a timeline of `count` clips, each with one marker, through one protocol."""

    index: int
    first: int                   # the number of its first job
    count: int
    protocol: str                # "fal" | "runcomfy"
    parallel: int
    mode: RetakeMode

    @property
    def name(self) -> str:
        return f"reel{self.index + 1:02d}"


def plan_reels(jobs: int, per_reel: int) -> list[Reel]:
    """Split `jobs` into reels, alternating protocols and cycling parallelism and retake modes."""
    reels = []
    first = 0
    while first < jobs:
        i = len(reels)
        count = min(per_reel, jobs - first)
        reels.append(Reel(i, first, count, ("fal", "runcomfy")[i % 2], PARALLEL[i % len(PARALLEL)], MODES[i % len(MODES)]))
        first += count
    return reels


def write_plate(folder: Path, size: tuple[int, int]) -> Path:
    """The one source every clip uses: 4 s of frames that carry their index, with sync marks in the sound."""
    return write_indexed_clip(folder / "media" / "plate.mp4", frames=PLATE_FRAMES, rate=RATE, size=size,
                              timecode=PLATE_TC)


def write_reel(folder: Path, plate: Path, reel: Reel) -> Path:
    """The reel's timeline: `count` clips of the plate on V1, a marker on each naming its job."""
    tl = otio.schema.Timeline(name=f"soak {reel.name}")
    tl.global_start_time = RT(PLATE_START, float(RATE))
    track = otio.schema.Track(name="V1")
    for number in range(reel.first, reel.first + reel.count):
        ref = otio.schema.ExternalReference(target_url=str(plate.absolute()),
                                            available_range=TR(RT(PLATE_START, 24), RT(PLATE_FRAMES, 24)))
        clip = otio.schema.Clip(name=f"shot{number:04d}", media_reference=ref,
                                source_range=TR(RT(PLATE_START + CLIP_IN, 24), RT(CLIP_FRAMES, 24)))
        clip.markers.append(otio.schema.Marker(name=prompt_for(number),
                                               marked_range=TR(RT(PLATE_START + CLIP_IN + MARK_IN, 24),
                                                               RT(MARK_FRAMES, 24))))
        track.append(clip)
    tl.tracks.append(track)
    return write_timeline(tl, folder / f"{reel.name}.otio", overwrite=True)


def wiring(protocol: str, base_url: str, http: httpx.Client) -> Wiring:
    """The adapters for the local service in one protocol, as `adapters.services.open_service` wires them."""
    settings = Settings()
    if protocol == "fal":
        service = FalClient(http, None, base_url, settings.fal_model, poll_initial=0.1, poll_max=1.0)
        host = FalStorage(http, None, base_url)
    else:
        service = RunComfyClient(http, None, base_url, settings.runcomfy_model, poll_initial=0.1, poll_max=1.0)
        host = LoopbackUpload(http, base_url)
    return Wiring(media=FfmpegMediaTool(), store=OtioFiles(), service=service, host=host)


# -- what happened -------------------------------------------------------------------------------------------------

@dataclass
class JobRecord:
    """One job as the client saw it: its reel, the runner's Job, and the step it was in when it failed."""

    reel: Reel
    number: int
    job: Job | None              # None when the reel's run raised before it reported its jobs
    failed_in: Step | None = None
    crash: str | None = None     # what the run raised, when it did
    run_id: str = ""             # the runner's id for the reel's run (with a journal, what `resume` takes)

    @property
    def spliced(self) -> bool:
        return self.job is not None and self.job.step == Step.SPLICED

    @property
    def request_id(self) -> str | None:
        return self.job.request_id if self.job is not None else None

    @property
    def error(self) -> str:
        if self.job is None:
            return self.crash or ""
        return self.job.error or ""

    @property
    def marked_recoverable(self) -> bool:
        """Did the runner mark the failure as one a resume mends?"""
        return bool(getattr(self.job, "recoverable", False))


@dataclass(frozen=True)
class ServerJob:
    """One job the service created, as its own records show it."""

    request_id: str
    prompt: str
    protocol: str
    finished: bool               # completed with a result to download
    error: str | None


def server_jobs(service: LocalService) -> list[ServerJob]:
    out = []
    for rid, job in service.jobs.items():
        out.append(ServerJob(rid, str(job.inputs.get("prompt", "")), job.protocol,
                             job.state == "COMPLETED" and not job.error and job.preview is not None, job.error))
    return out


def unclear_because(record: JobRecord) -> str | None:
    """Why a failure's error is not clear, or None when it is a sentence that names the request id (if any)."""
    text = record.error.strip()
    if record.job is None:
        return "the run raised instead of reporting the job"
    if not text or "Traceback" in text or not _SENTENCE.match(text):
        return "the error is not a sentence"
    if record.request_id and record.request_id not in text:
        return "the error does not name the request id"
    return None


def clear_error(record: JobRecord) -> bool:
    """A failure is reported clearly when its error is a sentence and names the request id, if one existed."""
    return unclear_because(record) is None


def duplicated_submits(records: Sequence[JobRecord], jobs: Iterable[ServerJob]) -> int:
    """Jobs the service created beyond one per retake (a retake is known by its prompt, which names it)."""
    per_prompt = Counter(job.prompt for job in jobs)
    return sum(n - 1 for n in per_prompt.values() if n > 1)


def lost_results(records: Sequence[JobRecord], jobs: Iterable[ServerJob]) -> list[ServerJob]:
    """Results the service finished that no job holds: neither spliced nor failed with that request id."""
    held = {r.request_id for r in records if r.request_id and r.job is not None and r.job.step.finished}
    return [job for job in jobs if job.finished and job.request_id not in held]


def mixed_up(records: Sequence[JobRecord], jobs: Iterable[ServerJob]) -> list[JobRecord]:
    """Jobs that hold a request id the service created for another job's prompt."""
    prompt_of = {job.request_id: job.prompt for job in jobs}
    return [r for r in records if r.request_id and job_number(prompt_of.get(r.request_id, "")) != r.number]


def recoverable_jobs(records: Sequence[JobRecord], jobs: Iterable[ServerJob]) -> list[tuple[JobRecord, ServerJob]]:
    """Failed jobs whose request the service finished with a result: a resume pass fetches and splices these
    by their request id without submitting (or paying) again."""
    finished = {job.request_id: job for job in jobs if job.finished}
    return [(r, finished[r.request_id]) for r in records
            if not r.spliced and r.request_id and r.request_id in finished]


# -- the soak ------------------------------------------------------------------------------------------------------

@dataclass
class SoakReport:
    """Everything the table shows."""

    records: list[JobRecord]
    server: list[ServerJob]
    requests: list[dict]
    fault_rate: float
    seed: int
    wall: float
    setup: float
    reel_lines: list[str] = field(default_factory=list)
    first_pass: int = 0          # spliced before the resume pass

    @property
    def completed(self) -> list[JobRecord]:
        return [r for r in self.records if r.spliced]

    @property
    def failed(self) -> list[JobRecord]:
        return [r for r in self.records if not r.spliced]

    @property
    def unclear(self) -> list[JobRecord]:
        return [r for r in self.failed if not clear_error(r)]

    @property
    def duplicated(self) -> int:
        return duplicated_submits(self.records, self.server)

    @property
    def lost(self) -> list[ServerJob]:
        return lost_results(self.records, self.server)

    @property
    def mixed(self) -> list[JobRecord]:
        return mixed_up(self.records, self.server)

    @property
    def ok(self) -> bool:
        return not (self.unclear or self.duplicated or self.lost or self.mixed)


def _failed_in(log: EventLog, job_id: str) -> Step | None:
    steps = [s for s in log.steps(job_id) if not s.finished]
    return steps[-1] if steps else None


def _records(reel: Reel, outcome, log: EventLog) -> list[JobRecord]:
    records = []
    for job in outcome.jobs:
        number = job_number(job.plan.prompt)
        records.append(JobRecord(reel, number if number is not None else -1, job,
                                 None if job.step == Step.SPLICED else _failed_in(log, job.id), run_id=outcome.run_id))
    return records


def resume_reel(reel: Reel, run_id: str, base_url: str, http: httpx.Client, journal: Journal) -> list[JobRecord]:
    """One `resume` of a reel's run, with the faults still on: what a user's `ltx-retake resume` would do."""
    log = EventLog()
    try:
        outcome = resume(run_id, wiring(reel.protocol, base_url, http), journal, log)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        crash = f"the resume raised {type(exc).__name__}: {exc}"
        return [JobRecord(reel, n, None, crash=crash) for n in range(reel.first, reel.first + reel.count)]
    return _records(reel, outcome, log)


def run_reel(reel: Reel, folder: Path, plate: Path, base_url: str, http: httpx.Client,
             journal: Journal | None = None) -> list[JobRecord]:
    """Retake every marker of the reel's timeline through the runner; one record per job."""
    timeline = write_reel(folder, plate, reel)
    model = Settings().fal_model if reel.protocol == "fal" else Settings().runcomfy_model
    # The service outlives the runs, as fal and RunComfy do, so the order names the protocol's provider: a
    # resume follows its requests by id (an order for the embedded `local` provider would send them anew).
    order = RetakeOrder(timeline=timeline, output=folder / f"{reel.name}_retaken.otio", prompt=None, mode=reel.mode,
                        provider=reel.protocol, model=model, markers=True, media_dir=folder / f"{reel.name}_retakes",
                        max_parallel=reel.parallel)
    log = EventLog()
    try:
        outcome = run(order, wiring(reel.protocol, base_url, http), log, journal=journal)
    except Exception as exc:  # noqa: BLE001 - the soak reports a run that raised instead of stopping
        crash = f"the run raised {type(exc).__name__}: {exc}"
        return [JobRecord(reel, n, None, crash=crash) for n in range(reel.first, reel.first + reel.count)]
    return _records(reel, outcome, log)


def soak(folder: Path, *, jobs: int = 200, fault_rate: float = 0.2, seed: int = 5, per_reel: int = 25,
         size: tuple[int, int] = (160, 90), retry_after: float = 1.0, slow: float = 0.3,
         say=print) -> SoakReport:
    """Build the project in `folder`, run every reel against one faulted local service, collect the records."""
    began = time.monotonic()
    plate = write_plate(folder, size)
    reels = plan_reels(jobs, per_reel)
    setup = time.monotonic() - began
    config = LocalServiceConfig(faults=fault_plan(fault_rate, retry_after=retry_after, slow=slow), fault_seed=seed,
                                request_log_limit=1_000_000, storage_dir=folder / "service")
    by_reel: dict[str, list[JobRecord]] = {}
    lines = []
    started = time.monotonic()
    with LocalService(config) as service, http_client(UrlRule(loopback_ok=True)) as http, Journal(folder / "journal.sqlite") as journal:
        for reel in reels:
            t0 = time.monotonic()
            got = by_reel[reel.name] = run_reel(reel, folder, plate, service.base_url, http, journal)
            done = sum(r.spliced for r in got)
            line = (f"{reel.name}: {reel.protocol:8s} {reel.parallel} at a time, {reel.mode.value:24s} "
                    f"{len(got):3d} jobs, {done:3d} spliced, {len(got) - done:3d} failed, {time.monotonic() - t0:6.1f} s")
            lines.append(line)
            say(line)
        first_pass = sum(r.spliced for got in by_reel.values() for r in got)
        for reel in reels:  # one resume pass, faults still on, over the runs the runner left resumable
            got = by_reel[reel.name]
            if got and got[0].run_id and any(r.marked_recoverable for r in got):
                t0 = time.monotonic()
                by_reel[reel.name] = again = resume_reel(reel, got[0].run_id, service.base_url, http, journal)
                line = (f"{reel.name}: resumed, {sum(r.spliced for r in again) - sum(r.spliced for r in got):3d} more "
                        f"spliced, {sum(not r.spliced for r in again):3d} still failed, {time.monotonic() - t0:6.1f} s")
                lines.append(line)
                say(line)
        wall = time.monotonic() - started
        records = [r for got in by_reel.values() for r in got]
        return SoakReport(records, server_jobs(service), service.requests, fault_rate, seed, wall, setup, lines,
                          first_pass)


# -- the table -----------------------------------------------------------------------------------------------------

def _table(rows: Sequence[tuple[str, str]], title: str, align: str = ">") -> str:
    width = max(len(k) for k, _ in rows)
    value_width = max(len(v) for _, v in rows)
    rule = "-" * (width + value_width + 3)
    return "\n".join([title, rule, *(f"{k:<{width}}   {v:{align}{value_width}}".rstrip() for k, v in rows), rule])


def _pattern(text: str) -> str:
    """An error with its ids and numbers taken out, so failures of one kind group together."""
    text = _UUID.sub("<id>", text)
    text = re.sub(r"/[^\s()]*", "<path>", text)
    return re.sub(r"\d+(\.\d+)?", "N", text)[:160]


def report_text(report: SoakReport) -> str:
    calls = report.requests
    recoverable = recoverable_jobs(report.records, report.server)
    faulted = [c for c in calls if c["fault"]]
    share = len(faulted) / len(calls) if calls else 0.0
    rows = [
        ("jobs", str(len(report.records))),
        ("completed (spliced)", str(len(report.completed))),
        ("  of which by the first run", str(report.first_pass)),
        ("  of which by one resume pass", str(len(report.completed) - report.first_pass)),
        ("failed with a clear error", str(len(report.failed) - len(report.unclear))),
        ("failed, unclear error (must be 0)", str(len(report.unclear))),
        ("duplicated submits (must be 0)", str(report.duplicated)),
        ("lost results (must be 0)", str(len(report.lost))),
        ("results on the wrong job (must be 0)", str(len(report.mixed))),
        ("failed, the service holds their result", str(len(recoverable))),
        ("  of which the runner marks recoverable", str(sum(r.marked_recoverable for r, _ in recoverable))),
        ("jobs created on the service", str(len(report.server))),
        ("faulted calls / total calls", f"{len(faulted)} / {len(calls)} = {share:.1%}"),
        ("fault rate asked, seed", f"{report.fault_rate:.0%}, {report.seed}"),
        ("wall time (jobs)", f"{report.wall:.1f} s"),
        ("setup (media)", f"{report.setup:.1f} s"),
    ]
    out = [_table(rows, "soak")]
    per_route = Counter(c["route"] for c in calls)
    hit = Counter(c["route"] for c in faulted)
    route_rows = [(route, f"{hit[route]:4d} / {n:5d} = {hit[route] / n:6.1%}") for route, n in per_route.most_common()]
    out.append(_table(route_rows, "faulted calls per route"))
    kinds = Counter(c["fault"] for c in faulted)
    out.append(_table([(k, str(n)) for k, n in kinds.most_common()], "faults per kind"))
    causes = Counter((r.failed_in.value if r.failed_in else "-", _pattern(r.error)) for r in report.failed)
    if causes:
        out.append(_table([(f"{n:3d}  in {step:<11s}", text) for (step, text), n in causes.most_common()],
                          "failures (count, the step it failed in, the error with ids, paths and numbers as <id>, "
                          "<path>, N)", align="<"))
    for title, items in (("unclear errors", [f"{r.reel.name} job {r.number} (request {r.request_id}), "
                                             f"{unclear_because(r)}: {r.error!r}" for r in report.unclear]),
                         ("lost results", [f"request {j.request_id} ({j.protocol}): {j.prompt}" for j in report.lost]),
                         ("results on the wrong job", [f"{r.reel.name} job {r.number}: request {r.request_id}"
                                                       for r in report.mixed])):
        if items:
            out.append(f"{title}:\n" + "\n".join(f"  {line}" for line in items[:20]))
    return "\n\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="retake jobs in all (default 200)")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of calls faulted on every route (default 0.2)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the service's fault draws (default 5)")
    parser.add_argument("--per-reel", type=int, default=25, help="jobs per run of the runner (default 25)")
    parser.add_argument("--size", default="160x90", help="picture size of the media (default 160x90)")
    parser.add_argument("--folder", type=Path, help="work here and keep everything (default: a temp folder, removed)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.per_reel < 1 or not 0.0 <= args.fault_rate <= 1.0:
        parser.error("--jobs and --per-reel must be positive and --fault-rate between 0 and 1")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error("--size is WIDTHxHEIGHT, for example 160x90")
    folder = args.folder.absolute() if args.folder else Path(tempfile.mkdtemp(prefix="ltx-retake-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        report = soak(folder, jobs=args.jobs, fault_rate=args.fault_rate, seed=args.seed, per_reel=args.per_reel,
                      size=(width, height))
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(report_text(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
