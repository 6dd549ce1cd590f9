"""The panel's jobs list: one row per retake job, fed by batches of the core's JobEvents."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ltx_retake.progress import JobEvent, Step
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "COL_ACTIONS",
    "COL_LABEL",
    "COL_LAST",
    "COL_NOTE",
    "COL_PROGRESS",
    "COL_STEP",
    "COL_TIME",
    "MAX_LINES",
    "RUN_JOB",
    "JobsView",
]

COL_LABEL, COL_STEP, COL_ACTIONS, COL_PROGRESS, COL_TIME, COL_NOTE, COL_LAST = range(7)
HEADERS = ("Clip", "Step", "", "Progress", "Time", "Note", "Last line")
MAX_LINES = 500            # log lines and messages kept per job; older ones are dropped
RUN_JOB = "run"            # the job id the runner uses for run-wide messages: not a row
ERROR_RED = QColor("#c62828")
_KEY_ROLE = Qt.ItemDataRole.UserRole   # a job item's (run_key, job_id)
_SPAN = 1000               # progress bars run 0..1000 so fractions keep three digits

_SHOWN = {
    Step.PLANNED: "planned",
    Step.CUTTING: "cutting",
    Step.UPLOADING: "uploading",
    Step.SUBMITTING: "submitting",
    Step.QUEUED: "queued",
    Step.GENERATING: "generating",
    Step.DOWNLOADING: "downloading",
    Step.CONFORMING: "conforming",
    Step.READY: "splicing",
    Step.SPLICING: "splicing",
    Step.SAVING: "splicing",
    Step.SPLICED: "done",
    Step.FAILED: "failed",
    Step.CANCELLED: "cancelled",
}


def _sentence(text: str) -> str:
    """One line, capitalised, ending in a full stop: how an error is shown."""
    text = " ".join(text.split())
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass(eq=False)
class _Row:
    """What the view knows about one job; rendering compares against `shown` so widgets change only on a change."""

    key: tuple[str, str]
    label: str
    detail: str = ""
    step: Step = Step.PLANNED
    interrupted: bool = False        # from the journal: the run stopped with this job unfinished
    stopped: bool = False            # its run ended (end_run) while this job was still unfinished
    queue_position: int | None = None
    fraction: float | None = None
    started: float | None = None
    ended: float | None = None
    error: str = ""
    last: str = ""
    note: str = ""
    lines: deque = field(default_factory=lambda: deque(maxlen=MAX_LINES))
    item: QTreeWidgetItem | None = None
    bar: QProgressBar | None = None
    buttons: dict[str, QPushButton] = field(default_factory=dict)
    shown: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.step.finished

    @property
    def running(self) -> bool:
        return not (self.finished or self.interrupted or self.stopped)

    def step_text(self) -> str:
        text = _SHOWN[self.step]
        if self.step == Step.QUEUED and self.queue_position is not None:
            text = f"queued #{self.queue_position}"
        if self.finished:
            return text
        if self.interrupted:
            return f"interrupted at {text}"
        if self.stopped:
            return f"stopped at {text}"
        return text

    def reset(self, at: float | None) -> None:
        """A new attempt: the row runs again from `at`."""
        self.interrupted = self.stopped = False
        self.queue_position = self.fraction = None
        self.started, self.ended, self.error = at, None, ""


class JobsView(QWidget):
    """The jobs of every run in flight, keyed by (run_key, job_id), with Cancel, Retry, Review and Resume.

    Each row shows only what it offers now (Cancel while running, Retry after a failure or a cancel, Review when
    done), third from the left so it stays in view in a narrow pane; Enter or a double-click on a done row asks
    for its review too.

    Feed it with `apply_events` on the GUI thread; each batch touches each row's widgets at most once.
    Elapsed times come from `clock` (default `time.time`, the clock `JobEvent.at` is stamped with) and are
    refreshed by one one-second timer for all rows.
    """

    cancelRequested = Signal(str, str)   # run_key, job_id
    retryRequested = Signal(str, str)
    reviewRequested = Signal(str, str)   # a finished (spliced) job: open its before/after preview
    resumeRequested = Signal(str)        # an interrupted run from the journal: run id

    def __init__(self, parent: QWidget | None = None, *, clock: Callable[[], float] = time.time):
        super().__init__(parent)
        self._clock = clock
        self._rows: dict[tuple[str, str], _Row] = {}
        self._running: set[tuple[str, str]] = set()     # rows whose elapsed time is ticking
        self._headers: dict[str, QTreeWidgetItem] = {}  # interrupted runs: run id -> the item holding Resume
        self._resume_buttons: dict[str, QPushButton] = {}

        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(HEADERS))
        self.tree.setHeaderLabels(list(HEADERS))
        self.tree.setUniformRowHeights(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(24)
        # what a row offers (one button: Cancel, Retry or Review) comes third, so it shows in a narrow pane
        for col, width in ((COL_LABEL, 150), (COL_STEP, 96), (COL_ACTIONS, 84), (COL_PROGRESS, 80), (COL_TIME, 44),
                           (COL_NOTE, 200)):
            self.tree.setColumnWidth(col, width)
        self.tree.currentItemChanged.connect(lambda *_: self._show_details())
        self.tree.itemActivated.connect(self._activated)        # Enter, or a double-click: the row's review

        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Select a job to see its messages and the service's log.")

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.tree)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.update_elapsed)

    # -- the interface the main window uses ------------------------------------------------------------------------

    def add_job(self, run_key: str, job_id: str, label: str, detail: str = "") -> None:
        """A row in "planned"; an existing row with the same keys starts over (a retry, a resumed run)."""
        key = (run_key, job_id)
        row = self._rows.get(key)
        if row is None:
            row = self._new_row(key, label, detail)
        else:
            row.label, row.detail, row.step, row.last, row.note = label, detail, Step.PLANNED, "", ""
            row.reset(None)
            row.lines.clear()
            self._mark_resumed(run_key)
        if detail:
            row.lines.append(detail)
            row.last = detail            # the estimate shows until the job has something newer to say
        self._render(row)
        if self.tree.currentItem() is row.item:
            self._show_details()

    def apply_events(self, events: list[tuple[str, JobEvent]]) -> None:
        """A batch of (run_key, event): the state is folded per row, then each touched row is drawn once."""
        touched: dict[tuple[str, str], _Row] = {}
        for run_key, event in events:
            key = (run_key, event.job)
            row = self._rows.get(key)
            if row is None:
                if event.job == RUN_JOB:
                    continue
                row = self._new_row(key, event.job, "")
            self._fold(row, event)
            touched[key] = row
        resumed = {key[0] for key in touched if key[0] in self._headers}
        for run_key in resumed:
            self._mark_resumed(run_key)
        current = self.tree.currentItem()
        for row in touched.values():
            self._render(row)
            if row.item is current:
                self._show_details()
        if self._running and not self._timer.isActive():
            self._timer.start()

    def set_note(self, run_key: str, job_id: str, text: str) -> None:
        row = self._rows.get((run_key, job_id))
        if row is None:
            return
        row.note = text
        if text:
            row.lines.append(f"note: {text}")
        self._render(row)

    def add_interrupted(self, run_id: str, rows: list[tuple[str, str, str, str]], timeline: str = "") -> None:
        """A run the journal holds unfinished (of the timeline file `timeline`): its jobs as they stood, under one
        Resume button for the run."""
        header = self._headers.get(run_id)
        if header is None:
            header = QTreeWidgetItem([f"Interrupted run {run_id}" + (f" of {timeline}" if timeline else ""), "interrupted"])
            self.tree.addTopLevelItem(header)
            self._headers[run_id] = header
            button = QPushButton("Resume")
            button.setObjectName("resume")
            button.setToolTip("Continue this run from the journal: requests already sent are followed, not sent again.")
            button.clicked.connect(lambda _=False, r=run_id: self.resumeRequested.emit(r))
            holder = QWidget()
            box = QHBoxLayout(holder)
            box.setContentsMargins(2, 0, 2, 0)
            box.addWidget(button)
            box.addStretch(1)
            self.tree.setItemWidget(header, COL_ACTIONS, holder)
            self._resume_buttons[run_id] = button
        for job_id, label, step_value, error in rows:
            key = (run_id, job_id)
            old = self._rows.pop(key, None)
            if old is not None:
                self._drop_item(old)
            row = self._new_row(key, label, "", parent=header)
            try:
                row.step = Step(step_value)
            except ValueError:
                row.step = Step.PLANNED
            row.interrupted = not row.finished
            if error:
                row.error = _sentence(error) if row.step == Step.FAILED else ""
                row.last = error
                row.lines.append(error)
            self._running.discard(key)
            self._render(row)
        header.setText(COL_STEP, "interrupted")
        header.setExpanded(True)
        self._resume_buttons[run_id].setEnabled(True)

    def step_of(self, run_key: str, job_id: str) -> str:
        """The text in the row's step column."""
        return self._rows[(run_key, job_id)].step_text()

    def in_flight(self) -> int:
        """Rows still running (planned counts; finished, interrupted and stopped rows do not)."""
        return sum(1 for row in self._rows.values() if row.running)

    def row_count(self) -> int:
        """Job rows, not counting the headers of interrupted runs."""
        return len(self._rows)

    def clear_finished(self) -> None:
        """Drop done, failed and cancelled rows; an interrupted run's header goes when it has no rows left."""
        for key in [k for k, row in self._rows.items() if row.finished]:
            self._drop_item(self._rows.pop(key))
        for run_id, header in list(self._headers.items()):
            if header.childCount() == 0:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(header))
                del self._headers[run_id]
                self._resume_buttons.pop(run_id, None)
        self._show_details()

    # -- extras: for the main window and for tests ---------------------------------------------------------------

    def end_run(self, run_key: str) -> None:
        """The run is over: rows it left unfinished (a submit whose fate is unknown) stop ticking and offer Retry."""
        for key, row in self._rows.items():
            if key[0] == run_key and row.running:
                row.stopped = True
                row.ended = self._clock() if row.started is not None else None
                self._running.discard(key)
                self._render(row)

    def update_elapsed(self) -> None:
        """The one-second tick: redraw the elapsed time of running rows (finished rows are frozen)."""
        if not self._running:
            self._timer.stop()
            return
        now = self._clock()
        for key in self._running:
            row = self._rows[key]
            text = _clock_text(now - row.started) if row.started is not None else ""
            if row.shown.get("time") != text:
                row.shown["time"] = text
                row.item.setText(COL_TIME, text)

    def item_of(self, run_key: str, job_id: str) -> QTreeWidgetItem:
        return self._rows[(run_key, job_id)].item

    def progress_bar(self, run_key: str, job_id: str) -> QProgressBar:
        return self._rows[(run_key, job_id)].bar

    def buttons(self, run_key: str, job_id: str) -> dict[str, QPushButton]:
        """The row's buttons by name: "cancel", "retry", "review"."""
        return dict(self._rows[(run_key, job_id)].buttons)

    def resume_button(self, run_id: str) -> QPushButton:
        return self._resume_buttons[run_id]

    def lines_of(self, run_key: str, job_id: str) -> list[str]:
        """The messages and service log lines kept for the row (the last MAX_LINES)."""
        return list(self._rows[(run_key, job_id)].lines)

    def select(self, run_key: str, job_id: str) -> None:
        self.tree.setCurrentItem(self._rows[(run_key, job_id)].item)

    # -- inside ----------------------------------------------------------------------------------------------------

    def _new_row(self, key: tuple[str, str], label: str, detail: str, parent: QTreeWidgetItem | None = None) -> _Row:
        row = _Row(key, label, detail)
        item = QTreeWidgetItem([label])
        if parent is None:
            self.tree.addTopLevelItem(item)
        else:
            parent.addChild(item)
        row.item = item
        item.setData(COL_LABEL, _KEY_ROLE, list(key))

        row.bar = QProgressBar()
        row.bar.setRange(0, _SPAN)
        row.bar.setValue(0)
        row.bar.setTextVisible(False)
        row.bar.setMaximumHeight(14)
        self.tree.setItemWidget(item, COL_PROGRESS, row.bar)

        holder = QWidget()
        box = QHBoxLayout(holder)
        box.setContentsMargins(2, 0, 2, 0)
        box.setSpacing(4)
        for name, text, signal in (("cancel", "Cancel", self.cancelRequested), ("retry", "Retry", self.retryRequested),
                                   ("review", "Review", self.reviewRequested)):
            button = QPushButton(text)
            button.setObjectName(name)
            button.setEnabled(False)
            button.setVisible(False)
            button.setMinimumWidth(64)
            button.clicked.connect(lambda _=False, s=signal, k=key: s.emit(*k))
            box.addWidget(button)
            row.buttons[name] = button
        self.tree.setItemWidget(item, COL_ACTIONS, holder)
        self._rows[key] = row
        return row

    def _drop_item(self, row: _Row) -> None:
        self._running.discard(row.key)
        parent = row.item.parent()
        if parent is None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(row.item))
        else:
            parent.removeChild(row.item)

    def _mark_resumed(self, run_id: str) -> None:
        header = self._headers.get(run_id)
        if header is not None and header.text(COL_STEP) != "resumed":
            header.setText(COL_STEP, "resumed")
            self._resume_buttons[run_id].setEnabled(False)

    def _fold(self, row: _Row, event: JobEvent) -> None:
        """Fold one event into the row's state; nothing is drawn here."""
        step = event.step
        if step.finished and step == row.step:
            pass  # the same ending said again (a resumed run announcing where it stands): a line, not a new state
        elif step.finished:
            row.step, row.ended = step, event.at
            row.interrupted = row.stopped = False
            if row.started is None:
                row.started = event.at
            if step == Step.FAILED:
                row.error = _sentence(event.message) or "The job failed without saying why."
            if step == Step.SPLICED:
                row.fraction = 1.0
        else:
            if not row.running:          # a retry or a resumed run: the row goes again
                row.reset(event.at)
            if row.started is None:
                row.started = event.at
            if step != row.step:
                row.step, row.fraction = step, None
                if step != Step.QUEUED:
                    row.queue_position = None
            if event.queue_position is not None:
                row.queue_position = event.queue_position
            if event.fraction is not None:
                row.fraction = min(1.0, max(0.0, event.fraction))
        if event.message:
            row.lines.append(event.message)
            row.last = event.message
        if event.log:
            row.lines.extend(event.log)
            row.last = event.log[-1]
        if row.running:
            self._running.add(row.key)
        else:
            self._running.discard(row.key)

    def _render(self, row: _Row) -> None:
        """Draw the row: each widget is touched only when what it shows has changed."""
        shown, item = row.shown, row.item
        if shown.get("label") != row.label:
            shown["label"] = row.label
            item.setText(COL_LABEL, row.label)
            item.setToolTip(COL_LABEL, row.label + (f"\n{row.detail}" if row.detail else ""))
        step = row.step_text()
        if shown.get("step") != step:
            shown["step"] = step
            item.setText(COL_STEP, step)

        if row.step == Step.SPLICED:
            bar = (0, _SPAN, _SPAN)
        elif row.running and row.fraction is None and row.step != Step.PLANNED:
            bar = (0, 0, 0)                                   # busy: the step gives no fraction
        else:
            bar = (0, _SPAN, round((row.fraction or 0.0) * _SPAN))
        if shown.get("bar") != bar:
            shown["bar"] = bar
            if row.bar.maximum() != bar[1]:
                row.bar.setRange(bar[0], bar[1])
            row.bar.setValue(bar[2])

        if row.started is None:
            elapsed = ""
        else:
            end = row.ended if (row.ended is not None and not row.running) else self._clock()
            elapsed = _clock_text(end - row.started)
        if shown.get("time") != elapsed:
            shown["time"] = elapsed
            item.setText(COL_TIME, elapsed)

        failed = row.step == Step.FAILED
        last = row.error if failed else row.last
        if shown.get("last") != (last, failed):
            shown["last"] = (last, failed)
            item.setText(COL_LAST, last)
            item.setToolTip(COL_LAST, last)
            item.setForeground(COL_LAST, QBrush(ERROR_RED) if failed else QBrush())
            item.setForeground(COL_STEP, QBrush(ERROR_RED) if failed else QBrush())
        if shown.get("note") != row.note:
            shown["note"] = row.note
            item.setText(COL_NOTE, row.note)

        enabled = (row.running, row.step in (Step.FAILED, Step.CANCELLED) or row.stopped, row.step == Step.SPLICED)
        if shown.get("buttons") != enabled:
            shown["buttons"] = enabled
            for name, on in zip(("cancel", "retry", "review"), enabled):   # only what the row offers now shows
                row.buttons[name].setEnabled(on)
                row.buttons[name].setVisible(on)
        if row.running:
            self._running.add(row.key)
        else:
            self._running.discard(row.key)

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        """Enter or a double-click on a row: a finished job opens its review."""
        key = item.data(COL_LABEL, _KEY_ROLE) if item is not None else None
        row = self._rows.get(tuple(key)) if key else None
        if row is not None and row.step == Step.SPLICED:
            self.reviewRequested.emit(*row.key)

    def _show_details(self) -> None:
        item = self.tree.currentItem()
        key = item.data(COL_LABEL, _KEY_ROLE) if item is not None else None
        row = self._rows.get(tuple(key)) if key else None
        if row is None:
            if item is not None and any(item is header for header in self._headers.values()):
                self.details.setPlainText(f"{item.text(COL_LABEL)}: the jobs below did not finish. Resume continues the "
                                          "run; requests already sent are followed by their ids, not sent again.")
            else:
                self.details.clear()
            return
        head = [row.label]
        if row.detail:
            head.append(row.detail)
        head.append(f"step: {row.step_text()}" + (f"; note: {row.note}" if row.note else ""))
        if row.error:
            head.append(f"error: {row.error}")
        self.details.setPlainText("\n".join(head) + "\n\n" + "\n".join(row.lines))
