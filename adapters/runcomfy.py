"""RunComfy's model API: submit once, poll status with backoff, fetch the result, cancel (a POST)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from ..errors import JobFailedError, ServiceError, SubmitUncertainError, TransientServiceError, redact
from ..ports import ProgressFn, ResultMedia, RetakeRequest, ServiceStatus, SubmittedJob
from ..settings import Secret
from .fal import StatusTracker, media_from_output
from .http_policy import (
    DEFAULT_MAX_DOWNLOAD,
    RUNCOMFY,
    RetryPolicy,
    call,
    describe_transport_error,
    download,
    error_for_response,
    retry_after_seconds,
    same_site,
)

__all__ = ["RunComfyClient"]

log = logging.getLogger(__name__)

_STATES = {"in_queue": "queued", "queued": "queued", "in_progress": "generating", "running": "generating",
           "completed": "completed", "succeeded": "completed"}


class RunComfyClient:
    """A RetakeService over RunComfy's model API (Bearer token). It has no status stream: polls with backoff."""

    provider = "runcomfy"

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
        follow_timeout: float | None = None,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD,
        submit_attempts: int = 4,
    ):
        self._http = http
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.model = model.strip("/")
        self._sleep = sleep
        self._clock = clock
        self._poll_initial = poll_initial
        self._poll_max = poll_max
        self._poll_growth = poll_growth
        self._retry = retry or RetryPolicy(sleep=sleep, random=rand)
        self._follow_timeout = follow_timeout
        self._max_download = max_download_bytes
        self._submit_attempts = submit_attempts

    def _headers(self, url: str | None = None) -> dict[str, str]:
        """The token, for RunComfy's own site only (a URL from an answer that points elsewhere gets none)."""
        if not self._token or (url is not None and not same_site(url, self.base_url)):
            return {}
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    def submit(self, request: RetakeRequest) -> SubmittedJob:
        """POST the job once; resent only when the server certainly did not take it (connect failure, 429)."""
        url = f"{self.base_url}/v1/models/{self.model}"
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(url, json=request.as_json(), headers=self._headers())
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if attempt < self._submit_attempts:
                    self._sleep(self._retry.delay(attempt))
                    continue
                raise TransientServiceError(
                    f"Could not connect to RunComfy to submit the retake ({describe_transport_error(exc)}). "
                    f"Nothing was sent; check the network and submit again.") from None
            except httpx.TransportError as exc:
                raise SubmitUncertainError(
                    f"The submit to RunComfy may have reached the server, but no answer came back "
                    f"({describe_transport_error(exc)}). It was not sent again, to avoid paying twice: check your "
                    f"RunComfy requests for a new {self.model} job before submitting again.") from None
            if response.status_code == 429 and attempt < self._submit_attempts:
                self._sleep(self._retry.delay(attempt, retry_after_seconds(response)))
                continue
            if response.status_code in (502, 504):
                raise SubmitUncertainError(
                    f"RunComfy's gateway answered HTTP {response.status_code} to the submit, so the job may or may "
                    f"not have been queued. It was not sent again, to avoid paying twice: check your RunComfy "
                    f"requests before submitting again.", status_code=response.status_code)
            if not response.is_success:
                err = error_for_response(response, profile=RUNCOMFY, what=f"submit the retake to {self.model}",
                                         tries=attempt)
                if response.status_code == 404 and type(err) is ServiceError:
                    err = ServiceError(
                        f"RunComfy does not know the model {self.model!r} (HTTP 404). Check the runcomfy_model "
                        f"setting (for example ltx/ltx-2/retake-video).", status_code=404)
                raise err
            try:
                data = response.json()
                request_id = str(data["request_id"])
            except (ValueError, KeyError, TypeError):
                raise SubmitUncertainError(
                    f"RunComfy accepted the submit (HTTP {response.status_code}) but its answer has no request id. "
                    f"The job may be running: check your RunComfy requests before submitting again.") from None
            base = f"{self.base_url}/v1/requests/{request_id}"
            return SubmittedJob(request_id=request_id,
                                status_url=data.get("status_url") or f"{base}/status",
                                result_url=data.get("result_url") or f"{base}/result",
                                cancel_url=data.get("cancel_url") or f"{base}/cancel")

    def follow(self, job: SubmittedJob, on_status: Callable[[ServiceStatus], None]) -> None:
        """Poll the status with backoff until completed. An exception from `on_status` stops and propagates."""
        tracker = StatusTracker(on_status)
        started = self._clock()
        interval = self._poll_initial
        while True:
            response = call(self._http, "GET", job.status_url, headers=self._headers(job.status_url),
                            policy=self._retry,
                            profile=RUNCOMFY, what="check the job's status", request_id=job.request_id,
                            ok=(202,))
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            raw = str(answer.get("status", "")).lower() if isinstance(answer, dict) else ""
            if raw == "cancelled":
                raise JobFailedError(
                    f"RunComfy reports the job {job.request_id} was cancelled (here or from the RunComfy site); "
                    f"there is nothing to download. Submit again if you still want the retake.",
                    request_id=job.request_id)
            if raw == "failed":
                raise JobFailedError(
                    f"The retake ran on RunComfy and failed: {_error_text(answer)}. Request id {job.request_id}; "
                    f"check the inputs and try again.", request_id=job.request_id)
            state = _STATES.get(raw)
            if state is not None:
                position = answer.get("queue_position") if state == "queued" else None
                tracker.report(state, position if isinstance(position, int) else None, answer.get("logs"))
                if state == "completed":
                    return
            if self._follow_timeout is not None and self._clock() - started > self._follow_timeout:
                raise TransientServiceError(
                    f"The RunComfy job {job.request_id} had not finished after {self._follow_timeout:.0f} s. It keeps "
                    f"running: resume the job later to fetch its result.", request_id=job.request_id)
            self._sleep(interval)
            interval = min(interval * self._poll_growth, self._poll_max)

    def result(self, job: SubmittedJob) -> ResultMedia:
        """GET the result; `output` holds `video` (a URL) or `videos` (a list)."""
        response = call(self._http, "GET", job.result_url, headers=self._headers(job.result_url), policy=self._retry,
                        profile=RUNCOMFY, what="fetch the retake's result", request_id=job.request_id)
        try:
            data = response.json()
        except ValueError:
            raise ServiceError(f"RunComfy's result for request {job.request_id} is not JSON; try again.",
                               request_id=job.request_id) from None
        status = str(data.get("status", "")).lower() if isinstance(data, dict) else ""
        if status == "failed":
            raise JobFailedError(
                f"The retake ran on RunComfy and failed: {_error_text(data)}. Request id {job.request_id}; check "
                f"the inputs and try again.", request_id=job.request_id)
        if status == "cancelled":
            raise JobFailedError(f"RunComfy job {job.request_id} was cancelled; there is no result.",
                                 request_id=job.request_id)
        if status in ("in_queue", "in_progress"):
            raise TransientServiceError(
                f"RunComfy job {job.request_id} is still {status.replace('_', ' ')}; wait for it to complete.",
                request_id=job.request_id)
        output = data.get("output") if isinstance(data, dict) else None
        media = media_from_output(output if isinstance(output, dict) else {}, provider="RunComfy",
                                  request_id=job.request_id)
        extra = {k: v for k, v in data.items() if k != "output"}
        extra.update(media.extra)
        return ResultMedia(url=media.url, file_name=media.file_name, content_type=media.content_type,
                           file_size=media.file_size, width=media.width, height=media.height, fps=media.fps,
                           num_frames=media.num_frames, extra=extra)

    def cancel(self, job: SubmittedJob) -> str:
        """POST the cancel URL; returns RunComfy's outcome (`cancelled` or `not_cancellable`)."""
        response = call(self._http, "POST", job.cancel_url, headers=self._headers(job.cancel_url), policy=self._retry,
                        profile=RUNCOMFY, what="cancel the job", request_id=job.request_id)
        try:
            return str(response.json().get("outcome") or "cancelled")
        except (ValueError, AttributeError):
            return "cancelled"

    def download(self, url: str, dest: Path, on_progress: ProgressFn | None = None) -> Path:
        return download(self._http, url, Path(dest), on_progress, self._max_download, policy=self._retry,
                        profile=RUNCOMFY)


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail")
        if err:
            return " ".join(redact(str(err)).split())[:400].rstrip(" .")
    return "no reason given"
