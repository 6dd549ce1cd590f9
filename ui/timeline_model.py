"""What the timeline view shows, without Qt: which item is where on each track (in frames), which clip is #N, what shows at a frame.

`TimelineIndex` is built once per timeline (and again after an edit): every track's drawable items (clips and
nests, not gaps) as numpy arrays of start and end frames, so a paint or a click looks up only what is in the
visible span. Frames count at the timeline's rate (`ltx_retake.selection.timeline_rate`) from the start of the
tracks (0 = the first frame, no global start); a track whose items count at another rate is rescaled through
seconds. Ranges are [in, out) with the out point exclusive, as everywhere in ltx-retake.

A clip's `#N` on its track is the core's numbering (`ltx_retake.selection.clips_on_track`), looked up when a
clip is picked, so the panel and the CLI's `--clip '#N'` always agree.

`TimelineIndex.picture_at(frame)` says what a viewer shows at a frame: the top enabled video track's enabled
clip there (through nests, the nest's top layer), its active version, and the media time in that clip; and
`sound_at(a, b)` which audio clips play over a span. Neither does any I/O. The painter widget is
`ltx_retake.ui.timeline_view.TimelineView`; this module imports no Qt.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import opentimelineio as otio

from ..errors import RetakeError
from ..metadata import NS
from ..plan import time_scalar
from ..selection import clip_showing, clips_on_track, timeline_rate, track_label, visible_range
from ..timing import exact_rate, is_drop_frame_rate

__all__ = ["ClipPick", "Overlay", "Picture", "SoundPiece", "TimelineIndex", "TrackRow", "badge_text", "inclusive_span",
           "short_version", "CLIP", "NESTED", "OTHER"]

_RT = otio.opentime.RationalTime
_TR = otio.opentime.TimeRange

CLIP, NESTED, OTHER = 0, 1, 2      # kinds of drawable items: a clip, a nest (a stack or track inside the track), other


@dataclass(frozen=True)
class ClipPick:
    """One selected clip: its track, the clip, where it sits on the track and its `#N` on that track."""

    track_index: int                        # index into timeline.tracks
    clip: otio.schema.Clip
    record_range: otio.opentime.TimeRange   # track time, as range_of_all_children gives it (nested: as clips_on_track)
    number: int                             # 1-based position among ltx_retake.selection.clips_on_track(track)


@dataclass(frozen=True)
class Overlay:
    """What a planned retake will do to one track item, drawn before anything is sent."""

    track_index: int
    window: tuple[int, int]   # record frames (track time, from 0), end exclusive: the part to be regenerated
    handles: tuple[int, int]  # record frames of the whole input cut sent (window plus context handles)
    text: str                 # the sentence saying where the result lands
    item: tuple[int, int] | None = None   # the changed clip's span on the track: its handles are drawn in its own lane
    linked: bool = False      # the linked sound of a planned picture (it is replaced too)


@dataclass(frozen=True)
class Picture:
    """What a viewer shows at one frame of the timeline."""

    frame: int                               # track frame asked for
    track_index: int | None = None           # None: nothing (a gap on every enabled video track)
    clip: otio.schema.Clip | None = None
    version: str = ""                        # "original" or the active version's key
    media_time: otio.opentime.RationalTime | None = None   # in the clip's source time (speed applied)
    offline: bool = False                    # the panel found no media for the clip here
    problem: str = ""                        # why no picture can be had (a generator, a speed it cannot map)

    @property
    def empty(self) -> bool:
        return self.clip is None


@dataclass(frozen=True)
class SoundPiece:
    """One audio clip's part of a span: its record frames and where that part starts in its media."""

    track_index: int
    clip: otio.schema.Clip
    record: tuple[int, int]                  # track frames [a, b)
    media_time: otio.opentime.RationalTime   # source time at record[0]


def badge_text(clip) -> str | None:
    """The version pill of a retaken clip: the active version and how many there are ('v2/3', 'orig/3'); None without versions."""
    try:
        meta = clip.metadata.get(NS)
        if not meta:
            return None
        versions = meta.get("versions")
        if not versions:
            return None
        keys = list(versions)
        active = meta.get("active")
        if active is None and clip.active_media_reference_key in keys:
            active = clip.active_media_reference_key
    except (AttributeError, TypeError, ValueError):  # metadata of a shape we did not write
        return None
    return f"{short_version(active)}/{len(keys)}"


def short_version(key) -> str:
    """'v2' for retake_v002, 'orig' for the original."""
    if key is None or str(key) in ("original", otio.schema.Clip.DEFAULT_MEDIA_KEY):
        return "orig"
    m = re.search(r"(\d+)$", str(key))
    return f"v{int(m.group(1))}" if m else str(key)[:8]


def active_version(clip) -> str:
    """The key of the reference a clip shows: "original" or a version key."""
    key = clip.active_media_reference_key
    return "original" if key == otio.schema.Clip.DEFAULT_MEDIA_KEY else str(key)


def inclusive_span(timeline, rng: otio.opentime.TimeRange) -> str:
    """A record range as NLEs show marks: its first and its last frame ('01:00:06:12-01:00:09:00' for a range whose
    out point, exclusive, is 01:00:09:01)."""
    from ..selection import record_timecode

    last = rng.end_time_exclusive() - _RT(1, float(timeline_rate(timeline)))
    if last < rng.start_time:
        last = rng.start_time
    return f"{record_timecode(timeline, rng.start_time)}-{record_timecode(timeline, last)}"


def _frames_array(frames) -> np.ndarray:
    return np.ascontiguousarray(frames, dtype=np.float64)


class TrackRow:
    """One track, indexed: its drawable items (clips and nests, not gaps) as arrays of start and end frames."""

    __slots__ = ("badges", "block_of", "disabled", "enabled", "end", "ends", "items", "kinds", "label", "marker_colors",
                 "marker_ends", "marker_starts", "name", "offline", "ranges", "rate_of", "starts", "track", "track_index",
                 "trans_ends", "trans_starts", "video", "_numbers")

    def __init__(self, track_index: int, track, label: str):
        self.track_index = track_index
        self.track = track
        self.video = track.kind == otio.schema.TrackKind.Video
        self.label = label
        self.name = track.name or ""
        self.enabled = bool(track.enabled)
        self.items: list = []
        self.ranges: list = []
        self.badges: dict[int, str] = {}
        self.offline: set[int] = set()       # blocks whose media cannot be found here (hatched, badged)
        self.block_of: dict = {}
        self.end = 0.0
        self.rate_of: dict = {}
        self.marker_colors: list[str] = []   # OTIO marker colour names
        self._numbers: dict[int, tuple[int, otio.opentime.TimeRange]] | None = None

    def number_of(self, clip) -> tuple[int, otio.opentime.TimeRange] | None:
        """The clip's `#N` on this track and its track range, as the core counts them (`clips_on_track`)."""
        if self._numbers is None:
            self._numbers = {id(c): (n, r) for n, (c, r) in enumerate(clips_on_track(self.track), 1)}
        return self._numbers.get(id(clip))


class TimelineIndex:
    """A timeline's tracks as arrays of item frames; the frame rate, timecode facts and what shows where."""

    def __init__(self, timeline=None, offline_ids: set[int] = frozenset()):
        self.timeline = timeline
        self.offline_ids = set(offline_ids)
        self.rows: list[TrackRow] = []              # display order: highest video track on top, then audio
        self.row_of_track: dict[int, int] = {}
        self.rate = Fraction(24)
        self.fps = 24.0
        self.nominal = 24
        self.drop_frame = False
        self.start_frames = 0                       # the timeline's global start, in frames
        self.duration = 0.0
        self.ruler_markers = (_frames_array([]), [])
        if timeline is not None:
            self._build()

    # ---- building ------------------------------------------------------------------------------------------

    def _build(self) -> None:
        tl = self.timeline
        try:
            self.rate = timeline_rate(tl)
        except RetakeError:  # no clip has a rate: an empty timeline
            self.rate = Fraction(24)
        self.fps = float(self.rate)
        self.drop_frame = is_drop_frame_rate(self.rate)
        self.nominal = self.rate.numerator if self.rate.denominator == 1 else math.ceil(self.fps - 1e-9)
        g = tl.global_start_time
        self.start_frames = 0 if g is None else round(g.rescaled_to(self.fps).value)
        rows = [self._index_track(i, t, track_label(tl, i)) for i, t in enumerate(tl.tracks)]
        video = [r for r in rows if r.video]
        other = [r for r in rows if not r.video]
        self.rows = list(reversed(video)) + other
        self.row_of_track = {r.track_index: n for n, r in enumerate(self.rows)}
        self.duration = max((r.end for r in self.rows), default=0.0)
        found = []  # the timeline's own markers, on its stack of tracks (stack time is track time)
        for m in tl.tracks.markers:
            at = m.marked_range.start_time
            found.append((at.value * self.factor(at.rate, {}), str(m.color or "")))
        found.sort(key=lambda fc: fc[0])
        self.ruler_markers = (_frames_array([f for f, _ in found]), [c for _, c in found])

    def factor(self, rate: float, cache: dict) -> float:
        """Frames at the timeline's rate per unit of a time at `rate` (1 when the rates are the same)."""
        k = cache.get(rate)
        if k is None:
            try:
                same = exact_rate(rate) == self.rate
            except RetakeError:
                same = True
            k = cache[rate] = 1.0 if same else self.fps / rate
        return k

    def _index_track(self, ti: int, track, label: str) -> TrackRow:
        row = TrackRow(ti, track, label)
        cache = row.rate_of
        starts: list[float] = []
        ends: list[float] = []
        kinds: list[int] = []
        disabled: list[bool] = []
        t_starts: list[float] = []
        t_ends: list[float] = []
        m_starts: list[float] = []
        m_ends: list[float] = []
        m_colors: list[str] = []
        items, ranges, badges, block_of = row.items, row.ranges, row.badges, row.block_of
        offline = self.offline_ids
        try:
            all_ranges = track.range_of_all_children()
        except otio.exceptions.OTIOError:
            all_ranges = {}
        end = 0.0
        for item in track:
            r = all_ranges.get(item)
            if r is None:
                continue
            s = r.start_time
            k = self.factor(s.rate, cache)
            a = s.value * k
            b = a + r.duration.value * k
            if isinstance(item, otio.schema.Transition):
                t_starts.append(a)
                t_ends.append(b)
                continue
            end = max(end, b)
            if isinstance(item, otio.schema.Gap):
                continue
            n = len(items)
            if isinstance(item, otio.schema.Clip):
                kinds.append(CLIP)
                md = item.metadata
                if len(md) and NS in md:  # `in` on OTIO metadata costs ~10 us: most clips have none
                    text = badge_text(item)
                    if text:
                        badges[n] = text
                if len(item.markers):
                    self._clip_markers(item, a, m_starts, m_ends, m_colors, cache)
            elif isinstance(item, otio.core.Composition):
                kinds.append(NESTED)
            else:
                kinds.append(OTHER)
            block_of[item] = n
            if offline and id(item) in offline:
                row.offline.add(n)
            items.append(item)
            ranges.append(r)
            starts.append(a)
            ends.append(b)
            disabled.append(not item.enabled)
        for m in track.markers:  # the track's own markers, in track time
            mr = m.marked_range
            k = self.factor(mr.start_time.rate, cache)
            m_starts.append(mr.start_time.value * k)
            m_ends.append((mr.start_time.value + mr.duration.value) * k)
            m_colors.append(str(m.color or ""))
        row.end = end
        row.starts = _frames_array(starts)
        row.ends = _frames_array(ends)
        row.kinds = np.asarray(kinds, dtype=np.int8)
        row.disabled = np.asarray(disabled, dtype=bool)
        row.trans_starts = _frames_array(t_starts)
        row.trans_ends = _frames_array(t_ends)
        order = np.argsort(np.asarray(m_starts, dtype=np.float64), kind="stable")
        row.marker_starts = _frames_array(m_starts)[order]
        row.marker_ends = _frames_array(m_ends)[order]
        row.marker_colors = [m_colors[i] for i in order.tolist()]
        return row

    def _clip_markers(self, clip, record_start: float, starts: list, ends: list, colors: list, cache: dict) -> None:
        """A clip's markers in track frames: their ranges count in the clip's source time, from its trimmed start."""
        try:
            used = clip.trimmed_range()
        except otio.exceptions.OTIOError:
            return
        for m in clip.markers:
            mr = m.marked_range
            at = mr.start_time
            if not (used.start_time <= at < used.end_time_exclusive()):
                continue  # outside the part of the clip that is used: it does not show
            k = self.factor(at.rate, cache)
            off = (at - used.start_time).value * k
            starts.append(record_start + off)
            ends.append(record_start + off + mr.duration.value * self.factor(mr.duration.rate, cache))
            colors.append(str(m.color or ""))

    # ---- looking things up ---------------------------------------------------------------------------------

    def max_frame(self) -> int:
        return max(0, math.ceil(self.duration) - 1)

    def row(self, track_index: int) -> TrackRow | None:
        r = self.row_of_track.get(track_index)
        return None if r is None else self.rows[r]

    def block_at(self, row: TrackRow, f: float, tol: float = 0.0) -> int | None:
        """The item (block index) of `row` under track frame `f`; within `tol` frames of it for slivers."""
        if not len(row.starts):
            return None
        i = int(np.searchsorted(row.starts, f, side="right")) - 1
        if i < 0 or f >= row.ends[i]:
            if tol <= 0:
                return None
            j = int(np.searchsorted(row.ends, f - tol, side="right"))
            if j >= len(row.starts) or row.starts[j] > f + tol:
                return None
            i = j
        return i

    def clip_at(self, track_index: int, f: float, tol: float = 0.0):
        """The clip that shows at track frame `f` (in a nest: its top enabled layer there), or None."""
        row = self.row(track_index)
        if row is None:
            return None
        i = self.block_at(row, f, tol)
        if i is None:
            return None
        kind = int(row.kinds[i])
        item = row.items[i]
        if kind == CLIP:
            return item
        if kind != NESTED:
            return None
        rate = row.ranges[i].start_time.rate
        k = self.factor(rate, row.rate_of)
        f = min(max(f, float(row.starts[i])), float(row.ends[i]) - 1e-6)
        try:
            return clip_showing(row.track, _TR(_RT(f / k, rate), _RT(min(1.0, row.ends[i] - f) / k, rate)))
        except (otio.exceptions.OTIOError, ValueError):
            return None

    def locate(self, track_index: int, clip):
        """(row, block index, nested?) of a clip on a track, or None."""
        row = self.row(track_index)
        if row is None:
            return None
        block = row.block_of.get(clip)
        if block is not None:
            return row, block, False
        node = clip
        while True:
            parent = node.parent()
            if parent is None:
                return None
            if parent is row.track:
                break
            node = parent
        block = row.block_of.get(node)
        return None if block is None else (row, block, True)

    def clip_span(self, track_index: int, clip) -> tuple[float, float] | None:
        """Track frames [a, b) where a clip is drawn (a nested clip: the part of its nest where it shows)."""
        found = self.locate(track_index, clip)
        if found is None:
            return None
        row, block, nested = found
        a, b = float(row.starts[block]), float(row.ends[block])
        if nested:
            try:
                shown = visible_range(clip, row.track)
            except otio.exceptions.OTIOError:
                shown = None
            if shown is not None:
                k = self.factor(shown.start_time.rate, row.rate_of)
                a = shown.start_time.value * k
                b = a + shown.duration.value * k
        return a, b

    def pick(self, track_index: int, clip) -> ClipPick | None:
        """The clip as a pick: its track range and `#N` as the core counts them."""
        row = self.row(track_index)
        if row is None:
            return None
        found = row.number_of(clip)
        if found is None:
            return None
        number, rng = found
        return ClipPick(track_index, clip, rng, number)

    def item_span(self, track_index: int, frame: float) -> tuple[int, int] | None:
        """The span (track frames) of the clip that shows at `frame` on a track: what a planned job changes there."""
        clip = self.clip_at(track_index, frame)
        span = self.clip_span(track_index, clip) if clip is not None else None
        return None if span is None else (round(span[0]), round(span[1]))

    # ---- what plays -----------------------------------------------------------------------------------------

    def _media_time(self, row: TrackRow, clip, f: float) -> otio.opentime.RationalTime:
        """The source time of `clip` at track frame `f` (through nests; a constant speed applied)."""
        found = self.locate(row.track_index, clip)
        if found is None:
            raise ValueError(f"{clip.name!r} is not on track {row.label}")
        _, block, nested = found
        outer = row.ranges[block]
        trate = outer.start_time.rate
        t = _RT(f / self.factor(trate, row.rate_of), trate)
        used = clip.trimmed_range()
        rate = used.start_time.rate
        if nested:
            offset = (row.track.transformed_time(t, clip) - used.start_time).rescaled_to(rate)
        else:
            offset = (t - outer.start_time).rescaled_to(rate)
        scalar = time_scalar(clip)
        if scalar != 1:
            offset = _RT(offset.value * float(scalar), rate)
        return used.start_time + offset

    def picture_at(self, frame: int) -> Picture:
        """What shows at a track frame: the top enabled video track's enabled clip (a nest's top layer), its active
        version and the source time there. A gap on every video track gives an empty Picture."""
        f = float(frame) + 1e-6
        for row in self.rows:              # display order: the top video track first
            if not row.video:
                break
            if not row.enabled:
                continue
            clip = self.clip_at(row.track_index, f)
            if clip is None or not clip.enabled:
                continue
            found = self.locate(row.track_index, clip)
            offline = found is not None and found[1] in found[0].offline and not found[2]
            offline = offline or id(clip) in self.offline_ids
            try:
                media_time = self._media_time(row, clip, f - 1e-6)
            except (RetakeError, otio.exceptions.OTIOError, ValueError) as exc:
                return Picture(frame, row.track_index, clip, active_version(clip), None, offline, str(exc))
            return Picture(frame, row.track_index, clip, active_version(clip), media_time, offline)
        return Picture(frame)

    def timecode_time(self, frame: int) -> otio.opentime.RationalTime:
        """A track frame as a time at the timeline's rate (for `record_timecode`)."""
        return _RT(frame, self.fps)

    def sound_at(self, a: int, b: int, *, video: bool = False) -> list[SoundPiece]:
        """The enabled audio clips that play over track frames [a, b), each with its part of the span. `video`: the
        top enabled video track's clips instead (their media's own sound, for a timeline with no audio tracks)."""
        out: list[SoundPiece] = []
        for row in self.rows:
            if row.video != video or not row.enabled or not len(row.starts):
                continue
            if video and out:
                break
            i0 = int(np.searchsorted(row.ends, a, side="right"))
            i1 = int(np.searchsorted(row.starts, b, side="left"))
            for i in range(i0, i1):
                item = row.items[i]
                if int(row.kinds[i]) != CLIP or not item.enabled:
                    continue
                s = max(a, math.ceil(row.starts[i] - 1e-9))
                e = min(b, math.ceil(row.ends[i] - 1e-9))
                if e <= s:
                    continue
                try:
                    media = self._media_time(row, item, float(s))
                except (RetakeError, otio.exceptions.OTIOError, ValueError):
                    continue
                out.append(SoundPiece(row.track_index, item, (s, e), media))
        return out
