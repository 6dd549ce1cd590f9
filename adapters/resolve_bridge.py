"""The live DaVinci Resolve timeline as the core's `LiveTimeline`: read the pick, put versions back as takes or above.

Every change is read back, because Resolve reports many failures as a bare None or False: an import that
returns nothing, a placement dropped for overlapping, an end frame one off between versions. A version
that covers its whole item becomes a take on it; a partial one goes on the first free video track above
(created when needed) at an absolute record frame, in whole frames, and is moved or re-cut if Resolve put
it a frame off. Each new item carries a marker whose custom data is the provenance, and the newest
version of a clip gets one colour, older ones another.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..errors import SpliceError
from ..live import Landing, LiveRead
from ..metadata import NS
from ..paths import same_file
from ..timing import format_timecode
from .resolve_connect import Features, ResolveUnavailable, features_of, has
from .resolve_timeline import item_key, parse_rate, read_live, version_info

__all__ = ["ResolveBridge", "BIN", "NEWEST_COLOUR", "OLDER_COLOUR", "MARKER_COLOUR"]

BIN = "LTX Retakes"
NEWEST_COLOUR = "Lime"
OLDER_COLOUR = "Tan"
MARKER_COLOUR = "Purple"


class ResolveBridge:
    """A connected Resolve's current project: read its timeline, put retakes back, and the OTIO route."""

    def __init__(self, resolve: Any, *, platform: str = sys.platform):
        self.resolve = resolve
        manager = resolve.GetProjectManager()
        self.project = manager.GetCurrentProject() if manager is not None else None
        if self.project is None:
            raise ResolveUnavailable("Resolve has no open project; open the project (and its timeline), then retry.")
        self.pool = self.project.GetMediaPool()
        self.features: Features = features_of(resolve, self.project.GetCurrentTimeline(), self.pool, platform=platform)

    # -- reading -------------------------------------------------------------------------------------------------

    def alive(self) -> bool:
        """Whether Resolve still answers (the panel closes when it stops)."""
        try:
            return bool(self.resolve.GetVersion())
        except Exception:
            return False

    def current_timeline(self) -> Any:
        tl = self.project.GetCurrentTimeline()
        if tl is None:
            raise SpliceError("Resolve has no current timeline; open the timeline in the Edit page, then retry.")
        return tl

    def read(self) -> LiveRead:
        return read_live(self.project.GetCurrentTimeline(), self.features)

    def timelines(self) -> list[Any]:
        return [t for t in (self.project.GetTimelineByIndex(i) for i in range(1, int(self.project.GetTimelineCount() or 0) + 1)) if t]

    def _timeline(self, uid: str) -> Any:
        current = self.project.GetCurrentTimeline()
        if current is not None and item_key(current) == uid:
            return current
        for tl in self.timelines():
            if item_key(tl) == uid:
                return tl
        raise SpliceError("The timeline the retake was made on is no longer in this project; the versions are kept in the "
                          f"{BIN} bin's folder on disk.")

    # -- putting back ----------------------------------------------------------------------------------------------

    def put_back(self, landings: list[Landing], *, finalize: bool = False) -> list[str]:
        """Import each version into `LTX Retakes/<timeline>` and put it on the timeline; one sentence per landing."""
        lines = []
        for landing in sorted(landings, key=lambda x: (x.record_start, x.track)):
            try:
                lines.append(self._land(landing, finalize))
            except SpliceError as exc:
                lines.append(f"{landing.clip_name} v{landing.version:03d} was not put back: {exc}")
        return lines

    def _land(self, landing: Landing, finalize: bool) -> str:
        tl = self._timeline(landing.timeline)
        folder = self._bin(str(tl.GetName() or "Timeline"))
        mpi = self._import(folder, landing.path)
        item = self._find_item(tl, landing)
        if landing.whole and item is not None:
            return self._as_take(tl, item, mpi, landing, finalize)
        return self._above(tl, mpi, landing)

    def _bin(self, timeline_name: str) -> Any:
        root = self.pool.GetRootFolder()
        folder = root
        for name in (BIN, timeline_name):
            found = next((f for f in (folder.GetSubFolderList() or []) if f.GetName() == name), None)
            if found is None:
                found = self.pool.AddSubFolder(folder, name)
            if found is None:
                raise SpliceError(f"Resolve would not make the bin {BIN}/{timeline_name}; make it by hand in the Media "
                                  "Pool, then run the put-back again.")
            folder = found
        return folder

    def _import(self, folder: Any, path: Path) -> Any:
        for clip in folder.GetClipList() or []:
            if _same_path(clip.GetClipProperty("File Path"), path):
                return clip
        if not path.exists():
            raise SpliceError(f"the version file {path} is missing; restore it (or retake again).")
        previous = self.pool.GetCurrentFolder()
        if not self.pool.SetCurrentFolder(folder):
            raise SpliceError(f"Resolve would not open the bin {folder.GetName()}; the file is kept at {path}.")
        try:
            imported = self.pool.ImportMedia([str(path)]) or []
        finally:
            if previous is not None:
                self.pool.SetCurrentFolder(previous)
        if not imported:
            hint = ("this Resolve cannot decode H.264/AAC: deliver retakes as DNxHR (`--deliver dnxhr`, the default for "
                    "Resolve here) or ProRes" if not self.features.decodes_h264 else "check the file opens in Resolve")
            raise SpliceError(f"Resolve did not import {path.name} ({hint}); the file is kept at {path}.")
        return imported[0]

    def _find_item(self, tl: Any, landing: Landing) -> Any:
        for i in range(1, int(tl.GetTrackCount("video") or 0) + 1):
            for item in tl.GetItemListInTrack("video", i) or []:
                if item_key(item) == landing.item:
                    return item
        return None

    # a version covering the whole item: a take
    def _as_take(self, tl: Any, item: Any, mpi: Any, landing: Landing, finalize: bool) -> str:
        index = self._take_index(item, landing.path)
        if index is None:
            duration = int(item.GetDuration())
            if not item.AddTake(mpi):
                raise SpliceError(f"Resolve refused the take on {item.GetName()}; the file is in the {BIN} bin.")
            index = self._take_index(item, landing.path)
            if index is None:
                raise SpliceError(f"the take did not appear on {item.GetName()}; the file is in the {BIN} bin.")
            if int(item.GetDuration()) != duration:
                raise SpliceError(f"adding the take changed {item.GetName()}'s length ({duration} to {item.GetDuration()} "
                                  "frames); undo it in Resolve. The file is in the bin.")
        if not item.SelectTakeByIndex(index) or (has(item, "GetSelectedTakeIndex") and item.GetSelectedTakeIndex() != index):
            raise SpliceError(f"Resolve would not select take {index} on {item.GetName()}; choose it in the take selector.")
        self._mark(item, landing, relative=0)
        item.SetClipColor(NEWEST_COLOUR)
        finished = ""
        if finalize:
            if not item.FinalizeTake():
                raise SpliceError(f"Resolve would not finalise the take on {item.GetName()}; finalise it in the take selector.")
            finished = ", finalised"
        count = int(item.GetTakesCount() or 0)
        return (f"{landing.clip_name} v{landing.version:03d}: take {index} of {count} on {item.GetName()} at "
                f"{self._tc(tl, landing.record_start)} (selected{finished})")

    def _take_index(self, item: Any, path: Path) -> int | None:
        for i in range(1, int(item.GetTakesCount() or 0) + 1):
            take = item.GetTakeByIndex(i) or {}
            mpi = take.get("mediaPoolItem")
            if mpi is not None and _same_path(mpi.GetClipProperty("File Path"), path):
                return i
        return None

    # a partial version: on a free track above
    def _above(self, tl: Any, mpi: Any, landing: Landing) -> str:
        start, end = landing.record_start, landing.record_end
        existing = self._placed(tl, landing.path, start)
        if existing is not None:
            return f"{landing.clip_name} v{landing.version:03d} is already on V{existing[0]} at {self._tc(tl, start)}"
        track = self._free_track(tl, "video", landing.track + 1, start, end)
        placed = self._place(tl, mpi, track, landing, media_type=1)
        self._mark(placed, landing, relative=0)
        self._colour_versions(tl, landing, placed)
        where = f"V{track}"
        if landing.sound:
            sound_track = self._free_track(tl, "audio", 1, start, end)
            self._place(tl, mpi, sound_track, landing, media_type=2)
            where += f" and A{sound_track} (the original sound still plays under it: mute or trim it there)"
        return f"{landing.clip_name} v{landing.version:03d}: on {where} at {self._tc(tl, start)}-{self._tc(tl, end)}"

    def _placed(self, tl: Any, path: Path, start: int) -> tuple[int, Any] | None:
        for i in range(1, int(tl.GetTrackCount("video") or 0) + 1):
            for item in tl.GetItemListInTrack("video", i) or []:
                mpi = item.GetMediaPoolItem()
                if int(item.GetStart()) == start and mpi is not None and _same_path(mpi.GetClipProperty("File Path"), path):
                    return i, item
        return None

    def _free_track(self, tl: Any, kind: str, first: int, start: int, end: int) -> int:
        count = int(tl.GetTrackCount(kind) or 0)
        for i in range(first, count + 1):
            if all(int(it.GetEnd()) <= start or int(it.GetStart()) >= end for it in tl.GetItemListInTrack(kind, i) or []):
                return i
        if not (self.features.add_track and tl.AddTrack(kind)) or int(tl.GetTrackCount(kind) or 0) != count + 1:
            raise SpliceError(f"there is no free {kind} track above to put it on and Resolve would not add one; add a "
                              f"{kind} track by hand and run the put-back again.")
        return count + 1

    def _place(self, tl: Any, mpi: Any, track: int, landing: Landing, *, media_type: int) -> Any:
        if not self.features.place_on_track:
            raise SpliceError(f"Resolve {self.features.version_text} cannot place a clip at a record frame (18.5 and later "
                              "can); the version is in the bin: drag it onto the track above by hand.")
        want = landing.record_end - landing.record_start
        last = landing.frames if self.features.end_exclusive else landing.frames - 1
        record = landing.record_start
        for _ in range(3):  # place, read back, correct: Resolve's end frame and origin have moved between versions
            info = {"mediaPoolItem": mpi, "startFrame": 0, "endFrame": int(last), "trackIndex": int(track),
                    "recordFrame": int(record), "mediaType": media_type}
            placed = (self.pool.AppendToTimeline([info]) or [None])[0]
            if placed is None:
                raise SpliceError(f"Resolve did not place it on {'V' if media_type == 1 else 'A'}{track} (something may "
                                  "overlap there); the version is in the bin.")
            got_start, got = int(placed.GetStart()), int(placed.GetDuration())
            if got_start == landing.record_start and got == want:
                return placed
            tl.DeleteClips([placed])
            record -= got_start - landing.record_start
            last -= got - want
        raise SpliceError(f"Resolve kept placing it off the record frames {self._tc(tl, landing.record_start)}; the "
                          "version is in the bin: place it by hand.")

    def _mark(self, item: Any, landing: Landing, *, relative: int) -> None:
        data = json.dumps({**landing.provenance, NS: 1, "source_item": landing.item, "version": landing.version,
                           "clip": landing.clip_name, "path": str(landing.path)}, default=str, sort_keys=True)
        if has(item, "GetMarkerByCustomData") and item.GetMarkerByCustomData(data):
            return
        note = str(landing.provenance.get("prompt") or "")[:500]
        if not item.AddMarker(relative, MARKER_COLOUR, f"LTX retake v{landing.version:03d}", note, 1, data):
            raise SpliceError(f"Resolve would not add the provenance marker to {item.GetName()}; the version is placed, its "
                              "record is in the run's OTIO file.")

    def _colour_versions(self, tl: Any, landing: Landing, newest: Any) -> None:
        """The newest version of a clip in one colour, its older versions above in another."""
        for i in range(1, int(tl.GetTrackCount("video") or 0) + 1):
            for item in tl.GetItemListInTrack("video", i) or []:
                info = version_info(item)
                if info and info.get("source_item") == landing.item:
                    item.SetClipColor(NEWEST_COLOUR if item_key(item) == item_key(newest) else OLDER_COLOUR)

    def _tc(self, tl: Any, frame: int) -> str:
        rate, drop = parse_rate(tl.GetSetting("timelineFrameRate") or "24")
        return format_timecode(frame, rate, drop)

    # -- the OTIO route ----------------------------------------------------------------------------------------------

    def export_otio(self, path: Path) -> Path:
        """Export the current timeline as OTIO (Resolve 18.5 and later)."""
        if not self.features.export_otio:
            raise ResolveUnavailable(f"Resolve {self.features.version_text} cannot export OTIO (18.5 and later can); use "
                                     "File > Export > Timeline as EDL or XML, and retake that file.")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.current_timeline().Export(str(path), self.resolve.EXPORT_OTIO) or not path.exists():
            raise SpliceError(f"Resolve did not export the timeline to {path}; check the folder is writable.")
        return path

    def import_otio(self, path: Path, name: str) -> str:
        """Import a timeline file as a new timeline under a name no timeline of the project has; returns the name."""
        if not self.features.import_timeline:
            raise ResolveUnavailable(f"Resolve {self.features.version_text} cannot import OTIO by script (18.6.6 and later "
                                     f"can); use File > Import > Timeline on {path}.")
        taken = {str(t.GetName()) for t in self.timelines()}
        final, n = name, 2
        while final in taken:
            final, n = f"{name} {n}", n + 1
        imported = self.pool.ImportTimelineFromFile(str(path), {"timelineName": final, "importSourceClips": True})
        if imported is None or final not in {str(t.GetName()) for t in self.timelines()}:
            raise SpliceError(f"Resolve did not import {path.name}; use File > Import > Timeline on it.")
        return final


def _same_path(value: Any, path: Path) -> bool:
    """Whether Resolve's "File Path" names `path` (through links and case-insensitive disks; stat only on a name match)."""
    return bool(value) and Path(str(value)).name.lower() == path.name.lower() and same_file(Path(str(value)), path)
