"""Opens a retake service and the file host its inputs need, per provider: fal, RunComfy, or the local service."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

import httpx

from ..errors import AuthError, InputError
from ..ports import FileHost, RetakeService
from ..settings import Secret, Settings
from .fal import FalClient, FalStorage
from .hosting import LoopbackUpload, UserUrlHost
from .http_policy import is_loopback
from .runcomfy import RunComfyClient

__all__ = ["OpenService", "open_service", "PROVIDERS", "http_client"]

PROVIDERS = ("local", "fal", "runcomfy")
MiB = 1024 * 1024


@dataclass
class OpenService:
    """A service and its file host, ready to use; `base_url` is where the service listens."""

    service: RetakeService
    host: FileHost
    base_url: str
    local: object | None = None   # the LocalService, when the provider is local


def http_client() -> httpx.Client:
    """The one HTTP client a run shares: generous read timeouts for uploads, redirects followed for result CDNs."""
    return httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=True,
                        headers={"User-Agent": "ltx-retake"})


@contextlib.contextmanager
def open_service(provider: str, settings: Settings, *, model: str | None = None, local_protocol: str = "fal",
                 local_config=None, http: httpx.Client | None = None) -> Iterator[OpenService]:
    """Yield the service for `provider`; the local service is started in-process and stopped afterwards.

    A remote service's addresses (fal_queue_url, fal_rest_url, runcomfy_url, file_host_url) must be https,
    or plain http to this machine only; results above the max_download_mb setting are refused.
    """
    if provider not in PROVIDERS:
        raise InputError(f"Unknown provider {provider!r}; use one of: {', '.join(PROVIDERS)}.")
    max_bytes = _max_download_bytes(settings)
    own_http = http is None
    http = http or http_client()
    local = None
    try:
        if provider == "local":
            from .local_service import LocalService, LocalServiceConfig

            local = LocalService(local_config or LocalServiceConfig())
            base = local.start()
            key = Secret(local.config.require_key) if local.config.require_key else None
            if local_protocol == "runcomfy":
                svc = RunComfyClient(http, key, base, model or settings.runcomfy_model, poll_initial=0.1, poll_max=1.0,
                                     max_download_bytes=max_bytes)
                host: FileHost = LoopbackUpload(http, base, key=key)
            elif local_protocol == "fal":
                svc = FalClient(http, key, base, model or settings.fal_model, poll_initial=0.1, poll_max=1.0,
                                max_download_bytes=max_bytes)
                host = FalStorage(http, key, base)
            else:
                raise InputError(f"Unknown protocol {local_protocol!r} for the local service; use fal or runcomfy.")
            yield OpenService(svc, host, base, local)
        elif provider == "fal":
            _require_https(settings, "fal_queue_url")
            _require_https(settings, "fal_rest_url")
            if not settings.fal_key:
                raise AuthError("No fal key: set FAL_KEY in the environment, store it in the OS keyring (service "
                                "ltx-retake, user fal), or set fal_key in the settings file, and try again.")
            svc = FalClient(http, settings.fal_key, settings.fal_queue_url, model or settings.fal_model,
                            max_download_bytes=max_bytes)
            yield OpenService(svc, FalStorage(http, settings.fal_key, settings.fal_rest_url), settings.fal_queue_url)
        else:
            _require_https(settings, "runcomfy_url")
            if not settings.runcomfy_token:
                raise AuthError("No RunComfy token: set RUNCOMFY_TOKEN in the environment, store it in the OS keyring "
                                "(service ltx-retake, user runcomfy), or set runcomfy_token in the settings file.")
            svc = RunComfyClient(http, settings.runcomfy_token, settings.runcomfy_url, model or settings.runcomfy_model,
                                 max_download_bytes=max_bytes)
            if settings.fal_key:
                _require_https(settings, "fal_rest_url")
                host = FalStorage(http, settings.fal_key, settings.fal_rest_url)
            elif settings.file_host_url:
                _require_https(settings, "file_host_url")
                host = UserUrlHost(http, settings.file_host_url)
            else:
                raise InputError(
                    "RunComfy fetches its input from a public URL and has no upload of its own: set FAL_KEY (the cut goes "
                    "to fal storage) or file_host_url / LTX_RETAKE_FILE_HOST_URL (an upload endpoint that takes a PUT)."
                )
            yield OpenService(svc, host, settings.runcomfy_url)
    finally:
        if local is not None:
            local.stop()
        if own_http:
            http.close()


def _require_https(settings: Settings, name: str) -> str:
    """A remote service's address from the settings: https, or plain http only to this machine (loopback)."""
    url = getattr(settings, name) or ""
    parts = urlsplit(url)
    where = f"The {name} setting (LTX_RETAKE_{name.upper()})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{where} is not an http(s) address; set it to the service's https:// address.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(f"{where} is plain http to {parts.hostname}: keys and footage would cross the network "
                         f"unencrypted. Use its https:// address; plain http is only for a service on this machine "
                         f"(127.0.0.1, ::1 or localhost).")
    return url


def _max_download_bytes(settings: Settings) -> int:
    """The max_download_mb setting in bytes (at least one megabyte)."""
    mb = settings.max_download_mb
    if isinstance(mb, bool) or not isinstance(mb, (int, float)) or mb < 1:
        raise InputError(f"The max_download_mb setting must be a number of megabytes of at least 1, not {mb!r}; "
                         "fix the settings file or LTX_RETAKE_MAX_DOWNLOAD_MB.")
    return int(mb * MiB)
