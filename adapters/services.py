"""Opens a retake service and the file host its inputs need, per provider: fal, RunComfy, or the local service."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

import httpx

from ..errors import AuthError, InputError
from ..ports import FileHost, RetakeService
from ..settings import Secret, Settings
from .fal import FalClient, FalStorage
from .hosting import LoopbackUpload, UserUrlHost
from .http_policy import RetryPolicy, is_loopback
from .runcomfy import RunComfyClient
from .wire import Bounds, UrlRule, address_refusal, guarded_transport

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


def http_client(rule: UrlRule | None = None, bounds: Bounds | None = None) -> httpx.Client:
    """The one HTTP client a run shares: generous read timeouts for uploads; redirects are never followed by
    httpx itself (the adapters follow them hop by hop, each checked first). Its transport connects only
    where `rule` allows, checked on the addresses a name resolves to (see wire.guarded_transport), and
    reads in short slices so a cancel is noticed while a server stalls."""
    rule = rule or UrlRule(loopback_ok=False)
    bounds = bounds or Bounds()
    return httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=False,
                        headers={"User-Agent": "ltx-retake"}, transport=guarded_transport(rule, bounds))


@contextlib.contextmanager
def open_service(provider: str, settings: Settings, *, model: str | None = None, local_protocol: str = "fal",
                 local_config=None, http: httpx.Client | None = None,
                 retry: RetryPolicy | None = None) -> Iterator[OpenService]:
    """Yield the service for `provider`; the local service is started in-process and stopped afterwards. `http` and
    `retry` (how calls safe to repeat are retried, and how long it waits between tries) are seams for tests.

    A remote service's addresses (fal_queue_url, fal_rest_url, runcomfy_url, file_host_url) must be https,
    or plain http to this machine only, and not private unless allow_private_hosts; results above the
    max_download_mb setting are refused; a job queued or running past max_wait_min is left to `resume`.
    """
    if provider not in PROVIDERS:
        raise InputError(f"Unknown provider {provider!r}; use one of: {', '.join(PROVIDERS)}.")
    max_bytes = _max_download_bytes(settings)
    wait = _max_wait_seconds(settings)
    bounds = Bounds(allow_private_hosts=bool(settings.allow_private_hosts))
    own_http = http is None
    http = http or http_client(UrlRule(loopback_ok=provider == "local" or _all_loopback(settings, provider),
                                       private_ok=bounds.allow_private_hosts), bounds)
    local = None
    common = {"max_download_bytes": max_bytes, "follow_timeout": wait, "bounds": bounds, "retry": retry}
    try:
        if provider == "local":
            from .local_service import LocalService, LocalServiceConfig

            chosen = model or (settings.runcomfy_model if local_protocol == "runcomfy" else settings.fal_model)
            config = local_config or LocalServiceConfig()
            if chosen.strip("/") not in config.models:      # the service answers only the models it knows
                config = dataclasses.replace(config, models=(*config.models, chosen.strip("/")))
            local = LocalService(config)
            base = local.start()
            key = Secret(local.config.require_key) if local.config.require_key else None
            if local_protocol == "runcomfy":
                svc = RunComfyClient(http, key, base, chosen, poll_initial=0.1, poll_max=1.0, **common)
                host: FileHost = LoopbackUpload(http, base, key=key, bounds=bounds)
            elif local_protocol == "fal":
                svc = FalClient(http, key, base, chosen, poll_initial=0.1, poll_max=1.0, **common)
                host = FalStorage(http, key, base, bounds=bounds)
            else:
                raise InputError(f"Unknown protocol {local_protocol!r} for the local service; use fal or runcomfy.")
            yield OpenService(svc, host, base, local)
        elif provider == "fal":
            _require_https(settings, "fal_queue_url")
            _require_https(settings, "fal_rest_url")
            if not settings.fal_key:
                raise AuthError("No fal key: set FAL_KEY in the environment, store it in the OS keyring (service "
                                "ltx-retake, user fal), or set fal_key in the settings file, and try again.")
            svc = FalClient(http, settings.fal_key, settings.fal_queue_url, model or settings.fal_model, **common)
            yield OpenService(svc, FalStorage(http, settings.fal_key, settings.fal_rest_url, bounds=bounds),
                              settings.fal_queue_url)
        else:
            _require_https(settings, "runcomfy_url")
            if not settings.runcomfy_token:
                raise AuthError("No RunComfy token: set RUNCOMFY_TOKEN in the environment, store it in the OS keyring "
                                "(service ltx-retake, user runcomfy), or set runcomfy_token in the settings file.")
            svc = RunComfyClient(http, settings.runcomfy_token, settings.runcomfy_url, model or settings.runcomfy_model,
                                 **common)
            if settings.fal_key:
                _require_https(settings, "fal_rest_url")
                host = FalStorage(http, settings.fal_key, settings.fal_rest_url, bounds=bounds)
            elif settings.file_host_url:
                _require_https(settings, "file_host_url")
                host = UserUrlHost(http, settings.file_host_url, bounds=bounds)
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
    why = address_refusal(parts.hostname, loopback_ok=True, private_ok=bool(settings.allow_private_hosts))
    if why:
        hint = (" Set allow_private_hosts (LTX_RETAKE_ALLOW_PRIVATE_HOSTS=1) if the service really lives on your "
                "private network." if why == "a private network address" else "")
        raise InputError(f"{where} points at {why} ({parts.hostname}); refusing to send keys or footage there.{hint}")
    return url


def _all_loopback(settings: Settings, provider: str) -> bool:
    """Are the remote provider's addresses all on this machine (a service run by `ltx-retake serve`, a test)?"""
    names = {"fal": ("fal_queue_url", "fal_rest_url"), "runcomfy": ("runcomfy_url",)}[provider]
    return all(is_loopback(urlsplit(getattr(settings, n) or "").hostname) for n in names)


def _max_wait_seconds(settings: Settings) -> float:
    """The max_wait_min setting in seconds."""
    minutes = settings.max_wait_min
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= 7 * 24 * 60:
        raise InputError(f"The max_wait_min setting must be a number of minutes above 0 (at most a week), not "
                         f"{minutes!r}; fix the settings file or LTX_RETAKE_MAX_WAIT_MIN.")
    return float(minutes) * 60


def _max_download_bytes(settings: Settings) -> int:
    """The max_download_mb setting in bytes (at least one megabyte)."""
    mb = settings.max_download_mb
    if isinstance(mb, bool) or not isinstance(mb, (int, float)) or mb < 1:
        raise InputError(f"The max_download_mb setting must be a number of megabytes of at least 1, not {mb!r}; "
                         "fix the settings file or LTX_RETAKE_MAX_DOWNLOAD_MB.")
    return int(mb * MiB)
