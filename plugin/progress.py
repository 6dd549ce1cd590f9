"""Job steps and progress events: one stream that the CLI's lines and the panel's job rows both read."""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Step", "JobEvent", "RunStarted", "RunFinished", "Progress", "EventLog", "Cancel"]


class Step(str, enum.Enum):
    """The states of a job, in the order a job passes through them."""

    PLANNED = "planned"
    CUTTING = "cutting"
    UPLOADING = "uploading"
    SUBMITTING = "submitting"    # sent, answer not yet heard: a crash here leaves the request's fate unknown
    QUEUED = "queued"
    GENERATING = "generating"
    DOWNLOADING = "downloading"
    CONFORMING = "conforming"
    READY = "ready"              # the version file is conformed and verified, waiting to be spliced
    SPLICING = "splicing"
    SAVING = "saving"
    SPLICED = "spliced"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (Step.SPLICED, Step.FAILED, Step.CANCELLED)


@dataclass(frozen=True)
class JobEvent:
    """Something happened to a job: it entered a step, moved a progress bar, or the service logged a line."""

    job: str
    step: Step
    message: str = ""
    fraction: float | None = None
    queue_position: int | None = None
    log: tuple[str, ...] = ()
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RunStarted:
    """A run is recorded in the journal and its jobs are about to be sent (what a face lists before any JobEvent)."""

    run_id: str
    jobs: tuple[tuple[str, str, str], ...]   # (job id, what it retakes, its window and estimate)


@dataclass(frozen=True)
class RunFinished:
    """A run's process is done with it: its jobs' states are in the journal; `error` says why it stopped early."""

    run_id: str
    error: str | None = None


Progress = Callable[[JobEvent], None]


class EventLog:
    """A thread-safe list of every event, fanning each out to subscribers (a view, a progress printer)."""

    def __init__(self, *subscribers: Progress):
        self._lock = threading.Lock()
        self.events: list[JobEvent] = []
        self._subscribers = list(subscribers)

    def subscribe(self, fn: Progress) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def __call__(self, event: JobEvent) -> None:
        with self._lock:
            self.events.append(event)
            subscribers = list(self._subscribers)
        for fn in subscribers:
            fn(event)

    def steps(self, job: str) -> list[Step]:
        """The distinct steps a job went through, in order."""
        out: list[Step] = []
        for e in self.events:
            if e.job == job and (not out or out[-1] != e.step):
                out.append(e.step)
        return out


class Cancel(threading.Event):
    """Stops a run (`set()`), or only some of its jobs (`stop_job(id)`): the panel's per-job Cancel."""

    def __init__(self):
        super().__init__()
        self._jobs: set[str] = set()

    def stop_job(self, job_id: str) -> None:
        self._jobs.add(job_id)

    def stops(self, job_id: str) -> bool:
        """Should this job stop now?"""
        return self.is_set() or job_id in self._jobs
