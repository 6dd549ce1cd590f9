"""The job runner: plan every selection, then cut, host, submit, follow, fetch, conform, splice and save."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

import opentimelineio as otio

from .errors import (AuthError, BalanceError, CancelledError, ContentRefusedError, InputError, JobFailedError, MediaError,
                     RetakeError, SelectionError, ServiceValidationError, SpliceError, SubmitUncertainError,
                     TransientServiceError, redact, scrub, scrub_data)
from .journal import Journal, failpoint
from .limits import DEFAULT_CONTEXT_S, DEFAULT_CROSSFADE_MS, WORKING_SIZE, limits_for
from .document import Document
from .paths import file_sha256, safe_stem, same_file
from .metadata import NS, is_version_key, original_reference
from .plan import Plan, plan_retake, source_clip, timecode_at
from .relink import Relinker
from .ports import (DELIVERIES, ConformSpec, CutSpec, FileHost, MediaInfo, MediaTool, RetakeMode, RetakeRequest, RetakeService,
                    ServiceStatus, SubmittedJob, TimelineStore)
from .priority import background_priority
from .progress import Cancel, EventLog, JobEvent, Progress, Step
from .timing import exact_rate, rate_text
from .selection import Selection, select_clips, select_markers, select_range, track_label
from .splice import (Version, describe_landing, linked_sound, next_version_number, place_above, splice_version, version_name,
                     versions_on)

__all__ = ["Wiring", "RetakeOrder", "Job", "Outcome", "prepare", "run", "resume", "splice_into", "default_media_dir", "job_from_record", "order_json", "order_from"]


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
    clip: str | tuple[str, ...] | None = None  # a clip's name or #N; several for one job each
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
    fresh: bool = False                 # pay for a new generation even when an identical request has a result
    local_protocol: str = "fal"         # how the embedded service is driven (fal or runcomfy)
    rate: float | None = None           # an EDL's frame rate, when its timecodes do not tell
    timeline_name: str | None = None    # which timeline, when the file holds several
    media_root: Path | None = None      # where relative media paths start (default: the timeline file's folder)
    delivery: str = "auto"              # the version file's codec: auto, h264, prores or dnxhr (see ports.DELIVERIES)
    path_maps: tuple[tuple[str, str], ...] = ()   # --map-path FROM=TO: where another system's media paths are here
    media_search: tuple[Path, ...] = ()           # --media-search DIR: folders where missing media is found by name
    accept_losses: bool = False         # --yes: write an output that cannot hold everything (listed before paying)
    context_s: float | None = DEFAULT_CONTEXT_S   # --context: seconds of the shot sent each side (None: --context max)
    max_size: tuple[int, int] | None = WORKING_SIZE   # larger pictures are sent at this size (None: --full-res)
    crossfade_ms: float = DEFAULT_CROSSFADE_MS      # a changed sound crossfades this long at each edge (0: none)
    dissolve_frames: int = 0            # --dissolve: a changed picture dissolves over this many frames at each edge


@dataclass
class Job:
    """One retake of one window; its state is the last step it entered."""

    id: str
    plan: Plan
    version: Version | None = None
    step: Step = Step.PLANNED
    request_id: str | None = None
    submitted: SubmittedJob | None = None
    result: dict | None = None              # the result's URL and what the service said about it
    cut_path: Path | None = None
    returned_path: Path | None = None
    version_info: MediaInfo | None = None
    cut_sha: str | None = None
    request_key: str | None = None          # identical requests share it (see _request_key)
    returned_sha: str | None = None
    version_sha: str | None = None
    reused_from: str | None = None          # the request whose result this job reused
    error: str | None = None
    error_exit: int = 0
    recoverable: bool = False               # failed in a way `resume` can mend (the request id is kept)
    run_id: str = ""


@dataclass
class Outcome:
    """What a run produced."""

    jobs: list[Job]
    output: Path | None
    media_dir: Path
    events: EventLog = field(repr=False, default_factory=EventLog)
    run_id: str = ""

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
        names = (order.clip,) if isinstance(order.clip, str) else tuple(order.clip)
        return select_clips(timeline, names, order.track)
    if order.range is not None:
        return select_range(timeline, order.range[0], order.range[1], order.track, per_clip=order.per_clip)
    return select_markers(timeline, order.track)


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
        return _prepare(document, order, wiring, log, reserved)
    except InputError as exc:  # every refusal names the timeline file it is about
        text = str(exc)
        if document.name in text:
            raise
        raise type(exc)(f"{document.name}: {text}") from None


def _prepare(document: Document, order: RetakeOrder, wiring: Wiring, log: Progress,
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
    same = same_file(order.output, order.timeline)
    if same and not order.in_place:
        raise InputError(f"The output {order.output.name} is the input timeline; give another -o path (the original is never overwritten), or pass --in-place.")
    if order.output.exists() and not (order.overwrite or (order.in_place and same)):
        raise InputError(f"{order.output} already exists; choose another -o path, or pass --force to replace it.")
    base_dir = (order.media_root or order.timeline.absolute().parent).absolute()
    relinker = Relinker(base_dir, order.path_maps, order.media_search)
    media_dir = order.media_dir or default_media_dir(timeline, order.output, order.timeline.stem)
    selections = _selections(timeline, order)
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
            relink_note = _check_relinked(sel, src, probed[src.media_path], found)
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
    _refuse_overlaps(plans)
    _refuse_undeliverable(plans, order.delivery)
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
        name = f"{safe_stem(version_name(plan.clip_name, n))}{_delivery(order.delivery, plan.media.path)[1]}"
        path = _free_version_path(media_dir, name, order.output, claimed)
        claimed.add(path)
        jobs.append(Job(id=f"job{i}", plan=plan, version=Version(n, plan.clip_name, path, {})))
    _check_output(document, jobs, order, wiring)
    for job in jobs:
        plan = job.plan
        log(JobEvent(job.id, Step.PLANNED, plan.summary()))
        for note in plan.notes:
            log(JobEvent(job.id, Step.PLANNED, f"note: {note}"))
        log(JobEvent(job.id, Step.PLANNED, describe_landing(timeline, plan, order.placement)))
        if plan.estimate_usd:
            log(JobEvent(job.id, Step.PLANNED, f"estimated cost ${plan.estimate_usd:.2f} ({plan.price_basis})"))
    return document, jobs, media_dir


def _free_version_path(media_dir: Path, name: str, output: Path, claimed: set[Path]) -> Path:
    """Where a version file goes: `media_dir/name`, unless a file of that name is there already (never written over):
    then `media_dir/<output's name>/name`, and `-2`, `-3` ... before the suffix if even that is taken."""
    path = (media_dir / name).absolute()
    if not path.exists() and path not in claimed:
        return path
    folder = media_dir.absolute() / safe_stem(output.stem)
    stem, suffix = Path(name).stem, Path(name).suffix
    path, k = folder / name, 1
    while path.exists() or path in claimed:
        k += 1
        path = folder / f"{stem}-{k}{suffix}"
    return path


def _check_relinked(sel: Selection, src, info: MediaInfo, found) -> str | None:
    """Media found by a path map or by name must be the clip's. Where the timeline says the media's own rate, a file
    at another rate is refused (a pull-down counts as the same); where it does not, a rate other than the clip's is
    only noted (NLEs play such media by time)."""
    media_rate = exact_rate(info.frame_rate)
    ref = original_reference(sel.clip)
    declared = (getattr(ref, "metadata", {}).get(NS) or {}).get("media_rate")
    if declared:
        said = exact_rate(Fraction(declared))
        if said != media_rate and said / media_rate not in (Fraction(1001, 1000), Fraction(1000, 1001)):
            raise SelectionError(f"{sel.label}: the media {found.path} ({found.how}) runs at {rate_text(media_rate)} fps, "
                                 f"but the timeline says its media runs at {rate_text(said)} fps; it is not this clip's "
                                 "media. Relink to the right file (--map-path, --media-search).")
        return None
    clip_rate = exact_rate(src.clip_range.start_time.rate)
    if clip_rate != media_rate and clip_rate / media_rate not in (Fraction(1001, 1000), Fraction(1000, 1001)):
        return (f"the relinked media {found.path.name} runs at {rate_text(media_rate)} fps and the clip counts "
                f"{rate_text(clip_rate)} fps: its frames are mapped by time")
    return None


def _check_output(document: Document, jobs: list[Job], order: RetakeOrder, wiring: Wiring) -> None:
    """Splice the planned versions into a copy and ask the store what the output would lose or cannot hold, before
    anything is paid for: a refusal raises; losses raise unless the order accepts them (--yes)."""
    if not jobs:
        return
    trial = document.timeline.deepcopy()
    for job in sorted(jobs, key=lambda j: (j.plan.track_index, j.plan.record_range.start_time.to_seconds())):
        _splice_one(trial, job, order.placement, lambda event: None)
    lost = wiring.store.losses(trial, order.output, document)
    if lost and not order.accept_losses:
        raise InputError(f"Writing {order.output.name} would lose: {'; '.join(lost)}. Nothing was sent. Write .otio to keep "
                         "everything, or pass --yes to accept this.")


def default_media_dir(timeline: otio.schema.Timeline, output: Path, stem: str) -> Path:
    """Where a run's versions go unless told: the timeline's earlier retakes' folder, else `<stem>_retakes` beside the output."""
    return _existing_retake_folder(timeline) or output.absolute().parent / f"{safe_stem(stem)}_retakes"


def _existing_retake_folder(timeline: otio.schema.Timeline) -> Path | None:
    """Where this timeline's earlier retakes live, so every version of a project stays in one folder."""
    folders: dict[Path, int] = {}
    for clip in timeline.find_clips():
        if NS not in clip.metadata:
            continue
        for key, ref in clip.media_references().items():
            url = getattr(ref, "target_url", "")
            if is_version_key(key) and url:
                folder = Path(url).parent
                folders[folder] = folders.get(folder, 0) + 1
    existing = [f for f in sorted(folders, key=folders.get, reverse=True) if f.is_dir()]
    return existing[0] if existing else None


def _delivery(delivery: str, source: str | Path) -> tuple[str, str]:
    """The version's codec and file suffix for a delivery choice (auto: H.264, in .mov when the source is a .mov)."""
    if delivery == "auto":
        return "h264", ".mov" if Path(source).suffix.lower() == ".mov" else ".mp4"
    return delivery, ".mp4" if delivery == "h264" else ".mov"


_VIDEO_CODEC = {"h264": "h264", "prores": "prores", "dnxhr": "dnxhd"}  # a delivery's codec as a probe names it


def _refuse_undeliverable(plans: list[Plan], delivery: str) -> None:
    """DNxHR takes pictures from 256x120 up (the version has the source's size, upright, in even numbers)."""
    if delivery != "dnxhr":
        return
    for plan in plans:
        m = plan.media
        w, h = (m.display_width, m.display_height) if m.rotation % 360 else (m.width, m.height)
        w, h = max(2, int(w / 2 + 0.5) * 2), max(2, int(h / 2 + 0.5) * 2)
        if w < 256 or h < 120:
            raise InputError(f"{plan.label}: DNxHR needs a picture of at least 256x120, and {Path(m.path).name} is "
                             f"{w}x{h}; deliver it as prores or h264 instead (--deliver prores).")


def _refuse_overlaps(plans: list[Plan]) -> None:
    for a_i, a in enumerate(plans):
        for b in plans[a_i + 1:]:
            if a.track_index == b.track_index and a.record_range.intersects(b.record_range):
                raise SelectionError(f"{a.label} and {b.label} overlap after widening ({a.record_timecode} and {b.record_timecode}); "
                                     "move the markers apart or retake them one at a time.")


_PLANNING = threading.Lock()
# Cutting and conforming use every core by themselves; more of them at once than there are cores only makes each
# slower and starves the user's window. Waiting on the network is not bounded: that is what jobs do most.
_MEDIA_WORK = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))


class _Runner:
    """Takes jobs through their steps, skipping what an earlier (crashed) attempt already finished."""

    def __init__(self, wiring: Wiring, log: Progress, cancel: threading.Event, work: Path, *,
                 journal: Journal | None = None, timeline: Path | None = None, fresh: bool = False,
                 resubmit: bool = False, resumed: bool = False, order: RetakeOrder | None = None):
        self.w, self.log, self.cancel, self.work = wiring, log, cancel, work
        self.journal, self.timeline, self.fresh, self.resubmit, self.resumed = journal, timeline, fresh, resubmit, resumed
        self.delivery = order.delivery if order else "auto"
        self.seams = dict(crossfade_s=Fraction(order.crossfade_ms).limit_denominator(1000) / 1000 if order else Fraction(0),
                          dissolve_frames=order.dissolve_frames if order else 0)

    def _save(self, job: Job, point: str | None = None) -> None:
        if self.journal is not None and job.run_id:
            self.journal.record(job, point=point)

    def _stopped(self, job: Job) -> bool:
        """Cancelled: the whole run, or this job alone (a `Cancel`'s `stop_job`)."""
        return self.cancel.stops(job.id) if isinstance(self.cancel, Cancel) else self.cancel.is_set()

    def _enter(self, job: Job, step: Step, message: str = "", **kw) -> None:
        if self._stopped(job):
            raise CancelledError("Cancelled by the user.")
        moved = job.step != step
        job.step = step
        if moved:  # the snapshot is written before the step's work starts
            self._save(job)
        self.log(JobEvent(job.id, step, message, **kw))

    def _charge(self, job: Job, status: str) -> None:
        if self.journal is not None and job.run_id and job.submitted:
            self.journal.charge(job, self.timeline or Path(), status)

    def generate(self, job: Job) -> Job:
        """Every step up to a verified version file on disk."""
        folder = self.work / job.id
        job.cut_path, job.returned_path = folder / "input.mp4", folder / "returned.mp4"
        said, job.error, job.error_exit, job.recoverable = job.error, None, 0, False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not _intact(job.version.path, job.version_sha):
                if not _intact(job.returned_path, job.returned_sha):
                    if self.resumed and job.submitted and job.plan.provider == "local":
                        job.submitted = None  # the embedded service died with the old process; sending again is free
                    if job.submitted is None:
                        if job.step == Step.SUBMITTING and not (self.resubmit or job.plan.provider == "local"):
                            return self._uncertain(job, said)
                        self._cut(job)
                        if self._reuse(job):
                            return job
                        self._submit(job, self._upload(job))
                    self._fetch(job)
                self._conform(job)
            self._enter(job, Step.READY, f"version {job.version.path.name} verified")
        except CancelledError as exc:
            if job.submitted is not None:
                try:
                    self.w.service.cancel(job.submitted)
                    self._charge(job, "cancelled")
                except RetakeError:
                    pass
            self._fail(job, exc, Step.CANCELLED)
        except SubmitUncertainError as exc:  # the request may be running, and billed: never sent again unasked
            self._fail(job, exc, Step.SUBMITTING, note="check the service's dashboard; `ltx-retake resume --resubmit` "
                                                       "sends it again")
        except RetakeError as exc:
            if isinstance(exc, (JobFailedError, ContentRefusedError)):
                self._charge(job, "failed")
            self._fail(job, exc)
        except OSError as exc:  # disk full, permissions: a sentence, not a traceback, and the other jobs go on
            self._fail(job, MediaError(f"{job.step.value} failed: {exc.strerror or exc} ({exc.filename or folder}). "
                                       "Free some space or pick another --media-dir, then `ltx-retake resume`."))
        except Exception as exc:  # a bug: keep the other jobs' results, say what happened
            self._fail(job, RetakeError(f"{job.step.value} failed unexpectedly ({type(exc).__name__}: {exc}); "
                                        "please report this with the command line."))
        return job

    def _uncertain(self, job: Job, said: str | None) -> Job:
        """The request was sent and no answer was kept: it may be running, and billed. Never sent again unasked."""
        job.error = said or ("the process stopped while the request was being sent, so it may have reached the service "
                             "(and be billed) without its id being kept. Check the service's dashboard for it; to send "
                             "it again, run `ltx-retake resume --resubmit`.")
        job.error_exit = SubmitUncertainError.exit_code
        self.log(JobEvent(job.id, Step.SUBMITTING, job.error))
        return job

    def _cut(self, job: Job) -> None:
        plan = job.plan
        self._enter(job, Step.CUTTING, f"cutting {plan.cut.total_frames} frames from {Path(plan.media.path).name}")
        with _MEDIA_WORK:
            self.w.media.cut(plan.cut, job.cut_path)
        job.cut_sha = file_sha256(job.cut_path)
        job.request_key = _request_key(job, (str(self.seams["crossfade_s"]), self.seams["dissolve_frames"])
                                       if any(self.seams.values()) else ())
        self._save(job, point="cut")

    def _reuse(self, job: Job) -> bool:
        """An identical request already made: copy its version instead of paying for it again."""
        if self.fresh or self.journal is None:
            return False
        earlier = self.journal.reusable(job.request_key, not_job=f"{job.run_id}/{job.id}")
        if earlier is None:
            return False
        source = Path(earlier.version["path"])
        job.version.path.parent.mkdir(parents=True, exist_ok=True)
        codec = _delivery(self.delivery, job.plan.media.path)[0]
        if source.suffix.lower() == job.version.path.suffix.lower() and \
                self.w.media.probe(source).video_codec == _VIDEO_CODEC[codec]:
            tmp = job.version.path.with_name(f".{job.version.path.stem}.{uuid.uuid4().hex[:8]}.partial{job.version.path.suffix}")
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, job.version.path)
            finally:
                tmp.unlink(missing_ok=True)
            job.version_sha = earlier.version_sha
        else:  # delivered in another codec then: that version is the window's return, conformed again, not paid again
            p = job.plan
            self._enter(job, Step.CONFORMING, f"delivering the earlier result ({earlier.request_id}) as {codec}")
            spec = ConformSpec(p.media, CutSpec(str(p.media.path), p.window_start_frame, p.window_frames, p.media.frame_rate),
                               0, p.window_frames, p.window_start_frame, p.mode,
                               timecode=timecode_at(p.media, p.window_start_frame), codec=codec)
            with _MEDIA_WORK:
                job.version_info = self.w.media.conform(source, spec, job.version.path)
            job.version_sha = file_sha256(job.version.path)
        provenance = dict(earlier.version.get("provenance") or {})
        provenance.update(reused_from=earlier.request_id, file=job.version.path.name, sha256=job.version_sha,
                          created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        job.version = Version(job.version.number, job.version.clip_name, job.version.path, provenance)
        job.reused_from = earlier.request_id
        self._enter(job, Step.READY, f"identical to an earlier request ({earlier.request_id}): its result is reused at no "
                                     "cost (pass --fresh to pay for a new generation)")
        return True

    def _upload(self, job: Job) -> str:
        self._enter(job, Step.UPLOADING, f"uploading {job.cut_path.stat().st_size / 1e6:.1f} MB")
        return self.w.host.upload(job.cut_path, "video/mp4",
                                  on_progress=lambda f: self.log(JobEvent(job.id, Step.UPLOADING, fraction=f)))

    def _submit(self, job: Job, url: str) -> None:
        plan = job.plan
        self._enter(job, Step.SUBMITTING, "submitting")
        job.submitted = self.w.service.submit(RetakeRequest(url, plan.prompt, plan.start_time, plan.duration, plan.mode))
        job.request_id = job.submitted.request_id
        self._charge(job, "sent")
        self._enter(job, Step.QUEUED, f"request {job.request_id}")

    def _fetch(self, job: Job) -> None:
        """Follow the request to its end (at once if it ended while we were away), then download the result."""
        svc = self.w.service
        stop = lambda: self._stopped(job)  # noqa: E731 - every wait on the service notices a cancel
        svc.follow(job.submitted, lambda s: self._status(job, s), should_stop=stop)
        result = svc.result(job.submitted, should_stop=stop)
        # What the service said is kept scrubbed (no keys, no URL query strings, bounded): see errors.scrub.
        job.result = {"url": scrub(result.url, 500), "extra": scrub_data(result.extra)}
        self._charge(job, "charged")
        self._enter(job, Step.DOWNLOADING, "downloading the result")
        svc.download(result.url, job.returned_path,
                     on_progress=lambda f: self.log(JobEvent(job.id, Step.DOWNLOADING, fraction=f)), should_stop=stop)
        job.returned_sha = file_sha256(job.returned_path)
        self._save(job, point="downloaded")

    def _conform(self, job: Job) -> None:
        plan = job.plan
        self._enter(job, Step.CONFORMING, f"conforming to {plan.media.width}x{plan.media.height} at {float(plan.media.frame_rate):.3f} fps")
        spec = ConformSpec(plan.media, plan.cut, plan.window_offset, plan.window_frames, plan.window_start_frame, plan.mode,
                           timecode=timecode_at(plan.media, plan.window_start_frame),
                           codec=_delivery(self.delivery, plan.media.path)[0], **self.seams)
        job.version.path.parent.mkdir(parents=True, exist_ok=True)
        with _MEDIA_WORK:
            job.version_info = self.w.media.conform(job.returned_path, spec, job.version.path)
        job.version_sha = file_sha256(job.version.path)
        job.version = Version(job.version.number, job.version.clip_name, job.version.path,
                              self._provenance(job, (job.result or {}).get("extra") or {}))

    def _status(self, job: Job, status: ServiceStatus) -> None:
        if status.state == "queued":
            pos = f" #{status.queue_position}" if status.queue_position is not None else ""
            self._enter(job, Step.QUEUED, f"queued{pos}", queue_position=status.queue_position, log=status.logs)
        elif status.state == "generating":
            self._enter(job, Step.GENERATING, "generating", log=status.logs)
        elif status.logs:
            self.log(JobEvent(job.id, job.step, "", log=status.logs))

    def _fail(self, job: Job, exc: RetakeError, step: Step = Step.FAILED, note: str = "", recoverable: bool = False) -> None:
        rid = getattr(exc, "request_id", None) or job.request_id
        if rid:
            job.request_id = rid
        text = redact(str(exc))
        job.error = text + (f" (request id {rid})" if rid and rid not in text else "") + (f" ({note})" if note else "")
        job.error_exit = exc.exit_code
        # After the submit, anything but the service's own verdict can be mended by resuming: the request is
        # followed by its id, the result fetched again (a return that did not conform is downloaded anew).
        # Before any submit was accepted nothing is paid: a refusal that may pass later (a busy service, a key
        # fixed since) is started over from the cut.
        job.recoverable = recoverable or (step == Step.FAILED and not isinstance(exc, _FINAL) and (
            job.submitted is not None or isinstance(exc, (TransientServiceError, AuthError, BalanceError))))
        if job.recoverable and job.step == Step.CONFORMING:
            job.returned_sha = None
        job.step = step
        self._save(job)
        kept = f"; what was fetched is kept in {job.returned_path.parent}" if job.returned_path and job.returned_path.exists() else ""
        again = "; `ltx-retake resume` picks it up" if job.recoverable else ""
        self.log(JobEvent(job.id, step, job.error + kept + again))

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
                          "pad_tail": p.cut.pad_tail, "sha256": job.cut_sha},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "file": job.version.path.name,
            "sha256": job.version_sha,
            "notes": list(p.notes),
            **({"engine": scrub(extra["engine"])} if extra.get("engine") else {}),
        }


_FINAL = (JobFailedError, ContentRefusedError, ServiceValidationError, SpliceError)  # the same again would end the same


def _intact(path: Path | None, sha: str | None) -> bool:
    """Is the file an earlier attempt finished still there, byte for byte?"""
    return bool(path and sha and path.is_file() and file_sha256(path) == sha)


def _request_key(job: Job, seams: tuple = ()) -> str:
    """What makes two requests identical: the bytes sent, the prompt, mode, service, model and window (and how the
    version's edges are made: an earlier version with other seams is not this one's)."""
    p = job.plan
    fields = [job.cut_sha, p.prompt, p.mode.value, p.provider, p.model, p.start_time, p.duration,
              str(p.media.path), p.window_start_frame, p.window_frames, *seams]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def _splice_one(timeline: otio.schema.Timeline, job: Job, placement: str, log: Progress) -> None:
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


def _splice_and_save(document: Document, jobs: list[Job], order: RetakeOrder, wiring: Wiring,
                     runner: _Runner, *, overwrite: bool) -> Path | None:
    """Splice every ready job (each all or nothing) into the document's timeline and write it once, atomically."""
    log = runner.log
    timeline = document.timeline
    ready = sorted((j for j in jobs if j.step in (Step.READY, Step.SPLICING, Step.SAVING)),
                   key=lambda j: (j.plan.track_index, j.plan.record_range.start_time.to_seconds()))
    spliced: list[Job] = []
    for job in ready:  # never cancelled from here on: these results are paid for
        job.step = Step.SPLICING
        runner._save(job)
        log(JobEvent(job.id, Step.SPLICING, f"{order.placement} {job.version.name}"))
        try:
            _splice_one(timeline, job, order.placement, log)  # each splice is all or nothing
        except RetakeError as exc:
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
                         note=f"the version is kept at {job.version.path}; free the space or fix the folder, then `ltx-retake resume`")
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
            _splice_one(timeline, job, placement, log)  # all or nothing: a refusal leaves the timeline as it was
        except RetakeError as exc:
            problems.append(f"{job.version.name} could not be spliced here ({redact(str(exc))}); the file is kept at {job.version.path}.")
    return problems


def _tidy(work: Path) -> None:
    for folder in (work, work.parent):
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
    # Planning and recording the run happen under one lock, and skip the versions other runs still have in
    # flight: two runs started together (the panel's, or a panel's and the CLI's) never number a version alike.
    with _PLANNING:
        document, jobs, media_dir = prepare_document(order, wiring, log,
                                                     reserved=journal.versions_in_flight() if journal else set())
        if wiring.service is None or wiring.host is None:
            raise InputError("No retake service is wired in; choose --provider local, fal or runcomfy.")
        if confirm is not None and not confirm(jobs):
            raise CancelledError("Nothing was sent: the estimated cost was not confirmed.")
        # Each run stages its cuts and downloads in a folder of its own: a failed job's paid-for download
        # stays there (the error names it) and a later run never writes over it.
        work = media_dir / ".work" / (_dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f") + f"-{uuid.uuid4().hex[:4]}")
        run_id = ""
        if journal is not None:
            run_id = journal.begin_run(order=order_json(order), timeline=order.timeline.absolute(),
                                       timeline_sha=file_sha256(order.timeline), output=order.output.absolute(),
                                       media_dir=media_dir, work_dir=work, jobs=jobs)
            log(JobEvent("run", Step.PLANNED, f"run {run_id} (`ltx-retake resume {run_id}` continues it after a crash)"))
    runner = _Runner(wiring, log, cancel, work, journal=journal, timeline=order.timeline.absolute(), fresh=order.fresh,
                     order=order)
    with ThreadPoolExecutor(max_workers=max(1, min(order.max_parallel, len(jobs))), initializer=background_priority) as pool:
        list(pool.map(runner.generate, jobs))
    output = _splice_and_save(document, jobs, order, wiring, runner, overwrite=order.overwrite or order.in_place)
    _tidy(work)
    if journal is not None:
        journal.finish_run(run_id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
    return Outcome(jobs, output, media_dir, log, run_id)


def resume(run_id: str, wiring: Wiring, journal: Journal, progress: Progress | None = None,
           cancel: threading.Event | None = None, *, resubmit: bool = False) -> Outcome:
    """Continue a run from its journal: follow requests by their ids, skip finished downloads, never splice twice.

    A job whose request may have been sent without its id being kept is not sent again unless `resubmit`
    (or its service is free).
    """
    log = progress if isinstance(progress, EventLog) else EventLog(*([progress] if progress else []))
    cancel = cancel or threading.Event()
    record = journal.run(run_id)
    journal.claim(record.id)
    order = order_from(record.order)
    jobs = [job_from_record(r) for r in record.jobs]
    todo = [j for j, r in zip(jobs, record.jobs) if r.unfinished]
    if not todo:
        journal.finish_run(record.id)
        return Outcome(jobs, record.output if record.output.exists() else None, record.media_dir, log, record.id)
    _sweep(record)
    for job in todo:
        log(JobEvent(job.id, job.step, f"resuming at {job.step.value}" + (f" (request {job.request_id})" if job.request_id else "")))
    runner = _Runner(wiring, log, cancel, record.work_dir, journal=journal, timeline=record.timeline,
                     fresh=order.fresh, resubmit=resubmit, resumed=True, order=order)
    generating = [j for j in todo if j.step not in (Step.READY, Step.SPLICING, Step.SAVING)]
    if generating and (wiring.service is None or wiring.host is None):
        raise InputError("No retake service is wired in to finish the run's requests.")
    with ThreadPoolExecutor(max_workers=max(1, min(order.max_parallel, len(todo))), initializer=background_priority) as pool:
        list(pool.map(runner.generate, todo))
    base, overwrite = _splice_base(record, order, jobs, wiring)
    if base is None:  # the timeline changed under the run: keep the versions, say where
        for job in (j for j in todo if j.step == Step.READY):
            runner._fail(job, SpliceError(f"{order.timeline.name} changed since this run began, so its windows may no longer "
                                          f"line up; the version is kept at {job.version.path}. Retake again on the new timeline."))
        output = None
    else:
        present = _version_files(base.timeline)
        for job in todo:
            if job.step == Step.READY and job.version.path.name in present:  # written before the crash: never twice
                job.step = Step.SPLICED
                runner._save(job)
                shutil.rmtree(record.work_dir / job.id, ignore_errors=True)
        output = _splice_and_save(base, todo, order, wiring, runner, overwrite=overwrite)
        if output is None and any(j.step == Step.SPLICED for j in jobs) and order.output.exists():
            output = order.output
    _tidy(record.work_dir)
    journal.finish_run(record.id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
    return Outcome(jobs, output, record.media_dir, log, record.id)


def _splice_base(record, order: RetakeOrder, jobs: list[Job], wiring: Wiring) -> tuple[Document | None, bool]:
    """The document to splice into: the run's own output when it was written, else the untouched original."""
    if order.output.exists():
        written = wiring.store.open(order.output)
        ours = {j.version.path.name for j in jobs}
        if _version_files(written.timeline) & ours:
            return written, True
    if not order.timeline.exists() or file_sha256(order.timeline) != record.timeline_sha:
        return None, False
    return wiring.store.open(order.timeline), order.overwrite or order.in_place


def _version_files(timeline: otio.schema.Timeline) -> set[str]:
    names = set()
    for clip in timeline.find_clips():
        for key, ref in clip.media_references().items():
            url = getattr(ref, "target_url", "") or ""
            if is_version_key(key) and url:
                names.add(Path(url).name)
    return names


def _sweep(record) -> None:
    """Remove the partial files a killed process left beside the run's outputs (never anything else)."""
    folders = {record.work_dir / j.name for j in record.jobs} | {Path(j.version["path"]).parent for j in record.jobs}
    for folder in folders:
        if folder.is_dir():
            for leftover in list(folder.glob(".*.partial.*")) + list(folder.glob(".*.part")):
                leftover.unlink(missing_ok=True)
    out = record.output
    if out.parent.is_dir():
        for leftover in out.parent.glob(f".{out.stem}.*.partial{out.suffix}"):
            leftover.unlink(missing_ok=True)


def order_json(order: RetakeOrder) -> dict:
    """An order as JSON-ready data (for the journal)."""
    out = {}
    for f in dataclasses.fields(order):
        value = getattr(order, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, RetakeMode):
            value = value.value
        elif f.name == "media_search":
            value = [str(p) for p in value]
        out[f.name] = value
    return out


def order_from(d: dict) -> RetakeOrder:
    """The order `order_json` wrote."""
    known = {f.name for f in dataclasses.fields(RetakeOrder)}
    values = {k: v for k, v in d.items() if k in known}
    for name in ("timeline", "output", "media_dir", "media_root"):
        if values.get(name):
            values[name] = Path(values[name])
    values["mode"] = RetakeMode(values["mode"])
    for name in ("range", "clip"):
        if isinstance(values.get(name), list):
            values[name] = tuple(values[name])
    values["path_maps"] = tuple(tuple(pair) for pair in values.get("path_maps") or ())
    if isinstance(values.get("max_size"), list):
        values["max_size"] = tuple(values["max_size"])
    values["media_search"] = tuple(Path(p) for p in values.get("media_search") or ())
    return RetakeOrder(**values)


def job_from_record(record) -> Job:
    """A job as the journal last recorded it (what resume continues, and what the panel reads back)."""
    v = record.version
    return Job(id=record.name, plan=record.plan, run_id=record.run_id, step=record.step,
               version=Version(v["number"], v["clip_name"], Path(v["path"]), v.get("provenance") or {}),
               request_id=record.request_id, submitted=record.submitted, result=record.result, cut_sha=record.cut_sha,
               request_key=record.request_key, returned_sha=record.returned_sha, version_sha=record.version_sha,
               reused_from=record.reused_from, error=record.error, error_exit=record.error_exit,
               recoverable=record.recoverable)
