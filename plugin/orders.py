"""Orders: what an editor asked for at the command line or in a face, its selections, its journal form."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, replace
from pathlib import Path

import opentimelineio as otio

from .errors import InputError
from .limits import DEFAULT_CONTEXT_S, DEFAULT_CROSSFADE_MS, WORKING_SIZE
from .ports import RetakeMode
from .selection import Selection, select_clips, select_markers, select_range



__all__ = ["RetakeOrder", "selections_of", "absolute_order", "order_json", "order_from"]


@dataclass(frozen=True)
class RetakeOrder:
    """What the user asked for, as the CLI or the panel collected it."""

    timeline: Path
    output: Path | None                 # where the timeline is written; None: a face's open document takes the versions
    prompt: str | None
    mode: RetakeMode
    provider: str
    model: str
    clip: str | tuple[str, ...] | None = None  # a clip's name or #N; several for one job each
    range: tuple[str, str] | None = None
    markers: bool = False
    track: str | None = None
    per_clip: bool = False
    split: bool = False
    placement: str = "splice"
    media_dir: Path | None = None
    overwrite: bool = False
    in_place: bool = False
    max_parallel: int = 4
    fresh: bool = False                 # pay for a new generation even when an identical request has a result
    local_protocol: str = "fal"         # how the embedded service is driven (fal or runcomfy)
    rate: float | None = None           # an EDL's frame rate, when its timecodes do not tell
    timeline_name: str | None = None    # which timeline, when the file holds several
    media_root: Path | None = None      # where relative media paths start (default: the timeline file's folder)
    delivery: str = "auto"              # the version file's codec: auto, h264, prores or dnxhr (see ports.DELIVERIES)
    path_maps: tuple[tuple[str, str], ...] = ()   # --map-path FROM=TO: where another system's media paths are here
    media_search: tuple[Path, ...] = ()           # --media-search DIR: folders where missing media is found by name
    accept_losses: bool = False         # --yes: write an output that cannot hold everything (listed before paying)
    context_s: float | None = DEFAULT_CONTEXT_S   # --context: seconds of the shot sent each side (None: --context max)
    max_size: tuple[int, int] | None = WORKING_SIZE   # larger pictures are sent at this size (None: --full-res)
    crossfade_ms: float = DEFAULT_CROSSFADE_MS      # a changed sound crossfades this long at each edge (0: none)
    dissolve_frames: int = 0            # --dissolve: a changed picture dissolves over this many frames at each edge


def selections_of(timeline: otio.schema.Timeline, order: RetakeOrder) -> list[Selection]:
    chosen = [x for x in (order.clip is not None, order.range is not None, order.markers) if x]
    if len(chosen) != 1:
        raise InputError("Say what to retake with exactly one of --clip NAME, --range IN OUT or --markers.")
    if order.clip is not None:
        names = (order.clip,) if isinstance(order.clip, str) else tuple(order.clip)
        return select_clips(timeline, names, order.track)
    if order.range is not None:
        return select_range(timeline, order.range[0], order.range[1], order.track, per_clip=order.per_clip)
    return select_markers(timeline, order.track)


def absolute_order(order: RetakeOrder) -> RetakeOrder:
    """The order with every path absolute: the journal keeps it, and `resume` may run from another folder."""
    def absolute(p: Path | None) -> Path | None:
        return Path(os.path.abspath(p)) if p is not None else None

    return replace(order, timeline=absolute(order.timeline), output=absolute(order.output), media_dir=absolute(order.media_dir),
                   media_root=absolute(order.media_root), media_search=tuple(absolute(p) for p in order.media_search))


def order_json(order: RetakeOrder) -> dict:
    """An order as JSON-ready data (for the journal)."""
    out = {}
    for f in dataclasses.fields(order):
        value = getattr(order, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, RetakeMode):
            value = value.value
        elif f.name == "media_search":
            value = [str(p) for p in value]
        out[f.name] = value
    return out


def order_from(d: dict) -> RetakeOrder:
    """The order `order_json` wrote."""
    known = {f.name for f in dataclasses.fields(RetakeOrder)}
    values = {k: v for k, v in d.items() if k in known}
    for name in ("timeline", "output", "media_dir", "media_root"):
        if values.get(name):
            values[name] = Path(values[name])
    values["mode"] = RetakeMode(values["mode"])
    for name in ("range", "clip"):
        if isinstance(values.get(name), list):
            values[name] = tuple(values[name])
    values["path_maps"] = tuple(tuple(pair) for pair in values.get("path_maps") or ())
    if isinstance(values.get("max_size"), list):
        values["max_size"] = tuple(values["max_size"])
    values["media_search"] = tuple(Path(p) for p in values.get("media_search") or ())
    return RetakeOrder(**values)
