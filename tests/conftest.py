"""Shared test fixtures: the corpus of real timelines and media (skipped where ../shared is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus of real-world files; tests that need it skip cleanly where it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not here (a user's checkout); corpus tests skipped")
    return CORPUS


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Never read the developer's own settings file, journal or keys during tests."""
    home = tmp_path_factory.mktemp("settings")
    monkeypatch.setenv("LTX_RETAKE_SETTINGS", str(home / "settings.json"))
    monkeypatch.setenv("LTX_RETAKE_JOURNAL", str(home / "journal.sqlite"))
    for var in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "RUNCOMFY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    # the OS keyring too: keyring reads this when it first picks a backend (here, and in CLI subprocesses)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
