"""The panel's settings dialog: service keys (to the OS keyring), model ids, the output folder, the cost threshold."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from ltx_retake.errors import InputError
from ltx_retake.settings import (
    Settings,
    keyring_keys,
    load_settings,
    save_key,
    save_settings,
    settings_path,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["SettingsDialog", "key_sources"]

ERROR_STYLE = "color: #c62828;"
_KEYS = (("fal", "fal_key", "fal key", ("FAL_KEY",), ("FAL_KEY_ID", "FAL_KEY_SECRET")),
         ("runcomfy", "runcomfy_token", "RunComfy token", ("RUNCOMFY_TOKEN",), ()))
_DEFAULTS = {f.name: f.default for f in fields(Settings)}


def _settings_file() -> Path:
    """The file load_settings and save_settings use when no path is given."""
    return Path(os.environ["LTX_RETAKE_SETTINGS"]) if os.environ.get("LTX_RETAKE_SETTINGS") else settings_path()


def key_sources() -> dict[str, str]:
    """Where each key ("fal", "runcomfy") comes from, in the order the settings look: never the key itself."""
    env = os.environ
    sources: dict[str, str] = {}
    for user, field_name, _, single, pair in _KEYS:
        if any(env.get(var) for var in single):
            sources[user] = f"from the environment ({single[0]})"
        elif pair and all(env.get(var) for var in pair):
            sources[user] = f"from the environment ({' + '.join(pair)})"
    ring = keyring_keys([user for user, *_ in _KEYS if user not in sources])
    try:
        on_file = json.loads(_settings_file().read_text(encoding="utf-8"))
        on_file = on_file if isinstance(on_file, dict) else {}
    except (OSError, ValueError):
        on_file = {}
    for user, field_name, *_ in _KEYS:
        if user in sources:
            continue
        if user in ring:
            sources[user] = "in the OS keyring"
        elif on_file.get(field_name):
            sources[user] = "in the settings file"
        else:
            sources[user] = "not set"
    return sources


class SettingsDialog(QDialog):
    """Edit the settings a user changes: typed keys go to the OS keyring only, everything else to the settings file.

    Save writes what changed; a key the keyring cannot take is reported in the dialog (in red) and written nowhere
    else, while the other settings are still saved. The dialog closes only when everything was saved.
    """

    def __init__(self, settings: Settings, parent: QWidget | None = None, *,
                 choose_folder: Callable[[QWidget, str], str] | None = None):
        super().__init__(parent)
        self.setWindowTitle("LTX Retake settings")
        self.setMinimumWidth(560)
        self._settings = settings
        self._choose_folder = choose_folder or (
            lambda parent, start: QFileDialog.getExistingDirectory(parent, "Folder for retake media", start))
        form = QFormLayout()

        self.key_edits: dict[str, QLineEdit] = {}
        self.source_labels: dict[str, QLabel] = {}
        for user, _field, name, *_ in _KEYS:
            edit = QLineEdit(self)
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setPlaceholderText(f"paste a new {name} to keep it in the OS keyring")
            edit.setObjectName(f"{user}_key")
            source = QLabel(self)
            source.setObjectName(f"{user}_source")
            holder = QWidget(self)
            box = QVBoxLayout(holder)
            box.setContentsMargins(0, 0, 0, 0)
            box.addWidget(edit)
            box.addWidget(source)
            form.addRow(f"{name}:", holder)
            self.key_edits[user], self.source_labels[user] = edit, source

        self.fal_model = QLineEdit(settings.fal_model, self)
        self.fal_model.setPlaceholderText(str(_DEFAULTS["fal_model"]))
        form.addRow("fal model id:", self.fal_model)
        self.runcomfy_model = QLineEdit(settings.runcomfy_model, self)
        self.runcomfy_model.setPlaceholderText(str(_DEFAULTS["runcomfy_model"]))
        form.addRow("RunComfy model id:", self.runcomfy_model)

        self.output_dir = QLineEdit(settings.output_dir or "", self)
        self.output_dir.setPlaceholderText("beside the timeline, in <timeline>_retakes")
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self._browse)
        row = QWidget(self)
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.output_dir, 1)
        line.addWidget(self.browse_button)
        form.addRow("Output folder:", row)

        self.cost_threshold = QDoubleSpinBox(self)
        self.cost_threshold.setRange(0.0, 100_000.0)
        self.cost_threshold.setDecimals(2)
        self.cost_threshold.setSingleStep(1.0)
        self.cost_threshold.setPrefix("$ ")
        self.cost_threshold.setValue(float(settings.cost_threshold_usd))
        self.cost_threshold.setToolTip("A run estimated above this asks before anything is sent.")
        form.addRow("Ask before runs over:", self.cost_threshold)

        self.error_label = QLabel(self)
        self.error_label.setObjectName("error")
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.status_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.save_button.clicked.connect(self.save)
        self.cancel_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.status_label)
        layout.addWidget(self.buttons)
        self._initial = self._values()
        self.refresh_sources()

    # -- public --------------------------------------------------------------------------------------------------

    def refresh_sources(self) -> None:
        """Say where each key comes from now (environment, OS keyring, settings file, or not set)."""
        for user, text in key_sources().items():
            self.source_labels[user].setText(text)

    def source_of(self, user: str) -> str:
        """The text shown under the key field of "fal" or "runcomfy"."""
        return self.source_labels[user].text()

    def error_text(self) -> str:
        return self.error_label.text() if not self.error_label.isHidden() else ""

    def save(self) -> bool:
        """Save what changed; True (and the dialog accepted) when everything was saved, else the reasons in red."""
        errors: list[str] = []
        notes: list[str] = []
        changes = {name: value for name, value in self._values().items() if value != self._initial.get(name)}
        changes = {name: (None if value == _DEFAULTS.get(name) or value == "" else value) for name, value in changes.items()}
        if changes:
            try:
                save_settings(changes)
                self._initial.update({k: v for k, v in self._values().items() if k in changes})
            except InputError as exc:
                errors.append(str(exc))
        sources = None
        for user, _field, name, single, _pair in _KEYS:
            typed = self.key_edits[user].text().strip()
            if not typed:
                continue
            try:
                save_key(user, typed)
            except InputError as exc:
                errors.append(str(exc))
                continue
            self.key_edits[user].clear()
            sources = sources or key_sources()
            if sources.get(user, "").startswith("from the environment"):
                notes.append(f"The {name} is kept in the OS keyring; {single[0]} in the environment still comes first.")
        self.refresh_sources()
        self.status_label.setText(" ".join(notes))
        self.status_label.setVisible(bool(notes))
        if errors:
            self.error_label.setText("\n".join(errors))
            self.error_label.show()
            return False
        self.error_label.clear()
        self.error_label.hide()
        self.accept()
        return True

    def saved_settings(self) -> Settings:
        """The settings as they now load (file, environment, keyring)."""
        return load_settings()

    # -- inside --------------------------------------------------------------------------------------------------

    def _values(self) -> dict:
        folder = self.output_dir.text().strip()
        return {
            "fal_model": self.fal_model.text().strip() or _DEFAULTS["fal_model"],
            "runcomfy_model": self.runcomfy_model.text().strip() or _DEFAULTS["runcomfy_model"],
            "output_dir": os.path.expanduser(folder) if folder else "",
            "cost_threshold_usd": round(self.cost_threshold.value(), 2),
        }

    def _browse(self) -> None:
        start = self.output_dir.text().strip() or str(Path.home())
        chosen = self._choose_folder(self, start)
        if chosen:
            self.output_dir.setText(chosen)
