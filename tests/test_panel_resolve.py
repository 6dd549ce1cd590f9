"""The panel on a (fake) running DaVinci Resolve: the pick preselected, a retake accepted and put back, closing with Resolve."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QPushButton

from ltx_retake.adapters.resolve_bridge import ResolveBridge
from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.live import live_folder
from ltx_retake.settings import load_settings
from ltx_retake.ui.window import Dialogs, RetakeWindow

from fake_resolve import FakeResolve

pytestmark = pytest.mark.slow

START = 86400   # 01:00:00:00 at 24 fps: the fake's timelines start there


class Answers(Dialogs):
    """Answers without a modal box; remembers what was asked."""

    def __init__(self):
        super().__init__()
        self.asked, self.warnings = [], []

    def yes_no(self, title: str, text: str) -> bool:
        self.asked.append((title, text))
        return True

    def save_discard_cancel(self, title: str, text: str) -> str:
        self.asked.append((title, text))
        return "discard"

    def warn(self, title: str, text: str) -> None:
        self.warnings.append((title, text))


@pytest.fixture
def resolve_project(tmp_path):
    """Resolve 19.1 Studio on Linux with timeline "Edit 1": clips A (1 s), B (4 s), C (1 s) of one indexed source on V1."""
    src = write_indexed_clip(tmp_path / "source.mov", frames=144, rate=Fraction(24), size=(320, 180), timecode="01:00:00:00")
    fake = FakeResolve(version=(19, 1, 0, 3, ""), product="DaVinci Resolve Studio", platform="linux")
    pool = fake.GetProjectManager().GetCurrentProject().GetMediaPool()
    (mpi,) = pool.ImportMedia([str(src)])
    tl = fake.new_timeline("Edit 1", rate="24", video_tracks=1, audio_tracks=1)
    items = [tl.place(1, mpi, START + a, a, b) for a, b in ((0, 24), (24, 120), (120, 144))]
    return fake, tl, items


@pytest.fixture
def panel(qtbot, tmp_path):
    answers = Answers()

    def make(fake) -> RetakeWindow:
        w = RetakeWindow(load_settings(), qsettings=QSettings(str(tmp_path / "panel.ini"), QSettings.IniFormat),
                         dialogs=answers)
        qtbot.addWidget(w)
        w.resize(1400, 860)
        w.show()
        qtbot.waitExposed(w)
        link = w.attach_resolve(ResolveBridge(fake, platform="linux"), root=tmp_path / "LTX Retakes", alive_ms=200)
        qtbot.waitUntil(lambda: link.read is not None or "Nothing is picked" in link.info_text(), timeout=20_000)
        return w

    make.answers = answers
    return make


def _retake_and_accept(qtbot, w: RetakeWindow, prompt: str) -> list[str]:
    """Prompt, Retake, wait for the job, review it, Accept; returns the sentences Resolve's put-back said."""
    w.form.prompt.setFocus()
    qtbot.keyClicks(w.form.prompt, prompt)

    def sendable() -> None:
        assert w.form.retake.isEnabled(), f"{w.form.problems.text()} | {w.form.window_text.text()}"

    qtbot.waitUntil(sendable, timeout=20_000)
    qtbot.mouseClick(w.form.retake, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.jobs.row_count() == 1, timeout=20_000)
    qtbot.waitUntil(lambda: w.jobs.step_of("r1", "job1") in ("done", "failed"), timeout=120_000)
    assert w.jobs.step_of("r1", "job1") == "done", w.status.text()
    qtbot.waitUntil(lambda: bool(w.session.runs["r1"].pending), timeout=10_000)
    qtbot.mouseClick(w.jobs.buttons("r1", "job1")["review"], Qt.LeftButton)
    qtbot.waitUntil(lambda: w.preview.filmstrip_count() > 0, timeout=20_000)
    with qtbot.waitSignal(w.resolve.landed, timeout=30_000) as landed:
        qtbot.mouseClick(w.preview.findChild(QPushButton, "accept"), Qt.LeftButton)
    return landed.args[2]


def _bin_clips(fake) -> list:
    pool = fake.GetProjectManager().GetCurrentProject().GetMediaPool()
    (top,) = [f for f in pool.GetRootFolder().GetSubFolderList() if f.GetName() == "LTX Retakes"]
    (per_timeline,) = [f for f in top.GetSubFolderList() if f.GetName() == "Edit 1"]
    return per_timeline.GetClipList()


def _provenance(item) -> dict:
    found = [json.loads(m["customData"]) for m in (item.GetMarkers() or {}).values() if "ltx_retake" in m.get("customData", "")]
    assert found, f"no provenance marker on {item.GetName()}"
    return found[0]


def test_in_out_marks_become_the_range_and_the_version_goes_on_a_track_above(qtbot, panel, resolve_project):
    fake, tl, (a, b, c) = resolve_project
    tl.set_marks(36, 83)                                  # Resolve's marks: relative, out inclusive (2 s inside B)
    w = panel(fake)
    link = w.resolve
    assert w.view.selected_range() == (36, 84) and w.view.target_track() == 0
    info = link.info_text()
    assert "DaVinci Resolve Studio 19.1.0" in info and "the in/out marks 01:00:01:12 - 01:00:03:11" in info
    assert "delivered as DNxHR" in info and "✓ partial retakes go on a free track above" in info    # Studio on Linux cannot decode H.264/AAC
    assert w.windowTitle().startswith("Edit 1 (DaVinci Resolve)")
    assert w.session.delivery == "dnxhr"

    lines = _retake_and_accept(qtbot, w, "a stormy sky")
    assert len(lines) == 1 and "on V2" in lines[0], lines
    assert any(line.startswith("note: Resolve:") and "V2" in line for line in w.jobs.lines_of("r1", "job1"))
    assert "In Resolve:" in w.status.text()

    job = w.session.runs["r1"].jobs["job1"]
    version_file = job.version.path
    assert version_file.suffix == ".mov" and version_file.parent == live_folder(link.root, link.read) / "media"
    assert [clip.GetClipProperty("File Path") for clip in _bin_clips(fake)] == [str(version_file)]
    assert tl.GetTrackCount("video") == 2
    (above,) = tl.GetItemListInTrack("video", 2)
    assert (above.GetStart(), above.GetDuration()) == (START + 36, 48)
    info = _provenance(above)
    assert info["source_item"] == b.GetUniqueId() and info["version"] == 1
    assert b.GetTakesCount() == 0                         # the clip itself is untouched


def test_the_clip_under_the_playhead_becomes_a_take_and_the_panel_closes_with_resolve(qtbot, panel, resolve_project):
    fake, tl, (a, b, c) = resolve_project
    tl.set_playhead(START + 60)                            # no marks on 19.1: the clip under the playhead (B)
    w = panel(fake)
    (pick,) = w.view.selected_clips()
    assert (pick.track_index, pick.number, pick.clip.name) == (0, 2, "source")
    assert "the clip under the playhead" in w.resolve.info_text()
    w.form.mode.setCurrentIndex(1)                          # picture only: no sound to place

    lines = _retake_and_accept(qtbot, w, "the same shot at dusk")
    assert len(lines) == 1 and "take" in lines[0], lines
    version_file = w.session.runs["r1"].jobs["job1"].version.path
    assert [clip.GetClipProperty("File Path") for clip in _bin_clips(fake)] == [str(version_file)]
    assert tl.GetTrackCount("video") == 1                  # a whole-clip version is a take, not a clip above
    index = b.GetSelectedTakeIndex()
    assert b.GetTakeByIndex(index)["mediaPoolItem"].GetClipProperty("File Path") == str(version_file)
    assert (b.GetStart(), b.GetDuration()) == (START + 24, 96)
    assert _provenance(b)["version"] == 1

    fake.quit()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)
    assert "Resolve has closed" in w.status.text()
    assert panel.answers.asked == []                        # closed without asking about unsaved changes


def test_nothing_picked_in_resolve_is_said_above_the_timeline(qtbot, panel, resolve_project):
    fake, tl, items = resolve_project
    tl.set_playhead(START - 10)                             # before the timeline: no clip, no marks
    w = panel(fake)
    info = w.resolve.info_text()
    assert "Nothing is picked in Resolve: set in/out marks or park the playhead on a clip" in info
    assert w.session.document.timeline is not None and w.view.selected_clips() == []   # the timeline shows, unpicked
    tl.set_playhead(START + 5)                              # the editor parks on clip A and reloads
    w.resolve.reload_action.trigger()
    qtbot.waitUntil(lambda: w.resolve.read.picks != [], timeout=20_000)
    qtbot.waitUntil(lambda: w.view.selected_clips() != [], timeout=20_000)
    (pick,) = w.view.selected_clips()
    assert pick.number == 1


def test_connecting_happens_off_the_gui_thread_and_its_refusal_is_passed_on(qtbot, resolve_project):
    import threading

    from ltx_retake.adapters.resolve_connect import ResolveUnavailable
    from ltx_retake.ui.app import connect_resolve

    def refuse():
        assert threading.current_thread() is not threading.main_thread()
        raise ResolveUnavailable("DaVinci Resolve did not answer. Start Resolve and open a project.")

    with pytest.raises(ResolveUnavailable, match="did not answer"):
        connect_resolve(refuse)
    fake = resolve_project[0]
    assert connect_resolve(lambda: ResolveBridge(fake, platform="linux")).alive()
