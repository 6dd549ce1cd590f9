"""A broken or hostile service: bombs, floods, drips, stalls, redirects inward, odd JSON, echoed keys; each a sentence.

Each fault ends in a named error with a sentence, in bounded memory (peak RSS growth measured where an answer
could be large), and Ctrl-C reaches the service and ends the command in seconds. The hostile service is a
real HTTP server on loopback (tests/hostile_service.py); slow jobs use the local service and its faults.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from ltx_retake.adapters.fal import FalClient
from ltx_retake.adapters.http_policy import RetryPolicy
from ltx_retake.adapters.local_service import Fault, LocalService, LocalServiceConfig
from ltx_retake.adapters.runcomfy import RunComfyClient
from ltx_retake.adapters.services import http_client
from ltx_retake.adapters.wire import Bounds, UrlRule
from ltx_retake.errors import CancelledError, ServiceError, SubmitUncertainError, TransientServiceError
from ltx_retake.ports import SubmittedJob
from ltx_retake.settings import Secret

from hostile_service import Answer, HostileService, MiB, gzip_bomb, json_answer, peak_rss_growth, sse
from media_fixtures import make_project

KEY = "ltxhostilekey-T5v8Qm2RxZ7c"            # distinctive: nothing else in a run can contain it
MODEL = "fal-ai/ltx-2/retake-video"
REQ = "/fal-ai/ltx-2/requests/r1"
MEMORY_BOUND = 48 * MiB                        # the caps are 4 MiB: anything near the bomb's size would show


class Clock:
    """An injected clock that moves `step` seconds each time it is read: deadlines pass without waiting."""

    def __init__(self, step: float = 60.0):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _job(evil: HostileService, request_id: str = "r1") -> SubmittedJob:
    base = evil.url(f"/fal-ai/ltx-2/requests/{request_id}")
    return SubmittedJob(request_id, f"{base}/status", base, f"{base}/cancel")


def _fal(http, evil: HostileService, **kw) -> FalClient:
    kw.setdefault("use_stream", False)
    return FalClient(http, Secret(KEY), evil.base_url, MODEL, sleep=lambda s: None, poll_initial=0.01,
                     retry=RetryPolicy(attempts=2, sleep=lambda s: None), **kw)


@pytest.fixture
def evil():
    with HostileService() as service:
        yield service


@pytest.fixture
def guarded():
    """The client a run uses (services.http_client): its transport checks addresses and reads in slices."""
    with http_client(UrlRule(loopback_ok=True)) as client:
        yield client


# -- sizes: bombs and floods are cut off at the cap, in bounded memory ---------------------------------------------------

def test_a_gzip_bomb_in_a_status_a_stream_or_an_error_is_cut_off_at_the_cap(evil, guarded):
    bomb = gzip_bomb(256 * MiB)                       # ~255 KiB on the wire, 256 MiB inflated
    evil.on("GET", f"{REQ}/status", Answer(202, bomb, gzipped=True))
    fal = _fal(guarded, evil)
    error, took, grew = peak_rss_growth(lambda: fal.follow(_job(evil), lambda s: None))
    assert isinstance(error, ServiceError) and "larger than 4 MiB" in str(error), error
    assert "r1" in str(error) and len(evil.seen(f"{REQ}/status")) == 1, "refused once, not fetched again every poll"
    if grew is not None:
        assert grew < MEMORY_BOUND, f"peak RSS grew {grew / MiB:.1f} MiB for a 256 MiB bomb"
    print(f"\ngzip bomb status: {took:.2f} s, peak RSS +{(grew or 0) / MiB:.1f} MiB")

    evil.on("GET", f"{REQ}/status/stream", Answer(200, gzip_bomb(256 * MiB, b"d"), gzipped=True,
                                                  content_type="text/event-stream"))
    stream = _fal(guarded, evil, use_stream=True)
    error, took, grew = peak_rss_growth(lambda: stream.follow(_job(evil), lambda s: None))
    assert isinstance(error, ServiceError) and "line longer than 64 KiB" in str(error), error
    if grew is not None:
        assert grew < MEMORY_BOUND
    print(f"gzip bomb stream: {took:.2f} s, peak RSS +{(grew or 0) / MiB:.1f} MiB")

    evil.on("GET", f"{REQ}/status", Answer(500, bomb, gzipped=True))      # an error page that is a bomb
    error, took, grew = peak_rss_growth(lambda: fal.follow(_job(evil), lambda s: None))
    assert isinstance(error, TransientServiceError) and "HTTP 500" in str(error) and "after 2 tries" in str(error)
    if grew is not None:
        assert grew < MEMORY_BOUND
    print(f"gzip bomb error page: {took:.2f} s, peak RSS +{(grew or 0) / MiB:.1f} MiB")


def test_oversized_and_unreadable_results_are_named_errors(evil, guarded):
    fal = _fal(guarded, evil)
    flood = (b'{"video": {"url": "' + b"a" * MiB if i == 0 else b"a" * MiB for i in range(1024))   # 1 GiB, no length
    evil.on("GET", REQ, Answer(200, flood))
    error, took, grew = peak_rss_growth(lambda: fal.result(_job(evil)))
    assert isinstance(error, ServiceError) and "larger than 4 MiB" in str(error) and "r1" in str(error), error
    if grew is not None:
        assert grew < MEMORY_BOUND, f"peak RSS grew {grew / MiB:.1f} MiB for a 1 GiB answer"
    print(f"\n1 GiB result: {took:.2f} s, peak RSS +{(grew or 0) / MiB:.1f} MiB")

    evil.on("GET", REQ, Answer(200, b"{}", headers={"Content-Length": str(2**30)}, length=False))
    with pytest.raises(ServiceError, match="larger than 4 MiB"):
        fal.result(_job(evil))
    evil.on("GET", REQ, Answer(200, b"[" * 200_000 + b"]" * 200_000))     # valid JSON, nested past any parser
    with pytest.raises(ServiceError, match="was not JSON"):
        fal.result(_job(evil))
    evil.on("GET", REQ, json_answer({"video": {"url": ["not", "text"]}}))
    with pytest.raises(ServiceError, match="not text"):
        fal.result(_job(evil))
    evil.on("POST", f"/{MODEL}", Answer(200, gzip_bomb(64 * MiB), gzipped=True))
    with pytest.raises(SubmitUncertainError, match="larger than 4 MiB.*not sent again"):
        from ltx_retake.ports import RetakeMode, RetakeRequest
        fal.submit(RetakeRequest("https://cdn.example/a.mp4", "x", 0.0, 2.0, RetakeMode.REPLACE_VIDEO))
    assert len(evil.seen(f"/{MODEL}", "POST")) == 1, "an unreadable submit answer is never resent"


# -- time: a job that never ends, answers that drip or stall ------------------------------------------------------------

@pytest.mark.parametrize("protocol, stream", [("fal", True), ("fal", False), ("runcomfy", False)])
def test_a_job_that_stays_queued_is_left_on_the_service_with_what_to_do(protocol, stream, http_fixture):
    with LocalService(LocalServiceConfig(queue_delay=10**6, keepalive=0.01)) as service:
        common = dict(sleep=lambda s: None, clock=Clock(60.0), follow_timeout=30 * 60.0, poll_initial=0.01)
        if protocol == "fal":
            client = FalClient(http_fixture, None, service.base_url, MODEL, use_stream=stream, **common)
        else:
            client = RunComfyClient(http_fixture, None, service.base_url, "ltx/ltx-2/retake-video", **common)
        job = client.submit(_local_request())
        began = time.monotonic()
        with pytest.raises(TransientServiceError) as caught:
            client.follow(job, lambda s: None)
    text = str(caught.value)
    assert job.request_id in text and "still queued after 30 min" in text and "max_wait_min" in text
    assert "ltx-retake resume" in text and caught.value.request_id == job.request_id
    assert time.monotonic() - began < 10, "the deadline is on the injected clock: no real half hour"


def test_a_dripping_answer_meets_its_deadline_and_a_cancel_is_noticed_between_bytes(evil, guarded, tmp_path):
    body = json.dumps({"status": "IN_PROGRESS", "logs": []}).encode()
    evil.on("GET", f"{REQ}/status", Answer(202, [body[i:i + 1] for i in range(len(body))], delay=0.05))
    slow = _fal(guarded, evil, bounds=Bounds(json_deadline=0.4))
    began = time.monotonic()
    with pytest.raises(TransientServiceError, match="trickled in too slowly"):
        slow.follow(_job(evil), lambda s: None)
    assert time.monotonic() - began < 3

    # Ctrl-C while a result drips one byte at a time, and while a server sends its head and then nothing
    evil.on("GET", "/media/drip.mp4", Answer(200, [b"x"] * 10_000, delay=0.05, content_type="video/mp4",
                                             headers={"Content-Length": "10000"}, length=False))
    evil.on("GET", "/media/stall.mp4", Answer(200, b"x" * 1000, stall=True, content_type="video/mp4"))
    evil.on("GET", f"{REQ}/status/stream", Answer(200, b"", stall=True, content_type="text/event-stream"))
    fal = _fal(guarded, evil, use_stream=True)
    for name, action in (("drip", lambda stop: fal.download(evil.url("/media/drip.mp4"), tmp_path / "d.mp4",
                                                            should_stop=stop)),
                         ("stall", lambda stop: fal.download(evil.url("/media/stall.mp4"), tmp_path / "s.mp4",
                                                             should_stop=stop)),
                         ("stream stall", lambda stop: fal.follow(_job(evil), lambda s: None, should_stop=stop))):
        asked = threading.Event()
        timer = threading.Timer(0.3, asked.set)
        timer.start()
        began = time.monotonic()
        with pytest.raises(CancelledError):
            action(asked.is_set)
        noticed = time.monotonic() - began - 0.3
        assert noticed < 1.0, f"{name}: the cancel took {noticed:.2f} s to be noticed"
        print(f"\ncancel noticed during a {name} in {noticed:.2f} s")


# -- addresses: redirects are checked hop by hop before anything connects ------------------------------------------------

def test_redirects_inward_or_in_a_loop_are_refused_before_connecting(evil, guarded, tmp_path):
    fal = _fal(guarded, evil)
    cases = {"/r/plain-metadata": ("http://169.254.169.254/latest/meta-data/", "plain http"),
             "/r/metadata": ("https://169.254.169.254/latest/meta-data/", "cloud metadata service"),
             "/r/metadata-name": ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
             "/r/private": ("https://10.20.30.40/result.mp4", "private network address"),
             "/r/link-local": ("https://[fe80::1]/x.mp4", "link-local")}
    for path, (target, why) in cases.items():
        evil.on("GET", path, Answer(302, headers={"Location": target}))
        began = time.monotonic()
        with pytest.raises(ServiceError) as caught:
            fal.download(evil.url(path), tmp_path / "never.mp4")
        assert why in str(caught.value) and "after 1 redirect" in str(caught.value), caught.value
        assert time.monotonic() - began < 2, "refused before any connection was tried"
        assert len(evil.seen(path)) == 1
    with pytest.raises(ServiceError, match="allow_private_hosts"):
        fal.download(evil.url("/r/private"), tmp_path / "never.mp4")

    for hop in range(30):
        evil.on("GET", f"/chain/{hop}", Answer(302, headers={"Location": f"/chain/{hop + 1}"}))
    with pytest.raises(ServiceError, match="redirected the request .* more than 10 times"):
        fal.download(evil.url("/chain/0"), tmp_path / "never.mp4")
    assert len(evil.seen("/chain/")) == 11
    evil.on("GET", f"{REQ}/status", Answer(307, headers={"Location": "https://169.254.169.254/"}))
    with pytest.raises(ServiceError, match="metadata"):
        fal.follow(_job(evil), lambda s: None)
    assert not list(tmp_path.iterdir()), "nothing written"

    # a name that resolves to this machine is refused for a remote service by the transport itself
    import socket
    name = socket.gethostname()
    try:
        resolves_home = all(socket.inet_aton(a[4][0])[0] == 127 for a in socket.getaddrinfo(name, 80, socket.AF_INET))
    except OSError:
        resolves_home = False
    if resolves_home and name != "localhost":
        before = len(evil.requests)
        with http_client(UrlRule(loopback_ok=False)) as remote:
            with pytest.raises(ServiceError, match="loopback"):
                remote.get(f"http://{name}:{evil.base_url.rsplit(':', 1)[1]}/x")
        assert len(evil.requests) == before, "refused before connecting"


# -- shapes: any JSON a status or event may hold is a sentence, never an AttributeError ----------------------------------

WEIRD = [["IN_PROGRESS"], "IN_PROGRESS", 5, None, {"status": 5}, {"status": ["COMPLETED"]},
         {"status": "IN_PROGRESS", "logs": 5}, {"status": "IN_PROGRESS", "logs": "line"}]


@pytest.mark.parametrize("stream", [False, True])
def test_status_answers_and_events_of_any_shape_are_named_errors(evil, guarded, stream):
    fal = _fal(guarded, evil, use_stream=stream)
    for shape in [*WEIRD, "not json at all"]:
        raw = shape if shape == "not json at all" else json.dumps(shape)
        if stream:
            evil.on("GET", f"{REQ}/status/stream", Answer(200, sse({"status": "IN_QUEUE"}, raw),
                                                          content_type="text/event-stream"))
        else:
            evil.on("GET", f"{REQ}/status", Answer(202, raw.encode()))
        with pytest.raises(ServiceError) as caught:
            fal.follow(_job(evil), lambda s: None)
        text = str(caught.value)
        assert ("not a status this program understands" in text or "not JSON" in text) and "r1" in text, (shape, text)
        assert "ltx-retake resume" in text
    runcomfy = RunComfyClient(guarded, None, evil.base_url, "ltx/ltx-2/retake-video", sleep=lambda s: None)
    job = SubmittedJob("r2", evil.url("/v1/requests/r2/status"), evil.url("/v1/requests/r2/result"), "")
    for shape in WEIRD[:3]:
        evil.on("GET", "/v1/requests/r2/status", json_answer(shape))
        with pytest.raises(ServiceError, match="not a status"):
            runcomfy.follow(job, lambda s: None)
    evil.on("GET", "/v1/requests/r2/result", json_answer(["succeeded"]))
    with pytest.raises(ServiceError, match="not an object"):
        runcomfy.result(job)


# -- whole runs in a real subprocess: an echoed key goes nowhere; Ctrl-C reaches the service ---------------------------

def _cli(argv: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET")}
    return subprocess.Popen([sys.executable, "-m", "ltx_retake", *argv], env={**base, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _echoing_fal(evil: HostileService, work: Path) -> None:
    """A fal that works (it really renders a preview) but puts the key into every field and every URL it hands out."""
    from ltx_retake.adapters.local_service.engine import render_preview

    stored: dict[str, bytes] = {}
    echo = f"key {KEY} Authorization: Key {KEY} see https://fal.example/x?key={KEY}"

    def upload(seen):
        stored["cut"] = seen.body
        return json_answer({"access_url": evil.url(f"/cdn/files/cut.mp4?key={KEY}"), "echo": echo})

    def submit(seen):
        body = json.loads(seen.body)
        source, out = work / "cut.mp4", work / "result.mp4"
        source.write_bytes(stored["cut"])
        render_preview(source, out, prompt=body["prompt"], start_time=body["start_time"], duration=body["duration"],
                       mode=body["retake_mode"])
        stored["result"] = out.read_bytes()
        base = evil.url(REQ)
        return json_answer({"request_id": "r1", "status_url": f"{base}/status?key={KEY}",
                            "response_url": f"{base}?token={KEY}", "cancel_url": f"{base}/cancel/{KEY}",
                            "echo": echo, "engine": echo})

    logs = [{"message": echo, "timestamp": KEY}, KEY, {"message": 5}]
    evil.on("POST", "/storage/auth/token", json_answer({"token": f"tok-{KEY}", "token_type": "Bearer",
                                                        "base_url": evil.url("/cdn"), "expires_at": KEY,
                                                        "echo": echo}))
    evil.on("POST", "/cdn/files/upload", upload)
    evil.on("POST", f"/{MODEL}", submit)
    evil.on("GET", f"{REQ}/status/stream", Answer(200, sse({"status": "IN_PROGRESS", "logs": logs},
                                                           {"status": "COMPLETED", "logs": logs, "echo": echo}),
                                                  content_type="text/event-stream"))
    evil.on("GET", f"{REQ}/status", json_answer({"status": "COMPLETED", "logs": logs}))
    evil.on("GET", REQ, lambda seen: json_answer({
        "video": {"url": evil.url(f"/results/{KEY}/result.mp4?key={KEY}&X-Amz-Signature=s1gn4tur3"),
                  "file_name": f"{KEY}.mp4", "content_type": f"video/mp4; {KEY}", "echo": echo},
        "engine": echo + " " + "x" * 5000, "seed": KEY, "timings": {KEY: echo, "nested": [[[[[KEY]]]]]}}))
    evil.on("GET", "/results/*", lambda seen: Answer(200, stored["result"], content_type="video/mp4"))
    evil.on("PUT", f"{REQ}/cancel", json_answer({"status": "ALREADY_COMPLETED"}))


@pytest.mark.slow
def test_a_service_echoing_the_key_everywhere_leaves_it_nowhere(evil, tmp_path):
    cut, _ = make_project(tmp_path / "project", Fraction(24), "01:00:00:00", seconds=4)
    _echoing_fal(evil, tmp_path)
    journal = tmp_path / "journal.sqlite"
    env = {"FAL_KEY": KEY, "LTX_RETAKE_FAL_QUEUE_URL": evil.base_url, "LTX_RETAKE_FAL_REST_URL": evil.base_url,
           "LTX_RETAKE_JOURNAL": str(journal)}
    out = tmp_path / "project" / "out.otio"
    proc = _cli(["retake", str(cut), "--clip", "B", "--prompt", "dusk", "--mode", "video", "--provider", "fal",
                 "-o", str(out), "--json"], env)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    assert KEY.encode() not in stdout and KEY.encode() not in stderr
    assert b"s1gn4tur3" not in stdout + stderr
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        if path.name in ("cut.mp4", "result.mp4") and path.parent == tmp_path:
            continue                                    # the hostile service's own scratch files
        data = path.read_bytes()
        assert KEY.encode() not in data, f"the key in {path.relative_to(tmp_path)}"
        assert b"s1gn4tur3" not in data, f"a URL's signature in {path.relative_to(tmp_path)}"
    engines = list(_values_of(json.loads(out.read_text()), "engine"))
    assert engines and all("***" in e and len(e) <= 300 for e in engines), engines
    assert "https://fal.example/x?..." in engines[0], "a URL keeps its address, never its query"
    status_urls = [s.path for s in evil.requests if "/status" in s.path]
    assert status_urls and all(KEY not in p for p in status_urls), "a URL holding the key was not followed"


@pytest.mark.slow
def test_ctrl_c_while_the_status_drips_cancels_on_the_service_and_exits_130(tmp_path):
    cut, _ = make_project(tmp_path / "project", Fraction(24), "01:00:00:00", seconds=4)
    drips = [Fault("stream", "drip", delay=0.003, rate=1.0), Fault("status", "drip", delay=0.05, rate=1.0)]
    config = LocalServiceConfig(processing_delay=120, require_key=KEY, faults=drips)
    with LocalService(config) as service:
        env = {"FAL_KEY": KEY, "LTX_RETAKE_FAL_QUEUE_URL": service.base_url,
               "LTX_RETAKE_FAL_REST_URL": service.base_url, "LTX_RETAKE_JOURNAL": str(tmp_path / "journal.sqlite")}
        proc = _cli(["retake", str(cut), "--clip", "B", "--prompt", "dusk", "--mode", "video", "--provider", "fal",
                     "-o", str(tmp_path / "out.otio")], env)
        seen = b""
        for line in proc.stderr:                        # wait (blocking on the pipe) until the job is being followed
            seen += line
            if b"generating" in line or b"queued" in line:
                break
        assert service.requests_to("submit"), seen.decode()
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        rest = proc.communicate(timeout=60)[1]
        took = time.monotonic() - began
        cancels = service.requests_to("cancel")
        job = next(iter(service.jobs.values()))
    stderr = (seen + rest).decode()
    print(f"\nCtrl-C during a dripping status stream: exit {proc.returncode} after {took:.2f} s")
    assert proc.returncode == 130, stderr
    assert took < 10, f"took {took:.1f} s to exit after Ctrl-C"
    assert cancels and cancels[0]["status"] in (200, 202), "the cancel reached the service"
    assert job.cancelled
    assert "Cancelling" in stderr and "Traceback" not in stderr and KEY not in stderr


def _values_of(data, key: str):
    """Every value under `key` anywhere in a JSON document."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k == key:
                yield v
            yield from _values_of(v, key)
    elif isinstance(data, list):
        for item in data:
            yield from _values_of(item, key)


def _local_request():
    from ltx_retake.ports import RetakeMode, RetakeRequest
    return RetakeRequest("http://127.0.0.1:9/never-fetched.mp4", "x", 0.0, 2.0, RetakeMode.REPLACE_VIDEO)


@pytest.fixture
def http_fixture():
    with http_client(UrlRule(loopback_ok=True)) as client:
        yield client
