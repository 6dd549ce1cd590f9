"""fal.ai: the queue protocol (submit once, follow the status stream or poll, result, cancel) and fal storage uploads."""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx

from ..errors import (
    AuthError,
    ContentRefusedError,
    JobFailedError,
    ServiceError,
    SubmitUncertainError,
    TransientServiceError,
    redact,
    register_secret,
)
from ..ports import ProgressFn, ResultMedia, RetakeRequest, ServiceStatus, SubmittedJob
from ..settings import Secret
from .http_policy import (
    DEFAULT_MAX_DOWNLOAD,
    FAL,
    RetryPolicy,
    call,
    check_http_url,
    describe_transport_error,
    download,
    error_for_response,
    file_chunks,
    retry_after_seconds,
    same_site,
)

__all__ = ["FalClient", "FalStorage", "StatusTracker", "parse_sse", "media_from_output"]

log = logging.getLogger(__name__)

_STATES = {"IN_QUEUE": "queued", "IN_PROGRESS": "generating", "COMPLETED": "completed"}
MiB = 1024 * 1024


def _auth(key: Secret | None) -> dict[str, str]:
    return {"Authorization": f"Key {key.reveal()}"} if key else {}


def _auth_for(key: Secret | None, url: str, home: str) -> dict[str, str]:
    """The key goes only to fal's own site: a status URL elsewhere gets no credentials."""
    if key and not same_site(url, home):
        log.warning("not sending the fal key to %s: it is not on the queue's site", urlsplit(url).netloc)
        return {}
    return _auth(key)


class StatusTracker:
    """Turns raw status answers into ServiceStatus reports: only when something changed, only new log lines."""

    def __init__(self, on_status: Callable[[ServiceStatus], None]):
        self._on_status = on_status
        self._last: tuple[str, int | None] | None = None
        self._seen: set[tuple[str, str]] = set()

    def flush_logs(self, logs: list[Any] | None) -> None:
        """Report log lines not seen yet, under the last state (before a failure is raised)."""
        state, position = self._last or ("queued", None)
        self.report(state, position, logs)

    def report(self, state: str, queue_position: int | None, logs: list[Any] | None) -> None:
        fresh: list[str] = []
        for entry in logs or []:
            if isinstance(entry, dict):
                message = str(entry.get("message", ""))
                stamp = str(entry.get("timestamp", ""))
            else:
                message, stamp = str(entry), ""
            marker = (stamp, message)
            if message and marker not in self._seen:
                self._seen.add(marker)
                fresh.append(redact(message))
        key = (state, queue_position)
        if key != self._last or fresh:
            self._last = key
            self._on_status(ServiceStatus(state=state, queue_position=queue_position, logs=tuple(fresh)))


def parse_sse(lines: Iterator[str]) -> Iterator[str]:
    """Yield the data of each Server-Sent Event; comment lines (keep-alives) are skipped."""
    data: list[str] = []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


class FalClient:
    """A RetakeService over fal's queue. The submit is sent once; everything else is retried with backoff."""

    provider = "fal"

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
        follow_timeout: float | None = None,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD,
        submit_attempts: int = 4,
    ):
        self._http = http
        self._key = key
        self.queue_url = queue_url.rstrip("/")
        self.model = model.strip("/")
        self._sleep = sleep
        self._clock = clock
        self._poll_initial = poll_initial
        self._poll_max = poll_max
        self._poll_growth = poll_growth
        self._retry = retry or RetryPolicy(sleep=sleep, random=rand)
        self._use_stream = use_stream
        self._stream_read_timeout = stream_read_timeout
        self._follow_timeout = follow_timeout
        self._max_download = max_download_bytes
        self._submit_attempts = submit_attempts

    def _auth(self, url: str) -> dict[str, str]:
        return _auth_for(self._key, url, self.queue_url)

    # -- submit ---------------------------------------------------------------------------------------------

    def submit(self, request: RetakeRequest) -> SubmittedJob:
        """POST the job once. Retried only when the server certainly did not take it (connect failure, 429)."""
        url = f"{self.queue_url}/{self.model}"
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(url, json=request.as_json(), headers=_auth(self._key))
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if attempt < self._submit_attempts:
                    self._sleep(self._retry.delay(attempt))
                    continue
                raise TransientServiceError(
                    f"Could not connect to fal to submit the retake ({describe_transport_error(exc)}). Nothing was "
                    f"sent; check the network and submit again.") from None
            except httpx.TransportError as exc:
                raise SubmitUncertainError(
                    f"The submit to fal may have reached the server, but no answer came back "
                    f"({describe_transport_error(exc)}). It was not sent again, to avoid paying twice: check the "
                    f"fal dashboard ({FAL.dashboard}) for a new {self.model} request before submitting again.") from None
            status = response.status_code
            if status == 429 and attempt < self._submit_attempts:
                # The server refused the request outright, so sending it again cannot create a second job.
                self._sleep(self._retry.delay(attempt, retry_after_seconds(response)))
                continue
            if status in (502, 504):
                raise SubmitUncertainError(
                    f"fal's gateway answered HTTP {status} to the submit, so the job may or may not have been "
                    f"queued. It was not sent again, to avoid paying twice: check the fal dashboard "
                    f"({FAL.dashboard}) for a new {self.model} request before submitting again.",
                    status_code=status)
            if not response.is_success:
                err = error_for_response(response, profile=FAL, what=f"submit the retake to {self.model}",
                                         tries=attempt)
                if status == 404 and not isinstance(err, (AuthError,)):
                    err = ServiceError(
                        f"fal does not know the model {self.model!r} (HTTP 404). Check the fal_model setting "
                        f"(for example fal-ai/ltx-2/retake-video or fal-ai/ltx-2.3/retake-video).", status_code=404)
                raise err
            return self._job_from(response)

    def _job_from(self, response: httpx.Response) -> SubmittedJob:
        try:
            data = response.json()
            request_id = str(data["request_id"])
        except (ValueError, KeyError, TypeError):
            raise SubmitUncertainError(
                f"fal accepted the submit (HTTP {response.status_code}) but its answer has no request id. The job "
                f"may be running: check the fal dashboard ({FAL.dashboard}) before submitting again.") from None
        base = f"{self.queue_url}/{_app_of(self.model)}/requests/{request_id}"
        status_url = data.get("status_url") or f"{base}/status"
        response_url = data.get("response_url") or base
        cancel_url = data.get("cancel_url") or f"{base}/cancel"
        return SubmittedJob(request_id=request_id, status_url=status_url, result_url=response_url,
                            cancel_url=cancel_url)

    # -- follow -----------------------------------------------------------------------------------------------

    def follow(self, job: SubmittedJob, on_status: Callable[[ServiceStatus], None]) -> None:
        """Report status until COMPLETED: the SSE stream first, polling with backoff when it fails or drops.

        An exception raised by `on_status` (for example a cancel) stops following and propagates.
        """
        tracker = StatusTracker(on_status)
        started = self._clock()
        if self._use_stream and self._follow_stream(job, tracker):
            return
        self._follow_polling(job, tracker, started)

    def _follow_stream(self, job: SubmittedJob, tracker: StatusTracker) -> bool:
        url = f"{job.status_url.rstrip('/')}/stream"
        timeout = httpx.Timeout(10.0, read=self._stream_read_timeout)
        try:
            with self._http.stream("GET", url, params={"logs": "1"}, headers={**self._auth(url),
                                   "Accept": "text/event-stream"}, timeout=timeout) as response:
                if response.status_code in (401, 403):
                    raise error_for_response(response, profile=FAL, what="follow the job's status",
                                             request_id=job.request_id)
                content_type = response.headers.get("content-type", "")
                if response.status_code != 200 or "text/event-stream" not in content_type:
                    log.info("fal status stream answered HTTP %s (%s); polling instead",
                             response.status_code, content_type)
                    return False
                for data in parse_sse(response.iter_lines()):
                    try:
                        answer = json.loads(data)
                    except ValueError:
                        continue
                    if self._handle(job, answer, tracker):
                        return True
        except httpx.TransportError as exc:
            log.info("fal status stream dropped (%s); polling instead", type(exc).__name__)
        return False

    def _follow_polling(self, job: SubmittedJob, tracker: StatusTracker, started: float) -> None:
        interval = self._poll_initial
        while True:
            response = call(self._http, "GET", job.status_url, params={"logs": "1"},
                            headers=self._auth(job.status_url), policy=self._retry, profile=FAL, what="check the job's status",
                            request_id=job.request_id, ok=(202,))
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if isinstance(answer, dict) and self._handle(job, answer, tracker):
                return
            if self._follow_timeout is not None and self._clock() - started > self._follow_timeout:
                raise TransientServiceError(
                    f"The fal job {job.request_id} had not finished after {self._follow_timeout:.0f} s. It keeps "
                    f"running on fal: resume the job later to fetch its result.", request_id=job.request_id)
            self._sleep(interval)
            interval = min(interval * self._poll_growth, self._poll_max)

    def _handle(self, job: SubmittedJob, answer: dict, tracker: StatusTracker) -> bool:
        """Report one status object; True when the job is complete (raises if it failed)."""
        raw = str(answer.get("status", "")).upper()
        state = _STATES.get(raw)
        if state is None:
            return False
        if state == "completed" and answer.get("error"):
            error = " ".join(redact(str(answer.get("error"))).split())[:400].rstrip(" .")
            error_type = redact(str(answer.get("error_type") or ""))
            tracker.flush_logs(answer.get("logs"))
            kind = f" ({error_type})" if error_type else ""
            if "content" in error_type.lower() or "polic" in error_type.lower():
                raise ContentRefusedError(
                    f"fal's safety filter refused the retake (request id {job.request_id}): {error}. Change the "
                    f"prompt (or the footage) and try again.", request_id=job.request_id)
            raise JobFailedError(
                f"The retake ran on fal and failed{kind}: {error}. Request id {job.request_id}; there is nothing "
                f"to download. Check the inputs and try again.", request_id=job.request_id)
        position = answer.get("queue_position") if state == "queued" else None
        tracker.report(state, position if isinstance(position, int) else None, answer.get("logs"))
        return state == "completed"

    # -- result, cancel, download -------------------------------------------------------------------------------

    def result(self, job: SubmittedJob) -> ResultMedia:
        """GET the response URL and describe the returned video."""
        response = call(self._http, "GET", job.result_url, headers=self._auth(job.result_url), policy=self._retry,
                        profile=FAL, what="fetch the retake's result", request_id=job.request_id)
        try:
            data = response.json()
        except ValueError:
            raise ServiceError(f"fal's result for request {job.request_id} is not JSON; try fetching it again.",
                               request_id=job.request_id) from None
        return media_from_output(data, provider="fal", request_id=job.request_id)

    def cancel(self, job: SubmittedJob) -> str:
        """PUT the cancel URL; returns fal's answer (OK, CANCELLATION_REQUESTED, ALREADY_COMPLETED, NOT_FOUND)."""
        response = call(self._http, "PUT", job.cancel_url, headers=self._auth(job.cancel_url), policy=self._retry,
                        profile=FAL, what="cancel the job", request_id=job.request_id, ok=(400, 404))
        try:
            return str(response.json().get("status") or "OK")
        except (ValueError, AttributeError):
            if response.status_code == 404:
                return "NOT_FOUND"
            if response.status_code == 400:
                return "ALREADY_COMPLETED"
            return "OK"

    def download(self, url: str, dest: Path, on_progress: ProgressFn | None = None) -> Path:
        return download(self._http, url, Path(dest), on_progress, self._max_download, policy=self._retry,
                        profile=FAL)


def _app_of(model: str) -> str:
    """fal's status URLs drop the model's sub-path: `fal-ai/ltx-2/retake-video` -> `fal-ai/ltx-2`."""
    parts = model.strip("/").split("/")
    return "/".join(parts[:2])


def media_from_output(data: Any, *, provider: str, request_id: str | None) -> ResultMedia:
    """Read fal's `{"video": {...}}` output (also accepts a bare URL string or a `videos` list)."""
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
    url = check_http_url(str(video["url"]), what=f"The {provider} result's video URL")

    def num(key: str, kind: type) -> Any:
        value = video.get(key)
        try:
            return kind(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    extra = {k: v for k, v in data.items() if k not in ("video", "videos")} if isinstance(data, dict) else {}
    extra.update({k: v for k, v in video.items()
                  if k not in ("url", "file_name", "content_type", "file_size", "width", "height", "fps", "num_frames")})
    return ResultMedia(url=url, file_name=video.get("file_name"), content_type=video.get("content_type"),
                       file_size=num("file_size", int), width=num("width", int), height=num("height", int),
                       fps=num("fps", float), num_frames=num("num_frames", int), extra=extra)


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

    def _storage_token(self) -> tuple[str, str, str]:
        now = self._wall_clock()
        if self._token and self._token[3] - self._token_margin > now:
            return self._token[:3]
        response = call(self._http, "POST", f"{self.rest_url}/storage/auth/token",
                        params={"storage_type": "fal-cdn-v3"}, json={}, headers=_auth(self._key),
                        policy=self._retry, profile=FAL, what="get an upload token for fal storage")
        try:
            data = response.json()
            token, token_type, base_url = str(data["token"]), str(data.get("token_type") or "Bearer"), \
                str(data["base_url"]).rstrip("/")
        except (ValueError, KeyError, TypeError):
            raise ServiceError("fal storage answered the token request without a token; try the upload again.") from None
        check_http_url(base_url, what="fal storage's upload address")
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
                       "X-Fal-File-Name": path.name}
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
        return check_http_url(url, what="fal storage's file URL")

    def _single(self, path: Path, size: int, base_url: str, headers: dict, on_progress: ProgressFn | None) -> str:
        def content() -> Iterator[bytes]:
            sent = 0

            def progress(n: int) -> None:
                nonlocal sent
                sent += n
                if on_progress and size:
                    on_progress(min(sent / size, 0.999))
            return file_chunks(path, on_bytes=progress)

        response = call(self._http, "POST", f"{base_url}/files/upload", content=content,
                        headers={**headers, "Content-Length": str(size)}, policy=self._retry, profile=FAL,
                        what=f"upload {path.name} to fal storage")
        return _field(response, "access_url", "fal storage's upload answer")

    def _multipart(self, path: Path, size: int, base_url: str, headers: dict, on_progress: ProgressFn | None) -> str:
        response = call(self._http, "POST", f"{base_url}/files/upload/multipart", headers=headers,
                        policy=self._retry, profile=FAL, what=f"start a multipart upload of {path.name}")
        access_url = _field(response, "access_url", "fal storage's multipart answer").rstrip("/")
        upload_id = _field(response, "uploadId", "fal storage's multipart answer")
        check_http_url(access_url, what="fal storage's multipart address")
        parts: list[dict] = []
        part_headers = {"Authorization": headers["Authorization"], "Content-Type": headers["Content-Type"]}
        with open(path, "rb") as fh:
            number = 0
            done = 0
            while True:
                chunk = fh.read(self.part_size)          # one part in memory at a time
                if not chunk:
                    break
                number += 1
                answer = call(self._http, "PUT", f"{access_url}/multipart/{upload_id}/{number}", content=chunk,
                              headers=part_headers, policy=self._retry, profile=FAL,
                              what=f"upload part {number} of {path.name}")
                etag = answer.headers.get("etag")
                if not etag:
                    raise ServiceError(f"fal storage did not return an ETag for part {number} of {path.name}; "
                                       f"upload the file again.")
                parts.append({"partNumber": number, "etag": etag})
                done += len(chunk)
                if on_progress and size:
                    on_progress(min(done / size, 0.999))
        call(self._http, "POST", f"{access_url}/multipart/{upload_id}/complete", json={"parts": parts},
             headers=part_headers, policy=self._retry, profile=FAL, what=f"finish the upload of {path.name}")
        return access_url


def _field(response: httpx.Response, name: str, what: str) -> str:
    try:
        value = response.json()[name]
    except (ValueError, KeyError, TypeError):
        raise ServiceError(f"{what} has no {name!r}; try the upload again.") from None
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
