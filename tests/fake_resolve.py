"""A fake DaVinci Resolve scripting API that keeps Resolve's measured quirks, for testing the bridge without Resolve.

Built from ../shared/reference/resolve-scripting.md (Blackmagic's README 17.4 to 21.0.4 plus behaviour measured
on real installs). It is deliberately not a friendly fake: every quirk below is reproduced and pinned by
tests/test_fake_resolve.py, so the fake cannot drift into something kinder than Resolve.

Quirks reproduced (and the test that pins each)
| # | quirk | test |
| --- | --- | --- |
| 1 | a method newer than the version is absent from `dir(obj)`; `hasattr(obj, anything)` is True: an unknown or gated name reads as None (so calling it raises TypeError, as Resolve does: 'NoneType' object is not callable) | test_version_gates_* , test_hasattr_is_always_true_* |
| 2 | record frames (GetStart, recordFrame, GetStartFrame) are absolute; timeline markers and marks are relative to the timeline start; item markers to the item start | test_record_frames_absolute_markers_relative |
| 3 | GetEnd is exclusive; AppendToTimeline's endFrame is inclusive before 21.0 (one frame longer), exclusive from 21.0 | test_append_end_frame_inclusive_before_21 |
| 4 | any non-integral frame in an AppendToTimeline batch: the call returns [] and places nothing | test_fractional_frame_fails_whole_batch |
| 5 | a placement overlapping an item on its track is dropped silently; the rest of the batch lands | test_overlap_drops_later_clip_silently |
| 6 | a recordFrame below the timeline start is accepted and lands before the timeline (renders nothing, not exported) | test_record_frame_before_timeline_start |
| 7 | failures are bare None / False, never exceptions (bad index, colour, folder, take, marker ...) | test_failures_are_bare_none_or_false |
| 8 | clip properties are strings ("Frames": "240", "FPS": "24.000", "Start TC": "01:00:00:00") | test_clip_properties_are_strings* |
| 9 | after `quit()` (Resolve went away) every call on every object returns None | test_quit_makes_every_call_return_none |
| 10 | Resolve Free on Linux does not decode H.264/AAC: such files import as [] | test_free_linux_refuses_h264_aac |
| 11 | ImportMedia imports into the current folder only; importing a path again there returns the existing clip | test_import_into_current_folder_only |
| 12 | no call reads a clip's speed; a retimed item shows only as source span != record duration | test_retimed_item_shows_only_in_spans |
| 13 | GetCurrentVideoItem answers only on the current timeline, from the highest enabled video track | test_current_video_item_* |

Version gates (compared on major.minor.patch)
| call / behaviour | since |
| --- | --- |
| Timeline.GetSelectedClips | 21.0.4 |
| AppendToTimeline endFrame exclusive (inclusive before) | 21.0.0 |
| Timeline.GetMarkInOut / SetMarkInOut / ClearMarkInOut | 19.1.0 |
| TimelineItem.GetSourceStartFrame / GetSourceEndFrame | 19.0.2 |
| Timeline.AddTrack(kind, {"index": n}) (a dict before: False) ; TimelineItem.GetTrackTypeAndIndex | 19.0.0 |
| MediaPool.ImportTimelineFromFile reads .otio (the method is older and listed; before: None) | 18.6.6 |
| resolve.EXPORT_OTIO ; Timeline.AddTrack ; AppendToTimeline trackIndex / recordFrame (ignored before: end of V1) | 18.5.0 |
| GetUniqueId ; Timeline.GetIsTrackEnabled / SetTrackEnable ; TimelineItem.GetClipEnabled / SetClipEnabled | 18.0.0 |
| everything else here (Export, markers, takes, clip colour, GetCurrentVideoItem, ...) | always |

Shapes chosen where the reference is silent (assumptions, each pinned by a test so a change is deliberate)
- Timeline.GetSelectedClips -> a list of TimelineItems (the README's `[TimelineItem]`), video tracks V1 up then
  audio, each by start; [] when nothing is selected.
- GetMarkInOut -> {"video": {"in", "out"}, "audio": {...}} in frames RELATIVE to the timeline start with the
  out frame INCLUSIVE (the README's example {'in': 0, 'out': 134}; scripts in the wild add GetStartFrame() and
  count out - in + 1); a key is left out when unset, {} when no marks.
- MediaPoolItem "FPS" -> "24.000", "23.976", "29.970" (three decimals, as the Media Pool's list shows);
  FakeResolve(fps_as_number=True) returns a float instead, as some builds hand back.
- Timeline.GetSetting("timelineFrameRate") -> "24", "23.976", "25", "29.97", "29.97 DF" (the reference's form).
- GetMarkers -> {96.0: {"color", "duration": 1.0, "note", "name", "customData"}}: float keys and durations as the
  README's own example; GetMarkerByCustomData -> that info dict, {} when none matches.
- GetSourceEndFrame is exclusive (GetSourceEndFrame - GetSourceStartFrame = source span);
  FakeResolve(source_end_inclusive=True) makes it the last frame instead.
- GetEndFrame is exclusive (the end of the last item, or the start on an empty timeline).
- AppendToTimeline of a clip with sound returns [video item, audio item] (mediaType 1 / 2: one of them); the
  audio lands on the audio track with the same index (no such track: only the picture lands; an overlap on
  either track drops the whole clip); a non-integral trackIndex or a missing track drops the clip; without
  recordFrame a clip goes after the last item of
  its track; a clip whose media rate differs from the timeline's plays in real time (record frames =
  source frames * timeline rate / media rate); with no current timeline it returns [].
- AddTake / GetTakeByIndex frames follow the version's AppendToTimeline endFrame convention; a selected take
  plays at 100% from its start for the item's record duration (clamped to the take's end).
- Export(EXPORT_OTIO) leaves out items that start before the timeline start; other export types return False
  (this fake writes OTIO only). ImportTimelineFromFile leaves the current timeline as it was.
- CreateEmptyTimeline makes the new timeline current; a duplicate name returns None.
- GetItemListInTrack with a bad kind or index -> None; GetTrackCount of an unknown kind -> 0.

Builders (test setup, not Resolve API: lowercase, not in dir(), and they raise ValueError on a test's mistake)
    fake = FakeResolve(version=(19, 1, 0, 3, ""), product="DaVinci Resolve Studio", platform="linux",
                       decodes_h264=None, project="Untitled Project", fps_as_number=False, source_end_inclusive=False)
    fake.add_media(path, frames=240, fps="24", start_tc="00:00:00:00", resolution="1920x1080",
                   video_codec="H.264", audio_codec="Linear PCM", audio_channels=2, name=None, folder=None,
                   properties=None) -> FakeMediaPoolItem          (no import rules, file need not exist)
    fake.new_timeline(name, rate="24", start_frame=None, video_tracks=2, audio_tracks=1, current=True)
                                                                  (start_frame None: 01:00:00:00 at the rate)
    timeline.place(track, mpi, record_start, source_in, source_out, kind="video", retime=None, duration=None)
                                                                  (source_out exclusive; retime: speed in %)
    timeline.place_effect(track, record_start, duration, name="Solid Color", kind="generator")  (no media)
    timeline.set_playhead(frame) ; timeline.set_marks(in_, out, type="all") ; timeline.set_track_enabled(kind, i, on)
    fake.select(items) ; fake.quit() ; fake.new_project(name) ; fake.close_project() ; scriptapp(fake, external=True)
"""

from __future__ import annotations

import functools
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

import opentimelineio as otio

__all__ = [
    "CLIP_COLORS",
    "MARKER_COLORS",
    "FakeFolder",
    "FakeMediaPool",
    "FakeMediaPoolItem",
    "FakeProject",
    "FakeProjectManager",
    "FakeResolve",
    "FakeTimeline",
    "FakeTimelineItem",
    "frames_to_timecode",
    "scriptapp",
    "timecode_to_frames",
]

CLIP_COLORS = ("Orange", "Apricot", "Yellow", "Lime", "Olive", "Green", "Teal", "Navy", "Blue", "Purple", "Violet",
               "Pink", "Tan", "Beige", "Brown", "Chocolate")
MARKER_COLORS = ("Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose", "Lavender", "Sky",
                 "Mint", "Lemon", "Sand", "Cocoa", "Cream")
_AUDIO_TYPES = ("mono", "stereo", "5.1", "5.1film", "7.1", "7.1film", *(f"adaptive{n}" for n in range(1, 25)))
_ITEM_PROPERTIES = {  # TimelineItem.GetProperty keys (the README's list); none of them is the clip's speed
    "Pan": 0.0, "Tilt": 0.0, "ZoomX": 1.0, "ZoomY": 1.0, "ZoomGang": True, "RotationAngle": 0.0,
    "AnchorPointX": 0.0, "AnchorPointY": 0.0, "Pitch": 0.0, "Yaw": 0.0, "FlipX": False, "FlipY": False,
    "CropLeft": 0.0, "CropRight": 0.0, "CropTop": 0.0, "CropBottom": 0.0, "CropSoftness": 0.0, "CropRetain": False,
    "DynamicZoomEase": 0, "CompositeMode": 0, "Opacity": 100.0, "Distortion": 0.0, "RetimeProcess": 0,
    "MotionEstimation": 0, "Scaling": 0, "ResizeFilter": 0,
}
_CODEC_NAMES = {"h264": "H.264", "hevc": "H.265", "prores": "Apple ProRes 422 HQ", "dnxhd": "Avid DNxHR",
                "mjpeg": "Motion JPEG", "aac": "AAC", "mp3": "MP3", "opus": "Opus", "flac": "FLAC"}
_FORMATS = {".mov": "QuickTime", ".mp4": "MP4", ".m4v": "MP4", ".mxf": "MXF", ".mkv": "Matroska", ".avi": "AVI"}
_OTIO_COLORS = {"Blue": "BLUE", "Cyan": "CYAN", "Green": "GREEN", "Yellow": "YELLOW", "Red": "RED", "Pink": "PINK",
                "Purple": "PURPLE", "Fuchsia": "MAGENTA", "Rose": "PINK", "Lavender": "PURPLE", "Sky": "CYAN",
                "Mint": "GREEN", "Lemon": "YELLOW", "Sand": "ORANGE", "Cocoa": "ORANGE", "Cream": "WHITE"}
_RT, _TR = otio.opentime.RationalTime, otio.opentime.TimeRange


# ---------------------------------------------------------------- numbers, rates and timecode (independent of the project)

def _int(value: Any) -> int | None:
    """An integral frame number (int, or a float without a fraction), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _fractional(value: Any) -> bool:
    return isinstance(value, float) and not value.is_integer()


def _rate(value: Any) -> Fraction:
    """24, "23.976", 29.97, Fraction(30000, 1001) -> the exact rate (x.yyy rates are the NTSC 1000/1001 ones)."""
    r = value if isinstance(value, Fraction) else Fraction(str(value).split()[0])
    whole, ntsc = Fraction(round(r)), Fraction(round(r) * 1000, 1001)
    for exact in (whole, ntsc):
        if abs(r - exact) < Fraction(1, 500):
            return exact
    return r


def _rate_setting(rate: Fraction, drop: bool = False) -> str:
    text = str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}".rstrip("0").rstrip(".")
    return text + (" DF" if drop else "")


def frames_to_timecode(frame: int, rate: Fraction, drop: bool = False) -> str:
    """A frame count from 00:00:00:00 as timecode at `rate` (drop-frame with ';'), wrapping at 24 hours."""
    nominal = round(rate)
    if drop:
        d = nominal // 15
        per10, per1 = nominal * 600 - 9 * d, nominal * 60 - d
        frame %= per10 * 144
        tens, rem = divmod(frame, per10)
        frame += 9 * d * tens + (d * ((rem - d) // per1) if rem > d else 0)
    else:
        frame %= nominal * 86400
    s = frame // nominal
    return f"{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}{';' if drop else ':'}{frame % nominal:02d}"


def timecode_to_frames(text: Any, rate: Fraction, drop: bool | None = None) -> int | None:
    """Timecode -> frame count from 00:00:00:00; None when it is not a valid timecode at `rate`."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2})", str(text).strip()) if isinstance(text, str) else None
    if not m:
        return None
    hh, mm, ss, ff = (int(m.group(i)) for i in (1, 2, 3, 5))
    nominal = round(rate)
    if ff >= nominal or mm >= 60 or ss >= 60:
        return None
    df = (m.group(4) in ";,") if drop is None else drop
    total = (hh * 3600 + mm * 60 + ss) * nominal + ff
    if df and rate.denominator != 1:
        minutes = hh * 60 + mm
        total -= (nominal // 15) * (minutes - minutes // 10)
    return total


def _at(seq: list, index: Any) -> Any:
    i = _int(index)
    return seq[i - 1] if i is not None and 1 <= i <= len(seq) else None


# ---------------------------------------------------------------- the remote-object behaviour: gates, dir(), quit()

def _api(since: tuple[int, ...] = (0,)):
    """Mark a method as Resolve API available since `since`; after quit() it answers None."""
    def wrap(fn):
        @functools.wraps(fn)
        def call(self, *args, **kwargs):
            if not self._fake._alive:
                return None
            return fn(self, *args, **kwargs)
        call.resolve_since = tuple(since)
        return call
    return wrap


class _Remote:
    """What every Resolve object does: CamelCase names are the API, gated by version; any other name reads None."""

    _constants: ClassVar[dict[str, tuple[Any, tuple[int, ...]]]] = {}

    def __getattribute__(self, name: str) -> Any:
        if name[:1].isupper():
            cls = type(self)
            since = getattr(getattr(cls, name, None), "resolve_since", None)
            fake = object.__getattribute__(self, "_fake")
            if since is None:
                if name in cls._constants:
                    value, since = cls._constants[name]
                    return value if fake._has(since) else None
                return None                      # an API name this object does not have: None, like Resolve
            if not fake._has(since):
                return None                      # newer than this version: absent from dir(), reads None
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)           # keep Python's own protocols (copy, pickle, pytest) honest
        return None

    def __dir__(self) -> list[str]:
        cls, fake = type(self), object.__getattribute__(self, "_fake")
        names = {n for n in dir(cls) if n[:1].isupper()
                 and fake._has(getattr(getattr(cls, n), "resolve_since", (999,)))}
        names |= {n for n, (_, since) in cls._constants.items() if fake._has(since)}
        return sorted(names)


# ---------------------------------------------------------------- resolve, project manager, project

class FakeResolve(_Remote):
    """The `resolve` object: version, product, the project manager, and the test's builders."""

    _constants: ClassVar[dict[str, tuple[Any, tuple[int, ...]]]] = {"EXPORT_AAF": (1, (0,)), "EXPORT_EDL": (2, (0,)), "EXPORT_FCP_7_XML": (3, (0,)),
                  "EXPORT_OTIO": (17, (18, 5, 0))}   # opaque numbers: use the constant, never the value

    def __init__(self, version: Any = (19, 1, 0, 3, ""), product: str = "DaVinci Resolve Studio",
                 platform: str = "linux", decodes_h264: bool | None = None, *, project: str | None = "Untitled Project",
                 fps_as_number: bool = False, source_end_inclusive: bool = False) -> None:
        self._fake = self
        parts = [int(p) for p in re.findall(r"\d+", version)] if isinstance(version, str) else list(version)
        parts = parts + [0] * (4 - min(len(parts), 4))
        self._version = [int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]),
                         str(parts[4]) if len(parts) > 4 else ""]
        self.product, self.platform = product, platform
        self.studio = "studio" in product.lower()
        self.decodes_h264 = (not (platform.startswith("linux") and not self.studio)) if decodes_h264 is None else decodes_h264
        self.fps_as_number, self.source_end_inclusive = fps_as_number, source_end_inclusive
        self._alive, self._ids = True, 0
        self._manager = FakeProjectManager(self)
        self._project = FakeProject(self, project) if project else None

    def __repr__(self) -> str:
        return f"<FakeResolve {self.product} {'.'.join(map(str, self._version[:3]))}{' (quit)' if not self._alive else ''}>"

    # internals
    def _has(self, since: tuple[int, ...]) -> bool:
        return tuple(self._version[:3]) >= tuple(since)

    def _end_exclusive(self) -> bool:
        return self._has((21, 0, 0))

    def _new_id(self) -> str:
        self._ids += 1
        n = self._ids
        return f"{n:08x}-{n % 0xFFFF:04x}-4{n % 0xFFF:03x}-a{n % 0xFFF:03x}-{n * 2654435761 % 16**12:012x}"

    @property
    def version(self) -> tuple[int, int, int]:
        return tuple(self._version[:3])

    # API
    @_api()
    def GetVersion(self) -> list:
        return list(self._version)

    @_api()
    def GetVersionString(self) -> str:
        major, minor, patch, build, suffix = self._version
        return f"{major}.{minor}.{patch}{suffix}.{build}"

    @_api()
    def GetProductName(self) -> str:
        return self.product

    @_api()
    def GetProjectManager(self) -> FakeProjectManager:
        return self._manager

    # builders
    def quit(self) -> None:
        """Resolve went away: every later call on any of its objects returns None."""
        self._alive = False

    def new_project(self, name: str = "Untitled Project") -> FakeProject:
        self._project = FakeProject(self, name)
        return self._project

    def close_project(self) -> None:
        self._project = None

    def _need_project(self) -> FakeProject:
        return self._project if self._project is not None else self.new_project()

    def add_media(self, path: str | os.PathLike, *, frames: int = 240, fps: Any = "24", start_tc: str = "00:00:00:00",
                  resolution: str = "1920x1080", video_codec: str | None = "H.264", audio_codec: str | None = "Linear PCM",
                  audio_channels: int = 2, sample_rate: int = 48000, name: str | None = None,
                  folder: FakeFolder | None = None, properties: dict | None = None) -> FakeMediaPoolItem:
        """A media pool item in `folder` (default: the current folder), without import rules; the file need not exist."""
        rate = _rate(fps)
        item = FakeMediaPoolItem(self, os.fspath(path), frames=frames, rate=rate, start_tc=start_tc,
                                 resolution=resolution, video_codec=video_codec, audio_codec=audio_codec,
                                 audio_channels=audio_channels if audio_codec else 0, sample_rate=sample_rate,
                                 name=name, extra=properties)
        pool = self._need_project()._pool
        (folder or pool._current)._clips.append(item)
        return item

    def new_timeline(self, name: str, rate: Any = "24", start_frame: int | None = None, video_tracks: int = 2,
                     audio_tracks: int = 1, current: bool = True) -> FakeTimeline:
        """A timeline in the current project (made if there is none); start_frame None means 01:00:00:00."""
        project = self._need_project()
        if any(t._name == name for t in project._timelines):
            raise ValueError(f"a timeline named {name!r} exists already")
        setting = rate if isinstance(rate, str) else _rate_setting(_rate(rate))
        timeline = FakeTimeline(self, project, name, setting, start_frame, video_tracks, audio_tracks)
        project._timelines.append(timeline)
        if current or project._current is None:
            project._current = timeline
        return timeline

    def select(self, items: list) -> None:
        """What the editor has selected on the timeline(s), for Timeline.GetSelectedClips."""
        for timeline in (self._project._timelines if self._project else []):
            timeline._selected = []
        for item in items:
            item._tl._selected.append(item)


def scriptapp(fake: FakeResolve, *, external: bool = True) -> FakeResolve | None:
    """What `DaVinciResolveScript.scriptapp("Resolve")` gives: None when Resolve is gone, or when the edition
    refuses (external scripting is Studio-only; since 21.1 any Python scripting needs Studio)."""
    if not fake._alive or (not fake.studio and (external or fake._has((21, 1, 0)))):
        return None
    return fake


class FakeProjectManager(_Remote):
    """resolve.GetProjectManager()."""

    def __init__(self, fake: FakeResolve) -> None:
        self._fake = fake

    @_api()
    def GetCurrentProject(self) -> FakeProject | None:
        return self._fake._project


class FakeProject(_Remote):
    """A project: its timelines (one current, or none), its media pool and its settings."""

    def __init__(self, fake: FakeResolve, name: str) -> None:
        self._fake, self._name, self._id = fake, name, fake._new_id()
        self._timelines: list[FakeTimeline] = []
        self._current: FakeTimeline | None = None
        self._pool = FakeMediaPool(fake, self)
        self._settings = {"timelineFrameRate": "24", "timelineResolutionWidth": "1920",
                          "timelineResolutionHeight": "1080", "timelineDropFrameTimecode": "0"}

    def __repr__(self) -> str:
        return f"<FakeProject {self._name!r}>"

    @_api()
    def GetName(self) -> str:
        return self._name

    @_api((18, 0, 0))
    def GetUniqueId(self) -> str:
        return self._id

    @_api()
    def GetMediaPool(self) -> FakeMediaPool:
        return self._pool

    @_api()
    def GetTimelineCount(self) -> int:
        return len(self._timelines)

    @_api()
    def GetTimelineByIndex(self, idx: Any) -> FakeTimeline | None:
        return _at(self._timelines, idx)

    @_api()
    def GetCurrentTimeline(self) -> FakeTimeline | None:
        return self._current

    @_api()
    def SetCurrentTimeline(self, timeline: Any) -> bool:
        if not any(timeline is t for t in self._timelines):
            return False
        self._current = timeline
        return True

    @_api()
    def GetSetting(self, settingName: str | None = None) -> Any:
        return dict(self._settings) if not settingName else self._settings.get(settingName, "")


# ---------------------------------------------------------------- media pool, folders, media pool items

class FakeMediaPool(_Remote):
    """project.GetMediaPool(): folders, importing media and timelines, placing clips."""

    def __init__(self, fake: FakeResolve, project: FakeProject) -> None:
        self._fake, self._project = fake, project
        self._root = FakeFolder(fake, "Master", None)
        self._current = self._root

    def _folders(self) -> list[FakeFolder]:
        out, todo = [], [self._root]
        while todo:
            folder = todo.pop()
            out.append(folder)
            todo.extend(folder._subfolders)
        return out

    @_api()
    def GetRootFolder(self) -> FakeFolder:
        return self._root

    @_api()
    def GetCurrentFolder(self) -> FakeFolder:
        return self._current

    @_api()
    def SetCurrentFolder(self, folder: Any) -> bool:
        if not any(folder is f for f in self._folders()):
            return False
        self._current = folder
        return True

    @_api()
    def AddSubFolder(self, folder: Any, name: Any) -> FakeFolder | None:
        if not isinstance(name, str) or not name.strip() or not any(folder is f for f in self._folders()):
            return None
        child = FakeFolder(self._fake, name, folder)
        folder._subfolders.append(child)
        return child

    @_api()
    def ImportMedia(self, items: Any = None) -> list | None:
        """Import files into the CURRENT folder: [] entries for missing, unreadable or undecodable files."""
        if not isinstance(items, (list, tuple)):
            return None
        out = []
        for entry in items:
            if not isinstance(entry, (str, os.PathLike)):
                continue
            path = os.path.abspath(os.fspath(entry))
            existing = next((c for c in self._current._clips if c._path == path), None)
            if existing is not None:
                out.append(existing)       # measured: importing a file again into its bin returns the clip it has
                continue
            item = _media_from_file(self._fake, path)
            if item is None:
                continue
            if not self._fake.decodes_h264 and (item._video_id == "h264" or item._audio_id == "aac"):
                continue                   # Resolve Free on Linux cannot decode H.264 or AAC
            self._current._clips.append(item)
            out.append(item)
        return out

    @_api()
    def CreateEmptyTimeline(self, name: Any) -> FakeTimeline | None:
        project = self._project
        if not isinstance(name, str) or not name or any(t._name == name for t in project._timelines):
            return None
        timeline = FakeTimeline(self._fake, project, name, project._settings["timelineFrameRate"], None, 1, 1)
        project._timelines.append(timeline)
        project._current = timeline
        return timeline

    @_api()
    def AppendToTimeline(self, *args: Any) -> list:
        """Place clips on the current timeline (MediaPoolItems, or clipInfo dicts); see the module table."""
        timeline = self._project._current
        clips = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        if timeline is None:
            return []
        infos = [{"mediaPoolItem": c} if isinstance(c, FakeMediaPoolItem) else c for c in clips]
        for info in infos:
            if isinstance(info, dict) and any(_fractional(info.get(k)) for k in ("startFrame", "endFrame", "recordFrame")):
                return []                  # measured: one fractional frame and the whole batch places nothing
        placed: list[FakeTimelineItem] = []
        for info in infos:
            if isinstance(info, dict):
                placed += timeline._append(info)
        return placed

    @_api()
    def ImportTimelineFromFile(self, filePath: Any, importOptions: Any = None) -> FakeTimeline | None:
        """Build a timeline from an .otio file (from 18.6.6); None for a taken name or anything unreadable."""
        fake, project = self._fake, self._project
        if not isinstance(filePath, (str, os.PathLike)) or not fake._has((18, 6, 6)):
            return None
        path = Path(filePath)
        options = importOptions if isinstance(importOptions, dict) else {}
        if path.suffix.lower() != ".otio" or not path.is_file():
            return None
        try:
            source = otio.adapters.read_from_file(str(path))
        except Exception:  # noqa: BLE001 - Resolve answers an unreadable file with None, never raises
            return None
        name = options.get("timelineName") or path.stem
        if not isinstance(source, otio.schema.Timeline) or any(t._name == name for t in project._timelines):
            return None
        return _timeline_from_otio(self, source, name)


class FakeFolder(_Remote):
    """A Media Pool bin."""

    def __init__(self, fake: FakeResolve, name: str, parent: FakeFolder | None) -> None:
        self._fake, self._name, self._parent, self._id = fake, name, parent, fake._new_id()
        self._subfolders: list[FakeFolder] = []
        self._clips: list[FakeMediaPoolItem] = []

    def __repr__(self) -> str:
        return f"<FakeFolder {self._name!r}>"

    @_api()
    def GetName(self) -> str:
        return self._name

    @_api((18, 0, 0))
    def GetUniqueId(self) -> str:
        return self._id

    @_api()
    def GetSubFolderList(self) -> list:
        return list(self._subfolders)

    @_api()
    def GetClipList(self) -> list:
        return list(self._clips)


class FakeMediaPoolItem(_Remote):
    """A clip in the Media Pool; its properties are strings, as Resolve gives them."""

    def __init__(self, fake: FakeResolve, path: str, *, frames: int, rate: Fraction, start_tc: str | None,
                 resolution: str, video_codec: str | None, audio_codec: str | None, audio_channels: int,
                 sample_rate: int | None, name: str | None = None, extra: dict | None = None,
                 video_id: str | None = None, audio_id: str | None = None) -> None:
        self._fake, self._id, self._path = fake, fake._new_id(), path
        self._frames, self._rate = int(frames), rate
        tc = start_tc or "00:00:00:00"
        self._drop = ";" in tc and rate.denominator != 1
        self._tc_start = timecode_to_frames(tc, rate, self._drop) or 0
        self._has_video, self._has_audio = video_codec is not None, audio_codec is not None
        self._video_id = video_id or (video_codec or "").lower().replace(".", "")
        self._audio_id = audio_id or (audio_codec or "").lower()
        self._name = name or os.path.basename(path)
        fps = f"{float(rate):.3f}"
        self._props: dict[str, Any] = {
            "Clip Name": self._name, "File Name": os.path.basename(path), "File Path": path,
            "Type": "Video + Audio" if self._has_video and self._has_audio else ("Video" if self._has_video else "Audio"),
            "Format": _FORMATS.get(Path(path).suffix.lower(), Path(path).suffix.lstrip(".").upper()),
            "FPS": fps, "Frames": str(self._frames),
            "Start TC": frames_to_timecode(self._tc_start, rate, self._drop),
            "End TC": frames_to_timecode(self._tc_start + self._frames, rate, self._drop),
            "Duration": frames_to_timecode(self._frames, rate, self._drop),
            "Drop frame": "1" if self._drop else "0",
            "Resolution": resolution if self._has_video else "", "PAR": "Square",
            "Video Codec": video_codec or "", "Audio Codec": audio_codec or "",
            "Audio Ch": str(audio_channels if self._has_audio else 0),
            "Sample Rate": str(sample_rate) if self._has_audio and sample_rate else "",
        }
        self._props.update({k: str(v) for k, v in (extra or {}).items()})

    def __repr__(self) -> str:
        return f"<FakeMediaPoolItem {self._name!r} {self._frames}f@{_rate_setting(self._rate)}>"

    @_api()
    def GetName(self) -> str:
        return self._name

    @_api((18, 0, 0))
    def GetUniqueId(self) -> str:
        return self._id

    @_api()
    def GetClipProperty(self, propertyName: str | None = None) -> Any:
        props = dict(self._props)
        if self._fake.fps_as_number:
            props["FPS"] = round(float(self._rate), 3)
        return props if not propertyName else props.get(propertyName, "")   # an unknown key: a trivial ""


def _media_from_file(fake: FakeResolve, path: str) -> FakeMediaPoolItem | None:
    """A media pool item with the properties of a real file (probed with the project's PyAV probe)."""
    if not os.path.isfile(path):
        return None
    try:
        from ltx_retake.adapters.media_probe import probe_media
    except ImportError:  # the project is not importable here: the file's name is all we know
        return FakeMediaPoolItem(fake, path, frames=0, rate=Fraction(24), start_tc=None, resolution="",
                                 video_codec="", audio_codec=None, audio_channels=0, sample_rate=None)
    try:
        info = probe_media(path)
    except Exception:  # noqa: BLE001 - not media Resolve can read: it is simply not imported
        return None                        # not media Resolve can read: not imported
    vid, aid = info.video_codec or "", info.audio_codec or ""
    audio_name = "Linear PCM" if aid.startswith("pcm_") else _CODEC_NAMES.get(aid, aid.upper())
    tc = info.start_timecode
    if tc and info.drop_frame and ";" not in tc:
        tc = tc[:8] + ";" + tc[9:]
    return FakeMediaPoolItem(fake, path, frames=info.frame_count, rate=info.frame_rate, start_tc=tc,
                             resolution=f"{info.width}x{info.height}", video_codec=_CODEC_NAMES.get(vid, vid.upper()),
                             audio_codec=audio_name if info.has_audio else None,
                             audio_channels=info.audio_channels or 0, sample_rate=info.audio_rate,
                             video_id=vid, audio_id=aid if info.has_audio else "")


# ---------------------------------------------------------------- markers (timelines and items share them)

class _Markers:
    """Markers keyed by a frame relative to the owner's start (float keys, as the README shows them)."""

    def _marker_span(self) -> int:
        raise NotImplementedError

    @_api()
    def AddMarker(self, frameId: Any, color: Any, name: Any, note: Any, duration: Any, customData: Any = "") -> bool:
        frame, length = _int(frameId), _int(duration)
        if frame is None or length is None or length < 1 or color not in MARKER_COLORS:
            return False
        if not 0 <= frame < self._marker_span() or float(frame) in self._markers:
            return False
        self._markers[float(frame)] = {"color": color, "duration": float(length), "note": str(note or ""),
                                       "name": str(name or ""), "customData": str(customData or "")}
        return True

    @_api()
    def GetMarkers(self) -> dict:
        return {frame: dict(info) for frame, info in sorted(self._markers.items())}

    @_api()
    def GetMarkerByCustomData(self, customData: Any) -> dict:
        for _, info in sorted(self._markers.items()):
            if info["customData"] == customData:
                return dict(info)
        return {}

    @_api()
    def GetMarkerCustomData(self, frameId: Any) -> str:
        info = self._markers.get(float(frameId)) if _int(frameId) is not None else None
        return info["customData"] if info else ""

    @_api()
    def DeleteMarkerAtFrame(self, frameNum: Any) -> bool:
        return _int(frameNum) is not None and self._markers.pop(float(frameNum), None) is not None

    @_api()
    def DeleteMarkerByCustomData(self, customData: Any) -> bool:
        for frame, info in sorted(self._markers.items()):
            if info["customData"] == customData:
                del self._markers[frame]
                return True
        return False


# ---------------------------------------------------------------- timelines

class _Track:
    def __init__(self, name: str) -> None:
        self.name, self.enabled = name, True
        self.items: list[FakeTimelineItem] = []


class FakeTimeline(_Markers, _Remote):
    """A timeline: absolute record frames from GetStartFrame(), 1-based tracks, markers relative to the start."""

    def __init__(self, fake: FakeResolve, project: FakeProject, name: str, rate_setting: str, start_frame: int | None,
                 video_tracks: int, audio_tracks: int) -> None:
        self._fake, self._project, self._name, self._id = fake, project, name, fake._new_id()
        self._setting = rate_setting
        self._rate = _rate(rate_setting)
        self._drop = rate_setting.strip().upper().endswith(" DF")
        self._start = start_frame if start_frame is not None else timecode_to_frames(
            "01:00:00;00" if self._drop else "01:00:00:00", self._rate, self._drop)
        self._tracks: dict[str, list[_Track]] = {
            "video": [_Track(f"Video {i}") for i in range(1, video_tracks + 1)],
            "audio": [_Track(f"Audio {i}") for i in range(1, audio_tracks + 1)], "subtitle": []}
        self._markers: dict[float, dict] = {}
        self._marks: dict[str, dict] = {}
        self._playhead = self._start
        self._selected: list[FakeTimelineItem] = []

    def __repr__(self) -> str:
        return f"<FakeTimeline {self._name!r} {self._setting} from {self._start}>"

    # internals
    def _end(self) -> int:
        ends = [it._start + it._duration for tracks in self._tracks.values() for t in tracks for it in t.items]
        return max([self._start, *ends])

    def _marker_span(self) -> int:
        return self._end() - self._start

    def _items(self) -> list[FakeTimelineItem]:
        return [it for kind in ("video", "audio") for t in self._tracks[kind] for it in sorted(t.items, key=_by_start)]

    def _locate(self, item: FakeTimelineItem) -> tuple[str, int] | None:
        for kind, tracks in self._tracks.items():
            for i, track in enumerate(tracks, 1):
                if any(item is it for it in track.items):
                    return kind, i
        return None

    def _free(self, kind: str, index: int, start: int, end: int) -> bool:
        track = _at(self._tracks.get(kind, []), index)
        return track is not None and all(end <= it._start or start >= it._start + it._duration for it in track.items)

    def _put(self, kind: str, index: int, item: FakeTimelineItem) -> FakeTimelineItem:
        if not self._free(kind, index, item._start, item._start + item._duration):
            raise ValueError(f"{kind} track {index} does not exist or is taken at {item._start}..{item._start + item._duration}")
        self._tracks[kind][index - 1].items.append(item)
        return item

    def _append(self, info: dict) -> list[FakeTimelineItem]:
        fake, mpi = self._fake, info.get("mediaPoolItem")
        if not isinstance(mpi, FakeMediaPoolItem):
            return []
        first = _int(info.get("startFrame", 0))
        last = _int(info.get("endFrame")) if "endFrame" in info else None
        if first is None or ("endFrame" in info and last is None):
            return []
        stop = mpi._frames if last is None else last + (0 if fake._end_exclusive() else 1)
        first, stop = max(0, first), min(mpi._frames, stop)
        media_type = info.get("mediaType")
        kinds = [k for k, has, code in (("video", mpi._has_video, 1), ("audio", mpi._has_audio, 2))
                 if has and media_type in (None, code)]
        if stop <= first or not kinds:
            return []
        if fake._has((18, 5, 0)):
            track, record = _int(info.get("trackIndex", 1)), info.get("recordFrame")
            record = None if record is None else _int(record)
            if track is None or ("recordFrame" in info and record is None):
                return []
        else:
            track, record = 1, None        # before 18.5 trackIndex and recordFrame are ignored
        duration = round((stop - first) * self._rate / mpi._rate)
        kinds = [k for k in kinds if _at(self._tracks[k], track) is not None]   # no such track: that part is skipped
        if not kinds:
            return []
        if record is None:
            lane = _at(self._tracks[kinds[0]], track)
            record = max([self._start, *(it._start + it._duration for it in (lane.items if lane else []))])
        if duration < 1 or not all(self._free(k, track, record, record + duration) for k in kinds):
            return []                      # measured: an overlapping placement is dropped without a word
        return [self._put(k, track, FakeTimelineItem(fake, self, mpi=mpi, start=record, duration=duration,
                                                      source=(first, stop))) for k in kinds]

    # builders
    def place(self, track: int, mpi: FakeMediaPoolItem, record_start: int, source_in: int, source_out: int,
              kind: str = "video", retime: float | None = None, *, duration: int | None = None,
              name: str | None = None) -> FakeTimelineItem:
        """Put `mpi`'s source frames [source_in, source_out) at absolute `record_start`; `retime` is the speed in
        percent (50: twice as long), or give the record `duration` outright."""
        if duration is None:
            natural = Fraction(source_out - source_in) * self._rate / mpi._rate
            duration = round(natural * 100 / Fraction(str(retime))) if retime else round(natural)
        return self._put(kind, track, FakeTimelineItem(self._fake, self, mpi=mpi, start=record_start,
                                                       duration=duration, source=(source_in, source_out), name=name))

    def place_effect(self, track: int, record_start: int, duration: int, name: str = "Solid Color",
                     kind: str = "generator") -> FakeTimelineItem:
        """A title, generator or adjustment clip: an item without a media pool item."""
        return self._put("video", track, FakeTimelineItem(self._fake, self, mpi=None, start=record_start,
                                                          duration=duration, source=(0, duration), name=name,
                                                          effect=kind))

    def set_playhead(self, frame: int) -> None:
        self._playhead = int(frame)

    def set_marks(self, in_: int, out: int, type: str = "all") -> None:
        """In/out marks as the editor sets them (relative to the timeline start, out inclusive), on any version."""
        for kind in (("video", "audio") if type == "all" else (type,)):
            self._marks[kind] = {"in": int(in_), "out": int(out)}

    def set_track_enabled(self, kind: str, index: int, enabled: bool) -> None:
        self._tracks[kind][index - 1].enabled = bool(enabled)

    # API
    @_api()
    def GetName(self) -> str:
        return self._name

    @_api((18, 0, 0))
    def GetUniqueId(self) -> str:
        return self._id

    @_api()
    def GetSetting(self, settingName: str | None = None) -> Any:
        settings = {"timelineFrameRate": self._setting, "timelinePlaybackFrameRate": self._setting,
                    "timelineDropFrameTimecode": "1" if self._drop else "0", "timelineResolutionWidth": "1920",
                    "timelineResolutionHeight": "1080", "useCustomSettings": "0"}
        return settings if not settingName else settings.get(settingName, "")

    @_api()
    def GetStartFrame(self) -> int:
        return self._start

    @_api()
    def GetEndFrame(self) -> int:
        return self._end()

    @_api()
    def GetStartTimecode(self) -> str:
        return frames_to_timecode(self._start, self._rate, self._drop)

    @_api()
    def GetTrackCount(self, trackType: Any) -> int:
        return len(self._tracks.get(trackType, [])) if isinstance(trackType, str) else 0

    @_api()
    def GetTrackName(self, trackType: Any, trackIndex: Any) -> str | None:
        track = _at(self._tracks.get(trackType, []), trackIndex) if isinstance(trackType, str) else None
        return track.name if track else None

    @_api()
    def GetItemListInTrack(self, trackType: Any, index: Any) -> list | None:
        track = _at(self._tracks.get(trackType, []), index) if isinstance(trackType, str) else None
        return sorted(track.items, key=_by_start) if track else None

    @_api((18, 0, 0))
    def GetIsTrackEnabled(self, trackType: Any, trackIndex: Any) -> bool:
        track = _at(self._tracks.get(trackType, []), trackIndex) if isinstance(trackType, str) else None
        return bool(track and track.enabled)

    @_api((18, 0, 0))
    def SetTrackEnable(self, trackType: Any, trackIndex: Any, enabled: Any) -> bool:
        track = _at(self._tracks.get(trackType, []), trackIndex) if isinstance(trackType, str) else None
        if track is None or not isinstance(enabled, bool):
            return False
        track.enabled = enabled
        return True

    @_api((18, 5, 0))
    def AddTrack(self, trackType: Any, options: Any = None) -> bool:
        if trackType not in self._tracks:
            return False
        tracks, index = self._tracks[trackType], None
        if isinstance(options, dict):
            if not self._fake._has((19, 0, 0)):
                return False               # the newTrackOptions form came with 19.0
            audio_type, index = options.get("audioType", "mono"), _int(options.get("index"))
            if trackType == "audio" and audio_type not in _AUDIO_TYPES:
                return False
        elif options is not None and not (trackType == "audio" and options in _AUDIO_TYPES):
            return False
        track = _Track(f"{trackType.title()} {len(tracks) + 1}")
        if index is not None and 1 <= index <= len(tracks):
            tracks.insert(index - 1, track)  # tracks above move up one
        else:
            tracks.append(track)           # no index, or out of bounds: appended
        return True

    @_api()
    def DeleteClips(self, timelineItems: Any, ripple: Any = False) -> bool:
        if not isinstance(timelineItems, (list, tuple)):
            return False
        removed = False
        for item in timelineItems:
            where = self._locate(item) if isinstance(item, FakeTimelineItem) else None
            if where is None:
                continue
            track = self._tracks[where[0]][where[1] - 1]
            track.items = [it for it in track.items if it is not item]
            if ripple is True:
                for later in track.items:
                    if later._start >= item._start:
                        later._start -= item._duration
            removed = True
        return removed

    @_api((21, 0, 4))
    def GetSelectedClips(self) -> list:
        return [it for it in self._items() if any(it is s for s in self._selected)]

    @_api((19, 1, 0))
    def GetMarkInOut(self) -> dict:
        return {kind: dict(marks) for kind, marks in self._marks.items()}

    @_api((19, 1, 0))
    def SetMarkInOut(self, markIn: Any, markOut: Any, type: Any = "all") -> bool:
        a, b = _int(markIn), _int(markOut)
        if type not in ("video", "audio", "all") or a is None or b is None or a < 0 or b < a:
            return False
        self.set_marks(a, b, type)
        return True

    @_api((19, 1, 0))
    def ClearMarkInOut(self, type: Any = "all") -> bool:
        if type not in ("video", "audio", "all"):
            return False
        for kind in (("video", "audio") if type == "all" else (type,)):
            self._marks.pop(kind, None)
        return True

    @_api()
    def GetCurrentTimecode(self) -> str:
        return frames_to_timecode(self._playhead, self._rate, self._drop)

    @_api()
    def SetCurrentTimecode(self, timecode: Any) -> bool:
        frame = timecode_to_frames(timecode, self._rate, self._drop) if isinstance(timecode, str) else None
        if frame is None:
            return False
        self._playhead = frame
        return True

    @_api()
    def GetCurrentVideoItem(self) -> FakeTimelineItem | None:
        if self._project._current is not self:
            return None                    # only the timeline open in the viewer has a playhead to ask about
        for track in reversed(self._tracks["video"]):
            if track.enabled:
                for item in track.items:
                    if item._start <= self._playhead < item._start + item._duration:
                        return item
        return None

    @_api()
    def Export(self, fileName: Any, exportType: Any, exportSubtype: Any = None) -> bool:
        if exportType is None or exportType != FakeResolve._constants["EXPORT_OTIO"][0] or not self._fake._has((18, 5, 0)):
            return False                   # this fake writes OTIO only; EXPORT_OTIO exists from 18.5
        if not isinstance(fileName, (str, os.PathLike)):
            return False
        try:
            otio.adapters.write_to_file(self._to_otio(), os.fspath(fileName), adapter_name="otio_json")
        except Exception:  # noqa: BLE001 - a failed export is a bare False in Resolve
            return False
        return True

    def _to_otio(self) -> otio.schema.Timeline:
        rate = float(self._rate)
        out = otio.schema.Timeline(name=self._name, global_start_time=_RT(self._start, rate))
        for kind in ("video", "audio"):
            for track in self._tracks[kind]:
                lane = otio.schema.Track(name=track.name, kind=otio.schema.TrackKind.Video if kind == "video"
                                         else otio.schema.TrackKind.Audio)
                cursor = self._start
                for item in sorted(track.items, key=_by_start):
                    if item._start < cursor:
                        continue           # before the timeline start: it renders nothing and is not exported
                    if item._start > cursor:
                        lane.append(otio.schema.Gap(source_range=_TR(_RT(0, rate), _RT(item._start - cursor, rate))))
                    lane.append(item._to_otio(self._rate))
                    cursor = item._start + item._duration
                out.tracks.append(lane)
        for frame, info in sorted(self._markers.items()):
            out.tracks.markers.append(_otio_marker(info, _TR(_RT(frame, rate), _RT(info["duration"], rate))))
        return out


def _by_start(item: FakeTimelineItem) -> int:
    return item._start


def _otio_marker(info: dict, where: otio.opentime.TimeRange) -> otio.schema.Marker:
    return otio.schema.Marker(name=info["name"], marked_range=where, color=_OTIO_COLORS.get(info["color"], "BLUE"),
                              metadata={"Resolve_OTIO": {"Color": info["color"], "Note": info["note"],
                                                         "customData": info["customData"]}})


def _timeline_from_otio(pool: FakeMediaPool, source: otio.schema.Timeline, name: str) -> FakeTimeline:
    fake, project = pool._fake, pool._project
    start_time = source.global_start_time
    first = next(iter(source.find_clips()), None)
    measured = start_time.rate if start_time else (first.source_range.start_time.rate if first and first.source_range else 24)
    rate = _rate(Fraction(measured).limit_denominator(1001))
    video = [t for t in source.tracks if t.kind == otio.schema.TrackKind.Video]
    audio = [t for t in source.tracks if t.kind == otio.schema.TrackKind.Audio]
    start = round(start_time.rescaled_to(float(rate)).value) if start_time else None
    timeline = FakeTimeline(fake, project, name, _rate_setting(rate), start, max(1, len(video)), max(1, len(audio)))
    for kind, lanes in (("video", video), ("audio", audio)):
        for index, lane in enumerate(lanes, 1):
            for child in lane:
                if not isinstance(child, otio.schema.Clip):
                    continue
                where = child.range_in_parent()
                record = timeline._start + round(where.start_time.rescaled_to(float(rate)).value)
                duration = round(where.duration.rescaled_to(float(rate)).value)
                ref = child.media_reference
                if not isinstance(ref, otio.schema.ExternalReference):
                    timeline._put(kind, index, FakeTimelineItem(fake, timeline, mpi=None, start=record, duration=duration,
                                                                source=(0, duration), name=child.name, effect="generator"))
                    continue
                mpi = _pool_media(pool, ref)
                media_rate = float(mpi._rate)
                first = round(child.source_range.start_time.rescaled_to(media_rate).value) - (
                    round(ref.available_range.start_time.rescaled_to(media_rate).value) if ref.available_range
                    else mpi._tc_start)
                scalar = 1.0
                for effect in child.effects:
                    if isinstance(effect, otio.schema.LinearTimeWarp):
                        scalar *= effect.time_scalar
                span = round(duration * mpi._rate / rate * Fraction(scalar).limit_denominator(100000))
                timeline._put(kind, index, FakeTimelineItem(fake, timeline, mpi=mpi, start=record, duration=duration,
                                                            source=(first, first + span), name=child.name))
    project._timelines.append(timeline)
    if project._current is None:
        project._current = timeline
    return timeline


def _pool_media(pool: FakeMediaPool, ref: otio.schema.ExternalReference) -> FakeMediaPoolItem:
    url = ref.target_url
    path = unquote(urlparse(url).path) if url.startswith("file:") else url
    for folder in pool._folders():
        for clip in folder._clips:
            if clip._path == path:
                return clip
    item = _media_from_file(pool._fake, path) if os.path.isfile(path) else None
    if item is None:                       # offline media: what the file's available range says
        span = ref.available_range
        rate = _rate(Fraction(span.duration.rate).limit_denominator(1001)) if span else Fraction(24)
        item = FakeMediaPoolItem(pool._fake, path, frames=round(span.duration.value) if span else 0, rate=rate,
                                 start_tc=frames_to_timecode(round(span.start_time.value), rate) if span else None,
                                 resolution="1920x1080", video_codec="", audio_codec=None, audio_channels=0,
                                 sample_rate=None)
    pool._current._clips.append(item)
    return item


# ---------------------------------------------------------------- timeline items

class FakeTimelineItem(_Markers, _Remote):
    """A clip on a timeline: absolute record frames, GetEnd exclusive, takes, colour, markers relative to its start."""

    def __init__(self, fake: FakeResolve, timeline: FakeTimeline, *, mpi: FakeMediaPoolItem | None, start: int,
                 duration: int, source: tuple[int, int], name: str | None = None, effect: str | None = None) -> None:
        self._fake, self._tl, self._id = fake, timeline, fake._new_id()
        self._mpi, self._start, self._duration, self._source = mpi, int(start), int(duration), tuple(source)
        self._name = name or (mpi._name if mpi else "Solid Color")
        self._effect = effect
        self._markers: dict[float, dict] = {}
        self._color, self._enabled = "", True
        self._props = dict(_ITEM_PROPERTIES)
        self._takes: list[dict] | None = None
        self._take = 0

    def __repr__(self) -> str:
        where = self._tl._locate(self)
        track = f"{where[0][0].upper()}{where[1]}" if where else "off"
        return f"<FakeTimelineItem {self._name!r} {track} {self._start}..{self._start + self._duration}>"

    def _marker_span(self) -> int:
        return self._duration

    def _active(self) -> tuple[FakeMediaPoolItem | None, tuple[int, int], str]:
        if self._takes:
            take = self._takes[self._take - 1]
            return take["mpi"], take["source"], take["mpi"]._name
        return self._mpi, self._source, self._name

    def _reported(self, first: int, stop: int) -> tuple[int, int]:
        return first, (stop if self._fake._end_exclusive() else stop - 1)

    def _to_otio(self, tl_rate: Fraction) -> otio.schema.Clip:
        r = float(tl_rate)
        mpi, (first, stop), name = self._active()
        if mpi is None:
            clip = otio.schema.Clip(name=name, media_reference=otio.schema.GeneratorReference(
                name=name, generator_kind=self._effect or "generator"), source_range=_TR(_RT(0, r), _RT(self._duration, r)))
        else:
            mr = float(mpi._rate)
            ref = otio.schema.ExternalReference(target_url=mpi._path,
                                                available_range=_TR(_RT(mpi._tc_start, mr), _RT(mpi._frames, mr)))
            clip = otio.schema.Clip(name=name, media_reference=ref,
                                    source_range=_TR(_RT(mpi._tc_start + first, mr), _RT(self._duration, r).rescaled_to(mr)))
            expected = self._duration * mpi._rate / tl_rate
            if abs((stop - first) - expected) > 1:
                clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=float((stop - first) / expected)))
        for frame, info in sorted(self._markers.items()):
            base = clip.source_range.start_time
            clip.markers.append(_otio_marker(info, _TR(base + _RT(frame, r).rescaled_to(base.rate),
                                                       _RT(info["duration"], r).rescaled_to(base.rate))))
        return clip

    @_api()
    def GetName(self) -> str:
        return self._active()[2]

    @_api((18, 0, 0))
    def GetUniqueId(self) -> str:
        return self._id

    @_api()
    def GetStart(self, *_subframe: Any) -> int:
        return self._start

    @_api()
    def GetEnd(self, *_subframe: Any) -> int:
        return self._start + self._duration   # exclusive: the first frame after the item

    @_api()
    def GetDuration(self, *_subframe: Any) -> int:
        return self._duration

    @_api()
    def GetLeftOffset(self, *_subframe: Any) -> int:
        mpi, (first, stop), _ = self._active()
        return round(first * self._duration / (stop - first)) if mpi is not None and stop > first else 0

    @_api()
    def GetRightOffset(self, *_subframe: Any) -> int:
        mpi, (first, stop), _ = self._active()
        return round((mpi._frames - stop) * self._duration / (stop - first)) if mpi is not None and stop > first else 0

    @_api((19, 0, 2))
    def GetSourceStartFrame(self) -> int:
        return self._active()[1][0]

    @_api((19, 0, 2))
    def GetSourceEndFrame(self) -> int:
        return self._active()[1][1] - (1 if self._fake.source_end_inclusive else 0)

    @_api()
    def GetMediaPoolItem(self) -> FakeMediaPoolItem | None:
        return self._active()[0]

    @_api((19, 0, 0))
    def GetTrackTypeAndIndex(self) -> list | None:
        where = self._tl._locate(self)
        return list(where) if where else None

    @_api((18, 0, 0))
    def GetClipEnabled(self) -> bool:
        return self._enabled

    @_api((18, 0, 0))
    def SetClipEnabled(self, enabled: Any) -> bool:
        if not isinstance(enabled, bool):
            return False
        self._enabled = enabled
        return True

    @_api()
    def SetClipColor(self, colorName: Any) -> bool:
        if colorName not in CLIP_COLORS:
            return False
        self._color = colorName
        return True

    @_api()
    def GetClipColor(self) -> str:
        return self._color

    @_api()
    def ClearClipColor(self) -> bool:
        self._color = ""
        return True

    @_api()
    def GetProperty(self, propertyKey: Any = None) -> Any:
        return dict(self._props) if not propertyKey else self._props.get(propertyKey)

    @_api()
    def SetProperty(self, propertyKey: Any, propertyValue: Any) -> bool:
        if propertyKey not in self._props or not isinstance(propertyValue, (int, float)):
            return False
        self._props[propertyKey] = type(self._props[propertyKey])(propertyValue)
        return True

    @_api()
    def AddTake(self, mediaPoolItem: Any, startFrame: Any = None, endFrame: Any = None) -> bool:
        if not isinstance(mediaPoolItem, FakeMediaPoolItem) or self._mpi is None:
            return False
        if _fractional(startFrame) or _fractional(endFrame):
            return False
        first = 0 if startFrame is None else _int(startFrame)
        if endFrame is None:
            stop = mediaPoolItem._frames
        else:
            stop = _int(endFrame) + (0 if self._fake._end_exclusive() else 1) if _int(endFrame) is not None else None
        if first is None or stop is None or not 0 <= first < stop <= mediaPoolItem._frames:
            return False
        if self._takes is None:           # the first take turns the clip into a take selector; it is take 1
            self._takes = [{"mpi": self._mpi, "source": self._source, "reported": self._reported(*self._source)}]
            self._take = 1
        plays = min(stop, first + round(self._duration * mediaPoolItem._rate / self._tl._rate))
        self._takes.append({"mpi": mediaPoolItem, "source": (first, plays), "reported": self._reported(first, stop)})
        return True

    @_api()
    def GetTakesCount(self) -> int:
        return len(self._takes) if self._takes else 0

    @_api()
    def GetSelectedTakeIndex(self) -> int:
        return self._take if self._takes else 0

    @_api()
    def GetTakeByIndex(self, idx: Any) -> dict | None:
        take = _at(self._takes or [], idx)
        if take is None:
            return None
        return {"startFrame": take["reported"][0], "endFrame": take["reported"][1], "mediaPoolItem": take["mpi"]}

    @_api()
    def SelectTakeByIndex(self, idx: Any) -> bool:
        if _at(self._takes or [], idx) is None:
            return False
        self._take = _int(idx)
        return True

    @_api()
    def DeleteTakeByIndex(self, idx: Any) -> bool:
        if _at(self._takes or [], idx) is None or len(self._takes) == 1:
            return False
        i = _int(idx)
        del self._takes[i - 1]
        if self._take > i or self._take > len(self._takes):
            self._take -= 1
        return True

    @_api()
    def FinalizeTake(self) -> bool:
        if not self._takes:
            return False
        mpi, source, name = self._active()
        self._mpi, self._source, self._name = mpi, source, name
        self._takes, self._take = None, 0
        return True
