"""A keyring in memory and a fixture that installs one through keyring's own seam (and puts the previous one back)."""

from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    """A keyring in a dict: what the OS keyring would hold, without touching the machine's own."""

    priority = 1

    def __init__(self, entries: dict[tuple[str, str], str] | None = None):
        super().__init__()
        self.entries = dict(entries or {})
        self.asked: list[tuple[str, str]] = []

    def get_password(self, service, username):
        self.asked.append((service, username))
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        self.entries.pop((service, username), None)


@pytest.fixture
def use_keyring():
    """Install a backend through keyring's own seam, and put the previous one back afterwards."""
    previous = keyring.get_keyring()

    def install(backend):
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)
