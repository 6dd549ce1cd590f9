"""Reading what a service sends without trusting it: byte caps, deadlines, cancel between reads, checked redirects.

Every answer a service gives is read through here, so no answer can take more memory or time than its
`Bounds` allow, whatever it claims in its headers:

  read_capped      a body read as a stream and stopped at a cap, gzip/deflate inflated by us a slice at a time
                   (a gzip bomb never grows past the cap); between chunks the current `Budget` is checked
  answer           the capped body as an httpx.Response whose `.json()` raises ValueError for any bad JSON
                   (also for JSON nested too deeply to parse)
  sse_events       a status stream as httpx-sse events, each line and each event capped
  open_stream      one request, its redirects followed by hand: every hop's address is checked by the
                   `UrlRule` BEFORE anything connects to it, and past `max_redirects` hops it stops
  Budget           a deadline and a cancel (should_stop) for the reads of one operation, checked between
                   chunks and, with `guarded_transport`, inside every socket read (in short slices, so a
                   cancel is noticed while a server sends nothing at all, or drips one byte at a time)
  guarded_transport  an httpx transport whose connections resolve the host name, refuse a private,
                   link-local or metadata address (and loopback, for a remote service) before connecting,
                   and read in slices under the current Budget

Errors are the project's: ServiceError (and TransientServiceError for a deadline) with a sentence, and
CancelledError once should_stop() is true.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

import httpcore
import httpx
from httpx_sse import EventSource, ServerSentEvent

from ..errors import CancelledError, ServiceError, TransientServiceError, scrub

__all__ = [
    "Bounds",
    "DEFAULT_BOUNDS",
    "UrlRule",
    "Budget",
    "address_refusal",
    "is_loopback",
    "read_capped",
    "answer",
    "sse_events",
    "open_stream",
    "guarded_transport",
]

KiB, MiB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Bounds:
    """How much of a service's answers is read, and for how long. One object, handed to every client."""

    max_json_bytes: int = 4 * MiB        # a status, submit, result or upload answer (after inflating)
    max_error_bytes: int = 64 * KiB      # an error answer's body: read for its words, the rest left unread
    max_line_bytes: int = 64 * KiB       # one line of a status stream
    max_event_bytes: int = 1 * MiB       # one event of a status stream (its data lines together)
    max_redirects: int = 10              # hops followed for one request (browsers allow about 20)
    json_deadline: float = 60.0          # seconds for a whole JSON answer, first byte to last
    read_slice: float = 0.25             # a socket read waits at most this long before the Budget is checked
    allow_private_hosts: bool = False    # may a service's URLs point at private addresses (10/8, 192.168/16, ...)?
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


DEFAULT_BOUNDS = Bounds()

# Cloud metadata services: never fetched, whatever the settings (they hand out the machine's credentials).
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                             "instance-data.ec2.internal", "metadata.azure.com"})
_METADATA_IPS = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.123", "100.100.100.200", "fd00:ec2::254", "fd00:ec2::23"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")            # carrier-grade NAT: private in practice


def is_loopback(host: str | None) -> bool:
    """Is `host` this machine: localhost, 127.0.0.0/8 or ::1 (brackets allowed)?"""
    host = (host or "").strip().strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_refusal(host: str, *, loopback_ok: bool, private_ok: bool) -> str | None:
    """Why `host` (a name or an address) may not be connected to, or None when it may.

    Metadata and link-local addresses are always refused; loopback only when `loopback_ok` (the service
    itself is on this machine); private addresses only when `private_ok`. A name other than localhost and
    the metadata names passes here: `guarded_transport` checks what it resolves to."""
    name = (host or "").strip().strip("[]").lower().rstrip(".")
    if name in _METADATA_NAMES:
        return "a cloud metadata service"
    if name == "localhost" or name.endswith(".localhost"):
        return None if loopback_ok else "this machine (loopback)"
    try:
        ip = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_IPS:
        return "a cloud metadata service"
    if ip.is_loopback:
        return None if loopback_ok else "this machine (loopback)"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "a reserved address"
    if ip.is_private or ip in _SHARED:
        return None if private_ok else "a private network address"
    return None


@dataclass(frozen=True)
class UrlRule:
    """Which URLs a service may hand us (status, result, cancel, media, upload addresses, and every redirect)."""

    https_unless_loopback: bool = True   # plain http only to this machine
    loopback_ok: bool = True             # may point at this machine (true when the service itself is local)
    private_ok: bool = False             # may point at private network addresses (the allow_private_hosts setting)

    def check(self, url: str, what: str) -> str:
        """`url` when it obeys the rule; ServiceError (a sentence, the URL shown without its query) otherwise."""
        parts = urlsplit(url or "")
        shown = scrub(url or "", 120)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServiceError(f"{what} is not an http(s) URL ({shown!r}); refusing to fetch it.")
        if self.https_unless_loopback and parts.scheme != "https" and not is_loopback(parts.hostname):
            raise ServiceError(f"{what} is plain http to another machine ({shown!r}); refusing it: only https is "
                               f"accepted from a remote service (plain http only to 127.0.0.1, ::1 or localhost). "
                               f"Check the service's address in the settings.")
        why = address_refusal(parts.hostname, loopback_ok=self.loopback_ok, private_ok=self.private_ok)
        if why:
            raise ServiceError(self.refusal(what, shown, why))
        return url

    @staticmethod
    def refusal(what: str, shown: str, why: str) -> str:
        hint = (" If the service really lives on your private network, set allow_private_hosts "
                "(LTX_RETAKE_ALLOW_PRIVATE_HOSTS=1)." if why == "a private network address" else "")
        return (f"{what} points at {why} ({shown!r}); refusing to connect to it: a service's answers may not "
                f"send this program to addresses inside your network.{hint}")


# -- budgets: a deadline and a cancel for the reads of one operation --------------------------------------------------

_LOCAL = threading.local()


class Budget:
    """A deadline (on `clock`) and a cancel for the reads of one operation. `check()` raises when either is due.

    While `active()`, reads through `guarded_transport` check it between short slices, so it applies even
    to a server that sends nothing, or only the headers, or one byte at a time."""

    def __init__(self, *, should_stop: Callable[[], bool] | None = None, deadline: float | None = None,
                 clock: Callable[[], float] = time.monotonic, late: Callable[[], Exception] | None = None,
                 stopped: str = "Cancelled by the user."):
        self.should_stop = should_stop
        self.deadline = deadline
        self.clock = clock
        self._late = late
        self._stopped = stopped

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise CancelledError(self._stopped)
        if self.deadline is not None and self.clock() > self.deadline:
            raise self._late() if self._late else TransientServiceError("The service answered too slowly.")

    @contextlib.contextmanager
    def active(self) -> Iterator["Budget"]:
        stack = getattr(_LOCAL, "stack", None)
        if stack is None:
            stack = _LOCAL.stack = []
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()


def _current_budgets() -> list[Budget]:
    return list(getattr(_LOCAL, "stack", None) or ())


def _check_budgets() -> None:
    for budget in _current_budgets():
        budget.check()


# -- bounded bodies ------------------------------------------------------------------------------------------------------

class _Inflater:
    """Undoes a Content-Encoding a slice at a time: never more than asked for per call (gzip bombs stay small)."""

    def __init__(self, encoding: str, who: str):
        names = [e.strip().lower() for e in (encoding or "").split(",") if e.strip()]
        names = [n for n in names if n != "identity"]
        if len(names) > 1 or (names and names[0] not in ("gzip", "x-gzip", "deflate")):
            raise ServiceError(f"{who} answered in an encoding it was not asked for ({scrub(encoding, 40)}); "
                               f"the answer cannot be read.")
        self._name = names[0] if names else ""
        self._d = None
        if self._name in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._name == "deflate":
            self._d = zlib.decompressobj()
        self._raw_deflate_tried = False
        self._tail = b""

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to `room` bytes of what `data` (plus anything held back) inflates to; the rest is held back."""
        if self._d is None:
            return data
        try:
            out = self._d.decompress(self._tail + data, max(room, 1))
        except zlib.error:
            if self._name == "deflate" and not self._raw_deflate_tried:   # some servers send raw deflate
                self._raw_deflate_tried = True
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._d.decompress(self._tail + data, max(room, 1))
            else:
                raise ServiceError("The service's compressed answer is damaged; it cannot be read.") from None
        self._tail = self._d.unconsumed_tail
        return out

    @property
    def holding(self) -> bool:
        return bool(self._tail)


def _decoded(response: httpx.Response, who: str, limit: int | None, *, chunk: int = 64 * KiB,
             tick: Callable[[], None] | None = None) -> Iterator[bytes]:
    """The body's bytes, inflated, read as a stream; stops (ServiceError) once more than `limit` would be produced."""
    inflater = _Inflater(response.headers.get("content-encoding", ""), who)
    total = 0
    for raw in response.iter_raw():
        while True:
            if tick is not None:
                tick()
            _check_budgets()
            room = chunk if limit is None else min(chunk, limit - total + 1)
            piece = inflater.feed(raw, room)
            raw = b""
            total += len(piece)
            if limit is not None and total > limit:
                raise _TooLarge(total)
            if piece:
                yield piece
            if not inflater.holding:
                break


class _TooLarge(Exception):
    def __init__(self, seen: int):
        super().__init__(seen)
        self.seen = seen


def read_capped(response: httpx.Response, *, limit: int, who: str, what: str, truncate: bool = False,
                request_id: str | None = None) -> bytes:
    """The body of `response` (streamed, inflated by us), at most `limit` bytes.

    Past the cap: the first `limit` bytes when `truncate` (an error body read for its words), else a
    ServiceError that says so. A Content-Length above the cap is refused before reading."""
    held = getattr(response, "_content", None)
    if isinstance(held, bytes):                # already read (a response made in memory, as by MockTransport)
        if len(held) > limit and not truncate:
            raise _too_large(who, what, limit, request_id)
        return held[:limit]
    length = response.headers.get("content-length", "")
    encoded = response.headers.get("content-encoding", "").strip().lower() not in ("", "identity")
    if not truncate and not encoded and length.isdigit() and int(length) > limit:
        response.close()
        raise _too_large(who, what, limit, request_id)
    parts: list[bytes] = []
    size = 0
    try:
        for piece in _decoded(response, who, None if truncate else limit):
            if truncate and size + len(piece) >= limit:
                parts.append(piece[: limit - size])
                size = limit
                break
            parts.append(piece)
            size += len(piece)
    except _TooLarge:
        raise _too_large(who, what, limit, request_id) from None
    finally:
        response.close()
    return b"".join(parts)


def _too_large(who: str, what: str, limit: int, request_id: str | None) -> ServiceError:
    ref = f" (request id {request_id})" if request_id else ""
    return ServiceError(f"{who}'s answer when asked to {what}{ref} is larger than {_size(limit)}, far more than any "
                        f"such answer needs; it was not read. The service may be broken or not the service you "
                        f"meant: check its address, then try again.", request_id=request_id)


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n / KiB:g} KiB"


class _Answer(httpx.Response):
    """A response whose body was read within bounds; `.json()` raises ValueError for any JSON it cannot parse."""

    def json(self, **kwargs: Any) -> Any:
        try:
            return super().json(**kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply to read") from None
        except UnicodeDecodeError as exc:
            raise ValueError(str(exc)) from None


_DROP = ("content-encoding", "content-length", "transfer-encoding")


def answer(response: httpx.Response, body: bytes) -> httpx.Response:
    """`response` with `body` (already read, already inflated) as its content."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROP]
    out = _Answer(response.status_code, headers=headers, content=body, request=response.request,
                  extensions={k: v for k, v in response.extensions.items() if k != "network_stream"})
    return out


# -- Server-Sent Events ---------------------------------------------------------------------------------------------------

class _IterStream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def _capped_lines(chunks: Iterable[bytes], who: str, bounds: Bounds) -> Iterator[bytes]:
    """Pass the stream's bytes on, refusing a line longer than max_line_bytes or an event above max_event_bytes."""
    line = event = 0
    for chunk in chunks:
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            stop = len(chunk) if end < 0 else end
            size = (stop - start) - chunk.count(b"\r", start, stop)     # a CRLF line ends like a LF one
            line += size
            event += size
            if line > bounds.max_line_bytes:
                raise ServiceError(f"{who} sent a status stream line longer than {_size(bounds.max_line_bytes)}; "
                                   f"the stream was not read further.")
            if event > bounds.max_event_bytes:
                raise ServiceError(f"{who} sent a status stream event larger than {_size(bounds.max_event_bytes)}; "
                                   f"the stream was not read further.")
            if end < 0:
                break
            if line == 0:
                event = 0                                   # a blank line ends the event
            line = 0
            start = end + 1
        yield chunk


def sse_events(response: httpx.Response, *, who: str, bounds: Bounds = DEFAULT_BOUNDS,
               tick: Callable[[], None] | None = None) -> Iterator[ServerSentEvent]:
    """The events of a text/event-stream answer (httpx-sse does the parsing), read within `bounds`.

    `tick` is called for every chunk that arrives, keep-alive comments included (a follow deadline, a cancel)."""
    chunks = _capped_lines(_decoded(response, who, None, tick=tick), who, bounds)
    bounded = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_IterStream(chunks))
    yield from EventSource(bounded).iter_sse()


# -- requests, redirects followed by hand -----------------------------------------------------------------------------------

def open_stream(http: httpx.Client, method: str, url: str, *, rule: UrlRule, what: str, who: str,
                bounds: Bounds = DEFAULT_BOUNDS, follow: bool = True, **kwargs: Any) -> httpx.Response:
    """Send one request; its answer comes back unread (the caller reads it within bounds and closes it).

    With `follow`, redirects are followed one hop at a time: each hop's URL obeys `rule` before anything
    connects to it, and more than `max_redirects` hops is a ServiceError. Without it a redirect is returned
    as it is (a POST or PUT is never sent on to another address)."""
    request = http.build_request(method, url, **kwargs)
    hops = 0
    while True:
        rule.check(str(request.url), what if hops == 0 else f"{what} (after {hops} redirect{'s' if hops > 1 else ''})")
        _check_budgets()
        response = http.send(request, stream=True, follow_redirects=False)
        if not (follow and response.has_redirect_location and response.next_request is not None):
            return response
        request = response.next_request
        response.close()
        hops += 1
        if hops > bounds.max_redirects:
            raise ServiceError(f"{who} redirected the request to {what} more than {bounds.max_redirects} times "
                               f"(a loop, or a broken address); it was not followed further. Try again later; if "
                               f"it keeps happening, check the service's address in the settings.")


# -- a transport that checks where it connects and reads in slices ----------------------------------------------------------

class _GuardedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, slice_: float):
        self._inner = inner
        self._slice = slice_

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not _current_budgets():
            return self._inner.read(max_bytes, timeout)
        waited = 0.0
        while True:
            _check_budgets()
            step = self._slice if timeout is None else max(min(self._slice, timeout - waited), 0.001)
            try:
                return self._inner.read(max_bytes, step)
            except httpcore.ReadTimeout:
                waited += step
                if timeout is not None and waited >= timeout:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        return _GuardedStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._slice)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host, refuses addresses the rule forbids (before connecting), connects to a vetted address."""

    def __init__(self, rule: UrlRule, slice_: float):
        super().__init__()
        self._rule = rule
        self._slice = slice_

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in found))
        for address in addresses:
            why = address_refusal(address, loopback_ok=self._rule.loopback_ok, private_ok=self._rule.private_ok)
            if why:
                raise ServiceError(UrlRule.refusal(f"The address {host}", f"{host} is {address}", why))
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        stream = super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)
        return _GuardedStream(stream, self._slice)


def guarded_transport(rule: UrlRule, bounds: Bounds = DEFAULT_BOUNDS, **kwargs: Any) -> httpx.HTTPTransport:
    """An httpx transport for a service's client: connects only where `rule` allows (checked on the resolved
    addresses, so a name that leads to a private or metadata address is refused too), reads under Budgets."""
    transport = httpx.HTTPTransport(**kwargs)
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _GuardedBackend(rule, bounds.read_slice)
    return transport
