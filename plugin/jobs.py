"""Jobs and runs: the adapters a run uses, one window's job and its state, what a run produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .paths import file_sha256
from .plan import Plan
from .ports import FileHost, MediaInfo, MediaTool, RetakeService, SubmittedJob, TimelineStore
from .progress import EventLog, Step
from .splice import Version

__all__ = ["Wiring", "Job", "Outcome", "intact", "job_from_record"]


@dataclass
class Wiring:
    """The adapters a run uses, handed in by the composition root (or a test)."""

    media: MediaTool
    store: TimelineStore
    service: RetakeService | None = None
    host: FileHost | None = None


@dataclass
class Job:
    """One retake of one window; its state is the last step it entered."""

    id: str
    plan: Plan
    version: Version | None = None
    step: Step = Step.PLANNED
    request_id: str | None = None
    submitted: SubmittedJob | None = None
    result: dict | None = None              # the result's URL and what the service said about it
    cut_path: Path | None = None
    returned_path: Path | None = None
    version_info: MediaInfo | None = None
    cut_sha: str | None = None
    request_key: str | None = None          # identical requests share it (see request_key)
    returned_sha: str | None = None
    version_sha: str | None = None
    reused_from: str | None = None          # the request whose result this job reused
    error: str | None = None
    error_exit: int = 0
    recoverable: bool = False               # failed in a way `resume` can mend (the request id is kept)
    run_id: str = ""


@dataclass
class Outcome:
    """What a run produced."""

    jobs: list[Job]
    output: Path | None
    media_dir: Path
    events: EventLog = field(repr=False, default_factory=EventLog)
    run_id: str = ""

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.step != Step.SPLICED]

    @property
    def exit_code(self) -> int:
        if not self.failed:
            return 0
        return max((j.error_exit for j in self.failed), default=1) or 1


def intact(path: Path | None, sha: str | None) -> bool:
    """Is the file an earlier attempt finished still there, byte for byte?"""
    return bool(path and sha and path.is_file() and file_sha256(path) == sha)


def job_from_record(record) -> Job:
    """A job as the journal last recorded it (what resume continues, and what the panel reads back)."""
    v = record.version
    return Job(id=record.name, plan=record.plan, run_id=record.run_id, step=record.step,
               version=Version(v["number"], v["clip_name"], Path(v["path"]), v.get("provenance") or {}),
               request_id=record.request_id, submitted=record.submitted, result=record.result, cut_sha=record.cut_sha,
               request_key=record.request_key, returned_sha=record.returned_sha, version_sha=record.version_sha,
               reused_from=record.reused_from, error=record.error, error_exit=record.error_exit,
               recoverable=record.recoverable)
