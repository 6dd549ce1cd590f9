"""Crash tests: kill -9 the CLI at every step of a two-job run, resume it, and compare with a run never interrupted.

The service is a local service in this test process (it outlives the CLI, as fal does), driven through
the fal protocol over real HTTP. The CLI kills itself with SIGKILL right after the journal records the
named point (LTX_RETAKE_FAILPOINT), or is killed from outside in the middle of a download.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.adapters.local_service import Fault, LocalService, LocalServiceConfig
from ltx_retake.adapters.timeline_files import read_timeline, write_timeline
from ltx_retake.journal import Journal
from ltx_retake.paths import file_sha256

from media_fixtures import make_project

pytestmark = pytest.mark.slow
KEY = "crash-test-key-5b1e"
POINTS = ["cutting", "cut", "uploading", "submitting", "queued", "generating", "downloading", "downloaded", "conforming",
          "splicing", "saving", "saved"]


@pytest.fixture(scope="module")
def service():
    with LocalService(LocalServiceConfig(require_key=KEY, processing_delay=0.6)) as svc:
        yield svc


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A 10 s indexed source, three clips, and two markers on the middle clip: a two-job marker run."""
    folder = tmp_path_factory.mktemp("project")
    cut, _ = make_project(folder, Fraction(24), "01:00:00:00", seconds=10.0)
    tl = read_timeline(cut)
    middle = tl.tracks[0][1]
    start = middle.source_range.start_time
    for at, text in ((24, "a red door"), (120, "a blue door")):
        middle.markers.append(otio.schema.Marker(name=text, marked_range=otio.opentime.TimeRange(
            start + otio.opentime.RationalTime(at, 24), otio.opentime.RationalTime(12, 24))))
    write_timeline(tl, cut, overwrite=True)
    return folder


def _copy(project: Path, dest: Path) -> Path:
    shutil.copytree(project, dest)
    return dest


def _env(service, journal: Path, failpoint: str | None = None) -> dict:
    env = dict(os.environ, FAL_KEY=KEY, LTX_RETAKE_FAL_QUEUE_URL=service.base_url, LTX_RETAKE_FAL_REST_URL=service.base_url,
               LTX_RETAKE_JOURNAL=str(journal))
    env.pop("LTX_RETAKE_FAILPOINT", None)
    if failpoint:
        env["LTX_RETAKE_FAILPOINT"] = failpoint
    return env


def _retake(folder: Path, parallel: int = 1) -> list[str]:
    """One job in flight at a time, so a kill at a point in one job never also lands inside the other's submit
    (that case is its own test below)."""
    return [sys.executable, "-m", "ltx_retake", "retake", str(folder / "cut.otio"), "--markers", "--provider", "fal",
            "-o", str(folder / "out.otio"), "--yes", "--max-parallel", str(parallel)]


def _cli(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def _hashes(folder: Path) -> dict[str, str]:
    return {name: file_sha256(folder / name) for name in ("cut.otio", "source.mov")}


def _visible(folder: Path) -> list[Path]:
    """Files an editor would see: not hidden, not in the hidden work folder."""
    return [p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


def _litter(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".part" in p.name or ".partial" in p.name)


def _comparable(timeline_path: Path, folder: Path) -> str:
    """The timeline as text with what must differ between two runs taken out: paths, times, request ids."""
    text = otio.adapters.write_to_string(read_timeline(timeline_path), "otio_json")
    text = text.replace(str(folder), "<project>")
    return re.sub(r'"(created|request_id|reused_from)": "[^"]*"', r'"\1": "-"', text)


def _submits(service) -> int:
    return len(service.requests_to("submit"))


def _result_downloads(service) -> int:
    return len([r for r in service.requests_to("download") if "/results/" in r.get("path", "")])


@pytest.fixture(scope="module")
def baseline(service, project, tmp_path_factory) -> tuple[Path, str]:
    """The run never interrupted: its timeline, as `_comparable` text."""
    folder = _copy(project, tmp_path_factory.mktemp("base") / "p")
    done = _cli(_retake(folder), _env(service, folder.parent / "journal.sqlite"))
    assert done.returncode == 0, done.stderr
    return folder, _comparable(folder / "out.otio", folder)


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_step_resumes_to_the_same_timeline_without_a_second_submit(point, service, project, baseline, tmp_path):
    folder = _copy(project, tmp_path / "p")
    journal = tmp_path / "journal.sqlite"
    before = _hashes(folder)
    submits, downloads = _submits(service), _result_downloads(service)

    crashed = _cli(_retake(folder), _env(service, journal, failpoint=point))
    assert crashed.returncode == -signal.SIGKILL, f"the failpoint {point} was never reached:\n{crashed.stderr}"
    assert _hashes(folder) == before, "the original timeline or media changed"
    out = folder / "out.otio"
    if point == "saved":
        assert out.exists()
        saved_at = out.stat().st_mtime_ns
    else:
        assert not out.exists(), "a timeline was written before every job was spliced"
    with Journal(journal) as j:
        (run,) = j.runs()
        assert run.state == "interrupted"
        ready = {Path(job.version["path"]).name: job.version_sha for job in run.jobs if job.version_sha}
    for path in _visible(folder):  # every visible version file is whole: the one the journal verified
        if path.parent.name.endswith("_retakes"):
            assert ready.get(path.name) == file_sha256(path), f"{path.name} is visible but not a verified version"

    resumed = _cli([sys.executable, "-m", "ltx_retake", "resume"], _env(service, journal))
    if point == "submitting":  # the request may have left: never sent again without being told to
        assert resumed.returncode == 4, resumed.stderr
        assert "--resubmit" in resumed.stderr
        resumed = _cli([sys.executable, "-m", "ltx_retake", "resume", "--resubmit"], _env(service, journal))
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout

    assert _submits(service) - submits == 2, "a request was submitted twice (or not at all)"
    if point in ("downloaded", "conforming", "splicing", "saving", "saved"):
        assert _result_downloads(service) - downloads == 2, "a finished download was fetched again"
    if point == "saved":
        assert out.stat().st_mtime_ns == saved_at, "the saved timeline was written a second time"
    assert _hashes(folder) == before
    base_folder, base_text = baseline
    assert _comparable(out, folder) == base_text
    versions = sorted(p.name for p in (folder / "cut_retakes").glob("*_retake_v*"))
    assert versions == sorted(p.name for p in (base_folder / "cut_retakes").glob("*_retake_v*")) and len(versions) == 2
    assert _litter(folder) == [] and not (folder / "cut_retakes" / ".work").exists()
    with Journal(journal) as j:
        (run,) = j.runs()
        assert run.state == "finished" and {job.step.value for job in run.jobs} == {"spliced"}
        assert len(j.ledger()) == 2


def test_a_kill_in_the_middle_of_a_download_resumes_and_keeps_no_partial_file(service, project, tmp_path):
    folder = _copy(project, tmp_path / "p")
    journal = tmp_path / "journal.sqlite"
    submits = _submits(service)
    service.add_fault(Fault("download", "slow", times=2, delay=30.0))
    proc = subprocess.Popen(_retake(folder, parallel=2), env=_env(service, journal), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _kill_when(proc, journal, "downloading", 2)
    assert not (folder / "out.otio").exists()
    assert not list((folder / "cut_retakes").glob("*_retake_v*"))
    resumed = _cli([sys.executable, "-m", "ltx_retake", "resume"], _env(service, journal))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at downloading" in resumed.stderr
    assert _submits(service) - submits == 2
    names = [c.name for c in read_timeline(folder / "out.otio").find_clips()]
    assert names == ["A", "B", "B_retake_v001", "B", "B_retake_v002", "B", "C"], names
    assert _litter(folder) == []


def _kill_when(proc: subprocess.Popen, journal: Path, step: str, count: int) -> None:
    """SIGKILL the CLI once `count` of its jobs have entered `step` (read from the journal)."""
    deadline = time.monotonic() + 120
    try:
        steps: list[str] = []
        while time.monotonic() < deadline:
            if journal.exists():
                with Journal(journal) as j:
                    runs = j.runs()
                    steps = [job.step.value for job in runs[0].jobs] if runs else []
            if steps.count(step) >= count:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the jobs never reached {step}: {steps}")
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_kill_while_a_submit_is_in_flight_never_sends_it_again_unasked(service, project, tmp_path):
    folder = _copy(project, tmp_path / "p")
    journal = tmp_path / "journal.sqlite"
    submits = _submits(service)
    service.add_fault(Fault("submit", "slow", times=1, delay=5.0))  # the service has the request; its answer is late
    proc = subprocess.Popen(_retake(folder), env=_env(service, journal), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when(proc, journal, "submitting", 1)
    time.sleep(5.0)
    assert _submits(service) - submits == 1, "the request reached the service"
    resumed = _cli([sys.executable, "-m", "ltx_retake", "resume"], _env(service, journal))
    assert resumed.returncode == 4, resumed.stderr
    assert "may have reached the service" in resumed.stdout and "--resubmit" in resumed.stdout
    # the other job, never sent, went through; the uncertain one was left alone
    assert _submits(service) - submits == 2, "resume sent a request whose fate it did not know"
    with Journal(journal) as j:
        (run,) = j.runs()
        assert run.state == "incomplete" and sorted(job.step.value for job in run.jobs) == ["spliced", "submitting"]
    again = _cli([sys.executable, "-m", "ltx_retake", "resume", "--resubmit"], _env(service, journal))
    assert again.returncode == 0, again.stderr
    assert _submits(service) - submits == 3, "--resubmit sends it again, as the user asked"
    names = [c.name for c in read_timeline(folder / "out.otio").find_clips()]
    assert names == ["A", "B", "B_retake_v001", "B", "B_retake_v002", "B", "C"], names


def test_resume_refuses_a_run_another_live_process_owns(service, project, tmp_path):
    folder = _copy(project, tmp_path / "p")
    journal = tmp_path / "journal.sqlite"
    crashed = _cli(_retake(folder), _env(service, journal, failpoint="queued"))
    assert crashed.returncode == -signal.SIGKILL
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Journal(journal) as j:
            (run,) = j.runs()
            j._write("UPDATE runs SET owner_pid=?, state='running' WHERE id=?", (holder.pid, run.id))
        again = _cli([sys.executable, "-m", "ltx_retake", "resume", run.id], _env(service, journal))
        assert again.returncode == 2 and f"still running in process {holder.pid}" in again.stderr
    finally:
        holder.kill()
        holder.wait()
    finished = _cli([sys.executable, "-m", "ltx_retake", "resume", run.id], _env(service, journal))
    assert finished.returncode == 0, finished.stderr
