"""The core on an in-memory document: plan a retake of the selections a face made, generate its jobs, land them.

    jobs, media_dir = plan(document, selections, order, wiring)              # nothing sent, everything checked
    started = start(document, jobs, media_dir, order, wiring, journal,
                    selections=selections)                                    # numbered, named and recorded
    generate(started.jobs, wiring, started.work, order, journal=journal)      # the journaled steps, up to versions
    land(timeline, ready_jobs, placement)                                     # spliced in, each all or nothing

The command line, the panel and the Resolve bridge all come through here; only they turn what the editor did (a
--clip, a click, Resolve's pick) into `selection.Selection`s.
"""

from __future__ import annotations

import datetime as _dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from .checks import (check_destination, check_output, check_relinked, check_room_for, default_media_dir,
                     free_version_path, refuse_overlaps, refuse_undeliverable)
from .document import Document
from .errors import InputError
from .jobs import Job, Wiring
from .journal import Journal, version_in_flight
from .landing import splice_into as land
from .limits import limits_for
from .locks import claim, hold, owner_record, release
from .metadata import original_reference
from .orders import RetakeOrder, order_json
from .paths import file_sha256, safe_stem
from .plan import Plan, plan_retake, source_clip
from .ports import DELIVERIES, MediaInfo, delivery_of
from .priority import background_priority
from .progress import EventLog, JobEvent, Progress, Step
from .relink import Relinker
from .selection import Selection
from .splice import Version, describe_landing, next_version_number, version_name, versions_on
from .steps import StepRunner

__all__ = ["plan", "start", "Started", "generate", "land", "claim_versions", "release_versions"]

_PLANNING = threading.Lock()


def plan(document: Document, selections: list[Selection], order: RetakeOrder, wiring: Wiring, *,
         reserved: set[str] = frozenset(), progress: Progress | None = None) -> tuple[list[Job], Path]:
    """Plan a retake of `selections` (made by a face on `document.timeline`): relink, probe and plan each, number the
    versions, and check everything that can fail before anything is paid for. Returns the jobs and the media folder.

    `order` says how (prompt, mode, service, context, placement, delivery, where media goes) and, when it names an
    output, where the timeline is written; `reserved` names version files that runs still in flight will write.
    Refusals name the timeline file."""
    log = progress or EventLog()
    try:
        return _plan(document, selections, order, wiring, log, reserved)
    except InputError as exc:  # every refusal names the timeline file it is about
        text = str(exc)
        if document.name in text:
            raise
        raise type(exc)(f"{document.name}: {text}") from None


def _plan(document: Document, selections: list[Selection], order: RetakeOrder, wiring: Wiring, log: Progress,
          reserved: set[str]) -> tuple[list[Job], Path]:
    timeline = document.timeline
    for note in document.notes:
        log(JobEvent("run", Step.PLANNED, f"note: {note}"))
    if order.placement not in ("splice", "above"):
        raise InputError(f"Unknown placement {order.placement!r}; use splice or above.")
    if order.delivery not in DELIVERIES:
        raise InputError(f"Unknown delivery {order.delivery!r}: deliver versions as auto (H.264/AAC, .mov for a .mov "
                         "source, else .mp4), h264 (H.264/AAC .mp4), prores or dnxhr (.mov with PCM sound, for editors "
                         "that cannot decode H.264/AAC, such as DaVinci Resolve on Linux or its free edition).")
    check_destination(order)
    base_dir = (order.media_root or order.timeline.absolute().parent).absolute()
    relinker = Relinker(base_dir, order.path_maps, order.media_search)
    media_dir = order.media_dir or default_media_dir(timeline, order.output or order.timeline, order.timeline.stem)
    limits = limits_for(order.provider, order.model)
    probed: dict[Path, MediaInfo] = {}
    plans: list[Plan] = []
    track_ranges: dict = {}  # each track's item ranges, worked out once: planning does not edit the timeline
    for sel in selections:
        found = relinker.locate(sel.clip, sel.label, ref=original_reference(sel.clip))   # a retake is cut from the original
        src = source_clip(timeline, sel, base_dir, track_ranges=track_ranges, media=found.path)
        if src.media_path not in probed:
            probed[src.media_path] = wiring.media.probe(src.media_path)
        relink_note = None
        if found.relinked and not probed[src.media_path].variable_frame_rate:
            relink_note = check_relinked(sel, src, probed[src.media_path], found)
        prompt = f"{(order.prompt or '').strip()} {sel.prompt or ''}".strip()   # a marker's text follows the prompt
        for plan in plan_retake(timeline, src, probed[src.media_path], limits, prompt=prompt or "", mode=order.mode,
                                provider=order.provider, model=order.model, split=order.split,
                                context_s=order.context_s, max_size=order.max_size):
            if found.relinked:
                said = (f"media relinked: {found.path} ({found.how})",) + ((relink_note,) if relink_note else ())
                plan = replace(plan, notes=(*plan.notes, *said))
            plans.append(plan)
    refuse_overlaps(plans)
    refuse_undeliverable(plans, order.delivery)
    # Versions count per clip: the clip's own on this timeline, and those runs still in flight will give it. A file of
    # that name already on disk (another timeline's, or an earlier run's) is never written over: this timeline's
    # version then goes in a folder named after the output.
    in_flight = {Path(p).stem for p in reserved if media_dir.absolute() in Path(p).parents}
    numbers: dict[str, int] = {}
    on_timeline = versions_on(timeline) if plans else {}  # one pass over the clips, not one per job
    jobs = []
    claimed: set[Path] = set()
    for i, plan in enumerate(plans, 1):
        n = numbers.get(plan.clip_name) or next_version_number(timeline, plan.clip_name, in_flight, on_timeline=on_timeline)
        numbers[plan.clip_name] = n + 1
        name = f"{safe_stem(version_name(plan.clip_name, n))}{delivery_of(order.delivery, plan.media.path)[1]}"
        path = free_version_path(media_dir, name, order.output or order.timeline, claimed)
        claimed.add(path)
        jobs.append(Job(id=f"job{i}", plan=plan, version=Version(n, plan.clip_name, path, {})))
    check_output(document, jobs, order, wiring)
    check_room_for(document, jobs, order, media_dir)
    for job in jobs:
        plan = job.plan
        log(JobEvent(job.id, Step.PLANNED, plan.summary()))
        for note in plan.notes:
            log(JobEvent(job.id, Step.PLANNED, f"note: {note}"))
        log(JobEvent(job.id, Step.PLANNED, describe_landing(timeline, plan, order.placement)))
        if plan.estimate_usd:
            log(JobEvent(job.id, Step.PLANNED, f"estimated cost ${plan.estimate_usd:.2f} ({plan.price_basis})"))
    return jobs, media_dir


@dataclass
class Started:
    """A run recorded and its versions' names claimed: what generating and landing it need."""

    run_id: str              # "" without a journal
    jobs: list[Job]
    media_dir: Path
    work: Path               # the run's own folder for its cuts and downloads
    made: Path | None        # the media folder, when this run created it (removed again if nothing lands in it)


def start(document: Document, jobs: list[Job], media_dir: Path, order: RetakeOrder, wiring: Wiring,
          journal: Journal | None, *, selections: list[Selection], reserved: set[str] = frozenset(),
          progress: Progress | None = None) -> Started:
    """Number, name and record the run before anything is sent. Numbering and recording happen under one lock (this
    process's, and the journal's across processes), and every version's name is claimed on disk: two runs started
    together, with one journal or two, never number or write a version alike. A run that planned while another
    claimed its names plans again (from `selections`, on the same document)."""
    log = progress or EventLog()
    owner = owner_record(journal.path if journal else None)
    made = None if media_dir.exists() else media_dir
    waiting = lambda text: log(JobEvent("run", Step.PLANNED, text))  # noqa: E731
    with _PLANNING, (hold(journal.path, "numbering versions in", on_wait=waiting) if journal else nullcontext()):
        now_in_flight = journal.versions_in_flight() if journal else set()
        if now_in_flight != reserved or not claim_versions(jobs, owner):
            jobs, media_dir = plan(document, selections, order, wiring, reserved=now_in_flight)
            if not claim_versions(jobs, owner):
                raise InputError("Another run keeps taking the version names this run planned; nothing was sent. "
                                 "Try again in a moment.")
        # Each run stages its cuts and downloads in a folder of its own: a failed job's paid-for download
        # stays there (the error names it) and a later run never writes over it.
        work = media_dir / ".work" / (_dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f") + f"-{uuid.uuid4().hex[:4]}")
        run_id = ""
        if journal is not None:
            sha = document.sha256 or (file_sha256(order.timeline) if order.timeline.is_file() else "")
            try:
                run_id = journal.begin_run(order=order_json(order), timeline=order.timeline, timeline_sha=sha,
                                           output=order.output, media_dir=media_dir, work_dir=work, jobs=jobs,
                                           planned=document.timeline if order.output is None else None)
            except BaseException:
                release_versions(jobs, everything=True)
                raise
            log(JobEvent("run", Step.PLANNED, f"run {run_id} (`ltx-retake resume {run_id}` continues it after a crash)"))
    return Started(run_id, jobs, media_dir, work, made)


def generate(jobs: list[Job], wiring: Wiring, work: Path, order: RetakeOrder, *, journal: Journal | None = None,
             cancel: threading.Event | None = None, progress: Progress | None = None, resumed: bool = False,
             resubmit: bool = False, max_parallel: int | None = None) -> StepRunner:
    """Take every job through its steps, concurrently, each recorded in the journal before it starts, up to a verified
    version file (READY) or a failure that says what to do; skips what an earlier attempt finished. Returns the step
    runner (what landing records its steps through)."""
    log = progress or EventLog()
    runner = StepRunner(wiring, log, cancel or threading.Event(), work, journal=journal, timeline=order.timeline,
                        fresh=order.fresh, resubmit=resubmit, resumed=resumed, order=order)
    if jobs:
        workers = max(1, min(max_parallel or order.max_parallel, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, initializer=background_priority) as pool:
            list(pool.map(runner.generate, jobs))
    return runner


def claim_versions(jobs: list[Job], owner: dict) -> bool:
    """Claim every job's version name (see locks.claim); all or none."""
    done = []
    for job in jobs:
        if not claim(job.version.path, owner, in_flight=version_in_flight):
            for path in done:
                release(path)
            return False
        done.append(job.version.path)
    return True


def release_versions(jobs: list[Job], *, everything: bool = False) -> None:
    """Let go of the names of jobs that will not write any more (written, failed for good, cancelled)."""
    for job in jobs:
        if job.version is not None and (everything or job.step in (Step.SPLICED, Step.CANCELLED)
                                        or (job.step == Step.FAILED and not job.recoverable)):
            release(job.version.path)
