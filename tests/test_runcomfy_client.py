"""RunComfyClient against the local service over real HTTP: submit once, poll, result, cancel, error codes."""

from __future__ import annotations

import time
from fractions import Fraction

import httpx
import pytest

from ltx_retake.adapters.hosting import LoopbackUpload
from ltx_retake.adapters.runcomfy import RunComfyClient
from ltx_retake.errors import (
    AuthError,
    BalanceError,
    JobFailedError,
    ServiceError,
    ServiceValidationError,
    SubmitUncertainError,
    TransientServiceError,
)
from ltx_retake.ports import RetakeMode, RetakeRequest, RetakeService, SubmittedJob
from ltx_retake.settings import Secret
from service_fixtures import (  # noqa: F401 - fixtures
    Fault,
    RecordingSleep,
    http,
    probe,
    read_bar_indices,
    running_service,
    tiny_clip,
)

MODEL = "ltx/ltx-2/retake-video"
TOKEN = "rc-test-token-0123456789abcdef"


def _client(http, service, *, token: str | None = None, sleep=None, **kw) -> RunComfyClient:
    return RunComfyClient(http, Secret(token) if token else None, service.base_url, MODEL,
                          sleep=sleep or RecordingSleep(), poll_initial=0.02, poll_max=0.1, **kw)


def _request(url: str = "http://example.invalid/a.mp4", prompt: str = "a red kite") -> RetakeRequest:
    return RetakeRequest(video_url=url, prompt=prompt, start_time=0.5, duration=2.0, mode=RetakeMode.REPLACE_VIDEO)


@pytest.mark.parametrize("videos_list", [False, True], ids=["video", "videos"])
def test_submit_poll_result_download_end_to_end(http, tiny_clip, tmp_path, videos_list):
    statuses = []
    sleep = RecordingSleep()
    with running_service(queue_delay=0.1, require_key=TOKEN, runcomfy_videos_list=videos_list) as service:
        url = LoopbackUpload(http, service.base_url, key=Secret(TOKEN)).upload(tiny_clip, "video/mp4")
        client = _client(http, service, token=TOKEN, sleep=sleep)
        assert isinstance(client, RetakeService)
        job = client.submit(_request(url))
        client.follow(job, statuses.append)
        result = client.result(job)
        out = client.download(result.url, tmp_path / "take.mp4")
        assert service.submits == {"fal": 0, "runcomfy": 1}
    assert job.status_url == f"{service.base_url}/v1/requests/{job.request_id}/status"
    assert [s.state for s in statuses] == ["queued", "generating", "completed"]
    assert result.extra["status"] == "succeeded"
    p = probe(out)
    assert (p.width, p.height, p.frames, p.rate) == (1920, 1080, 25, Fraction(24))
    assert read_bar_indices(out) == list(range(25))
    assert sleep.calls[:3] == [0.02, 0.03, pytest.approx(0.045)], "polls back off"



def test_a_failed_download_names_the_request_its_result_came_from(http, tiny_clip, tmp_path):
    with running_service() as service:
        url = LoopbackUpload(http, service.base_url).upload(tiny_clip, "video/mp4")
        client = _client(http, service)
        job = client.submit(_request(url))
        client.follow(job, lambda status: None)
        result = client.result(job)
        service.add_fault(Fault("download", "expired"))
        with pytest.raises(ServiceError) as caught:
            client.download(result.url, tmp_path / "take.mp4")
    assert f"(request id {job.request_id})" in str(caught.value) and caught.value.request_id == job.request_id


def test_500_on_submit_is_a_clear_error_and_not_resent(http):
    with running_service(faults=[Fault("submit", "500", protocol="runcomfy")]) as service:
        with pytest.raises(TransientServiceError) as caught:
            _client(http, service).submit(_request())
        assert service.submits["runcomfy"] == 1 and not service.jobs
    assert "HTTP 500" in str(caught.value)


def test_a_read_timeout_after_submit_is_uncertain_and_not_resent():
    with running_service(faults=[Fault("submit", "slow", delay=0.6)]) as service:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=0.15)) as impatient:
            with pytest.raises(SubmitUncertainError) as caught:
                _client(impatient, service).submit(_request())
        assert service.submits["runcomfy"] == 1
    assert "not sent again" in str(caught.value)


def test_429_on_status_waits_as_asked(http):
    sleep = RecordingSleep()
    with running_service(faults=[Fault("status", "429", retry_after=4, protocol="runcomfy")]) as service:
        client = _client(http, service, sleep=sleep)
        job = client.submit(_request(prompt="[fail] fast"))
        client.follow(job, lambda s: None)
        codes = [r["status"] for r in service.requests_to("status", "runcomfy")]
    assert codes[0] == 429 and codes[1] == 200
    assert sleep.calls[0] == 4.0


def test_error_codes_map_to_clear_errors(http):
    wrong = "rc-wrong-token-9876543210"
    with running_service(require_key=TOKEN) as service:
        with pytest.raises(AuthError) as auth:
            _client(http, service, token=wrong).submit(_request())
        client = _client(http, service, token=TOKEN)
        with pytest.raises(ServiceValidationError) as bad_id:
            client.result(SubmittedJob("not-an-id!", f"{service.base_url}/v1/requests/zz/status",
                                       f"{service.base_url}/v1/requests/not_an_id!/result", ""))
        gone = "0123abcd-0000-0000-0000-000000000000"
        with pytest.raises(ServiceError) as expired:
            client.result(SubmittedJob(gone, "", f"{service.base_url}/v1/requests/{gone}/result", ""))
        with pytest.raises(ServiceValidationError) as invalid:
            client.submit(RetakeRequest("http://example.invalid/a.mp4", "x", 25.0, 2.0, RetakeMode.REPLACE_VIDEO))
    assert "RUNCOMFY_TOKEN" in str(auth.value) and wrong not in str(auth.value) and TOKEN not in str(auth.value)
    assert "not valid" in str(bad_id.value)
    assert "expired" in str(expired.value) and expired.value.request_id == gone
    assert "start_time" in str(invalid.value)
    with running_service(no_balance=True) as service:
        with pytest.raises(BalanceError) as balance:
            _client(http, service, token=TOKEN).submit(_request())
    assert "no credit" in str(balance.value)


def test_a_failed_job_fails_at_the_result_with_its_request_id(http):
    with running_service() as service:
        client = _client(http, service)
        job = client.submit(_request(prompt="[fail] please"))
        client.follow(job, lambda s: None)      # RunComfy's status only says 'completed'
        with pytest.raises(JobFailedError) as caught:
            client.result(job)
    assert caught.value.request_id == job.request_id and "failed" in str(caught.value)


def test_cancel_only_a_queued_job(http):
    with running_service(queue_delay=5) as service:
        client = _client(http, service)
        job = client.submit(_request())
        assert client.cancel(job) == "cancelled"
        with pytest.raises(JobFailedError) as caught:
            client.follow(job, lambda s: None)
    assert "cancelled" in str(caught.value)
    with running_service(processing_delay=5) as service:
        client = _client(http, service)
        job = client.submit(_request(prompt="[fail] slowly"))
        deadline = time.monotonic() + 5
        while http.get(job.status_url).json()["status"] != "in_progress" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.cancel(job) == "not_cancellable"
