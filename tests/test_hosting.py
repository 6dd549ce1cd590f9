"""File hosts: the local service's upload endpoint, and an upload URL the user supplies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from ltx_retake.adapters.hosting import LoopbackUpload, UserUrlHost, unique_name
from ltx_retake.errors import ServiceError, TransientServiceError
from ltx_retake.ports import FileHost
from service_fixtures import Fault, RecordingSleep, http, running_service  # noqa: F401 - fixtures


@pytest.fixture
def blob(tmp_path):
    path = tmp_path / "shot 010 (cut).mp4"
    path.write_bytes(os.urandom(150_000))
    return path


def test_loopback_upload_streams_the_file_and_returns_a_fetchable_url(http, blob):
    progress = []
    with running_service() as service:
        host = LoopbackUpload(http, service.base_url)
        assert isinstance(host, FileHost)
        url = host.upload(blob, "video/mp4", progress.append)
        fetched = http.get(url).content
    assert url.startswith(f"{service.base_url}/files/") and url.endswith(".mp4")
    assert fetched == blob.read_bytes()
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_loopback_upload_retries_a_503(http, blob):
    with running_service(faults=[Fault("upload", "503", retry_after=0)]) as service:
        url = LoopbackUpload(http, service.base_url, sleep=RecordingSleep()).upload(blob, "video/mp4")
        assert http.get(url).content == blob.read_bytes()
        assert [r["status"] for r in service.requests_to("upload")] == [503, 200]


def test_a_user_put_endpoint_gets_a_unique_name_and_forms_the_url(http, blob):
    with running_service() as service:
        host = UserUrlHost(http, f"{service.base_url}/files/incoming")
        url = host.upload(blob, "video/mp4")
        fetched = http.get(url)
    assert url.startswith(f"{service.base_url}/files/incoming/shot_010_cut-") and url.endswith(".mp4")
    assert fetched.content == blob.read_bytes()


def test_a_name_placeholder_and_a_signed_query_stay_out_of_the_public_url(http, blob):
    with running_service() as service:
        host = UserUrlHost(http, f"{service.base_url}/files/{{name}}?signature=abc", name_for=lambda p: "fixed.mp4")
        url = host.upload(blob, "video/mp4")
        public = UserUrlHost(http, f"{service.base_url}/files/x", public_base="https://cdn.example.com/media",
                             name_for=lambda p: "clip.mp4").upload(blob, "video/mp4")
        assert http.get(url).content == blob.read_bytes()
    assert url == f"{service.base_url}/files/fixed.mp4"
    assert public == "https://cdn.example.com/media/clip.mp4"


@pytest.mark.parametrize("answer, expected", [
    (json.dumps({"url": "https://files.example.com/a.mp4"}), "https://files.example.com/a.mp4"),
    (json.dumps({"file_url": "https://files.example.com/b.mp4"}), "https://files.example.com/b.mp4"),
    ("https://transfer.example.com/xyz/a.mp4\n", "https://transfer.example.com/xyz/a.mp4"),
    ("", "https://up.example.com/put/a.mp4"),
    ("Created", "https://up.example.com/put/a.mp4"),
])
def test_a_url_in_the_answer_wins(blob, answer, expected):
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["method"], seen["url"] = request.method, str(request.url)
        seen["body"] = request.read()
        return httpx.Response(201, text=answer)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        url = UserUrlHost(client, "https://up.example.com/put", name_for=lambda p: "a.mp4").upload(blob, "video/mp4")
    assert url == expected
    assert seen["method"] == "PUT" and seen["url"] == "https://up.example.com/put/a.mp4"
    assert seen["body"] == blob.read_bytes()


def test_a_refusing_host_is_a_clear_error(blob):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="Forbidden")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ServiceError) as caught:
            UserUrlHost(client, "https://up.example.com/put").upload(blob, "video/mp4")
    assert "file host" in str(caught.value) and "file_host_url" in str(caught.value)


def test_an_unreachable_host_is_transient(blob):
    with httpx.Client(timeout=1.0) as client:
        host = UserUrlHost(client, "http://127.0.0.1:9/put", sleep=RecordingSleep(cap=0))
        with pytest.raises(TransientServiceError):
            host.upload(blob, "video/mp4")


def test_only_http_urls_are_accepted(http):
    with pytest.raises(ServiceError):
        UserUrlHost(http, "file:///tmp/x")
    with pytest.raises(ServiceError):
        UserUrlHost(http, "https://ok.example.com/", public_base="ftp://nope")
    assert unique_name(Path("a b/ç.MOV")).endswith(".mov")
