"""The command line in real subprocesses: demo, retake, versions, use; exit codes and messages; no key leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import pytest

from ltx_retake.adapters.local_service import LocalService, LocalServiceConfig
from ltx_retake.adapters.timeline_files import read_timeline
from ltx_retake.versions import list_versions

from test_end_to_end import make_project


def cli(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ltx_retake", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_demo_ends_with_a_valid_timeline_holding_v001(tmp_path):
    proc = cli("demo", "--dir", tmp_path / "demo")
    assert proc.returncode == 0, proc.stderr
    out = dict(line.split("\t", 1) for line in proc.stdout.strip().splitlines())
    tl = read_timeline(out["timeline"])
    picture, sound = list_versions(tl)  # the demo retakes picture and sound: V1 and its linked A1
    for retaken, track in ((picture, 0), (sound, 1)):
        assert (retaken.original_name, retaken.versions, retaken.active, retaken.track_index) == (
            "shot020", ("retake_v001",), "retake_v001", track)
    assert open(out["contact sheet"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "generating" in proc.stderr and "offline preview" in proc.stderr.lower()


@pytest.mark.slow
def test_retake_versions_and_use_round_trip(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=5)
    out = tmp_path / "out.otio"
    proc = cli("retake", cut, "--clip", "B", "--prompt", "dusk", "--mode", "video", "-o", out, "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["output"] == str(out) and report["jobs"][0]["state"] == "spliced"
    assert report["jobs"][0]["version"] == "B_retake_v001" and report["jobs"][0]["request_id"]
    listed = json.loads(cli("versions", out, "--json").stdout)
    assert listed == [{"clip": "B", "record": "01:00:01:00-01:00:04:00", "track": "V1", "placement": "splice",
                       "versions": ["retake_v001"], "active": "retake_v001"}]
    assert cli("use", out, "B", "original").returncode == 0
    assert json.loads(cli("versions", out, "--json").stdout)[0]["active"] == "original"
    bad = cli("use", out, "B", "v007")
    assert bad.returncode == 2 and "no version 'v007'" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_input_exits_2_with_a_sentence_and_writes_nothing(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4)
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        (["--clip", "Z", "--prompt", "x"], "No clip named 'Z'"),
        (["--range", "01:00:00:10", "01:00:02:00", "--prompt", "x"], "crosses a cut"),
        (["--clip", "B"], "--prompt is required"),
        (["--clip", "B", "--prompt", "x", "--mode", "sideways"], "Unknown retake mode 'sideways'"),
    ]
    for args, message in cases:
        proc = cli("retake", cut, *args, "-o", tmp_path / "out.otio")
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
    missing = cli("retake", tmp_path / "nope.otio", "--clip", "B", "--prompt", "x", "-o", tmp_path / "out.otio")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_rejected_key_exits_4_and_never_shows_the_key(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4)
    secret = "fal-secret-4f9a2c7e1b"
    with LocalService(LocalServiceConfig(require_key="the-right-key")) as svc:
        env = {"FAL_KEY": secret, "LTX_RETAKE_FAL_QUEUE_URL": svc.base_url, "LTX_RETAKE_FAL_REST_URL": svc.base_url}
        proc = cli("retake", cut, "--clip", "B", "--prompt", "x", "--provider", "fal", "-o", tmp_path / "out.otio", env=env)
    assert proc.returncode == 4, proc.stderr
    assert "FAL_KEY" in proc.stderr
    assert secret not in proc.stderr + proc.stdout
    assert not (tmp_path / "out.otio").exists()
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".otio", ".json", ".txt", ".log"):
            assert secret not in path.read_text(errors="replace")


def test_serve_answers_both_protocols_until_stopped(tmp_path):
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ltx_retake", "serve", "--port", str(port), "--storage", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "no answer"
            time.sleep(0.1)
        token = httpx.post(f"{base}/storage/auth/token?storage_type=fal-cdn-v3", json={}, timeout=5)
        assert token.status_code == 200 and token.json()["base_url"].startswith(base)
        missing = httpx.get(f"{base}/v1/requests/nope/status", timeout=5)
        assert missing.status_code == 400 and "400001" in missing.text  # RunComfy: a malformed id
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert "offline preview" in err
    assert proc.returncode in (0, 130, -signal.SIGINT)


def test_the_panel_command_is_listed_and_takes_a_timeline():
    from ltx_retake.cli import build_parser

    args = build_parser().parse_args(["panel", "cut.otio"])
    assert args.command == "panel" and str(args.timeline) == "cut.otio"
    assert build_parser().parse_args(["panel"]).timeline is None
