"""Saving settings: save_settings merges into the settings file atomically; the dialog keeps keys out of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ltx_retake.errors import InputError
from ltx_retake.settings import KEYRING_SERVICE, Settings, load_settings, save_settings

keyring = pytest.importorskip("keyring")
from keyring.backends import null


def settings_file() -> Path:
    return Path(os.environ["LTX_RETAKE_SETTINGS"])   # conftest points it at a fresh folder per test


# -- save_settings -------------------------------------------------------------------------------------------------

def test_save_settings_merges_into_the_file_load_settings_reads():
    file = settings_file()
    file.write_text(json.dumps({"runcomfy_url": "https://rc.example", "max_download_mb": 100}))
    written = save_settings({"fal_model": "fal-ai/ltx-2.3/retake-video", "cost_threshold_usd": "7.5"})
    assert written == file
    assert json.loads(file.read_text()) == {"runcomfy_url": "https://rc.example", "max_download_mb": 100,
                                            "fal_model": "fal-ai/ltx-2.3/retake-video", "cost_threshold_usd": 7.5}
    s = load_settings()
    assert s.fal_model == "fal-ai/ltx-2.3/retake-video" and s.cost_threshold_usd == 7.5 and s.runcomfy_url == "https://rc.example"
    save_settings({"runcomfy_url": None, "max_download_mb": 2048})
    data = json.loads(file.read_text())
    assert "runcomfy_url" not in data and data["max_download_mb"] == 2048, "None removes a setting"
    assert load_settings().runcomfy_url == Settings().runcomfy_url
    assert [p.name for p in file.parent.iterdir()] == [file.name], "no temp file is left behind"


def test_save_settings_takes_an_explicit_path_and_makes_its_folder(tmp_path):
    file = tmp_path / "deep" / "er" / "settings.json"
    assert save_settings({"output_dir": "/media/retakes"}, file) == file
    assert load_settings(file, env={}).output_dir == "/media/retakes"
    assert not settings_file().exists(), "the path given wins over LTX_RETAKE_SETTINGS"


@pytest.mark.parametrize("changes,message", [
    ({"fal_key": "fal-secret-123456"}, "keys are not written to the settings file; they go to the OS keyring or the environment"),
    ({"runcomfy_token": "rc-secret-123456"}, "OS keyring or the environment"),
    ({"fal_modle": "x"}, "unknown settings"),
    ({"cost_threshold_usd": "cheap"}, "must be a number"),
    ({"max_download_mb": float("inf")}, "must be a number"),
    ({"cost_threshold_usd": True}, "must be a number"),
    ({"fal_model": 3}, "must be text"),
])
def test_save_settings_refuses_keys_unknown_names_and_bad_numbers(changes, message):
    file = settings_file()
    file.write_text('{"fal_model": "kept"}')
    with pytest.raises(InputError, match=message) as caught:
        save_settings(changes)
    assert "secret-123456" not in str(caught.value)
    assert str(caught.value)[0].isupper() and str(caught.value).endswith(".")
    assert file.read_text() == '{"fal_model": "kept"}', "nothing is written when anything is refused"


def test_save_settings_does_not_overwrite_a_broken_file():
    file = settings_file()
    file.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        save_settings({"fal_model": "x"})
    assert file.read_text() == "{not json"


def test_save_settings_says_when_the_folder_cannot_be_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InputError, match="Cannot write the settings file"):
        save_settings({"fal_model": "x"}, blocker / "settings.json")


# -- the dialog ----------------------------------------------------------------------------------------------------

pytest.importorskip("PySide6")
from ltx_retake.ui.settings_dialog import SettingsDialog
from PySide6.QtCore import Qt

from keyring_fixtures import MemoryKeyring, use_keyring  # noqa: E402,F401 - a fixture


@pytest.fixture
def dialog(qtbot, use_keyring):
    use_keyring(null.Keyring())   # what conftest asks for, made certain even if an earlier test picked another

    def make(settings: Settings | None = None, **kw) -> SettingsDialog:
        d = SettingsDialog(settings or load_settings(), **kw)
        qtbot.addWidget(d)
        d.show()
        return d

    return make


def click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def nothing_on_disk_holds(text: str, folder: Path) -> bool:
    return not any(text.encode() in p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_saving_writes_the_model_id_and_threshold_and_no_key(qtbot, dialog):
    d = dialog()
    assert d.source_of("fal") == "not set" and d.source_of("runcomfy") == "not set"
    d.fal_model.setText("fal-ai/ltx-2.3/retake-video")
    d.cost_threshold.setValue(12.5)
    click(qtbot, d.save_button)
    assert d.result() == d.DialogCode.Accepted and d.error_text() == ""
    data = json.loads(settings_file().read_text())
    assert data == {"fal_model": "fal-ai/ltx-2.3/retake-video", "cost_threshold_usd": 12.5}, "only what changed"
    s = d.saved_settings()
    assert s.fal_model == "fal-ai/ltx-2.3/retake-video" and s.cost_threshold_usd == 12.5


def test_browse_and_clearing_fields_go_back_to_defaults(qtbot, dialog, tmp_path):
    save_settings({"runcomfy_model": "custom/model", "output_dir": "/old"})
    d = dialog(choose_folder=lambda parent, start: str(tmp_path))
    assert d.runcomfy_model.text() == "custom/model" and d.output_dir.text() == "/old"
    click(qtbot, d.browse_button)
    assert d.output_dir.text() == str(tmp_path)
    d.runcomfy_model.setText("")
    click(qtbot, d.save_button)
    assert json.loads(settings_file().read_text()) == {"output_dir": str(tmp_path)}
    assert d.saved_settings().runcomfy_model == Settings().runcomfy_model


def test_a_key_without_a_keyring_is_refused_in_red_and_written_nowhere(qtbot, dialog):
    d = dialog()
    key = "typed-fal-key-0a1b2c3d4e5f"
    qtbot.keyClicks(d.key_edits["fal"], key)
    d.fal_model.setText("fal-ai/other")
    click(qtbot, d.save_button)
    error = d.error_text()
    assert "no keyring to keep it in" in error and "FAL_KEY" in error and key not in error
    assert "color: #c62828" in d.error_label.styleSheet() and d.error_label.isVisible()
    assert d.isVisible() and d.result() != d.DialogCode.Accepted, "the dialog stays open to say so"
    assert json.loads(settings_file().read_text()) == {"fal_model": "fal-ai/other"}, "the other settings still save"
    assert nothing_on_disk_holds(key, settings_file().parent)
    assert d.source_of("fal") == "not set" and key not in d.source_of("fal")
    assert d.saved_settings().fal_key is None


def test_a_key_goes_to_the_keyring_and_the_label_says_so(qtbot, dialog, use_keyring):
    d = dialog()
    ring = use_keyring(MemoryKeyring())
    key = "typed-rc-token-9z8y7x6w5v"
    qtbot.keyClicks(d.key_edits["runcomfy"], key)
    click(qtbot, d.save_button)
    assert d.error_text() == "" and d.result() == d.DialogCode.Accepted
    assert ring.entries == {(KEYRING_SERVICE, "runcomfy"): key}
    assert d.source_of("runcomfy") == "in the OS keyring" and d.key_edits["runcomfy"].text() == ""
    assert nothing_on_disk_holds(key, settings_file().parent)
    assert d.saved_settings().runcomfy_token.reveal() == key


def test_the_source_label_names_the_environment_or_the_settings_file(qtbot, dialog, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "env-fal-key-5566778899")
    settings_file().write_text(json.dumps({"runcomfy_token": "file-rc-token-1122334455"}))
    d = dialog()
    assert d.source_of("fal") == "from the environment (FAL_KEY)"
    assert d.source_of("runcomfy") == "in the settings file"
    shown = " ".join(label.text() for label in d.findChildren(type(d.error_label)))
    assert "env-fal-key" not in shown and "file-rc-token" not in shown
    assert all(edit.text() == "" for edit in d.key_edits.values()), "a stored key is never put in the field"


def test_a_refused_setting_is_a_sentence_in_the_dialog(qtbot, dialog):
    d = dialog()
    settings_file().write_text("{broken")
    d.fal_model.setText("fal-ai/other")
    click(qtbot, d.save_button)
    assert "is not valid JSON" in d.error_text() and "Traceback" not in d.error_text()
    assert settings_file().read_text() == "{broken"
