"""What the local service remembers: jobs, stored files, counters, the request log, faults; and the job worker."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from ...priority import background_priority
from ...errors import RetakeError
from ...paths import safe_file_name
from ..http_policy import RetryPolicy, download
from .config import Fault, LocalServiceConfig
from .engine import PREVIEW_NOTE, PreviewResult, render_preview

__all__ = ["Job", "ServiceState"]

log = logging.getLogger(__name__)


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Job:
    """One submitted retake, in either protocol."""

    request_id: str
    protocol: str                      # "fal" | "runcomfy"
    model: str
    inputs: dict
    base_url: str
    submitted_at: float = field(default_factory=time.time)
    state: str = "IN_QUEUE"            # IN_QUEUE | IN_PROGRESS | COMPLETED
    cancelled: bool = False
    error: str | None = None
    error_type: str | None = None
    error_field: str | None = None     # the input an input error is about
    logs: list[dict] = field(default_factory=list)
    preview: PreviewResult | None = None
    started_at: float | None = None
    finished_at: float | None = None
    version: int = 0

    def log(self, message: str, level: str = "INFO") -> None:
        self.logs.append({"message": message, "level": level, "source": "user", "timestamp": _stamp()})
        self.version += 1


class ServiceState:
    """Shared by the HTTP handlers (event loop thread) and the job worker (its own thread); guarded by `lock`."""

    def __init__(self, config: LocalServiceConfig, root: Path):
        self.config = config
        self.root = root
        for sub in ("files", "cdn", "parts", "results", "fetched"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.pending: list[str] = []
        self.faults: list[Fault] = list(config.faults)
        self.fault_random = random.Random(config.fault_seed)      # the draws of rate faults, under `lock`
        self.tokens: dict[str, float] = {}
        self.multipart: dict[str, tuple[str, str]] = {}          # uploadId -> (file id, name)
        self.signed_uploads: dict[str, tuple[str, str, float]] = {}   # one-time PUT token -> (file id, name, expires)
        self.submits: Counter[str] = Counter()                   # every submit that arrived, per protocol
        self.jobs_created: Counter[str] = Counter()
        self.requests: deque[dict] = deque(maxlen=max(1, config.request_log_limit))   # the latest requests
        self.base_url = ""
        self.own_netlocs: set[str] = set()
        self._work: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="ltx-retake-local-engine", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self, base_url: str) -> None:
        self.set_base_url(base_url)
        self._worker.start()

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        netloc = urlsplit(self.base_url).netloc
        self.own_netlocs.add(netloc)
        host, _, port = netloc.rpartition(":")
        if host in ("127.0.0.1", "localhost", "0.0.0.0", "[::1]"):
            self.own_netlocs.update({f"127.0.0.1:{port}", f"localhost:{port}"})

    def stop(self) -> None:
        self._stop.set()
        self._work.put(None)
        if self._worker.is_alive():
            self._worker.join(timeout=30)

    # -- faults and bookkeeping ---------------------------------------------------------------------------------------

    def take_fault(self, route: str, protocol: str | None) -> Fault | None:
        """The rule that faults this request, if any (see Fault: count rules, then rate rules' shares, in order)."""
        with self.lock:
            draw: float | None = None
            reach = 0.0
            for fault in self.faults:
                if fault.used_up or fault.route != route or fault.protocol not in (None, protocol):
                    continue
                if fault.rate is not None:
                    if draw is None:
                        draw = self.fault_random.random()
                    reach += fault.rate
                    if draw >= reach:
                        continue
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def record(self, method: str, path: str, route: str, protocol: str | None) -> dict:
        entry = {"method": method, "path": path, "route": route, "protocol": protocol, "status": None,
                 "fault": None, "time": time.time()}
        with self.lock:
            self.requests.append(entry)
            if route == "submit" and protocol:
                self.submits[protocol] += 1
        return entry

    # -- jobs -------------------------------------------------------------------------------------------------------

    def new_job(self, protocol: str, model: str, inputs: dict, base_url: str) -> Job:
        job = Job(request_id=str(uuid.uuid4()), protocol=protocol, model=model, inputs=inputs, base_url=base_url)
        job.log(f"Queued on the ltx-retake local service. {PREVIEW_NOTE}")
        with self.lock:
            self._forget_finished_jobs()
            self.jobs[job.request_id] = job
            self.pending.append(job.request_id)
            self.jobs_created[protocol] += 1
        self._work.put(job.request_id)
        return job

    def _forget_finished_jobs(self) -> None:
        """Drop jobs finished longer than `finished_job_ttl` ago (their files stay), so memory stays bounded."""
        cutoff = time.time() - self.config.finished_job_ttl
        with self.lock:
            old = [rid for rid, job in self.jobs.items()
                   if job.state == "COMPLETED" and job.finished_at is not None and job.finished_at <= cutoff]
            for rid in old:
                del self.jobs[rid]
            expired = [token for token, expires in self.tokens.items() if expires <= time.time()]
            for token in expired:
                del self.tokens[token]
            for token in [t for t, (_, _, expires) in self.signed_uploads.items() if expires <= time.time()]:
                del self.signed_uploads[token]

    def job(self, request_id: str, protocol: str | None = None) -> Job | None:
        with self.lock:
            job = self.jobs.get(request_id)
        if job is None or (protocol and job.protocol != protocol):
            return None
        return job

    def queue_position(self, job: Job) -> int | None:
        with self.lock:
            return self.pending.index(job.request_id) if job.request_id in self.pending else None

    def cancel(self, job: Job) -> str:
        """'cancelled' (it was queued), 'requested' (it is running), 'completed' (too late)."""
        with self.lock:
            if job.state == "COMPLETED":
                return "completed"
            job.cancelled = True
            if job.state == "IN_QUEUE":
                self._finish(job, error="The request was cancelled.", error_type="cancelled")
                return "cancelled"
            job.log("Cancellation requested.")
            return "requested"

    def _finish(self, job: Job, *, error: str | None = None, error_type: str | None = None,
                error_field: str | None = None) -> None:
        with self.lock:
            if job.request_id in self.pending:
                self.pending.remove(job.request_id)
            job.error, job.error_type, job.error_field = error, error_type, error_field
            job.state = "COMPLETED"
            job.finished_at = time.time()
            job.log("Failed: " + error if error else "Done.", "ERROR" if error else "INFO")

    # -- the worker ---------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        background_priority()
        while not self._stop.is_set():
            request_id = self._work.get()
            if request_id is None:
                return
            job = self.job(request_id)
            if job is None:
                continue
            try:
                self._process(job)
            except Exception as exc:  # noqa: BLE001 - a broken job must not stop the worker
                log.exception("local service job %s crashed", request_id)
                if job.state != "COMPLETED":
                    self._finish(job, error=f"The preview engine crashed ({type(exc).__name__}).",
                                 error_type="runner_disconnected")

    def _process(self, job: Job) -> None:
        wait = job.submitted_at + self.config.queue_delay - time.time()
        if wait > 0 and self._stop.wait(wait):
            return
        with self.lock:
            if job.state == "COMPLETED":
                return
            self.pending.remove(job.request_id)
            job.state = "IN_PROGRESS"
            job.started_at = time.time()
            job.log("Rendering the offline preview (not LTX-2): the window is marked, not regenerated.")
        began = time.monotonic()
        error: tuple[str, str, str | None] | None = None
        prompt = str(job.inputs.get("prompt", ""))
        try:
            if self.config.refuse_word and self.config.refuse_word in prompt:
                error = ("The content could not be processed because it contained material flagged by a "
                         "content checker.", "content_policy_violation", "prompt")
            elif self.config.fail_word and self.config.fail_word in prompt:
                error = ("The preview engine was told to fail by the prompt.", "runner_disconnected", None)
            else:
                source = self._input_file(job)
                out = self.root / "results" / job.request_id / f"retake-{job.request_id[:8]}.mp4"
                job.preview = render_preview(
                    source, out, prompt=prompt, start_time=float(job.inputs.get("start_time", 0.0)),
                    duration=float(job.inputs.get("duration", 5.0)),
                    mode=str(job.inputs.get("retake_mode", "replace_audio_and_video")),
                    int_fps=self.config.int_fps, snap_8k1=self.config.snap_8k1, audio_24k=self.config.audio_24k,
                    crf=self.config.crf, preset=self.config.preset)
                with self.lock:
                    p = job.preview
                    job.log(f"Rendered {p.frame_count} frames at {p.width}x{p.height}, {float(p.frame_rate):.3f} "
                            f"fps; marked frames {p.window[0]}..{p.window[1] - 1}.")
        except RetakeError as exc:
            error = (f"Could not read the video at video_url: {exc}", "file_download_error", "video_url")
        left = self.config.processing_delay - (time.monotonic() - began)
        if left > 0 and self._stop.wait(left):
            return
        with self.lock:
            if job.cancelled:
                self._finish(job, error="The request was cancelled.", error_type="cancelled")
            elif error:
                self._finish(job, error=error[0], error_type=error[1], error_field=error[2])
            else:
                self._finish(job)

    def _input_file(self, job: Job) -> Path:
        url = str(job.inputs["video_url"])
        own = self.own_file(url)
        if own is not None:
            if not own.is_file():
                raise RetakeError("the local service has no such file (was it uploaded here?)")
            return own
        suffix = safe_file_name(Path(unquote(urlsplit(url).path)).suffix.lower(), "mp4", limit=10)
        dest = self.root / "fetched" / f"{job.request_id}.{suffix}"
        with httpx.Client(timeout=self.config.fetch_timeout) as client:
            # like the hosted service, it fetches plain http inputs too: no key goes with them
            download(client, url, dest, max_bytes=self.config.max_upload_bytes, https_unless_loopback=False,
                     policy=RetryPolicy(attempts=2, base_delay=0.2, sleep=self._stop.wait))
        return dest

    def own_file(self, url: str) -> Path | None:
        """The stored file behind one of this service's own URLs, or None for a foreign URL."""
        parts = urlsplit(url)
        if parts.netloc not in self.own_netlocs:
            return None
        return self.stored_path(parts.path)

    def stored_path(self, url_path: str) -> Path | None:
        """Map `/files/...`, `/cdn/files/...` or `/results/...` to a file under the storage folder."""
        for prefix, folder in (("/cdn/files/", "cdn"), ("/files/", "files"), ("/results/", "results")):
            if url_path.startswith(prefix):
                pieces = [unquote(p) for p in url_path[len(prefix):].split("/") if p]
                if not pieces or any(p in (".", "..") or "\\" in p for p in pieces):
                    return None
                base = (self.root / folder).resolve()
                path = base.joinpath(*pieces).resolve()
                return path if base in path.parents else None
        return None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"submits": dict(self.submits), "jobs_created": dict(self.jobs_created),
                    "requests": len(self.requests), "jobs": len(self.jobs)}
