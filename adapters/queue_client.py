"""What the queue clients (fal, RunComfy) share: the submit that is never sent twice, polling with backoff, the glue.

A queue service takes a job with one POST and answers with a request id and the URLs to follow it by. The
rules that keep a user from paying twice, and the polling that spares the service, are written once here;
each service describes itself with a `QueueProtocol` and decides what its status answers mean (`_handle`).

Nothing a service says is trusted: its answers are read within `wire.Bounds`, its URLs obey the client's
`UrlRule` (redirects too, hop by hop), a status of the wrong shape is a ServiceError with a sentence, and a
job still queued or running after `follow_timeout` (the max_wait_min setting) is left on the service with
its request id and what to do. A cancel asked for (should_stop) is noticed between polls, between chunks
of any answer and while a read waits; the cancel request itself is short and bounded.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx

from ..errors import (CancelledError, ServiceError, SubmitUncertainError, TransientServiceError, has_secret,
                      scrub)
from ..ports import ProgressFn, ResultMedia, RetakeRequest, ServiceStatus, SubmittedJob
from ..settings import Secret
from .http_policy import (
    RetryPolicy,
    ServiceProfile,
    call,
    describe_transport_error,
    download,
    error_for_response,
    retry_after_seconds,
    same_site,
    url_rule,
)
from .wire import DEFAULT_BOUNDS, Bounds, Budget, answer, open_stream, read_capped

__all__ = ["QueueProtocol", "QueueClient", "Backoff", "StatusTracker", "status_object", "DEFAULT_MAX_WAIT"]

log = logging.getLogger(__name__)

DEFAULT_MAX_WAIT = 30 * 60.0      # seconds a job may stay queued or running before it is left to `resume` (max_wait_min)
CANCEL_TIMEOUT = 5.0              # seconds one cancel request may take: Ctrl-C must end the command soon
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_MAX_LOG_LINES = 200              # new log lines reported from one status answer; the rest are counted


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def status_object(data: Any, *, name: str, request_id: str, where: str = "status") -> dict:
    """A status answer (or stream event) of the shape every queue service uses, else a ServiceError sentence:
    an object whose `status` is text and whose `logs`, when present, are a list."""
    def wrong(detail: str) -> ServiceError:
        return ServiceError(
            f"{name} answered the {where} of request {request_id} with {detail}, which is not a status this program "
            f"understands; it stopped following the job. The job may still run: `ltx-retake resume` follows it again "
            f"later, or check it on the service's dashboard.", request_id=request_id)
    if not isinstance(data, dict):
        raise wrong(f"{_kind(data)} instead of an object")
    if "status" in data and not isinstance(data["status"], str):
        raise wrong(f"a status that is {_kind(data['status'])}, not a word")
    if data.get("logs") is not None and not isinstance(data["logs"], list):
        raise wrong(f"logs that are {_kind(data['logs'])}, not a list")
    return data


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

    @property
    def state(self) -> str | None:
        """The last state reported (queued, generating, completed), or None before any."""
        return self._last[0] if self._last else None

    def report_answer(self, state: str, answer: dict) -> None:
        """Report a status answer in `state`: its queue position (while queued) and its logs."""
        position = answer.get("queue_position") if state == "queued" else None
        ok = isinstance(position, int) and not isinstance(position, bool) and 0 <= position < 10**9
        self.report(state, position if ok else None, answer.get("logs"))

    def report(self, state: str, queue_position: int | None, logs: list[Any] | None) -> None:
        """Report `state` when it changed, with the log lines not seen before (scrubbed: see errors.scrub)."""
        fresh: list[str] = []
        skipped = 0
        for entry in logs if isinstance(logs, list) else []:
            if isinstance(entry, dict):
                message = scrub(entry.get("message", "")) if entry.get("message") is not None else ""
                stamp = scrub(entry.get("timestamp", ""), 40)
            else:
                message, stamp = scrub(entry), ""
            marker = (stamp, message)
            if message and marker not in self._seen:
                if len(fresh) >= _MAX_LOG_LINES:
                    skipped += 1
                    continue
                self._seen.add(marker)
                fresh.append(message)
        if skipped:
            fresh.append(f"({skipped} more log lines not shown)")
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
        bounds: Bounds = DEFAULT_BOUNDS,
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
        self._bounds = bounds
        self._rule = url_rule(self._home, allow_private_hosts=bounds.allow_private_hosts)
        # a cancel is one quick try and one retry: Ctrl-C must reach the service and still end the command soon
        self._cancel_retry = RetryPolicy(attempts=2, base_delay=0.2, max_delay=0.5, sleep=sleep, random=rand)

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
        """A URL the service handed back (status, result, cancel): obeys the client's UrlRule (https unless
        loopback, this machine only for a local service, no private, link-local or metadata address)."""
        return self._rule.check(url, f"{self.protocol.profile.name}'s address to {what}")

    def _send(self, method: str, url: str, job: SubmittedJob, what: str, *, policy: RetryPolicy | None = None,
              **kwargs: Any) -> httpx.Response:
        """A call about `job` that is safe to repeat (see http_policy.call), with the credential where it belongs."""
        self._checked(url, what)
        return call(self._http, method, url, headers=self._auth(url), policy=policy or self._retry,
                    profile=self.protocol.profile, what=what, request_id=job.request_id, bounds=self._bounds,
                    rule=self._rule, **kwargs)

    def _cancel_call(self, method: str, job: SubmittedJob, **kwargs: Any) -> httpx.Response:
        """The cancel request: short (CANCEL_TIMEOUT a try, two tries) and never itself cancelled."""
        quick = httpx.Timeout(CANCEL_TIMEOUT)
        bounds = dataclasses.replace(self._bounds, json_deadline=CANCEL_TIMEOUT)
        self._checked(job.cancel_url, "cancel the job")
        return call(self._http, method, job.cancel_url, headers=self._auth(job.cancel_url), policy=self._cancel_retry,
                    profile=self.protocol.profile, what="cancel the job", request_id=job.request_id, bounds=bounds,
                    rule=self._rule, timeout=quick, **kwargs)

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
                response = self._post_submit(url, request)
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

    def _post_submit(self, url: str, request: RetakeRequest) -> httpx.Response:
        """POST the job (never redirected elsewhere); the answer read within bounds. A body too large or too
        slow after the POST went out leaves the job uncertain, like a lost answer."""
        name = self.protocol.profile.name
        budget = Budget(clock=self._bounds.clock, deadline=self._bounds.clock() + self._bounds.json_deadline,
                        late=lambda: SubmitUncertainError(
                            f"{name} took more than {self._bounds.json_deadline:g} s to answer the submit, so the job "
                            f"may or may not have been queued. {self._not_resent()}"))
        with budget.active():
            response = open_stream(self._http, "POST", url, rule=self._rule, what=f"{name}'s submit address",
                                   who=name, bounds=self._bounds, follow=False, json=request.as_json(),
                                   headers=self._auth())
            limit = self._bounds.max_json_bytes if response.is_success else self._bounds.max_error_bytes
            try:
                body = read_capped(response, limit=limit, who=name, what="submit the retake",
                                   truncate=not response.is_success)
            except ServiceError as exc:
                raise SubmitUncertainError(f"{exc} The job may or may not have been queued. {self._not_resent()}") \
                    from None
        return answer(response, body)

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
            request_id = data["request_id"]
        except (ValueError, KeyError, TypeError):
            raise SubmitUncertainError(
                f"{p.profile.name} accepted the submit (HTTP {response.status_code}) but its answer has no request "
                f"id. The job may be running: check {p.check_where} before submitting again.") from None
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            request_id = str(request_id)
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id) or has_secret(request_id):
            raise SubmitUncertainError(
                f"{p.profile.name} accepted the submit (HTTP {response.status_code}) but its request id is not one "
                f"({scrub(request_id, 60)!r}); it cannot be followed or kept. The job may be running: check "
                f"{p.check_where} before submitting again.")
        base = f"{self._home}{p.requests_path(self.model)}/{request_id}"

        def url_of(key: str, default: str) -> str:
            # A URL that carries a secret (a service echoing the key) is never kept: the journal would hold it.
            value = data.get(key)
            if isinstance(value, str) and value and not has_secret(value):
                return value
            if value:
                log.warning("%s's %s was not usable; using %s", p.profile.name, key, default)
            return default
        return SubmittedJob(request_id=request_id,
                            status_url=url_of("status_url", f"{base}/status"),
                            result_url=url_of(p.result_field, f"{base}{p.result_suffix}"),
                            cancel_url=url_of("cancel_url", f"{base}/cancel"))

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

        An exception raised by `_handle` or by the tracker's `on_status` stops polling and propagates; so
        does a status answer that is not a JSON object of the usual shape (see `status_object`). Past
        `follow_timeout` seconds since `started` the job is left running and TransientServiceError raised.
        """
        for interval in self._backoff.intervals():
            self._stop_if_asked(should_stop, job)
            response = self._send("GET", job.status_url, job, "check the job's status",
                                  params=self.protocol.status_params, ok=(202,), should_stop=should_stop)
            try:
                data = response.json()
            except ValueError:
                raise ServiceError(
                    f"{self.protocol.profile.name} answered the status of request {job.request_id} with something "
                    f"that is not JSON; it stopped following the job. The job may still run: `ltx-retake resume` "
                    f"follows it again later, or check it on the service's dashboard.",
                    request_id=job.request_id) from None
            answer = status_object(data, name=self.protocol.profile.name, request_id=job.request_id)
            if self._handle(job, answer, tracker):
                return
            self._check_wait(job, tracker, started)
            self._stop_if_asked(should_stop, job)
            self._pause(interval, should_stop, job)

    def _pause(self, seconds: float, should_stop: Callable[[], bool] | None, job: SubmittedJob) -> None:
        """Sleep between polls in steps, so a cancel is noticed within a quarter of a second."""
        left = seconds
        while left > 0:
            step = min(left, 0.25) if should_stop is not None else left
            self._sleep(step)
            left -= step
            self._stop_if_asked(should_stop, job)

    def _deadline(self, started: float) -> float | None:
        return None if self._follow_timeout is None else started + self._follow_timeout

    def _check_wait(self, job: SubmittedJob, tracker: StatusTracker, started: float) -> None:
        deadline = self._deadline(started)
        if deadline is not None and self._clock() > deadline:
            raise self._waited_too_long(job, tracker)

    def _waited_too_long(self, job: SubmittedJob, tracker: StatusTracker) -> TransientServiceError:
        """The sentence for a job still queued or running at the follow deadline (the max_wait_min setting)."""
        p = self.protocol.profile
        minutes = (self._follow_timeout or 0) / 60
        state = {"queued": "still queued", "generating": "still running"}.get(tracker.state or "", "not finished")
        where = f", see it on {p.dashboard}" if p.dashboard else ""
        return TransientServiceError(
            f"The {p.name} job {job.request_id} was {state} after {minutes:g} min (the max_wait_min setting), so "
            f"this program stopped waiting for it. It was left on {p.name}: `ltx-retake resume` follows it later "
            f"and fetches the result without paying again{where}, or cancel it there. To wait longer, raise "
            f"max_wait_min (LTX_RETAKE_MAX_WAIT_MIN).", request_id=job.request_id)

    # -- result, download -------------------------------------------------------------------------------------------

    def _result_json(self, job: SubmittedJob, should_stop: Callable[[], bool] | None = None) -> Any:
        """GET the result URL and return its JSON. An answer that is not JSON (cut short on the way, say) is
        fetched again, up to three tries in all: the GET is safe to repeat and costs nothing."""
        tries = min(3, self._retry.attempts)
        for attempt in range(1, tries + 1):
            response = self._send("GET", job.result_url, job, "fetch the retake's result", should_stop=should_stop)
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

    def download(self, url: str, dest: Path, on_progress: ProgressFn | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Path:
        """Stream a result to `dest`; a failure names the request the URL came from (when `result` gave it).
        CancelledError soon after `should_stop()` turns true, even while the server sends nothing."""
        with self._requests_lock:
            request_id = self._requests_of.get(url)
        return download(self._http, url, Path(dest), on_progress, self._max_download, policy=self._retry,
                        profile=self.protocol.profile, request_id=request_id, rule=self._rule, bounds=self._bounds,
                        should_stop=should_stop)
