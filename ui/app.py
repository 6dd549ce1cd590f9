"""`ltx-retake panel [TIMELINE | --resolve]`: start the retake panel (a Qt application) on a timeline file or on Resolve's.

Qt is loaded only after `display.display_problem()` finds that a window can open here: a machine without the X
libraries Qt needs gets a sentence naming the packages and exit code 2, never Qt's abort.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from ..errors import RetakeError, redact
from ..settings import load_settings
from .display import display_problem

__all__ = ["main", "connect_resolve"]


def connect_resolve(connect=None):
    """Connect to the running Resolve on a thread while the event loop runs (the call can take seconds, and in the
    Scripts-menu route it crosses a socket); returns the bridge or raises what the connection raised."""
    from PySide6.QtCore import QEventLoop, QTimer

    if connect is None:
        from ..compose import live_nle as connect
    done: dict = {}
    loop = QEventLoop()

    def work() -> None:
        try:
            done["bridge"] = connect()
        except BaseException as exc:  # noqa: BLE001 - handed to the GUI thread, which says it
            done["error"] = exc
        done["finished"] = True

    thread = threading.Thread(target=work, name="ltx-retake-connect", daemon=True)
    thread.start()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: loop.quit() if "finished" in done else None)
    timer.start()
    loop.exec()
    timer.stop()
    if "error" in done:
        raise done["error"]
    return done["bridge"]


def main(timeline: Path | None = None, argv: list[str] | None = None, *, resolve: bool = False) -> int:
    """Run the panel until its window closes; returns the exit code (2: it could not start)."""
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        from PySide6.QtWidgets import QApplication, QMessageBox

        from .window import RetakeWindow
    except ImportError as exc:
        if exc.name and exc.name.startswith("PySide6"):
            print(f"The panel needs PySide6, which is not installed ({exc.name}): pip install 'ltx-retake[ui]'.",
                  file=sys.stderr)
        else:
            print(f"The panel's Qt libraries do not load here ({redact(str(exc))}); reinstall with "
                  "pip install --force-reinstall 'ltx-retake[ui]'.", file=sys.stderr)
        return 2

    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("LTX Retake")
    app.setOrganizationName("ltx-retake")
    try:
        settings = load_settings()
    except RetakeError as exc:
        QMessageBox.critical(None, "LTX Retake", redact(str(exc)))
        return 2
    bridge = None
    if resolve:
        if timeline is not None:
            QMessageBox.critical(None, "LTX Retake", f"Open either a timeline file ({Path(timeline).name}) or the timeline in "
                                 "Resolve (--resolve), not both; run `ltx-retake panel --resolve` alone.")
            return 2
        try:
            bridge = connect_resolve()
        except RetakeError as exc:
            QMessageBox.critical(None, "LTX Retake", redact(str(exc)))
            return 2
        except Exception as exc:  # noqa: BLE001 - Resolve's library failing in its own way: a sentence, not a traceback
            QMessageBox.critical(None, "LTX Retake", f"Connecting to DaVinci Resolve failed ({type(exc).__name__}: "
                                 f"{redact(str(exc))}). Check Resolve is running with a project open, then start the "
                                 "panel again.")
            return 2
    window = RetakeWindow(settings)
    window.show()
    if bridge is not None:
        window.attach_resolve(bridge)
    elif timeline is not None:
        window.open(Path(timeline))     # lands what an earlier session of this timeline finished and never saved
    window.show_interrupted()
    return app.exec()
