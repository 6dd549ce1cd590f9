"""The preview pane on real media: filmstrip, A/B wipe by frame content, decode errors, buttons, frame playback."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6.QtWidgets")

from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.testcard import audio_marks, mark_frequency, read_index, write_marks_wav
from ltx_retake.ui.preview import (
    PreviewPane,
    Take,
    filmstrip_offsets,
    multimedia_available,
)
from media_fixtures import clip_factory  # noqa: F401
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QPushButton, QSlider, QToolButton, QWidget

WINDOW = 32
A_START = 8          # A's window starts at frame 8 of its file (which shows index 8 + k at offset k)
B_FIRST = 1000       # B is a different source: its frame j shows index 1000 + j, and it is larger


class CountingReader:
    """The real read_frames, noting each call and the thread it ran on (a seam, not a patch)."""

    def __init__(self):
        self.media = FfmpegMediaTool()
        self.calls: list[tuple[Path, list[int]]] = []
        self.threads: list[int] = []

    def __call__(self, path, indices):
        self.calls.append((Path(path), list(indices)))
        self.threads.append(threading.get_ident())
        return self.media.read_frames(path, indices)


@pytest.fixture
def clips(clip_factory):  # noqa: F811
    a = clip_factory("preview_a.mp4", frames=48, rate=Fraction(24), size=(320, 180), audio=False)
    b = clip_factory("preview_b.mp4", frames=40, rate=Fraction(24), size=(480, 270), audio=False,
                     first_index=B_FIRST)
    return a, b


@pytest.fixture
def takes(clips):
    a, b = clips
    return (Take("original", a, first_frame=A_START, frames=WINDOW, rate=24.0),
            Take("v002", b, first_frame=0, frames=WINDOW, rate=24.0))


@pytest.fixture
def reader():
    return CountingReader()


@pytest.fixture
def pane(qtbot, reader):
    widget = PreviewPane(reader)
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    return widget


def rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, line = image.width(), image.height(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8, count=h * line).reshape(h, line)[:, : w * 3].reshape(h, w, 3).copy()


def wipe_index(pane: PreviewPane) -> int | None:
    return read_index(rgb(pane.wipe_image()))


def message(pane: PreviewPane) -> str:
    return pane.findChild(QLabel, "message").text()


def test_filmstrip_loads_both_rows_and_a_click_sets_the_frame(qtbot, pane, takes):
    pane.show_takes(*takes)
    qtbot.waitUntil(lambda: pane.filmstrip_count() == 6)
    offsets = filmstrip_offsets(WINDOW)
    assert offsets == [0, 6, 12, 19, 25, 31]
    for side in "AB":
        row = pane.findChild(QWidget, f"filmstrip{side}")
        buttons = row.findChildren(QToolButton)
        assert [b.text() for b in buttons] == [f"+{o}" for o in offsets]
        assert all(not b.icon().isNull() for b in buttons)
    pane.show()
    qtbot.waitExposed(pane)
    qtbot.mouseClick(pane.findChild(QToolButton, "thumbB19"), Qt.MouseButton.LeftButton)
    assert pane.current_frame() == 19
    assert pane.findChild(QSlider, "slider").value() == 19
    pane.set_wipe(1.0)
    qtbot.waitUntil(lambda: wipe_index(pane) == A_START + 19)


def test_wipe_shows_before_left_and_after_right_of_the_split(qtbot, pane, takes):
    pane.show_takes(*takes)
    assert pane.findChild(QLabel, "labelA").text() == "A: original"
    assert pane.findChild(QLabel, "labelB").text() == "B: v002"
    pane.set_frame(5)
    assert pane.current_frame() == 5
    pane.set_wipe(1.0)
    qtbot.waitUntil(lambda: wipe_index(pane) == A_START + 5)
    pane.set_wipe(0.0)
    qtbot.waitUntil(lambda: wipe_index(pane) == B_FIRST + 5)      # B, 480x270, scaled into A's 320x180
    pane.set_wipe(0.5)
    shown = rgb(pane.wipe_image())
    assert shown.shape == (180, 320, 3)
    before = FfmpegMediaTool().read_frames(takes[0].path, [A_START + 5])[A_START + 5].astype(int)
    after = FfmpegMediaTool().read_frames(takes[1].path, [5])[5]
    after_small = rgb(QImage(after.data, 480, 270, 480 * 3, QImage.Format.Format_RGB888)
                      .scaled(320, 180, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)).astype(int)
    left, right = np.s_[:, :150], np.s_[:, 170:]
    assert np.abs(shown[left] - before[left]).mean() < 1.0        # A drawn 1:1
    assert np.abs(shown[right] - after_small[right]).mean() < 6.0
    assert np.abs(shown[right] - before[right]).mean() > 3 * np.abs(shown[right] - after_small[right]).mean()
    # the slider scrubs the same window on both sides
    pane.findChild(QSlider, "slider").setValue(30)
    assert pane.current_frame() == 30
    pane.set_wipe(0.0)
    qtbot.waitUntil(lambda: wipe_index(pane) == B_FIRST + 30)
    pane.set_wipe(1.0)
    qtbot.waitUntil(lambda: wipe_index(pane) == A_START + 30)
    pane.set_frame(500)
    assert pane.current_frame() == WINDOW - 1


def test_dragging_in_the_wipe_moves_the_split(qtbot, pane, takes):
    pane.show_takes(*takes)
    pane.show()
    qtbot.waitExposed(pane)
    qtbot.waitUntil(lambda: pane.filmstrip_count() == 6)
    wipe = pane.findChild(QWidget, "wipe")
    rect = wipe.picture_rect()
    qtbot.mousePress(wipe, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.left()) + 1, int(rect.center().y())))
    qtbot.mouseRelease(wipe, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.left()) + 1, int(rect.center().y())))
    assert wipe_index(pane) == B_FIRST                            # split at the left edge: all B
    qtbot.mousePress(wipe, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.right()) - 1, int(rect.center().y())))
    qtbot.mouseRelease(wipe, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.right()) - 1, int(rect.center().y())))
    assert wipe_index(pane) == A_START                            # ... at the right edge: all A


def test_frames_decode_off_the_gui_thread_and_are_cached(qtbot, pane, reader, takes):
    pane.show_takes(*takes)
    qtbot.waitUntil(lambda: pane.filmstrip_count() == 6)
    assert reader.calls and threading.get_ident() not in reader.threads
    assert sorted(p.name for p, _ in reader.calls) == ["preview_a.mp4", "preview_b.mp4"]   # one batch per file
    calls = len(reader.calls)
    pane.set_frame(12)                                            # a filmstrip frame: already decoded
    pane.set_wipe(1.0)
    assert wipe_index(pane) == A_START + 12
    assert len(reader.calls) == calls
    pane.set_frame(13)                                            # not yet: one request per file
    qtbot.waitUntil(lambda: wipe_index(pane) == A_START + 13)
    assert sorted(reader.calls[calls:]) == [(takes[0].path, [A_START + 13]), (takes[1].path, [13])]


def test_a_missing_file_gives_a_sentence_not_a_traceback(qtbot, pane, takes, tmp_path):
    before = takes[0]
    gone = Take("v002", tmp_path / "moved" / "v002.mp4", first_frame=0, frames=WINDOW, rate=24.0)
    pane.show_takes(before, gone)
    qtbot.waitUntil(lambda: "Cannot read frames of v002" in message(pane))
    text = message(pane)
    assert str(gone.path) in text and "the file may have moved" in text
    assert "Traceback" not in text and "Error:" not in text
    assert not pane.findChild(QLabel, "message").isHidden()
    pane.set_wipe(1.0)
    qtbot.waitUntil(lambda: wipe_index(pane) == A_START)          # A still shows
    assert pane.filmstrip_count() == 0                            # B's row stays empty
    pane.set_frame(3)                                             # scrubbing does not retry or raise
    qtbot.waitUntil(lambda: wipe_index(pane) == A_START + 3)

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    pane.show_takes(before, Take("v003", junk, first_frame=0, frames=WINDOW, rate=24.0))
    qtbot.waitUntil(lambda: "Cannot read frames of v003" in message(pane))

    short = Take("v004", takes[1].path, first_frame=30, frames=WINDOW, rate=24.0)   # runs past the file's end
    pane.show_takes(before, short)
    qtbot.waitUntil(lambda: "Cannot read frames of v004" in message(pane))

    pane.show_takes(*takes)                                       # good takes clear the message
    assert message(pane) == "" and pane.findChild(QLabel, "message").isHidden()
    qtbot.waitUntil(lambda: pane.filmstrip_count() == 6)


def test_decide_false_hides_accept_and_discard(qtbot, pane, takes):
    pane.show_takes(*takes, decide=False)
    assert pane.findChild(QPushButton, "accept").isHidden()
    assert pane.findChild(QPushButton, "discard").isHidden()
    pane.show_takes(*takes)
    assert not pane.findChild(QPushButton, "accept").isHidden()
    assert not pane.findChild(QPushButton, "discard").isHidden()


def test_accept_and_discard_emit(qtbot, pane, takes):
    pane.show_takes(*takes)
    pane.show()
    qtbot.waitExposed(pane)
    with qtbot.waitSignal(pane.accepted, timeout=2000):
        qtbot.mouseClick(pane.findChild(QPushButton, "accept"), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(pane.discarded, timeout=2000):
        qtbot.mouseClick(pane.findChild(QPushButton, "discard"), Qt.MouseButton.LeftButton)


class KeptSound:
    """A sound output that keeps what it is given: the seam the pane plays through (no sound device is needed)."""

    def __init__(self):
        self.played: list[tuple[np.ndarray, int]] = []

    def play(self, pcm, rate):
        self.played.append((pcm, rate))

    def stop(self):
        pass

    def elapsed(self):
        return 0.0


def test_play_hears_the_chosen_side_of_the_window_and_without_sound_a_sentence_stands_there(qtbot, clip_factory, reader,  # noqa: F811
                                                                                             tmp_path):
    silent = PreviewPane(reader)
    qtbot.addWidget(silent)
    assert silent.findChild(QPushButton, "play").isHidden()
    assert "Qt Multimedia" in silent.findChild(QLabel, "noSound").text()

    a = clip_factory("sound_a.mov", frames=48, rate=Fraction(24), size=(160, 90), mark_every=12)
    b = clip_factory("sound_b.mov", frames=48, rate=Fraction(24), size=(160, 90), mark_every=12, first_index=1000)
    sound = KeptSound()
    pane = PreviewPane(reader, sound=sound, read_sound=FfmpegMediaTool().read_sound)
    qtbot.addWidget(pane)
    pane.show_takes(Take("original", a, first_frame=8, frames=32, rate=24.0), Take("v002", b, 8, 32, 24.0))
    heard = {}
    for side in ("A", "B"):
        pane.set_hearing(side)
        pane.findChild(QPushButton, "play").click()
        qtbot.waitUntil(lambda: len(sound.played) == len(heard) + 1, timeout=10_000)
        pcm, rate = sound.played[-1]
        assert rate == 48000 and len(pcm) == 32 * 2000                          # the window: 32 frames at 24 fps
        wav = write_marks_wav(tmp_path / f"{side}.wav", pcm.astype(np.float32) / 32767, rate)
        heard[side] = [(round(m.time * 24), round(m.frequency / 50) * 50) for m in audio_marks(wav)]
        pane.findChild(QPushButton, "play").click()                             # stop
    # a mark where the frame's own index is a multiple of 12: A's frames 12, 24, 36 (window offsets 4, 16, 28);
    # B's frames show 1000 + j, so its marks fall on 1008, 1020, 1032 (offsets 0, 12, 24), at their own pitches
    assert [f for f, _ in heard["A"]] == [4, 16, 28] and [f for f, _ in heard["B"]] == [0, 12, 24]
    assert [hz for _, hz in heard["A"]] == [round(mark_frequency(i, 12)) for i in (12, 24, 36)]


def test_play_frames_steps_the_wipe(qtbot, pane, takes):
    pane.show_takes(*takes)
    button = pane.findChild(QPushButton, "playFrames")
    assert button.text() == "Play frames" and button.isEnabled()
    button.click()
    qtbot.waitUntil(lambda: pane.current_frame() >= 3)
    button.click()
    stopped = pane.current_frame()
    assert button.text() == "Play frames"
    pane.set_wipe(1.0)
    qtbot.waitUntil(lambda: wipe_index(pane) == A_START + stopped)
    qtbot.wait(100)
    assert pane.current_frame() == stopped


def test_clear_shows_nothing(qtbot, pane, takes):
    pane.show_takes(*takes)
    qtbot.waitUntil(lambda: pane.filmstrip_count() == 6)
    pane.clear()
    assert pane.filmstrip_count() == 0 and pane.current_frame() == 0
    assert pane.findChild(QPushButton, "accept").isHidden()
    assert not pane.findChild(QPushButton, "playFrames").isEnabled()
    pane.set_frame(4)                                             # nothing to show: ignored
    assert pane.current_frame() == 0
    assert pane.wipe_image().size().width() > 0


def test_takes_refuse_empty_windows(takes):
    with pytest.raises(ValueError, match="at least one"):
        Take("v002", takes[1].path, first_frame=0, frames=0, rate=24.0)
    with pytest.raises(ValueError, match="counts from 0"):
        Take("v002", takes[1].path, first_frame=-1, frames=4, rate=24.0)
    assert filmstrip_offsets(1) == [0]
    assert filmstrip_offsets(3) == [0, 1, 2]
