"""The panel's jobs list, offscreen: real JobEvent batches in, the row's step, bar, time and buttons out."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from ltx_retake.progress import JobEvent, Step
from ltx_retake.ui.jobs_view import (
    COL_LAST,
    COL_NOTE,
    COL_TIME,
    ERROR_RED,
    MAX_LINES,
    JobsView,
)
from PySide6.QtCore import Qt

T0 = 1_700_000_000.0   # JobEvent.at is wall-clock time; the view's clock is injected on the same scale


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def view(qtbot, clock):
    v = JobsView(clock=clock)
    qtbot.addWidget(v)
    v.resize(1200, 500)
    v.show()
    qtbot.waitExposed(v)
    return v


def ev(job, step, at, message="", **kw):
    return JobEvent(job, step, message, at=T0 + at, **kw)


def test_steps_queue_position_and_fraction_drive_the_row(view):
    view.add_job("r1", "job1", "shot_010 on V1, 01:00:02:00-01:00:04:00", "estimated cost $0.40")
    assert view.step_of("r1", "job1") == "planned" and view.row_count() == 1 and view.in_flight() == 1
    assert view.item_of("r1", "job1").text(COL_LAST) == "estimated cost $0.40"
    bar = view.progress_bar("r1", "job1")
    assert (bar.minimum(), bar.maximum(), bar.value()) == (0, 1000, 0)

    view.apply_events([("r1", ev("job1", Step.CUTTING, 0, "cutting 48 frames"))])
    assert view.step_of("r1", "job1") == "cutting"
    assert bar.maximum() == 0, "a step without a fraction shows a busy bar"

    view.apply_events([("r1", ev("job1", Step.UPLOADING, 1, "uploading 3.2 MB")),
                       ("r1", ev("job1", Step.UPLOADING, 2, fraction=0.25)),
                       ("r1", ev("job1", Step.UPLOADING, 3, fraction=0.5))])
    assert view.step_of("r1", "job1") == "uploading"
    assert (bar.maximum(), bar.value()) == (1000, 500)

    view.apply_events([("r1", ev("job1", Step.SUBMITTING, 4, "submitting")),
                       ("r1", ev("job1", Step.QUEUED, 5, "queued #3", queue_position=3, log=("waiting for a GPU",)))])
    assert view.step_of("r1", "job1") == "queued #3"
    assert view.item_of("r1", "job1").text(COL_LAST) == "waiting for a GPU", "the last service log line shows"
    assert bar.maximum() == 0

    view.apply_events([("r1", ev("job1", Step.QUEUED, 6, "queued #1", queue_position=1))])
    assert view.step_of("r1", "job1") == "queued #1"
    view.apply_events([("r1", ev("job1", Step.GENERATING, 7, "generating", log=("step 1/30", "step 2/30")))])
    assert view.step_of("r1", "job1") == "generating"
    view.apply_events([("r1", ev("job1", Step.DOWNLOADING, 8, fraction=0.9))])
    assert view.step_of("r1", "job1") == "downloading" and bar.value() == 900
    for step, shown in ((Step.CONFORMING, "conforming"), (Step.READY, "splicing"), (Step.SPLICING, "splicing"),
                        (Step.SAVING, "splicing")):
        view.apply_events([("r1", ev("job1", step, 9))])
        assert view.step_of("r1", "job1") == shown
    buttons = view.buttons("r1", "job1")
    assert buttons["cancel"].isEnabled() and not buttons["retry"].isEnabled() and not buttons["review"].isEnabled()

    view.apply_events([("r1", ev("job1", Step.SPLICED, 10, "shot_010_retake_v1 -> /tmp/v1.mov"))])
    assert view.step_of("r1", "job1") == "done" and view.in_flight() == 0
    assert (bar.maximum(), bar.value()) == (1000, 1000), "a finished row shows a full bar"
    assert not buttons["cancel"].isEnabled() and buttons["review"].isEnabled() and not buttons["retry"].isEnabled()
    lines = view.lines_of("r1", "job1")
    assert lines[0] == "estimated cost $0.40" and "step 2/30" in lines and lines[-1].startswith("shot_010_retake_v1")

    view.set_note("r1", "job1", "accepted")
    assert view.item_of("r1", "job1").text(COL_NOTE) == "accepted"


def test_a_failed_job_shows_its_error_as_a_red_sentence_and_offers_retry(view):
    view.add_job("r1", "job2", "shot_020 on V1")
    view.apply_events([("r1", ev("job2", Step.GENERATING, 0)),
                       ("r1", ev("job2", Step.FAILED, 1, "the service refused the prompt (request id abc)"))])
    assert view.step_of("r1", "job2") == "failed"
    item = view.item_of("r1", "job2")
    assert item.text(COL_LAST) == "The service refused the prompt (request id abc)."
    assert item.foreground(COL_LAST).color() == ERROR_RED
    buttons = view.buttons("r1", "job2")
    assert buttons["retry"].isEnabled() and not buttons["cancel"].isEnabled() and not buttons["review"].isEnabled()
    view.select("r1", "job2")
    assert "error: The service refused the prompt" in view.details.toPlainText()

    # a retry that reuses the keys: the row runs again, the red goes
    view.apply_events([("r1", ev("job2", Step.CUTTING, 5))])
    assert view.step_of("r1", "job2") == "cutting" and view.in_flight() == 1
    assert item.foreground(COL_LAST).color() != ERROR_RED and not buttons["retry"].isEnabled()


def test_the_buttons_emit_their_keys_on_a_click(view, qtbot):
    view.add_job("run-a", "job1", "running")
    view.add_job("run-b", "job1", "failed")
    view.add_job("run-b", "job2", "done")
    view.apply_events([("run-a", ev("job1", Step.GENERATING, 0)),
                       ("run-b", ev("job1", Step.CANCELLED, 0, "Cancelled by the user.")),
                       ("run-b", ev("job2", Step.SPLICED, 0))])
    assert view.step_of("run-b", "job1") == "cancelled"
    for signal, (run_key, job_id, name) in ((view.cancelRequested, ("run-a", "job1", "cancel")),
                                            (view.retryRequested, ("run-b", "job1", "retry")),
                                            (view.reviewRequested, ("run-b", "job2", "review"))):
        with qtbot.waitSignal(signal, timeout=2000) as caught:
            qtbot.mouseClick(view.buttons(run_key, job_id)[name], Qt.MouseButton.LeftButton)
        assert caught.args == [run_key, job_id]
    with qtbot.assertNotEmitted(view.cancelRequested):
        qtbot.mouseClick(view.buttons("run-b", "job2")["cancel"], Qt.MouseButton.LeftButton)  # disabled: done


def test_an_interrupted_run_offers_resume(view, qtbot):
    view.add_interrupted("20250101-abc", [("job1", "shot_010 on V1", "generating", ""),
                                          ("job2", "shot_020 on V1", "failed", "the service was busy"),
                                          ("job3", "shot_030 on V1", "spliced", "")])
    assert view.step_of("20250101-abc", "job1") == "interrupted at generating"
    assert view.step_of("20250101-abc", "job2") == "failed"
    assert view.step_of("20250101-abc", "job3") == "done"
    assert view.row_count() == 3 and view.in_flight() == 0
    assert not view.buttons("20250101-abc", "job1")["cancel"].isEnabled()
    button = view.resume_button("20250101-abc")
    with qtbot.waitSignal(view.resumeRequested, timeout=2000) as caught:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert caught.args == ["20250101-abc"]

    # the resumed run reports under its id: the rows run again and Resume is spent
    view.apply_events([("20250101-abc", ev("job1", Step.GENERATING, 0, "resuming at generating"))])
    assert view.step_of("20250101-abc", "job1") == "generating" and view.in_flight() == 1
    assert not button.isEnabled()
    view.clear_finished()
    assert view.row_count() == 1, "the done and the failed rows go; the running one stays"
    assert view.resume_button("20250101-abc") is button, "the run's header stays while it has rows"


def test_clear_finished_keeps_the_rows_in_flight(view):
    for n in range(4):
        view.add_job("r", f"job{n}", f"shot {n}")
    view.apply_events([("r", ev("job0", Step.SPLICED, 0)), ("r", ev("job1", Step.FAILED, 0, "no")),
                       ("r", ev("job2", Step.CANCELLED, 0)), ("r", ev("job3", Step.QUEUED, 0, queue_position=2))])
    view.clear_finished()
    assert view.row_count() == 1 and view.step_of("r", "job3") == "queued #2"


def test_elapsed_counts_from_the_first_event_and_freezes_when_finished(view, clock):
    view.add_job("r", "job1", "shot")
    assert view.item_of("r", "job1").text(COL_TIME) == ""
    view.apply_events([("r", ev("job1", Step.CUTTING, 0))])
    clock.now = T0 + 65
    view.update_elapsed()
    assert view.item_of("r", "job1").text(COL_TIME) == "1:05"
    view.apply_events([("r", ev("job1", Step.FAILED, 70, "boom"))])
    assert view.item_of("r", "job1").text(COL_TIME) == "1:10"
    clock.now = T0 + 500
    view.update_elapsed()
    view.apply_events([("r", ev("job1", Step.FAILED, 500, "resuming at failed"))])  # the same ending again
    assert view.item_of("r", "job1").text(COL_TIME) == "1:10", "a finished row's time is frozen"
    assert view.item_of("r", "job1").text(COL_LAST) == "Boom.", "the error stays the first one"


def test_end_run_stops_rows_left_unfinished(view, clock):
    view.add_job("r", "job1", "shot")
    view.apply_events([("r", ev("job1", Step.SUBMITTING, 0, "submitting"))])
    clock.now = T0 + 12
    view.end_run("r")
    assert view.step_of("r", "job1") == "stopped at submitting" and view.in_flight() == 0
    assert view.buttons("r", "job1")["retry"].isEnabled() and not view.buttons("r", "job1")["cancel"].isEnabled()
    clock.now = T0 + 99
    view.update_elapsed()
    assert view.item_of("r", "job1").text(COL_TIME) == "0:12"


def test_two_thousand_events_for_fifty_jobs_in_one_batch(view):
    for n in range(50):
        view.add_job("big", f"job{n}", f"shot_{n:03d} on V1")
    steps = [Step.CUTTING, Step.UPLOADING, Step.QUEUED, Step.GENERATING]
    batch = []
    for i in range(2000):
        n = i % 50
        k = i // 50                       # 40 events per job
        step = steps[min(k // 10, 3)]
        batch.append(("big", ev(f"job{n}", step, k, f"line {k}", fraction=(k % 10) / 10 if step == Step.UPLOADING else None,
                                queue_position=40 - k if step == Step.QUEUED else None,
                                log=tuple(f"log {k}.{j}" for j in range(20)))))
    view.apply_events(batch)
    assert view.row_count() == 50 and view.in_flight() == 50
    assert all(view.step_of("big", f"job{n}") == "generating" for n in range(50))
    lines = view.lines_of("big", "job7")
    assert len(lines) == MAX_LINES and lines[-1] == "log 39.19", "the log keeps the newest lines, capped"
    view.apply_events([("big", ev(f"job{n}", Step.SPLICED, 50)) for n in range(50)])
    assert view.in_flight() == 0
    view.clear_finished()
    assert view.row_count() == 0


def test_events_for_unknown_jobs_make_rows_and_run_messages_do_not(view):
    view.apply_events([("r", ev("run", Step.PLANNED, 0, "run 123")), ("r", ev("job9", Step.CUTTING, 0))])
    assert view.row_count() == 1 and view.step_of("r", "job9") == "cutting"
