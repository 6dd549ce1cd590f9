"""Nothing lost, nothing paid for nothing, nothing leaked: full disks, runs at once, refusals before paying, Ctrl-C
after the service finished, hostile files and journals, kills. Real files, real processes (the CLI in subprocesses
where it matters), a local service over loopback, and a size-limited file system where this machine allows one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.adapters.local_service import Fault, LocalService, LocalServiceConfig
from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.adapters.timeline_files import read_document, read_timeline, save, write_timeline
from ltx_retake.atomic import WriteFailed, write_atomic
from ltx_retake.compose import wiring_for
from ltx_retake.errors import InputError, TimelineReadError
from ltx_retake.journal import Journal
from ltx_retake.paths import file_sha256
from ltx_retake.ports import RetakeMode
from ltx_retake.progress import Step
from ltx_retake.orders import RetakeOrder
from ltx_retake.runner import resume, run
from ltx_retake.settings import Secret, Settings

KEY = "safety-test-key-9d2e"
RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
WINDOW_A, WINDOW_B = ("24", "72"), ("144", "192")     # 2 s on clip A, 2 s on clip B (24 fps, frames from the start)


# -- fixtures ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service():
    """The retake service, outliving the CLI processes as fal does; the fal protocol over loopback."""
    with LocalService(LocalServiceConfig(require_key=KEY, processing_delay=0.2)) as svc:
        yield svc


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A 10 s indexed source and a timeline of two 5 s clips, A and B, on V1 (and their sound on A1)."""
    folder = tmp_path_factory.mktemp("safety_project")
    src = write_indexed_clip(folder / "source.mov", frames=240, rate=Fraction(24), size=(192, 108), timecode="01:00:00:00")
    tl = otio.schema.Timeline(name="safety")
    tl.global_start_time = RT(86400, 24)
    video = otio.schema.Track(name="V1")
    for name, first in (("A", 0), ("B", 120)):
        ref = otio.schema.ExternalReference(target_url=str(src), available_range=TR(RT(86400, 24), RT(240, 24)))
        video.append(otio.schema.Clip(name=name, media_reference=ref, source_range=TR(RT(86400 + first, 24), RT(120, 24))))
    tl.tracks.append(video)
    write_timeline(tl, folder / "cut.otio")
    return folder


def copy_project(project: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("cut.otio", "source.mov"):
        (dest / name).write_bytes((project / name).read_bytes())
    return dest


def settings_for(service) -> Settings:
    return Settings(fal_queue_url=service.base_url, fal_rest_url=service.base_url, fal_key=Secret(KEY))


def env_for(service, journal: Path, **extra) -> dict:
    env = dict(os.environ, FAL_KEY=KEY, LTX_RETAKE_FAL_QUEUE_URL=service.base_url,
               LTX_RETAKE_FAL_REST_URL=service.base_url, LTX_RETAKE_JOURNAL=str(journal))
    env.pop("LTX_RETAKE_FAILPOINT", None)
    env.update(extra)
    return env


def cli(*args, env: dict, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ltx_retake", *map(str, args)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def retake_args(folder: Path, window: tuple[str, str], prompt: str, output: str, *extra) -> list:
    return ["retake", folder / "cut.otio", "--range", *window, "--prompt", prompt, "--mode", "video", "--provider",
            "fal", "-o", output, "--yes", *extra]


def order_for(folder: Path, output: Path, window=WINDOW_A, **kw) -> RetakeOrder:
    values = dict(timeline=folder / "cut.otio", output=output, prompt="a red door", mode=RetakeMode.REPLACE_VIDEO,
                  provider="fal", model="fal-ai/ltx-2/retake-video", range=window)
    values.update(kw)
    return RetakeOrder(**values)


def submits(service) -> int:
    return len(service.requests_to("submit"))


def versions_in(timeline: Path) -> dict[str, tuple[str, str]]:
    """Every version a timeline holds: file path -> (its prompt, the sha256 its provenance promises)."""
    out = {}
    for clip in read_timeline(timeline).find_clips():
        for key, ref in clip.media_references().items():
            if key.startswith("retake_v"):
                meta = ref.metadata.get("ltx_retake", {})
                out[ref.target_url] = (meta.get("prompt"), meta.get("sha256"))
    return out


def assert_versions_whole(timeline: Path, prompts: set[str]) -> None:
    """Every version the timeline shows is the file its provenance describes (no other run wrote over it)."""
    found = versions_in(timeline)
    assert {p for p, _ in found.values()} == prompts, found
    for path, (_, sha) in found.items():
        assert file_sha256(Path(path)) == sha, f"{path} is not the file {timeline.name} was given"


def leftovers(folder: Path) -> list[str]:
    """Work files, temp files and claims a run left: none may stay once it ended."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if ".partial" in p.name or p.name.endswith((".part", ".claim")) or p.name in (".work", ".claims"))


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A file system of `size` mounted at `path` (tmpfs), or a clean skip where this machine does not allow one."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({done.stderr.decode(errors='replace').strip()[:80]})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the disk of `folder` up to `leave` bytes."""
    import shutil

    free = shutil.disk_usage(folder).free - leave
    with open(folder / "filler.bin", "wb") as out:
        while free > 0:
            chunk = min(free, 1 << 20)
            try:
                out.write(b"\0" * chunk)
                out.flush()
            except OSError:
                break
            free -= chunk


@pytest.fixture
def read_only(tmp_path):
    """make(folder): a folder nobody can write in (root: the immutable flag); skipped where neither works."""
    made = []

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        if os.access(folder, os.W_OK) and os.geteuid() == 0:
            if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
                pytest.skip("no way to make a read-only folder here")
        made.append(folder)
        return folder

    yield make
    for folder in made:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


# -- two processes at once ------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("trial", [1, 2])
def test_runs_started_together_on_one_clip_get_distinct_versions_and_lose_nothing(trial, service, project, tmp_path):
    """Three CLI processes retake the same window at once: two share a journal, one has its own. Each exits 0, each
    timeline shows its own prompt's version, and every version file is the one its timeline describes."""
    folder = copy_project(project, tmp_path / "p")
    before = file_sha256(folder / "cut.otio")
    shared, own = tmp_path / "shared.sqlite", tmp_path / "own.sqlite"
    procs = {name: subprocess.Popen([sys.executable, "-m", "ltx_retake", *map(str, retake_args(folder, WINDOW_A, name, folder / f"{name}.otio"))],
                                    env=env_for(service, journal), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, journal in (("one", shared), ("two", shared), ("three", own))}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}: {err}"
    files = set()
    for name in procs:
        assert_versions_whole(folder / f"{name}.otio", {name})
        files |= set(versions_in(folder / f"{name}.otio"))
    assert len(files) == 3, f"two runs were given one version file: {files}"
    numbers = sorted(Path(f).name for f in files if Path(f).parent == folder / "cut_retakes")
    assert "A_retake_v001.mov" in numbers and "A_retake_v002.mov" in numbers, numbers   # one journal: numbered apart
    assert file_sha256(folder / "cut.otio") == before and leftovers(folder) == []


@pytest.mark.slow
@pytest.mark.parametrize("trial", [1, 2])
def test_saves_of_one_timeline_at_once_merge_and_lose_no_splice(trial, service, project, tmp_path):
    """Four CLI processes at once, each with its own journal: two retake A and B of one timeline --in-place, two
    retake A and B into one shared -o. Every retake lands; none is silently gone."""
    folder = copy_project(project, tmp_path / "p")
    (folder / "mine.otio").write_bytes((folder / "cut.otio").read_bytes())
    jobs = [("in-a", WINDOW_A, folder / "mine.otio", ["--in-place"]), ("in-b", WINDOW_B, folder / "mine.otio", ["--in-place"]),
            ("out-a", WINDOW_A, folder / "shared.otio", []), ("out-b", WINDOW_B, folder / "shared.otio", [])]
    procs = []
    for name, window, output, extra in jobs:
        args = retake_args(folder, window, name, output, *extra)
        if extra:
            args[1] = folder / "mine.otio"
        procs.append((name, subprocess.Popen([sys.executable, "-m", "ltx_retake", *map(str, args)],
                                             env=env_for(service, tmp_path / f"{name}.sqlite"), stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)))
    for name, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}: {err}"
    assert_versions_whole(folder / "mine.otio", {"in-a", "in-b"})
    assert_versions_whole(folder / "shared.otio", {"out-a", "out-b"})
    assert leftovers(folder) == []


# -- saves that cannot lie ------------------------------------------------------------------------------------------

def many_clips(n: int, media: Path | None = None) -> otio.schema.Timeline:
    """`n` clips; of one small media file (an .otioz carries it), else of files that need not exist."""
    tl = otio.schema.Timeline(name="long")
    track = otio.schema.Track(name="V1")
    for i in range(n):
        url = str(media) if media else f"/media/shot{i:04d}.mov"
        track.append(otio.schema.Clip(name=f"shot{i:04d}", media_reference=otio.schema.ExternalReference(
            target_url=url), source_range=TR(RT(0, 24), RT(48, 24))))
    tl.tracks.append(track)
    return tl


_FULL_DISK_SCRIPT = r"""
import resource, signal, sys
from pathlib import Path
from ltx_retake.adapters.timeline_files import save
from ltx_retake.atomic import WriteFailed
sys.path.insert(0, sys.argv[2])
from test_safety import many_clips
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # a write past the limit fails (EFBIG) instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
media = Path(sys.argv[3])
for suffix in (".otio", ".otioz"):
    try:
        save(many_clips(300, media), Path(sys.argv[1]) / f"mine{suffix}", overwrite=True, accept_losses=True)
        print("written")
    except WriteFailed as exc:
        print("refused:", exc)
"""


@pytest.mark.parametrize("disk", ["tmpfs", "file size limit"])
def test_a_full_disk_is_a_sentence_and_the_old_timeline_stays(disk, tmp_path):
    """Over the editor's own file (--in-place, --force, `use`): a disk that fills mid-write replaces nothing."""
    folder = tmp_path / "disk"
    media = tmp_path / "tiny.mov"
    media.write_bytes(os.urandom(24_000))   # carried inside the .otioz: past the 20 KB file size limit
    earlier = {}
    with (small_disk(folder, "64k") if disk == "tmpfs" else contextlib.nullcontext(folder.mkdir())):
        for suffix in (".otio", ".otioz"):
            write_timeline(many_clips(3, media), folder / f"mine{suffix}")
            earlier[suffix] = (folder / f"mine{suffix}").read_bytes()
        if disk == "tmpfs":
            fill(folder, leave=4096)
            said = []
            for suffix in (".otio", ".otioz"):
                with pytest.raises(WriteFailed) as refused:
                    save(many_clips(300, media), folder / f"mine{suffix}", overwrite=True, accept_losses=True)
                said.append(str(refused.value))
        else:
            done = subprocess.run([sys.executable, "-c", _FULL_DISK_SCRIPT, str(folder), str(Path(__file__).parent), str(media)],
                                  capture_output=True, text=True, timeout=60)
            said = done.stdout.strip().splitlines()
            assert len(said) == 2, done.stderr
        for suffix, text in zip((".otio", ".otioz"), said):
            assert "nothing was replaced" in text or "was not written" in text, text
            assert (folder / f"mine{suffix}").read_bytes() == earlier[suffix], f"{suffix} was replaced"
        assert sorted(p.name for p in folder.iterdir() if p.name != "filler.bin") == ["mine.otio", "mine.otioz"]


def test_a_writer_that_reports_success_after_a_short_write_replaces_nothing(tmp_path):
    """OTIO's JSON writer once said 'done' after 4 KB of a full disk: the read-back refuses the short file."""
    dest = tmp_path / "mine.otio"
    write_timeline(many_clips(3), dest)
    earlier = dest.read_bytes()
    whole = otio.adapters.write_to_string(many_clips(200), "otio_json").encode()

    def lying_writer(temp: Path) -> None:
        temp.write_bytes(whole[:4096])

    def read_back(temp: Path) -> None:
        try:
            otio.adapters.read_from_file(str(temp), adapter_name="otio_json")
        except Exception as exc:
            raise InputError(f"the written file does not read back ({type(exc).__name__})") from None

    with pytest.raises(WriteFailed, match=r"mine\.otio was not written: the written file does not read back"):
        write_atomic(dest, lying_writer, verify=read_back)
    assert dest.read_bytes() == earlier and [p.name for p in tmp_path.iterdir()] == ["mine.otio"]


@pytest.mark.slow
def test_no_room_is_refused_before_paying_and_a_disk_that_fills_later_keeps_the_paid_result(service, project, tmp_path):
    folder = copy_project(project, tmp_path / "p")
    disk = tmp_path / "disk"
    with small_disk(disk, "256k"), Journal(tmp_path / "j.sqlite") as journal, \
            wiring_for("fal", settings_for(service)) as wiring:
        mine = disk / "mine.otio"
        mine.write_bytes((folder / "cut.otio").read_bytes())
        earlier = mine.read_bytes()
        sent = submits(service)
        # the versions would go beside the timeline: their estimate does not fit, so nothing is sent
        with pytest.raises(InputError, match=r"Not enough space on the disk of .*disk.*MB are free"):
            run(order_for(folder, mine, timeline=mine, in_place=True), wiring, journal=journal)
        assert submits(service) == sent and journal.runs() == []
        # room when planned, full by the time the timeline is written (the confirmation is the moment in between)
        order = order_for(folder, mine, timeline=mine, in_place=True, media_dir=tmp_path / "media")
        outcome = run(order, wiring, journal=journal, confirm=lambda jobs: fill(disk) or True)
        (job,) = outcome.jobs
        assert outcome.exit_code != 0 and job.recoverable and "No space left" in job.error, job.error
        assert mine.read_bytes() == earlier and job.version.path.is_file()
        assert [row["status"] for row in journal.ledger()] == ["charged"]
        (disk / "filler.bin").unlink()
        again = resume(outcome.run_id, wiring, journal)
        assert again.exit_code == 0 and again.jobs[0].step == Step.SPLICED
        assert submits(service) == sent + 1, "the paid result was paid for again"
        assert_versions_whole(mine, {"a red door"})
        assert leftovers(disk) == [] and leftovers(tmp_path / "media") == []


# -- check before paying; resume -o; drop -----------------------------------------------------------------------------

def test_what_would_fail_after_paying_is_refused_before_sending(service, project, tmp_path, read_only):
    folder = copy_project(project, tmp_path / "p")
    two = read_timeline(folder / "cut.otio")
    extra = otio.schema.Track(name="V2")
    extra.append(two.tracks[0][0].clone())
    two.tracks.append(extra)
    write_timeline(two, folder / "two.otio")
    (folder / "a-folder.otio").mkdir()
    locked = read_only(tmp_path / "locked")
    sent = submits(service)
    cases = [
        (order_for(folder, folder / "out.edl", timeline=folder / "two.otio"), r"EDL holds one picture track"),
        (order_for(folder, folder / "a-folder.otio", overwrite=True), r"a-folder\.otio is a folder"),
        (order_for(folder, locked / "out.otio"), r"Cannot write the timeline out\.otio in .*locked"),
        (order_for(folder, folder / "out.otio", media_dir=locked / "media"), r"Cannot write retake media .* in .*locked"),
    ]
    with wiring_for("fal", settings_for(service)) as wiring:
        for order, refusal in cases:
            with pytest.raises(InputError, match=refusal):
                run(order, wiring)
    assert submits(service) == sent, "a request was sent for a run that could not have been saved"
    assert sorted(p.name for p in folder.iterdir()) == ["a-folder.otio", "cut.otio", "source.mov", "two.otio"]


@pytest.mark.slow
def test_a_paid_run_that_cannot_save_is_resumed_elsewhere_or_dropped_keeping_what_it_paid(service, project, tmp_path, read_only):
    folder = copy_project(project, tmp_path / "p")
    journal_file = tmp_path / "j.sqlite"
    sent = submits(service)
    runs = []
    with Journal(journal_file) as journal, wiring_for("fal", settings_for(service)) as wiring:
        for name, window in (("kept", WINDOW_A), ("dropped", WINDOW_B)):
            out = tmp_path / f"out-{name}" / "out.otio"
            # the output's folder can be written when the run is planned, and not any more when it saves
            outcome = run(order_for(folder, out, window, prompt=name, media_dir=tmp_path / "media"), wiring,
                          journal=journal, confirm=lambda jobs, out=out: bool(read_only(out.parent)))
            (job,) = outcome.jobs
            assert job.recoverable and outcome.exit_code != 0 and not out.exists()
            runs.append((outcome.run_id, job))
    env = env_for(service, journal_file)
    (kept_id, kept), (dropped_id, dropped) = runs
    stuck = cli("resume", kept_id, env=env, cwd=tmp_path)
    assert stuck.returncode == 2 and "-o OTHER.otio" in stuck.stderr and "Traceback" not in stuck.stderr, stuck.stderr
    elsewhere = cli("resume", kept_id, "-o", "elsewhere.otio", env=env, cwd=tmp_path)   # relative to where it runs
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert_versions_whole(tmp_path / "elsewhere.otio", {"kept"})
    gone = cli("jobs", "--drop", dropped_id[-6:], env=env, cwd=tmp_path)
    assert gone.returncode == 0 and f"dropped\t{dropped_id}" in gone.stdout, gone.stderr
    assert str(dropped.version.path) in gone.stdout and dropped.version.path.is_file()   # the paid file is kept
    again = cli("resume", dropped_id, env=env)
    assert again.returncode == 2 and "was dropped" in again.stderr
    nothing = cli("resume", env=env)
    assert nothing.returncode == 0 and "Nothing to resume" in nothing.stderr
    listed = {r["run"]: r for r in json.loads(cli("jobs", "--json", env=env).stdout)}
    assert listed[kept_id]["state"] == "finished" and listed[dropped_id]["state"] == "dropped"
    costs = json.loads(cli("costs", "--json", env=env).stdout)
    assert sum(b["requests"] for b in costs["by_day"]) == 2 and costs["by_day"][0]["spent_usd"] > 0
    with Journal(journal_file) as journal:
        assert {row["kept"] for row in journal.ledger()} >= {str(dropped.version.path)}
    assert submits(service) == sent + 2, "a paid request was sent again"
    assert leftovers(tmp_path / "media") == []


# -- Ctrl-C: a paid result is never thrown away; a cancelled run leaves nothing --------------------------------------

def wait_for_step(journal: Path, step: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if journal.exists():
            with Journal(journal) as j:
                runs = j.runs()
                if runs and any(job.step.value == step for job in runs[0].jobs):
                    return
        time.sleep(0.05)
    pytest.fail(f"the run never reached {step}")


def start(args: list, env: dict, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ltx_retake", *map(str, args)], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_ctrl_c_while_downloading_keeps_the_paid_result_for_resume_from_any_folder(service, project, tmp_path):
    folder = copy_project(project, tmp_path / "p")
    journal = tmp_path / "j.sqlite"
    env = env_for(service, journal)
    sent = submits(service)
    service.add_fault(Fault("download", "slow", times=1, delay=20.0))
    # typed as an editor types it: paths relative to the project folder
    proc = start(["retake", "cut.otio", "--range", *WINDOW_A, "--prompt", "dusk", "--mode", "video", "--provider", "fal",
                  "-o", "out.otio", "--yes"], env, cwd=folder)
    wait_for_step(journal, "downloading", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "paid for and kept" in out and "ltx-retake resume" in out and "Traceback" not in err
    listed = json.loads(cli("jobs", "--json", env=env).stdout)[0]
    assert listed["state"] == "incomplete" and listed["jobs"][0]["recoverable"]
    costs = json.loads(cli("costs", "--json", env=env).stdout)
    assert costs["by_day"][0]["spent_usd"] > 0 and costs["by_day"][0]["cancelled"] == 0
    resumed = cli("resume", env=env, cwd=tmp_path.parent)                              # from another folder
    assert resumed.returncode == 0, resumed.stderr
    assert "changed since" not in resumed.stderr and "resuming at failed" in resumed.stderr
    assert submits(service) == sent + 1, "the paid request was sent again"
    assert_versions_whole(folder / "out.otio", {"dusk"})
    assert leftovers(folder) == []


@pytest.mark.slow
def test_ctrl_c_before_the_result_cancels_on_the_service_and_leaves_nothing_and_twice_leaves_at_once(project, tmp_path):
    folder = copy_project(project, tmp_path / "p")
    with LocalService(LocalServiceConfig(require_key=KEY, processing_delay=4.0)) as slow:   # long enough to be stopped
        for presses in (1, 2):
            journal = tmp_path / f"j{presses}.sqlite"
            proc = start(retake_args(folder, WINDOW_A, "night", folder / f"out{presses}.otio"), env_for(slow, journal))
            wait_for_step(journal, "generating", proc)
            proc.send_signal(signal.SIGINT)
            if presses == 2:
                time.sleep(0.05)
                proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 130, err
            assert "Traceback" not in err and "Exception ignored" not in err, err
            with Journal(journal) as j:
                (run_record,) = j.runs()
                ledger = [row["status"] for row in j.ledger()]
            if presses == 1:
                assert [job.step.value for job in run_record.jobs] == ["cancelled"]
                assert ledger == ["cancelled"]
                assert not (folder / "cut_retakes").exists(), "a cancelled run left work files"
            else:   # left at once: the journal shows the run interrupted, and `resume` follows it later
                assert "Left without waiting" in err and run_record.state == "interrupted"
        assert len(slow.requests_to("cancel")) >= 1
    assert not (folder / "out1.otio").exists() and not (folder / "out2.otio").exists()


# -- no crash on any input, no debris after a kill -------------------------------------------------------------------

def deep_otio(depth: int) -> bytes:
    return (b'{"OTIO_SCHEMA": "Timeline.1", "name": "x", "tracks": ' + b'{"OTIO_SCHEMA": "Stack.1", "children": [' * depth
            + b"]}" * depth + b"}")


def test_a_timeline_nested_absurdly_deep_is_refused_at_once_with_a_sentence(tmp_path):
    import zipfile

    for depth in (20_000, 50_000):
        path = tmp_path / f"deep{depth}.otio"
        path.write_bytes(deep_otio(depth))
        started = time.monotonic()
        with pytest.raises(TimelineReadError, match=rf"deep{depth}\.otio nests {2 * depth + 1} levels deep"):
            read_document(path)
        assert time.monotonic() - started < 2
    with zipfile.ZipFile(tmp_path / "deep.otioz", "w") as z:
        z.writestr("content.otio", deep_otio(50_000))
    with pytest.raises(TimelineReadError, match=r"deep\.otioz/content\.otio nests"):
        read_document(tmp_path / "deep.otioz")
    done = cli("versions", tmp_path / "deep50000.otio", env={**os.environ})   # it crashed the interpreter (SIGSEGV)
    assert done.returncode == 2 and "nests 100001 levels deep" in done.stderr, done.stderr


def journal_with_runs(path: Path, runs: int, *, step: str | None = None) -> None:
    """A journal holding `runs` runs (no jobs), and with `step` one job in that (unknown) state."""
    with Journal(path) as j:
        for i in range(runs):
            j._write("INSERT INTO runs (id, created, updated, timeline, timeline_sha, output, media_dir, work_dir, "
                     "order_json, state, owner_pid, owner_host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     (f"20260101-000000-{i:06d}", i, i, "/t/cut.otio", "x", "/t/out.otio", "/t/m", "/t/m/.work/w", "{}",
                      "finished", None, None))
        if step:
            j._write("INSERT INTO jobs (id, run_id, name, step, plan_json, version_json, prompt, mode, provider, model, "
                     "updated) VALUES (?,?,?,?,?,?,?,?,?,?,?)", ("20260101-000000-000000/job1", "20260101-000000-000000",
                                                                "job1", step, "{}", "{}", "p", "replace_video", "fal", "m", 0))


def test_every_journal_fault_is_a_sentence(tmp_path):
    env = dict(os.environ)
    # damaged pages: a copy is kept aside, the sentence says where and how to start afresh
    damaged = tmp_path / "damaged.sqlite"
    journal_with_runs(damaged, 400)
    with open(damaged, "r+b") as fh:
        fh.seek(4096 * 3)
        fh.write(os.urandom(4096 * 2))
    said = cli("jobs", env={**env, "LTX_RETAKE_JOURNAL": str(damaged)})
    assert said.returncode == 2 and "is damaged" in said.stderr and "a copy is kept at" in said.stderr, said.stderr
    assert "To start a fresh journal" in said.stderr and "Traceback" not in said.stderr
    # a step this version does not know: named, with the way out, which works
    odd = tmp_path / "odd.sqlite"
    journal_with_runs(odd, 1, step="teleporting")
    said = cli("jobs", env={**env, "LTX_RETAKE_JOURNAL": str(odd)})
    assert said.returncode == 2 and "step 'teleporting'" in said.stderr and "jobs --drop 20260101-000000-000000" in said.stderr
    assert cli("jobs", "--drop", "20260101-000000-000000", env={**env, "LTX_RETAKE_JOURNAL": str(odd)}).returncode == 0
    assert cli("jobs", env={**env, "LTX_RETAKE_JOURNAL": str(odd)}).returncode == 0
    # locked by another program: waited for, with a word; then a sentence
    locked = tmp_path / "locked.sqlite"
    journal_with_runs(locked, 1)
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time; db = sqlite3.connect(sys.argv[1], "
                               "isolation_level=None); db.execute('BEGIN IMMEDIATE'); print('held', flush=True); "
                               "time.sleep(1.5); db.execute('COMMIT')", str(locked)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        heard: list[str] = []
        with Journal(locked, lock_wait_s=0.3, on_wait=heard.append) as j:
            assert len(j.runs()) == 1                       # reading goes on while another program writes
            with pytest.raises(InputError, match=r"stayed locked by another program for \d+ s; close it"):
                j.finish_run("20260101-000000-000000")
        with Journal(locked, lock_wait_s=10, on_wait=heard.append) as j:
            j.finish_run("20260101-000000-000000")          # waited for, then done
        assert heard and "is locked by another program; waiting for it" in heard[0]
    finally:
        holder.wait(10)


def test_a_closed_pipe_a_read_only_demo_folder_and_a_killed_process_leave_no_trace(tmp_path, read_only):
    journal = tmp_path / "many.sqlite"
    journal_with_runs(journal, 3000)
    env = dict(os.environ, LTX_RETAKE_JOURNAL=str(journal))
    proc = subprocess.Popen([sys.executable, "-m", "ltx_retake", "jobs", "--all"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()                                         # `ltx-retake jobs | head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 141 and err == "", err
    locked = read_only(tmp_path / "locked")
    demo = cli("demo", "--dir", locked / "demo", env=env)
    assert demo.returncode == 2 and "Cannot write the demo project" in demo.stderr and "--dir" in demo.stderr
    # a process with the local service's storage and an ffmpeg at work, killed with SIGKILL
    script = ("import sys, threading; from ltx_retake.adapters.local_service import LocalService; "
              "from ltx_retake.adapters.ffmpeg_exe import run_ffmpeg; svc = LocalService(); svc.start(); "
              "print(svc.storage_dir, flush=True); run_ffmpeg(['-re', '-f', 'lavfi', '-i', 'testsrc=size=64x64:rate=25', "
              "'-t', '600', '-f', 'null', '-'])")
    victim = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    storage = Path(victim.stdout.readline().strip())
    ffmpeg = None
    deadline = time.monotonic() + 20
    while ffmpeg is None and time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == victim.pid and "ffmpeg" in stat.with_name("comm").read_text():
                ffmpeg = int(stat.parent.name)
        time.sleep(0.05)
    assert ffmpeg is not None and storage.is_dir()
    victim.kill()
    victim.wait(10)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{ffmpeg}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            os.waitpid(ffmpeg, os.WNOHANG)
        stat = Path(f"/proc/{ffmpeg}/stat")
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().rsplit(") ", 1)[1][:1] == "Z":
                break
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{ffmpeg}").exists(), "ffmpeg went on after its parent was killed"
    assert storage.is_dir()                                     # the uploads stayed behind the kill ...
    assert cli("costs", env=env).returncode == 0
    assert not storage.exists(), "the next start did not sweep the killed process's scratch folder"
