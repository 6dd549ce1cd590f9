"""The house rules, checked: the dependency contracts, a docstring atop every module, no mocks of our own code."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("plugin", "adapters", "ui") for p in (ROOT / folder).rglob("*.py")]


def _lint(tmp_path, changed: dict[str, str] | None = None):
    """import-linter over the installed layout (plugin/ as ltx_retake, adapters/ and ui/ inside it); `changed` gives
    core modules other text (a module name -> its source) for a test that a broken rule is caught."""
    package = tmp_path / "ltx_retake"
    package.mkdir()
    for entry in (ROOT / "plugin").iterdir():
        if changed and entry.stem in changed and entry.suffix == ".py":
            (package / entry.name).write_text(changed[entry.stem], encoding="utf-8")
        else:
            (package / entry.name).symlink_to(entry)
    (package / "adapters").symlink_to(ROOT / "adapters")
    (package / "ui").symlink_to(ROOT / "ui")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, cache_dir=None, no_cache=True))"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)


def test_import_contracts_hold(tmp_path):
    proc = _lint(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken" in proc.stdout


def test_a_core_module_that_reaches_the_panel_breaks_the_contracts(tmp_path):
    """The rule is enforced, not remembered: a core module importing the panel's session (and through it Qt) fails."""
    source = (ROOT / "plugin" / "metadata.py").read_text(encoding="utf-8")
    proc = _lint(tmp_path, {"metadata": source + "\nfrom .ui import session  # noqa: E402,F401\n"})
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and "ltx_retake.metadata -> ltx_retake.ui.session" in proc.stdout


def test_every_module_opens_with_a_one_line_docstring():
    missing = []
    for path in SOURCES:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc or not doc.splitlines()[0].strip().endswith("."):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules without a one-line docstring: {missing}"


def test_no_test_patches_the_projects_own_code():
    mock = "mo" + "ck"  # spelled in parts so this file is not itself a match for the rule it checks
    pattern = re.compile(rf"unittest\.{mock}|from unittest import {mock}|Magic{mock.title()}|{mock}\.patch|"
                         r"monkeypatch\.setattr\(\s*['\"]?ltx_retake")
    offenders = [p.name for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name and pattern.search(p.read_text(encoding="utf-8"))]
    assert not offenders, f"inject the seam instead of patching: {offenders}"
