"""The worker process a panel run goes to: its jobs' generation, away from the window's interpreter.

The panel plans and records the run itself (`retake.plan`, `retake.start`, on its open document); the worker reads
the run from the journal by its id, takes its jobs up to verified version files (`retake.generate`), and tells the
panel through typed events. Landing the versions is the panel's: its open document takes them.
"""

from __future__ import annotations

import dataclasses
import threading

from ..adapters.ffmpeg_exe import die_with
from ..compose import wiring_for
from ..errors import CancelledError, RetakeError, redact
from ..jobs import job_from_record
from ..journal import Journal
from ..orders import order_from
from ..progress import Cancel, JobEvent, RunFinished
from ..retake import generate
from ..runner import resume
from ..settings import journal_path, load_settings

__all__ = ["worker_main", "job_detail"]


def job_detail(plan) -> str:
    """A job's window and estimate, for its row in the jobs list."""
    cost = f"est. ${plan.estimate_usd:.2f}" if plan.estimate_usd is not None else "price not published"
    return f"{plan.record_timecode}, {plan.window_frames} frames; {cost}"


def worker_main(run_id: str, resuming: bool, local_config, max_parallel: int, events, control, panel: int) -> None:
    """A worker process: generate the jobs of run `run_id` (or resume it), sending JobEvents and, last, RunFinished;
    a job id arriving on `control` cancels that job. It dies with the panel (`panel`: its process id), which leaves
    the run interrupted in the journal for the reopened panel to land or resume."""
    die_with(panel)
    cancel = Cancel()

    def listen() -> None:
        for job_id in iter(control.get, None):
            cancel.stop_job(job_id)

    threading.Thread(target=listen, name="ltx-retake-cancel", daemon=True).start()

    def log(event: JobEvent) -> None:
        events.put(event)

    error = None
    try:
        settings = load_settings()
        with Journal(journal_path(settings)) as journal:
            record = journal.run(run_id)
            order = dataclasses.replace(order_from(record.order), timeline=record.timeline, output=record.output,
                                        media_dir=record.media_dir)
            with wiring_for(order.provider, settings, model=order.model, local_config=local_config) as wiring:
                if resuming:
                    resume(record.id, wiring, journal, log, cancel)
                else:
                    jobs = [job_from_record(r) for r in record.jobs]
                    generate(jobs, wiring, record.work_dir, order, journal=journal, cancel=cancel, progress=log,
                             max_parallel=max_parallel)
    except (CancelledError, RetakeError) as exc:
        error = redact(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug: a sentence in the panel, never a traceback
        error = f"The run stopped unexpectedly ({type(exc).__name__}: {redact(str(exc))}); please report this."
    events.put(RunFinished(run_id, error))
