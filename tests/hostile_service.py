"""A hostile retake service for tests: a real HTTP server on loopback whose every answer the test chooses.

    with HostileService() as evil:
        evil.on("GET", "/fal-ai/ltx-2/requests/r1/status", Answer(200, gzip_bomb(256 * MiB), gzipped=True))
        ... point a client at evil.base_url ...
        evil.requests            # what arrived: (method, path with query, headers, body)

An `Answer` is bytes on the wire: a status, headers, and a body given whole or as chunks, each chunk sent
`delay` seconds after the last (a drip). `stall=True` sends the head and then nothing until the client
leaves. Routes match the path (without its query) exactly, else by the longest registered prefix ending
in `*`; a callable route gets the request and returns an Answer. Unmatched requests answer 404.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

__all__ = ["HostileService", "Answer", "Seen", "gzip_bomb", "json_answer", "sse", "peak_rss_growth", "MiB"]

MiB = 1024 * 1024


@dataclass
class Seen:
    """One request the hostile service received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What to put on the wire."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0                  # seconds before each chunk of the body
    stall: bool = False                 # send the head, then nothing at all
    gzipped: bool = False               # the body is already gzip: say so (Content-Encoding: gzip)
    length: bool = True                 # send Content-Length when the body is bytes


def json_answer(data: Any, status: int = 200, **kw) -> Answer:
    return Answer(status, json.dumps(data).encode(), **kw)


def sse(*events: Any, keepalives: int = 0) -> bytes:
    """A status stream: each event as `data: <json or text>`, with keep-alive comments before them."""
    out = b": keep-alive\n\n" * keepalives
    for event in events:
        text = event if isinstance(event, str) else json.dumps(event)
        out += f"data: {text}\n\n".encode()
    return out


_BOMBS: dict[tuple[int, bytes], bytes] = {}


def gzip_bomb(size: int, fill: bytes = b" ") -> bytes:
    """`size` bytes of `fill` gzipped (256 MiB of spaces is about 256 KiB); made once per size."""
    key = (size, fill)
    if key not in _BOMBS:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = fill * (MiB // len(fill))
        parts = [compressor.compress(block) for _ in range(size // len(block))]
        parts.append(compressor.flush())
        _BOMBS[key] = b"".join(parts)
    return _BOMBS[key]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service: "HostileService"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _any(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.service._record(seen)
        answer = self.service._answer_for(seen)
        try:
            self._send(answer)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Connection", "close")
        if answer.gzipped:
            self.send_header("Content-Encoding", "gzip")
        if isinstance(answer.body, (bytes, bytearray)) and answer.length and not answer.stall:
            self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        if self.command == "HEAD":
            return
        if answer.stall:
            while not self.service._stopping.wait(0.05):
                try:                               # nothing is sent; leave once the client has gone
                    self.connection.settimeout(0.01)
                    if self.connection.recv(1, 0x40) == b"":      # MSG_DONTWAIT: closed by the client
                        return
                except (BlockingIOError, TimeoutError, OSError):
                    continue
            return
        chunks = [answer.body] if isinstance(answer.body, (bytes, bytearray)) else answer.body
        for chunk in chunks:
            if answer.delay:
                if self.service._stopping.wait(answer.delay):
                    return
            if chunk:
                self.wfile.write(chunk)
                self.wfile.flush()


class HostileService:
    """The server; a context manager. `on(method, path, answer)` chooses an answer; `requests` lists arrivals."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Answer | Callable[[Seen], Answer]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Seen] = []
        handler = type("Handler", (_Handler,), {"service": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hostile-service", daemon=True)

    def on(self, method: str, path: str, answer: Answer | Callable[[Seen], Answer]) -> "HostileService":
        with self._lock:
            self._routes[(method.upper(), path)] = answer
        return self

    def url(self, path: str) -> str:
        return self.base_url + path

    def seen(self, path_start: str, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_start) and method in (None, r.method)]

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _answer_for(self, seen: Seen) -> Answer:
        path = seen.path.split("?", 1)[0]
        with self._lock:
            found = self._routes.get((seen.method, path))
            if found is None:
                prefixes = [(p, a) for (m, p), a in self._routes.items()
                            if m == seen.method and p.endswith("*") and path.startswith(p[:-1])]
                if prefixes:
                    found = max(prefixes, key=lambda pa: len(pa[0]))[1]
        if found is None:
            return json_answer({"detail": "Not found."}, 404)
        return found(seen) if callable(found) else found

    def start(self) -> "HostileService":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "HostileService":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def peak_rss_growth(action: Callable[[], Any]) -> tuple[Any, float, int | None]:
    """Run `action`; return (what it returned or raised, seconds it took, how far the process's peak RSS rose above
    its RSS before, in bytes). Linux only: the peak (VmHWM) is reset first by writing 5 to /proc/self/clear_refs;
    elsewhere the growth is None."""
    def field_kib(name: str) -> int:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith(name + ":"):
                return int(line.split()[1])
        raise KeyError(name)

    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        before = field_kib("VmRSS")
    except OSError:
        before = None
    began = time.monotonic()
    try:
        outcome: Any = action()
    except Exception as exc:  # noqa: BLE001 - the test looks at it
        outcome = exc
    took = time.monotonic() - began
    if before is None:
        return outcome, took, None
    return outcome, took, (field_kib("VmHWM") - before) * 1024
