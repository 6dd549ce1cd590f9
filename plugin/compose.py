"""The composition root: wires the adapters into the runner for a provider. The one place the core meets them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from .jobs import Wiring
from .settings import Settings

__all__ = ["wiring_for", "offline_wiring", "warm_up", "relink_settings", "model_for", "live_nle", "menu_entry", "serve_local",
           "write_demo_media"]


def offline_wiring(settings: Settings, *, rate=None, timeline_name: str | None = None, path_maps=(),
                   media_search=()) -> Wiring:
    """Media and timeline adapters only: enough to read, plan, list versions and switch them. `path_maps` and
    `media_search` are the run's (`relink_settings` puts the command line's and the settings' together)."""
    from .adapters.media import FfmpegMediaTool
    from .adapters.timeline_files import OtioFiles

    media = FfmpegMediaTool(settings.ffmpeg)
    store = OtioFiles(rate=rate, timeline_name=timeline_name, path_maps=path_maps, media_search=media_search,
                      probe=media.probe)
    return Wiring(media=media, store=store)


def relink_settings(settings: Settings, path_maps=(), media_search=()) -> tuple[tuple[tuple[str, str], ...], tuple[Path, ...]]:
    """The path maps and media search folders a run uses: those given first, then the settings'."""
    from .relink import parse_path_map

    maps = tuple(path_maps) + tuple(parse_path_map(m) for m in settings.path_maps)
    folders = tuple(Path(p) for p in media_search) + tuple(Path(p) for p in settings.media_search)
    return maps, folders


@contextlib.contextmanager
def wiring_for(provider: str, settings: Settings, *, model: str | None = None, local_protocol: str = "fal",
               local_config=None, rate=None, timeline_name: str | None = None, path_maps=(),
               media_search=()) -> Iterator[Wiring]:
    """Everything a retake run needs for `provider`; services are closed (and a local service stopped) on exit."""
    from .adapters.services import open_service

    base = offline_wiring(settings, rate=rate, timeline_name=timeline_name, path_maps=path_maps, media_search=media_search)
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


def live_nle():
    """The running DaVinci Resolve as a live timeline (through the Scripts-menu entry's broker when it started us)."""
    from .adapters.resolve_bridge import ResolveBridge
    from .adapters.resolve_connect import connect

    return ResolveBridge(connect())


def menu_entry():
    """(install, uninstall): put the LTX Retake entry in Resolve's Workspace > Scripts menu, or take it out."""
    from .adapters.resolve_install import install, uninstall

    return install, uninstall


def serve_local(host: str, port: int, settings: Settings, *, key: str | None, storage=None, queue_delay: float = 0.0,
                processing_delay: float = 0.0, quirks: frozenset[str] = frozenset()) -> None:
    """Run the embedded local service until interrupted; it answers the retake model ids the settings name too."""
    from .adapters.local_service import LocalServiceConfig, serve

    models = tuple(dict.fromkeys((*LocalServiceConfig().models, settings.fal_model.strip("/"),
                                  settings.runcomfy_model.strip("/"))))
    config = LocalServiceConfig(storage_dir=storage, queue_delay=queue_delay, processing_delay=processing_delay,
                                int_fps="int_fps" in quirks, snap_8k1="snap_8k1" in quirks, audio_24k="audio_24k" in quirks,
                                require_key=key, models=models)
    serve(host, port, config)


def write_demo_media(path: Path, *, frames: int, rate, size: tuple[int, int], timecode: str) -> Path:
    """A clip whose frames carry their own index and whose sound carries sync marks (the demo's footage)."""
    from .adapters.testcard import write_indexed_clip

    return write_indexed_clip(path, frames=frames, rate=rate, size=size, timecode=timecode)
