"""The composition root: wires the adapters into the runner for a provider. The one place the core meets them."""

from __future__ import annotations

import contextlib
from typing import Iterator

from .runner import Wiring
from .settings import Settings

__all__ = ["wiring_for", "offline_wiring", "warm_up"]


def offline_wiring(settings: Settings, *, rate=None, timeline_name: str | None = None) -> Wiring:
    """Media and timeline adapters only: enough to read, plan, list versions and switch them."""
    from .adapters.media import FfmpegMediaTool
    from .adapters.timeline_files import OtioFiles

    return Wiring(media=FfmpegMediaTool(settings.ffmpeg), store=OtioFiles(rate=rate, timeline_name=timeline_name))


@contextlib.contextmanager
def wiring_for(provider: str, settings: Settings, *, model: str | None = None, local_protocol: str = "fal",
               local_config=None, rate=None, timeline_name: str | None = None) -> Iterator[Wiring]:
    """Everything a retake run needs for `provider`; services are closed (and a local service stopped) on exit."""
    from .adapters.services import open_service

    base = offline_wiring(settings, rate=rate, timeline_name=timeline_name)
    with open_service(provider, settings, model=model, local_protocol=local_protocol, local_config=local_config) as opened:
        base.service, base.host = opened.service, opened.host
        yield base


def model_for(provider: str, settings: Settings, model: str | None) -> str:
    """The model id a run uses: the one given, else the provider's setting."""
    if model:
        return model
    return settings.runcomfy_model if provider == "runcomfy" else settings.fal_model


def warm_up() -> None:
    """Import every adapter now, once: a long-running program (the panel) then never has a worker thread hold the
    interpreter for the second that loading PyAV, the HTTP stack and the local service's server takes."""
    from .adapters import fal, hosting, media, runcomfy, services, timeline_files  # noqa: F401
    from .adapters.local_service import LocalService  # noqa: F401
