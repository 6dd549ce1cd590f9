"""The picture monitor: the frame the timeline shows at the playhead, decoded off the GUI thread; J/K/L playback.

`Monitor.show_picture(picture, source)` asks for a frame: a `timeline_model.Picture` (what shows at the frame, from
the Qt-free index) and a `FrameSource` (the media file and time to decode, found by the window; None when the
media is offline). One decoding thread serves the monitor; it always takes the newest request and drops the
ones it had not started (scrubbing never queues up), and a picture older than the one on screen is never shown.
Offline media, a gap and media that will not decode each get a card saying so instead of a picture.

`Transport` turns J/K/L into a moving playhead at the timeline's rate (L forward, J backward, pressed again
faster, K stops), on a clock, so slow decoding drops frames rather than slowing time. At normal speed forward
the window adds the timeline's sound (`ltx_retake.ui.sound`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..errors import redact
from .timeline_model import Picture

__all__ = ["FrameSource", "Monitor", "Transport"]

CACHE_FRAMES = 96


@dataclass(frozen=True)
class FrameSource:
    """The file and the moment to decode for a picture."""

    path: Path
    media_s: float                 # the clip's source time, in seconds
    origin_s: float | None         # the source time of the file's first frame (None: from its timecode)


@dataclass
class _Request:
    seq: int
    source: FrameSource
    asked: float                   # time.perf_counter() when asked


class _Bridge(QObject):
    decoded = Signal(int, object, object, float)    # seq, QImage or None, error sentence or None, seconds taken


class _Decoder:
    """One thread; a one-slot mailbox: a new request replaces the one waiting (the newest wins)."""

    def __init__(self, read: Callable[[Path, int], np.ndarray], probe: Callable, bridge: _Bridge):
        self.read, self.probe, self.bridge = read, probe, bridge
        self._wanted: _Request | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._cache: OrderedDict[tuple[Path, int], QImage] = OrderedDict()
        self._thread = threading.Thread(target=self._loop, name="ltx-retake-monitor", daemon=True)
        self._thread.start()

    def ask(self, request: _Request) -> None:
        with self._cond:
            self._wanted = request
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                request, self._wanted = self._wanted, None
            image, error = None, None
            try:
                image = self._decode(request.source)
            except Exception as exc:  # noqa: BLE001 - any reader failure is a card on the monitor, not a traceback
                error = redact(str(exc).strip().rstrip(".")) or type(exc).__name__
            try:
                self.bridge.decoded.emit(request.seq, image, error, time.perf_counter() - request.asked)
            except RuntimeError:  # the monitor is gone
                return

    def _decode(self, source: FrameSource) -> QImage:
        info = self.probe(source.path)
        rate = float(info.frame_rate)
        origin = source.origin_s
        if origin is None:
            start = info.start_frame / rate if info.start_frame else 0.0
            origin = start if source.media_s >= start - 1e-9 else 0.0
        index = round((source.media_s - origin) * rate + 1e-6)
        last = max(0, info.frame_count - 1) if info.frame_count else None
        if index < 0 or (last is not None and index > last):
            raise LookupError(f"{source.path.name} has no frame at this point of the clip (frame {index}); "
                              "the clip runs past its media")
        key = (source.path, index)
        image = self._cache.get(key)
        if image is not None:
            self._cache.move_to_end(key)
            return image
        rgb = np.ascontiguousarray(self.read(source.path, index), dtype=np.uint8)
        h, w = rgb.shape[:2]
        image = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()
        self._cache[key] = image
        while len(self._cache) > CACHE_FRAMES:
            self._cache.popitem(last=False)
        return image


class _Screen(QWidget):
    """The picture, fitted and letterboxed; or a card (offline, gap, unreadable)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("screen")
        self.setMinimumSize(240, 135)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image: QImage | None = None
        self.card = ""                 # shown instead of the picture when set
        self.offline = False
        self.reference = QSize(16, 9)

    def picture_rect(self) -> QRectF:
        rect = QRectF(self.rect())
        size = self.image.size() if self.image is not None and not self.card else self.reference
        if size.isEmpty():
            return rect
        scale = min(rect.width() / size.width(), rect.height() / size.height())
        w, h = size.width() * scale, size.height() * scale
        return QRectF(rect.x() + (rect.width() - w) / 2, rect.y() + (rect.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(20, 20, 22))
        rect = self.picture_rect()
        if self.card:
            p.fillRect(rect, QColor(34, 34, 38))
            if self.offline:
                p.fillRect(rect, QBrush(QColor(208, 64, 64, 110), Qt.BrushStyle.BDiagPattern))
            p.setPen(QColor(235, 235, 235) if not self.offline else QColor(255, 190, 190))
            font = p.font()
            font.setPointSizeF(font.pointSizeF() * 1.1)
            p.setFont(font)
            p.drawText(rect.adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.card)
        elif self.image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(rect, self.image)
        p.end()


class Monitor(QWidget):
    """The record monitor: the timeline's picture at the playhead, its timecode, clip and version, the marks, transport.

    `read(path, index)` gives a frame's RGB array and `probe(path)` a MediaInfo; both run on the monitor's thread.
    Object names for tests: "screen", "where", "marks", "sound", and the buttons "back", "stop", "play", "stepBack",
    "stepForward".
    """

    shuttle = Signal(int)          # J -1, K 0, L +1 (the transport decides the speed)
    step = Signal(int)             # a frame back (-1) or forward (+1)

    def __init__(self, read: Callable[[Path, int], np.ndarray], probe: Callable, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._bridge = _Bridge()
        self._bridge.decoded.connect(self._on_decoded, Qt.ConnectionType.QueuedConnection)
        self._decoder = _Decoder(read, probe, self._bridge)
        self._seq = 0                  # the newest request
        self._shown_seq = 0            # the request whose picture is on screen
        self._picture: Picture | None = None
        self.latencies: list[float] = []   # seconds from request to picture, the last 200 (for the bench)

        self.screen = _Screen(self)
        self.where = QLabel(objectName="where")
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.marks = QLabel(objectName="marks", alignment=Qt.AlignmentFlag.AlignRight)
        self.marks.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        info = QHBoxLayout()
        info.addWidget(self.where, 1)
        info.addWidget(self.marks)
        buttons = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for name, text, tip, slot in (
                ("stepBack", "◀|", "A frame back (Left)", lambda: self.step.emit(-1)),
                ("back", "◀◀", "Play backwards; again: faster (J)", lambda: self.shuttle.emit(-1)),
                ("stop", "■", "Stop (K)", lambda: self.shuttle.emit(0)),
                ("play", "▶", "Play; again: faster (L)", lambda: self.shuttle.emit(1)),
                ("stepForward", "|▶", "A frame forward (Right)", lambda: self.step.emit(1))):
            button = QPushButton(text, objectName=name)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setMaximumWidth(44)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.buttons[name] = button
        self.sound_note = QLabel(objectName="sound", wordWrap=True)
        self.sound_note.setStyleSheet("color: #b0b3b8;")
        buttons.addWidget(self.sound_note, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.screen, 1)
        layout.addLayout(info)
        layout.addLayout(buttons)
        self.show_nothing("No timeline open.")

    # ---- what to show ----------------------------------------------------------------------------------------

    def show_picture(self, picture: Picture, source: FrameSource | None, where: str) -> None:
        """Show what the timeline shows at a frame: decoded off the GUI thread (the newest request wins)."""
        self._picture = picture
        self.where.setText(where)
        self._seq += 1
        if picture.empty:
            self._card("No clip here (a gap on every video track).", seq=self._seq)
            return
        if picture.offline or source is None:
            clip = picture.clip.name if picture.clip is not None else "the clip"
            self._card(f"Media offline\n{clip}: its media is not on this machine. File > Relink Media finds it.",
                       offline=True, seq=self._seq)
            return
        if picture.problem:
            self._card(f"No picture for {picture.clip.name}: {picture.problem}", seq=self._seq)
            return
        self._decoder.ask(_Request(self._seq, source, time.perf_counter()))

    def show_nothing(self, text: str) -> None:
        self._seq += 1
        self._picture = None
        self.where.setText("")
        self._card(text, seq=self._seq)

    def set_marks(self, text: str) -> None:
        self.marks.setText(text)

    def set_sound_note(self, text: str) -> None:
        """A sentence where sound playback would be (why there is none), or "" when there is sound."""
        self.sound_note.setText(text)
        self.sound_note.setToolTip(text)

    def image(self) -> QImage | None:
        """The picture on screen (None while a card shows)."""
        return None if self.screen.card else self.screen.image

    def card(self) -> str:
        """The card on screen instead of a picture ("" when a picture shows)."""
        return self.screen.card

    def pending(self) -> bool:
        """A requested picture has not arrived yet."""
        return self._shown_seq < self._seq

    def close_decoder(self) -> None:
        self._decoder.stop()

    # ---- inside ------------------------------------------------------------------------------------------------

    def _card(self, text: str, *, offline: bool = False, seq: int) -> None:
        self._shown_seq = seq
        self.screen.card = text
        self.screen.offline = offline
        self.screen.update()

    def _on_decoded(self, seq: int, image, error, took: float) -> None:
        if seq <= self._shown_seq:
            return                     # older than what is on screen
        self._shown_seq = seq
        self.latencies = (self.latencies + [took])[-200:]
        if error is not None:
            name = self._picture.clip.name if self._picture is not None and self._picture.clip is not None else "the clip"
            self.screen.card = f"Cannot show {name}: {error}."
            self.screen.offline = False
        else:
            self.screen.card = ""
            self.screen.image = image
            self.screen.reference = image.size()
        self.screen.update()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        keys = {Qt.Key.Key_J: -1, Qt.Key.Key_K: 0, Qt.Key.Key_L: 1}
        if event.key() in keys:
            self.shuttle.emit(keys[event.key()])
        elif event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            self.step.emit(-1 if event.key() == Qt.Key.Key_Left else 1)
        else:
            super().keyPressEvent(event)
            return
        event.accept()


class Transport(QObject):
    """A playhead that moves on a clock: `speed` frames of timeline per frame of time (0 stopped, negative back)."""

    frameChanged = Signal(int)     # the frame the playhead should be on now
    speedChanged = Signal(int)

    MAX_SPEED = 8

    def __init__(self, parent=None, *, clock: Callable[[], float] = time.monotonic):
        super().__init__(parent)
        self._clock = clock
        self.speed = 0
        self.fps = 24.0
        self.last_frame = 0
        self._origin = (0.0, 0)        # (clock time, frame) the motion counts from
        self._timer = QTimer(self)
        self._timer.setInterval(15)
        self._timer.timeout.connect(self._tick)

    def shuttle(self, direction: int, at: int, fps: float, last: int) -> int:
        """J (-1), K (0) or L (+1) pressed with the playhead at `at`: the new speed (L again doubles it, J reverses)."""
        self.fps, self.last_frame = fps, last
        if direction == 0:
            speed = 0
        elif direction > 0:
            speed = 1 if self.speed <= 0 else min(self.MAX_SPEED, self.speed * 2)
        else:
            speed = -1 if self.speed >= 0 else max(-self.MAX_SPEED, self.speed * 2)
        self.start(at, speed)
        return speed

    def start(self, at: int, speed: int) -> None:
        """Move from frame `at` at `speed` (0 stops), counting time from now."""
        self.speed = speed
        self._origin = (self._clock(), at)
        if speed:
            self._timer.start()
        else:
            self._timer.stop()
        self.speedChanged.emit(speed)

    def stop(self) -> None:
        if self.speed:
            self.start(self._origin[1], 0)

    def running(self) -> bool:
        return self.speed != 0

    def _tick(self) -> None:
        t0, f0 = self._origin
        frame = f0 + int((self._clock() - t0) * self.fps * self.speed)
        if frame < 0 or frame > self.last_frame:
            frame = min(max(frame, 0), self.last_frame)
            self.frameChanged.emit(frame)
            self.start(frame, 0)
            return
        self.frameChanged.emit(frame)
