"""`ltx-retake panel [TIMELINE]`: start the retake panel (a Qt application) and open a timeline in it."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox

from ..errors import RetakeError, redact
from ..settings import load_settings

__all__ = ["main"]


def main(timeline: Path | None = None, argv: list[str] | None = None) -> int:
    """Run the panel until its window closes; returns the exit code."""
    from .window import RetakeWindow

    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("LTX Retake")
    app.setOrganizationName("ltx-retake")
    try:
        settings = load_settings()
    except RetakeError as exc:
        QMessageBox.critical(None, "LTX Retake", redact(str(exc)))
        return 2
    window = RetakeWindow(settings)
    window.show()
    window.show_interrupted()
    if timeline is not None:
        window.open(Path(timeline))
    return app.exec()
