"""`ltx-retake resolve install|uninstall`: the Workspace > Scripts > Utility entry that opens the panel on Resolve.

The entry is a small script Resolve runs in its own Python with a live `resolve` global. It loads the
broker (standard library only) by path from this installation and starts the panel with this
installation's Python, so the two Pythons never have to match.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..atomic import WriteFailed, write_atomic
from ..errors import InputError
from .resolve_connect import broker_path

__all__ = ["ENTRY_NAME", "utility_folder", "menu_script", "install", "uninstall", "panel_command"]

ENTRY_NAME = "LTX Retake.py"
_SIGNATURE = "# ltx-retake menu entry"


def utility_folder(platform: str = sys.platform, env: dict[str, str] | None = None, home: Path | None = None) -> Path:
    """The user's own Scripts/Utility folder (no administrator rights needed) for this OS."""
    env = os.environ if env is None else env
    home = home or Path.home()
    if platform == "darwin":
        base = home / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts"
    elif platform.startswith("win"):
        appdata = env.get("APPDATA") or str(home / "AppData" / "Roaming")
        base = Path(appdata) / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    else:
        base = home / ".local/share/DaVinciResolve/Fusion/Scripts"
    return base / "Utility"


def panel_command() -> list[str]:
    """How the entry starts the panel: this installation's Python, connected through the broker."""
    return [sys.executable, "-m", "ltx_retake", "panel", "--resolve"]


def menu_script(command: list[str], broker: Path | None = None) -> str:
    """The entry's source: load the broker by path, start `command`, serve it Resolve until it exits."""
    return "\n".join([
        f"{_SIGNATURE}: written by `ltx-retake resolve install`; `ltx-retake resolve uninstall` removes it.",
        '"""Open the LTX Retake panel on the timeline open in this Resolve."""',
        "import importlib.util",
        "",
        f"BROKER = {str(broker or broker_path())!r}",
        f"COMMAND = {list(command)!r}",
        "",
        "spec = importlib.util.spec_from_file_location('ltx_retake_resolve_broker', BROKER)",
        "broker = importlib.util.module_from_spec(spec)",
        "spec.loader.exec_module(broker)",
        "app = globals().get('resolve')",
        "if app is None:",
        "    app = bmd.scriptapp('Resolve')  # noqa: F821 - Fusion's global in older Resolve menus",
        "broker.serve_panel(app, COMMAND)",
        "",
    ])


def install(folder: Path | None = None, *, command: list[str] | None = None) -> Path:
    """Write the entry (atomically) into `folder` (default: the user's Utility folder); returns its path."""
    folder = folder or utility_folder()
    target = folder / ENTRY_NAME
    if target.exists() and not target.read_text(encoding="utf-8", errors="replace").startswith(_SIGNATURE):
        raise InputError(f"{target} exists and was not written by ltx-retake; rename or remove it, then install again.")
    try:
        write_atomic(target, menu_script(command or panel_command()).encode("utf-8"), what="the Scripts menu entry")
    except WriteFailed as exc:
        raise InputError(f"Could not write the Scripts menu entry into {folder}: {exc} Check the folder is yours and "
                         "writable, or pass --folder.") from None
    return target


def uninstall(folder: Path | None = None) -> Path | None:
    """Remove the entry; None when there was none. A file of that name not written by ltx-retake is left alone."""
    target = (folder or utility_folder()) / ENTRY_NAME
    if not target.exists():
        return None
    if not target.read_text(encoding="utf-8", errors="replace").startswith(_SIGNATURE):
        raise InputError(f"{target} was not written by ltx-retake; it is left as it is.")
    target.unlink()
    return target
