"""The timeline view: tracks, clips, markers, the playhead, selections and planned retakes, drawn with QPainter.

One widget paints the whole timeline itself (no item per clip), so a 10,000-clip cut shows and zooms quickly:
an index built once per timeline (`ltx_retake.ui.timeline_model.TimelineIndex`, Qt-free) holds every track's
item start and end frames in numpy arrays; a paint
looks up only the items in the visible frame span, and items narrower than a few pixels are merged into one
bar per run (level of detail), so a fit-all view draws at most about one rectangle per pixel column per track.

Frames are counted at the timeline's rate (`ltx_retake.selection.timeline_rate`) from the start of the
tracks (0 = the first frame, no global start); a track whose items count at another rate is rescaled through
seconds. Ranges are [in, out) with the out point exclusive, as everywhere in ltx-retake. The view never
edits the timeline: after the timeline object changes (a version switched, a retake spliced) call `refresh`.

Mouse and keys follow NLE habits: click a clip to select it (shift or ctrl click adds or removes), click empty
space to clear, drag on the ruler to mark a range, click the ruler to move the playhead, I and O mark in and
out at the playhead, Left/Right step a frame (shift: a second), Home/End, J/K/L ask for playback (the window's
transport plays), + / = / - zoom, \\ fits, Escape
clears; the wheel scrolls (ctrl+wheel zooms around the pointer); a right click on a clip asks for its menu.
"""

from __future__ import annotations

import math

import numpy as np
import opentimelineio as otio
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen, QPolygon
from PySide6.QtWidgets import QScrollBar, QSizePolicy, QWidget

from ..selection import record_timecode
from .timeline_model import NESTED as _NESTED
from .timeline_model import ClipPick, Overlay, TimelineIndex, TrackRow, badge_text

__all__ = ["ClipPick", "Overlay", "TimelineView", "badge_text"]

_RT = otio.opentime.RationalTime


# --- looks -------------------------------------------------------------------------------------------------

_HEADER_W = 132
_RULER_H = 30
_ROW_H = 42
_CLIP_PAD = 3
_MIN_DETAIL_PX = 3.0     # narrower items merge into runs
_MIN_TEXT_PX = 30        # narrower clips get no name
_MAX_PPF = 100.0

_BG = QColor("#1c1d20")
_ROW_BG = (QColor("#232428"), QColor("#202124"))
_RULER_BG = QColor("#2c2e33")
_HEADER_BG = QColor("#27292e")
_HEADER_TARGET = QColor("#34506f")
_TEXT = QColor("#e6e6e6")
_TEXT_DIM = QColor("#8d9096")
_VIDEO = QColor("#3d6fb5")
_AUDIO = QColor("#3f8f5b")
_NEST = QColor("#7a5bb5")
_DENSE_VIDEO = QColor("#2f578f")
_DENSE_AUDIO = QColor("#316f47")
_SELECTED = QColor("#ffd24a")
_PLAYHEAD = QColor("#ff4545")
_RANGE = QColor(90, 160, 255, 70)
_RANGE_EDGE = QColor(120, 180, 255)
_WINDOW = QColor(255, 128, 0, 170)
_WINDOW_EDGE = QColor(255, 170, 60)
_WINDOW_LINKED = QColor(255, 128, 0, 120)
_HANDLES = QColor(255, 210, 140, 60)
_HANDLES_HATCH = QColor(255, 210, 140, 150)
_BADGE = QColor("#f0a030")
_BADGE_TEXT = QColor("#1a1a1a")
_OFFLINE = QColor("#d04040")
_TRANSITION = QColor(240, 240, 240, 200)
_STRIP_BG = QColor("#121316")
_STRIP_TEXT = QColor("#ffcf8a")

_MARKER_COLORS = {
    "PINK": QColor("#ff7eb6"), "RED": QColor("#ff3b3b"), "ORANGE": QColor("#ff9a2e"), "YELLOW": QColor("#ffe14a"),
    "GREEN": QColor("#37d65a"), "CYAN": QColor("#3ee0e0"), "BLUE": QColor("#3f7bff"), "PURPLE": QColor("#a25cff"),
    "MAGENTA": QColor("#ff3fd8"), "BLACK": QColor("#111111"), "WHITE": QColor("#ffffff"),
}
_MARKER_DEFAULT = QColor("#ff3b3b")

# ruler label steps, in timecode frames (nominal rate) or seconds
_FRAME_STEPS = (1, 2, 5, 10)
_SECOND_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


def _marker_color(name) -> QColor:
    return _MARKER_COLORS.get(str(name or "").upper(), _MARKER_DEFAULT)


_Row = TrackRow


# --- the widget --------------------------------------------------------------------------------------------


class TimelineView(QWidget):
    """An NLE-style timeline: ruler, track headers, clips, markers, playhead, clip and range selection, overlays."""

    selectionChanged = Signal()
    playheadMoved = Signal(int)
    scrubbed = Signal()                              # the user moved the playhead (keys, ruler): playback stops
    shuttleRequested = Signal(int)                   # J -1, K 0, L +1
    clipMenuRequested = Signal(int, object, QPoint)  # track index, the otio Clip, global position

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 140)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        font = QFont(self.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.9))
        self.setFont(font)
        self._hsb = QScrollBar(Qt.Orientation.Horizontal, self)
        self._vsb = QScrollBar(Qt.Orientation.Vertical, self)
        self._vsb.hide()
        self._hsb.valueChanged.connect(self._on_hscroll)
        self._vsb.valueChanged.connect(lambda _v: self.update())
        self._timeline = None
        self._offline: set[int] = set()      # ids of clips whose media cannot be found here
        self._index = TimelineIndex()         # the Qt-free index: what is where, in frames
        self._build_index()
        self._ppf = 1.0
        self._scroll = 0.0                    # the frame at the left edge of the track area
        self._fitted = True                   # keep fitting on resize until the user zooms
        self._playhead = 0
        self._mark_in: int | None = None
        self._mark_out: int | None = None
        self._picked: list[tuple[int, object]] = []   # (track index, clip)
        self._target: int | None = None
        self._overlays: list[Overlay] = []
        self._drag: dict | None = None
        self._stats = {"rects": 0, "texts": 0, "markers": 0}
        self._strip_h = 0
        self._layout()

    # --- the timeline -----------------------------------------------------------------------------------

    def set_timeline(self, timeline) -> None:
        """Show a timeline (None clears): index it once, reset the selection and fit it to the width."""
        self._timeline = timeline
        self._offline = set()
        self._picked = []
        self._mark_in = self._mark_out = None
        self._target = None
        self._overlays = []
        self._playhead = 0
        self._build_index()
        self._fitted = True
        self._layout()
        self.zoom_fit()
        self.selectionChanged.emit()
        self.playheadMoved.emit(self._playhead)

    def timeline(self):
        """The timeline shown (None when cleared)."""
        return self._timeline

    def set_offline(self, clips) -> None:
        """Draw these clips as offline (their media cannot be found here): hatched, with an "offline" badge."""
        self._offline = {id(c) for c in clips}
        self.refresh()

    def offline_count(self) -> int:
        """How many drawn clips are marked offline."""
        return sum(len(row.offline) for row in self._rows)

    def refresh(self, timeline=None) -> None:
        """The timeline was edited (or replaced by an edited copy, `timeline`): index it again, keeping zoom, scroll and
        what is still there of the selection."""
        before = (list(self._picked), self._mark_in, self._mark_out, self._target)
        if timeline is not None:
            self._timeline = timeline
        self._build_index()
        self._picked = [(ti, c) for ti, c in self._picked if ti in self._row_of_track and self._locate(ti, c) is not None]
        n = len(self._rows)
        if self._target is not None and not 0 <= self._target < n:
            self._target = None
        top = self._max_frame()
        if self._mark_in is not None and self._mark_in > top:
            self._mark_in = None
        if self._mark_out is not None and self._mark_out > top + 1:
            self._mark_out = top + 1
        self._layout()
        self._move_playhead(min(self._playhead, top), follow=False)
        self._set_scroll(self._scroll)
        self.update()
        after = (list(self._picked), self._mark_in, self._mark_out, self._target)
        if len(before[0]) != len(after[0]) or before[1:] != after[1:]:
            self.selectionChanged.emit()

    def _build_index(self) -> None:
        """Index the timeline (the Qt-free `TimelineIndex`) and take its facts for painting."""
        idx = self._index = TimelineIndex(self._timeline, self._offline)
        self._rows = idx.rows
        self._row_of_track = idx.row_of_track
        self._rate, self._fps, self._nominal, self._df = idx.rate, idx.fps, idx.nominal, idx.drop_frame
        self._start_frames = idx.start_frames
        self._duration = idx.duration
        frames, names = idx.ruler_markers
        self._ruler_markers = (frames, [_marker_color(n) for n in names])

    def index(self) -> TimelineIndex:
        """The Qt-free index of the timeline shown: what is where, in frames."""
        return self._index

    def _max_frame(self) -> int:
        return self._index.max_frame()

    # --- geometry ---------------------------------------------------------------------------------------

    def _layout(self) -> None:
        w, h = self.width(), self.height()
        fm = QFontMetrics(self.font())
        lines = min(len(self._strip_texts()), 4)
        self._strip_h = lines * (fm.height() + 4) + 8 if lines else 0
        hsb_h = self._hsb.sizeHint().height()
        rows_bottom = h - hsb_h - self._strip_h
        rows_h = len(self._rows) * _ROW_H
        avail = max(0, rows_bottom - _RULER_H)
        need_v = rows_h > avail
        vsb_w = self._vsb.sizeHint().width() if need_v else 0
        self._content_right = w - vsb_w
        self._rows_bottom = rows_bottom
        self._hsb.setGeometry(_HEADER_W, h - hsb_h, max(0, self._content_right - _HEADER_W), hsb_h)
        self._vsb.setVisible(need_v)
        if need_v:
            self._vsb.setGeometry(w - vsb_w, _RULER_H, vsb_w, avail)
            self._vsb.setRange(0, rows_h - avail)
            self._vsb.setPageStep(max(1, avail))
            self._vsb.setSingleStep(_ROW_H // 2)
        else:
            self._vsb.setValue(0)
        self._sync_hsb()

    def _content_w(self) -> int:
        return max(1, self._content_right - _HEADER_W)

    def track_rect(self, track_index: int) -> QRect:
        """The row of a track in the track area (headers excluded), where it is drawn now; empty when unknown."""
        r = self._row_of_track.get(track_index)
        if r is None:
            return QRect()
        return QRect(_HEADER_W, self._row_y(r), self._content_w(), _ROW_H)

    def header_rect(self, track_index: int) -> QRect:
        """The track's header on the left, where it is drawn now; empty when unknown."""
        r = self._row_of_track.get(track_index)
        if r is None:
            return QRect()
        return QRect(0, self._row_y(r), _HEADER_W, _ROW_H)

    def ruler_rect(self) -> QRect:
        """The ruler above the tracks (headers excluded)."""
        return QRect(_HEADER_W, 0, self._content_w(), _RULER_H)

    def _row_y(self, display_row: int) -> int:
        return _RULER_H + display_row * _ROW_H - (self._vsb.value() if self._vsb.isVisible() else 0)

    def _row_at(self, y: int) -> int | None:
        if y < _RULER_H or y >= self._rows_bottom:
            return None
        r = (y - _RULER_H + (self._vsb.value() if self._vsb.isVisible() else 0)) // _ROW_H
        return r if 0 <= r < len(self._rows) else None

    def pixels_per_frame(self) -> float:
        """The zoom: how many pixels one frame takes."""
        return self._ppf

    def x_of(self, frame: int) -> int:
        """The x where a frame starts, in the widget's coordinates."""
        return _HEADER_W + math.floor((frame - self._scroll) * self._ppf + 0.5)

    def _xf(self, frame: float) -> float:
        return (frame - self._scroll) * self._ppf

    def frame_at(self, x: int) -> int:
        """The frame under a pixel column x (not clamped to the timeline)."""
        return math.floor(self._frame_f(x))

    def _frame_f(self, x: float) -> float:
        return (x + 0.5 - _HEADER_W) / self._ppf + self._scroll

    def _boundary_at(self, x: float) -> int:
        """The frame boundary (cut point) nearest to x, for range ends."""
        return round((x - _HEADER_W) / self._ppf + self._scroll)

    def clip_rect(self, track_index: int, clip) -> QRect:
        """Where a clip is drawn now (a nested clip: the part of its nest where it shows); empty when not on the track."""
        span = self._index.clip_span(track_index, clip)
        if span is None:
            return QRect()
        return self._block_rect(self._row_of_track[track_index], *span)

    def _block_rect(self, display_row: int, a: float, b: float) -> QRect:
        y = self._row_y(display_row)
        xa, xb = self.x_of(a), self.x_of(b)
        return QRect(xa, y + _CLIP_PAD, max(1, xb - xa), _ROW_H - 2 * _CLIP_PAD)

    def _locate(self, track_index: int, clip):
        return self._index.locate(track_index, clip)

    # --- zoom and scroll --------------------------------------------------------------------------------

    def _fit_ppf(self) -> float:
        return self._content_w() / max(self._duration, 1.0)

    def _min_ppf(self) -> float:
        return min(self._fit_ppf() * 0.5, _MAX_PPF)

    def zoom_fit(self) -> None:
        """Fit the whole timeline to the width."""
        self._fitted = True
        self._ppf = self._fit_ppf()
        self._set_scroll(0.0)

    def zoom_in(self) -> None:
        """Zoom in one step, around the playhead when it shows, else around the middle."""
        self._zoom_by(1.5, self._zoom_anchor())

    def zoom_out(self) -> None:
        """Zoom out one step, around the playhead when it shows, else around the middle."""
        self._zoom_by(1 / 1.5, self._zoom_anchor())

    def _zoom_anchor(self) -> int:
        x = self.x_of(self._playhead)
        return x if _HEADER_W <= x < self._content_right else _HEADER_W + self._content_w() // 2

    def _zoom_by(self, factor: float, anchor_x: float) -> None:
        new = min(_MAX_PPF, max(self._min_ppf(), self._ppf * factor))
        if new == self._ppf:
            return
        at = (anchor_x - _HEADER_W) / self._ppf + self._scroll
        self._ppf = new
        self._fitted = False
        self._set_scroll(at - (anchor_x - _HEADER_W) / new)

    def _max_scroll(self) -> float:
        return max(0.0, self._duration - self._content_w() / self._ppf)

    def _set_scroll(self, frame: float) -> None:
        self._scroll = min(max(0.0, frame), self._max_scroll())
        self._sync_hsb()
        self.update()

    def _sync_hsb(self) -> None:
        total = max(0, math.ceil(self._max_scroll() * self._ppf))
        self._hsb.blockSignals(True)
        self._hsb.setRange(0, total)
        self._hsb.setPageStep(self._content_w())
        self._hsb.setSingleStep(max(1, self._content_w() // 20))
        self._hsb.setValue(round(self._scroll * self._ppf))
        self._hsb.blockSignals(False)

    def _on_hscroll(self, value: int) -> None:
        self._scroll = min(max(0.0, value / self._ppf), self._max_scroll())
        self.update()

    def _ensure_visible(self, frame: int) -> None:
        x = self._xf(frame)
        w = self._content_w()
        if x < 0 or x + self._ppf > w:
            self._set_scroll(frame - (w / self._ppf) * 0.5)

    # --- selection --------------------------------------------------------------------------------------

    def selected_clips(self) -> list[ClipPick]:
        """The selected clips, by track then record time, each with its `#N` as the core counts it."""
        out = [p for p in (self._index.pick(ti, clip) for ti, clip in self._picked) if p is not None]
        out.sort(key=lambda p: (p.track_index, p.record_range.start_time.to_seconds()))
        return out

    def selected_range(self) -> tuple[int, int] | None:
        """The marked range [in, out) in track frames, or None unless both ends are marked."""
        if self._mark_in is None or self._mark_out is None or self._mark_out <= self._mark_in:
            return None
        return self._mark_in, self._mark_out

    def marks_text(self) -> str:
        """The marks as NLEs show them, both inclusive: 'In 01:00:06:12  Out 01:00:09:00  (61 frames)'."""
        a, b = self._mark_in, self._mark_out
        parts = []
        if a is not None:
            parts.append(f"In {self._timecode(a)}")
        if b is not None:
            parts.append(f"Out {self._timecode(b - 1)}")
        if a is not None and b is not None and b > a:
            parts.append(f"({b - a} frames)")
        return "  ".join(parts)

    def marks(self) -> tuple[int | None, int | None]:
        """The in and out marks as they are, either possibly unset."""
        return self._mark_in, self._mark_out

    def set_range(self, start: int, end: int) -> None:
        """Mark [start, end) (clears the clip selection, like a range dragged on the ruler)."""
        self._set_marks(start, end, clear_clips=True)

    def target_track(self) -> int:
        """The track a range applies to: the last clicked track (clip or header), by default the first video track."""
        if self._target is not None:
            return self._target
        tracks = list(self._timeline.tracks) if self._timeline is not None else []
        for i, t in enumerate(tracks):
            if t.kind == otio.schema.TrackKind.Video:
                return i
        return 0

    def set_picks(self, picks: list[tuple[int, object]]) -> None:
        """Select these clips, (track index, clip) each (clears the range, like clicking them); the first one's track
        becomes the target. Clips not on the shown timeline are left out."""
        picked = [(ti, c) for ti, c in picks if ti in self._row_of_track and self._locate(ti, c) is not None]
        self._picked = picked
        self._mark_in = self._mark_out = None
        if picked:
            self._target = picked[0][0]
        self.update()
        self.selectionChanged.emit()

    def set_target_track(self, index: int) -> None:
        """Make a track the one ranges apply to."""
        if index not in self._row_of_track or index == self._target:
            return
        self._target = index
        self.update()
        self.selectionChanged.emit()

    def clear_selection(self) -> None:
        """Drop the clip selection and the marked range."""
        if not self._picked and self._mark_in is None and self._mark_out is None:
            return
        self._picked = []
        self._mark_in = self._mark_out = None
        self.update()
        self.selectionChanged.emit()

    def _set_marks(self, start: int | None, end: int | None, *, clear_clips: bool) -> None:
        changed = (start, end) != (self._mark_in, self._mark_out) or (clear_clips and self._picked)
        self._mark_in, self._mark_out = start, end
        if clear_clips:
            self._picked = []
        if changed:
            self.update()
            self.selectionChanged.emit()

    def _pick(self, ti: int, clip, toggle: bool) -> None:
        entry = next(((t, c) for t, c in self._picked if t == ti and c is clip), None)
        if toggle:
            if entry is None:
                self._picked.append((ti, clip))
            else:
                self._picked.remove(entry)
        else:
            self._picked = [(ti, clip)]
        self._mark_in = self._mark_out = None
        self._target = ti
        self.update()
        self.selectionChanged.emit()

    def _is_picked(self, ti: int, clip) -> bool:
        return any(t == ti and c is clip for t, c in self._picked)

    # --- playhead and overlays --------------------------------------------------------------------------

    def playhead(self) -> int:
        """The frame under the playhead."""
        return self._playhead

    def set_playhead(self, frame: int) -> None:
        """Move the playhead (kept within the timeline; scrolled into view)."""
        self._move_playhead(frame, follow=True)

    def _move_playhead(self, frame: int, *, follow: bool) -> None:
        frame = min(max(0, int(frame)), self._max_frame())
        if follow:
            self._ensure_visible(frame)
        if frame != self._playhead:
            self._playhead = frame
            self.update()
            self.playheadMoved.emit(frame)

    def set_overlays(self, overlays: list[Overlay]) -> None:
        """Show what planned retakes will do (replaces the ones shown; [] clears)."""
        self._overlays = list(overlays)
        self._layout()
        self.update()

    def overlays(self) -> list[Overlay]:
        """The overlays shown."""
        return list(self._overlays)

    def paint_stats(self) -> dict[str, int]:
        """What the last paint drew: clip rectangles, clip names and markers (for tests and benchmarks)."""
        return dict(self._stats)

    # --- the ruler --------------------------------------------------------------------------------------

    def _label_number(self, frame: int) -> int:
        """An absolute frame as its timecode's frame count (drop-frame labels skip numbers)."""
        if not self._df or frame < 0:
            return frame
        nominal = self._nominal
        drop = 2 * (nominal // 30)
        per_10min = nominal * 600 - drop * 9
        per_min = nominal * 60 - drop
        tens, rest = divmod(frame, per_10min)
        rest = max(rest, drop)
        return frame + drop * 9 * tens + drop * ((rest - drop) // per_min)

    def _frame_of_label(self, n: int) -> int:
        """A timecode's frame count back to an absolute frame; a dropped label gives the next frame that exists."""
        if not self._df or n < 0:
            return n
        nominal = self._nominal
        drop = 2 * (nominal // 30)
        minute = nominal * 60
        total_minutes = n // minute
        if total_minutes % 10 and n % minute < drop:
            n += drop - n % minute
        return n - drop * (total_minutes - total_minutes // 10)

    def _ruler_step(self) -> int:
        fm = QFontMetrics(self.font())
        need = fm.horizontalAdvance("00:00:00:00") + 18
        steps = [s for s in _FRAME_STEPS if s < self._nominal] + [s * self._nominal for s in _SECOND_STEPS]
        for s in steps:
            if s * self._ppf >= need:
                return s
        return steps[-1]

    def _ruler_frames(self, step: int) -> list[int]:
        """Track frames of the ticks every `step` timecode frames across the view, at round timecodes."""
        f0 = self._scroll
        f1 = self._scroll + self._content_w() / self._ppf
        first = self._label_number(self._start_frames + math.floor(f0))
        n = (first // step) * step
        out: list[int] = []
        for _ in range(4000):
            f = self._frame_of_label(n) - self._start_frames
            if f > f1:
                break
            if f >= f0 - 1e-9:
                out.append(f)
            n += step
        return out

    def ruler_labels(self) -> list[tuple[int, str]]:
        """The ruler's timecode labels in the current view: (x where the label's frame starts, text)."""
        if self._timeline is None:
            return []
        return [(self.x_of(f), self._timecode(f)) for f in self._ruler_frames(self._ruler_step())]

    def _timecode(self, frame: int) -> str:
        return record_timecode(self._timeline, _RT(frame, self._fps))

    # --- painting ---------------------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        self._stats = {"rects": 0, "texts": 0, "markers": 0}
        self._badges: list[tuple[QRect, str]] = []
        w = self.width()
        p.fillRect(self.rect(), _BG)
        fm = QFontMetrics(self.font())
        if self._timeline is None:
            p.setPen(_TEXT_DIM)
            p.drawText(QRect(0, 0, w, self._rows_bottom), Qt.AlignmentFlag.AlignCenter, "No timeline")
            return
        rows_clip = QRect(0, _RULER_H, self._content_right, max(0, self._rows_bottom - _RULER_H))
        content = QRect(_HEADER_W, _RULER_H, self._content_w(), rows_clip.height())
        target = self._row_of_track.get(self.target_track())
        for r, row in enumerate(self._rows):
            y = self._row_y(r)
            if y + _ROW_H <= _RULER_H or y >= self._rows_bottom:
                continue
            p.setClipRect(content)
            self._paint_row(p, r, row, y, fm)
            p.setClipRect(rows_clip)
            self._paint_header(p, row, y, r == target, fm)
        p.setClipping(False)
        p.setClipRect(QRect(0, 0, self._content_right, self._rows_bottom))
        self._paint_ruler(p, fm)
        self._paint_playhead(p)
        p.setClipping(False)
        if self._strip_h:
            self._paint_strip(p, fm)

    def _visible_span(self) -> tuple[float, float]:
        return self._scroll, self._scroll + self._content_w() / self._ppf

    def _paint_row(self, p: QPainter, r: int, row: _Row, y: int, fm: QFontMetrics) -> None:
        p.fillRect(QRect(_HEADER_W, y, self._content_w(), _ROW_H), _ROW_BG[r % 2])
        f0, f1 = self._visible_span()
        top, height = y + _CLIP_PAD, _ROW_H - 2 * _CLIP_PAD
        left, right = _HEADER_W - 8, self._content_right + 8
        i0 = int(np.searchsorted(row.ends, f0, side="right"))
        i1 = int(np.searchsorted(row.starts, f1, side="left"))
        base = _VIDEO if row.video else _AUDIO
        dense = _DENSE_VIDEO if row.video else _DENSE_AUDIO
        if i1 > i0:
            p0 = (row.starts[i0:i1] - self._scroll) * self._ppf
            p1 = (row.ends[i0:i1] - self._scroll) * self._ppf
            narrow = (p1 - p0) < _MIN_DETAIL_PX
            # narrow items in a row merge into runs; a run breaks at a wide item or a gap of a pixel or more
            brk = np.ones(len(p0), dtype=bool)
            if len(p0) > 1:
                brk[1:] = ~narrow[1:] | ~narrow[:-1] | ((p0[1:] - p1[:-1]) >= 1.0)
            starts_at = np.flatnonzero(brk)
            ends_at = np.append(starts_at[1:] - 1, len(p0) - 1)
            run_narrow = narrow[starts_at]
            xa = np.floor(p0[starts_at] + 0.5).astype(np.int64) + _HEADER_W
            xb = np.floor(p1[ends_at] + 0.5).astype(np.int64) + _HEADER_W
            xa = np.clip(xa, left, right)
            xb = np.maximum(np.clip(xb, left, right), xa + 1)
            # merged runs: plain bars
            p.setPen(Qt.PenStyle.NoPen)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            idx = np.flatnonzero(run_narrow)
            if len(idx):
                single = (starts_at[idx] == ends_at[idx])
                dis = row.disabled[i0 + starts_at[idx]] & single
                colors = (dense, self._dim(dense))
                for a, b, d in zip(xa[idx].tolist(), xb[idx].tolist(), dis.tolist()):
                    p.fillRect(QRect(a, top, b - a, height), colors[d])
                self._stats["rects"] += len(idx)
            # wide items: rounded clips with name, badge and outline
            for j in np.flatnonzero(~run_narrow).tolist():
                block = i0 + int(starts_at[j])
                self._paint_clip(p, row, block, int(xa[j]), int(xb[j]), top, height, base, fm)
        self._paint_transitions(p, row, f0, f1, top, height)
        self._paint_badges(p)
        if not row.enabled:
            p.fillRect(QRect(_HEADER_W, y, self._content_w(), _ROW_H), QColor(0, 0, 0, 110))
        if row.track_index == self.target_track():
            self._paint_range_band(p, y, _ROW_H)
        for ov in self._overlays:
            if ov.track_index == row.track_index:
                self._paint_overlay(p, ov, y)
        self._paint_markers(p, row, f0, f1, top)  # above the bands: a note stays readable under a planned window
        self._paint_selected(p, row)

    @staticmethod
    def _dim(c: QColor) -> QColor:
        g = (c.red() + c.green() + c.blue()) // 3
        return QColor((c.red() + g) // 3, (c.green() + g) // 3, (c.blue() + g) // 3)

    def _paint_clip(self, p: QPainter, row: _Row, block: int, xa: int, xb: int, top: int, height: int,
                    base: QColor, fm: QFontMetrics) -> None:
        kind = int(row.kinds[block])
        color = _NEST if kind == _NESTED else base
        disabled = bool(row.disabled[block])
        if disabled:
            color = self._dim(color)
        w = xb - xa
        rect = QRect(xa, top, max(1, w - 1), height)
        self._stats["rects"] += 1
        if w >= 8:
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(color.lighter(135), 1))
            p.setBrush(color)
            p.drawRoundedRect(rect, 4, 4)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            if kind == _NESTED:
                p.setPen(QPen(color.lighter(160), 1, Qt.PenStyle.DashLine))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(rect.adjusted(3, 3, -3, -3))
        else:
            p.fillRect(rect, color)
        offline = block in row.offline
        if offline:  # media not found here: hatched, with a badge, as NLEs draw offline media
            p.fillRect(rect, QBrush(_OFFLINE, Qt.BrushStyle.BDiagPattern))
        badge = row.badges.get(block)
        if offline:
            badge = f"offline · {badge}" if badge else "offline"
        text_right = xb - 4
        if badge is not None:
            bw = fm.horizontalAdvance(badge) + 10
            if w >= bw + 6:
                pill = QRect(xb - bw - 4, top + 3, bw, fm.height() + 1)
                self._badges.append((pill, badge))  # drawn over the transitions, see _paint_badges
                text_right = pill.left() - 3
            elif w >= 4:
                p.fillRect(QRect(xb - 4, top, 3, 3), _BADGE)
        if w >= _MIN_TEXT_PX:
            item = row.items[block]
            name = item.name or ("(nest)" if kind == _NESTED else "(clip)")
            text_left = max(xa, _HEADER_W) + 5
            avail = text_right - text_left
            if avail >= 12:
                p.setPen(_TEXT_DIM if disabled else _TEXT)
                p.drawText(QRect(text_left, top + (height - fm.height()) // 2, avail, fm.height() + 2),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           fm.elidedText(name, Qt.TextElideMode.ElideRight, avail))
                self._stats["texts"] += 1

    def _paint_badges(self, p: QPainter) -> None:
        if not self._badges:
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for pill, text in self._badges:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(_BADGE)
            p.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
            p.setPen(_BADGE_TEXT)
            p.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self._badges = []

    def _paint_transitions(self, p: QPainter, row: _Row, f0: float, f1: float, top: int, height: int) -> None:
        if not len(row.trans_starts):
            return
        i0 = int(np.searchsorted(row.trans_ends, f0, side="right"))
        i1 = int(np.searchsorted(row.trans_starts, f1, side="left"))
        if i1 <= i0:
            return
        xa = np.floor((row.trans_starts[i0:i1] - self._scroll) * self._ppf + 0.5).astype(np.int64) + _HEADER_W
        xb = np.floor((row.trans_ends[i0:i1] - self._scroll) * self._ppf + 0.5).astype(np.int64) + _HEADER_W
        keep = np.ones(len(xa), dtype=bool)
        if len(xa) > 1:
            keep[1:] = xa[1:] > xa[:-1] + 2  # many in a few pixels: draw one
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for a, b in zip(xa[keep].tolist(), xb[keep].tolist()):
            a, b = max(a, _HEADER_W - 8), min(b, self._content_right + 8)
            if b - a < 4:
                mid = (a + b) // 2
                a, b = mid - 2, mid + 2
            poly = QPolygon([QPoint(a, top + height), QPoint(b, top), QPoint(b, top + height)])
            p.setPen(QPen(_TRANSITION, 1))
            p.setBrush(QBrush(QColor(0, 0, 0, 90)))
            p.drawRect(QRect(a, top, b - a, height))
            p.setBrush(QBrush(_TRANSITION, Qt.BrushStyle.BDiagPattern))
            p.drawRect(QRect(a, top, b - a, height))
            p.setBrush(QBrush(QColor(255, 255, 255, 40)))
            p.drawPolygon(poly)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _paint_markers(self, p: QPainter, row: _Row, f0: float, f1: float, top: int) -> None:
        if not len(row.marker_starts):
            return
        i0 = int(np.searchsorted(row.marker_starts, f0, side="left"))
        i1 = int(np.searchsorted(row.marker_starts, f1, side="left"))
        if i1 <= i0:
            return
        xs = np.floor((row.marker_starts[i0:i1] - self._scroll) * self._ppf + 0.5).astype(np.int64) + _HEADER_W
        xe = np.floor((row.marker_ends[i0:i1] - self._scroll) * self._ppf + 0.5).astype(np.int64) + _HEADER_W
        keep = np.ones(len(xs), dtype=bool)
        if len(xs) > 1:
            keep[1:] = xs[1:] > xs[:-1] + 1  # one tick per couple of pixels
        p.setPen(Qt.PenStyle.NoPen)
        for j in np.flatnonzero(keep).tolist():
            x, e = int(xs[j]), int(xe[j])
            color = _marker_color(row.marker_colors[i0 + j])
            if e - x >= 3:
                p.fillRect(QRect(x, top, min(e, self._content_right) - x, 3), color)
            p.setBrush(color)
            p.drawPolygon(QPolygon([QPoint(x - 4, top), QPoint(x + 5, top), QPoint(x, top + 7)]))
            p.fillRect(QRect(x, top, 1, 10), color)
            self._stats["markers"] += 1

    def _paint_selected(self, p: QPainter, row: _Row) -> None:
        picked = [c for t, c in self._picked if t == row.track_index]
        if not picked:
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(_SELECTED, 2))
        for clip in picked:
            rect = self.clip_rect(row.track_index, clip)
            if rect.isNull() or rect.right() < _HEADER_W - 4 or rect.left() > self._content_right + 4:
                continue
            left = max(rect.left(), _HEADER_W - 4)
            right = min(rect.right(), self._content_right + 4)
            p.drawRect(QRect(left, rect.top(), max(1, right - left), rect.height() - 1))

    def _range_xs(self) -> tuple[int | None, int | None] | None:
        if self._mark_in is None and self._mark_out is None:
            return None
        a = self.x_of(self._mark_in) if self._mark_in is not None else None
        b = self.x_of(self._mark_out) if self._mark_out is not None else None
        return a, b

    def _paint_range_band(self, p: QPainter, y: int, h: int) -> None:
        xs = self._range_xs()
        if xs is None:
            return
        a, b = xs
        if a is not None and b is not None and b > a:
            a2, b2 = max(a, _HEADER_W - 2), min(b, self._content_right + 2)
            if b2 > a2:
                p.fillRect(QRect(a2, y, b2 - a2, h), _RANGE)
        for x in (a, b):
            if x is not None:
                p.fillRect(QRect(x - 1, y, 2, h), _RANGE_EDGE)

    def _paint_overlay(self, p: QPainter, ov: Overlay, y: int) -> None:
        """A planned job on its track item: the item outlined (dashed: linked sound), the window to regenerate, and the
        context handles in the item's own media lane (the lower part of the clip; where the handles reach past the
        clip's cut, a thin line under the neighbours, never over them)."""
        lo, hi = _HEADER_W - 4, self._content_right + 4
        top, height = y + _CLIP_PAD, _ROW_H - 2 * _CLIP_PAD
        ha, hb = self.x_of(ov.handles[0]), self.x_of(ov.handles[1])
        wa, wb = self.x_of(ov.window[0]), self.x_of(ov.window[1])
        ia, ib = (self.x_of(ov.item[0]), self.x_of(ov.item[1])) if ov.item is not None else (wa, wb)
        lane_h = max(6, height // 3)
        lane = QRect(max(max(ha, ia), lo), top + height - lane_h, 0, lane_h)
        lane.setRight(min(min(hb, ib), hi) - 1)
        if lane.width() > 0:
            p.fillRect(lane, _HANDLES)
            p.fillRect(lane, QBrush(_HANDLES_HATCH, Qt.BrushStyle.FDiagPattern))
        line_y = y + _ROW_H - 2
        for a, b in ((ha, ia), (ib, hb)):      # media beyond the cut: a line in the gap under the clips
            a, b = max(a, lo), min(b, hi)
            if b > a:
                p.fillRect(QRect(a, line_y, b - a, 2), _HANDLES_HATCH)
                for x in (a, b - 1):
                    if x in (max(ha, lo), min(hb, hi) - 1):
                        p.fillRect(QRect(x, line_y - 3, 1, 5), _HANDLES_HATCH)
        if wb > lo and wa < hi:
            win = QRect(max(wa, lo), top, max(2, min(wb, hi) - max(wa, lo)), height)
            p.fillRect(win, _WINDOW if not ov.linked else _WINDOW_LINKED)
            p.setPen(QPen(_WINDOW_EDGE, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(win.adjusted(1, 1, -1, -1))
        if ov.item is not None and ib > lo and ia < hi:
            p.setPen(QPen(_WINDOW_EDGE, 2, Qt.PenStyle.DashLine if ov.linked else Qt.PenStyle.SolidLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRect(max(ia, lo), top - 1, min(ib, hi) - max(ia, lo), height + 1))

    def _paint_header(self, p: QPainter, row: _Row, y: int, is_target: bool, fm: QFontMetrics) -> None:
        rect = QRect(0, y, _HEADER_W, _ROW_H)
        p.fillRect(rect, _HEADER_TARGET if is_target else _HEADER_BG)
        p.fillRect(QRect(0, y + _ROW_H - 1, _HEADER_W, 1), _BG)
        p.fillRect(QRect(0, y, 4, _ROW_H), _VIDEO if row.video else _AUDIO)
        label = row.label.split(" ", 1)[0]
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(_TEXT if row.enabled else _TEXT_DIM)
        p.drawText(QRect(10, y + 2, 34, _ROW_H - 4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
        p.setFont(self.font())
        name = row.name if row.name and row.name != label else ""
        if not row.enabled:
            name = (name + " (off)").strip()
        if name:
            p.setPen(_TEXT_DIM)
            avail = _HEADER_W - 48
            p.drawText(QRect(44, y + 2, avail, _ROW_H - 4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(name, Qt.TextElideMode.ElideRight, avail))

    def _paint_ruler(self, p: QPainter, fm: QFontMetrics) -> None:
        p.fillRect(QRect(0, 0, self._content_right, _RULER_H), _RULER_BG)
        p.fillRect(QRect(0, _RULER_H - 1, self._content_right, 1), _BG)
        p.setPen(_TEXT_DIM)
        p.drawText(QRect(8, 0, _HEADER_W - 12, _RULER_H), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self._timecode(self._playhead))
        p.setClipRect(QRect(_HEADER_W, 0, self._content_w(), _RULER_H))
        step = self._ruler_step()
        minor = step // 5 if step % 5 == 0 else step // 2 if step % 2 == 0 else 0
        if minor and minor * self._ppf >= 6:
            for f in self._ruler_frames(minor):
                p.fillRect(QRect(self.x_of(f), _RULER_H - 5, 1, 4), _TEXT_DIM)
        for f in self._ruler_frames(step):
            x = self.x_of(f)
            p.fillRect(QRect(x, _RULER_H - 12, 1, 11), _TEXT)
            p.setPen(_TEXT)
            p.drawText(QRect(x + 3, 1, fm.horizontalAdvance("00:00:00:00") + 8, _RULER_H - 12),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._timecode(f))
        self._paint_ruler_markers(p)
        self._paint_range_band(p, 0, _RULER_H)
        for ov in self._overlays:
            a, b = self.x_of(ov.window[0]), self.x_of(ov.window[1])
            p.fillRect(QRect(a, _RULER_H - 4, max(2, b - a), 3), _WINDOW_EDGE)

    def _paint_ruler_markers(self, p: QPainter) -> None:
        """The timeline's own markers (on its stack of tracks) as ticks on the ruler."""
        frames, colors = self._ruler_markers
        if not len(frames):
            return
        f0, f1 = self._visible_span()
        i0 = int(np.searchsorted(frames, f0, side="left"))
        i1 = int(np.searchsorted(frames, f1, side="right"))
        last = None
        p.setPen(Qt.PenStyle.NoPen)
        for j in range(i0, i1):
            x = self.x_of(float(frames[j]))
            if last is not None and x <= last + 1:
                continue  # one tick per couple of pixels
            last = x
            p.setBrush(colors[j])
            p.drawPolygon(QPolygon([QPoint(x - 4, _RULER_H - 9), QPoint(x + 5, _RULER_H - 9), QPoint(x, _RULER_H - 2)]))

    def _paint_playhead(self, p: QPainter) -> None:
        x = self.x_of(self._playhead)
        if x < _HEADER_W or x > self._content_right:
            return
        p.setClipRect(QRect(_HEADER_W, 0, self._content_w(), self._rows_bottom))
        p.fillRect(QRect(x, 0, 1, self._rows_bottom), _PLAYHEAD)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(_PLAYHEAD)
        p.drawPolygon(QPolygon([QPoint(x - 6, 0), QPoint(x + 7, 0), QPoint(x + 7, 8), QPoint(x, 14), QPoint(x - 6, 8)]))
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _strip_texts(self) -> list[str]:
        return [ov.text for ov in self._overlays if ov.text.strip()]

    def _paint_strip(self, p: QPainter, fm: QFontMetrics) -> None:
        rect = QRect(0, self._rows_bottom, self.width(), self._strip_h)
        p.fillRect(rect, _STRIP_BG)
        p.fillRect(QRect(0, rect.top(), self.width(), 2), _WINDOW)
        p.setPen(_STRIP_TEXT)
        line_h = fm.height() + 4
        texts = self._strip_texts()
        for n, text in enumerate(texts[:4]):
            if n == 3 and len(texts) > 4:
                text = f"... and {len(texts) - 3} more planned retakes"
            r = QRect(10, rect.top() + 5 + n * line_h, self.width() - 20, line_h)
            p.drawText(r, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(text, Qt.TextElideMode.ElideRight, r.width()))

    # --- events -----------------------------------------------------------------------------------------

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._layout()
        if self._fitted:
            self.zoom_fit()
        else:
            self._set_scroll(self._scroll)

    def mousePressEvent(self, event) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if self._timeline is None:
            return
        pos = event.position()
        x, y = pos.x(), pos.y()
        button = event.button()
        mods = event.modifiers()
        if y < _RULER_H:
            if button == Qt.MouseButton.LeftButton and _HEADER_W <= x < self._content_right:
                self._drag = {"anchor": self._clamp_boundary(self._boundary_at(x)), "x": x, "ranging": False}
                self.scrubbed.emit()
                self._move_playhead(self.frame_at(int(x)), follow=False)
            return
        r = self._row_at(int(y))
        if x < _HEADER_W:
            if r is not None and button == Qt.MouseButton.LeftButton:
                self.set_target_track(self._rows[r].track_index)
            return
        if x >= self._content_right:
            return
        hit = self._clip_at(r, x) if r is not None else None
        if button == Qt.MouseButton.RightButton:
            if hit is not None:
                ti, clip = hit
                if not self._is_picked(ti, clip):
                    self._pick(ti, clip, toggle=False)
                self.clipMenuRequested.emit(ti, clip, event.globalPosition().toPoint())
            return
        if button != Qt.MouseButton.LeftButton:
            return
        if hit is None:
            self.clear_selection()
            return
        toggle = bool(mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier))
        self._pick(hit[0], hit[1], toggle)

    def mouseMoveEvent(self, event) -> None:
        drag = self._drag
        if drag is None:
            return
        x = event.position().x()
        if not drag["ranging"] and abs(x - drag["x"]) < 3:
            return
        drag["ranging"] = True
        b = self._clamp_boundary(self._boundary_at(x))
        a = drag["anchor"]
        self._move_playhead(self.frame_at(int(x)), follow=False)
        if b != a:
            self._set_marks(min(a, b), max(a, b), clear_clips=True)

    def mouseReleaseEvent(self, event) -> None:
        self._drag = None

    def _clamp_boundary(self, b: int) -> int:
        return min(max(0, b), math.ceil(self._duration))

    def _clip_at(self, r: int, x: float) -> tuple[int, object] | None:
        """The clip under pixel column x on a display row (in a nest: the clip that shows there)."""
        row = self._rows[r]
        clip = self._index.clip_at(row.track_index, self._frame_f(x), tol=1.0 / self._ppf)
        return None if clip is None else (row.track_index, clip)

    def wheelEvent(self, event) -> None:
        d = event.angleDelta()
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            steps = (d.y() or d.x()) / 120.0
            if steps:
                self._zoom_by(1.25 ** steps, event.position().x())
            event.accept()
            return
        horizontal = d.x() != 0 or bool(mods & Qt.KeyboardModifier.ShiftModifier) or not self._vsb.isVisible()
        if horizontal:
            delta = d.x() or d.y()
            self._set_scroll(self._scroll - (delta / 120.0) * (self._content_w() * 0.1) / self._ppf)
        else:
            self._vsb.setValue(self._vsb.value() - round(d.y() / 120.0 * _ROW_H))
        event.accept()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        K = Qt.Key
        if key == K.Key_I:
            at = self._playhead
            out = self._mark_out if self._mark_out is not None and self._mark_out > at else None
            self._set_marks(at, out, clear_clips=True)
        elif key == K.Key_O:
            out = self._playhead + 1
            start = self._mark_in if self._mark_in is not None and self._mark_in < out else None
            self._set_marks(start, out, clear_clips=True)
        elif key in (K.Key_Left, K.Key_Right):
            step = self._nominal if shift else 1
            self.scrubbed.emit()
            self.set_playhead(self._playhead + (step if key == K.Key_Right else -step))
        elif key == K.Key_Home:
            self.scrubbed.emit()
            self.set_playhead(0)
        elif key == K.Key_End:
            self.scrubbed.emit()
            self.set_playhead(self._max_frame())
        elif key in (K.Key_J, K.Key_K, K.Key_L):
            self.shuttleRequested.emit({K.Key_J: -1, K.Key_K: 0, K.Key_L: 1}[key])
        elif key in (K.Key_Plus, K.Key_Equal):
            self.zoom_in()
        elif key in (K.Key_Minus, K.Key_Underscore):
            self.zoom_out()
        elif key == K.Key_Backslash:
            self.zoom_fit()
        elif key == K.Key_Escape:
            self.clear_selection()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

