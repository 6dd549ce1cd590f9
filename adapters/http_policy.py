"""Shared HTTP behaviour for the service adapters: retries with backoff, error mapping, streaming downloads.

Every answer is read within `wire.Bounds` (capped, inflated by us, under a deadline and the caller's cancel)
and every URL, redirects included, obeys a `wire.UrlRule` before anything connects to it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

import httpx

from ..errors import (
    AuthError,
    BalanceError,
    CancelledError,
    ContentRefusedError,
    ServiceError,
    ServiceValidationError,
    TransientServiceError,
    scrub,
)
from ..ports import ProgressFn
from .wire import DEFAULT_BOUNDS, Bounds, Budget, UrlRule, answer, is_loopback, open_stream, read_capped

__all__ = [
    "ServiceProfile",
    "FAL",
    "RUNCOMFY",
    "FILE_HOST",
    "RetryPolicy",
    "RETRYABLE_STATUS",
    "call",
    "error_for_response",
    "retry_after_seconds",
    "check_http_url",
    "is_loopback",
    "url_rule",
    "same_site",
    "file_chunks",
    "streamed_file",
    "download",
    "DEFAULT_MAX_DOWNLOAD",
]

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_MAX_DOWNLOAD = 4 * 1024**3        # 4 GiB: far above any 20 s retake, low enough to stop a runaway
_CHUNK = 1024 * 1024
_REFUSAL = re.compile(r"content[ _-]?polic|safety|nsfw|moderat|flagged|refus|not allowed content", re.I)
_BALANCE = re.compile(r"balance|exhausted|insufficient (funds|credit)|top[ -]?up|payment required", re.I)


@dataclass(frozen=True)
class ServiceProfile:
    """How to talk to a user about one service: its name, where its key comes from, where to look."""

    name: str
    key_hint: str
    dashboard: str | None = None
    billing: str | None = None


FAL = ServiceProfile(
    name="fal",
    key_hint="check FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET, the OS keyring's ltx-retake/fal entry, or the "
             "fal_key setting) holds a valid fal key",
    dashboard="https://fal.ai/dashboard/requests",
    billing="https://fal.ai/dashboard/billing",
)
RUNCOMFY = ServiceProfile(
    name="RunComfy",
    key_hint="check RUNCOMFY_TOKEN (or the OS keyring's ltx-retake/runcomfy entry, or the runcomfy_token setting) "
             "holds a valid RunComfy API token",
    dashboard="https://www.runcomfy.com/",
    billing="https://www.runcomfy.com/",
)
FILE_HOST = ServiceProfile(
    name="the file host",
    key_hint="check the file host URL (the file_host_url setting) and that it accepts uploads without a login",
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for calls that are safe to repeat. `sleep` and `random` are injected."""

    attempts: int = 6                      # tries in all, the first included
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0         # a longer Retry-After is capped (the caller can still cancel)
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        return base * (0.5 + self.random())


def retry_after_seconds(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """The Retry-After header as seconds (it may be a number or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - now(), 0.0)


def call(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    profile: ServiceProfile,
    what: str,
    request_id: str | None = None,
    ok: Iterable[int] = (),
    retry: bool = True,
    bounds: Bounds = DEFAULT_BOUNDS,
    rule: UrlRule | None = None,
    should_stop: Callable[[], bool] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request that is safe to repeat; retry transport errors and 408/429/5xx; map other errors.

    Returns the response, its body already read within `bounds` (at most `max_json_bytes`, within
    `json_deadline`), when it is 2xx or its status is in `ok`. A GET follows redirects hop by hop, each
    hop checked by `rule` (default: http(s) only) before connecting. A callable `content` is called anew
    for each try (so a generator that streams a file can be restarted). CancelledError as soon as
    `should_stop()` is true. Raises a ServiceError subclass otherwise.
    """
    accepted = set(ok)
    rule = rule or UrlRule(https_unless_loopback=False, private_ok=True)
    ref = f" (request id {request_id})" if request_id else ""
    attempt = 0
    while True:
        attempt += 1
        send_kwargs = dict(kwargs)
        if callable(send_kwargs.get("content")):
            send_kwargs["content"] = send_kwargs["content"]()
        budget = Budget(should_stop=should_stop, clock=bounds.clock,
                        deadline=bounds.clock() + bounds.json_deadline,
                        late=lambda: TransientServiceError(
                            f"{profile.name} took more than {bounds.json_deadline:g} s to answer when asked to {what}"
                            f"{ref}: its answer trickled in too slowly and was abandoned. Try again later.",
                            request_id=request_id))
        try:
            with budget.active():
                response = open_stream(http, method, url, rule=rule, what=f"{profile.name}'s address to {what}",
                                       who=profile.name, bounds=bounds, follow=method in ("GET", "HEAD"),
                                       **send_kwargs)
                try:
                    if response.is_success or response.status_code in accepted:
                        body = read_capped(response, limit=bounds.max_json_bytes, who=profile.name, what=what,
                                           request_id=request_id)
                        return answer(response, body)
                    retry_now = retry and response.status_code in RETRYABLE_STATUS and attempt < policy.attempts
                    if not retry_now:
                        raise error_for_response(response, profile=profile, what=what, request_id=request_id,
                                                 tries=attempt, bounds=bounds)
                    wait = policy.delay(attempt, retry_after_seconds(response))
                finally:
                    response.close()
            log.info("%s: %s answered HTTP %s; retrying in %.2f s", profile.name, what, response.status_code, wait)
            _pause(policy, wait, should_stop)
            continue
        except httpx.TransportError as exc:
            if should_stop is not None and should_stop():
                raise CancelledError("Cancelled by the user.") from None
            if retry and attempt < policy.attempts:
                wait = policy.delay(attempt)
                log.info("%s: %s (%s); retrying in %.2f s", profile.name, what, type(exc).__name__, wait)
                _pause(policy, wait, should_stop)
                continue
            raise TransientServiceError(
                f"Could not reach {profile.name} to {what}{ref} ({describe_transport_error(exc)}) after {attempt} "
                f"tries. Check the network connection and try again.",
                request_id=request_id,
            ) from None


def _pause(policy: RetryPolicy, seconds: float, should_stop: Callable[[], bool] | None) -> None:
    """Sleep between tries; a cancel asked for meanwhile is not kept waiting for the whole pause."""
    if should_stop is None:
        policy.sleep(seconds)
        return
    left = seconds
    while left > 0:
        if should_stop():
            raise CancelledError("Cancelled by the user.")
        step = min(left, 0.25)
        policy.sleep(step)
        left -= step
    if should_stop():
        raise CancelledError("Cancelled by the user.")


def describe_transport_error(exc: BaseException) -> str:
    """A short, key-free description of a network failure."""
    text = scrub(str(exc), 200)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _body(response: httpx.Response, bounds: Bounds = DEFAULT_BOUNDS, who: str = "The service") -> tuple[Any, str]:
    """An error answer's JSON (or None) and its text (scrubbed), from at most `max_error_bytes` of its body."""
    if not isinstance(getattr(response, "_content", None), bytes):
        try:
            response = answer(response, read_capped(response, limit=bounds.max_error_bytes, who=who,
                                                     what="answer", truncate=True))
        except (httpx.HTTPError, ServiceError):
            return None, ""
    try:
        text = response.text or ""
    except (UnicodeDecodeError, LookupError):
        return None, ""
    try:
        data = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        data = None
    return data, scrub(text, 2000)


def _find_code(data: Any) -> int | None:
    """RunComfy puts a numeric code in its error bodies; accept the shapes it might take."""
    if not isinstance(data, dict):
        return None
    for holder in (data, data.get("error"), data.get("detail")):
        if isinstance(holder, dict):
            for key in ("code", "error_code", "errorCode"):
                value = holder.get(key)
                if isinstance(value, (int, str)) and str(value).isdigit() and len(str(value)) == 6:
                    return int(value)
    return None


def _message_of(data: Any, text: str) -> str:
    """The server's own words, shortened, with secrets removed."""
    if isinstance(data, dict):
        for holder in (data, data.get("error") if isinstance(data.get("error"), dict) else None):
            if not isinstance(holder, dict):
                continue
            for key in ("detail", "message", "error_message", "error", "msg"):
                value = holder.get(key)
                if isinstance(value, str) and value.strip():
                    return _clip(value)
    text = re.sub(r"<[^>]+>", " ", text)          # an nginx HTML page says little; keep its words
    return _clip(text)


def _clip(text: Any, limit: int = 300) -> str:
    """Server words to quote inside a sentence: scrubbed (see errors.scrub), one line, bounded, no closing full stop."""
    return scrub(text, limit).rstrip(" .")


def _validation_items(data: Any) -> list[dict]:
    if isinstance(data, dict) and isinstance(data.get("detail"), list):
        return [item for item in data["detail"] if isinstance(item, dict)]
    return []


def _field_of(item: dict) -> str:
    loc = item.get("loc") or []
    if isinstance(loc, (list, tuple)):
        parts = [str(p) for p in loc if p not in ("body", "query", "header")]
        return ".".join(parts) or "request"
    return str(loc)


def error_for_response(
    response: httpx.Response,
    *,
    profile: ServiceProfile,
    what: str,
    request_id: str | None = None,
    tries: int = 1,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> ServiceError:
    """Turn an HTTP error answer into the matching error of errors.py, with a sentence that says what to do.
    At most `bounds.max_error_bytes` of its body are read (for the service's own words)."""
    status = response.status_code
    data, text = _body(response, bounds, profile.name)
    code = _find_code(data)
    said = _message_of(data, text)
    error_type = response.headers.get("x-fal-error-type") or (data.get("error_type") if isinstance(data, dict) else None)
    error_type = _clip(error_type, 60) if error_type else None
    ref = f" (request id {request_id})" if request_id else ""
    said_part = f": {said}" if said else ""
    kw = {"request_id": request_id, "status_code": status}

    if code == 400002 or status == 402 or (status in (401, 403) and _BALANCE.search(text)):
        where = f" at {profile.billing}" if profile.billing else ""
        return BalanceError(
            f"{profile.name} refused to {what}: the account has no credit (HTTP {status}{said_part}). "
            f"Top up the balance{where}, then try again.", **kw)
    if status in (401, 403) or code == 400004:
        return AuthError(
            f"{profile.name} rejected the credentials when asked to {what} (HTTP {status}{said_part}). "
            f"{profile.key_hint[0].upper()}{profile.key_hint[1:]}.", **kw)
    if code == 400001:
        return ServiceValidationError(
            f"{profile.name} says the request id is not valid when asked to {what}{ref}{said_part}. "
            f"The job record may be damaged; submit the retake again.", **kw)
    if code == 404001:
        return ServiceError(
            f"{profile.name} does not know this request{ref}: it is unknown or has expired{said_part}. "
            f"Results are kept for a limited time; submit the retake again.", **kw)
    if status == 422 or (status == 400 and _validation_items(data)):
        items = _validation_items(data)
        refused = (error_type and "content" in str(error_type)) or any(
            "content_policy" in str(i.get("type", "")) or _REFUSAL.search(str(i.get("msg", ""))) for i in items
        ) or (not items and _REFUSAL.search(said or ""))
        if refused:
            reason = "; ".join(_clip(i.get("msg", "")) for i in items[:10]) or said or "no reason given"
            return ContentRefusedError(
                f"{profile.name}'s safety filter refused the retake{ref}: {reason}. "
                f"Change the prompt (or the footage) and try again.", **kw)
        if items:
            fields = "; ".join(f"{_clip(_field_of(i), 60)}: {_clip(i.get('msg', 'invalid'))}" for i in items[:10])
            return ServiceValidationError(
                f"{profile.name} rejected the request's inputs when asked to {what}{ref}: {fields}. "
                f"Fix those values and submit again.", **kw)
        return ServiceValidationError(
            f"{profile.name} rejected the request when asked to {what}{ref} (HTTP {status}{said_part}). "
            f"Fix the inputs and submit again.", **kw)
    if status in (404, 410):
        return ServiceError(
            f"{profile.name} has nothing at that address when asked to {what}{ref} (HTTP {status}{said_part}): "
            f"it is unknown or has expired. Results are kept for a limited time; if the job is gone, submit "
            f"the retake again.", **kw)
    if status == 429:
        return TransientServiceError(
            f"{profile.name} is rate-limiting requests (HTTP 429) and still was after {tries} tries to {what}"
            f"{ref}. Wait a minute and try again.", **kw)
    if status >= 500 or status == 408:
        kind = f", {error_type}" if error_type else ""
        return TransientServiceError(
            f"{profile.name} had a server problem when asked to {what}{ref} (HTTP {status}{kind}{said_part}) "
            f"after {tries} {'try' if tries == 1 else 'tries'}. Try again in a few minutes.", **kw)
    return ServiceError(
        f"{profile.name} refused to {what}{ref} (HTTP {status}{said_part}).", **kw)


def url_rule(home: str | None, *, allow_private_hosts: bool = False, https_unless_loopback: bool = True) -> UrlRule:
    """The rule for the URLs a service at `home` hands back: https unless loopback; this machine only when the
    service itself is on it; private addresses only with the allow_private_hosts setting."""
    host = urlsplit(home or "").hostname
    return UrlRule(https_unless_loopback=https_unless_loopback, loopback_ok=home is None or is_loopback(host),
                   private_ok=allow_private_hosts)


def check_http_url(url: str, *, what: str, https_unless_loopback: bool = False, rule: UrlRule | None = None) -> str:
    """Accept only http(s) URLs from a service (no file:, ftp:, data:), never to a metadata or link-local address.

    With `https_unless_loopback` (every URL a remote service hands back: status, result and cancel URLs,
    result media, storage upload addresses), plain http is accepted only to this machine (127.0.0.1, ::1,
    localhost): anything else must be https, so nothing the service hands us travels the network in clear.
    `rule` (see `url_rule`) says more: whether this machine and private addresses are allowed.
    """
    rule = rule or UrlRule(https_unless_loopback=https_unless_loopback, loopback_ok=True, private_ok=True)
    return rule.check(url, what)


def same_site(url: str, base: str) -> bool:
    """May a key meant for `base` be sent to `url`? Same host, or same site (`a.fal.run` and `queue.fal.run`),
    and never from https down to http."""
    u, b = urlsplit(url), urlsplit(base)
    if not u.hostname or not b.hostname or (b.scheme == "https" and u.scheme != "https"):
        return False
    if u.hostname == b.hostname:
        return u.port == b.port
    if re.fullmatch(r"[\d.]+|.*:.*", b.hostname):        # an IP address has no wider site
        return False
    return u.hostname.split(".")[-2:] == b.hostname.split(".")[-2:] and len(b.hostname.split(".")) >= 2


def file_chunks(path: Path, *, start: int = 0, length: int | None = None, chunk_size: int = _CHUNK,
                on_bytes: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Stream `length` bytes of a file from `start`, a chunk at a time (never the whole file in memory)."""
    remaining = length
    with open(path, "rb") as fh:
        fh.seek(start)
        while remaining is None or remaining > 0:
            want = chunk_size if remaining is None else min(chunk_size, remaining)
            chunk = fh.read(want)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
            yield chunk


def streamed_file(path: Path, size: int, on_progress: ProgressFn | None) -> Callable[[], Iterator[bytes]]:
    """A request body for `call`: streams the file anew on each try, reporting progress up to 0.999 (the
    caller reports 1.0 once the server has answered)."""
    def content() -> Iterator[bytes]:
        sent = 0

        def progress(n: int) -> None:
            nonlocal sent
            sent += n
            if on_progress and size:
                on_progress(min(sent / size, 0.999))
        return file_chunks(path, on_bytes=progress)
    return content


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """Parse `bytes a-b/total` into (a, total)."""
    if not value:
        return None
    m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)", value)
    if not m:
        return None
    return int(m.group(1)), (None if m.group(3) == "*" else int(m.group(3)))


def download(
    client: httpx.Client,
    url: str,
    dest: Path,
    on_progress: ProgressFn | None = None,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD,
    *,
    policy: RetryPolicy | None = None,
    profile: ServiceProfile = FAL,
    request_id: str | None = None,
    https_unless_loopback: bool = True,
    rule: UrlRule | None = None,
    bounds: Bounds = DEFAULT_BOUNDS,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Stream `url` to `dest` atomically: a temp file beside it, resumed with Range after a drop, then renamed.

    No credentials are sent (result URLs are public). Refuses non-http(s) URLs, plain http to another
    machine (unless `https_unless_loopback` is False), addresses `rule` forbids, redirects to any of these
    (checked hop by hop before connecting) and files above `max_bytes`. CancelledError soon after
    `should_stop()` turns true: it is checked between chunks and, on a guarded transport, while a read waits.
    """
    what_url = "The result's download URL"
    rule = rule or UrlRule(https_unless_loopback=https_unless_loopback, loopback_ok=True, private_ok=True)
    rule.check(url, what_url)
    policy = policy or RetryPolicy()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    what = "download the result"
    ref = f" of request {request_id}" if request_id else ""
    budget = Budget(should_stop=should_stop, stopped=f"Cancelled by the user while downloading the result{ref}.")
    written = 0
    total: int | None = None
    attempt = 0
    try:
        with open(tmp, "xb") as out, budget.active():   # beside dest (same file system), honouring the umask
            while True:
                attempt += 1
                written_before = written
                headers = {"Accept-Encoding": "identity"}
                if written:
                    headers["Range"] = f"bytes={written}-"
                try:
                    budget.check()
                    response = open_stream(client, "GET", url, rule=rule, what=what_url, who=profile.name,
                                           bounds=bounds, headers=headers)
                    try:
                        if written and response.status_code == 416 and total is not None and written >= total:
                            break
                        if not response.is_success:
                            if response.status_code in RETRYABLE_STATUS and attempt < policy.attempts:
                                wait = policy.delay(attempt, retry_after_seconds(response))
                                response.close()
                                _pause(policy, wait, should_stop)
                                continue
                            raise error_for_response(response, profile=profile, what=what,
                                                     request_id=request_id, tries=attempt, bounds=bounds)
                        if response.status_code == 206 and written:
                            rng = _content_range(response.headers.get("content-range"))
                            if rng is None or rng[0] != written:
                                out.seek(0)
                                out.truncate()
                                written = 0
                                continue               # the server resumed elsewhere: start over without Range
                            total = rng[1] if rng[1] is not None else total
                        else:
                            if written:                   # the server ignored Range: start over
                                out.seek(0)
                                out.truncate()
                                written = 0
                            length = response.headers.get("content-length")
                            total = int(length) if length and length.isdigit() else None
                        if total is not None and total > max_bytes:
                            raise ServiceError(
                                f"The result{ref} is {total} bytes, above the {max_bytes}-byte limit for a download; "
                                f"refusing it. Raise the limit if this is expected.", request_id=request_id)
                        for chunk in response.iter_raw():
                            budget.check()
                            out.write(chunk)
                            written += len(chunk)
                            if written > max_bytes:
                                raise ServiceError(
                                    f"The result{ref} grew past the {max_bytes}-byte limit for a download; refusing it.",
                                    request_id=request_id)
                            if on_progress and total:
                                on_progress(min(written / total, 1.0))
                    finally:
                        response.close()
                    if total is not None and written < total:
                        raise httpx.RemoteProtocolError("the connection ended before the whole file arrived")
                    break
                except httpx.TransportError as exc:
                    if should_stop is not None and should_stop():
                        raise CancelledError(f"Cancelled by the user while downloading the result{ref}.") from None
                    if written > written_before:
                        attempt = 0                       # it was moving: a drop after progress is not a failure
                    if attempt >= policy.attempts:
                        raise TransientServiceError(
                            f"The download of the result{ref} kept failing ({describe_transport_error(exc)}) after "
                            f"{attempt} tries, {written} bytes in. Check the network and download it again; the "
                            f"result URL stays valid for a while.", request_id=request_id) from None
                    wait = policy.delay(attempt)
                    log.info("download dropped at %d bytes (%s); resuming in %.2f s", written, type(exc).__name__, wait)
                    _pause(policy, wait, should_stop)
            out.flush()
            os.fsync(out.fileno())
        if on_progress:
            on_progress(1.0)
        os.replace(tmp, dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)
