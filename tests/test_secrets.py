"""Keys never leak: whole CLI runs (good, failing, rejected) with every artifact of the run grepped for the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from ltx_retake.adapters.local_service import LocalService, LocalServiceConfig

from test_end_to_end import make_project

KEY = "ltxsecretkey-Q7z93KfP2mW8"                # distinctive: no other text of a run can contain these
WRONG = "ltxwrongkey-H4c81NdS6tY2"
KEY_ID, KEY_SECRET = "ltxkeyid-5Hn2Lq8ZvB", "ltxkeysecret-R4t7Yv1XcD"
BAD_SECRET = "ltxbadsecret-J9p3Wm5QeF"
ALL = (KEY, WRONG, KEY_ID, KEY_SECRET, BAD_SECRET)


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m ltx_retake ...` in a real subprocess, the key only in its environment."""
    full = [sys.executable, "-m", "ltx_retake", *argv]
    assert not [s for s in ALL if any(s in arg for arg in full)], "a key on the command line"
    base = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET")}
    return subprocess.run(full, capture_output=True, env={**base, **env}, timeout=300)


def _leaks(blob: bytes) -> list[str]:
    return [s for s in ALL if s.encode() in blob]


def _service_env(service: LocalService) -> dict[str, str]:
    return {"LTX_RETAKE_FAL_QUEUE_URL": service.base_url, "LTX_RETAKE_FAL_REST_URL": service.base_url}


def _request_log(service: LocalService) -> bytes:
    """The service's request log as text; the Authorization header it received (if it ever logs one) left out."""
    entries = [{k: v for k, v in entry.items() if k.lower() != "authorization"} for entry in service.requests]
    return json.dumps(entries, default=str).encode()


@pytest.mark.slow
def test_no_key_appears_in_any_artifact_of_a_run(tmp_path):
    cut, _ = make_project(tmp_path / "project", Fraction(24), "01:00:00:00", seconds=4)
    outputs = tmp_path / "project"
    runs: list[tuple[str, subprocess.CompletedProcess]] = []
    service_logs: list[bytes] = []

    def retake(name: str, env: dict[str, str], prompt: str = "dusk", *extra: str) -> subprocess.CompletedProcess:
        # a prompt of its own per run, so no run reuses an earlier one's result from the journal
        proc = _run(["retake", str(cut), "--clip", "B", "--prompt", f"{prompt} ({name})", "--mode", "video", "--provider", "fal",
                     "-o", str(outputs / f"{name}.otio"), *extra], env)
        runs.append((name, proc))
        return proc

    with LocalService(LocalServiceConfig(require_key=KEY, storage_dir=tmp_path / "service-a")) as one:
        env = _service_env(one)
        good = retake("good", {**env, "FAL_KEY": KEY})
        assert good.returncode == 0, good.stderr.decode()
        failed = retake("failed", {**env, "FAL_KEY": KEY}, "dusk [fail]", "--json")
        assert failed.returncode != 0 and b"failed" in failed.stdout + failed.stderr
        rejected = retake("rejected", {**env, "FAL_KEY": WRONG})
        assert rejected.returncode == 4 and b"FAL_KEY" in rejected.stderr, rejected.stderr.decode()
        service_logs.append(_request_log(one))
    assert [r["status"] for r in one.requests_to("submit")] == [200, 200], "the wrong key got no further than a 401"
    assert 401 in [r["status"] for r in one.requests]

    split = f"{KEY_ID}:{KEY_SECRET}"
    with LocalService(LocalServiceConfig(require_key=split, storage_dir=tmp_path / "service-b")) as two:
        env = _service_env(two)
        halves = retake("halves", {**env, "FAL_KEY_ID": KEY_ID, "FAL_KEY_SECRET": KEY_SECRET}, "dusk", "--json")
        assert halves.returncode == 0, halves.stderr.decode()
        bad_half = retake("bad-half", {**env, "FAL_KEY_ID": KEY_ID, "FAL_KEY_SECRET": BAD_SECRET})
        assert bad_half.returncode == 4, bad_half.stderr.decode()
        service_logs.append(_request_log(two))
    # the service quoted the wrong keys back ("Invalid key '...'"): what reached the user was redacted
    assert b"Invalid key" in rejected.stderr and b"Invalid key" in bad_half.stderr

    for name, proc in runs:
        assert not _leaks(proc.stdout), f"{name}: stdout"
        assert not _leaks(proc.stderr), f"{name}: stderr"
    assert (outputs / "good.otio").is_file() and (outputs / "halves.otio").is_file()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]      # timelines, media dir, work folders, service storage
    assert any(p.suffix == ".otio" for p in files) and any("_retakes" in str(p) for p in files)
    for path in files:
        assert not _leaks(path.read_bytes()), f"a key in {path.relative_to(tmp_path)}"
    journal = Path(os.environ["LTX_RETAKE_JOURNAL"])
    for path in journal.parent.glob(journal.name + "*"):            # the journal, and SQLite's -wal / -shm beside it
        assert not _leaks(path.read_bytes()), f"a key in the journal file {path.name}"
    for log in service_logs:
        assert not _leaks(log), "a key in the local service's request log"
