"""The job runner: plan every selection, then cut, host, submit, follow, fetch, conform, splice and save."""

from __future__ import annotations

import datetime as _dt
import hashlib
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio

from .errors import CancelledError, InputError, MediaError, RetakeError, SelectionError, redact
from .limits import limits_for
from .paths import safe_stem, same_file
from .metadata import NS
from .plan import Plan, plan_retake, source_clip, timecode_at
from .ports import ConformSpec, FileHost, MediaInfo, MediaTool, RetakeMode, RetakeRequest, RetakeService, ServiceStatus, TimelineStore
from .progress import EventLog, JobEvent, Progress, Step
from .selection import Selection, select_clip, select_markers, select_range, track_label
from .splice import Version, describe_landing, linked_sound, next_version_number, place_above, splice_version, version_name

__all__ = ["Wiring", "RetakeOrder", "Job", "Outcome", "prepare", "run"]


@dataclass
class Wiring:
    """The adapters a run uses, handed in by the composition root (or a test)."""

    media: MediaTool
    store: TimelineStore
    service: RetakeService | None = None
    host: FileHost | None = None


@dataclass(frozen=True)
class RetakeOrder:
    """What the user asked for, as the CLI or the panel collected it."""

    timeline: Path
    output: Path
    prompt: str | None
    mode: RetakeMode
    provider: str
    model: str
    clip: str | None = None
    range: tuple[str, str] | None = None
    markers: bool = False
    track: str | None = None
    per_clip: bool = False
    split: bool = False
    placement: str = "splice"
    media_dir: Path | None = None
    overwrite: bool = False
    in_place: bool = False
    max_parallel: int = 4


@dataclass
class Job:
    """One retake of one window; its state is the last step it entered."""

    id: str
    plan: Plan
    version: Version | None = None
    step: Step = Step.PLANNED
    request_id: str | None = None
    cut_path: Path | None = None
    returned_path: Path | None = None
    version_info: MediaInfo | None = None
    error: str | None = None
    error_exit: int = 0


@dataclass
class Outcome:
    """What a run produced."""

    jobs: list[Job]
    output: Path | None
    media_dir: Path
    events: EventLog = field(repr=False, default_factory=EventLog)

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.step != Step.SPLICED]

    @property
    def exit_code(self) -> int:
        if not self.failed:
            return 0
        return max((j.error_exit for j in self.failed), default=1) or 1


def _selections(timeline: otio.schema.Timeline, order: RetakeOrder) -> list[Selection]:
    chosen = [x for x in (order.clip is not None, order.range is not None, order.markers) if x]
    if len(chosen) != 1:
        raise InputError("Say what to retake with exactly one of --clip NAME, --range IN OUT or --markers.")
    if order.clip is not None:
        return [select_clip(timeline, order.clip, order.track)]
    if order.range is not None:
        return select_range(timeline, order.range[0], order.range[1], order.track, per_clip=order.per_clip)
    return select_markers(timeline, order.track)


def prepare(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None) -> tuple[otio.schema.Timeline, list[Job], Path]:
    """Read, select, probe and plan. No upload, no spend: everything is validated here first."""
    log = progress or EventLog()
    timeline = wiring.store.read(order.timeline)
    if order.placement not in ("splice", "above"):
        raise InputError(f"Unknown placement {order.placement!r}; use splice or above.")
    same = same_file(order.output, order.timeline)
    if same and not order.in_place:
        raise InputError(f"The output {order.output.name} is the input timeline; give another -o path (the original is never overwritten), or pass --in-place.")
    if order.output.exists() and not (order.overwrite or (order.in_place and same)):
        raise InputError(f"{order.output} already exists; choose another -o path, or pass --force to replace it.")
    try:  # the output's format is known before anything is spent, not discovered at save
        otio.adapters.from_filepath(str(order.output))
    except Exception:
        raise InputError(f"Cannot tell which timeline format to write from {order.output.name}; use .otio (keeps every "
                         "version), .otioz, .edl, .xml or .aaf.") from None
    base_dir = order.timeline.absolute().parent
    media_dir = order.media_dir or _existing_retake_folder(timeline) or order.output.absolute().parent / f"{safe_stem(order.timeline.stem)}_retakes"
    selections = _selections(timeline, order)
    limits = limits_for(order.provider, order.model)
    probed: dict[Path, MediaInfo] = {}
    plans: list[Plan] = []
    for sel in selections:
        src = source_clip(timeline, sel, base_dir)
        if src.media_path not in probed:
            if not src.media_path.exists():
                raise SelectionError(f"{sel.label}: its media {src.media_path} is not on this machine; relink the clip or mount the drive.")
            probed[src.media_path] = wiring.media.probe(src.media_path)
        prompt = sel.prompt if order.markers else order.prompt
        if order.markers and order.prompt:
            prompt = f"{order.prompt.strip()} {sel.prompt}".strip()
        plans.extend(plan_retake(timeline, src, probed[src.media_path], limits, prompt=prompt or "", mode=order.mode,
                                 provider=order.provider, model=order.model, split=order.split))
    _refuse_overlaps(plans)
    taken = {p.stem for p in media_dir.glob("*")} if media_dir.exists() else set()
    numbers: dict[str, int] = {}
    jobs = []
    for i, plan in enumerate(plans, 1):
        n = numbers.get(plan.clip_name) or next_version_number(timeline, plan.clip_name, taken)
        numbers[plan.clip_name] = n + 1
        suffix = ".mov" if Path(plan.media.path).suffix.lower() == ".mov" else ".mp4"
        version = Version(n, plan.clip_name, Path(media_dir / f"{safe_stem(version_name(plan.clip_name, n))}{suffix}").absolute(), {})
        job = Job(id=f"job{i}", plan=plan, version=version)
        jobs.append(job)
        log(JobEvent(job.id, Step.PLANNED, plan.summary()))
        for note in plan.notes:
            log(JobEvent(job.id, Step.PLANNED, f"note: {note}"))
        log(JobEvent(job.id, Step.PLANNED, describe_landing(timeline, plan, order.placement)))
        if plan.estimate_usd:
            log(JobEvent(job.id, Step.PLANNED, f"estimated cost ${plan.estimate_usd:.2f} ({plan.price_basis})"))
    return timeline, jobs, media_dir


def _existing_retake_folder(timeline: otio.schema.Timeline) -> Path | None:
    """Where this timeline's earlier retakes live, so every version of a project stays in one folder."""
    folders: dict[Path, int] = {}
    for clip in timeline.find_clips():
        if NS not in clip.metadata:
            continue
        for key, ref in clip.media_references().items():
            url = getattr(ref, "target_url", "")
            if key.startswith("retake_v") and url:
                folder = Path(url).parent
                folders[folder] = folders.get(folder, 0) + 1
    existing = [f for f in sorted(folders, key=folders.get, reverse=True) if f.is_dir()]
    return existing[0] if existing else None


def _refuse_overlaps(plans: list[Plan]) -> None:
    for a_i, a in enumerate(plans):
        for b in plans[a_i + 1:]:
            if a.track_index == b.track_index and a.record_range.intersects(b.record_range):
                raise SelectionError(f"{a.label} and {b.label} overlap after widening ({a.record_timecode} and {b.record_timecode}); "
                                     "move the markers apart or retake them one at a time.")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Runner:
    def __init__(self, wiring: Wiring, log: Progress, cancel: threading.Event, work: Path):
        self.w, self.log, self.cancel, self.work = wiring, log, cancel, work

    def _enter(self, job: Job, step: Step, message: str = "", **kw) -> None:
        if self.cancel.is_set():
            raise CancelledError("Cancelled by the user.")
        job.step = step
        self.log(JobEvent(job.id, step, message, **kw))

    def generate(self, job: Job) -> Job:
        """Every step up to a verified version file on disk."""
        plan, svc = job.plan, self.w.service
        folder = self.work / job.id
        submitted = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._enter(job, Step.CUTTING, f"cutting {plan.cut.total_frames} frames from {Path(plan.media.path).name}")
            job.cut_path = folder / "input.mp4"
            self.w.media.cut(plan.cut, job.cut_path)
            self._enter(job, Step.UPLOADING, f"uploading {job.cut_path.stat().st_size / 1e6:.1f} MB")
            url = self.w.host.upload(job.cut_path, "video/mp4",
                                     on_progress=lambda f: self.log(JobEvent(job.id, Step.UPLOADING, fraction=f)))
            self._enter(job, Step.QUEUED, "submitting")
            submitted = svc.submit(RetakeRequest(url, plan.prompt, plan.start_time, plan.duration, plan.mode))
            job.request_id = submitted.request_id
            self.log(JobEvent(job.id, Step.QUEUED, f"request {submitted.request_id}"))
            svc.follow(submitted, lambda s: self._status(job, s), should_stop=self.cancel.is_set)
            result = svc.result(submitted)
            self._enter(job, Step.DOWNLOADING, "downloading the result")
            job.returned_path = folder / "returned.mp4"
            svc.download(result.url, job.returned_path,
                         on_progress=lambda f: self.log(JobEvent(job.id, Step.DOWNLOADING, fraction=f)))
            self._enter(job, Step.CONFORMING, f"conforming to {plan.media.width}x{plan.media.height} at {float(plan.media.frame_rate):.3f} fps")
            spec = ConformSpec(plan.media, plan.cut, plan.window_offset, plan.window_frames, plan.window_start_frame, plan.mode,
                               timecode=timecode_at(plan.media, plan.window_start_frame))
            job.version.path.parent.mkdir(parents=True, exist_ok=True)
            job.version_info = self.w.media.conform(job.returned_path, spec, job.version.path)
            job.version = Version(job.version.number, job.version.clip_name, job.version.path,
                                  self._provenance(job, result.extra))
            self._enter(job, Step.READY, f"version {job.version.path.name} verified")
        except CancelledError as exc:
            if submitted is not None:
                try:
                    svc.cancel(submitted)
                except RetakeError:
                    pass
            self._fail(job, exc, Step.CANCELLED)
        except RetakeError as exc:
            self._fail(job, exc)
        except OSError as exc:  # disk full, permissions: a sentence, not a traceback, and the other jobs go on
            self._fail(job, MediaError(f"{job.step.value} failed: {exc.strerror or exc} ({exc.filename or folder}). "
                                       "Free some space or pick another --media-dir, then retake."))
        except Exception as exc:  # a bug: keep the other jobs' results, say what happened
            self._fail(job, RetakeError(f"{job.step.value} failed unexpectedly ({type(exc).__name__}: {exc}); "
                                        "please report this with the command line."))
        return job

    def _status(self, job: Job, status: ServiceStatus) -> None:
        if status.state == "queued":
            pos = f" #{status.queue_position}" if status.queue_position is not None else ""
            self._enter(job, Step.QUEUED, f"queued{pos}", queue_position=status.queue_position, log=status.logs)
        elif status.state == "generating":
            self._enter(job, Step.GENERATING, "generating", log=status.logs)
        elif status.logs:
            self.log(JobEvent(job.id, job.step, "", log=status.logs))

    def _fail(self, job: Job, exc: RetakeError, step: Step = Step.FAILED, note: str = "") -> None:
        job.error = redact(str(exc)) + (f" ({note})" if note else "")
        job.error_exit = exc.exit_code
        rid = getattr(exc, "request_id", None) or job.request_id
        if rid:
            job.request_id = rid
        job.step = step
        kept = f"; what was fetched is kept in {job.returned_path.parent}" if job.returned_path and job.returned_path.exists() else ""
        self.log(JobEvent(job.id, step, job.error + (f" (request id {rid})" if rid else "") + kept))

    def _provenance(self, job: Job, extra: dict) -> dict:
        p = job.plan
        return {
            "prompt": p.prompt,
            "mode": p.mode.value,
            "service": p.provider,
            "model": p.model,
            "request_id": job.request_id,
            "source_media": str(p.media.path),
            "source_range": {"start_frame": p.window_start_frame, "frames": p.window_frames,
                             "rate": str(p.media.frame_rate), "timecode": timecode_at(p.media, p.window_start_frame)},
            "record_range": p.record_timecode,
            "window": {"start_time": p.start_time, "duration": p.duration},
            "input_cut": {"start_frame": p.cut.start_frame, "frames": p.cut.frame_count, "pad_head": p.cut.pad_head,
                          "pad_tail": p.cut.pad_tail, "sha256": _sha256(job.cut_path)},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "file": job.version.path.name,
            "sha256": _sha256(job.version.path),
            "notes": list(p.notes),
            **({"engine": extra["engine"]} if extra.get("engine") else {}),
        }


def _splice_one(timeline: otio.schema.Timeline, job: Job, placement: str, log: Progress) -> None:
    if placement == "above":
        place_above(timeline, job.plan, job.version)
        return
    linked = linked_sound(timeline, job.plan) if job.plan.mode != RetakeMode.REPLACE_VIDEO else []
    splice_version(timeline, job.plan, job.version)
    for sound in linked:
        splice_version(timeline, sound, job.version)
        log(JobEvent(job.id, Step.SPLICING, f"the linked sound on {track_label(timeline, sound.track_index)} takes the retake too"))


def run(order: RetakeOrder, wiring: Wiring, progress: Progress | None = None,
        cancel: threading.Event | None = None) -> Outcome:
    """Prepare, generate every job (concurrently), splice the ones that succeeded, and save atomically."""
    log = progress if isinstance(progress, EventLog) else EventLog(*([progress] if progress else []))
    cancel = cancel or threading.Event()
    timeline, jobs, media_dir = prepare(order, wiring, log)
    if wiring.service is None or wiring.host is None:
        raise InputError("No retake service is wired in; choose --provider local, fal or runcomfy.")
    # Each run stages its cuts and downloads in a folder of its own: a failed job's paid-for download
    # stays there (the error names it) and a later run never writes over it.
    work_root = media_dir / ".work"
    work = work_root / _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    runner = _Runner(wiring, log, cancel, work)
    with ThreadPoolExecutor(max_workers=max(1, min(order.max_parallel, len(jobs)))) as pool:
        list(pool.map(runner.generate, jobs))
    ready = sorted((j for j in jobs if j.step == Step.READY),
                   key=lambda j: (j.plan.track_index, j.plan.record_range.start_time.to_seconds()))
    spliced: list[Job] = []
    for job in ready:  # never cancelled from here on: these results are paid for
        job.step = Step.SPLICING
        log(JobEvent(job.id, Step.SPLICING, f"{order.placement} {job.version.name}"))
        candidate = timeline.deepcopy()  # each splice is all or nothing
        try:
            _splice_one(candidate, job, order.placement, log)
        except RetakeError as exc:
            runner._fail(job, exc, note=f"the version is kept at {job.version.path}")
            continue
        timeline = candidate
        spliced.append(job)
    output = None
    if spliced:
        for job in spliced:
            log(JobEvent(job.id, Step.SAVING, f"writing {order.output.name}"))
        try:
            output = wiring.store.write(timeline, order.output, overwrite=order.overwrite or order.in_place,
                                        protect=() if order.in_place else (order.timeline,))
        except (RetakeError, OSError) as exc:
            error = exc if isinstance(exc, RetakeError) else InputError(f"Could not write {order.output}: {exc.strerror or exc}.")
            for job in spliced:
                runner._fail(job, error, note=f"the version is kept at {job.version.path}; retake nothing, write the timeline again")
            spliced = []
        for job in spliced:
            job.step = Step.SPLICED
            log(JobEvent(job.id, Step.SPLICED, f"{job.version.name} -> {job.version.path}"))
            shutil.rmtree(work / job.id, ignore_errors=True)
    for folder in (work, work_root):
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
    return Outcome(jobs, output, media_dir, log)

