"""Untrusted input: names that try to leave their folder, plain-http service addresses, oversized results, keyless uploads."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from ltx_retake.adapters.hosting import LoopbackUpload, unique_name
from ltx_retake.adapters.local_service import LocalServiceConfig
from ltx_retake.adapters.services import open_service
from ltx_retake.errors import AuthError, InputError, ServiceError
from ltx_retake.paths import safe_file_name, safe_stem
from ltx_retake.settings import Secret, Settings, load_settings
from service_fixtures import http, running_service  # noqa: F401 - fixtures

KEY = "local-upload-key-5b1e0c9d"
HOSTILE = [
    "../../../../etc/passwd",
    "..\\..\\Windows\\win.ini",
    "/abs/path.mp4",
    "..",
    ".",
    ".bashrc",
    "a\x00b.mp4",
    "tab\there\nnewline\x1b[31m.mp4",
    "CON",
    "nul.mp4",
    "Com1.txt",
    "lpt9",
    "x" * 1000 + ".mp4",
    "%2e%2e%2fescape.mp4",
    "é/../../ü.mov",
    "",
]


# -- one sanitiser for every name from outside -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_stays_one_plain_file_name_in_its_folder(tmp_path, name):
    safe = safe_file_name(name)
    assert safe and len(safe) <= 120
    assert not set(safe) & set("/\\\x00:*?\"<>|") and all(32 < ord(c) < 127 for c in safe)
    assert not safe.startswith(".") and safe not in (".", "..")
    assert safe.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                                              *(f"LPT{i}" for i in range(10))}
    target = (tmp_path / safe).resolve()
    assert target.parent == tmp_path.resolve()
    target.write_bytes(b"ok")                          # it really is a usable file name here
    assert [p.name for p in tmp_path.iterdir()] == [safe]


def test_ordinary_names_pass_unchanged_and_a_long_one_keeps_its_extension():
    assert safe_file_name("shot010_retake_v003.mov") == "shot010_retake_v003.mov"
    assert safe_file_name("x" * 300 + ".mp4").endswith(".mp4") and len(safe_file_name("x" * 300 + ".mp4")) == 120
    assert safe_stem("sc01 sh010") == "sc01_sh010" and safe_stem("...") == "clip" and safe_stem("CON") == "_CON"
    assert unique_name(Path("../a b/CON.MOV")).startswith("_CON-") and unique_name(Path("x.MOV")).endswith(".mov")


def test_the_local_service_keeps_hostile_upload_names_inside_its_storage(http, tmp_path):
    storage = tmp_path / "storage"
    with running_service(storage_dir=storage) as service:
        plain = http.post(f"{service.base_url}/upload", content=b"plain",
                          headers={"X-File-Name": "..%2F..%2F..%2Fescape-plain.mp4"})
        token = http.post(f"{service.base_url}/storage/auth/token", json={}).json()
        cdn = http.post(f"{token['base_url']}/files/upload", content=b"cdn",
                        headers={"Authorization": f"Bearer {token['token']}", "X-Fal-File-Name": "../../escape-cdn.mp4"})
        dotted = http.post(f"{service.base_url}/upload", content=b"dots", headers={"X-File-Name": ".."})
        assert plain.status_code == cdn.status_code == dotted.status_code == 200
        urls = [plain.json()["url"], cdn.json()["access_url"], dotted.json()["url"]]
        assert [http.get(u).content for u in urls] == [b"plain", b"cdn", b"dots"]
    assert urls[0].endswith("/escape-plain.mp4") and urls[1].endswith("/escape-cdn.mp4")
    assert urls[2].endswith("/upload.bin")
    assert sorted(p.name for p in tmp_path.rglob("escape*")) == ["escape-cdn.mp4", "escape-plain.mp4"]
    assert all(storage.resolve() in p.resolve().parents for p in tmp_path.rglob("escape*"))


# -- the local service's uploads need its key when it has one ------------------------------------------------------------

def test_plain_upload_and_put_need_the_key_when_one_is_required(http, tmp_path):
    blob = tmp_path / "cut.mp4"
    blob.write_bytes(os.urandom(20_000))
    with running_service(require_key=KEY) as service:
        base = service.base_url
        bare = http.post(f"{base}/upload", content=b"x", headers={"X-File-Name": "a.mp4"})
        wrong = http.post(f"{base}/upload", content=b"x", headers={"Authorization": "Bearer wrong-key-0000000"})
        put_bare = http.put(f"{base}/files/incoming/a.mp4", content=b"x")
        put_key = http.put(f"{base}/files/incoming/b.mp4", content=b"y", headers={"Authorization": f"Key {KEY}"})
        assert (bare.status_code, wrong.status_code, put_bare.status_code, put_key.status_code) == (401, 401, 401, 201)
        assert "wrong-key-0000000" not in wrong.text, "the service does not echo what it was given here"
        assert http.get(f"{base}/files/incoming/a.mp4").status_code == 404, "a refused PUT stores nothing"
        assert http.get(f"{base}/files/incoming/b.mp4").content == b"y"
        with pytest.raises(AuthError) as caught:
            LoopbackUpload(http, base).upload(blob, "video/mp4")
        assert "require_key" in str(caught.value)
        url = LoopbackUpload(http, base, key=Secret(KEY)).upload(blob, "video/mp4")
        assert http.get(url).content == blob.read_bytes()


@pytest.mark.parametrize("protocol", ["fal", "runcomfy"])
def test_open_service_hands_a_keyed_local_service_its_key(tmp_path, protocol):
    blob = tmp_path / "cut.mp4"
    blob.write_bytes(os.urandom(20_000))
    with open_service("local", Settings(), local_protocol=protocol,
                      local_config=LocalServiceConfig(require_key=KEY)) as opened:
        url = opened.host.upload(blob, "video/mp4")
        opened.service.download(url, tmp_path / "back.mp4")
    assert (tmp_path / "back.mp4").read_bytes() == blob.read_bytes()


# -- remote services over https only; plain http only to this machine ----------------------------------------------------

@pytest.mark.parametrize("provider, overrides, setting", [
    ("fal", {"fal_queue_url": "http://queue.fal.run"}, "fal_queue_url"),
    ("fal", {"fal_rest_url": "http://rest.fal.ai"}, "fal_rest_url"),
    ("fal", {"fal_queue_url": "http://192.168.1.20:8765"}, "fal_queue_url"),
    ("fal", {"fal_queue_url": "ftp://queue.fal.run"}, "fal_queue_url"),
    ("runcomfy", {"runcomfy_url": "http://model-api.runcomfy.net"}, "runcomfy_url"),
    ("runcomfy", {"fal_key": None, "file_host_url": "http://files.example.com/put?sig=s3cr3t-sig"}, "file_host_url"),
    ("runcomfy", {"fal_rest_url": "http://rest.fal.ai"}, "fal_rest_url"),
])
def test_a_plain_http_address_for_a_remote_service_is_refused(provider, overrides, setting):
    keys = {"fal_key": Secret("fal-key-for-https-test-1"), "runcomfy_token": Secret("rc-token-for-https-1")}
    settings = Settings(**{**keys, **overrides})
    with pytest.raises(InputError) as caught:
        with open_service(provider, settings):
            pass
    message = str(caught.value)
    assert setting in message and f"LTX_RETAKE_{setting.upper()}" in message and "https" in message
    assert "s3cr3t-sig" not in message, "the address is named by its host, never with its query"


@pytest.mark.parametrize("base", ["http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765",
                                  "https://queue.example.com"])
def test_https_or_loopback_addresses_are_accepted(base):
    settings = Settings(fal_key=Secret("fal-key-for-https-test-1"), runcomfy_token=Secret("rc-token-for-https-1"),
                        fal_queue_url=base, fal_rest_url=base, runcomfy_url=base)
    for provider in ("fal", "runcomfy"):
        with open_service(provider, settings) as opened:
            assert opened.base_url == base


# -- the max_download_mb setting ---------------------------------------------------------------------------------------

def test_max_download_mb_is_honoured_over_real_http(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1536 * 1024))               # 1.5 MiB
    capped = load_settings(tmp_path / "absent.json", env={"LTX_RETAKE_MAX_DOWNLOAD_MB": "1"})
    assert capped.max_download_mb == 1
    for protocol in ("fal", "runcomfy"):
        with open_service("local", capped, local_protocol=protocol) as opened:
            url = opened.host.upload(big, "application/octet-stream")
            with pytest.raises(ServiceError) as caught:
                opened.service.download(url, tmp_path / "out" / "big.bin")
        assert "limit" in str(caught.value)
        assert not list((tmp_path / "out").glob("*")), "nothing is left of a refused download"
    with open_service("local", Settings(max_download_mb=2)) as opened:
        url = opened.host.upload(big, "application/octet-stream")
        assert opened.service.download(url, tmp_path / "ok.bin").read_bytes() == big.read_bytes()


@pytest.mark.parametrize("value", [0, -5])
def test_a_download_cap_below_one_megabyte_is_refused(value):
    with pytest.raises(InputError, match="max_download_mb"):
        with open_service("local", Settings(max_download_mb=value)):
            pass


def test_the_download_a_run_uses_refuses_plain_http_to_another_machine(tmp_path):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        with open_service("fal", Settings(fal_key=Secret("fal-key-for-https-test-1")), http=client) as opened:
            with pytest.raises(ServiceError, match="plain http"):
                opened.service.download("http://cdn.example.com/a.mp4", tmp_path / "never.mp4")
    assert not seen and list(tmp_path.iterdir()) == []
