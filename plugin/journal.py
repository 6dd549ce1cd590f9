"""The job journal: every job's snapshot in SQLite, written before each step starts, so a crash resumes without paying twice.

One file per user (`journal_path(settings)`), shared by the CLI and the panel. Three tables:

    runs    one retake command: the order as given, the timeline's path and hash, where media goes,
            and which process owns it (a run whose owner died is "interrupted" and can be resumed)
    jobs    one window each: the plan, the version it becomes, the step it last entered, the request
            id and URLs the service gave, the hashes of the input cut, the returned file and the version
    ledger  what each request was estimated to cost and whether the service took it

Faults are sentences: a damaged file is copied aside (`<journal>.damaged-<time>`) and the sentence says where and
how to start a fresh journal; a journal another program keeps locked is waited for (`on_wait` hears it) and,
after `lock_wait_s`, refused with a sentence; a job in a state this version does not know names itself and how
to drop its run.

Crash tests set LTX_RETAKE_FAILPOINT=<point> to have the process SIGKILL itself right after the journal
records that point (a step's name, or one of `submitted`, `saved`): a real kill -9 at an exact place.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import signal
import socket
import sqlite3
import threading
import time
import uuid
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import opentimelineio as otio

from .atomic import WriteFailed, copy_atomic
from .errors import InputError, redact
from .paths import file_sha256
from .scratch import pid_alive
from .plan import Plan
from .ports import CutSpec, MediaInfo, RetakeMode, SubmittedJob
from .progress import Step

__all__ = ["Journal", "RunRecord", "JobRecord", "failpoint", "FAILPOINT_ENV", "version_in_flight", "LOCK_WAIT_S"]

FAILPOINT_ENV = "LTX_RETAKE_FAILPOINT"
_SCHEMA = 3              # 2: the ledger keeps the paid file a dropped run left (`kept`); 3: a run keeps its planned timeline
LOCK_WAIT_S = 60.0       # how long a write waits for another program that keeps the journal locked
_DONE = ("finished", "dropped")

_TABLES = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    timeline TEXT NOT NULL,
    timeline_sha TEXT NOT NULL,
    output TEXT NOT NULL,
    media_dir TEXT NOT NULL,
    work_dir TEXT NOT NULL,
    order_json TEXT NOT NULL,
    state TEXT NOT NULL,
    owner_pid INTEGER,
    owner_host TEXT,
    planned BLOB
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    step TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    version_json TEXT NOT NULL,
    prompt TEXT NOT NULL,
    mode TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    cut_sha TEXT,
    request_key TEXT,
    submitted_json TEXT,
    result_json TEXT,
    returned_sha TEXT,
    version_sha TEXT,
    reused_from TEXT,
    error TEXT,
    error_exit INTEGER NOT NULL DEFAULT 0,
    recoverable INTEGER NOT NULL DEFAULT 0,
    estimate_usd REAL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_run ON jobs(run_id);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(request_key);
CREATE TABLE IF NOT EXISTS ledger (
    request_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    timeline TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    seconds REAL NOT NULL,
    usd REAL,
    basis TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL,
    kept TEXT
);
"""


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL when LTX_RETAKE_FAILPOINT names this point (crash tests only)."""
    wanted = os.environ.get(FAILPOINT_ENV)
    if wanted and wanted == name:
        os.kill(os.getpid(), signal.SIGKILL)


# --- plans and versions as JSON -------------------------------------------------------------------------------

def _range_json(r: otio.opentime.TimeRange) -> dict:
    return {"start": [r.start_time.value, r.start_time.rate], "duration": [r.duration.value, r.duration.rate]}


def _range_from(d: dict) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(*d["start"]), otio.opentime.RationalTime(*d["duration"]))


def _plain(value: Any) -> Any:
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, RetakeMode):
        return value.value
    if isinstance(value, otio.opentime.TimeRange):
        return _range_json(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def plan_json(plan: Plan) -> dict:
    """A plan as JSON-ready data (exact rates as fractions in text)."""
    out = {}
    for f in dataclasses.fields(plan):
        value = getattr(plan, f.name)
        if dataclasses.is_dataclass(value):
            value = {g.name: _plain(getattr(value, g.name)) for g in dataclasses.fields(value)}
        out[f.name] = _plain(value)
    return out


def plan_from(d: dict) -> Plan:
    """The plan `plan_json` wrote."""
    media = dict(d["media"])
    media["frame_rate"] = Fraction(media["frame_rate"])
    media["sample_aspect"] = Fraction(media["sample_aspect"])
    cut = dict(d["cut"])
    cut["frame_rate"] = Fraction(cut["frame_rate"])
    if isinstance(cut.get("max_size"), list):
        cut["max_size"] = tuple(cut["max_size"])
    values = dict(d)
    if isinstance(values.get("context"), list):
        values["context"] = tuple(values["context"])
    values.update(
        media=MediaInfo(**media), cut=CutSpec(**cut), mode=RetakeMode(d["mode"]), scalar=Fraction(d["scalar"]),
        notes=tuple(d["notes"]), record_range=_range_from(d["record_range"]), source_range=_range_from(d["source_range"]),
        version_range=_range_from(d["version_range"]),
    )
    return Plan(**values)


@dataclasses.dataclass
class JobRecord:
    """A job as the journal holds it."""

    id: str
    run_id: str
    name: str
    step: Step
    plan: Plan
    version: dict                       # number, clip_name, path, provenance
    cut_sha: str | None = None
    request_key: str | None = None
    submitted: SubmittedJob | None = None
    result: dict | None = None          # url and what else the service said about the file
    returned_sha: str | None = None
    version_sha: str | None = None
    reused_from: str | None = None
    error: str | None = None
    error_exit: int = 0
    recoverable: bool = False
    estimate_usd: float | None = None
    updated: float = 0.0

    @property
    def request_id(self) -> str | None:
        return self.submitted.request_id if self.submitted else None

    @property
    def unfinished(self) -> bool:
        """Not done: a crash stopped it, or it failed in a way that resuming can mend."""
        return not self.step.finished or (self.step == Step.FAILED and self.recoverable)


@dataclasses.dataclass
class RunRecord:
    """A run as the journal holds it."""

    id: str
    created: float
    timeline: Path
    timeline_sha: str
    output: Path | None                 # None: a face's open document takes the versions (the panel)
    media_dir: Path
    work_dir: Path
    order: dict
    state: str                          # running | finished | incomplete | interrupted (its process died while running)
    owner_pid: int | None
    owner_host: str | None
    jobs: list[JobRecord]

    @property
    def unfinished(self) -> list[JobRecord]:
        return [j for j in self.jobs if j.unfinished]


def _owner_alive(pid: int | None, host: str | None) -> bool:
    return bool(pid) and host == socket.gethostname() and pid_alive(pid)


def version_in_flight(journal: str | Path, version: Path) -> bool:
    """Whether the journal file `journal` (another run's, read only) still has a job that will write `version`."""
    try:
        db = sqlite3.connect(f"file:{Path(journal).absolute()}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return True
    try:
        rows = db.execute("SELECT jobs.step, jobs.recoverable, jobs.version_json FROM jobs JOIN runs ON jobs.run_id = "
                          "runs.id WHERE runs.state NOT IN ('finished', 'dropped') AND jobs.version_json LIKE ?",
                          (f"%{Path(version).name}%",)).fetchall()
    except sqlite3.Error:
        return True          # cannot tell: respect the claim
    finally:
        db.close()
    for step, recoverable, version_json in rows:
        try:
            same = json.loads(version_json).get("path") == str(version)
        except ValueError:
            continue
        if same and (step not in ("spliced", "failed", "cancelled") or (step == "failed" and recoverable)):
            return True
    return False


class Journal:
    """The SQLite journal. Thread-safe; every write is its own committed transaction."""

    def __init__(self, path: str | Path, *, lock_wait_s: float = LOCK_WAIT_S,
                 on_wait: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep):
        self.path = Path(path).absolute()
        self.lock_wait_s, self.on_wait, self._sleep = lock_wait_s, on_wait, sleep   # seams: tests wait less
        self._lock = threading.Lock()
        self._db = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"The job journal's folder {self.path.parent} cannot be created ({exc.strerror or exc}); "
                             "set LTX_RETAKE_JOURNAL to a writable file.") from None
        try:
            self._db = sqlite3.connect(self.path, timeout=0.25, check_same_thread=False, isolation_level=None)
            version = self._retry(lambda: self._open())
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise self._damaged(exc) from None
        except OSError as exc:
            self._close_quietly()
            raise InputError(f"The job journal {self.path} cannot be opened ({exc.strerror or exc}); set "
                             "LTX_RETAKE_JOURNAL to a writable file.") from None
        except BaseException:
            self._close_quietly()
            raise
        if version > _SCHEMA:
            self._close_quietly()
            raise InputError(f"The job journal {self.path} was written by a newer ltx-retake (schema {version}); "
                             "upgrade ltx-retake, or set LTX_RETAKE_JOURNAL to another file.")

    def _open(self) -> int:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA:
            return version
        if version != _SCHEMA:  # new or older: set up (a current journal is only read here, even while locked)
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        bad = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if bad != "ok":
            raise sqlite3.DatabaseError(f"damaged: {bad}")
        if version != _SCHEMA:
            db.executescript(_TABLES)
            if version and version < 2:
                db.execute("ALTER TABLE ledger ADD COLUMN kept TEXT")
            if version and version < 3:
                db.execute("ALTER TABLE runs ADD COLUMN planned BLOB")
            db.execute(f"PRAGMA user_version={_SCHEMA}")
        return version

    def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass

    def _damaged(self, exc: Exception) -> InputError:
        """The sentence for a damaged journal, with a copy of it kept aside for whoever wants to look."""
        backup = self.path.with_name(f"{self.path.name}.damaged-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
        try:
            copy_atomic(self.path, backup, what="a copy of the damaged journal")
            kept = f"a copy is kept at {backup}"
        except (WriteFailed, OSError):
            kept = "no copy could be made"
        return InputError(f"The job journal {self.path} is damaged ({exc}); {kept}. To start a fresh journal, delete "
                          f"{self.path.name} (and its -wal and -shm files; the runs it listed can no longer be resumed), "
                          "or set LTX_RETAKE_JOURNAL to another file.")

    def _retry(self, fn):
        """Run `fn` (one statement or transaction), waiting while another program keeps the journal locked."""
        started, told = time.monotonic(), False
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if "locked" not in text and "busy" not in text:
                    raise
                if not told and self.on_wait is not None:
                    self.on_wait(f"the job journal {self.path} is locked by another program; waiting for it "
                                 f"(up to {self.lock_wait_s:.0f} s)")
                    told = True
                waited = time.monotonic() - started
                if waited >= self.lock_wait_s:
                    raise InputError(f"The job journal {self.path} stayed locked by another program for "
                                     f"{waited:.0f} s; close it (or the other ltx-retake), then try again.") from None
                self._sleep(0.2)

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _guarded(self, fn):
        """`fn` under the thread lock, waiting out a locked file; a damaged file becomes its sentence."""
        with self._lock:
            try:
                return self._retry(fn)
            except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
                raise                          # a bug (a closed journal, a bad statement): not the file's fault
            except sqlite3.DatabaseError as exc:
                raise self._damaged(exc) from None

    def _write(self, sql: str, args: tuple = ()) -> None:
        self._guarded(lambda: self._db.execute(sql, args))

    def _rows(self, sql: str, args: tuple = ()) -> list[dict]:
        def read():
            cur = self._db.execute(sql, args)
            names = [c[0] for c in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        return self._guarded(read)

    def _transaction(self, statements: Callable[[], None]) -> None:
        def run():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                statements()
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        self._guarded(run)

    # --- runs ---------------------------------------------------------------------------------------------------

    def begin_run(self, *, order: dict, timeline: Path, timeline_sha: str, output: Path | None, media_dir: Path,
                  work_dir: Path, jobs: list, planned: otio.schema.Timeline | None = None) -> str:
        """Record a run and its planned jobs in one transaction; returns the run id. `timeline` is the editor's own
        file, `output` where the run writes (None: a face's open document takes the versions), `planned` the timeline
        the jobs were planned on (kept compressed: what a face's unsaved document held)."""
        run_id = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        packed = None if planned is None else zlib.compress(otio.adapters.write_to_string(planned, "otio_json", indent=0)
                                                            .encode("utf-8"), 3)

        def statements() -> None:
            self._db.execute(
                "INSERT INTO runs (id, created, updated, timeline, timeline_sha, output, media_dir, work_dir, order_json, "
                "state, owner_pid, owner_host, planned) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, now, now, str(timeline), timeline_sha, "" if output is None else str(output), str(media_dir),
                 str(work_dir), json.dumps(order), "running", os.getpid(), socket.gethostname(), packed))
            for job in jobs:
                self._db.execute(
                    "INSERT INTO jobs (id, run_id, name, step, plan_json, version_json, prompt, mode, provider, model, "
                    "estimate_usd, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (f"{run_id}/{job.id}", run_id, job.id, job.step.value, json.dumps(plan_json(job.plan)),
                     json.dumps(_version_json(job.version)), job.plan.prompt, job.plan.mode.value, job.plan.provider,
                     job.plan.model, job.plan.estimate_usd, now))

        self._transaction(statements)
        for job in jobs:
            job.run_id = run_id
        return run_id

    def planned(self, run_id: str) -> otio.schema.Timeline | None:
        """The timeline a run's jobs were planned on (None for a run recorded without it)."""
        rows = self._rows("SELECT planned FROM runs WHERE id=?", (run_id,))
        if not rows or rows[0]["planned"] is None:
            return None
        try:
            return otio.adapters.read_from_string(zlib.decompress(rows[0]["planned"]).decode("utf-8"), "otio_json")
        except Exception:  # noqa: BLE001 - a damaged copy: the run goes on without it
            return None

    def claim(self, run_id: str) -> None:
        """Make this process the run's owner; refuse when another live process still runs it."""
        run = self.run(run_id)
        if run.state == "dropped":
            raise InputError(f"Run {run.id} was dropped (`ltx-retake jobs --drop`); it is not resumed. Retake again instead.")
        if run.state == "running" and run.owner_pid != os.getpid() and _owner_alive(run.owner_pid, run.owner_host):
            raise InputError(f"Run {run_id} is still running in process {run.owner_pid}; wait for it or stop it first.")
        self._write("UPDATE runs SET state='running', owner_pid=?, owner_host=?, updated=? WHERE id=?",
                    (os.getpid(), socket.gethostname(), time.time(), run_id))

    def redirect(self, run_id: str, *, output: Path, order: dict) -> None:
        """Write a run's timeline somewhere else from now on (`resume -o`): its output and its order."""
        self._write("UPDATE runs SET output=?, order_json=?, updated=? WHERE id=?",
                    (str(Path(output).absolute()), json.dumps(order), time.time(), run_id))

    def finish_run(self, run_id: str, *, complete: bool = True) -> None:
        """Let go of a run: finished, or incomplete (jobs left that `resume` can pick up, or that await --resubmit)."""
        self._write("UPDATE runs SET state=?, owner_pid=NULL, updated=? WHERE id=?",
                    ("finished" if complete else "incomplete", time.time(), run_id))

    def drop_run(self, run_id: str, kept: dict[str, str] | None = None) -> str:
        """End a run the editor gives up on: its unfinished jobs become cancelled, it is never resumed, and the
        ledger keeps what its requests cost, with the paid file each left (`kept`: request id -> path). Refused
        while a live process runs it. Works on runs whose jobs this version cannot read. Returns the run's id."""
        rows = self._rows("SELECT id, state, owner_pid, owner_host FROM runs WHERE id=?", (run_id,)) or \
            self._rows("SELECT id, state, owner_pid, owner_host FROM runs WHERE id LIKE ?", (f"%{run_id}%",))
        if len(rows) != 1:
            raise InputError(f"No run {run_id!r} in the journal {self.path}" + (" (several match; give more of the id)"
                             if rows else "") + "; `ltx-retake jobs` lists the runs.")
        row = rows[0]
        if row["state"] == "running" and row["owner_pid"] != os.getpid() and _owner_alive(row["owner_pid"], row["owner_host"]):
            raise InputError(f"Run {row['id']} is still running in process {row['owner_pid']}; stop it first (Ctrl-C), "
                             "then drop it.")
        now = time.time()

        def statements() -> None:
            self._db.execute("UPDATE runs SET state='dropped', owner_pid=NULL, updated=? WHERE id=?", (now, row["id"]))
            self._db.execute("UPDATE jobs SET step='cancelled', recoverable=0, error=COALESCE(error || ' ', '') || "
                             "'(dropped by the editor)', updated=? WHERE run_id=? AND (step NOT IN ('spliced', 'failed', "
                             "'cancelled') OR recoverable=1)", (now, row["id"]))
            for request_id, path in (kept or {}).items():
                self._db.execute("UPDATE ledger SET kept=? WHERE request_id=?", (path, request_id))

        self._transaction(statements)
        return row["id"]

    def run(self, run_id: str) -> RunRecord:
        rows = self._rows("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            rows = self._rows("SELECT * FROM runs WHERE id LIKE ? ORDER BY created DESC", (f"%{run_id}%",))
            if len(rows) != 1:
                raise InputError(f"No run {run_id!r} in the journal {self.path}" + (" (several match; give more of the id)"
                                 if rows else "") + "; `ltx-retake jobs` lists the runs.")
        return self._run_from(rows[0])

    def runs(self, limit: int | None = 20) -> list[RunRecord]:
        """The latest runs, newest first."""
        rows = self._rows("SELECT * FROM runs ORDER BY created DESC" + (f" LIMIT {int(limit)}" if limit else ""))
        return [self._run_from(r) for r in rows]

    def interrupted(self) -> list[RunRecord]:
        """Runs with jobs left to finish whose process is gone, oldest first."""
        rows = self._rows("SELECT DISTINCT runs.* FROM runs JOIN jobs ON jobs.run_id = runs.id "
                          "WHERE runs.state NOT IN ('finished', 'dropped') OR (jobs.recoverable = 1 AND runs.state != 'dropped') "
                          "ORDER BY runs.created")
        runs = [self._run_from(r) for r in rows]
        return [r for r in runs if r.unfinished and r.state != "running"]

    def versions_in_flight(self) -> set[str]:
        """The version files unfinished jobs will write: a new run never numbers its versions over them."""
        rows = self._rows("SELECT jobs.version_json, jobs.step, jobs.recoverable FROM jobs JOIN runs ON jobs.run_id = runs.id "
                          "WHERE runs.state NOT IN ('finished', 'dropped')")
        paths = {json.loads(r["version_json"] or "{}").get("path") for r in rows
                 if not Step(r["step"]).finished or (r["step"] == Step.FAILED.value and r["recoverable"])}
        return {p for p in paths if p}

    def _run_from(self, row: dict) -> RunRecord:
        jobs = []
        for j in self._rows("SELECT * FROM jobs WHERE run_id=? ORDER BY rowid", (row["id"],)):
            try:
                jobs.append(self._job_from(j))
            except InputError:
                if row["state"] != "dropped":   # a dropped run's unreadable jobs are over: listed without them
                    raise
        state = row["state"]
        if state == "running" and not _owner_alive(row["owner_pid"], row["owner_host"]):
            state = "interrupted"
        return RunRecord(row["id"], row["created"], Path(row["timeline"]), row["timeline_sha"],
                         Path(row["output"]) if row["output"] else None,
                         Path(row["media_dir"]), Path(row["work_dir"]), json.loads(row["order_json"]), state,
                         row["owner_pid"], row["owner_host"], jobs)

    # --- jobs ---------------------------------------------------------------------------------------------------

    def record(self, job, *, point: str | None = None) -> None:
        """Write the job's snapshot (committed before the caller goes on), then honour a failpoint."""
        submitted = dataclasses.asdict(job.submitted) if job.submitted else None
        self._write(
            "UPDATE jobs SET step=?, version_json=?, cut_sha=?, request_key=?, submitted_json=?, result_json=?, "
            "returned_sha=?, version_sha=?, reused_from=?, error=?, error_exit=?, recoverable=?, updated=? WHERE id=?",
            (job.step.value, json.dumps(_version_json(job.version)), job.cut_sha, job.request_key,
             json.dumps(submitted) if submitted else None, json.dumps(job.result) if job.result else None,
             job.returned_sha, job.version_sha, job.reused_from, redact(job.error) if job.error else None, job.error_exit,
             int(job.recoverable), time.time(), f"{job.run_id}/{job.id}"))
        failpoint(point or job.step.value)

    def _job_from(self, row: dict) -> JobRecord:
        try:
            return JobRecord(
                id=row["name"], run_id=row["run_id"], name=row["name"], step=Step(row["step"]),
                plan=plan_from(json.loads(row["plan_json"])), version=json.loads(row["version_json"]),
                cut_sha=row["cut_sha"], request_key=row["request_key"],
                submitted=SubmittedJob(**json.loads(row["submitted_json"])) if row["submitted_json"] else None,
                result=json.loads(row["result_json"]) if row["result_json"] else None, returned_sha=row["returned_sha"],
                version_sha=row["version_sha"], reused_from=row["reused_from"], error=row["error"],
                error_exit=row["error_exit"], recoverable=bool(row["recoverable"]), estimate_usd=row["estimate_usd"],
                updated=row["updated"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            what = f"step {row['step']!r}" if row.get("step") not in {s.value for s in Step} else type(exc).__name__
            raise InputError(f"The job journal {self.path} holds job {row.get('id')} in a form this ltx-retake cannot "
                             f"read ({what}): it was written by another version, or edited. Upgrade ltx-retake, or end "
                             f"that run with `ltx-retake jobs --drop {row.get('run_id')}`.") from None

    def reusable(self, request_key: str, *, not_job: str) -> JobRecord | None:
        """The newest earlier job with the same request whose version file is still there, unchanged."""
        for row in self._rows("SELECT * FROM jobs WHERE request_key=? AND version_sha IS NOT NULL AND id != ? "
                              "ORDER BY updated DESC", (request_key, not_job)):
            job = self._job_from(row)
            path = Path(job.version.get("path", ""))
            if path.is_file() and file_sha256(path) == job.version_sha:
                return job
        return None

    # --- the ledger ---------------------------------------------------------------------------------------------

    def charge(self, job, timeline: Path, status: str) -> None:
        """Note a request in the ledger: sent (the estimate may be billed), charged, failed or cancelled."""
        if not job.submitted:
            return
        plan = job.plan
        self._write(
            "INSERT INTO ledger (request_id, job_id, run_id, timeline, provider, model, seconds, usd, basis, status, at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(request_id) DO UPDATE SET status=excluded.status, "
            "at=excluded.at",
            (job.submitted.request_id, f"{job.run_id}/{job.id}", job.run_id, str(timeline), plan.provider, plan.model,
             plan.input_seconds, plan.estimate_usd, plan.price_basis, status, time.time()))

    def ledger(self) -> list[dict]:
        return self._rows("SELECT * FROM ledger ORDER BY at")

    def iter_jobs(self) -> Iterator[JobRecord]:
        for row in self._rows("SELECT * FROM jobs ORDER BY updated"):
            yield self._job_from(row)


def _version_json(version) -> dict:
    if version is None:
        return {}
    return {"number": version.number, "clip_name": version.clip_name, "path": str(version.path),
            "provenance": version.provenance}
