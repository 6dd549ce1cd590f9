"""The timeline view, driven by real mouse and key events offscreen: picks, ranges, zoom, ruler, badges, overlays, speed."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import opentimelineio as otio
import pytest
from ltx_retake.adapters.timeline_files import read_timeline
from ltx_retake.errors import RetakeError
from ltx_retake.selection import clips_on_track, record_timecode
from ltx_retake.ui.timeline_view import ClipPick, Overlay, TimelineView, badge_text
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication
from timelines import RT, TR, clip, timeline

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
SHIFT, CTRL = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.ControlModifier


def cut() -> otio.schema.Timeline:
    """V1: shot010 (48), shot020 (72, a marker at source 40), a 24-frame gap, shot030 (60); V2: a nest; A1: 204 frames."""
    tl = timeline(clip("shot010", "/m/a.mov", 0, 48), clip("shot020", "/m/b.mov", 10, 72),
                  otio.schema.Gap(source_range=TR(RT(0, 24), RT(24, 24))), clip("shot030", "/m/c.mov", 0, 60))
    tl.tracks[0][1].markers.append(otio.schema.Marker(name="fix the hand", color=otio.schema.MarkerColor.GREEN,
                                                      marked_range=TR(RT(40, 24), RT(0, 24))))
    v2 = otio.schema.Track(name="FX")
    v2.append(otio.schema.Gap(source_range=TR(RT(0, 24), RT(30, 24))))
    nest = otio.schema.Stack(name="comp A")
    lower, upper = otio.schema.Track(), otio.schema.Track()
    lower.append(clip("bg", "/m/bg.mov", 0, 80))
    upper.append(otio.schema.Gap(source_range=TR(RT(0, 24), RT(40, 24))))
    upper.append(clip("fg", "/m/fg.mov", 0, 40))
    nest.extend([lower, upper])
    v2.append(nest)
    tl.tracks.append(v2)
    a1 = otio.schema.Track(name="Dialogue", kind=otio.schema.TrackKind.Audio)
    a1.append(clip("dialogue", "/m/a.wav", 0, 204))
    tl.tracks.append(a1)
    return tl


@pytest.fixture
def view(qtbot):
    v = TimelineView()
    qtbot.addWidget(v)
    v.resize(1000, 320)
    v.show()
    qtbot.waitExposed(v)
    return v


def centre(view: TimelineView, ti: int, item) -> QPoint:
    return view.clip_rect(ti, item).center()


def ruler_point(view: TimelineView, frame: int) -> QPoint:
    return QPoint(view.x_of(frame) + 1, view.ruler_rect().center().y())


def wheel(view: TimelineView, at: QPoint, dy: int, mods=Qt.KeyboardModifier.NoModifier) -> None:
    event = QWheelEvent(QPointF(at), QPointF(view.mapToGlobal(at)), QPoint(0, 0), QPoint(0, dy),
                        Qt.MouseButton.NoButton, mods, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, event)


def test_a_click_picks_the_clip_with_its_track_range_and_number(view, qtbot):
    tl = cut()
    view.set_timeline(tl)
    shot020 = tl.tracks[0][1]
    with qtbot.waitSignal(view.selectionChanged):
        qtbot.mouseClick(view, LEFT, pos=centre(view, 0, shot020))
    (pick,) = view.selected_clips()
    assert isinstance(pick, ClipPick)
    assert pick.track_index == 0 and pick.clip is shot020
    assert pick.record_range == tl.tracks[0].range_of_all_children()[shot020]
    assert pick.number == 2 and clips_on_track(tl.tracks[0])[pick.number - 1][0] is shot020
    assert view.target_track() == 0


def test_shift_and_ctrl_clicks_add_and_toggle_and_empty_space_clears(view, qtbot):
    tl = cut()
    view.set_timeline(tl)
    a, c = tl.tracks[0][0], tl.tracks[0][3]
    dialogue = tl.tracks[2][0]
    qtbot.mouseClick(view, LEFT, pos=centre(view, 0, c))
    qtbot.mouseClick(view, LEFT, SHIFT, pos=centre(view, 0, a))
    qtbot.mouseClick(view, LEFT, CTRL, pos=centre(view, 2, dialogue))
    picks = view.selected_clips()
    assert [(p.track_index, p.clip.name, p.number) for p in picks] == [(0, "shot010", 1), (0, "shot030", 3), (2, "dialogue", 1)]
    qtbot.mouseClick(view, LEFT, CTRL, pos=centre(view, 0, a))  # toggles it off
    assert [p.clip.name for p in view.selected_clips()] == ["shot030", "dialogue"]
    gap = QPoint(view.x_of(120 + 12), view.track_rect(0).center().y())  # the gap runs 120-144 on V1
    with qtbot.waitSignal(view.selectionChanged):
        qtbot.mouseClick(view, LEFT, pos=gap)
    assert view.selected_clips() == [] and view.selected_range() is None


def test_a_drag_on_the_ruler_marks_a_range_and_moves_the_playhead(view, qtbot):
    tl = cut()
    view.set_timeline(tl)
    qtbot.mouseClick(view, LEFT, pos=centre(view, 0, tl.tracks[0][0]))
    moves = []
    view.playheadMoved.connect(moves.append)
    qtbot.mousePress(view, LEFT, pos=ruler_point(view, 10))
    qtbot.mouseMove(view, ruler_point(view, 25))
    qtbot.mouseMove(view, ruler_point(view, 40))
    qtbot.mouseRelease(view, LEFT, pos=ruler_point(view, 40))
    assert view.selected_range() == (10, 40)
    assert view.playhead() == 40 and moves[-1] == 40
    assert view.selected_clips() == []  # a range replaces the clip selection
    assert view.target_track() == 0     # the last clicked track
    # dragging backwards marks the same kind of range
    qtbot.mousePress(view, LEFT, pos=ruler_point(view, 100))
    qtbot.mouseMove(view, ruler_point(view, 60))
    qtbot.mouseRelease(view, LEFT, pos=ruler_point(view, 60))
    assert view.selected_range() == (60, 100)
    # a click on the ruler moves the playhead and keeps the range
    qtbot.mouseClick(view, LEFT, pos=ruler_point(view, 150))
    assert view.playhead() == 150 and view.selected_range() == (60, 100)
    # a click on a clip clears the range
    qtbot.mouseClick(view, LEFT, pos=centre(view, 0, tl.tracks[0][3]))
    assert view.selected_range() is None


def test_the_target_track_defaults_to_the_first_video_track_and_follows_header_clicks(view, qtbot):
    tl = cut()
    tl.tracks.insert(0, otio.schema.Track(name="Music", kind=otio.schema.TrackKind.Audio))
    view.set_timeline(tl)
    assert view.target_track() == 1
    with qtbot.waitSignal(view.selectionChanged):
        qtbot.mouseClick(view, LEFT, pos=view.header_rect(3).center())
    assert view.target_track() == 3
    view.set_target_track(2)
    assert view.target_track() == 2


def test_i_and_o_mark_in_and_out_at_the_playhead(view, qtbot):
    view.set_timeline(cut())
    view.set_playhead(10)
    qtbot.keyClick(view, Qt.Key.Key_I)
    assert view.selected_range() is None and view.marks() == (10, None)
    view.set_playhead(29)
    qtbot.keyClick(view, Qt.Key.Key_O)
    assert view.selected_range() == (10, 30)  # the out point includes the frame under the playhead
    view.set_playhead(20)
    qtbot.keyClick(view, Qt.Key.Key_I)
    assert view.selected_range() == (20, 30)  # the other end kept
    view.set_playhead(50)
    qtbot.keyClick(view, Qt.Key.Key_I)        # in after out: the out goes
    assert view.selected_range() is None and view.marks() == (50, None)
    view.set_playhead(60)
    qtbot.keyClick(view, Qt.Key.Key_O)
    assert view.selected_range() == (50, 61)
    view.set_playhead(40)
    qtbot.keyClick(view, Qt.Key.Key_O)        # out before in: the in goes
    assert view.marks() == (None, 41)
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert view.marks() == (None, None)


def test_keys_step_the_playhead(view, qtbot):
    view.set_timeline(cut())
    moves = []
    view.playheadMoved.connect(moves.append)
    view.set_playhead(5)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert view.playhead() == 6 and moves == [5, 6, 7, 6]
    qtbot.keyClick(view, Qt.Key.Key_Right, SHIFT)
    assert view.playhead() == 30  # a second at 24 fps
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.playhead() == 203
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.playhead() == 203
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.playhead() == 0


def test_zoom_in_out_and_fit(view, qtbot):
    view.set_timeline(cut())
    ruler = view.ruler_rect()
    fit = view.pixels_per_frame()
    assert view.x_of(0) == ruler.left() and abs(view.x_of(204) - (ruler.right() + 1)) <= 1
    view.zoom_in()
    assert view.pixels_per_frame() > fit
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    qtbot.keyClick(view, Qt.Key.Key_Equal)
    deep = view.pixels_per_frame()
    assert deep > fit * 3
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert fit < view.pixels_per_frame() < deep
    view.zoom_out()
    view.zoom_fit()
    assert view.pixels_per_frame() == pytest.approx(fit)
    assert view.x_of(0) == ruler.left()


def test_ctrl_wheel_zooms_around_the_pointer_and_the_wheel_scrolls(view, qtbot):
    view.set_timeline(cut())
    at = QPoint(view.x_of(100), view.track_rect(0).center().y())
    fit = view.pixels_per_frame()
    wheel(view, at, 240, CTRL)
    assert view.pixels_per_frame() > fit * 1.4
    assert abs(view.x_of(100) - at.x()) <= 1  # the frame under the pointer stays there
    left = view.frame_at(view.ruler_rect().left())
    wheel(view, at, -120)  # scroll on towards the end
    assert view.frame_at(view.ruler_rect().left()) > left
    wheel(view, at, 1200)
    assert view.frame_at(view.ruler_rect().left()) == 0


def test_right_click_asks_for_the_clip_menu(view, qtbot):
    tl = cut()
    view.set_timeline(tl)
    shot030 = tl.tracks[0][3]
    with qtbot.waitSignal(view.clipMenuRequested) as blocker:
        qtbot.mouseClick(view, RIGHT, pos=centre(view, 0, shot030))
    ti, picked, where = blocker.args
    assert ti == 0 and picked is shot030 and isinstance(where, QPoint)
    assert [p.clip for p in view.selected_clips()] == [shot030]


def test_a_nest_is_one_block_and_a_click_picks_the_clip_that_shows_there(view, qtbot):
    tl = cut()
    view.set_timeline(tl)
    nest = tl.tracks[1][1]
    block = view.clip_rect(1, nest)
    assert block.width() > 100
    fg = nest[1][1]  # the upper layer, shows over the nest's second half
    bg = nest[0][0]
    qtbot.mouseClick(view, LEFT, pos=QPoint(view.x_of(30 + 60), block.center().y()))
    (pick,) = view.selected_clips()
    assert pick.clip is fg and pick.track_index == 1
    assert clips_on_track(tl.tracks[1])[pick.number - 1][0] is fg
    qtbot.mouseClick(view, LEFT, pos=QPoint(view.x_of(30 + 10), block.center().y()))
    assert view.selected_clips()[0].clip is bg
    assert block.contains(view.clip_rect(1, fg).center())


def test_video_tracks_stack_upwards_above_the_audio(view):
    view.set_timeline(cut())
    v1, v2, a1 = (view.track_rect(i).top() for i in range(3))
    assert v2 < v1 < a1


def test_the_ruler_shows_drop_frame_timecode_with_semicolons(view):
    rate = Fraction(30000, 1001)
    start = RT.from_timecode("01:00:00;00", float(rate))
    tl = timeline(*(clip(f"s{i}", f"/m/{i}.mov", 0, 600, rate=float(rate)) for i in range(6)), rate=float(rate),
                  start=start.value)
    view.set_timeline(tl)
    labels = view.ruler_labels()
    assert labels and all(";" in text for _, text in labels)
    assert labels[0] == (view.ruler_rect().left(), "01:00:00;00")
    for _ in range(6):  # at every zoom the labels stay apart, round, and say the record timecode of their frame
        view.zoom_in()
        labels = view.ruler_labels()
        xs = [x for x, _ in labels]
        assert len(labels) >= 2 and all(b - a >= 60 for a, b in pairwise(xs))
        if view.pixels_per_frame() >= 1:  # a pixel column holds at most one frame
            for x, text in labels:
                assert text == record_timecode(tl, RT(view.frame_at(x), float(rate)))


def test_ruler_labels_at_24_fps_are_round_and_non_drop(view):
    view.set_timeline(cut())
    labels = view.ruler_labels()
    assert [t for _, t in labels[:3]] == ["01:00:00:00", "01:00:01:00", "01:00:02:00"]
    assert all(";" not in t for _, t in labels)


def test_a_retaken_clip_wears_a_version_badge(view):
    tl = cut()
    shot020 = tl.tracks[0][1]
    shot020.metadata["ltx_retake"] = {"versions": ["retake_v001", "retake_v002", "retake_v003"], "active": "retake_v002"}
    spliced = tl.tracks[0][3]
    spliced.metadata["ltx_retake"] = {"versions": {"retake_v001": {"prompt": "x"}}, "active": "original"}
    assert badge_text(shot020) == "v2/3"
    assert badge_text(spliced) == "orig/1"
    assert badge_text(tl.tracks[0][0]) is None
    view.set_timeline(tl)
    image = view.grab().toImage()
    rect = view.clip_rect(0, shot020)
    y = rect.top() + 8
    xs = range(rect.right() - 40, rect.right() - 4)
    assert any(_close(image.pixelColor(x, y), QColor("#f0a030")) for x in xs)  # the pill, at the clip's top right


def test_overlays_are_kept_and_drawn(view):
    tl = cut()
    view.set_timeline(tl)
    row = view.track_rect(0)
    x, y = (view.x_of(64) + view.x_of(76)) // 2, row.bottom() - 8
    before = view.grab().toImage().pixelColor(x, y)
    overlay = Overlay(0, (60, 80), (40, 100), "shot020_retake_v001 lands on V1 at 01:00:02:12-01:00:03:08 as a new version")
    view.set_overlays([overlay])
    assert view.overlays() == [overlay]
    image = view.grab().toImage()
    assert image.pixelColor(x, y) != before
    hx = (view.x_of(42) + view.x_of(58)) // 2  # the handles differ from the window
    assert image.pixelColor(hx, y) != image.pixelColor(x, y)
    strip = [(sx, sy) for sy in range(view.height() - 50, view.height() - 16) for sx in range(10, 200, 2)]
    assert any(_close(image.pixelColor(sx, sy), QColor("#ffcf8a"), 90) for sx, sy in strip)  # the sentence, readable
    assert view.track_rect(2).bottom() < view.height() - 50  # under the tracks
    second = Overlay(2, (10, 20), (5, 25), "")  # an overlay without a sentence adds no line
    view.set_overlays([overlay, second])
    assert view.track_rect(2).bottom() < view.height() - 50 and not view.grab().isNull()
    view.set_overlays([])
    assert view.grab().toImage().pixelColor(x, y) == before


def test_a_clip_marker_shows_where_its_source_time_falls(view):
    tl = cut()
    view.set_timeline(tl)
    # shot020 starts on the track at 48 and uses its source from 10, so the marker at source 40 is at 78
    x = view.x_of(78)
    top = view.clip_rect(0, tl.tracks[0][1]).top()
    image = view.grab().toImage()
    assert _close(image.pixelColor(x, top + 2), QColor("#37d65a"))
    assert view.paint_stats()["markers"] == 1


def test_a_track_at_another_rate_is_rescaled(view):
    tl = cut()
    fast = otio.schema.Track(name="48p")
    fast.append(clip("hfr", "/m/hfr.mov", 0, 96, rate=48))
    tl.tracks.append(fast)
    view.set_timeline(tl)
    rect = view.clip_rect(3, fast[0])
    assert abs(rect.width() - 48 * view.pixels_per_frame()) <= 2


def test_refresh_keeps_zoom_and_what_is_left_of_the_selection(view, qtbot):
    tl = cut()
    view.set_timeline(tl)
    a, c = tl.tracks[0][0], tl.tracks[0][3]
    qtbot.mouseClick(view, LEFT, pos=centre(view, 0, a))
    qtbot.mouseClick(view, LEFT, SHIFT, pos=centre(view, 0, c))
    view.zoom_in()
    ppf = view.pixels_per_frame()
    a.metadata["ltx_retake"] = {"versions": ["retake_v001"], "active": "retake_v001"}
    view.refresh()
    assert view.pixels_per_frame() == ppf and [p.clip for p in view.selected_clips()] == [a, c]
    assert view.grab() is not None
    with qtbot.waitSignal(view.selectionChanged):
        del tl.tracks[0][3]
        view.refresh()
    assert [p.clip for p in view.selected_clips()] == [a]


def test_disabled_clips_and_tracks_are_dimmed_and_the_model_is_left_alone(view):
    tl = cut()
    tl.tracks[0][0].enabled = False
    tl.tracks[2].enabled = False
    tl.tracks[0].insert(2, otio.schema.Transition(in_offset=RT(6, 24), out_offset=RT(6, 24)))
    before = otio.adapters.write_to_string(tl)
    view.set_timeline(tl)
    image = view.grab().toImage()
    on, off = view.clip_rect(0, tl.tracks[0][1]), view.clip_rect(0, tl.tracks[0][0])
    lit = image.pixelColor(on.center().x(), on.bottom() - 4)
    dim = image.pixelColor(off.center().x(), off.bottom() - 4)
    assert dim.saturation() < lit.saturation()
    assert otio.adapters.write_to_string(tl) == before


def test_no_timeline_draws_an_empty_view(view):
    view.set_timeline(cut())
    view.set_timeline(None)
    assert view.selected_clips() == [] and view.selected_range() is None and view.ruler_labels() == []
    assert not view.grab().isNull()


def test_ten_thousand_clips_draw_at_most_a_rect_per_pixel_column(view):
    tl = otio.schema.Timeline(name="long")
    track = otio.schema.Track(name="V1")
    for n in range(10_000):
        track.append(otio.schema.Clip(name=f"c{n}", source_range=TR(RT(0, 24), RT(12 + n % 50, 24))))
    tl.tracks.append(track)
    view.resize(1600, 600)
    view.set_timeline(tl)
    assert not view.grab().isNull()
    assert view.paint_stats()["rects"] <= view.ruler_rect().width()
    view.set_playhead(200_000)
    for _ in range(12):
        view.zoom_in()
    assert not view.grab().isNull()
    stats = view.paint_stats()
    assert 0 < stats["rects"] <= view.ruler_rect().width() and stats["texts"] > 0
    x = view.ruler_rect().center().x()
    frame = view.frame_at(x)
    rng = track.range_of_all_children()
    under = next(c for c in track if rng[c].start_time.value <= frame < rng[c].end_time_exclusive().value)
    assert view.clip_rect(0, under).contains(QPoint(x, view.track_rect(0).center().y()))


CORPUS_SUFFIXES = (".otio", ".xml", ".edl", ".fcpxml")


def _corpus_timelines(root):
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in CORPUS_SUFFIXES):
        try:
            yield path, read_timeline(path)
        except RetakeError as exc:
            if "holds" not in str(exc):
                continue
            # a library of several timelines (FCPXML): show each one
            for tl in otio.adapters.read_from_file(str(path)).find_children(descended_from_type=otio.schema.Timeline):
                yield path, tl


def test_every_corpus_timeline_shows(view, corpus):
    shown = 0
    for path, tl in _corpus_timelines(corpus):
        before = otio.adapters.write_to_string(tl)
        view.set_timeline(tl)
        assert not view.grab().isNull(), path
        view.zoom_in()
        view.zoom_in()
        view.set_playhead(view.frame_at(view.ruler_rect().center().x()))
        assert not view.grab().isNull(), path
        assert view.ruler_labels(), path
        assert otio.adapters.write_to_string(tl) == before, f"{path.name} was changed by drawing it"
        shown += 1
    assert shown >= 8


def _close(a: QColor, b: QColor, tol: int = 40) -> bool:
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue()) <= tol


_QT_FREE = r"""
import sys
sys.modules["PySide6"] = None          # the index must not need Qt: importing it would fail here
sys.path.insert(0, "tests")
import opentimelineio as otio
from ltx_retake.selection import clips_on_track
from ltx_retake.ui.timeline_model import TimelineIndex
from timelines import RT, TR, clip, timeline
%s
tl = cut()
tl.tracks[1][1][1].enabled = True
index = TimelineIndex(tl)
shown = {f: index.picture_at(f) for f in (10, 50, 80, 125, 160, 230)}
print({f: (p.clip.name if p.clip else None, p.track_index, p.media_time.value if p.media_time else None)
       for f, p in shown.items()})
a1 = [c.name for c, _ in clips_on_track(tl.tracks[2])]
print([index.pick(ti, c).number for ti in (0, 1) for c, _ in clips_on_track(tl.tracks[ti])])
tl.tracks[1].enabled = False
print(TimelineIndex(tl).picture_at(80).clip.name)
print([(p.clip.name, p.record) for p in index.sound_at(20, 40)])
"""


def test_the_index_needs_no_qt_numbers_clips_as_the_core_and_says_what_shows_where():
    import subprocess
    import sys

    import inspect

    script = _QT_FREE % inspect.getsource(cut)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shown, numbers, below, sound = done.stdout.strip().splitlines()
    # V2 (track 1): a gap to 30, then the nest: bg 30-110 with fg on top from 70; V1 below: shot010 0-48,
    # shot020 48-120 (from source 10), a gap, shot030 144-204
    assert eval(shown) == {10: ("shot010", 0, 10), 50: ("bg", 1, 20), 80: ("fg", 1, 10), 125: (None, None, None),
                           160: ("shot030", 0, 16), 230: (None, None, None)}
    assert eval(numbers) == [1, 2, 3, 1, 2]            # the core's clips_on_track order, nested clips counted
    assert below == "shot020"                          # a disabled track shows what is under it
    assert eval(sound) == [("dialogue", (20, 40))]


def test_j_k_l_ask_for_playback(view, qtbot):
    view.set_timeline(cut())
    view.setFocus()
    for key, direction in ((Qt.Key.Key_L, 1), (Qt.Key.Key_K, 0), (Qt.Key.Key_J, -1)):
        with qtbot.waitSignal(view.shuttleRequested) as asked:
            qtbot.keyClick(view, key)
        assert asked.args == [direction]
