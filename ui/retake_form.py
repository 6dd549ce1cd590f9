"""The retake form: prompt (with recent prompts), mode, service and model, the planned window, cost and problems."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMenu,
                               QPlainTextEdit, QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ..compose import model_for
from ..ports import RetakeMode
from ..settings import Settings
from .session import Planned, Request

__all__ = ["RetakeForm", "MODES", "SERVICES"]

MODES = [("Picture and sound", RetakeMode.REPLACE_AUDIO_AND_VIDEO), ("Picture only", RetakeMode.REPLACE_VIDEO),
         ("Sound only", RetakeMode.REPLACE_AUDIO)]
SERVICES = [("Local (offline, free)", "local"), ("fal.ai", "fal"), ("RunComfy", "runcomfy")]
PLACEMENTS = [("As a new version of the clip", "splice"), ("On a track above", "above")]
RECENT_KEY = "form/recent_prompts"
RECENT_MAX = 20


class RetakeForm(QWidget):
    """Collects a request; shows what the core planned for it, its cost, and why it cannot be sent yet."""

    changed = Signal()
    retakeClicked = Signal()

    def __init__(self, settings: Settings, qsettings: QSettings, parent=None):
        super().__init__(parent)
        self.settings, self.qsettings = settings, qsettings
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("What the retake should show, e.g. \"the same shot, at dusk, rain on the window\"")
        self.prompt.setFixedHeight(84)
        self.recent = QToolButton()
        self.recent.setText("Recent")
        self.recent.setPopupMode(QToolButton.InstantPopup)
        self.recent.setMenu(QMenu(self.recent))
        self.mode = QComboBox()
        for text, mode in MODES:
            self.mode.addItem(text, mode)
        self.service = QComboBox()
        for text, name in SERVICES:
            self.service.addItem(text, name)
        self.model = QLineEdit()
        self.placement = QComboBox()
        for text, name in PLACEMENTS:
            self.placement.addItem(text, name)
        self.context = QDoubleSpinBox()
        self.context.setRange(0.0, 10.0)
        self.context.setSingleStep(0.25)
        self.context.setDecimals(2)
        self.context.setSuffix(" s each side")
        self.context.setToolTip("Footage sent on each side of the window, for the model to match: billed like the window")
        self.context_max = QCheckBox("all the service takes")
        self.full_res = QCheckBox("Send the picture at its own size")
        self.full_res.setToolTip("Larger than 1920x1080 costs upload time, not money.")
        self.dissolve = QSpinBox()
        self.dissolve.setRange(0, 48)
        self.dissolve.setSuffix(" frames")
        self.dissolve.setSpecialValueText("a cut")
        self.window_text = QLabel("Select a clip or a range on the timeline.")
        self.window_text.setWordWrap(True)
        self.window_text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.cost = QLabel("")
        self.cost.setWordWrap(True)
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #d04040;")
        self.retake = QPushButton("Retake")
        self.retake.setEnabled(False)
        self.retake.setDefault(True)
        self.span_text = None     # how a planned record range is written (the window: inclusive, as marks read)

        top = QHBoxLayout()
        top.addWidget(QLabel("Prompt"))
        top.addStretch(1)
        top.addWidget(self.recent)
        form = QFormLayout()
        form.addRow("Regenerate", self.mode)
        form.addRow("Service", self.service)
        form.addRow("Model", self.model)
        form.addRow("Result", self.placement)
        context = QHBoxLayout()
        context.addWidget(self.context, 1)
        context.addWidget(self.context_max)
        form.addRow("Context", context)
        form.addRow("Edges", self.dissolve)
        form.addRow("", self.full_res)
        self.resolve_placement = QLabel("A whole clip becomes a take on it; part of a clip goes on a free track above.")
        self.resolve_placement.setWordWrap(True)
        form.addRow("In Resolve", self.resolve_placement)
        form.setRowVisible(self.resolve_placement, False)
        self._fields = form
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.prompt)
        layout.addLayout(form)
        layout.addWidget(self.window_text)
        layout.addWidget(self.cost)
        layout.addWidget(self.problems)
        layout.addWidget(self.retake)
        layout.addStretch(1)

        self._fill_recent()
        self._take_settings()
        self._service_changed()
        self.prompt.textChanged.connect(self.changed)
        self.mode.currentIndexChanged.connect(self.changed)
        self.service.currentIndexChanged.connect(self._service_changed)
        self.model.editingFinished.connect(self.changed)
        self.placement.currentIndexChanged.connect(self.changed)
        self.context.valueChanged.connect(self.changed)
        self.context_max.toggled.connect(self._context_changed)
        self.dissolve.valueChanged.connect(self.changed)
        self.full_res.toggled.connect(self.changed)
        self.retake.clicked.connect(self.retakeClicked)

    # ---- fields ----------------------------------------------------------------------------------------------

    def use_settings(self, settings: Settings) -> None:
        self.settings = settings
        self._take_settings()
        self._service_changed()

    def _take_settings(self) -> None:
        """The context and edges start as the settings say (context_s, dissolve_frames)."""
        for widget in (self.context, self.context_max, self.dissolve):
            widget.blockSignals(True)
        self.context_max.setChecked(self.settings.context_s is None)
        self.context.setValue(self.settings.context_s if self.settings.context_s is not None else 1.0)
        self.context.setEnabled(self.settings.context_s is not None)
        self.dissolve.setValue(self.settings.dissolve_frames)
        for widget in (self.context, self.context_max, self.dissolve):
            widget.blockSignals(False)

    def _context_changed(self) -> None:
        self.context.setEnabled(not self.context_max.isChecked())
        self.changed.emit()

    def _service_changed(self) -> None:
        provider = self.service.currentData()
        self.model.setText(model_for(provider, self.settings, None))
        self.changed.emit()

    def request(self, *, clips=(), range=None, track=None) -> Request:
        return Request(self.prompt.toPlainText().strip(), RetakeMode(self.mode.currentData()), self.service.currentData(),
                       self.model.text().strip() or model_for(self.service.currentData(), self.settings, None),
                       self.placement.currentData(), tuple(clips), range, track,
                       context_s=None if self.context_max.isChecked() else self.context.value(),
                       full_res=self.full_res.isChecked(), dissolve_frames=self.dissolve.value())

    def show_resolve_placement(self) -> None:
        """Resolve mode: where a version lands follows from what it covers, so the Result choice gives way to that."""
        self._fields.setRowVisible(self.placement, False)
        self._fields.setRowVisible(self.resolve_placement, True)

    def set_prompt(self, text: str) -> None:
        self.prompt.setPlainText(text)

    # ---- recent prompts ----------------------------------------------------------------------------------------

    def recent_prompts(self) -> list[str]:
        value = self.qsettings.value(RECENT_KEY, [])
        if isinstance(value, str):  # QSettings gives a lone string back for a one-item list
            value = [value]
        return [str(v) for v in value or []]

    def remember_prompt(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        prompts = [text] + [p for p in self.recent_prompts() if p != text]
        self.qsettings.setValue(RECENT_KEY, prompts[:RECENT_MAX])
        self._fill_recent()

    def _fill_recent(self) -> None:
        menu = self.recent.menu()
        menu.clear()
        prompts = self.recent_prompts()
        for text in prompts:
            label = text if len(text) <= 70 else text[:67] + "..."
            action = menu.addAction(label)
            action.setData(text)
            action.triggered.connect(lambda _=False, t=text: self.set_prompt(t))
        self.recent.setEnabled(bool(prompts))

    # ---- what the core planned ---------------------------------------------------------------------------------

    def show_planning(self) -> None:
        self.retake.setEnabled(False)
        self.window_text.setText("Planning…")

    def show_plan(self, planned: Planned | None) -> None:
        """The window(s), the cost with its basis, where results land; Retake only when the request can be sent."""
        if planned is None:
            self.window_text.setText("Select a clip or a range on the timeline.")
            self.cost.setText("")
            self.problems.setText("")
            self.retake.setEnabled(False)
            return
        lines = []
        spans = {}                     # the core's record spans (out exclusive) as marks read (inclusive)
        for job in planned.jobs:
            p = job.plan
            before, after = (n / float(p.media.frame_rate) for n in p.context)
            span = self.span_text(p.record_range) if self.span_text is not None else p.record_timecode
            spans[p.record_timecode] = span
            lines.append(f"{p.label}: {span}, {p.window_frames} frames ({p.duration:.2f} s); "
                         f"context {before:.2f} s + {after:.2f} s: input {p.input_seconds:.2f} s")
            lines.extend(f"  note: {note}" for note in p.notes)
        for sentence in planned.landing[:3]:
            for exclusive, inclusive in spans.items():
                sentence = sentence.replace(exclusive, inclusive)
            lines.append(sentence)
        if len(planned.landing) > 3:
            lines.append(f"… and {len(planned.landing) - 3} more.")
        self.window_text.setText("\n".join(lines) or "Nothing to retake in the selection.")
        est = planned.estimate
        if est is not None:
            threshold = self.settings.cost_threshold_usd
            ask = " You will be asked before it is sent." if est.needs_confirmation(threshold) else ""
            self.cost.setText(f"Cost: {est.sentence()}.{ask}\n" + "\n".join(est.basis))
        else:
            self.cost.setText("")
        self.problems.setText("\n".join(planned.problems))
        self.retake.setEnabled(planned.ok)
