"""The local service's HTTP routes: fal's queue, run and storage, RunComfy's model API, plain uploads, file serving.

fal's own clients work against it (fal-client for Python, @fal-ai/client for JS) once their hosts point here:

  queue     POST /<model-id> (only the model ids in `config.models`), then the URLs its answer gives
  run       POST /run/<model-id> waits for the job and answers its result (fal.run's synchronous call)
  storage   POST /storage/auth/token, then POST <base_url>/files/upload (base_url is /cdn) or
            POST /files/upload (fal-client posts to its CDN_URL + /files/upload), multipart under /cdn;
            POST /storage/upload/initiate?storage_type=fal-cdn-v3|gcs answers {upload_url, file_url}: a PUT
            of the file to upload_url (no key: the URL is its own one-time permission) stores it at file_url
  RunComfy  /v1/models/<model-id>, /v1/requests/<id>/status|result|cancel

Every fal answer carries `x-fal-request-id`; unknown routes and model ids answer 404; keys are compared in
constant time and never quoted back.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterator
from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ...paths import safe_file_name
from .engine import PREVIEW_NOTE
from .faults import FaultLayer
from .state import Job, ServiceState

__all__ = ["build_app", "MODES"]

MODES = ("replace_audio", "replace_video", "replace_audio_and_video")
_FAL_REQUEST = re.compile(r"^/(?P<app>[^/]+/[^/]+)/requests/(?P<id>[^/]+)(?P<tail>/status|/status/stream|/cancel)?/?$")
_CDN_PART = re.compile(r"^/cdn/files/(?P<file>[^/]+)/(?P<name>[^/]+)/multipart/(?P<upload>[^/]+)/(?P<part>\d+|complete)$")
_CHUNK = 256 * 1024


def build_app(state: ServiceState):
    """The ASGI app: the routes below, wrapped in the fault layer."""
    service = _Service(state)
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", service.dispatch, methods=methods)])
    return FaultLayer(app, state)


def _same(given: str, wanted: str) -> bool:
    """Is the key given the one wanted? In constant time, whatever characters either holds."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), wanted.encode("utf-8", "surrogateescape"))


def _shown(text: str, limit: int = 80) -> str:
    """A client's text quoted in an answer: printable, bounded."""
    clean = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return clean + ("..." if len(text) > limit else "")


def _fal_error(status: int, detail: Any, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _runcomfy_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _validate(body: Any) -> tuple[dict, list[dict]]:
    """Check the retake inputs like the hosted API; returns (inputs with defaults, validation errors)."""
    problems: list[dict] = []

    def bad(field: str, msg: str, kind: str) -> None:
        problems.append({"loc": ["body", field], "msg": msg, "type": kind})

    if not isinstance(body, dict):
        return {}, [{"loc": ["body"], "msg": "The body must be a JSON object.", "type": "type_error.dict"}]
    inputs = {"start_time": 0.0, "duration": 5.0, "retake_mode": "replace_audio_and_video", **body}
    url = inputs.get("video_url")
    if not isinstance(url, str) or not url:
        bad("video_url", "Field required.", "missing")
    elif not re.match(r"^https?://", url):
        bad("video_url", "The video URL must be an http(s) URL.", "value_error.url")
    prompt = inputs.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        bad("prompt", "Field required.", "missing")
    elif len(prompt) > 5000:
        bad("prompt", "Ensure this value has at most 5000 characters.", "value_error.any_str.max_length")
    for name, low, high in (("start_time", 0.0, 20.0), ("duration", 2.0, 20.0)):
        value = inputs.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad(name, "Input should be a valid number.", "type_error.float")
        elif value < low:
            bad(name, f"Ensure this value is greater than or equal to {low:g}.", "value_error.number.not_ge")
        elif value > high:
            bad(name, f"Ensure this value is less than or equal to {high:g}.", "value_error.number.not_le")
    if inputs.get("retake_mode") not in MODES:
        bad("retake_mode", f"Input should be {', '.join(repr(m) for m in MODES)}.", "enum")
    return inputs, problems


class _Service:
    def __init__(self, state: ServiceState):
        self.state = state
        self.config = state.config

    def base(self, request: Request) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        response = await self._route(request, path, request.method)
        if not path.startswith("/v1/") and "x-fal-request-id" not in response.headers:
            response.headers["x-fal-request-id"] = str(uuid.uuid4())   # fal's clients tell its answers by it
        return response

    async def _route(self, request: Request, path: str, method: str) -> Response:
        if path in ("/", "/health"):
            return JSONResponse({"ok": True, "service": "ltx-retake local service", "engine": PREVIEW_NOTE})
        if path.startswith("/v1/"):
            return await self.runcomfy(request, path, method)
        if path.startswith("/storage/auth/token") and method == "POST":
            return await self.fal_token(request)
        if path == "/storage/upload/initiate" and method == "POST":
            return await self.fal_initiate(request)
        if path.startswith("/storage/uploads/") and method == "PUT":
            return await self.fal_signed_put(request, path[len("/storage/uploads/"):])
        if path.startswith("/cdn/files/"):
            if method in ("GET", "HEAD"):
                return self.serve_file(request, path)
            return await self.fal_upload(request, path, method)
        if path == "/files/upload" and method == "POST":        # fal-client: CDN_URL + /files/upload
            return await self.fal_upload(request, "/cdn/files/upload", method)
        if path.startswith(("/files/", "/results/")):
            if method in ("GET", "HEAD"):
                return self.serve_file(request, path)
            if method == "PUT" and path.startswith("/files/"):
                return await self.put_file(request, path)
            return Response("Method not allowed.", status_code=405)
        if path == "/upload" and method == "POST":
            return await self.plain_upload(request)
        match = _FAL_REQUEST.match(path)
        if match:
            return await self.fal_request(request, match["id"], match["tail"] or "", method)
        if path.startswith("/run/") and method == "POST":
            return await self.fal_run(request, path[len("/run/"):].strip("/"))
        if method == "POST":
            return await self.fal_submit(request, path.strip("/"))
        return _fal_error(404, "Not found.")

    def known_model(self, model: str) -> bool:
        """Is `model` one of the retake model ids this service answers to (its config's `models`)?"""
        return model.strip("/") in {m.strip("/") for m in self.config.models}

    # -- auth -----------------------------------------------------------------------------------------------------

    def _presented(self, request: Request, scheme: str) -> str | None:
        value = request.headers.get("authorization", "")
        prefix = scheme + " "
        return value[len(prefix):] if value.startswith(prefix) else None

    def fal_auth(self, request: Request) -> Response | None:
        wanted = self.config.require_key
        if wanted is None:
            return None
        got = self._presented(request, "Key")
        if got is None:
            return _fal_error(401, "No key was given: send the header 'Authorization: Key <FAL_KEY>'.")
        if not _same(got, wanted):
            return _fal_error(401, "Invalid key: the key was not recognised.")
        return None

    def upload_auth(self, request: Request) -> Response | None:
        """The plain upload and PUT /files take the key in either protocol's form (`Key <k>` or `Bearer <k>`)."""
        wanted = self.config.require_key
        if wanted is None:
            return None
        got = self._presented(request, "Key") or self._presented(request, "Bearer")
        if got is None:
            return JSONResponse({"detail": "No key was given: send the header 'Authorization: Bearer <key>' (or "
                                           "'Key <key>') with the key this service requires."}, status_code=401)
        if not _same(got, wanted):
            return JSONResponse({"detail": "The key was not recognised: send the key this service requires."},
                                status_code=401)
        return None

    def runcomfy_auth(self, request: Request) -> Response | None:
        wanted = self.config.require_key
        if wanted is None:
            return None
        got = self._presented(request, "Bearer")
        if got is None or not _same(got, wanted):
            return _runcomfy_error(401, 400004, "Invalid token: the token was not recognised.")
        return None

    # -- fal queue --------------------------------------------------------------------------------------------------

    async def _fal_new_job(self, request: Request, model: str) -> Job | Response:
        """Check the model, the key, the balance and the inputs of a fal submit (queue or run); the new job, or the
        answer that refuses it."""
        if not self.known_model(model):
            return _fal_error(404, f"Application {_shown(model)!r} not found: this service runs "
                                   f"{', '.join(sorted(self.config.models))}.")
        denied = self.fal_auth(request)
        if denied:
            return denied
        if self.config.no_balance:
            return _fal_error(403, "User is locked. Reason: Exhausted balance. Top up your balance at "
                                   "fal.ai/dashboard/billing.")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _fal_error(422, [{"loc": ["body"], "msg": "The body is not valid JSON.", "type": "json_invalid"}])
        inputs, problems = _validate(body)
        if problems:
            return _fal_error(422, problems)
        return self.state.new_job("fal", model.strip("/"), inputs, self.base(request))

    async def fal_submit(self, request: Request, model: str) -> Response:
        job = await self._fal_new_job(request, model)
        if isinstance(job, Response):
            return job
        urls = self._fal_urls(job)
        return JSONResponse({"request_id": job.request_id, "gateway_request_id": job.request_id,
                             "queue_position": self.state.queue_position(job), **urls},
                            headers={"x-fal-request-id": job.request_id})

    async def fal_run(self, request: Request, model: str) -> Response:
        """fal.run's synchronous call: the job is queued like any other, and the answer is its result."""
        job = await self._fal_new_job(request, model)
        if isinstance(job, Response):
            return job
        while True:
            with self.state.lock:
                done = job.state == "COMPLETED"
            if done:
                break
            if await request.is_disconnected():          # the caller left: nobody will take the result
                self.state.cancel(job)
                return Response(status_code=499)
            await asyncio.sleep(0.05)
        response = self._fal_result(job)
        response.headers["x-fal-request-id"] = job.request_id
        return response

    def _fal_urls(self, job: Job) -> dict:
        app = "/".join(job.model.split("/")[:2])
        base = f"{job.base_url}/{app}/requests/{job.request_id}"
        return {"status_url": f"{base}/status", "response_url": base, "cancel_url": f"{base}/cancel"}

    def _fal_status(self, job: Job, with_logs: bool) -> tuple[int, dict]:
        with self.state.lock:
            answer: dict[str, Any] = {"status": job.state, "request_id": job.request_id, **self._fal_urls(job)}
            if job.state == "IN_QUEUE":
                answer["queue_position"] = self.state.queue_position(job)
            answer["logs"] = [dict(entry) for entry in job.logs] if with_logs else None
            if job.state == "COMPLETED":
                if job.error:
                    answer["error"] = job.error
                    answer["error_type"] = job.error_type
                if job.started_at and job.finished_at:
                    answer["metrics"] = {"inference_time": round(job.finished_at - job.started_at, 3)}
            return (200 if job.state == "COMPLETED" else 202), answer

    async def fal_request(self, request: Request, request_id: str, tail: str, method: str) -> Response:
        denied = self.fal_auth(request)
        if denied:
            return denied
        job = self.state.job(request_id, "fal")
        if job is not None:
            answered = await self._fal_request(request, job, tail, method)
            answered.headers["x-fal-request-id"] = job.request_id
            return answered
        return await self._fal_request(request, None, tail, method)

    async def _fal_request(self, request: Request, job: Job | None, tail: str, method: str) -> Response:
        if tail == "/cancel":
            if method != "PUT":
                return _fal_error(405, "Use PUT to cancel.")
            if job is None:
                return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
            outcome = self.state.cancel(job)
            if outcome == "completed":
                return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)
        if method != "GET":
            return _fal_error(405, "Method not allowed.")
        if job is None:
            return _fal_error(404, "Request not found.")
        with_logs = request.query_params.get("logs") in ("1", "true")
        if tail == "/status":
            code, answer = self._fal_status(job, with_logs)
            return JSONResponse(answer, status_code=code)
        if tail == "/status/stream":
            return StreamingResponse(self._fal_stream(job, with_logs), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return self._fal_result(job)

    async def _fal_stream(self, job: Job, with_logs: bool) -> AsyncIterator[bytes]:
        seen = -1
        last_sent = time.monotonic()
        while True:
            with self.state.lock:
                version = job.version
            if version != seen:
                seen = version
                _, answer = self._fal_status(job, with_logs)
                yield f"data: {json.dumps(answer)}\n\n".encode()
                last_sent = time.monotonic()
                if answer["status"] == "COMPLETED":
                    return
            elif time.monotonic() - last_sent >= self.config.keepalive:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(0.02)

    def _fal_result(self, job: Job) -> Response:
        with self.state.lock:
            if job.state != "COMPLETED":
                return _fal_error(400, "Request is still in progress.")
            if job.error_type == "cancelled":
                return _fal_error(400, "The request was cancelled.")
            if job.error_type == "content_policy_violation":
                return _fal_error(422, [{"loc": ["body", "prompt"], "msg": job.error,
                                         "type": "content_policy_violation"}])
            if job.error and job.error_field:
                return _fal_error(422, [{"loc": ["body", job.error_field], "msg": job.error,
                                         "type": job.error_type or "value_error"}])
            if job.error:
                return _fal_error(500, job.error, headers={"X-Fal-Error-Type": job.error_type or "internal"})
            return JSONResponse(self._output(job))

    def _output(self, job: Job) -> dict:
        p = job.preview
        assert p is not None
        url = f"{job.base_url}/results/{job.request_id}/{quote(p.path.name)}"
        return {
            "video": {"url": url, "content_type": "video/mp4", "file_name": p.path.name,
                      "file_size": p.path.stat().st_size, "width": p.width, "height": p.height,
                      "fps": float(p.frame_rate), "duration": p.duration, "num_frames": p.frame_count},
            "ltx_retake_preview": {
                "note": PREVIEW_NOTE, "window_frames": list(p.window), "tone_hz": p.tone_hz,
                "retake_mode": job.inputs.get("retake_mode"), "fps_exact": f"{p.frame_rate.numerator}/"
                f"{p.frame_rate.denominator}", "audio_rate": p.audio_rate,
                "quirks": {"int_fps": self.config.int_fps, "snap_8k1": self.config.snap_8k1,
                           "audio_24k": self.config.audio_24k}},
        }

    # -- fal storage ------------------------------------------------------------------------------------------------

    async def fal_token(self, request: Request) -> Response:
        denied = self.fal_auth(request)
        if denied:
            return denied
        token = secrets.token_urlsafe(24)
        expires = time.time() + 3600
        with self.state.lock:
            self.state.tokens[token] = expires
        return JSONResponse({"token": token, "token_type": "Bearer", "base_url": f"{self.base(request)}/cdn",
                             "expires_at": datetime.fromtimestamp(expires, timezone.utc).isoformat()})

    async def fal_initiate(self, request: Request) -> Response:
        """`storage/upload/initiate`: a one-time upload URL (PUT, no key needed) and the URL the file will have."""
        denied = self.fal_auth(request)
        if denied:
            return denied
        kind = request.query_params.get("storage_type", "gcs")
        if kind not in ("fal-cdn-v3", "gcs"):
            return _fal_error(422, [{"loc": ["query", "storage_type"], "msg": "Use fal-cdn-v3 or gcs.",
                                     "type": "enum"}])
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if not isinstance(body, dict):
            body = {}
        name = _upload_name(str(body.get("file_name") or ""))
        file_id, token = uuid.uuid4().hex, secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.signed_uploads[token] = (file_id, name, time.time() + 3600)
        base = self.base(request)
        return JSONResponse({"upload_url": f"{base}/storage/uploads/{token}",
                             "file_url": f"{base}/cdn/files/{file_id}/{quote(name)}"})

    async def fal_signed_put(self, request: Request, token: str) -> Response:
        """The PUT to an upload URL `fal_initiate` handed out: stores the file once, then the URL is spent."""
        with self.state.lock:
            known = self.state.signed_uploads.get(token)
        if known is None or known[2] < time.time():
            return _fal_error(403, "This upload URL is unknown, used or expired; initiate the upload again.")
        file_id, name, _ = known
        if not await self._receive_to(request, self.state.root / "cdn" / file_id / name):
            return _fal_error(413, "The file is too large.")
        with self.state.lock:
            self.state.signed_uploads.pop(token, None)
        return Response(status_code=200)

    def _token_ok(self, request: Request) -> bool:
        token = self._presented(request, "Bearer")
        with self.state.lock:
            expires = self.state.tokens.get(token or "")
        return expires is not None and expires > time.time()

    async def fal_upload(self, request: Request, path: str, method: str) -> Response:
        if not self._token_ok(request):
            return _fal_error(401, "Missing or expired storage token.")
        name = _upload_name(request.headers.get("x-fal-file-name", ""))
        if path == "/cdn/files/upload" and method == "POST":
            file_id = uuid.uuid4().hex
            dest = self.state.root / "cdn" / file_id / name
            if not await self._receive_to(request, dest):
                return _fal_error(413, "The file is too large.")
            return JSONResponse({"access_url": f"{self.base(request)}/cdn/files/{file_id}/{quote(name)}"})
        if path == "/cdn/files/upload/multipart" and method == "POST":
            file_id, upload_id = uuid.uuid4().hex, uuid.uuid4().hex
            with self.state.lock:
                self.state.multipart[upload_id] = (file_id, name)
            return JSONResponse({"access_url": f"{self.base(request)}/cdn/files/{file_id}/{quote(name)}",
                                 "uploadId": upload_id})
        match = _CDN_PART.match(path)
        if not match:
            return _fal_error(404, "Not found.")
        with self.state.lock:
            known = self.state.multipart.get(match["upload"])
        if known is None or known[0] != match["file"]:
            return _fal_error(404, "Unknown upload id.")
        parts_dir = self.state.root / "parts" / match["upload"]
        if match["part"] != "complete":
            if method != "PUT":
                return _fal_error(405, "Use PUT for a part.")
            part = parts_dir / match["part"]
            if not await self._receive_to(request, part):
                return _fal_error(413, "The part is too large.")
            # Hashing a 10 MiB part takes a while: off the event loop, so status and stream clients keep going.
            etag = '"' + await run_in_threadpool(self._digest, part) + '"'
            return Response(status_code=200, headers={"ETag": etag})
        if method != "POST":
            return _fal_error(405, "Use POST to complete.")
        try:
            parts = (await request.json())["parts"]
            order = sorted((int(p["partNumber"]), str(p["etag"])) for p in parts)
        except (ValueError, KeyError, TypeError):
            return _fal_error(422, [{"loc": ["body", "parts"], "msg": "A list of {partNumber, etag} is needed.",
                                     "type": "value_error"}])
        if [n for n, _ in order] != list(range(1, len(order) + 1)):
            return _fal_error(422, [{"loc": ["body", "parts"], "msg": "Parts must be numbered 1..n.",
                                     "type": "value_error"}])
        file_id, name = known
        dest = self.state.root / "cdn" / file_id / name
        bad = await run_in_threadpool(self._join_parts, parts_dir, order, dest)
        if bad is not None:
            return _fal_error(422, [{"loc": ["body", "parts", bad], "msg": "Part missing or ETag mismatch.",
                                     "type": "value_error"}])
        with self.state.lock:
            self.state.multipart.pop(match["upload"], None)
        return JSONResponse({"access_url": f"{self.base(request)}/cdn/files/{file_id}/{quote(name)}"})

    def _digest(self, part: Path) -> str:
        return (self.config.part_digest or _md5)(part)

    def _join_parts(self, parts_dir: Path, order: list[tuple[int, str]], dest: Path) -> int | None:
        """Check every part's ETag, join the parts into `dest` and remove them (in a worker thread: it reads and
        writes the whole file). Returns the number of a missing or mismatched part, or None when joined."""
        for number, etag in order:
            part = parts_dir / str(number)
            if not part.is_file() or etag.strip('"') != self._digest(part):
                return number
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.joining")
        try:
            with open(tmp, "wb") as out:
                for number, _ in order:
                    with open(parts_dir / str(number), "rb") as src:
                        while chunk := src.read(_CHUNK):
                            out.write(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(parts_dir, ignore_errors=True)
        return None

    # -- plain uploads ------------------------------------------------------------------------------------------------

    async def plain_upload(self, request: Request) -> Response:
        denied = self.upload_auth(request)
        if denied:
            return denied
        name = _upload_name(request.headers.get("x-file-name", ""))
        file_id = uuid.uuid4().hex
        if not await self._receive_to(request, self.state.root / "files" / file_id / name):
            return JSONResponse({"detail": "The file is too large."}, status_code=413)
        return JSONResponse({"url": f"{self.base(request)}/files/{file_id}/{quote(name)}"})

    async def put_file(self, request: Request, path: str) -> Response:
        denied = self.upload_auth(request)
        if denied:
            return denied
        dest = self.state.stored_path(path)
        if dest is None:
            return Response("Bad file path.", status_code=400)
        if not await self._receive_to(request, dest):
            return Response("The file is too large.", status_code=413)
        return Response(status_code=201)

    async def _receive_to(self, request: Request, dest: Path) -> bool:
        """Stream the request body to `dest` (atomically). False when it passed the size limit."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:6]}.part")
        size = 0
        try:
            with open(tmp, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.config.max_upload_bytes:
                        return False
                    out.write(chunk)
            os.replace(tmp, dest)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    # -- serving files ----------------------------------------------------------------------------------------------

    def serve_file(self, request: Request, path: str) -> Response:
        file = self.state.stored_path(path)
        if file is None or not file.is_file():
            return Response("No such file.", status_code=404, media_type="text/plain")
        size = file.stat().st_size
        media_type = "video/mp4" if file.suffix.lower() in (".mp4", ".m4v") else (
            "video/quicktime" if file.suffix.lower() == ".mov" else "application/octet-stream")
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{int(file.stat().st_mtime_ns)}-{size}"'}
        start, end, status = 0, size - 1, 200
        wanted = request.headers.get("range")
        if wanted:
            match = re.match(r"^\s*bytes=(\d*)-(\d*)\s*$", wanted)
            if not match or (not match[1] and not match[2]):
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            if match[1]:
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
            else:
                start = max(size - int(match[2]), 0)
            if start >= size or start > end:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1 if size else 0
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)
        return StreamingResponse(_read(file, start, length), status_code=status, headers=headers,
                                 media_type=media_type)

    # -- RunComfy ----------------------------------------------------------------------------------------------------

    async def runcomfy(self, request: Request, path: str, method: str) -> Response:
        denied = self.runcomfy_auth(request)
        if denied:
            return denied
        if path.startswith("/v1/models/") and method == "POST":
            return await self.runcomfy_submit(request, path[len("/v1/models/"):].strip("/"))
        match = re.match(r"^/v1/requests/([^/]+)/(status|result|cancel)/?$", path)
        if not match:
            return _runcomfy_error(404, 404000, "Not found.")
        request_id, what = match[1], match[2]
        if not re.fullmatch(r"[0-9a-fA-F-]{8,64}", request_id):
            return _runcomfy_error(400, 400001, f"Invalid request id {_shown(request_id)!r}.")
        job = self.state.job(request_id, "runcomfy")
        if job is None:
            return _runcomfy_error(404, 404001, "Request not found or expired.")
        if what == "cancel":
            if method != "POST":
                return _runcomfy_error(405, 405000, "Use POST to cancel.")
            outcome = self.state.cancel(job)
            return JSONResponse({"request_id": job.request_id,
                                 "outcome": "cancelled" if outcome == "cancelled" else "not_cancellable"},
                                status_code=202)
        if method != "GET":
            return _runcomfy_error(405, 405000, "Use GET.")
        with self.state.lock:
            if what == "status":
                status = {"IN_QUEUE": "in_queue", "IN_PROGRESS": "in_progress"}.get(job.state, "completed")
                if job.error_type == "cancelled":
                    status = "cancelled"
                answer: dict[str, Any] = {"request_id": job.request_id, "status": status}
                if status == "in_queue":
                    answer["queue_position"] = self.state.queue_position(job)
                return JSONResponse(answer)
            answer = {"request_id": job.request_id, "created_at": _iso(job.submitted_at),
                      "finished_at": _iso(job.finished_at) if job.finished_at else None}
            if job.state != "COMPLETED":
                answer["status"] = "in_queue" if job.state == "IN_QUEUE" else "in_progress"
            elif job.error_type == "cancelled":
                answer["status"] = "cancelled"
            elif job.error:
                answer["status"] = "failed"
                answer["error"] = {"type": job.error_type, "message": job.error}
            else:
                answer["status"] = "succeeded"
                video = self._output(job)["video"]["url"]
                answer["output"] = {"videos": [video]} if self.config.runcomfy_videos_list else {"video": video}
            return JSONResponse(answer)

    async def runcomfy_submit(self, request: Request, model: str) -> Response:
        if not self.known_model(model):
            return _runcomfy_error(404, 404000, f"Model {_shown(model)!r} not found.")
        if self.config.no_balance:
            return _runcomfy_error(400, 400002, "Insufficient balance. Add credits to your RunComfy account.")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        inputs, problems = _validate(body)
        if problems:
            return JSONResponse({"detail": problems}, status_code=422)
        job = self.state.new_job("runcomfy", model, inputs, self.base(request))
        base = f"{job.base_url}/v1/requests/{job.request_id}"
        return JSONResponse({"request_id": job.request_id, "status_url": f"{base}/status",
                             "result_url": f"{base}/result", "cancel_url": f"{base}/cancel"})


def _upload_name(header: str) -> str:
    """The file name a client sent (percent-encoded, maybe hostile) as a safe name under the storage folder."""
    return safe_file_name(unquote(header or ""), "upload.bin")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        left = length
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
