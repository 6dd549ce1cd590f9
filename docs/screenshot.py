"""Make docs/panel.png: the real panel in a real X window (run under Xvfb) with the demo project and a finished retake.

    xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshot.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    if not os.environ.get("DISPLAY"):
        print("needs an X display: run it under xvfb-run", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="ltx-retake-shot-"))
    os.environ["LTX_RETAKE_JOURNAL"] = str(folder / "journal.sqlite")
    os.environ["LTX_RETAKE_SETTINGS"] = str(folder / "settings.json")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ltx_retake.demo import PROMPT, build_project
    from ltx_retake.settings import load_settings
    from ltx_retake.ui.window import RetakeWindow

    app = QApplication([sys.argv[0], "-platform", "xcb"])
    timeline = build_project(folder)
    window = RetakeWindow(load_settings(), qsettings=QSettings(str(folder / "panel.ini"), QSettings.IniFormat))
    window.resize(1560, 940)
    window.move(20, 20)
    window.show()
    window.open(timeline)

    def wait(condition, seconds: float = 120) -> None:
        end = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > end:
                raise SystemExit(f"timed out; status: {window.status.text()}")
            app.processEvents()
            time.sleep(0.02)

    window.view.set_range(120 + 30, 120 + 30 + 60)      # 2.5 s inside the second shot
    window.form.set_prompt(PROMPT)
    wait(lambda: window.form.retake.isEnabled())
    window.retake()
    wait(lambda: any(s.outcome is not None and not s.thread.is_alive() for s in window.session.runs.values())
         and not window.session._finished)
    window.review("r1", "job1")
    wait(lambda: window.preview.filmstrip_count() >= 6)
    window.preview.set_frame(30)
    window.preview.set_wipe(0.5)
    window.view.clear_selection()
    window.view.set_range(120 + 30, 120 + 30 + 60)      # the same range planned again: window, handles, linked sound
    window.view.set_playhead(120 + 30 + 30)              # the playhead in it, where the wipe is
    wait(lambda: len(window.view.overlays()) == 2)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    dest = Path(__file__).with_name("panel.png")
    window.screen().grabWindow(window.winId()).save(str(dest))
    print(dest)
    window.session.document.modified = False
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
