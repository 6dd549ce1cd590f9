"""The worker process a panel run goes to: the runner and its adapters away from the window's interpreter."""

from __future__ import annotations

import dataclasses
import threading

from ..compose import wiring_for
from ..errors import CancelledError, RetakeError, redact
from ..journal import Journal
from ..progress import Cancel, JobEvent
from ..jobs import Job
from ..orders import order_from
from ..runner import resume, run
from ..settings import journal_path, load_settings

__all__ = ["worker_main", "job_detail"]


def job_detail(plan) -> str:
    """A job's window and estimate, for its row in the jobs list."""
    cost = f"est. ${plan.estimate_usd:.2f}" if plan.estimate_usd is not None else "price not published"
    return f"{plan.record_timecode}, {plan.window_frames} frames; {cost}"


def worker_main(kind: str, what, local_config, max_parallel: int, events, control) -> None:
    """A worker process: one run (or resume), its events sent to the panel; cancels arrive on `control`."""
    cancel = Cancel()

    def listen() -> None:
        for job_id in iter(control.get, None):
            cancel.stop_job(job_id)

    threading.Thread(target=listen, name="ltx-retake-cancel", daemon=True).start()

    def log(event: JobEvent) -> None:
        events.put(("event", event))

    run_id, error = "", None
    try:
        settings = load_settings()
        with Journal(journal_path(settings)) as journal:
            if kind == "run":
                order = what

                def confirm(jobs: list[Job]) -> bool:  # the panel asked about cost before sending
                    events.put(("jobs", [(j.id, j.plan.label, job_detail(j.plan)) for j in jobs]))
                    return True

                events.put(("order", order))
                with wiring_for(order.provider, settings, model=order.model, local_config=local_config) as wiring:
                    run_id = run(order, wiring, log, cancel, journal=journal, confirm=confirm).run_id
            else:
                record = journal.run(what)
                order = dataclasses.replace(order_from(record.order), max_parallel=max_parallel)
                events.put(("order", order))
                events.put(("jobs", [(j.name, j.plan.label, job_detail(j.plan)) for j in record.unfinished]))
                with wiring_for(order.provider, settings, model=order.model, local_config=local_config) as wiring:
                    run_id = resume(record.id, wiring, journal, log, cancel).run_id
    except CancelledError as exc:
        error = redact(str(exc))
    except RetakeError as exc:
        error = redact(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug: a sentence in the panel, never a traceback
        error = f"The run stopped unexpectedly ({type(exc).__name__}: {redact(str(exc))}); please report this."
    events.put(("done", run_id, error))
