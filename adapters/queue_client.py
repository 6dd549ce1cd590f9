"""What the queue clients (fal, RunComfy) share: the submit that is never sent twice, polling with backoff, the glue.

A queue service takes a job with one POST and answers with a request id and the URLs to follow it by. The
rules that keep a user from paying twice, and the polling that spares the service, are written once here;
each service describes itself with a `QueueProtocol` and decides what its status answers mean (`_handle`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx

from ..errors import CancelledError, ServiceError, SubmitUncertainError, TransientServiceError, redact
from ..ports import ProgressFn, ResultMedia, RetakeRequest, ServiceStatus, SubmittedJob
from ..settings import Secret
from .http_policy import (
    RetryPolicy,
    ServiceProfile,
    call,
    check_http_url,
    describe_transport_error,
    download,
    error_for_response,
    retry_after_seconds,
    same_site,
)

__all__ = ["QueueProtocol", "QueueClient", "Backoff", "StatusTracker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueProtocol:
    """How one queue service differs, for the code the clients share."""

    profile: ServiceProfile                 # the name, key hint and billing page its errors quote
    auth_scheme: str                        # "Key" (fal) or "Bearer" (RunComfy)
    check_where: str                        # where a user looks for a job that may have been created
    model_setting: str                      # the setting that names the model, quoted when it is unknown (404)
    model_examples: str
    submit_path: Callable[[str], str]       # model -> the submit URL's path under the base URL
    requests_path: Callable[[str], str]     # model -> where a request's URLs live when the answer leaves them out
    result_field: str                       # the submit answer's name for the result URL
    result_suffix: str                      # the result URL's path under the request's URL, when left out
    status_params: dict[str, str] | None = None


@dataclass(frozen=True)
class Backoff:
    """Poll intervals: `initial`, then each `growth` times the last, never above `maximum`."""

    initial: float
    growth: float
    maximum: float

    def intervals(self) -> Iterator[float]:
        interval = self.initial
        while True:
            yield interval
            interval = min(interval * self.growth, self.maximum)


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

    def report_answer(self, state: str, answer: dict) -> None:
        """Report a status answer in `state`: its queue position (while queued) and its logs."""
        position = answer.get("queue_position") if state == "queued" else None
        self.report(state, position if isinstance(position, int) else None, answer.get("logs"))

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


class QueueClient:
    """The shared half of a RetakeService over a queue: submit once, poll with backoff, result, download.

    A subclass sets `protocol` and `provider`, and implements `_handle` (what one status answer means),
    `follow`, `result` and `cancel` on top of `_poll`, `_result_json` and `_send`.
    """

    protocol: QueueProtocol
    provider: str

    def __init__(
        self,
        http: httpx.Client,
        credential: Secret | None,
        base_url: str,
        model: str,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        backoff: Backoff,
        rand: Callable[[], float],
        retry: RetryPolicy | None,
        follow_timeout: float | None,
        max_download_bytes: int,
        submit_attempts: int,
    ):
        self._http = http
        self._credential = credential
        self._home = base_url.rstrip("/")
        self.model = model.strip("/")
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff
        self._retry = retry or RetryPolicy(sleep=sleep, random=rand)
        self._follow_timeout = follow_timeout
        self._max_download = max_download_bytes
        self._submit_attempts = submit_attempts
        self._requests_of: dict[str, str] = {}      # result URL -> its request id, so a failed download names it
        self._requests_lock = threading.Lock()

    def _auth(self, url: str | None = None) -> dict[str, str]:
        """The credential, for the service's own site only: a URL from an answer that points elsewhere gets none."""
        if not self._credential:
            return {}
        if url is not None and not same_site(url, self._home):
            log.warning("not sending the %s key to %s: it is not on the service's site",
                        self.protocol.profile.name, urlsplit(url).netloc)
            return {}
        return {"Authorization": f"{self.protocol.auth_scheme} {self._credential.reveal()}"}

    def _checked(self, url: str, what: str) -> str:
        """A URL the service handed back (status, result, cancel): http(s) only, and plain http only to loopback."""
        return check_http_url(url, what=f"{self.protocol.profile.name}'s address to {what}", https_unless_loopback=True)

    def _send(self, method: str, url: str, job: SubmittedJob, what: str, **kwargs: Any) -> httpx.Response:
        """A call about `job` that is safe to repeat (see http_policy.call), with the credential where it belongs."""
        self._checked(url, what)
        return call(self._http, method, url, headers=self._auth(url), policy=self._retry,
                    profile=self.protocol.profile, what=what, request_id=job.request_id, **kwargs)

    # -- submit: never sent twice once it may have reached the server ------------------------------------------

    def submit(self, request: RetakeRequest) -> SubmittedJob:
        """POST the job once. Resent only when the server certainly did not take it (connect failure, 429).

        A lost answer, a 502 or a 504 after the POST may hide a job the server accepted (and charges for):
        that raises SubmitUncertainError, saying where to look, instead of posting again.
        """
        name = self.protocol.profile.name
        url = self._home + self.protocol.submit_path(self.model)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(url, json=request.as_json(), headers=self._auth())
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if attempt < self._submit_attempts:
                    self._sleep(self._retry.delay(attempt))
                    continue
                raise TransientServiceError(
                    f"Could not connect to {name} to submit the retake ({describe_transport_error(exc)}). Nothing "
                    f"was sent; check the network and submit again.") from None
            except httpx.TransportError as exc:
                raise SubmitUncertainError(
                    f"The submit to {name} may have reached the server, but no answer came back "
                    f"({describe_transport_error(exc)}). {self._not_resent()}") from None
            status = response.status_code
            if status == 429 and attempt < self._submit_attempts:
                # The server refused the request outright, so sending it again cannot create a second job.
                self._sleep(self._retry.delay(attempt, retry_after_seconds(response)))
                continue
            if status in (502, 504):
                raise SubmitUncertainError(
                    f"{name}'s gateway answered HTTP {status} to the submit, so the job may or may not have been "
                    f"queued. {self._not_resent()}", status_code=status)
            if not response.is_success:
                raise self._submit_error(response, attempt)
            return self._job_from(response)

    def _not_resent(self) -> str:
        return (f"It was not sent again, to avoid paying twice: check {self.protocol.check_where} for a new "
                f"{self.model} request before submitting again.")

    def _submit_error(self, response: httpx.Response, tries: int) -> ServiceError:
        err = error_for_response(response, profile=self.protocol.profile, what=f"submit the retake to {self.model}",
                                 tries=tries)
        if response.status_code == 404 and type(err) is ServiceError:
            p = self.protocol
            err = ServiceError(
                f"{p.profile.name} does not know the model {self.model!r} (HTTP 404). Check the {p.model_setting} "
                f"setting (for example {p.model_examples}).", status_code=404)
        return err

    def _job_from(self, response: httpx.Response) -> SubmittedJob:
        """The job the submit answer describes; URLs it leaves out are built where the service keeps them."""
        p = self.protocol
        try:
            data = response.json()
            request_id = str(data["request_id"])
        except (ValueError, KeyError, TypeError):
            raise SubmitUncertainError(
                f"{p.profile.name} accepted the submit (HTTP {response.status_code}) but its answer has no request "
                f"id. The job may be running: check {p.check_where} before submitting again.") from None
        base = f"{self._home}{p.requests_path(self.model)}/{request_id}"
        return SubmittedJob(request_id=request_id,
                            status_url=data.get("status_url") or f"{base}/status",
                            result_url=data.get(p.result_field) or f"{base}{p.result_suffix}",
                            cancel_url=data.get("cancel_url") or f"{base}/cancel")

    # -- follow: poll with backoff --------------------------------------------------------------------------------

    def _handle(self, job: SubmittedJob, answer: dict, tracker: StatusTracker) -> bool:
        """Report one status answer; True when the job is complete (raises if it failed or was cancelled)."""
        raise NotImplementedError

    @staticmethod
    def _stop_if_asked(should_stop: Callable[[], bool] | None, job: SubmittedJob) -> None:
        if should_stop is not None and should_stop():
            raise CancelledError(f"Cancelled by the user while following request {job.request_id}.")

    def _poll(self, job: SubmittedJob, tracker: StatusTracker, started: float,
              should_stop: Callable[[], bool] | None = None) -> None:
        """GET the status URL until `_handle` says complete, sleeping by the backoff between polls.

        An exception raised by `_handle` or by the tracker's `on_status` stops polling and propagates;
        past `follow_timeout` seconds since `started` the job is left running and TransientServiceError raised.
        """
        for interval in self._backoff.intervals():
            self._stop_if_asked(should_stop, job)
            response = self._send("GET", job.status_url, job, "check the job's status",
                                  params=self.protocol.status_params, ok=(202,))
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if self._handle(job, answer if isinstance(answer, dict) else {}, tracker):
                return
            if self._follow_timeout is not None and self._clock() - started > self._follow_timeout:
                name = self.protocol.profile.name
                raise TransientServiceError(
                    f"The {name} job {job.request_id} had not finished after {self._follow_timeout:.0f} s. It keeps "
                    f"running on {name}: resume the job later to fetch its result.", request_id=job.request_id)
            self._stop_if_asked(should_stop, job)
            self._sleep(interval)

    # -- result, download -------------------------------------------------------------------------------------------

    def _result_json(self, job: SubmittedJob) -> Any:
        """GET the result URL and return its JSON. An answer that is not JSON (cut short on the way, say) is
        fetched again, up to three tries in all: the GET is safe to repeat and costs nothing."""
        tries = min(3, self._retry.attempts)
        for attempt in range(1, tries + 1):
            response = self._send("GET", job.result_url, job, "fetch the retake's result")
            try:
                return response.json()
            except ValueError:
                if attempt < tries:
                    self._retry.sleep(self._retry.delay(attempt))
        raise ServiceError(f"{self.protocol.profile.name}'s result for request {job.request_id} was not JSON in "
                           f"{tries} tries; fetch it again later.", request_id=job.request_id)

    def _remember(self, job: SubmittedJob, media: ResultMedia) -> ResultMedia:
        """Note the request a result's URL belongs to (the latest few hundred), for `download`'s errors."""
        with self._requests_lock:
            self._requests_of.pop(media.url, None)
            self._requests_of[media.url] = job.request_id
            while len(self._requests_of) > 512:
                del self._requests_of[next(iter(self._requests_of))]
        return media

    def download(self, url: str, dest: Path, on_progress: ProgressFn | None = None) -> Path:
        """Stream a result to `dest`; a failure names the request the URL came from (when `result` gave it)."""
        with self._requests_lock:
            request_id = self._requests_of.get(url)
        return download(self._http, url, Path(dest), on_progress, self._max_download, policy=self._retry,
                        profile=self.protocol.profile, request_id=request_id)
