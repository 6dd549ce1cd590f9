"""Wire-level edge cases of the shared HTTP behaviour, on httpx.MockTransport: retries, error mapping, downloads."""

from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timezone

import httpx
import pytest

from ltx_retake.adapters.fal import FalClient
from ltx_retake.adapters.http_policy import (
    FAL,
    RUNCOMFY,
    RetryPolicy,
    call,
    download,
    error_for_response,
    retry_after_seconds,
    same_site,
)
from ltx_retake.errors import (
    AuthError,
    BalanceError,
    ContentRefusedError,
    ServiceError,
    ServiceValidationError,
    SubmitUncertainError,
    TransientServiceError,
)
from ltx_retake.adapters.wire import sse_events
from ltx_retake.ports import RetakeMode, RetakeRequest
from ltx_retake.settings import Secret

SECRET = Secret("sk-live-abcdef0123456789")


def _policy(calls: list, **kw) -> RetryPolicy:
    return RetryPolicy(sleep=calls.append, random=lambda: 0.5, **kw)


def _mock(*answers):
    """A client whose transport plays `answers` in order (responses, exceptions, or callables)."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(answer) and not isinstance(answer, httpx.Response):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def _streamed(status: int, data: bytes, headers: dict | None = None) -> httpx.Response:
    """A response whose body arrives as a stream, as from a real server (not pre-read)."""
    return httpx.Response(status, headers={"Content-Length": str(len(data)), **(headers or {})},
                          stream=httpx.ByteStream(data))


def _err(status: int, body=None, headers=None) -> httpx.Response:
    content = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or "").encode()
    return error_for_response(httpx.Response(status, content=content, headers=headers), profile=FAL,
                              what="submit the retake", request_id="req-1")


# -- retries ----------------------------------------------------------------------------------------------------------

def test_backoff_doubles_with_jitter_and_stops_at_the_cap():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, random=lambda: 0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    high = RetryPolicy(base_delay=0.5, max_delay=4.0, random=lambda: 0.999)
    assert high.delay(1) == pytest.approx(0.7495)
    assert policy.delay(3, retry_after=12.0) == 12.0
    assert RetryPolicy(max_retry_after=60).delay(1, retry_after=3600) == 60


def test_retry_after_as_seconds_or_as_a_date():
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    later = datetime(2030, 1, 1, 0, 0, 30, tzinfo=timezone.utc)
    response = httpx.Response(429, headers={"Retry-After": format_datetime(later, usegmt=True)})
    assert retry_after_seconds(response, now=lambda: later.timestamp() - 30) == pytest.approx(30)
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Response(429)) is None


def test_503s_and_a_dropped_connection_are_retried_then_the_answer_returned():
    client, seen = _mock(httpx.Response(503), httpx.RemoteProtocolError("gone"),
                         httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={"ok": 1}))
    sleeps: list[float] = []
    response = call(client, "GET", "https://q.example/status", policy=_policy(sleeps), profile=FAL, what="check")
    assert response.json() == {"ok": 1} and len(seen) == 4
    assert sleeps == [0.5, 1.0, 2.0], "backoff 0.5, 1.0, then the server's Retry-After"


def test_5xx_that_outlasts_the_retries_is_transient_with_the_count():
    client, seen = _mock(httpx.Response(500, json={"detail": "boom"}))
    with pytest.raises(TransientServiceError) as caught:
        call(client, "GET", "https://q.example/s", policy=_policy([], attempts=3), profile=FAL, what="check the status",
             request_id="r-9")
    assert len(seen) == 3 and "after 3 tries" in str(caught.value) and caught.value.request_id == "r-9"


def test_network_errors_that_outlast_the_retries_are_transient():
    client, seen = _mock(httpx.ConnectError("refused"))
    with pytest.raises(TransientServiceError) as caught:
        call(client, "GET", "https://q.example/s", policy=_policy([], attempts=2), profile=FAL, what="check")
    assert len(seen) == 2 and "ConnectError" in str(caught.value)



def test_errors_about_a_request_name_it_in_their_text(tmp_path):
    client, _ = _mock(httpx.ConnectError("refused"))
    with pytest.raises(TransientServiceError) as caught:
        call(client, "GET", "https://q.example/s", policy=_policy([], attempts=2), profile=FAL, what="check",
             request_id="r-7")
    assert "(request id r-7)" in str(caught.value)
    client, _ = _mock(httpx.ReadError("reset"))
    with pytest.raises(TransientServiceError) as caught:
        download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", policy=_policy([], attempts=2),
                 request_id="r-8")
    assert "request r-8" in str(caught.value) and caught.value.request_id == "r-8"


def test_client_errors_are_not_retried():
    client, seen = _mock(httpx.Response(422, json={"detail": [{"loc": ["body", "prompt"], "msg": "too long",
                                                                "type": "value_error"}]}))
    with pytest.raises(ServiceValidationError):
        call(client, "POST", "https://q.example/s", policy=_policy([]), profile=FAL, what="check")
    assert len(seen) == 1


def test_a_streamed_body_is_restarted_on_each_try(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"x" * 5000)
    bodies = []

    def record(request):
        bodies.append(request.read())
        return httpx.Response(503) if len(bodies) == 1 else httpx.Response(200)

    from ltx_retake.adapters.http_policy import file_chunks
    client, _ = _mock(record)
    call(client, "PUT", "https://u.example/f", content=lambda: file_chunks(tmp_path / "f.bin", chunk_size=1000),
         headers={"Content-Length": "5000"}, policy=_policy([]), profile=FAL, what="upload")
    assert bodies == [b"x" * 5000, b"x" * 5000]


# -- error mapping ------------------------------------------------------------------------------------------------------

def test_auth_errors_say_which_key_to_check_and_never_show_it():
    error = _err(401, {"detail": f"Invalid key {SECRET.reveal()}"})
    assert isinstance(error, AuthError) and "FAL_KEY" in str(error) and SECRET.reveal() not in str(error)
    runcomfy = error_for_response(httpx.Response(403, json={"error": {"code": 400004, "message": "bad token"}}),
                                  profile=RUNCOMFY, what="submit")
    assert isinstance(runcomfy, AuthError) and "RUNCOMFY_TOKEN" in str(runcomfy)


@pytest.mark.parametrize("status, body", [
    (403, {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."}),
    (402, {"detail": "Payment required"}),
    (400, {"error": {"code": 400002, "message": "Insufficient balance"}}),
    (400, {"code": "400002", "message": "no money"}),
])
def test_no_balance_is_a_balance_error(status, body):
    error = _err(status, body)
    assert isinstance(error, BalanceError) and "Top up" in str(error) and error.status_code == status


def test_validation_lists_each_field_and_message():
    error = _err(422, {"detail": [
        {"loc": ["body", "duration"], "msg": "Input should be greater than or equal to 2", "type": "greater_than_equal"},
        {"loc": ["body", "video_url"], "msg": "Could not download the file", "type": "file_download_error"},
    ]})
    assert isinstance(error, ServiceValidationError)
    assert "duration: Input should be greater than or equal to 2" in str(error)
    assert "video_url: Could not download the file" in str(error) and "req-1" in str(error)


@pytest.mark.parametrize("body, headers", [
    ({"detail": [{"loc": ["body", "prompt"], "msg": "flagged by a content checker", "type": "content_policy_violation"}]},
     None),
    ({"detail": "The request was refused by the safety filter."}, None),
    ({"detail": "nope"}, {"X-Fal-Error-Type": "content_policy_violation"}),
])
def test_a_safety_refusal_is_content_refused(body, headers):
    error = _err(422, body, headers)
    assert isinstance(error, ContentRefusedError) and "prompt" in str(error)


def test_other_answers_map_to_clear_errors():
    assert isinstance(_err(429, "slow down"), TransientServiceError)
    gateway = _err(504, "<html><body><h1>504 Gateway Time-out</h1></body></html>", {"X-Fal-Error-Type": "request_timeout"})
    assert isinstance(gateway, TransientServiceError) and "request_timeout" in str(gateway) and "<h1>" not in str(gateway)
    gone = _err(404, {"detail": "Request not found"})
    assert type(gone) is ServiceError and "expired" in str(gone) and gone.request_id == "req-1"
    rc = error_for_response(httpx.Response(404, json={"error": {"code": 404001, "message": "gone"}}), profile=RUNCOMFY,
                            what="fetch the result", request_id="x")
    assert "unknown or has expired" in str(rc)
    bad = error_for_response(httpx.Response(400, json={"error": {"code": 400001, "message": "bad id"}}),
                             profile=RUNCOMFY, what="fetch the result", request_id="x")
    assert isinstance(bad, ServiceValidationError) and "not valid" in str(bad)


# -- the submit is never sent twice ---------------------------------------------------------------------------------

def _fal(client: httpx.Client, sleeps: list) -> FalClient:
    return FalClient(client, SECRET, "https://queue.example", "fal-ai/ltx-2/retake-video", sleep=sleeps.append,
                     rand=lambda: 0.5)


REQUEST = RetakeRequest("https://v.example/a.mp4", "p", 0.0, 2.0, RetakeMode.REPLACE_VIDEO)
ACCEPTED = {"request_id": "abc", "status_url": "https://queue.example/fal-ai/ltx-2/requests/abc/status",
            "response_url": "https://queue.example/fal-ai/ltx-2/requests/abc",
            "cancel_url": "https://queue.example/fal-ai/ltx-2/requests/abc/cancel"}


def test_a_connect_error_before_sending_is_retried():
    client, seen = _mock(httpx.ConnectError("refused"), httpx.Response(200, json=ACCEPTED))
    sleeps: list[float] = []
    job = _fal(client, sleeps).submit(REQUEST)
    assert job.request_id == "abc" and len(seen) == 2 and len(sleeps) == 1
    assert seen[1].headers["authorization"] == f"Key {SECRET.reveal()}"
    assert json.loads(seen[1].content) == REQUEST.as_json()


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("late"), httpx.RemoteProtocolError("closed"),
                                     httpx.WriteError("pipe")])
def test_anything_after_sending_is_uncertain_and_sent_once(failure):
    client, seen = _mock(failure, httpx.Response(200, json=ACCEPTED))
    with pytest.raises(SubmitUncertainError) as caught:
        _fal(client, []).submit(REQUEST)
    assert len(seen) == 1 and "fal dashboard" in str(caught.value) and SECRET.reveal() not in str(caught.value)


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_on_submit_is_uncertain(status):
    client, seen = _mock(httpx.Response(status))
    with pytest.raises(SubmitUncertainError):
        _fal(client, []).submit(REQUEST)
    assert len(seen) == 1


def test_an_accepted_submit_without_an_id_is_uncertain():
    client, seen = _mock(httpx.Response(200, text="<html>ok</html>"))
    with pytest.raises(SubmitUncertainError):
        _fal(client, []).submit(REQUEST)


def test_urls_missing_from_the_submit_answer_are_built_without_the_sub_path():
    client, _ = _mock(httpx.Response(200, json={"request_id": "r1"}))
    job = _fal(client, []).submit(REQUEST)
    assert job.status_url == "https://queue.example/fal-ai/ltx-2/requests/r1/status"
    assert job.result_url == "https://queue.example/fal-ai/ltx-2/requests/r1"


def test_server_sent_events_are_parsed():
    text = ': keep-alive\n\ndata: {"a": 1}\n\nevent: x\ndata: {"b":\ndata: 2}\r\n\r\ndata: tail\n\n'
    response = _streamed(200, text.encode(), {"Content-Type": "text/event-stream"})
    client, _ = _mock(response)
    with client.stream("GET", "https://q.example/s") as streamed:
        assert [e.data for e in sse_events(streamed, who="fal")] == ['{"a": 1}', '{"b":\n2}', "tail"]


def test_follow_reports_only_changes_and_new_log_lines():
    answers = [
        httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 2}),
        httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 2}),
        httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 1}),
        httpx.Response(202, json={"status": "IN_PROGRESS", "logs": [{"message": "a", "timestamp": "1"}]}),
        httpx.Response(202, json={"status": "IN_PROGRESS", "logs": [{"message": "a", "timestamp": "1"},
                                                                   {"message": "b", "timestamp": "2"}]}),
        httpx.Response(200, json={"status": "COMPLETED", "logs": [{"message": "a", "timestamp": "1"},
                                                                 {"message": "b", "timestamp": "2"}]}),
    ]
    client, seen = _mock(*answers)
    sleeps: list[float] = []
    statuses = []
    fal = FalClient(client, None, "https://queue.example", "fal-ai/ltx-2/retake-video", sleep=sleeps.append,
                    use_stream=False, poll_initial=1.0, poll_max=2.0)
    from ltx_retake.ports import SubmittedJob
    fal.follow(SubmittedJob("abc", ACCEPTED["status_url"], "", ""), statuses.append)
    assert [(s.state, s.queue_position, s.logs) for s in statuses] == [
        ("queued", 2, ()), ("queued", 1, ()), ("generating", None, ("a",)), ("generating", None, ("b",)),
        ("completed", None, ())]
    assert sleeps == [1.0, 1.5, 2.0, 2.0, 2.0]
    assert all(r.url.params["logs"] == "1" for r in seen)


def test_follow_gives_up_at_its_time_limit_with_the_request_id():
    now = [0.0]
    client, _ = _mock(httpx.Response(202, json={"status": "IN_PROGRESS"}))

    def sleep(seconds):
        now[0] += seconds

    fal = FalClient(client, None, "https://queue.example", "fal-ai/ltx-2/retake-video", sleep=sleep,
                    clock=lambda: now[0], use_stream=False, follow_timeout=30)
    from ltx_retake.ports import SubmittedJob
    with pytest.raises(TransientServiceError) as caught:
        fal.follow(SubmittedJob("abc", ACCEPTED["status_url"], "", ""), lambda s: None)
    assert caught.value.request_id == "abc" and "resume" in str(caught.value)


# -- downloads ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:video/mp4;base64,AAAA", "ftp://h/x.mp4", "/relative.mp4"])
def test_only_http_urls_are_downloaded(tmp_path, url):
    client, seen = _mock(httpx.Response(200, content=b"x"))
    with pytest.raises(ServiceError):
        download(client, url, tmp_path / "x.mp4")
    assert not seen and list(tmp_path.iterdir()) == []


def test_a_file_above_the_cap_is_refused_by_its_length_or_while_streaming(tmp_path):
    client, _ = _mock(_streamed(200, b"x" * 2000))
    with pytest.raises(ServiceError) as caught:
        download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", max_bytes=1000)
    assert "limit" in str(caught.value)

    def no_length(request):
        return httpx.Response(200, content=iter([b"x" * 600, b"x" * 600]))   # chunked: no Content-Length
    client, _ = _mock(no_length)
    with pytest.raises(ServiceError):
        download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_ignores_range_restarts_the_file(tmp_path):
    data = bytes(range(256)) * 10

    class Cut(httpx.SyncByteStream):
        def __iter__(self):
            yield data[:1000]
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    answers = [httpx.Response(200, headers={"Content-Length": str(len(data))}, stream=Cut()),
               _streamed(200, data)]                              # Range ignored: the whole file again
    client, seen = _mock(*answers)
    progress = []
    out = download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", progress.append,
                   policy=_policy([]))
    assert out.read_bytes() == data
    assert seen[1].headers["range"] == "bytes=1000-"
    assert progress[-1] == 1.0


def test_a_resumed_download_appends_the_missing_bytes(tmp_path):
    data = bytes(range(256)) * 10

    class Cut(httpx.SyncByteStream):
        def __iter__(self):
            yield data[:700]
            raise httpx.ReadError("connection reset")

    def resume(request):
        start = int(request.headers["range"].split("=")[1].rstrip("-"))
        return _streamed(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})

    client, seen = _mock(httpx.Response(200, headers={"Content-Length": str(len(data))}, stream=Cut()), resume)
    out = download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", policy=_policy([]))
    assert out.read_bytes() == data and len(seen) == 2
    assert "authorization" not in seen[0].headers, "result URLs are public: no key is sent"


def test_a_download_that_keeps_failing_leaves_no_file(tmp_path):
    client, seen = _mock(httpx.ReadError("reset"))
    with pytest.raises(TransientServiceError):
        download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", policy=_policy([], attempts=3))
    assert len(seen) == 3 and list(tmp_path.iterdir()) == []


def test_keys_go_only_to_the_services_own_site():
    assert same_site("https://queue.fal.run/fal-ai/ltx-2/requests/a/status", "https://queue.fal.run")
    assert same_site("https://other.fal.run/x", "https://queue.fal.run")
    assert not same_site("https://evil.example/x", "https://queue.fal.run")
    assert not same_site("http://queue.fal.run/x", "https://queue.fal.run"), "never downgraded to http"
    assert same_site("http://127.0.0.1:8000/x", "http://127.0.0.1:8000")
    assert not same_site("http://127.0.0.1:9000/x", "http://127.0.0.1:8000")
    assert not same_site("http://10.0.0.1:8000/x", "http://127.0.0.1:8000")


def test_a_status_url_on_another_site_gets_no_key():
    client, seen = _mock(httpx.Response(200, json={"status": "COMPLETED"}))
    from ltx_retake.ports import SubmittedJob
    fal = FalClient(client, SECRET, "https://queue.example", "fal-ai/ltx-2/retake-video", sleep=[].append,
                    use_stream=False)
    fal.follow(SubmittedJob("abc", "https://elsewhere.test/requests/abc/status", "", ""), lambda s: None)
    assert "authorization" not in seen[0].headers


def test_a_download_that_keeps_dropping_but_moves_on_completes(tmp_path):
    data = bytes(range(256)) * 10

    def piece(request):
        start = int(request.headers.get("range", "bytes=0-").split("=")[1].rstrip("-"))

        class Cut(httpx.SyncByteStream):
            def __iter__(self):
                yield data[start:start + 300]
                if start + 300 < len(data):
                    raise httpx.ReadError("reset")

        headers = {"Content-Length": str(len(data) - start)}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return httpx.Response(206 if start else 200, headers=headers, stream=Cut())

    client, seen = _mock(piece)
    out = download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", policy=_policy([], attempts=2))
    assert out.read_bytes() == data and len(seen) == 9


# -- untrusted URLs: http(s) only, and plain http only to this machine ----------------------------------------------------

from ltx_retake.adapters.fal import FalStorage, media_from_output  # noqa: E402
from ltx_retake.adapters.http_policy import check_http_url, is_loopback  # noqa: E402
from ltx_retake.ports import SubmittedJob  # noqa: E402


@pytest.mark.parametrize("url, ok", [
    ("https://v3.fal.media/files/a.mp4", True),
    ("http://127.0.0.1:8765/results/a.mp4", True),
    ("http://127.5.0.1/a.mp4", True),
    ("http://localhost:9/a.mp4", True),
    ("http://[::1]:9/a.mp4", True),
    ("http://v3.fal.media/files/a.mp4", False),
    ("http://10.0.0.5/a.mp4", False),
    ("http://localhost.evil.example/a.mp4", False),
    ("http://127.0.0.1.nip.io/a.mp4", False),
    ("file:///etc/passwd", False),
    ("javascript:alert(1)", False),
])
def test_urls_from_a_remote_service_must_be_https_unless_loopback(url, ok):
    if ok:
        assert check_http_url(url, what="x", https_unless_loopback=True) == url
    else:
        with pytest.raises(ServiceError, match="refusing"):
            check_http_url(url, what="x", https_unless_loopback=True)
    assert is_loopback("::1") and is_loopback("[::1]") and is_loopback("LOCALHOST") and not is_loopback("")


@pytest.mark.parametrize("use_stream", [True, False], ids=["stream", "poll"])
def test_a_status_url_downgraded_to_plain_http_is_refused_before_any_request(use_stream):
    client, seen = _mock(httpx.Response(200, json={"status": "COMPLETED"}))
    fal = FalClient(client, SECRET, "https://queue.example", "fal-ai/ltx-2/retake-video", sleep=[].append,
                    use_stream=use_stream)
    job = SubmittedJob("abc", "http://queue.example/fal-ai/ltx-2/requests/abc/status",
                       "https://queue.example/fal-ai/ltx-2/requests/abc", "http://queue.example/x/cancel")
    with pytest.raises(ServiceError) as caught:
        fal.follow(job, lambda s: None)
    assert "plain http" in str(caught.value) and not seen
    with pytest.raises(ServiceError):
        fal.cancel(job)
    assert not seen, "nothing, and no key, went over plain http"


@pytest.mark.parametrize("home, url, ok", [
    ("https://queue.example", "http://cdn.example/a.mp4", False),
    ("https://queue.example", "ftp://cdn.example/a.mp4", False),
    ("https://queue.example", "https://cdn.example/a.mp4", True),
    ("https://queue.example", "http://127.0.0.1:9/a.mp4", False),      # a remote service never sends us home
    ("https://queue.example", "https://10.1.2.3/a.mp4", False),        # nor into the private network
    ("https://queue.example", "https://[fe80::1]/a.mp4", False),
    ("http://127.0.0.1:8765", "http://127.0.0.1:9/a.mp4", True),       # a service on this machine may
    ("http://127.0.0.1:8765", "https://169.254.169.254/latest/meta-data/", False),   # metadata: never
])
def test_the_result_video_url_must_be_https_unless_loopback(home, url, ok):
    client, _ = _mock(httpx.Response(200, json={"video": {"url": url, "file_name": "a.mp4"}}))
    fal = FalClient(client, SECRET, home, "fal-ai/ltx-2/retake-video", sleep=[].append)
    job = SubmittedJob("abc", "", f"{home}/fal-ai/ltx-2/requests/abc", "")
    if ok:
        assert fal.result(job).url == url
    else:
        with pytest.raises(ServiceError, match="video URL"):
            fal.result(job)


def test_a_storage_upload_address_over_plain_http_is_refused(tmp_path):
    (tmp_path / "cut.mp4").write_bytes(b"x" * 100)
    client, seen = _mock(httpx.Response(200, json={"token": "tok-abcdef123456", "token_type": "Bearer",
                                                   "base_url": "http://v3.fal.media"}))
    with pytest.raises(ServiceError, match="upload address"):
        FalStorage(client, SECRET, "https://rest.example", sleep=[].append).upload(tmp_path / "cut.mp4", "video/mp4")
    assert len(seen) == 1, "the token was asked for; nothing was sent to the http address"


def test_a_download_redirected_to_plain_http_is_refused(tmp_path):
    def handler(request):
        if request.url.scheme == "https":
            return httpx.Response(302, headers={"Location": "http://evil.example/a.mp4"})
        return _streamed(200, b"x" * 100)

    client, seen = _mock(handler)
    with pytest.raises(ServiceError, match="redirect"):
        download(client, "https://cdn.example/a.mp4", tmp_path / "a.mp4", policy=_policy([]))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ServiceError, match="plain http"):
        download(client, "http://cdn.example/a.mp4", tmp_path / "a.mp4")
    out = download(client, "http://cdn.example/a.mp4", tmp_path / "a.mp4", https_unless_loopback=False)
    assert out.read_bytes() == b"x" * 100, "the local service may fetch plain http inputs (no key goes with them)"


@pytest.mark.parametrize("hostile, expected", [
    ("../../../../home/user/.bashrc", "home_user_.bashrc"),
    ("..\\..\\Windows\\System32\\evil.dll", "Windows_System32_evil.dll"),
    ("/etc/passwd", "etc_passwd"),
    ("..", "result.mp4"),
    (".hidden.mp4", "hidden.mp4"),
    ("a\x00b\r\nc.mp4", "a_b_c.mp4"),
    ("CON.mp4", "_CON.mp4"),
    ("lpt1", "_lpt1"),
    ("x" * 500 + ".mp4", "x" * 116 + ".mp4"),
    ("", None),
])
def test_a_service_file_name_is_made_safe(hostile, expected):
    media = media_from_output({"video": {"url": "https://cdn.example/a.mp4", "file_name": hostile}},
                              provider="fal", request_id="r")
    assert media.file_name == expected
