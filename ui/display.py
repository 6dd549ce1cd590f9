"""Whether Qt can open the panel's window here, asked before any Qt module loads (Qt aborts the process otherwise).

On Linux, Qt's xcb platform plugin needs X client libraries that a bare machine (a server image, a container,
WSL) often lacks; without them Qt prints "xcb-cursor0 ... is needed" and aborts (exit 134). `display_problem()`
tries to load each library the plugin and QtGui need and names the Debian packages that bring the missing ones,
so `ltx-retake panel` can say so and exit. `QT_QPA_PLATFORM=offscreen` (tests, a headless run) needs no X.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

__all__ = ["GUI_LIBRARIES", "XCB_LIBRARIES", "display_problem", "missing_packages"]

# what QtGui itself links (any platform plugin, offscreen too): library -> the Debian package that brings it
GUI_LIBRARIES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
# what the xcb platform plugin (libqxcb.so, libQt6XcbQpa) loads on top
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def _loads(name: str) -> bool:
    try:
        ctypes.CDLL(name, mode=getattr(os, "RTLD_LAZY", 1) | getattr(ctypes, "RTLD_LOCAL", 0))
    except OSError:
        return False
    return True


def _platform(env: Mapping[str, str]) -> str:
    return env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()


def missing_packages(env: Mapping[str, str] | None = None, loads: Callable[[str], bool] = _loads) -> list[str]:
    """The Debian packages whose libraries Qt needs here and cannot load (for the platform QT_QPA_PLATFORM names)."""
    env = os.environ if env is None else env
    needed = dict(GUI_LIBRARIES)
    if _platform(env) in ("", "xcb") and not (not env.get("DISPLAY") and env.get("WAYLAND_DISPLAY")):
        needed.update(XCB_LIBRARIES)
    return sorted({package for library, package in needed.items() if not loads(library)})


def display_problem(env: Mapping[str, str] | None = None, loads: Callable[[str], bool] = _loads,
                    platform: str = sys.platform) -> str:
    """Why the panel's window cannot open here ("" when it can): missing libraries, or no display to open it on."""
    if not platform.startswith("linux"):
        return ""
    env = os.environ if env is None else env
    missing = missing_packages(env, loads)
    if missing:
        return ("The panel cannot open a window: Qt needs system libraries this machine lacks. On Debian or Ubuntu: "
                f"sudo apt-get install {' '.join(missing)} (other distributions name them alike). "
                "QT_QPA_PLATFORM=offscreen runs the panel without a window, as the tests do.")
    if _platform(env) in ("", "xcb") and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("The panel cannot open a window: there is no display here (DISPLAY is not set). Run it in a desktop "
                "session, over ssh -X, or under xvfb-run; QT_QPA_PLATFORM=offscreen runs it without a window.")
    return ""
