"""The journaled step machine: a job cut, uploaded, submitted, followed, fetched and conformed, each step recorded first."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import threading
from fractions import Fraction
from pathlib import Path

from .atomic import copy_atomic
from .errors import (AuthError, BalanceError, CancelledError, ContentRefusedError, JobFailedError, MediaError, redact,
                     RetakeError, scrub, scrub_data, ServiceValidationError, SpliceError, SubmitUncertainError,
                     TransientServiceError)
from .jobs import intact, Job, Wiring
from .journal import Journal
from .orders import RetakeOrder
from .paths import file_sha256
from .plan import timecode_at
from .ports import ConformSpec, CutSpec, delivery_of, RetakeRequest, ServiceStatus, VIDEO_CODEC
from .progress import Cancel, JobEvent, Progress, Step
from .splice import Version

__all__ = ["StepRunner", "request_key"]


# Cutting and conforming use every core by themselves; more of them at once than there are cores only makes each
# slower and starves the user's window. Waiting on the network is not bounded: that is what jobs do most.
_MEDIA_WORK = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) - 1))


class StepRunner:
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
            if not intact(job.version.path, job.version_sha):
                if not intact(job.returned_path, job.returned_sha):
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
            answer = None
            if job.submitted is not None and job.result is None:
                try:
                    answer = self.w.service.cancel(job.submitted)
                except RetakeError:
                    pass
            if job.result is not None or answer in _PAID_ANSWERS:
                # The service finished, or runs on regardless: the result is paid for. It is kept for `resume` (which
                # follows the same request: no second charge), never thrown away.
                finished = job.result is not None or answer == "ALREADY_COMPLETED"
                self._charge(job, "charged" if finished else "sent")
                why = ("the service had already finished" if finished else
                       "the service could not cancel the job (it was already running) and charges for it")
                self._fail(job, CancelledError(f"Stopped, but {why}: the result is paid for and kept; `ltx-retake "
                                               "resume` fetches and splices it at no further cost"),
                           recoverable=True, keep_return=True)
            else:
                if job.submitted is not None:
                    self._charge(job, "cancelled")
                self._fail(job, exc, Step.CANCELLED)
                shutil.rmtree(folder, ignore_errors=True)   # a cancelled job leaves no work files
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
        job.request_key = request_key(job, (str(self.seams["crossfade_s"]), self.seams["dissolve_frames"])
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
        codec = delivery_of(self.delivery, job.plan.media.path)[0]
        if source.suffix.lower() == job.version.path.suffix.lower() and \
                self.w.media.probe(source).video_codec == VIDEO_CODEC[codec]:
            copy_atomic(source, job.version.path, what=f"the version {job.version.path.name}")
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
                           codec=delivery_of(self.delivery, plan.media.path)[0], **self.seams)
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

    def _fail(self, job: Job, exc: RetakeError, step: Step = Step.FAILED, note: str = "", recoverable: bool = False,
              keep_return: bool = False) -> None:
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
        if job.recoverable and job.step == Step.CONFORMING and not keep_return:
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


_PAID_ANSWERS = {"ALREADY_COMPLETED", "not_cancellable"}  # a cancel's answer (fal, RunComfy) when the job ran anyway


_FINAL = (JobFailedError, ContentRefusedError, ServiceValidationError, SpliceError)  # the same again would end the same


def request_key(job: Job, seams: tuple = ()) -> str:
    """What makes two requests identical: the bytes sent, the prompt, mode, service, model and window (and how the
    version's edges are made: an earlier version with other seams is not this one's)."""
    p = job.plan
    fields = [job.cut_sha, p.prompt, p.mode.value, p.provider, p.model, p.start_time, p.duration,
              str(p.media.path), p.window_start_frame, p.window_frames, *seams]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()
