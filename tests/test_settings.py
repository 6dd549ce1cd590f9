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


# -- the OS keyring: after the environment, before the settings file ---------------------------------------------------

keyring = pytest.importorskip("keyring")
from keyring.backends import fail, null  # noqa: E402

from ltx_retake.settings import KEYRING_SERVICE, keyring_keys, save_key  # noqa: E402

from keyring_fixtures import MemoryKeyring, use_keyring  # noqa: E402,F401 - a fixture


class BrokenKeyring(MemoryKeyring):
    """A backend that fails the way a locked or crashed keyring does."""

    def get_password(self, service, username):
        raise keyring.errors.KeyringLocked("the keyring is locked")

    def set_password(self, service, username, password):
        raise keyring.errors.PasswordSetError(f"refused to store {password}")


class StuckKeyring(MemoryKeyring):
    """A backend that waits, like an unlock prompt nobody answers, until the test lets it go."""

    def __init__(self):
        super().__init__()
        import threading

        self.release = threading.Event()

    def get_password(self, service, username):
        self.release.wait(30)
        return "stuck-key-0123456789"


def _file_with_keys(tmp_path):
    file = tmp_path / "settings.json"
    file.write_text(json.dumps({"fal_key": "file-fal-key-111111", "runcomfy_token": "file-rc-token-222222"}))
    return file


def test_keys_come_from_the_keyring_when_the_environment_has_none(tmp_path, use_keyring):
    use_keyring(MemoryKeyring({(KEYRING_SERVICE, "fal"): "ring-fal-key-333333",
                               (KEYRING_SERVICE, "runcomfy"): "ring-rc-token-444444"}))
    s = load_settings(_file_with_keys(tmp_path), env={})
    assert s.fal_key.reveal() == "ring-fal-key-333333" and s.runcomfy_token.reveal() == "ring-rc-token-444444"
    assert "ring-fal-key-333333" not in repr(s)


def test_the_environment_comes_first_and_the_settings_file_last(tmp_path, use_keyring):
    ring = use_keyring(MemoryKeyring({(KEYRING_SERVICE, "fal"): "ring-fal-key-333333"}))
    file = _file_with_keys(tmp_path)
    s = load_settings(file, env={"FAL_KEY_ID": "env-id-555555", "FAL_KEY_SECRET": "env-secret-666666"})
    assert s.fal_key.reveal() == "env-id-555555:env-secret-666666", "the environment beats the keyring"
    assert s.runcomfy_token.reveal() == "file-rc-token-222222", "nothing in the keyring: the file is the last resort"
    assert ring.asked == [(KEYRING_SERVICE, "runcomfy")], "the keyring is asked only for what the environment lacks"
    s = load_settings(file, env={})
    assert s.fal_key.reveal() == "ring-fal-key-333333", "the keyring beats the file"


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring, BrokenKeyring], ids=["fail", "null", "locked"])
def test_no_usable_keyring_falls_back_quietly(tmp_path, use_keyring, backend):
    use_keyring(backend())
    s = load_settings(_file_with_keys(tmp_path), env={})
    assert s.fal_key.reveal() == "file-fal-key-111111" and s.runcomfy_token.reveal() == "file-rc-token-222222"
    assert load_settings(tmp_path / "absent.json", env={}).fal_key is None


def test_a_keyring_that_does_not_answer_is_not_waited_for(use_keyring):
    import time

    stuck = use_keyring(StuckKeyring())
    try:
        started = time.monotonic()
        assert keyring_keys(["fal", "runcomfy"], timeout=0.1) == {}
        assert time.monotonic() - started < 2
    finally:
        stuck.release.set()


def test_save_key_stores_it_where_the_settings_find_it(tmp_path, use_keyring):
    ring = use_keyring(MemoryKeyring())
    save_key("fal", "  saved-id-777777:saved-secret-888888\n")
    assert ring.entries == {(KEYRING_SERVICE, "fal"): "saved-id-777777:saved-secret-888888"}
    assert load_settings(tmp_path / "absent.json", env={}).fal_key.reveal() == "saved-id-777777:saved-secret-888888"
    assert redact("bad secret saved-secret-888888") == "bad secret ***", "each half of a stored <id>:<secret> is hidden"


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring, BrokenKeyring], ids=["fail", "null", "refusing"])
def test_save_key_without_a_keyring_says_to_use_the_environment(use_keyring, backend):
    use_keyring(backend())
    with pytest.raises(InputError) as caught:
        save_key("runcomfy", "rc-token-to-keep-999999")
    assert "RUNCOMFY_TOKEN" in str(caught.value) and "rc-token-to-keep-999999" not in str(caught.value)


def test_save_key_refuses_an_unknown_service_or_an_empty_key(use_keyring):
    use_keyring(MemoryKeyring())
    with pytest.raises(InputError, match="fal and runcomfy"):
        save_key("s3", "whatever-123456")
    with pytest.raises(InputError, match="empty"):
        save_key("fal", "   ")
