"""FalClient and FalStorage against the local service over real HTTP: the happy path, faults, and errors."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from itertools import groupby
from pathlib import Path

import av
import httpx
import pytest

from ltx_retake.adapters.fal import FalClient, FalStorage
from ltx_retake.errors import (
    AuthError,
    BalanceError,
    ContentRefusedError,
    JobFailedError,
    ServiceError,
    ServiceValidationError,
    SubmitUncertainError,
    TransientServiceError,
)
from ltx_retake.ports import RetakeMode, RetakeRequest, RetakeService, FileHost
from ltx_retake.settings import Secret
from service_fixtures import (  # noqa: F401 - fixtures
    Fault,
    RecordingSleep,
    clip97,
    http,
    probe,
    read_bar_indices,
    running_service,
    tiny_clip,
)

MODEL = "fal-ai/ltx-2/retake-video"
KEY = "fal-test-key-0123456789abcdef"


def _client(http, service, *, key: str | None = None, sleep=None, **kw) -> FalClient:
    return FalClient(http, Secret(key) if key else None, service.base_url, MODEL, sleep=sleep or RecordingSleep(),
                     poll_initial=0.02, poll_max=0.1, **kw)


def _request(url: str, prompt: str = "a red kite", mode=RetakeMode.REPLACE_VIDEO) -> RetakeRequest:
    return RetakeRequest(video_url=url, prompt=prompt, start_time=0.5, duration=2.0, mode=mode)


@pytest.fixture(scope="module")
def shared():
    """One service, one finished job, for the tests that only need a result to fetch."""
    with running_service() as service:
        yield service


@pytest.fixture
def finished(shared, tiny_clip, http):
    """(service, client, job, result) of a completed retake on the shared service."""
    if not hasattr(shared, "_finished"):
        url = FalStorage(http, None, shared.base_url).upload(tiny_clip, "video/mp4")
        client = _client(http, shared)
        job = client.submit(_request(url))
        client.follow(job, lambda s: None)
        shared._finished = (job, client.result(job))
    yield (shared, _client(http, shared), *shared._finished)
    assert not [f for f in shared.state.faults if f.times], "a test left a fault unconsumed"


def test_submit_follow_result_download_end_to_end(http, clip97, tmp_path):
    statuses = []
    sent, received = [], []
    with running_service(queue_delay=0.15, processing_delay=0.1) as service:
        storage = FalStorage(http, Secret(KEY), service.base_url)
        client = _client(http, service, key=KEY)
        assert isinstance(client, RetakeService) and isinstance(storage, FileHost)
        url = storage.upload(clip97, "video/mp4", sent.append)
        job = client.submit(_request(url))
        client.follow(job, statuses.append)
        result = client.result(job)
        out = client.download(result.url, tmp_path / "takes" / "take.mp4", received.append)
        stream_requests = service.requests_to("stream")
        polls = service.requests_to("status")
        assert service.submits == {"fal": 1, "runcomfy": 0}
    for progress in (sent, received):
        assert progress == sorted(progress) and progress[-1] == 1.0
    assert [state for state, _ in groupby(s.state for s in statuses)] == ["queued", "generating", "completed"]
    assert statuses[0].queue_position == 0
    logs = [line for s in statuses for line in s.logs]
    assert len(logs) == len(set(logs)) and any("preview" in line for line in logs)
    assert len(stream_requests) == 1 and not polls, "followed by the stream, no polling needed"
    assert job.status_url.endswith(f"/fal-ai/ltx-2/requests/{job.request_id}/status")
    assert (result.width, result.height, result.num_frames, result.fps) == (1920, 1080, 97, 24.0)
    p = probe(out)
    assert (p.width, p.height, p.frames, p.rate) == (1920, 1080, 97, Fraction(24))
    assert read_bar_indices(out) == list(range(97))
    assert sorted(os.listdir(out.parent)) == ["take.mp4"], "no temp files left beside the download"


def test_a_dropped_stream_falls_back_to_polling(http, tiny_clip):
    statuses = []
    with running_service(queue_delay=0.2, faults=[Fault("stream", "drop")]) as service:
        url = FalStorage(http, None, service.base_url).upload(tiny_clip, "video/mp4")
        client = _client(http, service)
        job = client.submit(_request(url))
        client.follow(job, statuses.append)
        polls = service.requests_to("status")
        streams = service.requests_to("stream")
    assert streams[0]["fault"] == "drop"
    assert polls, "polling took over"
    assert statuses[0].state == "queued" and statuses[-1].state == "completed"
    assert [s.state for s in statuses].count("completed") == 1


def test_no_stream_on_the_server_means_polling_with_growing_intervals(http, tiny_clip):
    sleep = RecordingSleep()
    with running_service(queue_delay=0.3, faults=[Fault("stream", "404")]) as service:
        url = FalStorage(http, None, service.base_url).upload(tiny_clip, "video/mp4")
        client = FalClient(http, None, service.base_url, MODEL, sleep=sleep, poll_initial=0.01, poll_max=0.04)
        job = client.submit(_request(url))
        states = []
        client.follow(job, lambda s: states.append(s.state))
    assert states[-1] == "completed"
    assert sleep.calls[:3] == [0.01, 0.015, 0.0225] and max(sleep.calls) == 0.04


def test_429_with_retry_after_on_status_is_retried_after_the_asked_delay(http, tiny_clip):
    sleep = RecordingSleep()
    with running_service(faults=[Fault("status", "429", times=2, retry_after=7)]) as service:
        url = FalStorage(http, None, service.base_url).upload(tiny_clip, "video/mp4")
        client = _client(http, service, sleep=sleep, use_stream=False)
        job = client.submit(_request(url))
        client.follow(job, lambda s: None)
        codes = [r["status"] for r in service.requests_to("status")]
    assert codes[:3] == [429, 429, codes[2]] and codes[2] in (200, 202)
    assert sleep.calls[:2] == [7.0, 7.0]


def test_500_on_submit_is_a_clear_error_and_is_not_resent(http):
    with running_service(faults=[Fault("submit", "500")]) as service:
        with pytest.raises(TransientServiceError) as caught:
            _client(http, service).submit(_request("http://example.invalid/a.mp4"))
        assert service.submits["fal"] == 1 and service.state.jobs_created["fal"] == 0
    assert "HTTP 500" in str(caught.value) and "Try again" in str(caught.value)


def test_a_read_timeout_after_the_submit_is_uncertain_and_never_resent(tiny_clip):
    with running_service(faults=[Fault("submit", "slow", delay=0.6)]) as service:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=0.15)) as impatient:
            client = _client(impatient, service)
            with pytest.raises(SubmitUncertainError) as caught:
                client.submit(_request("http://example.invalid/a.mp4"))
        assert service.submits["fal"] == 1
        assert service.state.jobs_created["fal"] == 1, "the server did take the job: that is why it is not resent"
    message = str(caught.value)
    assert "fal dashboard" in message and "not sent again" in message


def test_a_dropped_connection_after_the_submit_is_uncertain(http):
    with running_service(faults=[Fault("submit", "drop")]) as service:
        with pytest.raises(SubmitUncertainError):
            _client(http, service).submit(_request("http://example.invalid/a.mp4"))
        assert service.submits["fal"] == 1


def test_429_on_submit_is_safe_to_resend(http):
    sleep = RecordingSleep()
    with running_service(faults=[Fault("submit", "429", retry_after=2)], queue_delay=5) as service:
        job = _client(http, service, sleep=sleep).submit(_request("http://example.invalid/a.mp4"))
        assert service.submits["fal"] == 2 and service.state.jobs_created["fal"] == 1
    assert job.request_id and sleep.calls == [2.0]


def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(http):
    wrong = "fal-wrong-key-9876543210fedcba"
    with running_service(require_key=KEY) as service:
        with pytest.raises(AuthError) as caught:
            _client(http, service, key=wrong).submit(_request("http://example.invalid/a.mp4"))
        with pytest.raises(AuthError) as no_key:
            _client(http, service).submit(_request("http://example.invalid/a.mp4"))
        with pytest.raises(AuthError) as storage:
            FalStorage(http, Secret(wrong), service.base_url).upload(Path(__file__), "text/plain")
    for error in (caught.value, no_key.value, storage.value):
        assert "FAL_KEY" in str(error) and wrong not in str(error) and KEY not in str(error)
    assert "Invalid key" in str(caught.value), "the service's own words are quoted (it no longer echoes the key: the "\
                                               "hostile service tests cover an echo)"


def test_no_balance_is_a_balance_error(http):
    with running_service(no_balance=True) as service:
        with pytest.raises(BalanceError) as caught:
            _client(http, service, key=KEY).submit(_request("http://example.invalid/a.mp4"))
    assert "Top up" in str(caught.value) and KEY not in str(caught.value)


def test_validation_errors_name_the_fields(http):
    with running_service() as service:
        with pytest.raises(ServiceValidationError) as caught:
            _client(http, service).submit(RetakeRequest("http://example.invalid/a.mp4", "x", 0.0, 1.0,
                                                        RetakeMode.REPLACE_VIDEO))
        assert service.state.jobs_created["fal"] == 0
    assert "duration: Ensure this value is greater than or equal to 2" in str(caught.value)


def test_a_refused_prompt_and_a_failed_job_keep_the_request_id(http):
    with running_service() as service:
        client = _client(http, service)
        refused = client.submit(_request("http://example.invalid/a.mp4", prompt="[refuse] this"))
        with pytest.raises(ContentRefusedError) as caught:
            client.follow(refused, lambda s: None)
        with pytest.raises(ContentRefusedError):
            client.result(refused)
        failed = client.submit(_request("http://example.invalid/a.mp4", prompt="[fail] this"))
        with pytest.raises(JobFailedError) as failure:
            client.follow(failed, lambda s: None)
    assert caught.value.request_id == refused.request_id
    assert failure.value.request_id == failed.request_id and failed.request_id in str(failure.value)


def test_cancel_a_queued_job(http):
    with running_service(queue_delay=5) as service:
        client = _client(http, service)
        job = client.submit(_request("http://example.invalid/a.mp4"))
        assert client.cancel(job) == "CANCELLATION_REQUESTED"
        assert client.cancel(job) == "ALREADY_COMPLETED"
        with pytest.raises(JobFailedError):
            client.follow(job, lambda s: None)


def test_unknown_model_says_to_check_the_setting(http):
    with running_service() as service:
        client = FalClient(http, None, service.base_url, "nobody", sleep=RecordingSleep())
        with pytest.raises(ServiceError) as caught:
            client.submit(_request("http://example.invalid/a.mp4"))
    assert "fal_model" in str(caught.value)


def test_download_resumes_after_a_dropped_connection(finished, http, tmp_path):
    service, client, job, result = finished
    original = http.get(result.url).content
    service.add_fault(Fault("download", "drop"))
    out = client.download(result.url, tmp_path / "take.mp4")
    downloads = service.requests_to("download")[-2:]
    assert out.read_bytes() == original
    assert downloads[0]["fault"] == "drop" and downloads[1]["status"] == 206


def test_an_expired_result_url_is_a_clear_error_and_leaves_nothing(finished, tmp_path):
    service, client, job, result = finished
    service.add_fault(Fault("download", "expired"))
    with pytest.raises(ServiceError) as caught:
        client.download(result.url, tmp_path / "take.mp4")
    assert "expired" in str(caught.value) and caught.value.status_code == 410
    assert list(tmp_path.iterdir()) == []



def test_a_failed_download_names_the_request_its_result_came_from(finished, tmp_path):
    """The runner keeps the request id, but the error the editor reads must name it too (found by the soak)."""
    service, client, job, result = finished
    assert client.result(job).url == result.url
    service.add_fault(Fault("download", "expired"))
    with pytest.raises(ServiceError) as caught:
        client.download(result.url, tmp_path / "take.mp4")
    assert f"(request id {job.request_id})" in str(caught.value) and caught.value.request_id == job.request_id


def test_an_expired_request_is_a_clear_error(finished):
    service, client, job, result = finished
    service.add_fault(Fault("result", "expired"))
    with pytest.raises(ServiceError) as caught:
        client.result(job)
    assert "expired" in str(caught.value) and caught.value.request_id == job.request_id


def test_a_corrupt_result_downloads_but_does_not_decode(finished, tmp_path):
    service, client, job, result = finished
    service.add_fault(Fault("download", "corrupt"))
    out = client.download(result.url, tmp_path / "take.mp4")
    with pytest.raises(av.FFmpegError):
        with av.open(str(out)) as container:
            next(container.decode(video=0))


def test_a_result_that_is_not_json_is_fetched_again_then_is_a_clear_error(finished):
    """A 200 whose JSON is cut short is fetched again (found by the soak: the job failed on one bad answer)."""
    service, client, job, result = finished
    service.add_fault(Fault("result", "corrupt"))
    assert client.result(job).url == result.url
    service.add_fault(Fault("result", "corrupt", times=3))
    with pytest.raises(ServiceError, match="not JSON in 3 tries") as caught:
        client.result(job)
    assert job.request_id in str(caught.value) and caught.value.request_id == job.request_id


def test_a_result_answered_500_then_200_is_retried(finished):
    service, client, job, result = finished
    service.add_fault(Fault("result", "502", times=2))
    assert client.result(job).url == result.url


def test_multipart_upload_reassembles_the_same_bytes(http, tmp_path):
    data = os.urandom(300_000)
    source = tmp_path / "big.mov"
    source.write_bytes(data)
    progress = []
    with running_service() as service:
        storage = FalStorage(http, None, service.base_url, multipart_threshold=100_000, part_size=64 * 1024)
        url = storage.upload(source, "video/quicktime", progress.append)
        parts = [r for r in service.requests_to("upload") if "/multipart/" in r["path"]]
        fetched = http.get(url).content
        tokens = service.requests_to("token")
    assert fetched == data
    assert len([p for p in parts if p["method"] == "PUT"]) == 5 and parts[-1]["path"].endswith("/complete")
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 5
    assert len(tokens) == 1


def test_a_failed_part_is_sent_again(http, tmp_path):
    data = os.urandom(200_000)
    (tmp_path / "big.mp4").write_bytes(data)
    with running_service(faults=[Fault("upload", "503")]) as service:
        storage = FalStorage(http, None, service.base_url, multipart_threshold=0, part_size=80_000,
                             sleep=RecordingSleep())
        url = storage.upload(tmp_path / "big.mp4", "video/mp4")
        assert http.get(url).content == data


def test_a_part_cut_off_mid_body_is_streamed_again_from_its_start(http, tmp_path):
    data = os.urandom(200_000)
    (tmp_path / "big.mp4").write_bytes(data)
    # the first rule lets the multipart start through unharmed; the second cuts part 1 off after 30,000 bytes
    faults = [Fault("upload", "slow", delay=0.0), Fault("upload", "drop", after_bytes=30_000)]
    with running_service(faults=faults) as service:
        storage = FalStorage(http, None, service.base_url, multipart_threshold=0, part_size=80_000,
                             sleep=RecordingSleep())
        url = storage.upload(tmp_path / "big.mp4", "video/mp4")
        puts = [r["path"].rsplit("/", 1)[-1] for r in service.requests_to("upload") if r["method"] == "PUT"]
        assert http.get(url).content == data
    assert puts == ["1", "1", "2", "3"]


def test_multipart_parts_are_streamed_with_their_length_not_chunked(tmp_path):
    data = os.urandom(250_000)
    (tmp_path / "big.mov").write_bytes(data)
    seen: list[tuple[str, str | None, str | None, bytes]] = []

    def storage_api(request: httpx.Request) -> httpx.Response:
        body = request.read()
        seen.append((request.url.path, request.headers.get("content-length"),
                     request.headers.get("transfer-encoding"), body))
        if request.url.path == "/storage/auth/token":
            return httpx.Response(200, json={"token": "t0k3n-for-the-wire-test", "token_type": "Bearer",
                                             "base_url": "http://127.0.0.1:9/cdn", "expires_at": 4_000_000_000})
        if request.url.path == "/cdn/files/upload/multipart":
            return httpx.Response(200, json={"access_url": "http://127.0.0.1:9/cdn/files/f1/big.mov", "uploadId": "u1"})
        if request.method == "PUT":
            return httpx.Response(200, headers={"ETag": f'"{request.url.path.rsplit("/", 1)[-1]}"'})
        return httpx.Response(200, json={"access_url": "http://127.0.0.1:9/cdn/files/f1/big.mov"})

    with httpx.Client(transport=httpx.MockTransport(storage_api)) as client:
        FalStorage(client, None, "http://127.0.0.1:9", multipart_threshold=100_000, part_size=100_000).upload(
            tmp_path / "big.mov", "video/quicktime")
    parts = [(length, chunked, body) for path, length, chunked, body in seen if "/multipart/u1/" in path
             and not path.endswith("/complete")]
    assert [(length, chunked) for length, chunked, _ in parts] == [("100000", None), ("100000", None), ("50000", None)]
    assert b"".join(body for _, _, body in parts) == data
    assert seen[-1][0].endswith("/complete")
    assert json.loads(seen[-1][3]) == {"parts": [{"partNumber": n, "etag": f'"{n}"'} for n in (1, 2, 3)]}


def test_the_storage_token_is_cached_until_it_expires(http, tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"a" * 1000)
    now = [1_000_000_000.0]
    with running_service() as service:
        storage = FalStorage(http, None, service.base_url, wall_clock=lambda: now[0])
        storage.upload(tmp_path / "a.mp4", "video/mp4")
        storage.upload(tmp_path / "a.mp4", "video/mp4")
        now[0] = 4_000_000_000.0            # long after the hour the token is good for
        storage.upload(tmp_path / "a.mp4", "video/mp4")
        tokens = service.requests_to("token")
    assert len(tokens) == 2


def test_a_cached_storage_token_that_is_refused_is_renewed_once(http, tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"a" * 1000)
    with running_service() as service:
        storage = FalStorage(http, None, service.base_url, sleep=RecordingSleep())
        storage.upload(tmp_path / "a.mp4", "video/mp4")
        service.add_fault(Fault("upload", "401"))
        url = storage.upload(tmp_path / "a.mp4", "video/mp4")
        assert http.get(url).content == b"a" * 1000
        assert len(service.requests_to("token")) == 2
