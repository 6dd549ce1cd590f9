"""The panel on a running DaVinci Resolve: its timeline and pick read in, accepted versions put back, closing with it.

Every call to Resolve is made on one background thread, in turn (a call can be slow: in the Scripts-menu route
it crosses a socket, and Resolve's scripting is not made for callers at once); the window only hears back.

Where things go: the OTIO snapshot of Resolve's timeline is written under `~/LTX Retakes/<timeline>/snapshots/`
(`resolve_cli.retakes_root()`); versions go to the output_dir setting when it is set, else to
`~/LTX Retakes/<timeline>/media/` (as `ltx-retake resolve retake` does). The snapshot is the panel's document,
not the user's file: the timeline that matters is Resolve's, and an accepted version goes there (a take on the
clip when it covers the whole clip, else a clip on a free track above, with a provenance marker).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import opentimelineio as otio
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMessageBox

from ..compose import offline_wiring
from ..errors import RetakeError, SelectionError, redact
from ..live import LiveRead, landings_for, live_folder, picked_clip, write_snapshot
from ..metadata import NS
from ..progress import Step
from ..resolve_cli import delivery_for, retakes_root
from ..settings import Settings
from ..timing import exact_rate, format_timecode, parse_timecode, rate_text

__all__ = ["ResolveLink", "ALIVE_MS", "CLOSE_DELAY_MS"]

ALIVE_MS = 2000          # how often the panel asks whether Resolve is still there
CLOSE_DELAY_MS = 1500    # how long the "Resolve has closed" sentence shows before the window closes


class _Calls:
    """One daemon thread making the Resolve calls in turn; a call that hangs never keeps the panel from exiting."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._loop, name="ltx-retake-resolve", daemon=True).start()

    def submit(self, work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        self._queue.put((work, done))

    def stop(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        for work, done in iter(self._queue.get, None):
            try:
                result, error = work(), None
            except Exception as exc:  # noqa: BLE001 - handed to the window, which says it as a sentence
                result, error = None, exc
            try:
                done(result, error)
            except RuntimeError:  # the window (and its signals) went away meanwhile
                pass


def _sentence(error: BaseException, what: str, again: str) -> str:
    """A failed Resolve call as a sentence: the core's own message, or what failed and what to do."""
    if isinstance(error, RetakeError):
        return f"{redact(str(error))} {again}"
    return (f"{what} failed ({type(error).__name__}: {redact(str(error))}); check Resolve still shows the project, "
            f"then {again[0].lower()}{again[1:]}")


_DELIVERY_TEXT = {"auto": "H.264/AAC (in .mov for .mov sources)", "h264": "H.264/AAC", "prores": "ProRes .mov",
                  "dnxhr": "DNxHR .mov"}


def _mark(line: str) -> str:
    """A feature line for the one-line summary: "yes  x" as "✓ x", "no  x (needs n)" as "✗ x (needs n)"."""
    head, _, rest = line.partition(" ")
    if head in ("yes", "no"):
        return ("✓ " if head == "yes" else "✗ ") + rest.strip()
    return line


def _read_of(timeline: otio.schema.Timeline, fallback: LiveRead | None) -> LiveRead | None:
    """A run's snapshot as the live read it was made from (its Resolve timeline id, rate and start are in its metadata)."""
    meta = (timeline.metadata.get(NS) or {}).get("resolve")
    if not meta:
        return dataclasses.replace(fallback, timeline=timeline) if fallback is not None else None
    rate = exact_rate(Fraction(str(meta["rate"])))
    return LiveRead(timeline, str(timeline.name), str(meta["timeline"]), rate, bool(meta.get("drop_frame")),
                    int(meta["start_frame"]))


class ResolveLink(QObject):
    """Attached to a RetakeWindow: the Resolve menu, the info line above the timeline, reads, put-backs, the alive check."""

    loaded = Signal(object)            # the LiveRead now shown, or None when reading failed
    landed = Signal(str, str, list)    # run key, job id, one sentence per version put back (or why not)
    gone = Signal()                    # Resolve stopped answering; the window closes
    _back = Signal(object)             # a callable to run on the GUI thread (from the Resolve thread)

    def __init__(self, window, bridge, *, root: Path | None = None, alive_ms: int = ALIVE_MS):
        super().__init__(window)
        self.window, self.bridge = window, bridge
        self.root = Path(root) if root is not None else retakes_root()
        self.read: LiveRead | None = None
        self.snapshot: Path | None = None
        self.closing = False
        self.accepted: list[tuple[str, str]] = []     # (run key, job id) of every version accepted in this panel
        self._reading = self._checking = False
        self._calls = _Calls()
        self._back.connect(self._run_back, Qt.QueuedConnection)

        self.info = QLabel("")
        self.info.setObjectName("resolve_info")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.RichText)
        self.info.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.info.setStyleSheet("QLabel { padding: 4px 6px; background: #23262b; color: #d8dadf; border-radius: 3px; }")
        window.centralWidget().layout().insertWidget(0, self.info)
        self._menu()
        window.session.delivery = self.delivery()
        self._show_info(None, reading=True)

        self.timer = QTimer(self)
        self.timer.setInterval(alive_ms)
        self.timer.timeout.connect(self.check_alive)
        self.timer.start()

    # ---- the menu and the info line -------------------------------------------------------------------------------

    def _menu(self) -> None:
        w = self.window
        menu = w.menuBar().addMenu("&Resolve")
        self.reload_action = QAction("&Reload from Resolve", w)
        self.reload_action.setShortcut(QKeySequence("Ctrl+R"))
        self.reload_action.triggered.connect(self.reload)
        menu.addAction(self.reload_action)
        self.again_action = QAction("&Put Accepted Versions Back Again", w)
        self.again_action.setToolTip("Versions already in Resolve are left as they are; missing ones are put back.")
        self.again_action.triggered.connect(self.put_back_again)
        menu.addAction(self.again_action)
        menu.addSeparator()
        self.finalize_action = QAction("&Finalise Takes", w)
        self.finalize_action.setCheckable(True)
        self.finalize_action.setToolTip("A whole-clip retake becomes the clip's media (the take selector goes away).")
        self.finalize_action.toggled.connect(lambda _on: self._show_info(self.read))
        menu.addAction(self.finalize_action)
        menu.addSeparator()
        about = QAction("&About This Resolve…", w)
        about.triggered.connect(self.about)
        menu.addAction(about)
        w.form.show_resolve_placement()     # where a version lands in Resolve follows from what it covers
        w.open_action.setEnabled(False)     # the panel works on Resolve's timeline; Reload reads it again
        w.open_action.setToolTip("The panel is on Resolve's timeline; use Resolve > Reload from Resolve.")

    @property
    def finalize(self) -> bool:
        return self.finalize_action.isChecked()

    def delivery(self) -> str:
        return delivery_for(None, self.window.settings, self.bridge.features.decodes_h264)

    def use_settings(self, settings: Settings) -> None:
        """Settings changed: the delivery follows what this Resolve can decode again."""
        self.window.session.delivery = delivery_for(None, settings, self.bridge.features.decodes_h264)
        self._show_info(self.read)

    def feature_lines(self) -> list[str]:
        return list(self.bridge.features.lines())

    def _show_info(self, read: LiveRead | None, *, reading: bool = False, problem: str = "") -> None:
        lines = self.feature_lines()
        esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # noqa: E731
        if read is not None:
            head = (f"<b>{esc(lines[0])}</b> &nbsp;·&nbsp; timeline “{esc(read.name)}”, {rate_text(read.rate)}"
                    f"{' DF' if read.drop_frame else ''} fps, starts "
                    f"{format_timecode(read.start_frame, read.rate, read.drop_frame)} &nbsp;·&nbsp; picked in Resolve: "
                    f"{esc(read.how or 'nothing')}")
        else:
            head = f"<b>{esc(lines[0])}</b> &nbsp;·&nbsp; " + ("reading the timeline…" if reading else "no timeline read")
        rows = [head]
        if problem:
            rows.append(f"<span style='color:#ff8080'>{esc(problem)}</span>")
        for note in (read.notes if read is not None else []):
            rows.append(f"<span style='color:#f0c060'>note: {esc(note)}</span>")
        supports = [_mark(line) for line in lines[1:]]
        delivery = self.window.session.delivery
        if delivery != "dnxhr" or self.bridge.features.decodes_h264:   # (else the last line says it already)
            supports.append(f"versions are delivered as {_DELIVERY_TEXT.get(delivery, delivery)}")
        supports.append("an accepted version goes back to Resolve" + (" (whole-clip takes finalised)" if self.finalize else ""))
        rows.append(f"<span style='color:#9aa0a8'>{' &nbsp;·&nbsp; '.join(esc(s) for s in supports)}</span>")
        self.info.setText("<br>".join(rows))
        self.info.setToolTip("\n".join(lines))

    def info_text(self) -> str:
        """The info line as plain text (what an editor reads above the timeline)."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.info.text())
        return doc.toPlainText()

    def about(self) -> None:
        text = "\n".join(self.feature_lines())
        if self.read is not None:
            text += f"\n\nTimeline: {self.read.name}\nPicked: {self.read.how}" + "".join(f"\nNote: {n}" for n in self.read.notes)
        QMessageBox.information(self.window, "About this Resolve", text)

    # ---- reading Resolve's timeline ---------------------------------------------------------------------------------

    def _run_back(self, call) -> None:
        call()

    def _call(self, work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        def back(result: Any, error: BaseException | None) -> None:
            self._back.emit(lambda: done(result, error))
        self._calls.submit(work, back)

    def reload(self) -> None:
        """Read Resolve's timeline and pick again (off the GUI thread) and open the new snapshot."""
        if self._reading or self.closing:
            return
        self._reading = True
        self.reload_action.setEnabled(False)
        self.window.say("Reading the timeline from Resolve…")
        wiring = offline_wiring(self.window.settings)
        root = self.root

        def work():
            read = self.bridge.read()
            folder = live_folder(root, read)
            return read, folder, write_snapshot(read, folder, wiring)

        self._call(work, self._loaded)

    def _loaded(self, result, error: BaseException | None) -> None:
        self._reading = False
        self.reload_action.setEnabled(True)
        if self.closing:
            return
        if error is not None:
            sentence = _sentence(error, "Reading Resolve's timeline", "Then choose Resolve > Reload from Resolve.")
            self._show_info(self.read, problem=sentence)
            self.window.say(sentence)
            self.loaded.emit(None)
            return
        read, folder, snapshot = result
        if not self.window.open(snapshot, remember=False):
            self.loaded.emit(None)
            return
        self.read, self.snapshot = read, snapshot
        self.window.session.media_folder = Path(folder) / "media"
        self.preselect(read)
        self._show_info(read)
        self.window.refresh_title()
        if read.picks or read.range:
            self.window.say(f"Read “{read.name}” from Resolve; {read.how} is selected here. Write a prompt and Retake; "
                            "a version you accept goes back to Resolve.")
        else:
            self.window.say(f"Read “{read.name}” from Resolve. " + " ".join(read.notes[-1:]) + " Or pick here.")
        self.loaded.emit(read)

    def preselect(self, read: LiveRead) -> None:
        """Resolve's pick as the view's selection: in/out marks as the range on their track, else the picked clips."""
        view = self.window.view
        timeline = self.window.session.document.timeline
        if read.range is not None:
            ti, a, b = read.range
            start = parse_timecode(a, read.rate, read.drop_frame) - read.start_frame
            end = parse_timecode(b, read.rate, read.drop_frame) - read.start_frame
            view.set_target_track(ti)
            view.set_range(start, end)
            view.set_playhead(start)
            return
        picks = []
        for ti, clip in read.picks:
            try:
                picks.append((ti, picked_clip(read, clip, timeline)))
            except SelectionError:        # not in the document (never so for the snapshot read): left unpicked
                continue
        view.set_picks(picks)
        if picks:
            found = next((p for p in view.selected_clips()), None)
            if found is not None:
                view.set_playhead(round(found.record_range.start_time.rescaled_to(float(read.rate)).value))

    # ---- putting versions back ----------------------------------------------------------------------------------------

    def put_back(self, key: str, job_id: str) -> None:
        """An accepted version goes to Resolve (off the GUI thread); the sentences come back to its row and the status."""
        session = self.window.session
        state = session.runs.get(key)
        job = state.jobs.get(job_id) if state is not None else None
        if job is None or job.step != Step.SPLICED or self.closing:
            return
        if (key, job_id) not in self.accepted:
            self.accepted.append((key, job_id))
        snapshot = Path(state.order.timeline) if state.order is not None else None
        fallback, finalize = self.read, self.finalize
        store = offline_wiring(self.window.settings).store

        def work() -> list[str]:
            timeline = store.read(snapshot) if snapshot is not None and snapshot.exists() else None
            read = _read_of(timeline, fallback) if timeline is not None else fallback
            landings = landings_for(read, [job]) if read is not None else []
            if not landings:
                return [f"{job.version.name} was not made from a clip read from Resolve, so it stays in the panel's "
                        f"versions only (its file is {job.version.path})."]
            return list(self.bridge.put_back(landings, finalize=finalize))

        self.window.jobs.set_note(key, job_id, "accepted; putting it back in Resolve…")
        self._call(work, lambda lines, error: self._landed(key, job_id, job, lines, error))

    def _landed(self, key: str, job_id: str, job, lines, error: BaseException | None) -> None:
        if error is not None:
            lines = [_sentence(error, f"Putting {job.version.name} back in Resolve",
                               f"Resolve > Put Accepted Versions Back Again retries (the file is kept at {job.version.path}).")]
        text = " ".join(lines)
        self.window.jobs.set_note(key, job_id, f"Resolve: {text}")
        self.window.say(f"In Resolve: {text}")
        self.landed.emit(key, job_id, list(lines))

    def put_back_again(self) -> None:
        """Every accepted version once more (Resolve leaves the ones it already shows as they are)."""
        if not self.accepted:
            self.window.say("No version has been accepted in this panel yet.")
            return
        for key, job_id in list(self.accepted):
            self.put_back(key, job_id)

    # ---- Resolve going away -------------------------------------------------------------------------------------------

    def check_alive(self) -> None:
        """Ask (off the GUI thread) whether Resolve still answers; when it does not, the panel closes."""
        if self._checking or self.closing:
            return
        self._checking = True
        self._call(self.bridge.alive, self._alive_answer)

    def _alive_answer(self, alive, error: BaseException | None) -> None:
        self._checking = False
        if error is None and alive:
            return
        self.resolve_gone()

    def resolve_gone(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.timer.stop()
        self._calls.stop()
        where = self.window.session.media_dir() if self.read is not None else self.root
        sentence = (f"DaVinci Resolve has closed, so the panel closes too. Versions made so far are in {where} and in the "
                    "journal; start the panel from Resolve again to carry on.")
        self._show_info(self.read, problem=sentence)
        self.window.say(sentence)
        self.window.setWindowTitle("Resolve has closed — LTX Retake")
        self.gone.emit()
        QTimer.singleShot(CLOSE_DELAY_MS, self.window.close)

    def may_close(self) -> bool:
        """Closing by hand: versions not yet reviewed have not gone to Resolve; ask before leaving them."""
        if self.closing:
            return True
        waiting = sum(len(s.pending) for s in self.window.session.runs.values())
        if not waiting:
            return True
        return self.window.dialogs.yes_no(
            "Retakes await review",
            f"{waiting} retake(s) have not been reviewed, so they have not gone to Resolve. Their files stay in "
            f"{self.window.session.media_dir()}. Close anyway?")

    def stop(self) -> None:
        self.timer.stop()
        self._calls.stop()
