"""The embedded local service over real HTTP: its preview engine's output, its protocols, its files and faults."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
import uvicorn

from ltx_retake.adapters.fal import FalClient
from ltx_retake.adapters.hosting import LoopbackUpload
from ltx_retake.adapters.local_service import (PREVIEW_NOTE, LocalService, LocalServiceConfig, serve, tone_frequency,
                                               window_frames)
from ltx_retake.adapters.local_service.engine import render_preview, snap_count
from ltx_retake.errors import InputError, MediaError, ServiceError
from ltx_retake.ports import RetakeMode, RetakeRequest
from service_fixtures import (  # noqa: F401 - fixtures
    RecordingSleep,
    clip97,
    dominant_frequency,
    http,
    make_clip,
    probe,
    read_bar_indices,
    running_service,
    tiny_clip,
    tone_seconds,
    window_marked,
)

MODEL = "fal-ai/ltx-2/retake-video"


def _retake(http, service, clip: Path, tmp_path: Path, *, prompt="a red kite", start=1.0, duration=2.0,
            mode=RetakeMode.REPLACE_VIDEO, video_url: str | None = None) -> tuple[Path, dict]:
    """Upload, submit over the fal protocol, follow, fetch the result JSON and the file."""
    url = video_url or LoopbackUpload(http, service.base_url).upload(clip, "video/mp4")
    client = FalClient(http, None, service.base_url, MODEL, sleep=RecordingSleep(), poll_initial=0.02)
    job = client.submit(RetakeRequest(url, prompt, start, duration, mode))
    client.follow(job, lambda status: None)
    answer = http.get(job.result_url).json()
    out = client.download(answer["video"]["url"], tmp_path / "result.mp4")
    return out, answer


def test_the_preview_keeps_every_frame_and_marks_only_the_window(http, clip97, tmp_path):
    with running_service() as service:
        out, answer = _retake(http, service, clip97, tmp_path, start=1.0, duration=2.0)
    p = probe(out)
    assert (p.width, p.height, p.frames, p.rate, p.audio_rate) == (1920, 1080, 97, Fraction(24), 48000)
    assert read_bar_indices(out) == list(range(97)), "every frame, in order, still readable (tint included)"
    marked = window_marked(out)
    assert [i for i, m in enumerate(marked) if m] == list(range(24, 72))
    preview = answer["ltx_retake_preview"]
    assert preview["window_frames"] == [24, 72] and preview["note"] == PREVIEW_NOTE
    assert answer["video"]["num_frames"] == 97 and answer["video"]["fps"] == 24.0
    assert "NOT a generated retake" in p.comment


def test_quirks_int_fps_snap_and_24k_audio_on_a_fetched_input(http, tmp_path):
    source = make_clip(tmp_path / "ntsc.mp4", frames=100, rate="30000/1001")
    with running_service() as host, running_service(int_fps=True, snap_8k1=True, audio_24k=True) as service:
        foreign = LoopbackUpload(http, host.base_url).upload(source, "video/mp4")   # another server: fetched
        out, answer = _retake(http, service, source, tmp_path, video_url=foreign, start=3.0, duration=5.0)
    p = probe(out)
    assert p.frames == snap_count(100) == 97
    assert p.rate == Fraction(29) and p.audio_rate == 24000
    assert read_bar_indices(out) == list(range(97))
    marked = window_marked(out)
    first, end = window_frames(3.0, 5.0, Fraction(30000, 1001), 97)      # clamped to the input's end
    assert (first, end) == (90, 97)
    assert [i for i, m in enumerate(marked) if m] == list(range(90, 97))
    assert answer["ltx_retake_preview"]["quirks"] == {"int_fps": True, "snap_8k1": True, "audio_24k": True}


def test_replace_audio_puts_a_prompt_tone_in_the_window_and_keeps_the_picture(http, clip97, tmp_path):
    prompt = "a choir sings"
    with running_service() as service:
        out, answer = _retake(http, service, clip97, tmp_path, prompt=prompt, start=1.0, duration=2.0,
                              mode=RetakeMode.REPLACE_AUDIO)
    assert not any(window_marked(out))
    assert read_bar_indices(out) == list(range(97))
    hz = tone_frequency(prompt)
    assert answer["ltx_retake_preview"]["tone_hz"] == hz
    inside = dominant_frequency(out, *tone_seconds((24, 72), Fraction(24)))
    before = dominant_frequency(out, 0.1, 0.9)
    after = dominant_frequency(out, 3.1, 3.9)
    assert abs(inside[0] - hz) < 5
    assert abs(before[0] - 1000) < 5 and abs(after[0] - 1000) < 5


def test_a_portrait_clip_without_sound_comes_back_1080x1920_with_a_tone(http, tmp_path):
    source = make_clip(tmp_path / "portrait.mp4", frames=49, size="120x160", audio_hz=None)
    with running_service() as service:
        out, answer = _retake(http, service, source, tmp_path, prompt="rain", start=0.5, duration=2.0,
                              mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    p = probe(out)
    assert (p.width, p.height, p.frames, p.audio_rate) == (1080, 1920, 49, 48000)
    assert [i for i, m in enumerate(window_marked(out)) if m] == list(range(12, 49))
    hz, level = dominant_frequency(out, 0.6, 1.9)
    assert abs(hz - tone_frequency("rain")) < 5 and level > 0.05
    assert dominant_frequency(out, 0.0, 0.45)[1] < 1e-3, "silence outside the window"


def test_window_frames_are_counted_by_frame_start_times():
    assert window_frames(1.0, 2.0, Fraction(24), 97) == (24, 72)
    assert window_frames(48 / Fraction(30000, 1001), 24 / Fraction(30000, 1001), Fraction(30000, 1001), 200) == (48, 72)
    assert window_frames(30.0, 2.0, Fraction(24), 97) == (97, 97)
    assert [snap_count(n) for n in (1, 8, 9, 16, 17, 100)] == [1, 1, 9, 9, 17, 97]
    assert 300 <= tone_frequency("x") < 900 and tone_frequency("x") == tone_frequency("x")


def test_validation_answers_422_with_field_details(http):
    with running_service() as service:
        answer = http.post(f"{service.base_url}/{MODEL}", json={"video_url": "ftp://x/y.mp4", "prompt": "",
                                                                   "duration": 1.0, "retake_mode": "both"})
        runcomfy = http.post(f"{service.base_url}/v1/models/ltx/ltx-2/retake-video", json={"prompt": "x"})
        assert service.state.jobs_created["fal"] == 0
    assert answer.status_code == 422
    fields = {tuple(item["loc"]): item["msg"] for item in answer.json()["detail"]}
    assert set(fields) == {("body", "video_url"), ("body", "prompt"), ("body", "duration"), ("body", "retake_mode")}
    assert "greater than or equal to 2" in fields[("body", "duration")]
    assert runcomfy.status_code == 422


def test_files_are_served_with_ranges(http, tmp_path):
    data = bytes(range(256)) * 40
    (tmp_path / "blob.bin").write_bytes(data)
    with running_service() as service:
        url = LoopbackUpload(http, service.base_url).upload(tmp_path / "blob.bin", "application/octet-stream")
        whole = http.get(url)
        part = http.get(url, headers={"Range": "bytes=100-199"})
        tail = http.get(url, headers={"Range": "bytes=-10"})
        beyond = http.get(url, headers={"Range": f"bytes={len(data)}-"})
        head = http.head(url)
        missing = http.get(f"{service.base_url}/files/nothing/here.mp4")
        sneaky = http.get(f"{service.base_url}/files/%2e%2e/%2e%2e/etc/passwd")
    assert whole.content == data and whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert beyond.status_code == 416
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
    assert missing.status_code == 404 and sneaky.status_code in (400, 404)


def test_the_status_stream_sends_events_and_keep_alives_then_closes(http):
    with running_service(queue_delay=0.3, keepalive=0.05) as service:
        body = {"video_url": "http://example.invalid/x.mp4", "prompt": "[fail] quickly", "duration": 2.0}
        submitted = http.post(f"{service.base_url}/{MODEL}", json=body).json()
        lines = []
        with http.stream("GET", submitted["status_url"] + "/stream", params={"logs": "1"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                lines.append(line)
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert any(line.startswith(":") for line in lines), "a keep-alive comment while queued"
    assert events[0]["status"] == "IN_QUEUE" and events[0]["queue_position"] == 0
    assert events[-1]["status"] == "COMPLETED" and events[-1]["error_type"] == "runner_disconnected"
    assert any("preview" in entry["message"] for entry in events[-1]["logs"])


def test_cancel_a_queued_job_in_both_protocols(http):
    body = {"video_url": "http://example.invalid/x.mp4", "prompt": "x", "duration": 2.0}
    with running_service(queue_delay=5.0) as service:
        fal = http.post(f"{service.base_url}/{MODEL}", json=body).json()
        rc = http.post(f"{service.base_url}/v1/models/ltx/ltx-2/retake-video", json=body).json()
        assert http.get(rc["status_url"]).json() == {"request_id": rc["request_id"], "status": "in_queue",
                                                     "queue_position": 1}
        cancelled = http.put(fal["cancel_url"])
        rc_cancelled = http.post(rc["cancel_url"])
        status = http.get(fal["status_url"])
        result = http.get(fal["response_url"])
        again = http.put(fal["cancel_url"])
        rc_status = http.get(rc["status_url"]).json()
        rc_result = http.get(rc["result_url"]).json()
        unknown = http.put(f"{service.base_url}/fal-ai/ltx-2/requests/nope/cancel")
    assert cancelled.status_code == 202 and cancelled.json() == {"status": "CANCELLATION_REQUESTED"}
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED" and status.json()["error"]
    assert result.status_code == 400
    assert again.status_code == 400 and again.json() == {"status": "ALREADY_COMPLETED"}
    assert unknown.status_code == 404 and unknown.json() == {"status": "NOT_FOUND"}
    assert rc_cancelled.status_code == 202 and rc_cancelled.json()["outcome"] == "cancelled"
    assert rc_status["status"] == "cancelled" and rc_result["status"] == "cancelled"


def test_an_input_that_is_not_video_fails_the_job_with_a_video_url_error(http, tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video")
    with running_service() as service:
        url = LoopbackUpload(http, service.base_url).upload(tmp_path / "notes.mp4", "video/mp4")
        job = http.post(f"{service.base_url}/{MODEL}", json={"video_url": url, "prompt": "x", "duration": 2}).json()
        deadline = time.monotonic() + 10
        while http.get(job["status_url"]).json()["status"] != "COMPLETED" and time.monotonic() < deadline:
            time.sleep(0.02)
        result = http.get(job["response_url"])
    assert result.status_code == 422
    assert result.json()["detail"][0]["loc"] == ["body", "video_url"]


def test_faults_are_consumed_in_order_and_logged(http):
    from ltx_retake.adapters.local_service import Fault

    faults = [Fault("status", "503", times=2, retry_after=1), Fault("status", "429")]
    with running_service(faults=faults) as service:
        url = f"{service.base_url}/fal-ai/ltx-2/requests/abc/status"
        codes = [http.get(url).status_code for _ in range(4)]
        log = service.requests_to("status", "fal")
    assert codes == [503, 503, 429, 404]
    assert [entry["fault"] for entry in log] == ["503", "503", "429", None]
    assert [entry["status"] for entry in log] == codes
    with pytest.raises(ValueError):
        Fault("nowhere", "500")
    with pytest.raises(ValueError):
        Fault("status", "explode")


def _faulted_statuses(http, n: int, **config) -> list[str | None]:
    """Send `n` status requests to a service with `config`; the fault kind each met (None: answered)."""
    with running_service(**config) as service:
        url = f"{service.base_url}/fal-ai/ltx-2/requests/abc/status"
        for _ in range(n):
            try:
                http.get(url)
            except httpx.TransportError:       # a "drop"
                pass
        return [entry["fault"] for entry in service.requests_to("status", "fal")]


def test_a_rate_fault_faults_that_share_of_requests_and_a_seed_repeats_the_sequence(http):
    from ltx_retake.adapters.local_service import Fault

    def run(seed: int) -> list[str | None]:
        return _faulted_statuses(http, 200, faults=[Fault("status", "503", rate=0.5)], fault_seed=seed)

    first, again, other = run(11), run(11), run(12)
    assert 70 <= first.count("503") <= 130
    assert set(first) == {"503", None}
    assert first == again                       # the same seed: the same requests are faulted
    assert first != other
    never = _faulted_statuses(http, 20, faults=[Fault("status", "503", rate=0.0)], fault_seed=1)
    always = _faulted_statuses(http, 20, faults=[Fault("status", "503", rate=1.0)], fault_seed=1)
    assert never == [None] * 20 and always == ["503"] * 20


def test_rate_faults_share_one_draw_in_order_and_times_caps_them(http):
    from ltx_retake.adapters.local_service import Fault

    mixed = _faulted_statuses(http, 400, faults=[Fault("status", "429", rate=0.25, retry_after=0),
                                                  Fault("status", "drop", rate=0.25)], fault_seed=3)
    assert 60 <= mixed.count("429") <= 140 and 60 <= mixed.count("drop") <= 140
    assert 140 <= mixed.count(None) <= 260      # about half: the shares add up, they do not overlap
    capped = _faulted_statuses(http, 50, faults=[Fault("status", "500", rate=1.0, times=3),
                                                 Fault("status", "502", rate=0.0)], fault_seed=3)
    assert capped == ["500"] * 3 + [None] * 47
    counted_first = _faulted_statuses(http, 4, faults=[Fault("status", "503", times=2),
                                                       Fault("status", "429", rate=1.0)], fault_seed=3)
    assert counted_first == ["503", "503", "429", "429"]
    assert Fault("status", "503").times == 1 and Fault("status", "503", rate=0.1).times is None
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="probability"):
            Fault("status", "503", rate=bad)


def test_a_drop_during_an_upload_cuts_the_connection_and_stores_nothing(http):
    from ltx_retake.adapters.local_service import Fault

    body = os.urandom(3 * 1024 * 1024)
    with running_service(faults=[Fault("upload", "drop")]) as service:
        with pytest.raises(httpx.TransportError):
            http.post(f"{service.base_url}/upload", content=body, headers={"X-File-Name": "cut.mp4"})
        deadline = time.monotonic() + 5          # the client can see the cut before the server logs it
        while service.requests_to("upload")[0]["status"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        (entry,) = service.requests_to("upload")
        assert entry["fault"] == "drop" and entry["status"] == "dropped"
        assert not [p for p in (service.storage_dir / "files").rglob("*") if p.is_file()]
        again = http.post(f"{service.base_url}/upload", content=body, headers={"X-File-Name": "cut.mp4"})
        assert again.status_code == 200 and http.get(again.json()["url"]).content == body


def test_stop_frees_the_port_and_the_temp_storage(http):
    service = running_service()
    root, base = service.storage_dir, service.base_url
    assert http.get(f"{base}/health").json()["ok"] is True
    service.stop()
    assert not root.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health", timeout=1.0)


# ---------------------------------------------------------------- fal multipart storage

def test_hashing_and_joining_parts_does_not_stall_other_clients(http, tmp_path):
    """A part's MD5 and the join at `complete` run off the event loop; the parts are removed afterwards."""
    entered, release = threading.Event(), threading.Event()

    def slow_md5(path: Path) -> str:                  # a digest that takes as long as the test wants
        entered.set()
        release.wait(10)
        return hashlib.md5(path.read_bytes()).hexdigest()

    def meanwhile(call):
        """Run `call` in a thread; while it is inside the digest, another client asks for /health."""
        box: dict = {}
        worker = threading.Thread(target=lambda: box.setdefault("answer", call()))
        entered.clear()
        release.clear()
        worker.start()
        try:
            assert entered.wait(10), "the digest was never asked for"
            began = time.monotonic()
            health = httpx.get(f"{base}/health", timeout=2.0)
            waited = time.monotonic() - began
        finally:
            release.set()
            worker.join(15)
        assert health.status_code == 200 and waited < 1.0, f"/health waited {waited:.2f} s"
        return box["answer"]

    data = [os.urandom(1 << 20), os.urandom(1000)]
    with running_service(part_digest=slow_md5) as service:
        base = service.base_url
        token = http.post(f"{base}/storage/auth/token?storage_type=fal-cdn-v3").json()["token"]
        auth = {"Authorization": f"Bearer {token}", "X-Fal-File-Name": "big.mp4"}
        started = http.post(f"{base}/cdn/files/upload/multipart", headers=auth).json()
        upload = started["uploadId"]
        parts_url = f"{started['access_url']}/multipart/{upload}"
        etags = [meanwhile(lambda n=n, chunk=chunk: http.put(f"{parts_url}/{n}", content=chunk, headers=auth))
                 for n, chunk in enumerate(data, 1)]
        assert [r.headers["etag"] for r in etags] == [f'"{hashlib.md5(c).hexdigest()}"' for c in data]
        parts = [{"partNumber": n, "etag": r.headers["etag"]} for n, r in enumerate(etags, 1)]
        done = meanwhile(lambda: http.post(f"{parts_url}/complete", json={"parts": parts}, headers=auth))
        assert done.status_code == 200 and done.json()["access_url"] == started["access_url"]
        assert http.get(started["access_url"]).content == b"".join(data)
        assert not (service.storage_dir / "parts" / upload).exists()
        assert upload not in service.state.multipart
        again = http.post(f"{parts_url}/complete", json={"parts": parts}, headers=auth)
    assert again.status_code == 404


# ---------------------------------------------------------------- bounds, exposure, start-up, clean-up

def test_the_request_log_and_finished_jobs_are_bounded(http):
    body = {"video_url": "http://example.invalid/x.mp4", "prompt": "[fail] at once", "duration": 2.0}
    with running_service(request_log_limit=5, finished_job_ttl=0.0) as service:
        for n in range(8):
            http.get(f"{service.base_url}/files/none/{n}.mp4")
        assert [r["path"] for r in service.requests] == [f"/files/none/{n}.mp4" for n in range(3, 8)]
        first = http.post(f"{service.base_url}/{MODEL}", json=body).json()
        deadline = time.monotonic() + 10
        while http.get(first["status_url"]).json()["status"] != "COMPLETED" and time.monotonic() < deadline:
            time.sleep(0.02)
        second = http.post(f"{service.base_url}/{MODEL}", json=body).json()
        assert list(service.jobs) == [second["request_id"]]          # the finished one was let go
        assert http.get(first["status_url"]).status_code == 404
        assert len(service.requests) == 5
    default = LocalServiceConfig()
    assert (default.request_log_limit, default.finished_job_ttl) == (10_000, 3600.0)


def test_answers_are_not_held_back_by_nagle(http):
    """The service's connections have TCP_NODELAY: an answer is written as its head, then its body, and
    without it each answer waited for the client's delayed ACK (about 40 ms a request on Linux)."""
    with running_service() as service:
        assert http.get(f"{service.base_url}/health").status_code == 200     # a kept-alive connection
        connections = list(service._server.server_state.connections)
        assert connections
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), "Nagle delays every answer"


def _serve_in_a_thread(host: str, port: int, config: LocalServiceConfig) -> BaseException | None:
    """What `serve` raised within 5 s (a daemon thread, so a serve that wrongly runs does not hang the tests)."""
    box: dict = {}

    def run() -> None:
        try:
            serve(host, port, config)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), f"serve({host!r}) is serving"
    return box.get("error")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_serve_refuses_an_open_address_without_a_key(host, tmp_path):
    error = _serve_in_a_thread(host, 0, LocalServiceConfig(storage_dir=tmp_path / "store"))
    assert isinstance(error, InputError), repr(error)
    assert "Bind 127.0.0.1" in str(error) and "set a key" in str(error)
    assert not (tmp_path / "store").exists()
    with pytest.raises(InputError, match="without a key"):
        LocalService(host=host or "0.0.0.0").start()


@pytest.mark.skipif(os.name == "nt", reason="Windows lets SO_REUSEADDR share a port")
def test_serve_on_a_busy_port_is_a_service_error(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        error = _serve_in_a_thread("127.0.0.1", port, LocalServiceConfig(storage_dir=tmp_path / "store"))
    assert isinstance(error, ServiceError), repr(error)
    assert f"cannot listen on 127.0.0.1:{port}" in str(error) and "choose another port" in str(error)


class _CrashingServer(uvicorn.Server):
    """A uvicorn server that fails as it starts (the port was taken in between, say)."""

    def run(self, sockets=None) -> None:
        raise OSError(98, "Address already in use")


class _StuckServer(uvicorn.Server):
    """A uvicorn server that never reports it started, until told to exit."""

    def run(self, sockets=None) -> None:
        while not self.should_exit:
            time.sleep(0.01)


@pytest.mark.parametrize("server, why", [(_CrashingServer, r"it failed: OSError: \[Errno 98\] Address already in use"),
                                         (_StuckServer, r"it did not answer within 0\.2 s")], ids=["crash", "stuck"])
def test_a_local_service_that_cannot_start_is_a_service_error_and_cleans_up(server, why):
    def ours() -> list[str]:
        return sorted(t.name for t in threading.enumerate() if t.name.startswith("ltx-retake-local"))

    before = ours()
    service = LocalService(start_timeout=0.2, server_factory=server)
    with pytest.raises(ServiceError, match=rf"could not start on 127\.0\.0\.1:\d+ \({why}\)\. Try again"):
        service.start()
    assert ours() == before, "the server thread and the job worker were stopped"
    assert not service.state.root.exists(), "its temporary storage was removed"


def test_a_local_service_on_an_address_it_cannot_have_is_a_service_error():
    with pytest.raises(ServiceError, match="cannot listen on 192.0.2.1:0"):     # TEST-NET-1: no machine has it
        LocalService(LocalServiceConfig(require_key="k"), host="192.0.2.1").start()


def test_a_failed_render_leaves_no_temporary_file(tiny_clip, tmp_path):
    out = tmp_path / "results" / "retake.mp4"
    with pytest.raises(MediaError, match="The local preview render failed"):
        render_preview(tiny_clip, out, prompt="x", start_time=0.0, duration=0.5, mode="replace_video",
                       preset="no-such-preset")
    assert list(out.parent.iterdir()) == []
