"""Settings: defaults, the settings file, the environment on top; keys are Secrets that never show themselves."""

from __future__ import annotations

import json

import pytest

from ltx_retake.errors import InputError, redact
from ltx_retake.settings import Secret, load_settings


def test_environment_overrides_the_file_which_overrides_defaults(tmp_path):
    file = tmp_path / "settings.json"
    file.write_text(json.dumps({"fal_model": "fal-ai/ltx-2.3/retake-video", "runcomfy_url": "https://rc.example"}))
    s = load_settings(file, env={"LTX_RETAKE_RUNCOMFY_URL": "https://other.example"})
    assert s.fal_model == "fal-ai/ltx-2.3/retake-video"
    assert s.runcomfy_url == "https://other.example"
    assert s.fal_queue_url == "https://queue.fal.run" and s.fal_key is None


def test_keys_come_from_the_environment_and_never_show(tmp_path):
    s = load_settings(tmp_path / "absent.json", env={"FAL_KEY_ID": "id-123456", "FAL_KEY_SECRET": "sec-abcdef", "RUNCOMFY_TOKEN": "tok-998877"})
    assert s.fal_key.reveal() == "id-123456:sec-abcdef" and s.runcomfy_token.reveal() == "tok-998877"
    shown = repr(s) + str(s.fal_key) + f"{s.runcomfy_token}"
    assert "sec-abcdef" not in shown and "tok-998877" not in shown
    assert redact("server said: bad key tok-998877") == "server said: bad key ***"
    assert redact("unknown key secret sec-abcdef") == "unknown key secret ***"  # one half of a split key
    assert isinstance(s.fal_key, Secret)


@pytest.mark.parametrize("content,message", [("{not json", "not valid JSON"), ('{"fal_modle": "x"}', "unknown keys")])
def test_a_broken_settings_file_is_named(tmp_path, content, message):
    file = tmp_path / "settings.json"
    file.write_text(content)
    with pytest.raises(InputError, match=message):
        load_settings(file, env={})
