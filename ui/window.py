"""The retake panel's main window: timeline, retake form, jobs, preview; open, save, settings, versions; Resolve mode."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QInputDialog, QLabel, QMainWindow, QMenu, QMessageBox, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from ..compose import offline_wiring, warm_up
from ..errors import RateUndecidedError, RetakeError, SelectionError, UnsupportedEditError, redact
from ..plan import media_path_of
from ..paths import same_file
from ..ports import RetakeMode
from ..progress import Step
from ..relink import Relinker
from ..selection import item_path, record_timecode, timeline_rate
from ..settings import Settings, load_settings
from ..splice import linked_sound
from ..versions import ORIGINAL, list_versions
from .jobs_view import JobsView
from .monitor import FrameSource, Monitor, Transport
from .preview import PreviewPane, Take
from .retake_form import RetakeForm
from .session import Planned, Session
from .settings_dialog import SettingsDialog
from .sound import SOUND_RATE, mix, sound_output
from .timeline_model import Overlay, Picture, inclusive_span, short_version
from .timeline_view import TimelineView

__all__ = ["RetakeWindow", "Dialogs", "timeline_filter"]

PLAN_DELAY_MS = 250
SOUND_CHUNK_S = 20          # timeline sound is decoded this far ahead when J/K/L plays forward at normal speed
_NO_SOUND = object()        # `sound=` left out: the machine's own output (or none, said where Play would be)


class Dialogs:
    """The questions the window asks (modal boxes); tests hand in their own answers through this seam."""

    def __init__(self, parent: QWidget | None = None):
        self.parent = parent

    def yes_no(self, title: str, text: str) -> bool:
        return QMessageBox.question(self.parent, title, text) == QMessageBox.Yes

    def save_discard_cancel(self, title: str, text: str) -> str:
        answer = QMessageBox.question(self.parent, title, text, QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel,
                                      QMessageBox.Save)
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, text)

    def choose_rate(self, name: str, fits: list, why: str):
        """The frame rate of a timeline that does not say it (an EDL), from the rates its timecodes allow; None: cancel."""
        from ..timing import rate_text

        labels = [rate_text(r) for r in fits]
        if not labels:
            return None
        choice, ok = QInputDialog.getItem(self.parent, "Frame rate", f"{why}\n\nWhich rate was {name} cut at?", labels, 0,
                                          False)
        return fits[labels.index(choice)] if ok and choice in labels else None

    def relink(self, missing: list[str], start: str) -> tuple[str, str] | None:
        """How to find missing media: ("folder", a folder to search by name) or ("map", "FROM=TO"); None to cancel."""
        box = QMessageBox(self.parent)
        box.setWindowTitle("Relink Media")
        shown = "\n".join(missing[:8]) + (f"\n... and {len(missing) - 8} more" if len(missing) > 8 else "")
        box.setText(f"{len(missing)} clip(s) have media that is not on this machine." if missing else
                    "Every clip's media is found. Add a folder or a path map anyway?")
        box.setDetailedText(shown or "")
        folder = box.addButton("Search a Folder…", QMessageBox.AcceptRole)
        mapping = box.addButton("Map a Path…", QMessageBox.ActionRole)
        box.addButton(QMessageBox.Cancel)
        box.exec()
        if box.clickedButton() is folder:
            chosen = QFileDialog.getExistingDirectory(self.parent, "The folder that holds the media", start)
            return ("folder", chosen) if chosen else None
        if box.clickedButton() is mapping:
            text, ok = QInputDialog.getText(self.parent, "Map a path", "The folder as the timeline names it, '=', and "
                                            "where it is here (C:/Users/edit/Media=/mnt/media):")
            return ("map", text) if ok and text.strip() else None
        return None


def timeline_filter() -> str:
    """The Open dialog's filter: every suffix an installed OTIO adapter reads."""
    import opentimelineio as otio

    suffixes: set[str] = set()
    for adapter in otio.plugins.ActiveManifest().adapters:
        suffixes.update(s.lower() for s in adapter.suffixes)
    pattern = " ".join(f"*.{s}" for s in sorted(suffixes))
    return f"Timelines ({pattern});;All files (*)"


class RetakeWindow(QMainWindow):
    """An editor's whole round trip: open, select, retake, review, accept, save."""

    takesReady = Signal(object, object, bool, str, str)   # before, after, decide, run key, job id (from a thread)
    soundReady = Signal(int, object)                       # the first frame of a decoded stretch of timeline sound, PCM
    sheetWritten = Signal(str)                             # the sentence saying where a contact sheet went (or why not)

    def __init__(self, settings: Settings | None = None, *, qsettings: QSettings | None = None, local_config=None,
                 dialogs: Dialogs | None = None, sound=_NO_SOUND):
        super().__init__()
        self.dialogs = dialogs or Dialogs(self)
        warm_up()
        self.settings = settings or load_settings()
        self.qsettings = qsettings or QSettings("ltx-retake", "panel")
        self.session = Session(self.settings, local_config=local_config, parent=self)
        self.media = offline_wiring(self.settings).media
        self.frames = self.media.frame_reader()
        if sound is _NO_SOUND:
            self.sound, no_sound = sound_output()
        else:                                 # a test's output, or None for none
            self.sound, no_sound = sound, "" if sound is not None else "Sound is off in this panel."
        self.view = TimelineView()
        self.form = RetakeForm(self.settings, self.qsettings)
        self.form.span_text = lambda rng: inclusive_span(self.session.document.timeline, rng)
        self.jobs = JobsView()
        self.jobs.setMinimumWidth(330)          # the clip, its step and what it offers (Review, Retry, Cancel) always show
        self.monitor = Monitor(self.frames.read, self.media.probe)
        self.monitor.set_sound_note(no_sound)
        self.transport = Transport(self)
        self.preview = PreviewPane(lambda path, indices: self.media.read_frames(path, indices), sound=self.sound,
                                   read_sound=self.media.read_sound, no_sound=no_sound)
        self.viewer = QTabWidget()
        self.viewer.addTab(self.monitor, "Timeline")
        self.viewer.addTab(self.preview, "Review")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self._planned: Planned | None = None
        self.resolve = None                 # the ResolveLink, in Resolve mode (attach_resolve)
        self._reviewing: tuple[str, str] | None = None
        self._relinker: Relinker | None = None
        self._sound_until: int | None = None    # the frame the decoded timeline sound reaches (None: none asked)
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DELAY_MS)

        # as an NLE lays it out: the form, the jobs and the viewer above, the timeline across the bottom
        upper = QSplitter(Qt.Horizontal)
        upper.addWidget(self.form)
        upper.addWidget(self.jobs)
        upper.addWidget(self.viewer)
        upper.setSizes([340, 470, 590])
        main = QSplitter(Qt.Vertical)
        main.addWidget(upper)
        main.addWidget(self.view)
        main.setSizes([480, 320])
        self.splitters = {"top": upper, "main": main}
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(main, 1)
        layout.addWidget(self.status)
        self.setCentralWidget(central)
        self._menus()
        self._wire()
        self._restore()
        self._title()
        self._history_actions()

    # ---- building ------------------------------------------------------------------------------------------------

    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self.open_action = self._action(file, "&Open…", QKeySequence.Open, self.ask_open)
        self.save_action = self._action(file, "&Save", QKeySequence.Save, self.save)
        self.save_as_action = self._action(file, "Save &As…", QKeySequence.SaveAs, self.save_as)
        file.addSeparator()
        self.relink_action = self._action(file, "&Relink Media…", "Ctrl+Shift+L", self.relink)
        self._action(file, "Se&ttings…", QKeySequence.Preferences, self.open_settings)
        file.addSeparator()
        self._action(file, "&Quit", QKeySequence.Quit, self.close)
        edit = self.menuBar().addMenu("&Edit")
        self.undo_action = self._action(edit, "&Undo", "Ctrl+Z", self.undo)
        self.redo_action = self._action(edit, "&Redo", "Ctrl+Shift+Z", self.redo)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        view = self.menuBar().addMenu("&View")
        self._action(view, "Zoom &In", QKeySequence.ZoomIn, self.view.zoom_in)
        self._action(view, "Zoom &Out", QKeySequence.ZoomOut, self.view.zoom_out)
        self._action(view, "&Fit", "Shift+Z", self.view.zoom_fit)

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _wire(self) -> None:
        self.view.selectionChanged.connect(self._replan)
        self.view.selectionChanged.connect(self._show_marks)
        self.view.playheadMoved.connect(self._show_at)
        self.view.scrubbed.connect(self.transport.stop)
        self.view.shuttleRequested.connect(self.shuttle)
        self.monitor.shuttle.connect(self.shuttle)
        self.monitor.step.connect(self.step)
        self.transport.frameChanged.connect(self._transport_moved)
        self.transport.speedChanged.connect(self._speed_changed)
        self.soundReady.connect(self._play_sound)
        self.preview.offerClicked.connect(self.review_newest)
        self.preview.sheetRequested.connect(lambda: self.contact_sheet(*self._reviewing) if self._reviewing else None)
        self.sheetWritten.connect(self.say)
        self.view.clipMenuRequested.connect(self._clip_menu)
        self.form.changed.connect(self._replan)
        self.form.retakeClicked.connect(self.retake)
        self._plan_timer.timeout.connect(self._plan)
        self.session.planned.connect(self._show_plan)
        self.session.runStarted.connect(self._run_started)
        self.session.events.connect(self.jobs.apply_events)
        self.session.runFinished.connect(self._run_finished)
        self.session.documentChanged.connect(self._document_changed)
        self.session.message.connect(self.say)
        self.jobs.cancelRequested.connect(self.session.cancel)
        self.jobs.retryRequested.connect(self._retry)
        self.jobs.reviewRequested.connect(self.review)
        self.jobs.resumeRequested.connect(self._resume)
        self.preview.accepted.connect(lambda: self._decide(True))
        self.preview.discarded.connect(lambda: self._decide(False))
        self.takesReady.connect(self._show_takes)

    def _restore(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        for name, splitter in self.splitters.items():
            state = self.qsettings.value(f"window/2/{name}")   # "2": the layout with the viewer above the timeline
            if state is not None:
                splitter.restoreState(state)

    def _remember(self) -> None:
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        for name, splitter in self.splitters.items():
            self.qsettings.setValue(f"window/2/{name}", splitter.saveState())
        self.qsettings.sync()

    def say(self, text: str) -> None:
        self.status.setText(text)

    def _title(self) -> None:
        doc = self.session.document
        read = self.resolve.read if self.resolve is not None else None
        if read is not None:  # the document is a snapshot of Resolve's timeline, not a file of the user's
            self.setWindowTitle(f"{read.name} (DaVinci Resolve) — LTX Retake")
            return
        name = doc.name if doc.path else "no timeline"
        self.setWindowTitle(f"{name}{' *' if doc.modified else ''} — LTX Retake")

    def refresh_title(self) -> None:
        self._title()

    # ---- Resolve mode ------------------------------------------------------------------------------------------------

    def attach_resolve(self, bridge, *, root: Path | None = None, alive_ms: int | None = None):
        """Work on the running Resolve's timeline: read it and its pick (off the GUI thread), put accepted versions back,
        close when Resolve does. `root` is where snapshots go (default ~/LTX Retakes). Once per window; returns the
        ResolveLink."""
        from .resolve_link import ALIVE_MS, ResolveLink

        if self.resolve is not None:
            raise RuntimeError("This window is already on a Resolve timeline; use Resolve > Reload from Resolve.")
        self.resolve = ResolveLink(self, bridge, root=root, alive_ms=alive_ms or ALIVE_MS)
        self.resolve.reload()
        return self.resolve

    # ---- opening and saving ----------------------------------------------------------------------------------------

    def ask_open(self) -> None:
        if not self._may_discard_changes():
            return
        start = self.qsettings.value("files/last_folder", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Open a timeline", start, timeline_filter())
        if path:
            self.open(Path(path))

    def open(self, path: Path, *, remember: bool = True) -> bool:
        """Open a timeline file (`remember`: the Open dialog starts in its folder next time). An EDL that does not say
        its frame rate is opened at the rate the editor picks from those its timecodes allow."""
        try:
            try:
                self.session.open(path)
            except RateUndecidedError as exc:
                rate = self.dialogs.choose_rate(Path(path).name, list(exc.fits), redact(str(exc)))
                if rate is None:
                    self.say(f"{Path(path).name} was not opened: it needs its frame rate.")
                    return False
                self.session.open(path, rate=rate)
        except RetakeError as exc:
            self._error(f"Could not open {Path(path).name}", redact(str(exc)))
            return False
        except Exception as exc:  # noqa: BLE001 - an adapter's own failure: a sentence, not a traceback
            self._error(f"Could not open {Path(path).name}",
                        f"{type(exc).__name__}: {redact(str(exc))}. The file may be damaged or in a format OTIO cannot read.")
            return False
        if remember:
            self.qsettings.setValue("files/last_folder", str(Path(path).parent))
        self.transport.stop()
        self._relinker = None
        self.view.set_timeline(self.session.document.timeline)
        self.form.show_plan(None)
        offline = self.show_offline()
        self._show_at(self.view.playhead())
        self._history_actions()
        notes = " ".join(self.session.document.source.notes) if self.session.document.source else ""
        self.say(f"Opened {path}. " + (f"{offline} clip(s) are offline: File > Relink Media finds them. " if offline else "")
                 + (f"{notes} " if notes else "") + "Click a clip, or drag on the ruler for a range; I and O set in and out.")
        try:
            self.session.land_waiting()          # what an earlier session finished on this file and never saved
        except RetakeError as exc:               # the journal cannot be read: the timeline is open all the same
            self.say(redact(str(exc)))
        self._title()
        return True

    def show_offline(self) -> int:
        """Mark the clips whose media cannot be found here (hatched, badged); how many there are."""
        offline = self.session.offline()
        self.view.set_offline([clip for _, clip, _ in offline])
        return len(offline)

    def relink(self) -> None:
        """File > Relink Media: a folder to search by name, or a path map; the view and the plan follow."""
        if self.session.document.timeline is None:
            return
        missing = [why for _, _, why in self.session.offline()]
        start = str(self.session.document.path.parent if self.session.document.path else Path.home())
        answer = self.dialogs.relink(missing, start)
        if answer is None:
            return
        kind, value = answer
        try:
            if kind == "folder":
                self.session.add_search_folder(Path(value))
            else:
                self.session.add_path_map(value)
        except RetakeError as exc:
            self._error("Not relinked", redact(str(exc)))
            return
        self._relinker = None
        left = self.show_offline()
        self.say(f"{len(missing) - left} clip(s) relinked; " + (f"{left} still offline." if left else "every clip's media is found."))
        self._show_at(self.view.playhead())
        self._history_actions()
        self._replan()

    def save(self) -> bool:
        doc = self.session.document
        if doc.timeline is None:
            return False
        if doc.saved_to is None:
            return self.save_as()
        return self._write(doc.saved_to, replace_opened=doc.path is not None and doc.saved_to == doc.path)

    def save_as(self) -> bool:
        doc = self.session.document
        if doc.timeline is None:
            return False
        path, _ = QFileDialog.getSaveFileName(self, "Save the timeline as", str(doc.suggested_name()),
                                              "OpenTimelineIO (*.otio);;All timeline formats (*)",
                                              options=QFileDialog.DontConfirmOverwrite)
        if not path:
            return False
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        """Save As to `path`: asks before replacing the opened timeline or another existing file."""
        doc = self.session.document
        replacing_opened = doc.path is not None and path.absolute() == doc.path
        if replacing_opened:
            if not self.dialogs.yes_no("Replace the opened timeline?",
                                       f"{path.name} is the timeline you opened. Replace it with the retaken one? "
                                       "(The original is otherwise never touched.)"):
                return False
        elif path.exists():
            if not self.dialogs.yes_no("Replace the file?", f"{path} exists. Replace it?"):
                return False
        return self._write(path, replace_opened=replacing_opened)

    def _write(self, path: Path, *, replace_opened: bool) -> bool:
        doc = self.session.document
        try:
            lost = doc.losses(path)
            if lost and not self.dialogs.yes_no(
                    "Save in a format that loses something?",
                    f"{path.name} cannot hold everything this timeline has. It would lose:\n- " + "\n- ".join(lost)
                    + "\n\nSave anyway? (.otio keeps everything.)"):
                return False
            written = self.session.save(path, replace_opened=replace_opened, accept_losses=bool(lost))
        except RetakeError as exc:
            self._error("Not saved", redact(str(exc)))
            return False
        self.say(f"Saved {written}.")
        self._title()
        return True

    def _may_discard_changes(self) -> bool:
        if self.resolve is not None:  # a snapshot of Resolve's timeline: what matters is what has not gone back yet
            return self.resolve.may_close()
        doc = self.session.document
        if not doc.modified:
            return True
        answer = self.dialogs.save_discard_cancel("Save changes?", f"{doc.name} has unsaved retakes or version changes. "
                                                  "Save them first?")
        if answer == "save":
            return self.save()
        return answer == "discard"

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.resolve is not None and self.resolve.closing:  # Resolve went away: nothing to ask, nothing to save
            self.resolve.stop()
            self._remember()
            self._stop_media()
            event.accept()
            return
        running = self.jobs.in_flight()
        if running:
            if not self.dialogs.yes_no(
                    "Jobs still running",
                    f"{running} job(s) are still running. The service keeps working on them and the journal keeps their "
                    "request ids: reopen the panel to see where they stand and bring the results in. Close now?"):
                event.ignore()
                return
        if not self._may_discard_changes():
            event.ignore()
            return
        if self.resolve is not None:
            self.resolve.stop()
        self._remember()
        self._stop_media()
        event.accept()

    def _stop_media(self) -> None:
        """Playback and decoding end with the window."""
        self.transport.stop()
        if self.sound is not None:
            self.sound.stop()
        self.monitor.close_decoder()
        self.frames.close()

    def _error(self, title: str, sentence: str) -> None:
        self.say(sentence)
        self.dialogs.warn(title, sentence)

    # ---- planning and sending ----------------------------------------------------------------------------------------

    def current_request(self):
        view = self.view
        rng = view.selected_range()
        if rng is not None:
            return self.form.request(range=rng, track=view.target_track())
        timeline = self.session.document.timeline
        return self.form.request(clips=[item_path(timeline, p.clip) for p in view.selected_clips()])

    def _replan(self) -> None:
        if self.session.document.timeline is None:
            return
        self.form.show_planning()
        self._plan_timer.start()

    def _plan(self) -> None:
        self.session.plan(self.current_request())

    def _show_plan(self, planned: Planned) -> None:
        if planned.revision != self.session.document.revision or planned.request != self.current_request():
            return  # the selection or the timeline moved on; a newer plan is coming
        self._planned = planned
        self.form.show_plan(planned)
        self.view.set_overlays(self.overlays_for(planned))

    def overlays_for(self, planned: Planned) -> list[Overlay]:
        """Every track item the planned jobs will change, with its window and context handles: the clips retaken and,
        when the sound is regenerated too, their linked sound (as the runner will splice it)."""
        timeline = self.session.document.timeline
        index = self.view.index()
        rate = float(timeline_rate(timeline))
        overlays = []
        for job in planned.jobs:
            p = job.plan
            a = round(p.record_range.start_time.rescaled_to(rate).value)
            b = round(p.record_range.end_time_exclusive().rescaled_to(rate).value)
            before = round(p.window_offset / p.scalar) if p.scalar else p.window_offset
            after = round((p.cut.total_frames - p.window_offset - p.window_frames) / p.scalar) if p.scalar else 0
            overlays.append(Overlay(p.track_index, (a, b), (a - before, b + after), "",
                                    index.item_span(p.track_index, a + 0.5)))
            if p.mode != RetakeMode.REPLACE_VIDEO:
                for linked in linked_sound(timeline, p):
                    overlays.append(Overlay(linked.track_index, (a, b), (a - before, b + after), "",
                                            index.item_span(linked.track_index, a + 0.5), linked=True))
        if overlays and planned.landing:
            first = planned.jobs[0].plan if planned.jobs else None
            text = planned.landing[0]
            if first is not None:   # the span as marks read: its last frame, not the exclusive out point
                text = text.replace(first.record_timecode, inclusive_span(timeline, first.record_range))
            overlays[0] = dataclasses.replace(overlays[0], text=text)
        return overlays

    def retake(self) -> None:
        planned = self._planned
        if planned is None or not planned.ok or planned.request != self.current_request():
            self.say("The plan is out of date; wait a moment for the new one.")
            return
        est = planned.estimate
        if est is not None and est.needs_confirmation(self.settings.cost_threshold_usd):
            if not self.dialogs.yes_no(
                    "Send at this cost?",
                    f"This retake is {est.sentence()}, above your threshold of ${self.settings.cost_threshold_usd:.2f}.\n\n"
                    + "\n".join(est.basis) + "\n\nSend it?"):
                self.say("Nothing was sent.")
                return
        self.form.remember_prompt(planned.request.prompt)
        try:
            self.session.start(planned.request)
        except RetakeError as exc:
            self._error("Not sent", redact(str(exc)))
            return
        self.view.set_overlays([])
        self.say("Sent. The jobs list follows each job; the window stays usable.")

    def _run_started(self, key: str, rows: list) -> None:
        for job_id, label, detail in rows:
            self.jobs.add_job(key, job_id, label, detail)

    def _run_finished(self, key: str) -> None:
        state = self.session.runs[key]
        self.jobs.end_run(key)
        self._review_notes()
        if state.error and not state.jobs:
            self.say(state.error)
        elif state.outcome is not None:
            steps = [j.step for j in state.outcome.jobs]
            cancelled = steps.count(Step.CANCELLED)
            failed = len(steps) - cancelled - steps.count(Step.SPLICED)
            ready = len(self.session.ready_to_review())
            self.say(f"{ready} retake(s) ready to review" + (" (the Review tab shows the newest)" if ready else "")
                     + (f", {cancelled} cancelled" if cancelled else "")
                     + (f", {failed} failed (see the jobs list)" if failed else "") + ".")
            if ready and not self.preview.reviewing():
                self.review_newest()

    def _review_notes(self) -> None:
        """The jobs list's notes and the Review tab follow the review state (after a run, a decision, an undo)."""
        for key, state in self.session.runs.items():
            for job_id in state.jobs:
                decision = self.session.decision(key, job_id)
                note = {"pending": "ready to review: Accept makes it the active version"}.get(decision, decision)
                if note or state.jobs[job_id].step == Step.SPLICED:
                    self.jobs.set_note(key, job_id, note)
        ready = self.session.ready_to_review()
        self.viewer.setTabText(1, f"Review ({len(ready)} ready)" if ready else "Review")
        if ready:
            key, job_id = ready[0]
            job = self.session.runs[key].jobs[job_id]
            more = f" ({len(ready) - 1} more after it)" if len(ready) > 1 else ""
            self.preview.set_offer(f"Review {job.version.name}, the newest finished retake{more}")
        else:
            self.preview.set_offer("")

    def review_newest(self) -> None:
        """Open the newest finished retake that awaits Accept or Discard."""
        ready = self.session.ready_to_review()
        if ready:
            self.review(*ready[0])

    def _retry(self, key: str, job_id: str) -> None:
        try:
            self.session.retry(key, job_id)
        except RetakeError as exc:
            self.say(redact(str(exc)))

    def _resume(self, run_id: str) -> None:
        self.session.resume(run_id)
        self.say(f"Resuming run {run_id}: requests are followed by their ids, nothing is paid twice.")

    def _document_changed(self) -> None:
        self.view.refresh(self.session.document.timeline)
        self._title()
        self._history_actions()
        self._review_notes()
        self._show_at(self.view.playhead())

    # ---- undo ------------------------------------------------------------------------------------------------------

    def undo(self) -> None:
        """Edit > Undo (Ctrl+Z): take back the last accept, discard, version switch, relink or landed retake."""
        self._history(self.session.undo, "Undid", "Nothing to undo.")

    def redo(self) -> None:
        """Edit > Redo (Ctrl+Shift+Z)."""
        self._history(self.session.redo, "Redid", "Nothing to redo.")

    def _history(self, step, verb: str, nothing: str) -> None:
        self.transport.stop()
        self._relinker = None                    # an undone relink finds media as before it
        label = step()
        if label is None:
            self.say(nothing)
            return
        if self._reviewing is not None and self.preview.reviewing():
            key, job_id = self._reviewing
            self.review(key, job_id)             # Accept/Discard come back when the undo puts it back in review
        self.show_offline()
        self._show_at(self.view.playhead())
        self._history_actions()
        self._replan()
        resolve = " (in this panel; what was put back in Resolve stays there: use Resolve's own Undo)" \
            if self.resolve is not None and "Accept" in label else ""
        self.say(f"{verb}: {label}{resolve}.")

    def _history_actions(self) -> None:
        doc = self.session.document
        undo, redo = doc.can_undo(), doc.can_redo()
        self.undo_action.setEnabled(undo is not None)
        self.undo_action.setText(f"&Undo {undo}" if undo else "&Undo")
        self.redo_action.setEnabled(redo is not None)
        self.redo_action.setText(f"&Redo {redo}" if redo else "&Redo")

    def show_interrupted(self) -> int:
        """Runs a crash or an earlier close left unfinished: listed with Resume (from the journal)."""
        try:
            runs = self.session.interrupted()
        except RetakeError as exc:
            self.say(redact(str(exc)))
            return 0
        doc = self.session.document
        others = 0
        for record in runs:
            rows = [(j.name, j.plan.label, j.step.value, j.error or "") for j in record.unfinished]
            self.jobs.add_interrupted(record.id, rows, timeline=record.timeline.name)
            others += doc.path is None or not same_file(record.timeline, doc.path)
        if runs:
            self.say(f"{len(runs)} run(s) were interrupted" + (f" ({others} of other timelines: the list names each)"
                                                               if others else "")
                     + "; Resume follows their requests without paying twice.")
        return len(runs)

    # ---- the monitor and playback -----------------------------------------------------------------------------------

    def _locator(self) -> Relinker:
        """Finds clips' media as the plan does (as written, path maps, search folders); made again after a relink."""
        if self._relinker is None:
            doc = self.session.document
            maps, folders = self.session.relink_options()
            self._relinker = Relinker(doc.path.parent if doc.path else None, maps,
                                      [f for f in folders if Path(f).is_dir()])
        return self._relinker

    def _source_of(self, clip, media_time) -> tuple[FrameSource | None, str]:
        """The file and moment to decode for a clip's source time (its active version); or why there is none
        ("" when its media is offline, a sentence when it is not footage)."""
        try:
            found = self._locator().locate(clip)
        except (SelectionError, UnsupportedEditError) as exc:
            text = str(exc)
            if any(w in text for w in ("generator", "image sequence", "web address")):
                return None, redact(text)
            return None, ""
        ref = clip.media_reference
        available = getattr(ref, "available_range", None)
        origin = available.start_time.to_seconds() if available is not None else None
        return FrameSource(found.path, media_time.to_seconds(), origin), ""

    def _show_at(self, frame: int) -> None:
        """The monitor shows what the timeline shows at `frame` (decoded off the GUI thread)."""
        timeline = self.session.document.timeline
        if timeline is None:
            self.monitor.show_nothing("No timeline open: File > Open.")
            return
        picture = self.view.index().picture_at(frame)
        source, problem = None, ""
        if not picture.empty and not picture.offline and picture.media_time is not None:
            source, problem = self._source_of(picture.clip, picture.media_time)
            if source is None and not problem:
                picture = dataclasses.replace(picture, offline=True)
            elif problem:
                picture = dataclasses.replace(picture, problem=problem)
        self.monitor.show_picture(picture, source, self._where(picture))

    def _where(self, picture: Picture) -> str:
        tc = record_timecode(self.session.document.timeline, self.view.index().timecode_time(picture.frame))
        if picture.empty:
            return f"{tc}  (gap)"
        version = "" if picture.version == ORIGINAL else f" · {short_version(picture.version)}"
        track = self.view.index().row(picture.track_index).label.split(" ", 1)[0]
        return f"{tc}  {track} · {picture.clip.name}{version}"

    def _show_marks(self) -> None:
        self.monitor.set_marks(self.view.marks_text())

    def step(self, frames: int) -> None:
        """A frame back or forward (the monitor's buttons; Left/Right on the timeline)."""
        self.transport.stop()
        self.view.set_playhead(self.view.playhead() + frames)

    def shuttle(self, direction: int) -> None:
        """J (-1), K (0), L (+1): play backwards, stop, play forwards; again: faster. At normal speed forwards the
        timeline's sound plays along where there is a sound output."""
        if self.session.document.timeline is None:
            return
        index = self.view.index()
        at = self.view.playhead()
        if direction > 0 and at >= index.max_frame():
            at = 0
            self.view.set_playhead(0)
        self.transport.shuttle(direction, at, index.fps, index.max_frame())

    def _transport_moved(self, frame: int) -> None:
        self.view.set_playhead(frame)
        if self.transport.speed == 1 and self._sound_until is not None and frame >= self._sound_until - self.view.index().fps:
            self._ask_sound(self._sound_until)

    def _speed_changed(self, speed: int) -> None:
        if self.sound is None:
            return
        self.sound.stop()
        self._sound_until = None
        if speed == 1:
            self._ask_sound(self.view.playhead())

    def _ask_sound(self, first: int) -> None:
        """Decode the timeline's sound from frame `first` for SOUND_CHUNK_S, off the GUI thread: the enabled audio
        tracks mixed (a timeline without audio tracks: the sound of the video clips' own media)."""
        index = self.view.index()
        last = min(index.max_frame() + 1, first + round(SOUND_CHUNK_S * index.fps))
        self._sound_until = last
        if last <= first:
            return
        pieces = index.sound_at(first, last) or (index.sound_at(first, last, video=True)
                                                  if not any(not r.video for r in index.rows) else [])
        jobs = []
        for piece in pieces:
            source, _ = self._source_of(piece.clip, piece.media_time)
            if source is not None:
                jobs.append((source, (piece.record[0] - first) / index.fps, (piece.record[1] - piece.record[0]) / index.fps))
        length = round((last - first) / index.fps * SOUND_RATE)
        media = self.media

        def work() -> None:
            parts = []
            for source, at, seconds in jobs:
                try:
                    origin = source.origin_s
                    if origin is None:
                        info = media.probe(source.path)
                        origin = info.start_frame / float(info.frame_rate) if info.start_frame else 0.0
                    pcm = media.read_sound(source.path, source.media_s - origin, seconds)
                except (RetakeError, OSError, ValueError):
                    continue
                parts.append((round(at * SOUND_RATE), pcm))
            self.soundReady.emit(first, mix(length, parts))

        threading.Thread(target=work, name="ltx-retake-sound", daemon=True).start()

    def _play_sound(self, first: int, pcm) -> None:
        if self.sound is None or self.transport.speed != 1:
            return
        skip = max(0, round((self.view.playhead() - first) / self.view.index().fps * SOUND_RATE))
        self.sound.play(pcm[skip:], SOUND_RATE)

    # ---- review and versions -------------------------------------------------------------------------------------------

    def review(self, key: str, job_id: str) -> None:
        state = self.session.runs.get(key)
        job = state.jobs.get(job_id) if state else None
        if job is None:
            return
        self._reviewing = (key, job_id)
        p = job.plan
        rate = float(p.media.frame_rate)
        first = round((p.source_range.start_time - p.version_range.start_time).to_seconds() * rate)
        before = Take("original", Path(p.media.path), p.window_start_frame, p.window_frames, rate)
        after = Take(f"v{job.version.number:03d}", job.version.path, max(0, first), p.window_frames, rate)
        self.preview.show_takes(before, after, decide=job_id in state.pending, sheet=True)
        self.viewer.setCurrentWidget(self.preview)

    def contact_sheet(self, key: str, job_id: str, *, wait: bool = False) -> Path | None:
        """Write the retake's contact sheet beside its version file (off the GUI thread unless `wait`): record
        timecodes, clip, prompt and version, frames on both sides of each edge. Returns where it goes."""
        state = self.session.runs.get(key)
        job = state.jobs.get(job_id) if state else None
        if job is None or job.version is None:
            return None
        dest = job.version.path.with_name(f"{job.version.path.stem}_sheet.png")
        media = self.media

        def work() -> None:
            try:
                media.retake_sheet(job.plan, job.version, dest)
                self.sheetWritten.emit(f"Contact sheet written: {dest}")
            except (RetakeError, OSError) as exc:
                self.sheetWritten.emit(f"No contact sheet: {redact(str(exc))}")

        if wait:
            work()
        else:
            threading.Thread(target=work, name="ltx-retake-sheet", daemon=True).start()
            self.say(f"Writing the contact sheet to {dest}…")
        return dest

    def _decide(self, accept: bool) -> None:
        if self._reviewing is None:
            return
        key, job_id = self._reviewing
        try:
            sentence = self.session.accept(key, job_id) if accept else self.session.discard(key, job_id)
        except RetakeError as exc:
            sentence = redact(str(exc))
        self.preview.clear()
        self._reviewing = None
        self._review_notes()
        self.say(sentence)
        if accept and self.resolve is not None:
            self.resolve.put_back(key, job_id)

    def _clip_menu(self, track_index: int, clip, pos) -> None:
        doc = self.session.document
        entry = next((r for r in list_versions(doc.timeline) if r.clip is clip), None)
        menu = QMenu(self)
        if entry is None:
            menu.addAction("No retakes on this clip yet").setEnabled(False)
            menu.exec(pos)
            return
        at = entry.record_timecode.split("-")[0]
        names = ([ORIGINAL] if entry.placement == "splice" else []) + list(entry.versions)
        for name in names:
            action = menu.addAction(f"Show {name}")
            action.setCheckable(True)
            action.setChecked(name == entry.active)
            action.triggered.connect(lambda _=False, n=name: self._switch(entry.original_name, n, at))
        compare = menu.addMenu(f"Compare {entry.active} with")
        for name in names:
            if name != entry.active:
                compare.addAction(name).triggered.connect(lambda _=False, n=name: self.compare(clip, entry.active, n))
        menu.exec(pos)

    def _switch(self, clip_name: str, version: str, at: str) -> None:
        try:
            self.session.switch(clip_name, version, at)
            self.say(f"{clip_name} now shows {version}.")
        except RetakeError as exc:
            self.say(redact(str(exc)))

    def compare(self, clip, a: str, b: str) -> None:
        """Two versions of one clip side by side (frames read off the GUI thread)."""
        base = self.session.document.path.parent if self.session.document.path else None

        def work() -> None:
            try:
                self.takesReady.emit(self._take(clip, a, base), self._take(clip, b, base), False, "", "")
            except (RetakeError, OSError) as exc:
                self.takesReady.emit(None, redact(str(exc)), False, "", "")

        threading.Thread(target=work, name="ltx-retake-compare", daemon=True).start()

    def _take(self, clip, name: str, base: Path | None) -> Take:
        import opentimelineio as otio

        refs = clip.media_references()
        ref = refs.get(otio.schema.Clip.DEFAULT_MEDIA_KEY if name == ORIGINAL else name)
        if ref is None:
            raise RetakeError(f"{clip.name} here has no {name} (its versions: {', '.join(sorted(refs))}); right-click "
                              "the part of the clip that has it.")
        path = media_path_of(ref, base)
        info = self.media.probe(path)
        rate = float(info.frame_rate)
        src = clip.trimmed_range()
        origin = ref.available_range.start_time if ref.available_range is not None else src.start_time - src.start_time
        first = round((src.start_time - origin).to_seconds() * rate)
        return Take(name, path, max(0, first), max(1, round(src.duration.to_seconds() * rate)), rate)

    def _show_takes(self, before, after, decide: bool, key: str, job_id: str) -> None:
        if before is None:
            self.say(f"Cannot compare: {after}")
            return
        self._reviewing = (key, job_id) if key else None
        self.preview.show_takes(before, after, decide=decide)
        self.viewer.setCurrentWidget(self.preview)

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.settings = dialog.saved_settings()
            self.session.use_settings(self.settings)
            self.form.use_settings(self.settings)
            self.media = offline_wiring(self.settings).media
            self._relinker = None
            if self.resolve is not None:
                self.resolve.use_settings(self.settings)
            self._replan()
