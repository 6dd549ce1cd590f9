"""The real panel end to end, offscreen: open a timeline, select a range, retake on the local service, review,
accept, save, reopen and find the version; closing with jobs in flight; interrupted runs resumed from the journal."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QPushButton

from ltx_retake.adapters.local_service import LocalService, LocalServiceConfig
from ltx_retake.adapters.media_sheet import retake_sheet_rows
from ltx_retake.adapters.testcard import audio_marks, read_index, write_marks_wav
from ltx_retake.adapters.timeline_files import read_timeline, write_timeline
from ltx_retake.journal import Journal
from ltx_retake.paths import file_sha256
from ltx_retake.selection import clip_at
from ltx_retake.settings import load_settings
from ltx_retake.ui.display import display_problem
from ltx_retake.ui.timeline_view import badge_text
from ltx_retake.ui.window import Dialogs, RetakeWindow
from ltx_retake.versions import list_versions

from media_fixtures import make_project

pytestmark = pytest.mark.slow


class Answers(Dialogs):
    """Answers the window's questions without a modal box, and remembers what was asked."""

    def __init__(self, yes: bool = True, save: str = "discard"):
        super().__init__()
        self.yes, self.save, self.asked, self.warnings = yes, save, [], []

    def yes_no(self, title: str, text: str) -> bool:
        self.asked.append((title, text))
        return self.yes

    def save_discard_cancel(self, title: str, text: str) -> str:
        self.asked.append((title, text))
        return self.save

    def warn(self, title: str, text: str) -> None:
        self.warnings.append((title, text))

    def choose_rate(self, name: str, fits: list, why: str):
        self.asked.append(("Frame rate", why))
        return getattr(self, "rate_answer", None)

    def relink(self, missing: list[str], start: str):
        self.asked.append(("Relink Media", "\n".join(missing)))
        return self.relink_answer.pop(0) if getattr(self, "relink_answer", None) else None


class KeptSound:
    """A sound output that keeps what it is given (the seam the panel plays through; no sound device needed)."""

    def __init__(self):
        self.played = []

    def play(self, pcm, rate):
        self.played.append((pcm, rate))

    def stop(self):
        pass

    def elapsed(self):
        return 0.0


@pytest.fixture
def window(qtbot, tmp_path):
    def make(settings=None, answers=None, local_config=None, **options) -> RetakeWindow:
        w = RetakeWindow(settings or load_settings(), qsettings=QSettings(str(tmp_path / "panel.ini"), QSettings.IniFormat),
                         local_config=local_config, dialogs=answers or Answers(), **options)
        qtbot.addWidget(w)
        w.resize(1400, 860)
        w.show()
        qtbot.waitExposed(w)
        return w
    return make


def _select_range(qtbot, w: RetakeWindow, a: int, b: int) -> None:
    """Playhead to a, press I; playhead to the last frame, press O (an out mark includes its frame, as in NLEs)."""
    view = w.view
    view.setFocus()
    view.set_playhead(a)
    qtbot.keyClick(view, Qt.Key_I)
    view.set_playhead(b - 1)
    qtbot.keyClick(view, Qt.Key_O)
    assert view.selected_range() == (a, b)


def _monitor_index(qtbot, w: RetakeWindow, frame: int) -> int | None:
    """Put the playhead on `frame` and read the index the monitor's picture carries."""
    w.view.set_playhead(frame)
    qtbot.waitUntil(lambda: not w.monitor.pending(), timeout=10_000)
    image = w.monitor.image()
    if image is None:
        return None
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, width, line = image.height(), image.width(), image.bytesPerLine()
    rgb = np.frombuffer(image.constBits(), np.uint8, count=h * line).reshape(h, line)[:, :width * 3].reshape(h, width, 3)
    return read_index(rgb.copy())


def _retake_ready(qtbot, w: RetakeWindow, prompt: str) -> None:
    w.form.prompt.setFocus()
    qtbot.keyClicks(w.form.prompt, prompt)
    qtbot.waitUntil(lambda: w.form.retake.isEnabled(), timeout=20_000)


def test_the_whole_round_trip_in_the_panel(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=6.0)
    media_sha, cut_sha = file_sha256(tmp_path / "source.mov"), file_sha256(cut)
    answers = Answers()
    w = window(answers=answers)
    assert w.open(cut)
    assert w.windowTitle().startswith("cut.otio")

    # the monitor shows what the timeline shows at the playhead, by frame content, decoded off the GUI thread
    assert [_monitor_index(qtbot, w, f) for f in (5, 30, 139)] == [5, 30, 139]
    assert w.monitor.where.text().startswith("01:00:05:19  V1 · C")
    _select_range(qtbot, w, 36, 84)          # two seconds inside clip B
    assert w.monitor.marks.text() == "In 01:00:01:12  Out 01:00:03:11  (48 frames)"   # marks read inclusive
    _retake_ready(qtbot, w, "a stormy sky")
    assert "B on V1: 01:00:01:12-01:00:03:11, 48 frames" in w.form.window_text.text()
    assert "will replace 01:00:01:12-01:00:03:11 on V1" in w.form.window_text.text()
    assert "$0.00" in w.form.cost.text() or "local" in w.form.cost.text()
    assert w.view.overlays(), "the view draws the planned window and handles before sending"

    qtbot.mouseClick(w.form.retake, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.jobs.row_count() == 1, timeout=20_000)
    qtbot.waitUntil(lambda: w.jobs.step_of("r1", "job1") in ("done", "failed"), timeout=120_000)
    assert w.jobs.step_of("r1", "job1") == "done", w.status.text()
    qtbot.waitUntil(lambda: bool("r1" in w.session.runs and w.session.runs["r1"].pending), timeout=10_000)
    assert w.windowTitle().endswith("* — LTX Retake")
    # the status bar and the Review tab say the same: one ready, and the Review tab shows it with Accept
    qtbot.waitUntil(lambda: w.preview.reviewing(), timeout=10_000)
    assert w.status.text().startswith("1 retake(s) ready to review") and w.viewer.tabText(1) == "Review (1 ready)"
    assert w.preview.findChild(QPushButton, "accept").isVisibleTo(w.preview)

    # awaiting review: the timeline still shows what it showed before
    (retaken,) = list_versions(w.session.document.timeline)
    assert retaken.versions == ("retake_v001",) and retaken.active == "original"
    assert w.view.timeline() is w.session.document.timeline and badge_text(retaken.clip) == "orig/1"

    # at 1280x720 the row's Review shows inside the jobs list, and a double-click on the row opens the review
    w.preview.clear()
    w.resize(1280, 720)
    qtbot.waitUntil(lambda: w.width() == 1280)
    review = w.jobs.buttons("r1", "job1")["review"]
    viewport = w.jobs.tree.viewport()
    corner = review.mapTo(viewport, QPoint(review.width() - 1, review.height() - 1))
    assert review.isVisible() and viewport.rect().contains(review.mapTo(viewport, QPoint(0, 0))) and viewport.rect().contains(corner)
    item_rect = w.jobs.tree.visualItemRect(w.jobs.item_of("r1", "job1"))
    at = QPoint(item_rect.left() + 20, item_rect.center().y())
    with qtbot.waitSignal(w.jobs.reviewRequested):   # a double-click as a mouse makes it: press, release, double-click
        qtbot.mouseClick(viewport, Qt.LeftButton, pos=at)
        qtbot.mouseDClick(viewport, Qt.LeftButton, pos=at)
    qtbot.waitUntil(lambda: w.preview.filmstrip_count() > 0, timeout=20_000)
    sheet = w.contact_sheet("r1", "job1", wait=True)
    assert sheet.is_file() and sheet.stat().st_size > 10_000
    job = w.session.runs["r1"].jobs["job1"]
    title, rows = retake_sheet_rows(job.plan, job.version)     # what the sheet says, by record timecode
    assert title == ["B on V1  01:00:01:12-01:00:03:11  B_retake_v001", "prompt: a stormy sky"]
    after = [item for item in rows[1][1] if isinstance(item, tuple)]
    assert [c for _, _, c in after] == ["01:00:01:10", "01:00:01:11", "01:00:01:12", "01:00:01:13", "01:00:02:12",
                                        "01:00:03:10", "01:00:03:11", "01:00:03:12", "01:00:03:13"]
    assert [Path(p).name for p, _, _ in after] == ["source.mov"] * 2 + [job.version.path.name] * 5 + ["source.mov"] * 2
    with qtbot.waitSignal(w.preview.accepted):
        qtbot.mouseClick(w.preview.findChild(QPushButton, "accept"), Qt.LeftButton)
    (retaken,) = list_versions(w.session.document.timeline)
    assert retaken.active == "retake_v001"
    _monitor_index(qtbot, w, 50)
    assert "B_retake_v001 · v1" in w.monitor.where.text()

    # Undo and Redo of Accept: the clip, the jobs list and the review follow
    assert w.undo_action.shortcut().toString() == "Ctrl+Z" and "Ctrl+Shift+Z" in [k.toString() for k in w.redo_action.shortcuts()]
    w.undo_action.trigger()
    assert list_versions(w.session.document.timeline)[0].active == "original"
    assert w.session.ready_to_review() == [("r1", "job1")] and "ready to review" in w.jobs.item_of("r1", "job1").text(5)
    w.redo_action.trigger()
    assert list_versions(w.session.document.timeline)[0].active == "retake_v001" and not w.session.ready_to_review()

    # the versions menu's actions: compare two versions (no Accept/Discard there), go back to the original and forth
    w.compare(retaken.clip, "retake_v001", "original")
    qtbot.waitUntil(lambda: w.preview.filmstrip_count() > 0 and w.preview.findChild(QPushButton, "accept").isHidden(),
                    timeout=20_000)
    w._switch("B", "original", retaken.record_timecode.split("-")[0])
    assert list_versions(w.session.document.timeline)[0].active == "original"
    w.undo_action.trigger()                                  # a version switch is undone too
    assert list_versions(w.session.document.timeline)[0].active == "retake_v001"
    w._switch("B", "original", retaken.record_timecode.split("-")[0])
    w._switch("B", "v001", retaken.record_timecode.split("-")[0])
    assert list_versions(w.session.document.timeline)[0].active == "retake_v001"

    out = tmp_path / "cut_retaken.otio"
    assert w.save_to(out)
    assert not w.session.document.modified and w.windowTitle().startswith("cut_retaken.otio — ")   # Save As renames
    w.undo_action.trigger()                                  # back past the save: modified again, and the title says so
    assert w.session.document.modified and w.windowTitle().startswith("cut_retaken.otio * — ")
    w.redo_action.trigger()
    assert not w.session.document.modified
    while w.session.document.can_undo():                     # every edit taken back: the landed retake goes too
        w.undo_action.trigger()
    assert list_versions(w.session.document.timeline) == [] and w.session.ready_to_review() == []
    assert w.view.timeline() is w.session.document.timeline
    assert file_sha256(cut) == cut_sha and file_sha256(tmp_path / "source.mov") == media_sha

    # no copy of the document was written anywhere: the plan and the run worked on it in memory, and the journal
    # names the editor's own file (and keeps the timeline the run was planned on)
    home = Path(os.environ["LTX_RETAKE_JOURNAL"]).parent
    assert sorted(p.name for p in [*tmp_path.rglob("*.otio"), *home.rglob("*.otio")]) == ["cut.otio", "cut_retaken.otio"]
    with Journal(Path(os.environ["LTX_RETAKE_JOURNAL"])) as journal:
        (record,) = journal.runs()
        assert record.timeline == cut.absolute() and record.output is None and record.state == "finished"
        assert [j.step.value for j in record.jobs] == ["spliced"]             # Save noted it: never landed twice
        assert [c.name for c in journal.planned(record.id).find_clips()] == ["A", "B", "C"]
    listed = subprocess.run([sys.executable, "-m", "ltx_retake", "jobs"], capture_output=True, text=True, timeout=60)
    assert "cut.otio -> (the panel)" in listed.stdout, listed.stdout

    # reopen: the version is there, active, and its file is on disk
    again = window()
    assert again.open(out)
    (found,) = list_versions(again.session.document.timeline)
    assert found.active == "retake_v001"
    version_file = Path(found.clip.media_references()["retake_v001"].target_url)
    assert version_file.is_file() and version_file.parent.name == "cut_retakes"
    assert badge_text(found.clip)


def test_a_shot_retaken_three_times_in_a_row_in_the_panel(qtbot, window, tmp_path):
    """Retake a window, accept, retake it again (it shows v001 now), accept, then click the shot (now in pieces) and
    retake all of it: every input is cut from the source, every version stays on the clip, and they compare."""
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=6.0)
    w = window()
    assert w.open(cut)

    def retake_and_accept(key: str, prompt: str):
        w.form.prompt.setPlainText(prompt)
        qtbot.waitUntil(lambda: w.form.retake.isEnabled() and w._planned is not None
                        and w._planned.request == w.current_request(), timeout=20_000)
        qtbot.mouseClick(w.form.retake, Qt.LeftButton)
        qtbot.waitUntil(lambda: key in w.session.runs and bool(w.session.runs[key].pending), timeout=120_000)
        (job_id,) = w.session.runs[key].pending
        w.session.accept(key, job_id)
        return w.session.runs[key].jobs[job_id]

    _select_range(qtbot, w, 36, 84)
    first = retake_and_accept("r1", "a stormy sky")
    _select_range(qtbot, w, 36, 84)                          # the same window, showing v001 now
    second = retake_and_accept("r2", "a calmer sky")
    showing, _ = clip_at(w.session.document.timeline, 0, otio.opentime.RationalTime(60, 24))
    assert showing.name == "B_retake_v002"
    w.view.setFocus()
    qtbot.mouseClick(w.view, Qt.LeftButton, pos=w.view.clip_rect(0, showing).center())   # the shot, by a click on a piece
    assert [p.clip.name for p in w.view.selected_clips()] == ["B_retake_v002"]
    third = retake_and_accept("r3", "sunset")

    source = (tmp_path / "source.mov").resolve()
    assert [j.version.name for j in (first, second, third)] == ["B_retake_v001", "B_retake_v002", "B_retake_v003"]
    assert all(Path(j.plan.media.path).resolve() == source for j in (first, second, third)), "cut from a version"
    rate = 24
    assert [(round(j.plan.record_range.start_time.rescaled_to(rate).value), j.plan.window_frames)
            for j in (first, second, third)] == [(36, 48), (36, 48), (24, 96)]        # the third: all of B
    retaken = list_versions(w.session.document.timeline)
    assert {v for r in retaken for v in r.versions} == {"retake_v001", "retake_v002", "retake_v003"}
    assert {r.active for r in retaken} == {"retake_v003"}
    (middle,) = [r for r in retaken if len(r.versions) == 3]     # the first window's piece holds all three
    w.preview.clear()
    w.compare(middle.clip, "retake_v002", "retake_v003")
    qtbot.waitUntil(lambda: w.preview.filmstrip_count() > 0, timeout=20_000)
    w.compare(retaken[0].clip, "retake_v001", "retake_v003")       # a piece the first windows did not cover
    qtbot.waitUntil(lambda: w.status.text().startswith("Cannot compare:"), timeout=20_000)
    assert "has no retake_v001" in w.status.text()
    out = tmp_path / "cut_three.otio"
    assert w.save_to(out)
    again = window()
    assert again.open(out)
    assert {v for r in list_versions(again.session.document.timeline) for v in r.versions} == \
        {"retake_v001", "retake_v002", "retake_v003"}


_KILLED_PANEL = """
import os, signal, sys
from pathlib import Path
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from ltx_retake.progress import Step
from ltx_retake.settings import load_settings
from ltx_retake.ui.window import RetakeWindow

app = QApplication([])
w = RetakeWindow(load_settings(), qsettings=QSettings(sys.argv[2], QSettings.IniFormat))
w.show()
assert w.open(Path(sys.argv[1]))
w.form.prompt.setPlainText("rain at night")

def heard(batch):  # the panel dies the moment the worker says the version is made, before it lands or is saved
    if any(event.step == Step.READY for _, event in batch):
        os.kill(os.getpid(), signal.SIGKILL)

w.session.events.connect(heard)
w.session.start(w.form.request(range=(36, 84), track=0))
app.exec()
"""


def test_a_panel_killed_during_a_run_shows_the_finished_version_on_reopen(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=6.0)
    killed = subprocess.run([sys.executable, "-c", _KILLED_PANEL, str(cut), str(tmp_path / "killed.ini")],
                            capture_output=True, text=True, timeout=180)
    assert killed.returncode == -9, killed.stderr
    with Journal(Path(os.environ["LTX_RETAKE_JOURNAL"])) as journal:
        (record,) = journal.runs()
        assert record.state == "interrupted" and [j.step.value for j in record.jobs] == ["ready"]
    version = Path(record.jobs[0].version["path"])
    assert version.is_file() and version.name == "B_retake_v001.mov"

    w = window()
    assert w.open(cut)                       # the finished version lands again, awaiting review; nothing is sent
    qtbot.waitUntil(lambda: bool(w.session.ready_to_review()), timeout=20_000)
    (key, job_id), = w.session.ready_to_review()
    (retaken,) = list_versions(w.session.document.timeline)
    assert retaken.versions == ("retake_v001",) and retaken.active == "original"
    assert w.session.document.modified and w.jobs.step_of(key, job_id) == "done"
    assert w.show_interrupted() == 0, "a run whose versions are back in the timeline is not offered for Resume"
    w.session.accept(key, job_id)
    out = tmp_path / "cut_retaken.otio"
    assert w.save_to(out)
    with Journal(Path(os.environ["LTX_RETAKE_JOURNAL"])) as journal:
        assert [j.step.value for j in journal.run(record.id).jobs] == ["spliced"]
        assert journal.run(record.id).state == "finished"

    again = window()                         # saved: reopening the original offers nothing again
    assert again.open(cut)
    qtbot.wait(300)
    assert not again.session.ready_to_review() and list_versions(again.session.document.timeline) == []
    assert again.open(out)
    (found,) = list_versions(again.session.document.timeline)
    assert found.active == "retake_v001" and Path(found.clip.media_references()["retake_v001"].target_url) == version


def test_save_never_overwrites_the_opened_timeline_unless_asked(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=3.0)
    before = file_sha256(cut)
    answers = Answers(yes=False)
    w = window(answers=answers)
    w.open(cut)
    w.session.document.changed()
    assert not w.save_to(cut)                           # the user said no
    assert answers.asked[-1][0] == "Replace the opened timeline?"
    assert file_sha256(cut) == before
    answers.yes = True
    assert w.save_to(cut)                               # the user chose to
    assert read_timeline(cut).name == "e2e"


def test_a_bad_file_is_a_sentence_not_a_traceback(qtbot, window, tmp_path):
    bad = tmp_path / "broken.otio"
    bad.write_text("{ not json")
    answers = Answers()
    w = window(answers=answers)
    assert not w.open(bad)
    assert answers.warnings and "broken.otio" in answers.warnings[0][1] and "Traceback" not in answers.warnings[0][1]
    assert w.session.document.timeline is None


def test_invalid_requests_are_explained_before_sending(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=24.0)
    w = window()
    w.open(cut)
    _select_range(qtbot, w, 48, 50)                      # two frames: widened to the model's 2 s, and said so
    w.form.prompt.setPlainText("fog")
    qtbot.waitUntil(lambda: "needs at least 2 s" in w.form.window_text.text(), timeout=20_000)
    assert w.form.retake.isEnabled()
    _select_range(qtbot, w, 24, 24 + 21 * 24)            # 21 s: longer than the model takes
    qtbot.waitUntil(lambda: "20" in w.form.problems.text(), timeout=20_000)
    assert not w.form.retake.isEnabled()
    w.form.service.setCurrentIndex(w.form.service.findData("fal"))    # no key in the test environment
    _select_range(qtbot, w, 48, 96)
    qtbot.waitUntil(lambda: "fal key" in w.form.problems.text(), timeout=20_000)
    assert not w.form.retake.isEnabled()
    (tmp_path / "source.mov").rename(tmp_path / "moved.mov")            # media offline
    w.form.service.setCurrentIndex(w.form.service.findData("local"))
    w.form.prompt.setPlainText("fog again")
    qtbot.waitUntil(lambda: "not on this machine" in w.form.problems.text(), timeout=20_000)
    assert not w.form.retake.isEnabled()


def test_closing_with_jobs_in_flight_says_so(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=6.0)
    answers = Answers(yes=False)
    w = window(answers=answers, local_config=LocalServiceConfig(processing_delay=30))
    w.open(cut)
    _select_range(qtbot, w, 36, 84)
    _retake_ready(qtbot, w, "slow fog")
    qtbot.mouseClick(w.form.retake, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.jobs.row_count() == 1, timeout=20_000)
    qtbot.waitUntil(lambda: w.jobs.step_of("r1", "job1").startswith(("queued", "generating")), timeout=60_000)
    assert not w.close()                                 # the user chose to stay
    assert answers.asked[-1][0] == "Jobs still running" and "reopen the panel" in answers.asked[-1][1]
    qtbot.mouseClick(w.jobs.buttons("r1", "job1")["cancel"], Qt.LeftButton)
    qtbot.waitUntil(lambda: w.jobs.step_of("r1", "job1") == "cancelled", timeout=30_000)
    qtbot.waitUntil(lambda: "cancelled" in w.status.text(), timeout=30_000)
    assert w.status.text() == "0 retake(s) ready to review, 1 cancelled.", "a cancel is not a failure"


def test_reopening_shows_an_interrupted_run_and_resumes_it(qtbot, window, tmp_path, monkeypatch):
    """A CLI run killed mid-generation (kill -9 from the journal's failpoint) shows in the panel; Resume brings it in."""
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=6.0)
    key = "panel-test-key-77"
    with LocalService(LocalServiceConfig(require_key=key, processing_delay=1.0)) as service:
        env = dict(os.environ, FAL_KEY=key, LTX_RETAKE_FAL_QUEUE_URL=service.base_url, LTX_RETAKE_FAL_REST_URL=service.base_url,
                   LTX_RETAKE_FAILPOINT="generating")
        killed = subprocess.run([sys.executable, "-m", "ltx_retake", "retake", str(cut), "--range", "01:00:02:00",
                                 "01:00:03:00", "--prompt", "rain", "--provider", "fal", "-o", str(tmp_path / "out.otio"),
                                 "--yes"], env=env, capture_output=True, text=True, timeout=120)
        assert killed.returncode == -9, killed.stderr
        for name in ("FAL_KEY", "LTX_RETAKE_FAL_QUEUE_URL", "LTX_RETAKE_FAL_REST_URL"):
            monkeypatch.setenv(name, env[name])
        w = window(settings=load_settings())
        w.open(cut)
        assert w.show_interrupted() == 1
        (run_id,) = [r.id for r in w.session.interrupted()]
        assert w.jobs.step_of(run_id, "job1").startswith("interrupted at generating")
        qtbot.mouseClick(w.jobs.resume_button(run_id), Qt.LeftButton)
        qtbot.waitUntil(lambda: any(s.outcome for s in w.session.runs.values()), timeout=120_000)
        (state,) = w.session.runs.values()
        assert [j.step.value for j in state.outcome.jobs] == ["spliced"]
        assert len(service.requests_to("submit")) == 1, "the resumed request was sent again"
        qtbot.waitUntil(lambda: bool(list_versions(w.session.document.timeline)), timeout=10_000)
        (retaken,) = list_versions(w.session.document.timeline)
        assert retaken.versions == ("retake_v001",)


def test_pyside6_none_refcount_regression():
    """PySide6 6.12.0 on CPython 3.11 corrupts None's refcount on every call returning nothing and aborts after a few
    hundred thousand (../shared/reference/otio-and-qt-notes.md). 200,000 such calls must not abort the process."""
    code = ("import os; os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')\n"
            "from PySide6.QtWidgets import QApplication, QLabel\n"
            "app = QApplication([]); label = QLabel()\n"
            "for i in range(200_000):\n    label.setText('x'); label.setVisible(False)\n"
            "import PySide6; print(PySide6.__version__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert done.returncode == 0, f"PySide6 aborted ({done.returncode}): {done.stderr[-500:]}"
    version = done.stdout.strip()
    if sys.version_info < (3, 12):
        assert version != "6.12.0", "pyproject must exclude PySide6 6.12.0 on Python < 3.12"


def test_offline_media_is_drawn_offline_named_in_the_plan_and_relinked_from_the_file_menu(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4.0)
    moved = tmp_path / "card"
    moved.mkdir()
    (tmp_path / "source.mov").rename(moved / "source.mov")
    tl = read_timeline(cut)
    for c in tl.find_clips():  # as an editor's Windows machine wrote it
        c.media_reference.target_url = "file://localhost/E%3a/Shoot/Day1/source.mov"
    windows = write_timeline(tl, tmp_path / "from_windows.otio")
    answers = Answers()
    w = window(answers=answers)
    assert w.open(windows)
    assert w.view.offline_count() == 3 and "3 clip(s) are offline" in w.status.text()
    assert _monitor_index(qtbot, w, 30) is None and w.monitor.card().startswith("Media offline\nB:")
    _select_range(qtbot, w, 30, 80)
    w.form.prompt.setFocus()
    qtbot.keyClicks(w.form.prompt, "fog")
    qtbot.waitUntil(lambda: "E:/Shoot/Day1/source.mov is not on this machine" in w.form.problems.text(), timeout=20_000)
    assert w.form.problems.text().startswith("from_windows.otio: B on V1") and not w.form.retake.isEnabled()

    answers.relink_answer = [("map", f"E:/Shoot/Day1={moved}")]
    w.relink()
    assert w.view.offline_count() == 0 and "3 clip(s) relinked" in w.status.text()
    assert _monitor_index(qtbot, w, 30) == 30
    w.undo_action.trigger()                                   # a relink is undone like any edit
    assert w.view.offline_count() == 3 and w.monitor.card().startswith("Media offline")
    assert not w.session.document.modified, "a relink changes no saved file"
    w.redo_action.trigger()
    assert w.view.offline_count() == 0
    qtbot.waitUntil(lambda: w.form.retake.isEnabled(), timeout=20_000)
    assert answers.asked[-1][0] == "Relink Media" and "E:/Shoot/Day1/source.mov" in answers.asked[-1][1]


def test_an_edl_that_does_not_say_its_rate_opens_at_the_rate_the_editor_picks(qtbot, window, tmp_path):
    edl = tmp_path / "cut.edl"
    edl.write_text("TITLE: cut\nFCM: NON-DROP FRAME\n\n001  A001 V  C  10:00:00:00 10:00:04:00 01:00:00:00 01:00:04:00\n"
                   "* FROM CLIP NAME: shot010\n")
    answers = Answers()
    w = window(answers=answers)
    assert not w.open(edl) and "needs its frame rate" in w.status.text()
    assert answers.asked[-1][0] == "Frame rate" and "--rate" in answers.asked[-1][1]
    answers.rate_answer = Fraction(25)
    assert w.open(edl)
    tl = w.session.document.timeline
    assert tl.global_start_time.rate == 25 and tl.duration().value == 100


def test_the_context_control_changes_what_is_sent_and_the_plan_follows(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=8.0)
    w = window()
    assert w.open(cut)
    _select_range(qtbot, w, 72, 132)                      # 2.5 s inside B
    _retake_ready(qtbot, w, "fog")
    assert "context 0.92 s + 0.96 s: input 4.38 s" in w.form.window_text.text()   # 60 + 48 -> 105 frames (8k+1)
    w.form.context.setValue(2.0)
    qtbot.waitUntil(lambda: "input 6.38 s" in w.form.window_text.text(), timeout=20_000)   # 60 + 96 -> 153 frames
    w.form.context_max.setChecked(True)
    qtbot.waitUntil(lambda: "input 7.71 s" in w.form.window_text.text(), timeout=20_000)   # all 8 s of media: 185 frames
    assert not w.form.context.isEnabled()


def test_the_plan_highlights_the_linked_sound_and_draws_handles_in_the_clips_own_lane(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=6.0)
    tl = read_timeline(cut)
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for clip in tl.tracks[0]:                                  # the same media in sync: the picture's linked sound
        a1.append(clip.deepcopy())
    tl.tracks.append(a1)
    w = window()
    assert w.open(write_timeline(tl, tmp_path / "linked.otio"))
    w.view.zoom_fit()
    before = w.view.grab().toImage()
    _select_range(qtbot, w, 36, 84)
    _retake_ready(qtbot, w, "rain")                            # "Picture and sound"
    qtbot.waitUntil(lambda: len(w.view.overlays()) == 2, timeout=20_000)
    picture, sound = w.view.overlays()
    assert (picture.track_index, picture.linked, sound.track_index, sound.linked) == (0, False, 1, True)
    assert picture.window == sound.window == (36, 84) and picture.item == sound.item == (24, 120)
    assert picture.handles[0] < 24, "the context reaches past the clip's cut, into the media before it"
    after = w.view.grab().toImage()
    for ti in (0, 1):                                          # the neighbours under the handles look as they did
        for frame in (picture.handles[0] + 1, 22):
            rect = w.view.track_rect(ti)
            at = QPoint(w.view.x_of(frame), rect.center().y())
            assert after.pixel(at) == before.pixel(at), f"drawn over the neighbour at frame {frame} of track {ti}"
    w.form.mode.setCurrentIndex(w.form.mode.findText("Picture only"))
    qtbot.waitUntil(lambda: len(w.view.overlays()) == 1, timeout=20_000)
    assert w.view.overlays()[0].track_index == 0


def test_j_k_l_play_the_timeline_with_its_sound_and_the_monitor_follows(qtbot, window, tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=6.0)
    sound = KeptSound()
    w = window(sound=sound)
    assert w.open(cut)
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key_L)
    qtbot.waitUntil(lambda: w.view.playhead() >= 24, timeout=10_000)
    qtbot.keyClick(w.view, Qt.Key_K)
    stopped = w.view.playhead()
    qtbot.wait(200)
    assert w.view.playhead() == stopped and w.transport.speed == 0
    assert _monitor_index(qtbot, w, stopped) == stopped
    qtbot.keyClick(w.view, Qt.Key_Left)                        # a frame back: the monitor follows
    qtbot.waitUntil(lambda: not w.monitor.pending(), timeout=10_000)
    assert w.view.playhead() == stopped - 1
    # the sound played along: the timeline's sound from frame 0 (no audio tracks: its clips' own), marks every 12 frames
    qtbot.waitUntil(lambda: bool(sound.played), timeout=10_000)
    pcm, rate = sound.played[0]
    skipped = 144 - len(pcm) / 2000                            # the frames played before the sound was ready (kept in sync)
    assert rate == 48000 and skipped == int(skipped) and 0 <= skipped < 24
    wav = write_marks_wav(tmp_path / "heard.wav", pcm.astype(np.float32) / 32767, rate)
    heard = [round(m.time * 24 + skipped) for m in audio_marks(wav)]
    assert heard == [f for f in range(0, 144, 12) if f >= skipped]


def test_without_the_libraries_qt_needs_the_panel_names_the_packages_and_exits(tmp_path):
    lacking = display_problem({"DISPLAY": ":0"}, loads=lambda name: "xcb-cursor" not in name and "EGL" not in name,
                              platform="linux")
    assert "sudo apt-get install libegl1 libxcb-cursor0 " in lacking
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, loads=lambda name: "xcb" not in name, platform="linux") == ""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    done = subprocess.run([sys.executable, "-m", "ltx_retake", "panel"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "cannot open a window" in done.stderr, (done.returncode, done.stderr[-300:])
