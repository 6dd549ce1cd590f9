"""The job journal on real SQLite, identical requests reused, the cost estimate, the confirmation and the ledger."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.adapters.local_service import LocalService, LocalServiceConfig
from ltx_retake.compose import offline_wiring, wiring_for
from ltx_retake.costs import estimate, spend_report
from ltx_retake.errors import CancelledError, InputError
from ltx_retake.journal import Journal, plan_from, plan_json
from ltx_retake.ports import RetakeMode
from ltx_retake.progress import Step
from ltx_retake.orders import RetakeOrder, order_from, order_json
from ltx_retake.runner import prepare, run
from ltx_retake.settings import Secret, Settings, load_settings

from media_fixtures import make_project

KEY = "journal-test-key-77aa"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("journal_project")
    cut, _ = make_project(folder, Fraction(25), "10:00:00:00", seconds=8.0)
    return cut


def _order(cut: Path, out: Path, **kw) -> RetakeOrder:
    values = dict(timeline=cut, output=out, prompt="a red door", mode=RetakeMode.REPLACE_VIDEO, provider="fal",
                  model="fal-ai/ltx-2/retake-video", clip="B")
    values.update(kw)
    return RetakeOrder(**values)


def test_a_plan_and_an_order_survive_the_journal_exactly(project, tmp_path):
    order = _order(project, tmp_path / "out.otio", range=None, markers=False, fresh=True, rate=25.0)
    _, jobs, _ = prepare(order, offline_wiring(Settings()))
    plan = jobs[0].plan
    again = plan_from(json.loads(json.dumps(plan_json(plan))))
    assert again == plan
    assert again.media.frame_rate == Fraction(25) and isinstance(again.cut.frame_rate, Fraction)
    assert order_from(json.loads(json.dumps(order_json(order)))) == order


def test_runs_are_recorded_and_a_dead_owner_makes_a_run_interrupted(project, tmp_path):
    _, jobs, media_dir = prepare(_order(project, tmp_path / "out.otio"), offline_wiring(Settings()))
    with Journal(tmp_path / "j.sqlite") as journal:
        run_id = journal.begin_run(order={"x": 1}, timeline=project, timeline_sha="abc", output=tmp_path / "out.otio",
                                   media_dir=media_dir, work_dir=media_dir / ".work" / "w", jobs=jobs)
        jobs[0].step = Step.GENERATING
        journal.record(jobs[0])
        record = journal.run(run_id[-6:])          # any unique part of the id finds it
        assert record.state == "running" and record.jobs[0].step == Step.GENERATING
        assert journal.interrupted() == []          # its owner (this process) is alive
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        journal._write("UPDATE runs SET owner_pid=? WHERE id=?", (gone.pid, run_id))
        (interrupted,) = journal.interrupted()
        assert interrupted.id == run_id and interrupted.state == "interrupted"
        journal.claim(run_id)
        assert journal.run(run_id).owner_pid == os.getpid()
        with pytest.raises(InputError, match="No run 'nope'"):
            journal.run("nope")


def test_a_journal_from_a_newer_version_or_a_damaged_file_is_refused_with_a_sentence(tmp_path):
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(InputError, match="newer ltx-retake"):
        Journal(newer)
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError, match=r"is damaged .*a copy is kept at .*damaged-.*To start a fresh journal, delete"):
        Journal(damaged)
    (backup,) = tmp_path.glob("damaged.sqlite.damaged-*")
    assert backup.read_bytes() == damaged.read_bytes()


def test_a_journal_an_earlier_version_wrote_is_brought_up_to_date_and_keeps_its_runs(tmp_path):
    """A schema 2 journal (no planned timeline per run) opens, keeps its runs, and takes new runs with their timeline."""
    path = tmp_path / "older.sqlite"
    with Journal(path) as journal:
        journal._write("INSERT INTO runs (id, created, updated, timeline, timeline_sha, output, media_dir, work_dir, "
                       "order_json, state) VALUES (?,?,?,?,?,?,?,?,?,?)",
                       ("20261101-000000-abcdef", 1.0, 1.0, "/t/cut.otio", "x", "/t/out.otio", "/t/m", "/t/m/.work/w",
                        "{}", "finished"))
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE runs DROP COLUMN planned")      # as schema 2 had it
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    with Journal(path) as journal:
        (old,) = journal.runs()
        assert old.id == "20261101-000000-abcdef" and old.output == Path("/t/out.otio")
        assert journal.planned(old.id) is None
        timeline = otio.schema.Timeline(name="planned here")
        run_id = journal.begin_run(order={}, timeline=tmp_path / "cut.otio", timeline_sha="y", output=None,
                                   media_dir=tmp_path / "m", work_dir=tmp_path / "w", jobs=[], planned=timeline)
        assert journal.run(run_id).output is None and journal.planned(run_id).name == "planned here"
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    db.close()


def test_the_estimate_names_its_basis_and_asks_when_a_price_is_unknown(project, tmp_path):
    _, jobs, _ = prepare(_order(project, tmp_path / "o.otio"), offline_wiring(Settings()))
    est = estimate([j.plan for j in jobs])
    seconds = jobs[0].plan.input_seconds
    assert est.usd == pytest.approx(round(0.10 * seconds, 2)) and est.unpriced == 0
    assert "$0.10/s" in est.basis[0] and "fal model page" in est.basis[0]
    assert est.needs_confirmation(0.05) and not est.needs_confirmation(100.0)
    _, rc_jobs, _ = prepare(_order(project, tmp_path / "o.otio", provider="runcomfy", model="ltx/ltx-2/retake-video"),
                            offline_wiring(Settings()))
    unknown = estimate([j.plan for j in rc_jobs])
    assert unknown.unpriced == 1 and unknown.needs_confirmation(1000.0)


def test_spend_is_reported_by_timeline_and_by_day():
    rows = [
        {"timeline": "/a.otio", "usd": 0.5, "status": "charged", "at": 1_700_000_000},
        {"timeline": "/a.otio", "usd": 0.25, "status": "sent", "at": 1_700_000_100},
        {"timeline": "/b.otio", "usd": 0.4, "status": "failed", "at": 1_700_100_000},
        {"timeline": "/b.otio", "usd": None, "status": "charged", "at": 1_700_100_000},
    ]
    report = spend_report(rows)
    by_tl = {b["key"]: b for b in report["by_timeline"]}
    assert by_tl["/a.otio"]["spent_usd"] == 0.75 and by_tl["/a.otio"]["requests"] == 2
    assert by_tl["/b.otio"] == {"key": "/b.otio", "requests": 2, "spent_usd": 0.0, "unpriced": 1, "failed": 1, "cancelled": 0}
    assert sum(b["requests"] for b in report["by_day"]) == 4 and len(report["by_day"]) == 2


@pytest.fixture()
def fal_local():
    with LocalService(LocalServiceConfig(require_key=KEY)) as svc:
        settings = Settings(fal_queue_url=svc.base_url, fal_rest_url=svc.base_url, fal_key=Secret(KEY))
        yield svc, settings


def test_an_identical_request_reuses_the_earlier_result_unless_fresh(project, tmp_path, fal_local):
    svc, settings = fal_local
    with Journal(tmp_path / "j.sqlite") as journal, wiring_for("fal", settings) as wiring:
        first = run(_order(project, tmp_path / "one.otio", media_dir=tmp_path / "m"), wiring, journal=journal)
        assert first.exit_code == 0 and svc.submits["fal"] == 1
        second = run(_order(project, tmp_path / "two.otio", media_dir=tmp_path / "m"), wiring, journal=journal)
        assert second.exit_code == 0 and svc.submits["fal"] == 1, "an identical request was paid for twice"
        (a,), (b,) = first.jobs, second.jobs
        assert b.reused_from == a.request_id and b.version.path != a.version.path
        assert b.version.path.read_bytes() == a.version.path.read_bytes()
        assert b.version.provenance["reused_from"] == a.request_id
        other = run(_order(project, tmp_path / "three.otio", media_dir=tmp_path / "m", prompt="a blue door"), wiring,
                    journal=journal)
        fresh = run(_order(project, tmp_path / "four.otio", media_dir=tmp_path / "m", fresh=True), wiring, journal=journal)
        assert other.exit_code == fresh.exit_code == 0 and svc.submits["fal"] == 3
        assert fresh.jobs[0].reused_from is None
        statuses = [row["status"] for row in journal.ledger()]
        assert statuses == ["charged"] * 3
        assert all(r.state == "finished" for r in journal.runs())


def test_declining_the_estimate_sends_nothing(project, tmp_path, fal_local):
    svc, settings = fal_local
    seen = []
    with Journal(tmp_path / "j.sqlite") as journal, wiring_for("fal", settings) as wiring:
        with pytest.raises(CancelledError, match="Nothing was sent"):
            run(_order(project, tmp_path / "out.otio"), wiring, journal=journal, confirm=lambda jobs: seen.append(jobs) or False)
        assert journal.runs() == []
    assert len(seen) == 1 and sum(svc.submits.values()) == 0 and not (tmp_path / "out.otio").exists()


def test_the_cli_asks_a_script_for_yes_above_the_threshold_and_reports_jobs_and_costs(project, tmp_path, fal_local):
    svc, _ = fal_local
    env = dict(os.environ, FAL_KEY=KEY, LTX_RETAKE_FAL_QUEUE_URL=svc.base_url, LTX_RETAKE_FAL_REST_URL=svc.base_url,
               LTX_RETAKE_COST_THRESHOLD="0.05")
    args = [sys.executable, "-m", "ltx_retake", "retake", str(project), "--clip", "B", "--prompt", "a red door",
            "--provider", "fal", "-o", str(tmp_path / "out.otio"), "--media-dir", str(tmp_path / "m")]
    refused = subprocess.run(args, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and "above your threshold of $0.05" in refused.stderr and "--yes" in refused.stderr
    assert sum(svc.submits.values()) == 0 and not (tmp_path / "out.otio").exists()
    sent = subprocess.run([*args, "--yes", "--json"], env=env, capture_output=True, text=True)
    assert sent.returncode == 0, sent.stderr
    summary = json.loads(sent.stdout)
    assert summary["run"] and summary["jobs"][0]["state"] == "spliced"
    jobs = json.loads(subprocess.run([sys.executable, "-m", "ltx_retake", "jobs", "--json"], env=env, capture_output=True,
                                     text=True, check=True).stdout)
    assert jobs[0]["run"] == summary["run"] and jobs[0]["state"] == "finished"
    assert jobs[0]["jobs"][0]["request_id"] == summary["jobs"][0]["request_id"]
    costs = json.loads(subprocess.run([sys.executable, "-m", "ltx_retake", "costs", "--json"], env=env, capture_output=True,
                                      text=True, check=True).stdout)
    (row,) = costs["by_timeline"]
    assert row["key"] == str(project.absolute()) and row["spent_usd"] == summary["jobs"][0]["estimate_usd"] > 0
    assert Path(load_settings().journal).exists(), "the CLI keeps its journal where the settings say"
