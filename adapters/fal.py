"""fal.ai: the queue protocol (submit once, follow the status stream or poll, result, cancel) and fal storage uploads."""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

from ..errors import (
    AuthError,
    ContentRefusedError,
    JobFailedError,
    ServiceError,
    register_secret,
    scrub,
    scrub_data,
)
from ..paths import safe_file_name
from ..ports import ProgressFn, ResultMedia, ServiceStatus, SubmittedJob
from ..settings import Secret
from .http_policy import (
    DEFAULT_MAX_DOWNLOAD,
    FAL,
    RetryPolicy,
    call,
    error_for_response,
    file_chunks,
    streamed_file,
    url_rule,
)
from .queue_client import DEFAULT_MAX_WAIT, Backoff, QueueClient, QueueProtocol, StatusTracker, status_object
from .wire import DEFAULT_BOUNDS, Bounds, Budget, UrlRule, open_stream, sse_events

__all__ = ["FalClient", "FalStorage", "StatusTracker", "media_from_output"]

log = logging.getLogger(__name__)

_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "generating", "COMPLETED": "completed"}
MiB = 1024 * 1024


def _auth(key: Secret | None) -> dict[str, str]:
    return {"Authorization": f"Key {key.reveal()}"} if key else {}


def _app_of(model: str) -> str:
    """fal's status URLs drop the model's sub-path: `fal-ai/ltx-2/retake-video` -> `fal-ai/ltx-2`."""
    parts = model.strip("/").split("/")
    return "/".join(parts[:2])


FAL_QUEUE = QueueProtocol(
    profile=FAL,
    auth_scheme="Key",
    check_where=f"the fal dashboard ({FAL.dashboard})",
    model_setting="fal_model",
    model_examples="fal-ai/ltx-2/retake-video or fal-ai/ltx-2.3/retake-video",
    submit_path=lambda model: f"/{model}",
    requests_path=lambda model: f"/{_app_of(model)}/requests",
    result_field="response_url",
    result_suffix="",
    status_params={"logs": "1"},
)


class FalClient(QueueClient):
    """A RetakeService over fal's queue. The submit is sent once; everything else is retried with backoff."""

    provider = "fal"
    protocol = FAL_QUEUE

    def __init__(
        self,
        http: httpx.Client,
        key: Secret | None,
        queue_url: str,
        model: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_initial: float = 0.25,
        poll_max: float = 5.0,
        poll_growth: float = 1.5,
        rand: Callable[[], float] = random.random,
        retry: RetryPolicy | None = None,
        use_stream: bool = True,
        stream_read_timeout: float = 45.0,
        follow_timeout: float | None = DEFAULT_MAX_WAIT,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD,
        submit_attempts: int = 4,
        bounds: Bounds = DEFAULT_BOUNDS,
    ):
        super().__init__(http, key, queue_url, model, sleep=sleep, clock=clock, rand=rand, retry=retry,
                         backoff=Backoff(poll_initial, poll_growth, poll_max), follow_timeout=follow_timeout,
                         max_download_bytes=max_download_bytes, submit_attempts=submit_attempts, bounds=bounds)
        self.queue_url = self._home
        self._use_stream = use_stream
        self._stream_read_timeout = stream_read_timeout

    # -- follow -----------------------------------------------------------------------------------------------

    def follow(self, job: SubmittedJob, on_status: Callable[[ServiceStatus], None],
               should_stop: Callable[[], bool] | None = None) -> None:
        """Report status until COMPLETED: the SSE stream first, polling with backoff when it fails or drops.

        An exception raised by `on_status` stops following and propagates; so does CancelledError once
        `should_stop()` is true (checked for every chunk of the stream, keep-alives included, while a read
        waits, and between polls), and TransientServiceError once the job has been queued or running for
        `follow_timeout` seconds (it is left on fal; `ltx-retake resume` follows it later).
        """
        tracker = StatusTracker(on_status)
        started = self._clock()
        if self._use_stream and self._follow_stream(job, tracker, should_stop, started):
            return
        self._poll(job, tracker, started, should_stop)

    def _follow_stream(self, job: SubmittedJob, tracker: StatusTracker, should_stop: Callable[[], bool] | None,
                       started: float) -> bool:
        """Follow the status stream (httpx-sse, within bounds); False when it is missing or drops (poll then)."""
        url = self._checked(f"{job.status_url.rstrip('/')}/stream", "follow the job's status")
        timeout = httpx.Timeout(10.0, read=self._stream_read_timeout)
        budget = Budget(should_stop=should_stop, deadline=self._deadline(started), clock=self._clock,
                        late=lambda: self._waited_too_long(job, tracker),
                        stopped=f"Cancelled by the user while following request {job.request_id}.")
        try:
            with budget.active():
                response = open_stream(self._http, "GET", url, rule=self._rule, what="fal's address to follow the "
                                       "job's status", who="fal", bounds=self._bounds, params={"logs": "1"},
                                       headers={**self._auth(url), "Accept": "text/event-stream",
                                                "Accept-Encoding": "gzip, deflate"}, timeout=timeout)
                try:
                    if response.status_code in (401, 403):
                        raise error_for_response(response, profile=FAL, what="follow the job's status",
                                                 request_id=job.request_id, bounds=self._bounds)
                    content_type = response.headers.get("content-type", "")
                    if response.status_code != 200 or "text/event-stream" not in content_type:
                        log.info("fal status stream answered HTTP %s (%s); polling instead",
                                 response.status_code, scrub(content_type, 60))
                        return False
                    for event in sse_events(response, who="fal", bounds=self._bounds, tick=budget.check):
                        if not event.data.strip():
                            continue
                        try:
                            data = json.loads(event.data)
                        except (ValueError, RecursionError):
                            raise ServiceError(
                                f"fal's status stream for request {job.request_id} sent an event that is not JSON; "
                                f"it stopped following the job. The job may still run: `ltx-retake resume` follows "
                                f"it again later, or check it on {FAL.dashboard}.", request_id=job.request_id) from None
                        answer = status_object(data, name="fal", request_id=job.request_id, where="status stream")
                        if self._handle(job, answer, tracker):
                            return True
                finally:
                    response.close()
        except httpx.TransportError as exc:
            if should_stop is not None and should_stop():
                self._stop_if_asked(should_stop, job)
            log.info("fal status stream dropped (%s); polling instead", type(exc).__name__)
        return False

    def _handle(self, job: SubmittedJob, answer: dict, tracker: StatusTracker) -> bool:
        """Report one status object; True when the job is complete (raises if it failed)."""
        raw = str(answer.get("status", "")).upper()
        state = _STATES.get(raw)
        if state is None:
            return False
        if state == "completed" and answer.get("error"):
            error = scrub(answer.get("error"), 400).rstrip(" .")
            error_type = scrub(answer.get("error_type") or "", 60)
            tracker.flush_logs(answer.get("logs"))
            kind = f" ({error_type})" if error_type else ""
            if "content" in error_type.lower() or "polic" in error_type.lower():
                raise ContentRefusedError(
                    f"fal's safety filter refused the retake (request id {job.request_id}): {error}. Change the "
                    f"prompt (or the footage) and try again.", request_id=job.request_id)
            raise JobFailedError(
                f"The retake ran on fal and failed{kind}: {error}. Request id {job.request_id}; there is nothing "
                f"to download. Check the inputs and try again.", request_id=job.request_id)
        tracker.report_answer(state, answer)
        return state == "completed"

    # -- result, cancel ---------------------------------------------------------------------------------------------

    def result(self, job: SubmittedJob, should_stop: Callable[[], bool] | None = None) -> ResultMedia:
        """GET the response URL and describe the returned video."""
        return self._remember(job, media_from_output(self._result_json(job, should_stop), provider="fal",
                                                     request_id=job.request_id, rule=self._rule))

    def cancel(self, job: SubmittedJob) -> str:
        """PUT the cancel URL (one short try and one retry); returns fal's answer (OK, CANCELLATION_REQUESTED,
        ALREADY_COMPLETED, NOT_FOUND)."""
        response = self._cancel_call("PUT", job, ok=(400, 404))
        try:
            status = response.json().get("status")
            return scrub(status, 40) if isinstance(status, str) and status else "OK"
        except (ValueError, AttributeError):
            if response.status_code == 404:
                return "NOT_FOUND"
            if response.status_code == 400:
                return "ALREADY_COMPLETED"
            return "OK"


def media_from_output(data: Any, *, provider: str, request_id: str | None, rule: UrlRule | None = None) -> ResultMedia:
    """Read fal's `{"video": {...}}` output (also accepts a bare URL string or a `videos` list).

    The URL must obey `rule` (default: https unless loopback); the file name is made safe; everything else
    the service said (`extra`) is scrubbed (see errors.scrub_data) before anyone keeps it."""
    video: Any = None
    if isinstance(data, dict):
        video = data.get("video")
        if video is None and isinstance(data.get("videos"), list) and data["videos"]:
            video = data["videos"][0]
    if isinstance(video, str):
        video = {"url": video}
    if not isinstance(video, dict) or not video.get("url"):
        raise ServiceError(
            f"The {provider} result for request {request_id} has no video in it; the job may have failed. "
            f"Check the service's dashboard.", request_id=request_id)
    if not isinstance(video["url"], str):
        raise ServiceError(f"The {provider} result for request {request_id} has a video URL that is not text; "
                           f"check the service's dashboard.", request_id=request_id)
    url = (rule or UrlRule()).check(video["url"], f"The {provider} result's video URL")
    name = video.get("file_name")

    def num(key: str, kind: type) -> Any:
        value = video.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        try:
            number = kind(value)
        except (TypeError, ValueError, OverflowError):
            return None
        return number if abs(number) < 1e12 and number == number else None

    extra = {k: v for k, v in data.items() if k not in ("video", "videos")} if isinstance(data, dict) else {}
    extra.update({k: v for k, v in video.items()
                  if k not in ("url", "file_name", "content_type", "file_size", "width", "height", "fps", "num_frames")})
    return ResultMedia(url=url, file_name=safe_file_name(scrub(name, 1000), "result.mp4") if name else None,
                       content_type=scrub(video["content_type"], 100) if video.get("content_type") else None,
                       file_size=num("file_size", int), width=num("width", int), height=num("height", int),
                       fps=num("fps", float), num_frames=num("num_frames", int), extra=scrub_data(extra))


class FalStorage:
    """A FileHost on fal storage: a cached token, one streamed POST up to a threshold, multipart above it."""

    def __init__(
        self,
        http: httpx.Client,
        key: Secret | None,
        rest_url: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        retry: RetryPolicy | None = None,
        multipart_threshold: int = 100 * MiB,
        part_size: int = 10 * MiB,
        token_margin: float = 60.0,
        bounds: Bounds = DEFAULT_BOUNDS,
    ):
        if part_size <= 0 or multipart_threshold < 0:
            raise ValueError("part_size must be positive and multipart_threshold not negative")
        self._http = http
        self._key = key
        self.rest_url = rest_url.rstrip("/")
        self._wall_clock = wall_clock
        self._retry = retry or RetryPolicy(sleep=sleep, random=rand)
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._token_margin = token_margin
        self._token: tuple[str, str, str, float] | None = None   # (type, token, base_url, expires epoch)
        self._bounds = bounds
        self._rule = url_rule(self.rest_url, allow_private_hosts=bounds.allow_private_hosts)

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return call(self._http, method, url, policy=self._retry, profile=FAL, bounds=self._bounds, rule=self._rule,
                    **kwargs)

    def _storage_token(self) -> tuple[str, str, str]:
        now = self._wall_clock()
        if self._token and self._token[3] - self._token_margin > now:
            return self._token[:3]
        response = self._call("POST", f"{self.rest_url}/storage/auth/token", params={"storage_type": "fal-cdn-v3"},
                              json={}, headers=_auth(self._key), what="get an upload token for fal storage")
        try:
            data = response.json()
            token, token_type, base_url = str(data["token"]), str(data.get("token_type") or "Bearer"), \
                str(data["base_url"]).rstrip("/")
        except (ValueError, KeyError, TypeError):
            raise ServiceError("fal storage answered the token request without a token; try the upload again.") from None
        self._rule.check(base_url, "fal storage's upload address")
        register_secret(token)
        self._token = (token_type, token, base_url, _epoch(data.get("expires_at"), default=now + 600))
        return self._token[:3]

    def upload(self, path: Path, content_type: str, on_progress: ProgressFn | None = None) -> str:
        """Upload a local file; returns its public URL (`access_url`)."""
        path = Path(path)
        size = path.stat().st_size
        for attempt in (1, 2):
            cached = self._token is not None
            token_type, token, base_url = self._storage_token()
            headers = {"Authorization": f"{token_type} {token}", "Content-Type": content_type,
                       "X-Fal-File-Name": safe_file_name(path.name, "upload.bin")}
            try:
                if size <= self.multipart_threshold:
                    url = self._single(path, size, base_url, headers, on_progress)
                else:
                    url = self._multipart(path, size, base_url, headers, on_progress)
                break
            except AuthError:
                if not cached or attempt == 2:
                    raise
                self._token = None           # a cached token the CDN no longer takes: get a fresh one, once
        if on_progress:
            on_progress(1.0)
        return self._rule.check(url, "fal storage's file URL")

    def _single(self, path: Path, size: int, base_url: str, headers: dict, on_progress: ProgressFn | None) -> str:
        response = self._call("POST", f"{base_url}/files/upload", content=streamed_file(path, size, on_progress),
                              headers={**headers, "Content-Length": str(size)}, what=f"upload {path.name} to fal storage")
        return _field(response, "access_url", "fal storage's upload answer")

    def _multipart(self, path: Path, size: int, base_url: str, headers: dict, on_progress: ProgressFn | None) -> str:
        response = self._call("POST", f"{base_url}/files/upload/multipart", headers=headers,
                              what=f"start a multipart upload of {path.name}")
        access_url = _field(response, "access_url", "fal storage's multipart answer").rstrip("/")
        upload_id = _field(response, "uploadId", "fal storage's multipart answer")
        self._rule.check(access_url, "fal storage's multipart address")
        parts: list[dict] = []
        part_headers = {"Authorization": headers["Authorization"], "Content-Type": headers["Content-Type"]}
        for number, start in enumerate(range(0, size, self.part_size), start=1):
            length = min(self.part_size, size - start)
            # Each part is streamed from the file (read anew on a retry), never held whole: an httpx response
            # sits in a reference cycle with its request, so a part given as bytes would outlive its PUT until
            # the garbage collector ran, and a big file's parts piled up (120 MiB: a peak 117 MiB above baseline).
            answer = self._call("PUT", f"{access_url}/multipart/{upload_id}/{number}",
                                content=lambda start=start, length=length: file_chunks(path, start=start, length=length),
                                headers={**part_headers, "Content-Length": str(length)},
                                what=f"upload part {number} of {path.name}")
            etag = answer.headers.get("etag")
            answer.close()
            if not etag:
                raise ServiceError(f"fal storage did not return an ETag for part {number} of {path.name}; "
                                   f"upload the file again.")
            parts.append({"partNumber": number, "etag": etag})
            if on_progress and size:
                on_progress(min((start + length) / size, 0.999))
        self._call("POST", f"{access_url}/multipart/{upload_id}/complete", json={"parts": parts},
                   headers=part_headers, what=f"finish the upload of {path.name}")
        return access_url


def _field(response: httpx.Response, name: str, what: str) -> str:
    try:
        value = response.json()[name]
    except (ValueError, KeyError, TypeError):
        raise ServiceError(f"{what} has no {name!r}; try the upload again.") from None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ServiceError(f"{what} has a {name!r} that is not text; try the upload again.")
    return str(value)


def _epoch(value: Any, *, default: float) -> float:
    """fal gives `expires_at` as an ISO date; accept epoch seconds too."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return default
