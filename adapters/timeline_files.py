"""Timeline files: read any format OTIO's installed adapters read, fix known quirks, write atomically."""

from __future__ import annotations

import os
import re
import tempfile
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from ..errors import InputError, TimelineReadError
from ..paths import same_file
from ..selection import require_lengths
from ..timing import exact_rate

__all__ = ["OtioFiles", "read_timeline", "write_timeline", "readable_suffixes", "sniff_edl_rate"]


def readable_suffixes() -> dict[str, str]:
    """File suffix -> OTIO adapter name, for every adapter installed here that can read."""
    out: dict[str, str] = {}
    for adapter in otio.plugins.ActiveManifest().adapters:
        try:
            features = adapter.module().__dict__
        except Exception:  # an adapter whose module does not import is simply not offered
            continue
        if "read_from_file" in features or "read_from_string" in features:
            for suffix in adapter.suffixes:
                out.setdefault(suffix.lower(), adapter.name)
    return out


_EDL_TC = re.compile(r"\b\d{2}[:;]\d{2}[:;]\d{2}[:;](\d{2})\b")


def sniff_edl_rate(text: str) -> Fraction:
    """Guess a CMX EDL's rate: drop-frame FCM says 29.97; frame fields of 24 or more rule out 24 fps."""
    fcm = re.search(r"^\s*FCM:\s*(DROP|NON-DROP)\s+FRAME", text, re.MULTILINE | re.IGNORECASE)
    highest = max((int(m.group(1)) for m in _EDL_TC.finditer(text)), default=0)
    if fcm and fcm.group(1).upper() == "DROP":
        return Fraction(30000, 1001)
    if highest >= 25:
        return Fraction(30000, 1001) if fcm else Fraction(30)
    if highest == 24:
        return Fraction(25)
    return Fraction(24)


def _read_edl(path: Path, rate: Fraction | None) -> otio.schema.Timeline:
    text = path.read_text(encoding="utf-8", errors="replace")
    rate = exact_rate(rate) if rate else sniff_edl_rate(text)
    try:
        return otio.adapters.read_from_string(text, "cmx_3600", rate=float(rate))
    except Exception as exc:
        if "duration" not in str(exc):
            raise
        # Speed effects (M2) make source and record durations differ; OTIO then reads them as
        # LinearTimeWarp effects, which the planner applies or refuses by name.
        return otio.adapters.read_from_string(text, "cmx_3600", rate=float(rate), ignore_timecode_mismatch=True)


def _edl_markers_to_source_time(timeline: otio.schema.Timeline) -> None:
    """OTIO's CMX reader puts LOC markers on clips in absolute record time; clip markers live in source time."""
    start = timeline.global_start_time
    offset = start.value if start is not None else 0
    for track in timeline.tracks:
        ranges = track.range_of_all_children()
        for item in track:
            if not isinstance(item, otio.schema.Clip):
                continue
            rec = ranges[item]
            rate = item.source_range.start_time.rate
            for m in item.markers:
                at = m.marked_range.start_time.rescaled_to(rate).value - offset - rec.start_time.rescaled_to(rate).value
                dur = m.marked_range.duration.rescaled_to(rate) if m.marked_range.duration.value else otio.opentime.RationalTime(0, rate)
                m.marked_range = otio.opentime.TimeRange(item.source_range.start_time + otio.opentime.RationalTime(at, rate), dur)


def _normalise(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """Fix quirks on read: an EDL's negative record start becomes the timeline's global start."""
    starts = [t.source_range.start_time for t in timeline.tracks if t.source_range is not None]
    if starts and all(s.value < 0 for s in starts) and timeline.global_start_time is None:
        first = starts[0]
        if all(s.almost_equal(first) for s in starts):
            timeline.global_start_time = -first
            for track in timeline.tracks:
                if track.source_range is not None and track.source_range.start_time.value < 0:
                    track.source_range = None
    return timeline


def read_timeline(path: str | Path, *, rate: float | Fraction | None = None, name: str | None = None) -> otio.schema.Timeline:
    """Read a timeline file. `name` picks one timeline from a file that holds several (FCPXML libraries)."""
    path = Path(path)
    if not path.exists():
        raise TimelineReadError(f"The timeline {path} does not exist; check the path.")
    if path.is_dir() and path.suffix.lower() != ".otiod":
        raise TimelineReadError(f"{path} is a folder, not a timeline file.")
    suffix = path.suffix.lower().lstrip(".")
    suffixes = readable_suffixes()
    if suffix not in suffixes:
        known = ", ".join(f".{s}" for s in sorted(suffixes))
        raise TimelineReadError(f"No installed OTIO adapter reads .{suffix} files ({path.name}); readable: {known}.")
    try:
        if suffixes[suffix] == "cmx_3600":
            result = _normalise(_read_edl(path, rate))
            _edl_markers_to_source_time(result)
        else:
            result = otio.adapters.read_from_file(str(path))
    except InputError:
        raise
    except Exception as exc:
        raise TimelineReadError(
            f"{path.name} could not be read as {suffixes[suffix]}: {exc}. Export it again from the NLE, or as .otio."
        ) from None
    timelines = _timelines_in(result)
    if not timelines:
        raise TimelineReadError(f"{path.name} holds no timeline.")
    if name is not None:
        picked = [t for t in timelines if t.name == name]
        if not picked:
            raise TimelineReadError(f"{path.name} has no timeline named {name!r}; it has: {', '.join(repr(t.name) for t in timelines)}.")
        timeline = picked[0]
    elif len(timelines) > 1:
        raise TimelineReadError(
            f"{path.name} holds {len(timelines)} timelines ({', '.join(repr(t.name) for t in timelines)}); "
            "choose one with --timeline NAME."
        )
    else:
        timeline = timelines[0]
    timeline = _normalise(timeline)
    require_lengths(timeline, error=TimelineReadError)
    return timeline


def _timelines_in(obj) -> list[otio.schema.Timeline]:
    if isinstance(obj, otio.schema.Timeline):
        return [obj]
    if isinstance(obj, otio.schema.SerializableCollection):
        return list(obj.find_children(descended_from_type=otio.schema.Timeline))
    return []


def write_timeline(timeline: otio.schema.Timeline, path: str | Path, *, overwrite: bool = False,
                   protect: tuple[str | Path, ...] = ()) -> Path:
    """Write atomically (temp file in the same folder, then rename). Never overwrites a protected path, even
    with `overwrite` (which only allows replacing some other existing file)."""
    path = Path(path).absolute()
    for p in protect:  # holds even with overwrite: --force replaces an old output, never the input
        if same_file(Path(p), path):
            raise InputError(f"Refusing to overwrite the input timeline {path.name}; give another -o path, or --in-place.")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another output path or pass --force to replace it.")
    try:
        adapter = otio.adapters.from_filepath(str(path)).name
    except Exception:
        raise InputError(f"Cannot tell which format to write from the name {path.name}; use .otio, .otioz, .edl, .xml or .aaf.") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    except OSError as exc:  # a read-only folder, a file where the folder should be, a full disk
        raise InputError(
            f"Cannot write {path.name} in {path.parent}: {exc.strerror or exc}. Choose a folder you can write to."
        ) from None
    os.close(fd)
    try:
        kwargs = {"indent": 2} if adapter == "otio_json" else {}
        if adapter == "AAF":
            kwargs["use_empty_mob_ids"] = True
        os.unlink(tmp)  # some adapters refuse to write over an existing file
        otio.adapters.write_to_file(timeline, tmp, adapter_name=adapter, **kwargs)
        os.replace(tmp, path)
    except Exception as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, InputError):
            raise
        raise InputError(f"Could not write {path.name} as {adapter}: {exc}. Write .otio to keep every version.") from None
    return path


class OtioFiles:
    """The TimelineStore port over OTIO's file adapters."""

    def __init__(self, *, rate: float | Fraction | None = None, timeline_name: str | None = None):
        self.rate = rate
        self.timeline_name = timeline_name

    def read(self, path: str | Path) -> otio.schema.Timeline:
        return read_timeline(path, rate=self.rate, name=self.timeline_name)

    def write(self, timeline, path: str | Path, *, overwrite: bool = False, protect=()) -> Path:
        return write_timeline(timeline, path, overwrite=overwrite, protect=protect)
