"""Landing: finished versions spliced into a timeline, all or nothing each, and saved under its lock."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import opentimelineio as otio

from .document import Document
from .errors import InputError, redact, RetakeError, SpliceError
from .jobs import Job, Wiring
from .journal import failpoint
from .locks import hold
from .metadata import is_version_key
from .orders import RetakeOrder
from .paths import file_sha256, same_file
from .ports import RetakeMode
from .progress import EventLog, JobEvent, Progress, Step
from .selection import track_label
from .splice import lines_up, linked_sound, place_above, splice_version

if TYPE_CHECKING:  # the step machine hands itself in to record what happens to each job
    from .steps import StepRunner

__all__ = ["splice_job", "splice_and_save", "splice_into", "state_of", "version_files"]


def splice_job(timeline: otio.schema.Timeline, job: Job, placement: str, log: Progress) -> None:
    """Splice one job into `timeline` (mutated), all or nothing: a refused linked sound takes the picture's splice back.

    Each splice takes itself back when refused, so only the job's earlier splices are undone here: no copy of the
    whole timeline per job (with many jobs on a long timeline, those copies were most of the time spent).
    """
    if placement == "above":
        place_above(timeline, job.plan, job.version)  # one change, all or nothing by itself
        return
    linked = linked_sound(timeline, job.plan) if job.plan.mode != RetakeMode.REPLACE_VIDEO else []
    undo: list[Callable[[], None]] = []
    try:
        splice_version(timeline, job.plan, job.version, undo=undo)
        for sound in linked:
            splice_version(timeline, sound, job.version, undo=undo)
            log(JobEvent(job.id, Step.SPLICING, f"the linked sound on {track_label(timeline, sound.track_index)} takes the retake too"))
    except BaseException:
        for take_back in reversed(undo):
            take_back()
        raise


def splice_and_save(document: Document, jobs: list[Job], order: RetakeOrder, wiring: Wiring,
                     runner: StepRunner, *, overwrite: bool, expect: str | None) -> Path | None:
    """Splice every ready job (each all or nothing) into the document's timeline and write it once, atomically.

    The output is read, spliced and written under its lock. `expect` is the output's state when the run began
    (its hash, None when absent): when another run saved it meanwhile, this run's versions are spliced into the
    file as it is now (each only where its window still shows the same frames), so neither run's retakes are lost.
    """
    log = runner.log
    ready = sorted((j for j in jobs if j.step in (Step.READY, Step.SPLICING, Step.SAVING)),
                   key=lambda j: (j.plan.track_index, j.plan.record_range.start_time.to_seconds()))
    if not ready:
        return None
    waiting = lambda text: log(JobEvent("run", Step.SAVING, text))  # noqa: E731
    try:
        lock = hold(order.output, "saving", on_wait=waiting)
        lock.__enter__()
    except RetakeError as exc:
        for job in ready:
            runner._fail(job, exc, recoverable=True, note=f"the version is kept at {job.version.path}; `ltx-retake resume` saves it")
        return None
    try:
        return _splice_and_write(document, ready, order, wiring, runner, overwrite=overwrite, expect=expect)
    finally:
        lock.__exit__(None, None, None)


def _splice_and_write(document: Document, ready: list[Job], order: RetakeOrder, wiring: Wiring, runner: StepRunner, *,
                      overwrite: bool, expect: str | None) -> Path | None:
    log = runner.log
    now = state_of(order.output)
    merged = now is not None and now != expect
    if merged:  # saved by another run (or by hand) while this one worked: splice into it as it is now
        try:
            document = wiring.store.open(order.output)
        except RetakeError as exc:
            for job in ready:
                runner._fail(job, SpliceError(f"{order.output.name} changed while this run worked and cannot be read now "
                                              f"({exc})"), recoverable=True,
                             note=f"the version is kept at {job.version.path}; `ltx-retake resume RUN -o OTHER` writes it elsewhere")
            return None
        overwrite = True
        log(JobEvent("run", Step.SAVING, f"{order.output.name} was saved by another run while this one worked: its "
                                          "changes are kept, and this run's versions are spliced into it"))
    timeline = document.timeline
    spliced: list[Job] = []
    for job in ready:  # never cancelled from here on: these results are paid for
        job.step = Step.SPLICING
        runner._save(job)
        log(JobEvent(job.id, Step.SPLICING, f"{order.placement} {job.version.name}"))
        try:
            if merged and not lines_up(timeline, job.plan):
                raise SpliceError(f"{order.output.name} was changed by another run while this one worked, and it no longer "
                                  f"shows {job.plan.clip_name!r} with the same frames over {job.plan.record_timecode}")
            splice_job(timeline, job, order.placement, log)  # each splice is all or nothing
        except RetakeError as exc:
            if merged:  # the result is paid for and whole: it can still go into another timeline
                runner._fail(job, exc, recoverable=True, note=f"the version is kept at {job.version.path}; "
                             f"`ltx-retake resume {job.run_id or 'RUN'} -o OTHER.otio` writes it into a new timeline")
            else:
                runner._fail(job, exc, note=f"the version is kept at {job.version.path}")
            continue
        spliced.append(job)
    if not spliced:
        return None
    for job in spliced:
        job.step = Step.SAVING
        runner._save(job)
        log(JobEvent(job.id, Step.SAVING, f"writing {order.output.name}"))
    try:
        output = wiring.store.save(timeline, order.output, document=document, overwrite=overwrite,
                                   protect=() if order.in_place else (order.timeline,), accept_losses=order.accept_losses)
    except (RetakeError, OSError) as exc:
        error = exc if isinstance(exc, RetakeError) else InputError(f"Could not write {order.output}: {exc.strerror or exc}.")
        for job in spliced:
            runner._fail(job, error, recoverable=True,
                         note=f"the version is kept at {job.version.path}; free the space or fix the folder, then "
                              "`ltx-retake resume` (-o OTHER writes the timeline elsewhere)")
        return None
    failpoint("saved")
    for job in spliced:
        job.step = Step.SPLICED
        runner._save(job)
        log(JobEvent(job.id, Step.SPLICED, f"{job.version.name} -> {job.version.path}"))
        shutil.rmtree(runner.work / job.id, ignore_errors=True)
    return output


def splice_into(timeline: otio.schema.Timeline, jobs: list[Job], placement: str = "splice",
                progress: Progress | None = None) -> list[str]:
    """Splice finished jobs' versions into another copy of the timeline they were planned on (the panel's open
    document, which may have changed since), each all or nothing. Mutates `timeline`; returns a sentence for
    every job that could not land there (its version file is kept)."""
    log = progress or EventLog()
    problems = []
    for job in sorted(jobs, key=lambda j: (j.plan.track_index, j.plan.record_range.start_time.to_seconds())):
        try:
            splice_job(timeline, job, placement, log)  # all or nothing: a refusal leaves the timeline as it was
        except RetakeError as exc:
            problems.append(f"{job.version.name} could not be spliced here ({redact(str(exc))}); the file is kept at {job.version.path}.")
    return problems


def state_of(path: Path, document: Document | None = None) -> str | None:
    """A file's state as a run saw it: the hash of its bytes (the document's, when it is the file read), None if absent."""
    if document is not None and document.path is not None and document.sha256 and same_file(document.path, path):
        return document.sha256
    return file_sha256(path) if path.is_file() else None


def version_files(timeline: otio.schema.Timeline) -> set[str]:
    names = set()
    for clip in timeline.find_clips():
        for key, ref in clip.media_references().items():
            url = getattr(ref, "target_url", "") or ""
            if is_version_key(key) and url:
                names.add(Path(url).name)
    return names
