"""The runs an order makes: plan, generate and land its jobs, resume a run after a crash, drop one."""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable

import opentimelineio as otio

from .atomic import PARTIAL, check_writable
from .errors import (CancelledError, InputError, RetakeError, SpliceError)
from .journal import Journal, version_in_flight
from .locks import claim, hold, owner_record, release
from .limits import limits_for
from .document import Document
from .paths import file_sha256, safe_stem, same_file
from .metadata import original_reference
from .plan import Plan, plan_retake, source_clip
from .relink import Relinker
from .ports import (DELIVERIES, MediaInfo)
from .priority import background_priority
from .progress import EventLog, JobEvent, Progress, Step
from .splice import (Version, describe_landing, lines_up, next_version_number, version_name, versions_on)


from .jobs import Job, Outcome, Wiring, intact, job_from_record
from .orders import RetakeOrder, absolute_order, order_from, order_json, selections_of
from .ports import delivery_of
from .checks import (check_destination, check_output, check_relinked, check_room_for, default_media_dir,
                     free_version_path, refuse_overlaps, refuse_undeliverable)
from .steps import StepRunner
from .landing import splice_and_save, state_of, version_files

__all__ = ["prepare", "prepare_document", "plan_jobs", "run", "resume", "drop"]


_PLANNING = threading.Lock()


def prepare(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None, *,
            reserved: set[str] = frozenset()) -> tuple[otio.schema.Timeline, list[Job], Path]:
    """Read, select, probe and plan (see `prepare_document`); the timeline as read, the jobs and the media folder."""
    document, jobs, media_dir = prepare_document(order, wiring, progress, reserved=reserved)
    return document.timeline, jobs, media_dir


def prepare_document(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None, *,
                     reserved: set[str] = frozenset()) -> tuple[Document, list[Job], Path]:
    """Read, select, relink, probe and plan, and check that the output can be written. No upload, no spend:
    everything that can be known before paying is checked here.

    `reserved` names version files that runs still in flight will write; their numbers are skipped.
    """
    log = progress or EventLog()
    document = wiring.store.open(order.timeline)
    try:
        return plan_jobs(document, order, wiring, log, reserved)
    except InputError as exc:  # every refusal names the timeline file it is about
        text = str(exc)
        if document.name in text:
            raise
        raise type(exc)(f"{document.name}: {text}") from None


def plan_jobs(document: Document, order: RetakeOrder, wiring: Wiring, log: Progress,
             reserved: set[str]) -> tuple[Document, list[Job], Path]:
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
    media_dir = order.media_dir or default_media_dir(timeline, order.output, order.timeline.stem)
    selections = selections_of(timeline, order)
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
        prompt = sel.prompt if order.markers else order.prompt
        if order.markers and order.prompt:
            prompt = f"{order.prompt.strip()} {sel.prompt}".strip()
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
        path = free_version_path(media_dir, name, order.output, claimed)
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
    return document, jobs, media_dir


def _tidy(work: Path, made: Path | None = None) -> None:
    """Remove the run's empty work folders (and `made`, the media folder this run created, when nothing is in it)."""
    for folder in (work, work.parent, *((made,) if made else ())):
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()


def run(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None, cancel: threading.Event | None = None, *,
        journal: Journal | None = None, confirm: Callable[[list[Job]], bool] | None = None) -> Outcome:
    """Prepare, generate every job (concurrently), splice the ones that succeeded, and save atomically.

    With a journal, every step is recorded before it starts (`resume` continues from there) and identical
    requests reuse earlier results unless `order.fresh`. `confirm` sees the planned jobs before anything is
    sent; when it returns False nothing is sent.
    """
    log = progress if isinstance(progress, EventLog) else EventLog(*([progress] if progress else []))
    cancel = cancel or threading.Event()
    order = absolute_order(order)
    in_flight = journal.versions_in_flight() if journal else set()
    document, jobs, media_dir = prepare_document(order, wiring, log, reserved=in_flight)
    if wiring.service is None or wiring.host is None:
        raise InputError("No retake service is wired in; choose --provider local, fal or runcomfy.")
    if confirm is not None and not confirm(jobs):
        raise CancelledError("Nothing was sent: the estimated cost was not confirmed.")
    # Numbering and recording happen under one lock (this process's, and the journal's across processes), and every
    # version's name is claimed on disk before anything is sent: two runs started together, with one journal or two,
    # never number or write a version alike. A run that planned while another claimed its names plans again.
    owner = owner_record(journal.path if journal else None)
    made = None if media_dir.exists() else media_dir
    waiting = lambda text: log(JobEvent("run", Step.PLANNED, text))  # noqa: E731
    with _PLANNING, (hold(journal.path, "numbering versions in", on_wait=waiting) if journal else nullcontext()):
        now_in_flight = journal.versions_in_flight() if journal else set()
        if now_in_flight != in_flight or not _claim_versions(jobs, owner):
            document, jobs, media_dir = prepare_document(order, wiring, EventLog(), reserved=now_in_flight)
            if not _claim_versions(jobs, owner):
                raise InputError("Another run keeps taking the version names this run planned; nothing was sent. "
                                 "Try again in a moment.")
        # Each run stages its cuts and downloads in a folder of its own: a failed job's paid-for download
        # stays there (the error names it) and a later run never writes over it.
        work = media_dir / ".work" / (_dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f") + f"-{uuid.uuid4().hex[:4]}")
        run_id = ""
        expect = state_of(order.output, document)
        if journal is not None:
            try:
                run_id = journal.begin_run(order=order_json(order), timeline=order.timeline, timeline_sha=file_sha256(order.timeline),
                                           output=order.output, media_dir=media_dir, work_dir=work, jobs=jobs)
            except BaseException:
                _release_versions(jobs, everything=True)
                raise
            log(JobEvent("run", Step.PLANNED, f"run {run_id} (`ltx-retake resume {run_id}` continues it after a crash)"))
    runner = StepRunner(wiring, log, cancel, work, journal=journal, timeline=order.timeline, fresh=order.fresh,
                     order=order)
    with ThreadPoolExecutor(max_workers=max(1, min(order.max_parallel, len(jobs))), initializer=background_priority) as pool:
        list(pool.map(runner.generate, jobs))
    output = splice_and_save(document, jobs, order, wiring, runner, overwrite=order.overwrite or order.in_place, expect=expect)
    _release_versions(jobs, everything=journal is None)   # without a journal nothing can resume a job: no name is kept
    _tidy(work, made if made is not None and made == media_dir else None)
    if journal is not None:
        journal.finish_run(run_id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
    return Outcome(jobs, output, media_dir, log, run_id)


def _claim_versions(jobs: list[Job], owner: dict) -> bool:
    """Claim every job's version name (see locks.claim); all or none."""
    done = []
    for job in jobs:
        if not claim(job.version.path, owner, in_flight=version_in_flight):
            for path in done:
                release(path)
            return False
        done.append(job.version.path)
    return True


def _release_versions(jobs: list[Job], *, everything: bool = False) -> None:
    """Let go of the names of jobs that will not write any more (written, failed for good, cancelled)."""
    for job in jobs:
        if job.version is not None and (everything or job.step in (Step.SPLICED, Step.CANCELLED)
                                        or (job.step == Step.FAILED and not job.recoverable)):
            release(job.version.path)


def resume(run_id: str, wiring: Wiring, journal: Journal, progress: Progress | None = None,
           cancel: threading.Event | None = None, *, resubmit: bool = False, output: Path | None = None,
           overwrite: bool = False) -> Outcome:
    """Continue a run from its journal: follow requests by their ids, skip finished downloads, never splice twice.

    A job whose request may have been sent without its id being kept is not sent again unless `resubmit`
    (or its service is free). `output` writes the timeline somewhere else from now on (`resume -o`), and
    `overwrite` lets it replace a file there (`--force`); the journal remembers both.
    """
    log = progress if isinstance(progress, EventLog) else EventLog(*([progress] if progress else []))
    cancel = cancel or threading.Event()
    record = journal.run(run_id)
    journal.claim(record.id)
    # The run's own absolute paths (an older journal kept the order's paths as typed, relative to where it ran).
    order = absolute_order(replace(order_from(record.order), timeline=record.timeline, output=record.output,
                              media_dir=record.media_dir))
    jobs = [job_from_record(r) for r in record.jobs]
    if output is not None or overwrite:
        order = _redirect(order, Path(output) if output is not None else order.output, overwrite)
        journal.redirect(record.id, output=order.output, order=order_json(order))
    todo = [j for j, r in zip(jobs, record.jobs) if r.unfinished]
    if not todo:
        journal.finish_run(record.id)
        return Outcome(jobs, order.output if order.output.exists() else None, record.media_dir, log, record.id)
    _check_resumable_output(order, jobs, wiring)
    _sweep(record, order.output)
    for job in todo:
        log(JobEvent(job.id, job.step, f"resuming at {job.step.value}" + (f" (request {job.request_id})" if job.request_id else "")))
    runner = StepRunner(wiring, log, cancel, record.work_dir, journal=journal, timeline=record.timeline,
                     fresh=order.fresh, resubmit=resubmit, resumed=True, order=order)
    generating = [j for j in todo if j.step not in (Step.READY, Step.SPLICING, Step.SAVING)]
    if generating and (wiring.service is None or wiring.host is None):
        raise InputError("No retake service is wired in to finish the run's requests.")
    with ThreadPoolExecutor(max_workers=max(1, min(order.max_parallel, len(todo))), initializer=background_priority) as pool:
        list(pool.map(runner.generate, todo))
    base, overwrite = _splice_base(record, order, jobs, wiring, log)
    if base is None:  # the timeline changed under the run where the versions go: keep them, say where
        for job in (j for j in todo if j.step == Step.READY):
            runner._fail(job, SpliceError(f"{order.timeline.name} changed since this run began, and its windows no longer "
                                          f"show the same frames; the version is kept at {job.version.path}. Retake again "
                                          "on the new timeline."))
        output = None
    else:
        present = version_files(base.timeline)
        for job in todo:
            if job.step == Step.READY and job.version.path.name in present:  # written before the crash: never twice
                job.step = Step.SPLICED
                runner._save(job)
                shutil.rmtree(record.work_dir / job.id, ignore_errors=True)
        output = splice_and_save(base, todo, order, wiring, runner, overwrite=overwrite,
                                  expect=state_of(order.output, base))
        if output is None and any(j.step == Step.SPLICED for j in jobs) and order.output.exists():
            output = order.output
    _release_versions(jobs)
    _tidy(record.work_dir)
    journal.finish_run(record.id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
    return Outcome(jobs, output, record.media_dir, log, record.id)


def _redirect(order: RetakeOrder, output: Path, overwrite: bool) -> RetakeOrder:
    """The run's order writing its timeline to `output` (resume -o), checked like a new run's destination."""
    output = Path(os.path.abspath(output))
    moved = not same_file(output, order.output)
    order = replace(order, output=output, overwrite=overwrite or (order.overwrite and not moved),
                    in_place=order.in_place and same_file(output, order.timeline))
    if moved:
        check_destination(order)
    return order


def _check_resumable_output(order: RetakeOrder, jobs: list[Job], wiring: Wiring) -> None:
    """Before following anything: the timeline this resume writes can be written (else a sentence naming -o/--force)."""
    out = order.output
    if out.is_dir() and out.suffix.lower() not in (".fcpxmld", ".otiod"):
        raise InputError(f"{out} is a folder; pass -o FILE to write the run's timeline to a file.")
    if out.exists() and not (order.overwrite or order.in_place):
        try:
            ours = bool(version_files(wiring.store.open(out).timeline) & {j.version.path.name for j in jobs})
        except RetakeError:
            ours = False
        if not ours:
            raise InputError(f"{out} exists and was not written by this run; pass -o OTHER.otio to write the run's "
                             "timeline elsewhere, or --force to replace it. Nothing was changed.")
    try:
        check_writable(out.parent, f"the timeline {out.name}", folder=True)
    except InputError as exc:
        raise InputError(f"{exc} Or pass -o OTHER.otio to write the run's timeline elsewhere.") from None


def _splice_base(record, order: RetakeOrder, jobs: list[Job], wiring: Wiring,
                 log: Progress | None = None) -> tuple[Document | None, bool]:
    """The document to splice into: the run's own output when it was written, else the original timeline, when it
    is unchanged (by its hash) or still shows every ready job's clip with the same frames over its window."""
    if order.output.exists():
        written = wiring.store.open(order.output)
        ours = {j.version.path.name for j in jobs}
        if version_files(written.timeline) & ours:
            return written, True
    if not order.timeline.exists():
        return None, False
    overwrite = order.overwrite or order.in_place
    if file_sha256(order.timeline) == record.timeline_sha:
        return wiring.store.open(order.timeline), overwrite
    current = wiring.store.open(order.timeline)
    ready = [j for j in jobs if j.step in (Step.READY, Step.SPLICING, Step.SAVING)]
    if ready and all(lines_up(current.timeline, j.plan) for j in ready):
        if log is not None:
            log(JobEvent("run", Step.SPLICING, f"{order.timeline.name} changed since this run began, but it still shows "
                                               "every retaken clip with the same frames: the versions go into it as it is now"))
        return current, overwrite
    return None, False


def _sweep(record, output: Path | None = None) -> None:
    """Remove the partial files a killed process left beside the run's outputs (never anything else)."""
    folders = {record.work_dir / j.name for j in record.jobs} | {Path(j.version["path"]).parent for j in record.jobs}
    for folder in folders:
        if folder.is_dir():
            for leftover in list(folder.glob(f".*{PARTIAL}*")) + list(folder.glob(".*.part")):
                leftover.unlink(missing_ok=True)
    for out in {record.output, output or record.output}:
        if out.parent.is_dir():
            for leftover in out.parent.glob(f".{out.stem}.*{PARTIAL}{out.suffix}"):
                leftover.unlink(missing_ok=True)


def drop(run_id: str, journal: Journal) -> tuple[str, list[str]]:
    """End a run the editor gives up on (`ltx-retake jobs --drop`): it is never resumed; what its requests cost stays
    in the ledger with the paid file each left (a version, else the service's return), which is kept; unpaid work
    files, partial files and version-name claims go. Returns the run's id and a sentence per paid file kept."""
    try:
        record = journal.run(run_id)
    except InputError:  # a run whose jobs this version cannot read is still dropped, without tidying
        return journal.drop_run(run_id), []
    kept: dict[str, str] = {}
    said = []
    for r in record.jobs:
        version = Path(r.version.get("path", "")) if r.version.get("path") else None
        returned = record.work_dir / r.name / "returned.mp4"
        paid = r.submitted is not None and r.submitted.request_id
        if version is not None and r.step != Step.SPLICED:
            release(version)
        if version is not None and version.is_file() and (r.step == Step.SPLICED or intact(version, r.version_sha)):
            path = version
        elif paid and returned.is_file():
            path = returned
        else:
            path = None
        work = record.work_dir / r.name
        if path == returned:      # only the paid return stays of the job's work files
            for other in (p for p in work.iterdir() if p != returned):
                shutil.rmtree(other) if other.is_dir() else other.unlink(missing_ok=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if paid and path is not None:
            kept[r.submitted.request_id] = str(path)
            if r.step != Step.SPLICED:
                said.append(f"{r.name}: the paid result of request {r.submitted.request_id} is kept at {path}")
    _sweep(record)
    _tidy(record.work_dir)
    return journal.drop_run(record.id, kept), said
