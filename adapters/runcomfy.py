"""RunComfy's model API: submit once, poll status with backoff, fetch the result, cancel (a POST)."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from typing import Any, Callable

import httpx

from ..errors import JobFailedError, ServiceError, TransientServiceError, scrub, scrub_data
from ..ports import ResultMedia, ServiceStatus, SubmittedJob
from ..settings import Secret
from .fal import media_from_output
from .http_policy import DEFAULT_MAX_DOWNLOAD, RUNCOMFY, RetryPolicy
from .queue_client import DEFAULT_MAX_WAIT, Backoff, QueueClient, QueueProtocol, StatusTracker
from .wire import DEFAULT_BOUNDS, Bounds

__all__ = ["RunComfyClient"]

log = logging.getLogger(__name__)

_STATES = {"in_queue": "queued", "queued": "queued", "in_progress": "generating", "running": "generating",
           "completed": "completed", "succeeded": "completed"}

RUNCOMFY_QUEUE = QueueProtocol(
    profile=RUNCOMFY,
    auth_scheme="Bearer",
    check_where="your RunComfy requests",
    model_setting="runcomfy_model",
    model_examples="ltx/ltx-2/retake-video",
    submit_path=lambda model: f"/v1/models/{model}",
    requests_path=lambda model: "/v1/requests",
    result_field="result_url",
    result_suffix="/result",
)


class RunComfyClient(QueueClient):
    """A RetakeService over RunComfy's model API (Bearer token). It has no status stream: polls with backoff."""

    provider = "runcomfy"
    protocol = RUNCOMFY_QUEUE

    def __init__(
        self,
        http: httpx.Client,
        token: Secret | None,
        base_url: str,
        model: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_initial: float = 1.0,
        poll_max: float = 10.0,
        poll_growth: float = 1.5,
        rand: Callable[[], float] = random.random,
        retry: RetryPolicy | None = None,
        follow_timeout: float | None = DEFAULT_MAX_WAIT,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD,
        submit_attempts: int = 4,
        bounds: Bounds = DEFAULT_BOUNDS,
    ):
        super().__init__(http, token, base_url, model, sleep=sleep, clock=clock, rand=rand, retry=retry,
                         backoff=Backoff(poll_initial, poll_growth, poll_max), follow_timeout=follow_timeout,
                         max_download_bytes=max_download_bytes, submit_attempts=submit_attempts, bounds=bounds)
        self.base_url = self._home

    def follow(self, job: SubmittedJob, on_status: Callable[[ServiceStatus], None],
               should_stop: Callable[[], bool] | None = None) -> None:
        """Poll the status with backoff until completed. An exception from `on_status`, or CancelledError once
        `should_stop()` is true, stops and propagates."""
        self._poll(job, StatusTracker(on_status), self._clock(), should_stop)

    def _handle(self, job: SubmittedJob, answer: dict, tracker: StatusTracker) -> bool:
        """Report one status answer; True when completed (raises when it failed or was cancelled)."""
        raw = str(answer.get("status", "")).lower()
        if raw == "cancelled":
            raise JobFailedError(
                f"RunComfy reports the job {job.request_id} was cancelled (here or from the RunComfy site); "
                f"there is nothing to download. Submit again if you still want the retake.",
                request_id=job.request_id)
        if raw == "failed":
            raise _failed(job, answer)
        state = _STATES.get(raw)
        if state is None:
            return False
        tracker.report_answer(state, answer)
        return state == "completed"

    def result(self, job: SubmittedJob, should_stop: Callable[[], bool] | None = None) -> ResultMedia:
        """GET the result; `output` holds `video` (a URL) or `videos` (a list)."""
        data = self._result_json(job, should_stop)
        if not isinstance(data, dict):
            raise ServiceError(f"RunComfy's result for request {job.request_id} is not an object; check it on "
                               f"{RUNCOMFY.dashboard}.", request_id=job.request_id)
        status = data.get("status", "")
        status = status.lower() if isinstance(status, str) else ""
        if status == "failed":
            raise _failed(job, data)
        if status == "cancelled":
            raise JobFailedError(f"RunComfy job {job.request_id} was cancelled; there is no result.",
                                 request_id=job.request_id)
        if status in ("in_queue", "in_progress"):
            raise TransientServiceError(
                f"RunComfy job {job.request_id} is still {status.replace('_', ' ')}; wait for it to complete.",
                request_id=job.request_id)
        output = data.get("output") if isinstance(data, dict) else None
        media = media_from_output(output if isinstance(output, dict) else {}, provider="RunComfy",
                                  request_id=job.request_id, rule=self._rule)
        extra = scrub_data({k: v for k, v in data.items() if k != "output"})
        extra.update(media.extra)
        return self._remember(job, dataclasses.replace(media, extra=extra))

    def cancel(self, job: SubmittedJob) -> str:
        """POST the cancel URL (one short try and one retry); returns RunComfy's outcome (`cancelled` or
        `not_cancellable`)."""
        response = self._cancel_call("POST", job)
        try:
            outcome = response.json().get("outcome")
            return scrub(outcome, 40) if isinstance(outcome, str) and outcome else "cancelled"
        except (ValueError, AttributeError):
            return "cancelled"


def _failed(job: SubmittedJob, answer: Any) -> JobFailedError:
    """The error for a job RunComfy reports as failed, in its status or its result."""
    return JobFailedError(
        f"The retake ran on RunComfy and failed: {_error_text(answer)}. Request id {job.request_id}; check the "
        f"inputs and try again.", request_id=job.request_id)


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail")
        if err:
            return scrub(err, 400).rstrip(" .")
    return "no reason given"
