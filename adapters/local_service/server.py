"""Runs the local service: `LocalService(config).start()` in a background thread on a free loopback port, or `serve()`."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Callable

import uvicorn

from ...errors import InputError, ServiceError
from ...priority import background_priority
from ...scratch import scratch_dir
from ..http_policy import is_loopback
from .app import build_app
from .config import Fault, LocalServiceConfig
from .state import ServiceState

__all__ = ["LocalService", "serve"]

log = logging.getLogger(__name__)


def _uvicorn_config(app, host: str, port: int, *, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, http="h11", lifespan="off", ws="none",
                          log_level="warning" if quiet else "info", access_log=not quiet,
                          timeout_graceful_shutdown=1, timeout_keep_alive=5)


def _refuse_open_exposure(host: str, config: LocalServiceConfig) -> None:
    """An address other machines can reach needs a key: the service stores uploads and fetches any URL it is given."""
    if not is_loopback(host) and not config.require_key:
        where = host or "every network interface"
        raise InputError(f"The local retake service will not listen on {where} without a key: anyone on the "
                         "network could upload files to it and make this machine fetch any URL. Bind 127.0.0.1 "
                         "(the default) to keep it on this machine, or set a key (require_key) that every client "
                         "must send.")


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port); ServiceError with the reason when the address cannot be had."""
    sock = None
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets that say they are TCP; without
        # it an answer's head and body go out in two writes and the second waits for a delayed ACK (~40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return sock
    except OSError as exc:
        if sock is not None:
            sock.close()
        reason = exc.strerror or str(exc)
        raise ServiceError(f"The local retake service cannot listen on {host}:{port} ({reason}): choose another "
                           "port or address, or stop the program that holds it.") from None


class LocalService:
    """The embedded retake service over real HTTP on 127.0.0.1. Use `with LocalService(cfg) as svc:`.

    After `start()`: `base_url` (also the fal queue URL, the fal REST URL and the RunComfy URL),
    `submits["fal" | "runcomfy"]` (every submit that arrived, faulted or not), `requests` (the request
    log), `jobs`, `add_fault()`.
    """

    def __init__(self, config: LocalServiceConfig | None = None, *, host: str = "127.0.0.1",
                 start_timeout: float = 10.0,
                 server_factory: Callable[[uvicorn.Config], uvicorn.Server] = uvicorn.Server):
        self.config = config or LocalServiceConfig()
        self.host = host
        self.start_timeout = start_timeout
        self._server_factory = server_factory          # a seam: tests hand in a server that cannot start
        self.base_url = ""
        self._owned_dir: Path | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._crash: BaseException | None = None
        self.state: ServiceState | None = None

    def start(self) -> str:
        """Start serving; returns the base URL (`http://127.0.0.1:<free port>`). ServiceError if it cannot."""
        if self._thread is not None:
            return self.base_url
        _refuse_open_exposure(self.host, self.config)
        sock = _listen(self.host, 0)
        port = sock.getsockname()[1]
        root = self.config.storage_dir
        if root is None:
            self._owned_dir = scratch_dir("local")   # swept on the next start if this process is killed
            root = self._owned_dir
        self.state = ServiceState(self.config, Path(root))
        self.base_url = self.config.public_url.rstrip("/") if self.config.public_url else f"http://{self.host}:{port}"
        self._server = self._server_factory(_uvicorn_config(build_app(self.state), self.host, port, quiet=True))
        self.state.start(self.base_url)
        self._crash = None
        self._thread = threading.Thread(target=self._serve, args=(self._server, sock),
                                        name="ltx-retake-local-service", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                crash = self._crash
                self.stop()
                sock.close()
                why = (f"it failed: {type(crash).__name__}: {crash}" if crash is not None
                       else f"it did not answer within {self.start_timeout:g} s")
                raise ServiceError(f"The local retake service could not start on {self.host}:{port} ({why}). "
                                   "Try again; if it keeps failing, check that this machine allows programs to "
                                   "listen on that address.")
            time.sleep(0.005)
        return self.base_url

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        background_priority()  # in the panel's process the service is background work, like the jobs
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._crash = exc

    def stop(self) -> None:
        """Stop serving, stop the worker, remove the temp storage folder (if it made one)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self.state is not None:
            self.state.stop()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None
        self._thread = None
        self._server = None

    def __enter__(self) -> "LocalService":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests look at ------------------------------------------------------------------------------------------

    @property
    def storage_dir(self) -> Path:
        assert self.state is not None, "start() the service first"
        return self.state.root

    @property
    def submits(self) -> dict[str, int]:
        assert self.state is not None, "start() the service first"
        with self.state.lock:
            return {"fal": self.state.submits["fal"], "runcomfy": self.state.submits["runcomfy"]}

    @property
    def requests(self) -> list[dict]:
        assert self.state is not None, "start() the service first"
        with self.state.lock:
            return [dict(entry) for entry in self.state.requests]

    @property
    def jobs(self) -> dict:
        assert self.state is not None, "start() the service first"
        with self.state.lock:
            return dict(self.state.jobs)

    def add_fault(self, fault: Fault) -> None:
        """Add a fault rule while running (after the ones already queued)."""
        assert self.state is not None, "start() the service first"
        self.state.add_fault(fault)

    def requests_to(self, route: str, protocol: str | None = None) -> list[dict]:
        """The logged requests of one route (and protocol)."""
        return [r for r in self.requests if r["route"] == route and (protocol is None or r["protocol"] == protocol)]


def serve(host: str = "127.0.0.1", port: int = 8765, config: LocalServiceConfig | None = None) -> None:
    """Serve in the foreground until interrupted (for `ltx-retake serve`).

    InputError on an address other machines can reach without `config.require_key`; ServiceError when the
    address cannot be bound (port in use, no such address).
    """
    config = config or LocalServiceConfig()
    _refuse_open_exposure(host, config)
    sock = _listen(host, port)
    port = sock.getsockname()[1]
    owned = None
    root = config.storage_dir
    if root is None:
        owned = scratch_dir("local")
        root = owned
    state = ServiceState(config, Path(root))
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    state.start(config.public_url or f"http://{shown}:{port}")
    log.info("ltx-retake local service on http://%s:%d (storage: %s)", host, port, root)
    try:
        uvicorn.Server(_uvicorn_config(build_app(state), host, port, quiet=False)).run(sockets=[sock])
    finally:
        sock.close()
        state.stop()
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
