"""Reaching a running DaVinci Resolve: its scripting module, the `resolve` object, and what its version can do.

Resolve's API answers failures with a bare None or False and `hasattr` is always true on its objects, so
every capability is read from `GetVersion()` and `name in dir(obj)`, never assumed.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["ResolveUnavailable", "Features", "script_environment", "connect", "has", "features_of", "BROKER_ENV"]

BROKER_ENV = "LTX_RETAKE_RESOLVE_BROKER"   # set by the Scripts-menu entry for the panel it launches


class ResolveUnavailable(InputError):
    """Resolve cannot be reached or used from here; the message says what to do."""


_MENU_HINT = ("or, with the free edition, run `ltx-retake resolve install` once and start LTX Retake from "
              "Workspace > Scripts > Utility inside Resolve")


def script_environment(platform: str = sys.platform, env: dict[str, str] | None = None) -> dict[str, str]:
    """RESOLVE_SCRIPT_API, RESOLVE_SCRIPT_LIB and the Modules folder for this OS (the user's own values win)."""
    env = os.environ if env is None else env
    if platform == "darwin":
        api = "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting"
        lib = "/Applications/DaVinci Resolve/DaVinci Resolve.app/Contents/Libraries/Fusion/fusionscript.so"
    elif platform.startswith("win"):
        program_data = env.get("PROGRAMDATA", r"C:\ProgramData")
        api = program_data + r"\Blackmagic Design\DaVinci Resolve\Support\Developer\Scripting"
        lib = r"C:\Program Files\Blackmagic Design\DaVinci Resolve\fusionscript.dll"
    else:
        api, lib = "/opt/resolve/Developer/Scripting", "/opt/resolve/libs/Fusion/fusionscript.so"
    api = env.get("RESOLVE_SCRIPT_API") or api
    lib = env.get("RESOLVE_SCRIPT_LIB") or lib
    sep = "\\" if platform.startswith("win") else "/"
    return {"RESOLVE_SCRIPT_API": api, "RESOLVE_SCRIPT_LIB": lib, "modules": api.rstrip("\\/") + sep + "Modules"}


def connect(menu_resolve: Any = None, *, platform: str = sys.platform, env: dict[str, str] | None = None) -> Any:
    """The live `resolve` object: the Scripts menu's global, the menu entry's broker, or an external connection.

    Raises ResolveUnavailable with what to do when Resolve is missing, not running, refuses external
    scripting, or is an edition that no longer allows scripting.
    """
    env = dict(os.environ) if env is None else env
    if menu_resolve is not None:
        resolve = menu_resolve
    elif env.get(BROKER_ENV):
        from .resolve_broker import connect_to_broker

        try:
            resolve = connect_to_broker(env[BROKER_ENV])
        except (OSError, EOFError, ValueError) as exc:
            raise ResolveUnavailable(
                f"The Resolve menu entry that started this panel cannot be reached ({type(exc).__name__}); Resolve may "
                "have closed. Start LTX Retake again from Workspace > Scripts > Utility.") from None
    else:
        resolve = _external(platform, env)
    try:
        version = resolve.GetVersion()
    except (OSError, EOFError):
        version = None
    if not version:
        raise ResolveUnavailable("DaVinci Resolve stopped answering; start it again (and open a project), then retry.")
    product = str(resolve.GetProductName() or "DaVinci Resolve") if has(resolve, "GetProductName") else "DaVinci Resolve"
    if tuple(_ints(version)[:2]) >= (21, 1) and "studio" not in product.lower():
        raise ResolveUnavailable(
            f"{product} {_version_text(version)} allows Python scripting only in DaVinci Resolve Studio (since 21.1). "
            "Use Studio, or take the OTIO route: File > Export > Timeline as OTIO, `ltx-retake retake` on that file, "
            "then File > Import > Timeline.")
    return resolve


def _external(platform: str, env: dict[str, str]) -> Any:
    places = script_environment(platform, env)
    module = None
    if places["modules"] not in sys.path:
        sys.path.append(places["modules"])
    os.environ.setdefault("RESOLVE_SCRIPT_API", places["RESOLVE_SCRIPT_API"])
    os.environ.setdefault("RESOLVE_SCRIPT_LIB", places["RESOLVE_SCRIPT_LIB"])
    try:
        module = importlib.import_module("DaVinciResolveScript")
    except ImportError:
        raise ResolveUnavailable(
            f"DaVinci Resolve's scripting module was not found (looked in {places['modules']}). Install DaVinci Resolve, "
            "or set RESOLVE_SCRIPT_API and RESOLVE_SCRIPT_LIB to where your install keeps Developer/Scripting and "
            "fusionscript.") from None
    except Exception as exc:  # the module loads fusionscript itself; a wrong library or Python crashes here
        raise ResolveUnavailable(
            f"Resolve's scripting library did not load ({type(exc).__name__}: {exc}). Check RESOLVE_SCRIPT_LIB points at "
            f"fusionscript for this Resolve, and that this Python ({sys.version.split()[0]}, 64-bit) is one Resolve "
            "supports (3.10 to 3.12 are safe).") from None
    resolve = module.scriptapp("Resolve")
    if resolve is None:
        raise ResolveUnavailable(
            "DaVinci Resolve did not answer. Start Resolve and open a project; turn on Preferences > System > General > "
            "External scripting using: Local (then restart Resolve). External scripting needs DaVinci Resolve Studio"
            f"; {_MENU_HINT}.")
    return resolve


def has(obj: Any, name: str) -> bool:
    """Whether a Resolve object offers `name` (`dir()`: `hasattr` is always true on them)."""
    try:
        return obj is not None and name in dir(obj)
    except Exception:
        return False


def _ints(version: Any) -> list[int]:
    out = []
    for part in list(version or [])[:4]:
        try:
            out.append(int(part))
        except (TypeError, ValueError):
            out.append(0)
    return out + [0] * (4 - len(out))


def _version_text(version: Any) -> str:
    major, minor, patch, _ = _ints(version)
    return f"{major}.{minor}.{patch}"


@dataclass(frozen=True)
class Features:
    """What the connected Resolve can do for the bridge, from its version and the methods its objects list."""

    version: tuple[int, int, int]
    product: str
    selected_clips: bool        # Timeline.GetSelectedClips (21.0.4)
    mark_in_out: bool           # Timeline.GetMarkInOut (19.1)
    place_on_track: bool        # AppendToTimeline honours trackIndex/recordFrame (18.5)
    add_track: bool             # Timeline.AddTrack (18.5)
    source_frames: bool         # TimelineItem.GetSourceStartFrame/EndFrame (19.0.2)
    export_otio: bool           # Timeline.Export with EXPORT_OTIO (18.5)
    import_timeline: bool       # MediaPool.ImportTimelineFromFile (18.6.6)
    end_exclusive: bool         # AppendToTimeline's endFrame is exclusive (measured on 21.0; inclusive before)
    decodes_h264: bool          # this Resolve reads H.264/AAC (not on Linux, not the free edition)

    @property
    def studio(self) -> bool:
        return "studio" in self.product.lower()

    @property
    def version_text(self) -> str:
        return ".".join(str(x) for x in self.version)

    @property
    def selection_source(self) -> str:
        if self.selected_clips:
            return "the selected clips (else the in/out marks, else the clip under the playhead)"
        if self.mark_in_out:
            return "the in/out marks (selected clips need 21.0.4), else the clip under the playhead"
        return "the clip under the playhead (in/out marks need 19.1, selected clips 21.0.4)"

    def lines(self) -> list[str]:
        """What this Resolve supports, as the panel and `ltx-retake resolve status` say it."""
        yes = lambda ok, text, need: f"{'yes' if ok else 'no '}  {text}" + ("" if ok else f" (needs {need})")  # noqa: E731
        return [
            f"{self.product} {self.version_text}",
            f"reads {self.selection_source}",
            yes(True, "whole-clip retakes become takes on the clip", ""),
            yes(self.place_on_track and self.add_track, "partial retakes go on a free track above", "18.5"),
            yes(self.source_frames, "source frames read directly (speed changes detected from them)", "19.0.2"),
            yes(self.export_otio and self.import_timeline, "the OTIO route (export, retake the file, import)", "18.6.6"),
            ("H.264/AAC retakes import as they are" if self.decodes_h264 else
             "retakes are delivered as DNxHR .mov with PCM sound (this Resolve cannot decode H.264/AAC)"),
        ]


def features_of(resolve: Any, timeline: Any = None, media_pool: Any = None, *, platform: str = sys.platform) -> Features:
    """Detect what the connected Resolve offers (`GetVersion()` plus `dir()` of the live objects)."""
    major, minor, patch, _ = _ints(resolve.GetVersion())
    v = (major, minor, patch)
    product = str(resolve.GetProductName() or "DaVinci Resolve") if has(resolve, "GetProductName") else "DaVinci Resolve"
    tl = timeline if timeline is not None else _current_timeline(resolve)
    pool = media_pool
    if pool is None:
        project = _current_project(resolve)
        pool = project.GetMediaPool() if project is not None else None
    selected = has(tl, "GetSelectedClips") if tl is not None else v >= (21, 0, 4)
    marks = has(tl, "GetMarkInOut") if tl is not None else v >= (19, 1, 0)
    studio = "studio" in product.lower()
    return Features(
        version=v, product=product, selected_clips=selected, mark_in_out=marks,
        place_on_track=v >= (18, 5, 0), add_track=has(tl, "AddTrack") if tl is not None else v >= (18, 5, 0),
        source_frames=v >= (19, 0, 2), export_otio=has(resolve, "EXPORT_OTIO") and (tl is None or has(tl, "Export")),
        import_timeline=v >= (18, 6, 6) and (pool is None or has(pool, "ImportTimelineFromFile")),  # listed since 16.2
        end_exclusive=v >= (21, 0, 0), decodes_h264=studio and not platform.startswith("linux"),
    )


def _current_project(resolve: Any) -> Any:
    manager = resolve.GetProjectManager()
    return manager.GetCurrentProject() if manager is not None else None


def _current_timeline(resolve: Any) -> Any:
    project = _current_project(resolve)
    return project.GetCurrentTimeline() if project is not None else None


def broker_path() -> Path:
    """The broker module's file, which the Scripts-menu entry loads by path in Resolve's own Python."""
    return Path(__file__).with_name("resolve_broker.py")
