"""The runs an order makes: plan, generate and land its jobs, resume a run after a crash, drop one."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import opentimelineio as otio

from .atomic import PARTIAL, check_writable
from .checks import check_destination
from .document import Document
from .errors import CancelledError, InputError, RetakeError, SpliceError
from .jobs import Job, Outcome, Wiring, intact, job_from_record
from .journal import Journal
from .landing import splice_and_save, state_of, version_files
from .locks import release
from .orders import RetakeOrder, absolute_order, order_from, order_json, selections_of
from .paths import file_sha256, same_file
from .progress import EventLog, JobEvent, Progress, Step
from .retake import generate, plan, release_versions, start
from .selection import Selection
from .splice import lines_up

__all__ = ["prepare", "prepare_document", "run", "resume", "drop"]


def prepare(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None, *,
            reserved: set[str] = frozenset()) -> tuple[otio.schema.Timeline, list[Job], Path]:
    """Read, select, probe and plan (see `prepare_document`); the timeline as read, the jobs and the media folder."""
    document, jobs, media_dir = prepare_document(order, wiring, progress, reserved=reserved)
    return document.timeline, jobs, media_dir


def prepare_document(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None, *,
                     reserved: set[str] = frozenset()) -> tuple[Document, list[Job], Path]:
    """Read the order's timeline, turn its --clip/--range/--markers into selections, and plan them (`retake.plan`):
    no upload, no spend, everything that can be known before paying checked."""
    document, selections = _read(order, wiring)
    jobs, media_dir = plan(document, selections, order, wiring, reserved=reserved, progress=progress)
    return document, jobs, media_dir


def _read(order: RetakeOrder, wiring: Wiring) -> tuple[Document, list[Selection]]:
    """The order's timeline read, and its --clip/--range/--markers as selections of it."""
    document = wiring.store.open(order.timeline)
    try:
        return document, selections_of(document.timeline, order)
    except InputError as exc:
        raise type(exc)(str(exc) if document.name in str(exc) else f"{document.name}: {exc}") from None


def _tidy(work: Path, made: Path | None = None) -> None:
    """Remove the run's empty work folders (and `made`, the media folder this run created, when nothing is in it)."""
    for folder in (work, work.parent, *((made,) if made else ())):
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()


def run(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None, cancel: threading.Event | None = None, *,
        journal: Journal | None = None, confirm: Callable[[list[Job]], bool] | None = None,
        document: Document | None = None, selections: list[Selection] | None = None) -> Outcome:
    """Plan the order, generate every job (concurrently), land the ones that succeeded and save the output atomically.

    With a journal, every step is recorded before it starts (`resume` continues from there) and identical
    requests reuse earlier results unless `order.fresh`. `confirm` sees the planned jobs before anything is
    sent; when it returns False nothing is sent. A face that holds the document read from `order.timeline` and the
    editor's picks on it hands both in (`document`, `selections`); else the order's --clip/--range/--markers say.
    """
    log = progress if isinstance(progress, EventLog) else EventLog(*([progress] if progress else []))
    cancel = cancel or threading.Event()
    order = absolute_order(order)
    in_flight = journal.versions_in_flight() if journal else set()
    if document is None:
        document, selections = _read(order, wiring)
    jobs, media_dir = plan(document, selections, order, wiring, reserved=in_flight, progress=log)
    if wiring.service is None or wiring.host is None:
        raise InputError("No retake service is wired in; choose --provider local, fal or runcomfy.")
    if confirm is not None and not confirm(jobs):
        raise CancelledError("Nothing was sent: the estimated cost was not confirmed.")
    started = start(document, jobs, media_dir, order, wiring, journal, selections=selections, reserved=in_flight,
                    progress=log)
    jobs, media_dir, work = started.jobs, started.media_dir, started.work
    expect = state_of(order.output, document)
    runner = generate(jobs, wiring, work, order, journal=journal, cancel=cancel, progress=log)
    output = splice_and_save(document, jobs, order, wiring, runner, overwrite=order.overwrite or order.in_place, expect=expect)
    release_versions(jobs, everything=journal is None)   # without a journal nothing can resume a job: no name is kept
    _tidy(work, started.made if started.made is not None and started.made == media_dir else None)
    if journal is not None:
        journal.finish_run(started.run_id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
    return Outcome(jobs, output, media_dir, log, started.run_id)


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
        return Outcome(jobs, order.output if order.output and order.output.exists() else None, record.media_dir, log,
                       record.id)
    _check_resumable_output(order, jobs, wiring)
    _sweep(record, order.output)
    for job in todo:
        log(JobEvent(job.id, job.step, f"resuming at {job.step.value}" + (f" (request {job.request_id})" if job.request_id else "")))
    generating = [j for j in todo if j.step not in (Step.READY, Step.SPLICING, Step.SAVING)]
    if generating and (wiring.service is None or wiring.host is None):
        raise InputError("No retake service is wired in to finish the run's requests.")
    runner = generate(todo, wiring, record.work_dir, order, journal=journal, cancel=cancel, progress=log, resumed=True,
                      resubmit=resubmit)
    if order.output is None:  # a panel's run: its open document takes the versions, not a file
        ready = [j for j in todo if j.step == Step.READY]
        if ready:
            log(JobEvent("run", Step.READY, f"{len(ready)} version(s) ready: open {order.timeline.name} in the panel to "
                                            f"review them, or `ltx-retake resume {record.id} -o FILE` to write a timeline"))
        release_versions(jobs)
        journal.finish_run(record.id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
        return Outcome(jobs, None, record.media_dir, log, record.id)
    base, overwrite = _splice_base(record, order, jobs, wiring, log, journal)
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
    release_versions(jobs)
    _tidy(record.work_dir)
    journal.finish_run(record.id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
    return Outcome(jobs, output, record.media_dir, log, record.id)


def _redirect(order: RetakeOrder, output: Path, overwrite: bool) -> RetakeOrder:
    """The run's order writing its timeline to `output` (resume -o), checked like a new run's destination."""
    output = Path(os.path.abspath(output))
    moved = order.output is None or not same_file(output, order.output)
    order = replace(order, output=output, overwrite=overwrite or (order.overwrite and not moved),
                    in_place=order.in_place and same_file(output, order.timeline))
    if moved:
        check_destination(order)
    return order


def _check_resumable_output(order: RetakeOrder, jobs: list[Job], wiring: Wiring) -> None:
    """Before following anything: the timeline this resume writes can be written (else a sentence naming -o/--force)."""
    out = order.output
    if out is None:   # a panel's run: its versions wait for the panel
        return
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
                 log: Progress | None = None, journal: Journal | None = None) -> tuple[Document | None, bool]:
    """The document to splice into: the run's own output when it was written, else the original timeline, when it
    is unchanged (by its hash) or still shows every ready job's clip with the same frames over its window; a panel's
    run (`resume -o`) lands in the timeline its jobs were planned on, the panel's document as it was then."""
    planned = journal.planned(record.id) if journal is not None and record.output is None else None
    if planned is not None and not order.output.exists():
        return Document(planned), order.overwrite
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
    for out in {record.output, output or record.output} - {None}:
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
