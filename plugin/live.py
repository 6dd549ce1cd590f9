"""Retakes on a live NLE timeline (DaVinci Resolve): read it as OTIO, run the same pipeline, put the versions back.

The live timeline is read into an OTIO copy (a snapshot file, kept: the record of what the run saw), the editor's
pick becomes `Selection`s of that copy (the clips themselves, or the marked frames), `runner.run` plans, generates
and splices them into a copy of the snapshot (also kept: the file route's record of the run), and every spliced
version is handed back to the NLE as a `Landing`.
Putting back is idempotent: an NLE that already shows a version is left as it is, so a put-back can simply
be run again (the panel's Resolve > Put Accepted Versions Back Again).
"""

from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import opentimelineio as otio

from .errors import SelectionError
from .journal import Journal
from .metadata import NS
from .paths import safe_stem
from .ports import RetakeMode
from .progress import EventLog, Progress, Step
from .jobs import Job, Outcome, Wiring
from .orders import RetakeOrder
from .runner import run
from .selection import Selection, clip_at, item_at, item_path, select_clip_object, select_frames
from .timing import parse_timecode, to_frames

__all__ = ["LiveRead", "Landing", "LiveTimeline", "LiveRun", "live_folder", "write_snapshot", "picked_clip",
           "selections_for", "order_for", "landings_for", "retake_live"]


@dataclass
class LiveRead:
    """A live timeline as OTIO, with the editor's pick on it in the terms the runner's orders take."""

    timeline: otio.schema.Timeline
    name: str
    uid: str
    rate: Fraction
    drop_frame: bool
    start_frame: int                                    # absolute record frame of the timeline's first frame
    picks: list[tuple[int, otio.schema.Clip]] = field(default_factory=list)  # (index in timeline.tracks, the clip)
    range: tuple[int, str, str] | None = None           # (index in timeline.tracks, in, out): in/out marks, out exclusive
    how: str = ""                                       # which of the NLE's selections this came from
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Landing:
    """One finished version to put back on the live timeline."""

    timeline: str           # the live timeline's id
    item: str               # the live item the version was made from
    track: int              # that item's video track, numbered as the NLE does (1 = V1)
    record_start: int       # absolute record frames [start, end) the version replaces
    record_end: int
    whole: bool             # it covers the whole item: a take on the item, not a clip above it
    path: Path
    frames: int             # frames in the version file
    version: int
    clip_name: str
    sound: bool             # the version carries new sound
    provenance: dict = field(default_factory=dict, hash=False, compare=False)


class LiveTimeline(Protocol):
    """What the faces need of a live NLE (the Resolve bridge implements it)."""

    features: object            # what this NLE supports: `.lines()` to tell the editor, `.decodes_h264`
    project: object             # the NLE's project (`GetCurrentTimeline()`)

    def read(self) -> LiveRead: ...

    def put_back(self, landings: list[Landing], *, finalize: bool = False) -> list[str]: ...

    def export_otio(self, path: Path) -> Path: ...

    def import_otio(self, path: Path, name: str) -> str: ...

    def alive(self) -> bool: ...


@dataclass
class LiveRun:
    """What a live retake produced: the runner's outcomes and what the NLE now shows."""

    read: LiveRead
    snapshot: Path
    outcomes: list[Outcome]
    landed: list[str]

    @property
    def jobs(self) -> list[Job]:
        return [j for o in self.outcomes for j in o.jobs]

    @property
    def exit_code(self) -> int:
        return max((o.exit_code for o in self.outcomes), default=0)


def live_folder(root: Path, read: LiveRead) -> Path:
    """Where a live timeline's snapshots and versions go: `<root>/<timeline name>/`."""
    return root / safe_stem(read.name)


def write_snapshot(read: LiveRead, folder: Path, wiring: Wiring) -> Path:
    """The OTIO copy of the live timeline, written once (atomically) under `folder/snapshots/`."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    path = folder / "snapshots" / f"{safe_stem(read.name)}-{stamp}.otio"
    path.parent.mkdir(parents=True, exist_ok=True)
    return wiring.store.write(read.timeline, path)


def picked_clip(read: LiveRead, clip: otio.schema.Clip, timeline: otio.schema.Timeline) -> otio.schema.Clip:
    """The picked `clip` (of `read.timeline`) in `timeline`, a copy of it (the snapshot, the panel's document) or the
    NLE's own export of the same timeline: the clip at the same place, covering the same time; refused when there is
    none."""
    try:
        found = item_at(timeline, item_path(read.timeline, clip))
    except (IndexError, TypeError, SelectionError):
        found = None
    if not isinstance(found, otio.schema.Clip) or not _same_place(found, clip):
        raise SelectionError(f"{clip.name!r}, picked in {read.name}, is not at the same place in the timeline this run "
                             "reads; read the timeline again (or use --route live).")
    return found


def _same_place(a: otio.schema.Clip, b: otio.schema.Clip) -> bool:
    """Two clips cover the same time of their parents (an NLE's export may name a clip after its active take)."""
    ra, rb = a.range_in_parent(), b.range_in_parent()
    return (abs(ra.start_time.to_seconds() - rb.start_time.to_seconds()) < 1e-3
            and abs(ra.duration.to_seconds() - rb.duration.to_seconds()) < 1e-3)


def selections_for(read: LiveRead, timeline: otio.schema.Timeline) -> list[Selection]:
    """The NLE's pick as selections of `timeline` (see `picked_clip`): in/out marks are the marked frames on their
    track, one job per clip; picked clips are each the whole clip."""
    if read.range is not None:
        ti, a, b = read.range
        start = parse_timecode(a, read.rate, read.drop_frame) - read.start_frame
        end = parse_timecode(b, read.rate, read.drop_frame) - read.start_frame
        return select_frames(timeline, ti, start, end, per_clip=True)
    if not read.picks:
        said = [n for n in read.notes if n.startswith("Nothing is picked")]
        raise SelectionError(said[0] if said else "Nothing is picked on the live timeline; select clips, mark in and out, "
                             "or park the playhead on a clip.")
    return [select_clip_object(timeline, ti, picked_clip(read, clip, timeline)) for ti, clip in sorted(
        read.picks, key=lambda p: (p[0], p[1].range_in_parent().start_time.to_seconds()))]


def order_for(snapshot: Path, media_dir: Path, *, prompt: str, mode: RetakeMode, provider: str, model: str,
              placement: str = "above", **extra) -> RetakeOrder:
    """How the pick is retaken: versions placed above the clips by default (so the NLE keeps its own), the
    snapshot's run written beside it."""
    return RetakeOrder(timeline=snapshot, output=snapshot.with_name(f"{snapshot.stem}_retakes.otio"), prompt=prompt,
                       mode=mode, provider=provider, model=model, media_dir=media_dir, placement=placement, **extra)


def landings_for(read: LiveRead, jobs: list[Job]) -> list[Landing]:
    """The spliced jobs as landings on the live items they came from."""
    out = []
    rate = read.rate
    for job in jobs:
        if job.step != Step.SPLICED or job.version is None:
            continue
        plan = job.plan
        found = clip_at(read.timeline, plan.track_index, plan.record_range.start_time)
        meta = (found[0].metadata.get(NS) or {}).get("resolve") if found else None
        if not meta:
            continue
        start = read.start_frame + int(round(to_frames(plan.record_range.start_time, rate)))
        end = start + int(round(to_frames(plan.record_range.duration, rate)))
        out.append(Landing(
            timeline=read.uid, item=meta["item"], track=int(meta["track"]), record_start=start, record_end=end,
            whole=(start, end) == (int(meta["start"]), int(meta["end"])), path=job.version.path,
            frames=plan.window_frames, version=job.version.number, clip_name=job.version.clip_name,
            sound=plan.mode != RetakeMode.REPLACE_VIDEO, provenance=dict(job.version.provenance or {})))
    return out


def retake_live(live: LiveTimeline, wiring: Wiring, root: Path, *, prompt: str, mode: RetakeMode, provider: str,
                model: str, media_dir: Path | None = None, journal: Journal | None = None,
                progress: Progress | None = None, cancel: threading.Event | None = None, finalize: bool = False,
                confirm=None, **order_extra) -> LiveRun:
    """Read the live pick, run it through the pipeline, and put every spliced version back on the live timeline."""
    log = progress if isinstance(progress, EventLog) else EventLog(*([progress] if progress else []))
    read = live.read()
    folder = live_folder(root, read)
    snapshot = write_snapshot(read, folder, wiring)
    document = wiring.store.open(snapshot)
    selections = selections_for(read, document.timeline)
    order = order_for(snapshot, media_dir or folder / "media", prompt=prompt, mode=mode, provider=provider, model=model,
                      **order_extra)
    outcomes = [run(order, wiring, log, cancel, journal=journal, confirm=confirm, document=document,
                    selections=selections)]
    landings = landings_for(read, [j for o in outcomes for j in o.jobs])
    landed = live.put_back(landings, finalize=finalize) if landings else []
    return LiveRun(read, snapshot, outcomes, landed)

