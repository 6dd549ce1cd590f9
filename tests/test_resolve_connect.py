"""Reaching Resolve: the scripting module's places, the messages when it cannot be reached, the menu entry and its broker."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from ltx_retake.adapters.resolve_broker import connect_to_broker, serve_in_thread
from ltx_retake.adapters.resolve_connect import ResolveUnavailable, connect, has, script_environment
from ltx_retake.adapters.resolve_install import ENTRY_NAME, install, menu_script, uninstall, utility_folder
from ltx_retake.adapters.resolve_timeline import parse_rate
from ltx_retake.cli import main as cli
from ltx_retake.errors import InputError, SelectionError


class Studio:
    """The least a `resolve` object answers: a version and a product (for the broker and connect)."""

    def __init__(self, version=(19, 1, 3, 7, ""), product="DaVinci Resolve Studio"):
        self.version, self.product = list(version), product
        self.EXPORT_OTIO = 7

    def GetVersion(self):  # noqa: N802 - Resolve's names
        return self.version

    def GetProductName(self):  # noqa: N802
        return self.product

    def Echo(self, *args):  # noqa: N802
        return list(args)

    def Child(self):  # noqa: N802
        return Studio((1, 2, 3, 4, ""), "child")


def test_script_environment_per_os():
    linux = script_environment("linux", {})
    assert linux["RESOLVE_SCRIPT_LIB"] == "/opt/resolve/libs/Fusion/fusionscript.so"
    assert linux["modules"] == "/opt/resolve/Developer/Scripting/Modules"
    mac = script_environment("darwin", {})
    assert mac["RESOLVE_SCRIPT_API"].startswith("/Library/Application Support/Blackmagic Design")
    win = script_environment("win32", {"PROGRAMDATA": r"D:\PD"})
    assert win["modules"] == r"D:\PD\Blackmagic Design\DaVinci Resolve\Support\Developer\Scripting\Modules"
    assert script_environment("linux", {"RESOLVE_SCRIPT_API": "/custom"})["modules"] == "/custom/Modules"


def _scripting_module(tmp_path: Path, body: str, monkeypatch) -> dict:
    modules = tmp_path / "api" / "Modules"
    modules.mkdir(parents=True)
    (modules / "DaVinciResolveScript.py").write_text(body)
    monkeypatch.setenv("RESOLVE_SCRIPT_API", str(tmp_path / "api"))
    monkeypatch.setenv("RESOLVE_SCRIPT_LIB", str(tmp_path / "fusionscript.so"))
    monkeypatch.delitem(sys.modules, "DaVinciResolveScript", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return {"RESOLVE_SCRIPT_API": str(tmp_path / "api"), "RESOLVE_SCRIPT_LIB": str(tmp_path / "fusionscript.so")}


def test_missing_resolve_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "DaVinciResolveScript", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(ResolveUnavailable, match="scripting module was not found .*Install DaVinci Resolve"):
        connect(env={"RESOLVE_SCRIPT_API": str(tmp_path / "nowhere")}, platform="linux")


def test_resolve_not_answering_says_what_to_turn_on(tmp_path, monkeypatch):
    env = _scripting_module(tmp_path, "def scriptapp(name):\n    return None\n", monkeypatch)
    with pytest.raises(ResolveUnavailable) as caught:
        connect(env=env, platform="linux")
    text = str(caught.value)
    assert "External scripting using: Local" in text and "Studio" in text and "ltx-retake resolve install" in text


def test_a_broken_scripting_library_is_explained(tmp_path, monkeypatch):
    env = _scripting_module(tmp_path, "raise ImportError('fusionscript.so: wrong ELF class')\n", monkeypatch)
    with pytest.raises(ResolveUnavailable, match="scripting module was not found|did not load"):
        connect(env=env, platform="linux")


def test_free_edition_from_21_1_needs_studio():
    with pytest.raises(ResolveUnavailable, match="only in DaVinci Resolve Studio .*OTIO route"):
        connect(Studio((21, 1, 0, 5, ""), "DaVinci Resolve"))
    assert connect(Studio((21, 0, 4, 1, ""), "DaVinci Resolve")).GetVersion()[:3] == [21, 0, 4]


def test_external_connection_through_the_module(tmp_path, monkeypatch):
    env = _scripting_module(tmp_path, "class R:\n    def GetVersion(self):\n        return [19, 0, 2, 1, '']\n"
                            "def scriptapp(name):\n    return R() if name == 'Resolve' else None\n", monkeypatch)
    assert connect(env=env, platform="linux").GetVersion() == [19, 0, 2, 1, ""]


def test_has_reads_dir_not_hasattr():
    class Lenient:  # like a Resolve object: every attribute "exists"
        def __getattr__(self, name):
            return lambda *a: None

        def __dir__(self):
            return ["GetName"]

    obj = Lenient()
    assert hasattr(obj, "GetSelectedClips") and not has(obj, "GetSelectedClips") and has(obj, "GetName")


@pytest.mark.parametrize("text, rate, df", [("24", Fraction(24), False), ("23.976", Fraction(24000, 1001), False),
                                            ("29.97 DF", Fraction(30000, 1001), True), ("29.97", Fraction(30000, 1001), False),
                                            ("59.94 DF", Fraction(60000, 1001), True), ("25", Fraction(25), False)])
def test_timeline_rates_as_resolve_writes_them(text, rate, df):
    assert parse_rate(text) == (rate, df)


def test_a_rate_that_is_not_one_is_explained():
    with pytest.raises(SelectionError, match="Timeline frame rate"):
        parse_rate("")


def test_broker_carries_calls_objects_and_arguments():
    proxy = connect_to_broker(serve_in_thread(Studio()))
    assert proxy.GetVersion() == [19, 1, 3, 7, ""]
    assert "GetProductName" in dir(proxy) and proxy.EXPORT_OTIO == 7
    child = proxy.Child()
    assert child.GetProductName() == "child"
    assert proxy.Echo(child, {"mediaPoolItem": child, "n": 3})[0].GetProductName() == "child"
    with pytest.raises(RuntimeError, match="Resolve: AttributeError"):
        proxy.NoSuchCall()


def test_install_writes_an_entry_that_starts_the_panel_through_the_broker(tmp_path):
    folder = tmp_path / "Scripts" / "Utility"
    out = tmp_path / "answer.json"
    client = ("import json, os, sys; from ltx_retake.adapters.resolve_connect import connect; r = connect(); "
              f"json.dump({{'version': r.GetVersion(), 'product': r.GetProductName()}}, open({str(out)!r}, 'w'))")
    entry = install(folder, command=[sys.executable, "-c", client])
    assert entry == folder / ENTRY_NAME
    # Resolve runs the entry with a live `resolve` global: do the same
    exec(compile(entry.read_text(), str(entry), "exec"), {"resolve": Studio(), "__name__": "__main__"})
    assert json.loads(out.read_text()) == {"version": [19, 1, 3, 7, ""], "product": "DaVinci Resolve Studio"}
    assert uninstall(folder) == entry and not entry.exists()
    assert uninstall(folder) is None


def test_install_never_replaces_someone_elses_script(tmp_path):
    (tmp_path / ENTRY_NAME).write_text("print('mine')\n")
    with pytest.raises(InputError, match="not written by ltx-retake"):
        install(tmp_path)
    with pytest.raises(InputError, match="left as it is"):
        uninstall(tmp_path)
    assert (tmp_path / ENTRY_NAME).read_text() == "print('mine')\n"


def test_utility_folder_per_os(tmp_path):
    assert utility_folder("linux", {}, tmp_path) == tmp_path / ".local/share/DaVinciResolve/Fusion/Scripts/Utility"
    assert utility_folder("darwin", {}, tmp_path) == (
        tmp_path / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility")
    win = utility_folder("win32", {"APPDATA": "/appdata"}, tmp_path)
    assert win == Path("/appdata/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Utility")


def test_menu_script_quotes_windows_paths():
    text = menu_script([r"C:\Program Files\py\python.exe", "-m", "ltx_retake"], Path(r"C:\site\ltx_retake\adapters\resolve_broker.py"))
    compile(text, "entry", "exec")
    assert r"C:\\Program Files\\py\\python.exe" in text


def test_cli_install_and_uninstall(tmp_path, capsys):
    assert cli(["resolve", "install", "--folder", str(tmp_path)]) == 0
    assert (tmp_path / ENTRY_NAME).exists() and "installed" in capsys.readouterr().out
    assert cli(["resolve", "uninstall", "--folder", str(tmp_path)]) == 0
    assert not (tmp_path / ENTRY_NAME).exists()


def test_the_broker_needs_only_the_standard_library():
    """The menu entry loads it inside Resolve's own Python, where nothing of ours is installed."""
    import ast

    from ltx_retake.adapters.resolve_connect import broker_path

    tree = ast.parse(broker_path().read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(sys.stdlib_module_names)
