"""The outermost layer of the local service: names each request's route, logs and counts it, applies faults."""

from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Any, Awaitable, Callable

from .config import Fault
from .state import ServiceState

__all__ = ["FaultLayer", "classify"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FAL_REQUEST = re.compile(r"^/[^/]+/[^/]+/requests/[^/]+(/status|/status/stream|/cancel)?/?$")


def classify(method: str, path: str) -> tuple[str, str | None]:
    """(route, protocol) of a request: route is one of config.ROUTES, 'health' or 'other'."""
    if path.startswith("/v1/models/") and method == "POST":
        return "submit", "runcomfy"
    if path.startswith("/v1/requests/"):
        tail = path.rstrip("/").rsplit("/", 1)[-1]
        return {"status": "status", "result": "result", "cancel": "cancel"}.get(tail, "other"), "runcomfy"
    if path.startswith("/storage/auth/token"):
        return "token", "fal"
    if path.startswith(("/storage/upload/", "/storage/uploads/")):
        return "upload", "fal"
    if path.startswith("/run/") and method == "POST":
        return "submit", "fal"
    if path.startswith("/cdn/files/"):
        return ("download", None) if method in ("GET", "HEAD") else ("upload", "fal")
    if path.startswith(("/files/", "/results/")):
        return ("download", None) if method in ("GET", "HEAD") else ("upload", None)
    if path == "/upload":
        return "upload", None
    if path in ("/health", "/"):
        return "health", None
    match = _FAL_REQUEST.match(path)
    if match:
        tail = match.group(1) or ""
        if tail == "/status/stream":
            return "stream", "fal"
        if tail == "/status":
            return "status", "fal"
        if tail == "/cancel":
            return "cancel", "fal"
        return "result", "fal"
    if method == "POST" and path.count("/") >= 2:
        return "submit", "fal"
    return "other", None


class _Dropped(Exception):
    """The connection was cut on purpose."""


def _is_dropped(exc: BaseException) -> bool:
    if isinstance(exc, _Dropped):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_is_dropped(e) for e in exc.exceptions)
    return _is_dropped(exc.__cause__) if exc.__cause__ else False


async def _abort(send: Send, *, flush: bool = False) -> None:
    """Cut the client's connection (uvicorn's send is a bound method of its request cycle, which has the transport).

    `flush` lets what was already written go out first (a drop in the middle of a body); otherwise the
    connection is reset without a byte of answer.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:       # pragma: no cover - only under a server that hides its transport
        raise RuntimeError("the 'drop' fault needs uvicorn's HTTP/1.1 server")
    if flush:
        transport.close()
    else:
        transport.abort()
    for _ in range(200):         # until connection_lost has run, so the server does not try to answer
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0.005)


async def _drain(receive: Receive, stop_after: int | None = None) -> None:
    """Read the request's body to its end, or until `stop_after` bytes of it have arrived."""
    got = 0
    while True:
        message = await receive()
        got += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return
        if stop_after is not None and got >= stop_after:
            return


def _error_body(route: str, protocol: str | None, status: int, text: str) -> bytes:
    if protocol == "runcomfy":
        code = {404: 404001, 402: 400002, 401: 400004, 403: 400004}.get(status, status * 1000 + 1)
        return json.dumps({"error": {"code": code, "message": text}}).encode()
    return json.dumps({"detail": text}).encode()


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = (),
                  content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class FaultLayer:
    """ASGI middleware in front of the service's app. Faults act on the wire, so real clients see them."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], state: ServiceState):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        host = dict(scope.get("headers") or []).get(b"host")
        if host:
            with self.state.lock:
                self.state.own_netlocs.add(host.decode("latin-1"))
        route, protocol = classify(method, path)
        entry = self.state.record(method, path, route, protocol)

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        fault = self.state.take_fault(route, protocol)
        if fault is None:
            await self.app(scope, receive, logged_send)
            return
        entry["fault"] = fault.kind
        try:
            await self._apply(fault, route, protocol, scope, receive, send, logged_send)
        except Exception as exc:
            if not _is_dropped(exc):
                raise
            entry["status"] = entry["status"] or "dropped"

    async def _apply(self, fault: Fault, route: str, protocol: str | None, scope: Scope, receive: Receive,
                     raw_send: Send, send: Send) -> None:
        kind = fault.kind
        if kind.isdigit():
            await _drain(receive)
            headers = [(b"retry-after", str(int(round(fault.retry_after))).encode())] \
                if fault.retry_after is not None else []
            if protocol == "fal":
                headers.append((b"x-fal-error-type", b"injected_fault"))
            status = int(kind)
            await _answer(send, status, _error_body(route, protocol, status, f"Injected fault: HTTP {status}."),
                          headers)
            return
        if kind == "slow":
            delayed = False

            async def slow_send(message: Message) -> None:
                nonlocal delayed
                if message["type"] == "http.response.start" and not delayed:
                    delayed = True
                    await asyncio.sleep(fault.delay)
                await send(message)
            await self.app(scope, receive, slow_send)
            return
        if kind == "expired":
            await _drain(receive)
            if route == "download":
                await _answer(send, 410, b"This file has expired.", content_type=b"text/plain")
            else:
                text = "Request not found: it is unknown or has expired."
                await _answer(send, 404, _error_body(route, protocol, 404, text))
            return
        if kind == "corrupt":
            await _drain(receive)
            if route == "download":
                junk = random.Random(7).randbytes(64 * 1024)
                await _answer(send, 200, b"\x00\x00\x00\x18ftypmp42" + junk, content_type=b"video/mp4")
            else:
                await _answer(send, 200, b'{"video": {"url": ', content_type=b"application/json")
            return
        if kind == "drip":
            await self._drip(fault, scope, receive, raw_send, send)
            return
        if kind == "drop":
            if route in ("download", "stream"):
                await self._drop_mid_body(fault, route, scope, receive, raw_send, send)
            elif route == "upload":
                await _drain(receive, stop_after=self._upload_cut(fault, scope))
                await _abort(raw_send)
                raise _Dropped
            else:
                await _drain(receive)
                await _abort(raw_send)
                raise _Dropped
            return
        await self.app(scope, receive, send)       # pragma: no cover - kinds are checked by Fault

    async def _drip(self, fault: Fault, scope: Scope, receive: Receive, raw_send: Send, send: Send) -> None:
        """Let the app answer, but send its body one byte every `fault.delay` seconds (until the client leaves)."""
        cycle = getattr(raw_send, "__self__", None)

        async def dripping_send(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            body, more = message.get("body", b""), message.get("more_body", False)
            for i in range(len(body)):
                await asyncio.sleep(fault.delay)
                if getattr(cycle, "disconnected", False):
                    raise _Dropped
                await send({"type": "http.response.body", "body": body[i:i + 1],
                            "more_body": more or i < len(body) - 1})
            if not body:
                await send(message)
        await self.app(scope, receive, dripping_send)

    @staticmethod
    def _upload_cut(fault: Fault, scope: Scope) -> int:
        """How many bytes of an upload's body to read before the connection is cut."""
        if fault.after_bytes is not None:
            return fault.after_bytes
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        return int(length) // 2 if length.isdigit() else 0

    async def _drop_mid_body(self, fault: Fault, route: str, scope: Scope, receive: Receive, raw_send: Send,
                             send: Send) -> None:
        sent = 0
        limit: int | None = fault.after_bytes
        bodies = 0

        async def cutting_send(message: Message) -> None:
            nonlocal sent, limit, bodies
            if message["type"] == "http.response.start":
                if route == "download" and limit is None:
                    length = dict(message.get("headers") or []).get(b"content-length")
                    limit = int(length) // 2 if length else 0
                await send(message)
                return
            body = message.get("body", b"")
            if route == "stream" and limit is None:
                bodies += 1
                if bodies == 1 and body:
                    await send(message)
                    return
                if not body:
                    await send(message)
                    return
                await _abort(raw_send, flush=True)
                raise _Dropped
            assert limit is not None
            if sent + len(body) >= limit:
                part = body[: max(limit - sent, 0)]
                if part:
                    await send({"type": "http.response.body", "body": part, "more_body": True})
                await _abort(raw_send, flush=True)
                raise _Dropped
            sent += len(body)
            await send(message)

        await self.app(scope, receive, cutting_send)
