"""The before/after preview of a finished retake: a filmstrip, an A/B wipe, frame stepping, Accept and Discard.

`PreviewPane` shows two takes of the same window side by side in time: "A" (usually the original) and "B"
(a version). Frames come from an injected `read_frames(path, indices) -> {index: RGB array}` callable (in the
panel, `offline_wiring(settings).media.read_frames`); they are decoded on Qt's global thread pool, delivered
to the GUI thread by a queued signal and kept in a small LRU cache keyed by (path, frame index). A file that
cannot be read shows a sentence in the pane, never a traceback.

"Play" plays the window with its sound: the wipe steps through the decoded frames at the take's rate while the
sound of the side chosen with "Hear" (A, before; B, after) plays through an injected `ltx_retake.ui.sound`
output. Where there is no sound (Qt Multimedia from PySide6-Addons missing, no sound device) a sentence stands
where Play would be, and "Play frames" steps the wipe silently. With nothing under review the pane offers the
newest finished retake (`set_offer`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QObject,
    QPointF,
    QRectF,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import redact
from .sound import SOUND_RATE, multimedia_problem

__all__ = ["PreviewPane", "ReadFrames", "ReadSound", "Take", "filmstrip_offsets", "multimedia_available"]

ReadFrames = Callable[[Path, list[int]], dict[int, np.ndarray]]
ReadSound = Callable[[Path, float, float], np.ndarray]     # path, start s, duration s -> int16 PCM (samples, 2)

FILMSTRIP_THUMBS = 6            # thumbnails per row, evenly spaced across the window
THUMB_SIZE = QSize(96, 54)      # the box a thumbnail is fitted into
LOOKAHEAD = 12                  # frames decoded ahead of the wipe while "Play frames" runs
CACHE_BYTES = 320 << 20         # decoded frames kept (full-size QImages), least recently used dropped first
CACHE_MIN_ITEMS = 32            # ... but never fewer than this many
MAX_FRAME = QSize(1920, 1080)   # larger frames are scaled down to fit this when decoded (the wipe is smaller)
NO_PLAYBACK = ("Playing with sound needs PySide6-Addons (Qt Multimedia) and a sound device; "
               "the wipe and filmstrip are the preview here, and Play frames steps through the window.")
_SIDES = ("A", "B")


@dataclass(frozen=True)
class Take:
    """One side of the comparison: `frames` frames of `path` from 0-based decoded frame `first_frame`."""

    label: str              # "original", "v002", ...
    path: Path              # the media file
    first_frame: int        # 0-based frame index in the file where the compared window starts
    frames: int             # how many frames the window has
    rate: float             # frames per second (for the time readout and frame playback)

    def __post_init__(self):
        if self.first_frame < 0:
            raise ValueError(f"Take {self.label!r}: first_frame is {self.first_frame}; it counts from 0.")
        if self.frames < 1:
            raise ValueError(f"Take {self.label!r}: the window has {self.frames} frames; it needs at least one.")
        if not self.rate > 0:
            raise ValueError(f"Take {self.label!r}: frame rate {self.rate} is not positive.")


def multimedia_available() -> bool:
    """Whether Qt Multimedia loads here (PySide6-Addons and the system libraries it needs), so Play can be heard."""
    return not multimedia_problem()


def filmstrip_offsets(frames: int, count: int = FILMSTRIP_THUMBS) -> list[int]:
    """`count` offsets spread evenly over a window of `frames` frames, first and last included, no repeats."""
    if frames <= 1 or count <= 1:
        return [0]
    return sorted({round(i * (frames - 1) / (count - 1)) for i in range(count)})


def _to_image(rgb: np.ndarray) -> QImage:
    """An RGB uint8 array as a QImage that owns its pixels, scaled down to MAX_FRAME if larger."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a frame has shape {rgb.shape}; expected (height, width, 3)")
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()
    if w > MAX_FRAME.width() or h > MAX_FRAME.height():
        image = image.scaled(MAX_FRAME, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image


def _sentence(text: str) -> str:
    return text.strip().rstrip(".").strip()


class _FrameCache:
    """Decoded frames by (path, index), least recently used dropped first past a byte budget."""

    def __init__(self, max_bytes: int = CACHE_BYTES, min_items: int = CACHE_MIN_ITEMS):
        self.max_bytes, self.min_items = max_bytes, min_items
        self._items: OrderedDict[tuple[Path, int], QImage] = OrderedDict()
        self._bytes = 0

    def __contains__(self, key) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key) -> QImage | None:
        image = self._items.get(key)
        if image is not None:
            self._items.move_to_end(key)
        return image

    def put(self, key, image: QImage, keep=frozenset()) -> None:
        """Store `image`; evict the oldest entries over budget, except those in `keep` (still wanted)."""
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old.sizeInBytes()
        self._items[key] = image
        self._bytes += image.sizeInBytes()
        if self._bytes <= self.max_bytes:
            return
        for old_key in list(self._items):
            if self._bytes <= self.max_bytes or len(self._items) <= self.min_items:
                break
            if old_key == key or old_key in keep:
                continue
            self._bytes -= self._items.pop(old_key).sizeInBytes()


class _Bridge(QObject):
    """Carries decoded frames from pool threads to the GUI thread (one for the process, never deleted)."""

    decoded = Signal(object)


@functools.cache
def _bridge() -> _Bridge:
    return _Bridge()


@dataclass
class _Decoded:
    owner: object
    generation: int
    path: Path
    images: dict[int, QImage]
    error: str | None


class _DecodeJob(QRunnable):
    """Decode some frames of one file on a pool thread; report them (or why not) through the bridge."""

    def __init__(self, read_frames: ReadFrames, owner: object, generation: int, path: Path, indices: list[int]):
        super().__init__()
        self.read_frames, self.owner, self.generation = read_frames, owner, generation
        self.path, self.indices = path, indices

    def run(self):
        images: dict[int, QImage] = {}
        error = None
        try:
            frames = self.read_frames(self.path, list(self.indices))
            for index in self.indices:
                if index not in frames:
                    raise LookupError(f"frame {index} was not returned")
                images[index] = _to_image(frames[index])
        except Exception as exc:  # noqa: BLE001 - whatever the reader raises becomes a sentence in the pane
            images = {}
            error = redact(_sentence(str(exc)) or exc.__class__.__name__)
        try:
            _bridge().decoded.emit(_Decoded(self.owner, self.generation, self.path, images, error))
        except RuntimeError:       # the application is shutting down
            pass


def _fit(size: QSize, rect: QRectF) -> QRectF:
    """The largest rectangle of `size`'s aspect ratio centred in `rect`."""
    if size.isEmpty() or rect.isEmpty():
        return QRectF(rect)
    scale = min(rect.width() / size.width(), rect.height() / size.height())
    w, h = size.width() * scale, size.height() * scale
    return QRectF(rect.x() + (rect.width() - w) / 2, rect.y() + (rect.height() - h) / 2, w, h)


def _paint_wipe(painter: QPainter, rect: QRectF, a: QImage | None, b: QImage | None, fraction: float) -> None:
    """A left of the split at `fraction` of `rect`, B right of it, each fitted into `rect`; the split line."""
    painter.fillRect(rect, QColor(17, 17, 17))
    split = rect.left() + fraction * rect.width()
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    for image, part in ((a, QRectF(rect.left(), rect.top(), split - rect.left(), rect.height())),
                        (b, QRectF(split, rect.top(), rect.right() - split, rect.height()))):
        if image is None or image.isNull() or part.width() <= 0:
            continue
        painter.save()
        painter.setClipRect(part)
        painter.drawImage(_fit(image.size(), rect), image)
        painter.restore()
    painter.setPen(QPen(QColor(255, 255, 255), 2))
    x = min(max(split, rect.left() + 1), rect.right() - 1)
    painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))


class _WipeView(QWidget):
    """The large A/B view; pressing or dragging in it moves the split."""

    split_dragged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("wipe")
        self.setMinimumSize(240, 135)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.SplitHCursor)
        self.images: tuple[QImage | None, QImage | None] = (None, None)
        self.reference = QSize(16, 9)
        self.fraction = 0.5
        self.hint = ""

    def picture_rect(self) -> QRectF:
        """Where the picture sits in the widget (the reference frame's aspect, fitted)."""
        return _fit(self.reference, QRectF(self.rect()))

    def paintEvent(self, event):
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(34, 34, 34))
        rect = self.picture_rect()
        _paint_wipe(painter, rect, *self.images, self.fraction)
        if self.hint:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.hint)
        painter.end()

    def _drag(self, event):
        rect = self.picture_rect()
        if rect.width() > 0:
            self.split_dragged.emit((event.position().x() - rect.left()) / rect.width())

    def mousePressEvent(self, event):
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag(event)

    def mouseMoveEvent(self, event):
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event)


class PreviewPane(QWidget):
    """Before/after of a finished retake (Accept / Discard), or a comparison of two versions (decide=False).

    Public: `show_takes`, `clear`, `current_frame`, `set_frame`, `set_wipe`, `wipe_image`, `filmstrip_count`,
    and the signals `accepted` / `discarded`. Child widgets carry object names for tests and styling:
    "accept", "discard", "play", "playFrames", "slider", "wipe", "labelA", "labelB", "time", "message",
    "filmstripA", "filmstripB" (thumbnails inside are QToolButtons named "thumbA3" etc.).
    """

    accepted = Signal()     # Accept: the caller makes the version active
    discarded = Signal()
    offerClicked = Signal()  # the offered retake (set_offer) is wanted
    sheetRequested = Signal()  # a contact sheet of what is reviewed
    _soundReady = Signal(int, object, object)   # generation, PCM or None, error sentence or None (from a thread)

    def __init__(self, read_frames: ReadFrames, parent=None, *, sound=None, read_sound: ReadSound | None = None,
                 no_sound: str = ""):
        super().__init__(parent)
        self._read_frames = read_frames
        self._sound = sound if read_sound is not None else None
        self._read_sound = read_sound
        self._no_sound = no_sound or NO_PLAYBACK
        self._hear = "B"
        self._clock: tuple[float, int] | None = None    # (monotonic time, offset) Play with sound counts from
        self._token = object()           # tells this pane's results apart on the shared bridge
        self._generation = 0
        self._takes: tuple[Take, Take] | None = None
        self._frames = 0                 # length of the compared window
        self._offset = 0
        self._fraction = 0.5
        self._cache = _FrameCache()
        self._inflight: dict[Path, set[int]] = {}
        self._errors: dict[Path, str] = {}
        self._last: dict[str, QImage | None] = {"A": None, "B": None}
        self._thumbs: dict[str, dict[int, QToolButton]] = {"A": {}, "B": {}}
        self._loaded: dict[str, set[int]] = {"A": set(), "B": set()}
        self._build()
        self._soundReady.connect(self._sound_ready, Qt.ConnectionType.QueuedConnection)
        _bridge().decoded.connect(self._on_decoded, Qt.ConnectionType.QueuedConnection)
        self.clear()

    # ---- layout ---------------------------------------------------------------------------------------
    def _build(self):
        outer = QVBoxLayout(self)
        self._message = QLabel(objectName="message", wordWrap=True)
        self._message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._message.setStyleSheet("color: #e07a5f;")
        outer.addWidget(self._message)
        self._offer = QPushButton(objectName="offer")
        self._offer.setToolTip("Open it with its before and after (Enter or a double-click on a done job does too).")
        self._offer.clicked.connect(self.offerClicked)
        self._offer.hide()
        outer.addWidget(self._offer)
        self._offer_text = ""

        heads = QHBoxLayout()
        self._label_a = QLabel(objectName="labelA")
        self._time = QLabel(objectName="time", alignment=Qt.AlignmentFlag.AlignCenter)
        self._label_b = QLabel(objectName="labelB", alignment=Qt.AlignmentFlag.AlignRight)
        for w in (self._label_a, self._time, self._label_b):
            heads.addWidget(w, 1)
        outer.addLayout(heads)

        self._stack = QStackedWidget()
        self._wipe = _WipeView()
        self._wipe.split_dragged.connect(self.set_wipe)
        self._stack.addWidget(self._wipe)
        outer.addWidget(self._stack, 1)

        self._slider = QSlider(Qt.Orientation.Horizontal, objectName="slider")
        self._slider.valueChanged.connect(self.set_frame)
        outer.addWidget(self._slider)

        strip = QGridLayout()
        self._row_labels: dict[str, QLabel] = {}
        self._rows: dict[str, QHBoxLayout] = {}
        for r, side in enumerate(_SIDES):
            self._row_labels[side] = QLabel()
            strip.addWidget(self._row_labels[side], r, 0)
            holder = QWidget(objectName=f"filmstrip{side}")
            self._rows[side] = QHBoxLayout(holder)
            self._rows[side].setContentsMargins(0, 0, 0, 0)
            strip.addWidget(holder, r, 1)
        strip.setColumnStretch(1, 1)
        outer.addLayout(strip)

        buttons = QHBoxLayout()
        self._play_frames = QPushButton("Play frames", objectName="playFrames", checkable=True)
        self._play_frames.setToolTip("Step the wipe through the window at the take's frame rate (decoded frames).")
        self._play_frames.toggled.connect(self._toggle_frames)
        self._play = QPushButton("Play", objectName="play", checkable=True)
        self._hear_button = QPushButton("Hear B (after)", objectName="hear")
        self._hear_button.setToolTip("Whose sound Play plays: A (before) or B (after).")
        self._hear_button.clicked.connect(lambda: self.set_hearing("A" if self._hear == "B" else "B"))
        self._no_sound_label = QLabel(self._no_sound, objectName="noSound", wordWrap=True)
        self._no_sound_label.setStyleSheet("color: #b0b3b8;")
        if self._sound is not None:
            self._play.setToolTip("Play the window with the sound of the side chosen with Hear.")
            self._play.toggled.connect(self._toggle_sound)
            self._no_sound_label.hide()
        else:
            self._play.setEnabled(False)
            self._play.setToolTip(self._no_sound)
            self._play.hide()
            self._hear_button.hide()
        self._discard = QPushButton("Discard", objectName="discard")
        self._discard.setToolTip("Drop this version; the timeline keeps what it had.")
        self._discard.clicked.connect(self._on_discard)
        self._sheet = QPushButton("Contact Sheet", objectName="sheet")
        self._sheet.setToolTip("Write a PNG of the retake: record timecodes, clip, prompt and version, with frames on both "
                               "sides of each edge of the window.")
        self._sheet.clicked.connect(self.sheetRequested)
        self._accept = QPushButton("Accept", objectName="accept")
        self._accept.setToolTip("Make this version the clip's active version.")
        self._accept.clicked.connect(self._on_accept)
        for w in (self._play_frames, self._play, self._hear_button):
            buttons.addWidget(w)
        buttons.addWidget(self._no_sound_label, 1)
        buttons.addStretch(1)
        buttons.addWidget(self._sheet)
        buttons.addWidget(self._discard)
        buttons.addWidget(self._accept)
        outer.addLayout(buttons)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)

    # ---- public -------------------------------------------------------------------------------------
    def show_takes(self, before: Take, after: Take, *, decide: bool = True, sheet: bool = False) -> None:
        """Show `before` as A and `after` as B from the first frame of the window, the split in the middle."""
        self._stop_playing()
        self._generation += 1
        self._takes = (before, after)
        self._frames = min(before.frames, after.frames)
        self._offset = 0
        self._fraction = 0.5
        self._inflight.clear()
        self._errors.clear()
        self._last = {"A": None, "B": None}
        self._label_a.setText(f"A: {before.label}")
        self._label_b.setText(f"B: {after.label}")
        for side, take in zip(_SIDES, self._takes):
            self._row_labels[side].setText(f"{side}: {take.label}")
            self._make_thumbs(side, take)
        self._slider.blockSignals(True)
        self._slider.setRange(0, self._frames - 1)
        self._slider.setValue(0)
        self._slider.blockSignals(False)
        for w in (self._slider, self._play_frames, self._stack):
            w.setEnabled(True)
        self._accept.setVisible(decide)
        self._discard.setVisible(decide)
        self._sheet.setVisible(sheet)
        self._wipe.hint = ""
        self._offer.hide()
        self._play.setEnabled(self._sound is not None)
        self._hear_button.setEnabled(self._sound is not None)
        self._refresh()

    def clear(self) -> None:
        """Show nothing: no takes, no thumbnails, buttons off (decoded frames stay cached)."""
        self._stop_playing()
        self._generation += 1
        self._takes = None
        self._frames = 0
        self._offset = 0
        self._inflight.clear()
        self._errors.clear()
        self._last = {"A": None, "B": None}
        for side in _SIDES:
            self._make_thumbs(side, None)
            self._row_labels[side].setText("")
        self._label_a.setText("")
        self._label_b.setText("")
        self._time.setText("")
        self._message.setText("")
        self._message.hide()
        self._slider.blockSignals(True)
        self._slider.setRange(0, 0)
        self._slider.blockSignals(False)
        for w in (self._slider, self._play_frames, self._play, self._hear_button):
            w.setEnabled(False)
        self._accept.hide()
        self._discard.hide()
        self._sheet.hide()
        self._wipe.images = (None, None)
        self._show_offer()

    def set_offer(self, text: str) -> None:
        """With nothing under review, offer a finished retake: `text` names it on a button ("" offers nothing)."""
        self._offer_text = text
        if self._takes is None:
            self._show_offer()

    def offer(self) -> str:
        """What the pane offers now ("" when nothing, or while it shows takes)."""
        return self._offer_text if self._takes is None else ""

    def reviewing(self) -> bool:
        """Takes are shown (a review or a comparison)."""
        return self._takes is not None

    def _show_offer(self) -> None:
        self._offer.setText(self._offer_text)
        self._offer.setVisible(bool(self._offer_text))
        self._wipe.hint = "" if self._offer_text else "No finished retake to preview."
        self._wipe.update()

    def current_frame(self) -> int:
        """The frame offset within the window that the wipe shows."""
        return self._offset

    def set_frame(self, offset: int) -> None:
        """Show frame `offset` of the window (clamped to the window) in the wipe and on the slider."""
        if self._takes is None:
            return
        offset = max(0, min(int(offset), self._frames - 1))
        self._offset = offset
        if self._slider.value() != offset:
            self._slider.blockSignals(True)
            self._slider.setValue(offset)
            self._slider.blockSignals(False)
        self._refresh()

    def set_wipe(self, fraction: float) -> None:
        """Put the A/B split at `fraction` of the picture's width (0 = all B, 1 = all A)."""
        self._fraction = max(0.0, min(1.0, float(fraction)))
        self._update_wipe()

    def wipe_image(self) -> QImage:
        """What the wipe shows now, at the A frame's size (B scaled into the same rectangle)."""
        a, b = self._side_image("A"), self._side_image("B")
        size = next((im.size() for im in (a, b) if im is not None), QSize(320, 180))
        image = QImage(size, QImage.Format.Format_RGB888)
        painter = QPainter(image)
        _paint_wipe(painter, QRectF(0, 0, size.width(), size.height()), a, b, self._fraction)
        painter.end()
        return image

    def filmstrip_count(self) -> int:
        """Thumbnails loaded per row (the fewer of the two rows)."""
        if self._takes is None:
            return 0
        return min(len(self._loaded[side]) for side in _SIDES)

    # ---- frames ---------------------------------------------------------------------------------------
    def _sides(self):
        return zip(_SIDES, self._takes) if self._takes else ()

    def _side_image(self, side: str) -> QImage | None:
        """The current frame of `side` if decoded, else the last frame shown there (while the new one loads)."""
        if self._takes is None:
            return None
        take = self._takes[_SIDES.index(side)]
        if take.path in self._errors:
            return None
        image = self._cache.get((take.path, take.first_frame + self._offset))
        if image is not None:
            self._last[side] = image
        return self._last[side]

    def _ready(self) -> bool:
        """Both sides' current frames are decoded (or cannot be)."""
        return all(take.path in self._errors or (take.path, take.first_frame + self._offset) in self._cache
                   for _, take in self._sides())

    def _wanted(self) -> dict[Path, set[int]]:
        """File frame indices each file should have decoded now: the wipe's frame, thumbnails, look-ahead."""
        wanted: dict[Path, set[int]] = {}
        for side, take in self._sides():
            if take.path in self._errors:
                continue
            offsets = {self._offset}
            offsets |= {o for o in self._thumbs[side] if o not in self._loaded[side]}
            if self._timer.isActive():
                offsets |= {(self._offset + k) % self._frames for k in range(1, LOOKAHEAD + 1)}
            wanted.setdefault(take.path, set()).update(take.first_frame + o for o in offsets)
        return wanted

    def _schedule(self):
        """Ask the pool for what is wanted and not cached; one request per file at a time (scrubbing coalesces)."""
        for path, indices in self._wanted().items():
            if path in self._inflight:
                continue
            missing = sorted(i for i in indices if (path, i) not in self._cache)
            if missing:
                self._inflight[path] = set(missing)
                QThreadPool.globalInstance().start(
                    _DecodeJob(self._read_frames, self._token, self._generation, path, missing))

    def _on_decoded(self, result: _Decoded):
        if result.owner is not self._token:
            return
        try:
            keep = {(p, i) for p, idx in self._wanted().items() for i in idx}
            for index, image in result.images.items():
                self._cache.put((result.path, index), image, keep)
            if result.generation != self._generation:
                return
            self._inflight.pop(result.path, None)
            if result.error is not None:
                names = [f"{t.label} ({t.path})" for _, t in self._sides() if t.path == result.path]
                reason = result.error
                if reason[:1].isupper() and reason[1:2].islower():
                    reason = reason[0].lower() + reason[1:]
                self._errors[result.path] = (f"Cannot read frames of {' and '.join(names) or result.path}: "
                                             f"{reason}; the file may have moved.")
            self._refresh()
        except Exception as exc:  # noqa: BLE001 - a slot must not raise into Qt: a sentence in the pane
            self._message.setText(f"The preview could not show the decoded frames: {_sentence(str(exc))}.")
            self._message.show()

    # ---- display ---------------------------------------------------------------------------------------
    def _make_thumbs(self, side: str, take: Take | None):
        row = self._rows[side]
        while row.count():
            item = row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._thumbs[side] = {}
        self._loaded[side] = set()
        if take is None:
            return
        for offset in filmstrip_offsets(self._frames):
            button = QToolButton(objectName=f"thumb{side}{offset}")
            button.setText(f"+{offset}")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(THUMB_SIZE)
            button.setToolTip(f"{side}: {take.label}, frame +{offset} of the window "
                              f"(frame {take.first_frame + offset} of {take.path.name})")
            button.clicked.connect(functools.partial(self.set_frame, offset))
            row.addWidget(button)
            self._thumbs[side][offset] = button
        row.addStretch(1)

    def _fill_thumbs(self):
        for side, take in self._sides():
            for offset, button in self._thumbs[side].items():
                if offset in self._loaded[side]:
                    continue
                image = self._cache.get((take.path, take.first_frame + offset))
                if image is not None:
                    thumb = image.scaled(THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation)
                    button.setIcon(QIcon(QPixmap.fromImage(thumb)))
                    self._loaded[side].add(offset)

    def _refresh(self):
        """Bring everything in line with the state: thumbnails, wipe, readout, message; then ask for frames."""
        if self._takes is None:
            return
        self._fill_thumbs()
        self._update_wipe()
        before, after = self._takes
        self._time.setText(f"frame +{self._offset} of {self._frames} · {self._offset / after.rate:.2f} s "
                           f"(file frames A {before.first_frame + self._offset}, B {after.first_frame + self._offset})")
        errors = [self._errors[p] for p in dict.fromkeys(t.path for t in self._takes) if p in self._errors]
        self._message.setText("\n".join(errors))
        self._message.setVisible(bool(errors))
        self._schedule()

    def _update_wipe(self):
        a, b = self._side_image("A"), self._side_image("B")
        self._wipe.images = (a, b)
        ref = next((im.size() for im in (a, b) if im is not None), None)
        if ref is not None:
            self._wipe.reference = ref
        self._wipe.fraction = self._fraction
        self._wipe.update()

    # ---- playback ------------------------------------------------------------------------------------------
    def _toggle_frames(self, on: bool):
        if on and self._takes is not None:
            self._timer.start(max(1, round(1000 / self._takes[1].rate)))
            self._play_frames.setText("Stop")
            self._schedule()
        else:
            self._timer.stop()
            self._play_frames.setText("Play frames")

    def _tick(self):
        """Next frame once both sides of this one are decoded (so slow decoding slows playback, never skips); with
        sound, the frame the sound has reached (slow decoding then skips frames, the sound never waits)."""
        if self._takes is None:
            self._play_frames.setChecked(False)
            self._play.setChecked(False)
            return
        if self._clock is not None:
            t0, start = self._clock
            frame = start + int((time.monotonic() - t0) * self._takes[1].rate)
            if frame >= self._frames:
                self._play.setChecked(False)
                self.set_frame(self._frames - 1)
            elif frame != self._offset:
                self.set_frame(frame)
            return
        if self._ready():
            self.set_frame((self._offset + 1) % self._frames)
        else:
            self._schedule()

    def set_hearing(self, side: str) -> None:
        """Whose sound Play plays: "A" (before) or "B" (after); a playing window starts again with it."""
        self._hear = "A" if side == "A" else "B"
        self._hear_button.setText("Hear A (before)" if self._hear == "A" else "Hear B (after)")
        if self._play.isChecked():
            self._play.setChecked(False)
            self._play.setChecked(True)

    def hearing(self) -> str:
        return self._hear

    def _toggle_sound(self, on: bool):
        if not on or self._takes is None or self._sound is None:
            self._clock = None
            self._timer.stop()
            if self._sound is not None:
                self._sound.stop()
            self._play.setText("Play")
            if on:
                self._play.setChecked(False)
            return
        self._play_frames.setChecked(False)
        self._play.setText("Stop")
        take = self._takes[_SIDES.index(self._hear)]
        start = 0 if self._offset >= self._frames - 1 else self._offset
        generation, read = self._generation, self._read_sound

        def work() -> None:
            try:
                pcm = read(take.path, (take.first_frame + start) / take.rate, (self._frames - start) / take.rate)
                self._soundReady.emit(generation, (start, pcm), None)
            except Exception as exc:  # noqa: BLE001 - a sentence in the pane
                self._soundReady.emit(generation, None, redact(_sentence(str(exc)) or type(exc).__name__))

        threading.Thread(target=work, name="ltx-retake-preview-sound", daemon=True).start()

    def _sound_ready(self, generation: int, result, error) -> None:
        if generation != self._generation or not self._play.isChecked():
            return
        if error is not None:
            self._message.setText(f"Cannot play the sound of {self._hear}: {error}; the wipe still shows its frames.")
            self._message.show()
            self._play.setChecked(False)
            return
        start, pcm = result
        self._sound.play(pcm, SOUND_RATE)
        self._clock = (time.monotonic(), start)
        self.set_frame(start)
        self._timer.start(max(1, round(500 / self._takes[1].rate)))

    def _stop_playing(self):
        self._play_frames.setChecked(False)
        self._timer.stop()
        if self._play.isChecked():
            self._play.setChecked(False)

    def _on_accept(self):
        self._stop_playing()
        self.accepted.emit()

    def _on_discard(self):
        self._stop_playing()
        self.discarded.emit()
