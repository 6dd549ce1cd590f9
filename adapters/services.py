"""Opens a retake service and the file host its inputs need, per provider: fal, RunComfy, or the local service."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import httpx

from ..errors import AuthError, InputError
from ..ports import FileHost, RetakeService
from ..settings import Settings
from .fal import FalClient, FalStorage
from .hosting import LoopbackUpload, UserUrlHost
from .runcomfy import RunComfyClient

__all__ = ["OpenService", "open_service", "PROVIDERS", "http_client"]

PROVIDERS = ("local", "fal", "runcomfy")


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
    """Yield the service for `provider`; the local service is started in-process and stopped afterwards."""
    if provider not in PROVIDERS:
        raise InputError(f"Unknown provider {provider!r}; use one of: {', '.join(PROVIDERS)}.")
    own_http = http is None
    http = http or http_client()
    local = None
    try:
        if provider == "local":
            from .local_service import LocalService, LocalServiceConfig

            local = LocalService(local_config or LocalServiceConfig())
            base = local.start()
            if local_protocol == "runcomfy":
                svc = RunComfyClient(http, None, base, model or settings.runcomfy_model, poll_initial=0.1, poll_max=1.0)
                host: FileHost = LoopbackUpload(http, base)
            elif local_protocol == "fal":
                svc = FalClient(http, None, base, model or settings.fal_model, poll_initial=0.1, poll_max=1.0)
                host = FalStorage(http, None, base)
            else:
                raise InputError(f"Unknown protocol {local_protocol!r} for the local service; use fal or runcomfy.")
            yield OpenService(svc, host, base, local)
        elif provider == "fal":
            if not settings.fal_key:
                raise AuthError("No fal key: set FAL_KEY in the environment (or fal_key in the settings file) and try again.")
            svc = FalClient(http, settings.fal_key, settings.fal_queue_url, model or settings.fal_model)
            yield OpenService(svc, FalStorage(http, settings.fal_key, settings.fal_rest_url), settings.fal_queue_url)
        else:
            if not settings.runcomfy_token:
                raise AuthError("No RunComfy token: set RUNCOMFY_TOKEN in the environment (or runcomfy_token in the settings file).")
            svc = RunComfyClient(http, settings.runcomfy_token, settings.runcomfy_url, model or settings.runcomfy_model)
            if settings.fal_key:
                host = FalStorage(http, settings.fal_key, settings.fal_rest_url)
            elif settings.file_host_url:
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
