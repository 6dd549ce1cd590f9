"""Retakes on a live NLE timeline (DaVinci Resolve): read it as OTIO, run the same pipeline, put the versions back.

The live timeline is read into an OTIO copy (a snapshot file, kept), the editor's pick becomes ordinary
orders on that copy, `runner.run` plans, generates and splices them into a copy of the snapshot (also kept:
the file route's record of the run), and every spliced version is handed back to the NLE as a `Landing`.
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
from .selection import clip_at, track_label
from .timing import to_frames

__all__ = ["LiveRead", "Landing", "LiveTimeline", "LiveRun", "live_folder", "write_snapshot", "orders_for",
           "landings_for", "retake_live"]


@dataclass
class LiveRead:
    """A live timeline as OTIO, with the editor's pick on it in the terms the runner's orders take."""

    timeline: otio.schema.Timeline
    name: str
    uid: str
    rate: Fraction
    drop_frame: bool
    start_frame: int                                    # absolute record frame of the timeline's first frame
    picks: list[tuple[int, str]] = field(default_factory=list)   # (index in timeline.tracks, "#N") per picked clip
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


def orders_for(read: LiveRead, snapshot: Path, media_dir: Path, *, prompt: str, mode: RetakeMode, provider: str,
               model: str, **extra) -> list[RetakeOrder]:
    """The pick as orders on the snapshot: in/out marks are one order (a job per clip); clips one order per track."""
    base = dict(timeline=snapshot, prompt=prompt, mode=mode, provider=provider, model=model, media_dir=media_dir,
                placement="above", **extra)
    tl = read.timeline
    if read.range is not None:
        ti, a, b = read.range
        return [RetakeOrder(output=snapshot.with_name(f"{snapshot.stem}_retakes.otio"), range=(a, b),
                            track=track_label(tl, ti), per_clip=True, **base)]
    by_track: dict[int, list[str]] = {}
    for ti, ref in read.picks:
        by_track.setdefault(ti, []).append(ref)
    if not by_track:
        said = [n for n in read.notes if n.startswith("Nothing is picked")]
        raise SelectionError(said[0] if said else "Nothing is picked on the live timeline; select clips, mark in and out, "
                             "or park the playhead on a clip.")
    return [RetakeOrder(output=snapshot.with_name(f"{snapshot.stem}_retakes-{track_label(tl, ti).split()[0]}.otio"),
                        clip=tuple(refs), track=track_label(tl, ti), **base)
            for ti, refs in sorted(by_track.items())]


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
    media = media_dir or folder / "media"
    outcomes = []
    for order in orders_for(read, snapshot, media, prompt=prompt, mode=mode, provider=provider, model=model, **order_extra):
        outcomes.append(run(order, wiring, log, cancel, journal=journal, confirm=confirm))
    landings = landings_for(read, [j for o in outcomes for j in o.jobs])
    landed = live.put_back(landings, finalize=finalize) if landings else []
    return LiveRun(read, snapshot, outcomes, landed)

