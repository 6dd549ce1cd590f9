"""Where a retake's time goes: one clip through the real runner and a zero-delay local service, wall time per step.

The source is a camera-like 1080p 24 fps clip with sound (default 30 s; generated once with ffmpeg into the
same cache as `bench cut`), the only clip of a one-track OTIO timeline; the retake is a 5 s window in its
middle. Each run calls `ltx_retake.runner.run` as the CLI does: a Wiring built like `compose.wiring_for`
for the local provider (the fal protocol over loopback; the service started once, with queue_delay and
processing_delay 0) and a fresh job journal. A progress callback stamps `time.perf_counter()` on every
JobEvent; a step lasts from its first event to the first event of the next step:

  plan      run() called -> cutting (read the timeline, probe, plan, record the run in the journal)
  cut       cutting -> uploading           upload    uploading -> submitting
  submit    submitting -> queued           follow    queued -> downloading (the service renders meanwhile)
  download  downloading -> conforming      conform   conforming -> ready (written and verified)
  splice    splicing -> saving             save      saving -> spliced
  other     what is left of the total (between ready and splicing, tidying after the save)

"generation" is the service's own rendering time from its job records (finished_at - started_at), and
"overhead around the model" is the total minus that. Medians over --runs.

Run it with `python -m bench steps [--runs 3] [--seconds 30] [--window 5]`.

`python -m bench steps --context-table [--runs 3]` prints what the context costs instead: a 2.5 s window in the
middle of a 20 s 1080p and a 20 s UHD (3840x2160) source, with the default context (the context_s setting, 1 s a
side) and with `--context max`: the input's seconds, the bytes uploaded, the estimate at fal's $0.10 per second
of input, and the seconds the cut and the conform take (medians; the cut sends UHD at 1920x1080, the conform
scales the version back up). Targets: the default input no more than the window plus twice the context; cut plus
conform of the 1080p window within 3 s on 2 cores; UHD within 1.3 times the 1080p figure.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from bench.cut import DEFAULT_CACHE, machine_line, make_source

STEPS = ("plan", "cut", "upload", "submit", "follow", "download", "conform", "splice", "save", "other")


def project(source: Path, folder: Path, window_s: float):
    """A one-clip timeline of `source` and the (start, end) frames of a `window_s` window in its middle."""
    from bench.common import one_clip_timeline

    from ltx_retake.adapters.media_probe import probe_media
    from ltx_retake.adapters.timeline_files import write_timeline

    info = probe_media(source)
    rate = float(info.frame_rate)
    tl = one_clip_timeline(source, info.frame_count, rate, "steps bench")
    frames = round(window_s * rate)
    start = (info.frame_count - frames) // 2
    return write_timeline(tl, folder / "one_clip.otio", overwrite=True), (start, start + frames)


def split(stamps: list[tuple[float, object]], began: float, ended: float) -> dict[str, float]:
    """Seconds per step from (perf_counter, Step) stamps of one job's events."""
    from ltx_retake.progress import Step

    first: dict[Step, float] = {}
    for t, step in stamps:
        first.setdefault(step, t)
    queued = min((first[s] for s in (Step.QUEUED, Step.GENERATING) if s in first), default=None)
    marks = {"cut": (first.get(Step.CUTTING), first.get(Step.UPLOADING)),
             "upload": (first.get(Step.UPLOADING), first.get(Step.SUBMITTING)),
             "submit": (first.get(Step.SUBMITTING), queued),
             "follow": (queued, first.get(Step.DOWNLOADING)),
             "download": (first.get(Step.DOWNLOADING), first.get(Step.CONFORMING)),
             "conform": (first.get(Step.CONFORMING), first.get(Step.READY)),
             "splice": (first.get(Step.SPLICING), first.get(Step.SAVING)),
             "save": (first.get(Step.SAVING), first.get(Step.SPLICED)),
             "plan": (began, first.get(Step.CUTTING))}
    out = {name: (b - a) if a is not None and b is not None else float("nan") for name, (a, b) in marks.items()}
    out["total"] = ended - began
    out["other"] = out["total"] - sum(v for k, v in out.items() if k != "total" and not math.isnan(v))
    return out


def one_run(timeline: Path, window: tuple[int, int], wiring, local, folder: Path) -> dict[str, float]:
    """One retake through `run`; its step times, and the service's generation time."""
    from ltx_retake.adapters import media_probe
    from ltx_retake.journal import Journal
    from ltx_retake.ports import RetakeMode
    from ltx_retake.progress import EventLog
    from ltx_retake.orders import RetakeOrder
    from ltx_retake.runner import run

    folder.mkdir(parents=True)
    media_probe._probe_cached.cache_clear()   # a new process's run: planning probes the source afresh
    stamps: list[tuple[float, object]] = []
    log = EventLog(lambda e: stamps.append((time.perf_counter(), e.step)) if e.job == "job1" else None)
    order = RetakeOrder(timeline=timeline, output=folder / "out.otio", prompt="the same shot at dusk",
                        mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, provider="local", model="fal-ai/ltx-2/retake-video",
                        range=(str(window[0]), str(window[1])), media_dir=folder / "media")
    with Journal(folder / "journal.sqlite") as journal:
        began = time.perf_counter()
        outcome = run(order, wiring, log, journal=journal)
        ended = time.perf_counter()
    (job,) = outcome.jobs
    if outcome.exit_code:
        raise SystemExit(f"the retake failed: {job.error}")
    times = split(stamps, began, ended)
    record = local.jobs[job.request_id]
    times["generation"] = record.finished_at - record.started_at
    times["service queue"] = record.started_at - record.submitted_at
    times["overhead"] = times["total"] - times["generation"]
    times["frames"] = job.plan.cut.total_frames
    times["status latency"] = times["follow"] - times["generation"]
    return times


def measure(source: Path, runs: int, window_s: float, folder: Path) -> list[dict[str, float]]:
    from ltx_retake.adapters.local_service import LocalServiceConfig
    from ltx_retake.adapters.services import open_service
    from ltx_retake.compose import offline_wiring
    from ltx_retake.settings import Settings

    settings = Settings(journal=str(folder / "journal.sqlite"))
    timeline, window = project(source, folder, window_s)
    config = LocalServiceConfig(queue_delay=0.0, processing_delay=0.0, storage_dir=folder / "service")
    results = []
    wiring = offline_wiring(settings)                       # as compose.wiring_for builds it for the local provider
    with open_service("local", settings, local_config=config) as opened:
        wiring.service, wiring.host = opened.service, opened.host
        for i in range(runs):
            results.append(one_run(timeline, window, wiring, opened.local, folder / f"run{i + 1}"))
            print(f"run {i + 1}: {results[-1]['total']:.2f} s", file=sys.stderr, flush=True)
    return results


class _Counting:
    """A FileHost that passes uploads on and counts their bytes."""

    def __init__(self, host):
        self.host, self.sent = host, []

    def upload(self, path, content_type, on_progress=None):
        self.sent.append(Path(path).stat().st_size)
        return self.host.upload(path, content_type, on_progress)


def context_rows(sources: dict[str, Path], runs: int, window_s: float, folder: Path) -> list[dict]:
    """Per source and context (default, max): medians of input seconds, bytes sent, estimate, cut and conform seconds."""
    from ltx_retake.adapters.local_service import LocalServiceConfig
    from ltx_retake.adapters.services import open_service
    from ltx_retake.compose import offline_wiring
    from ltx_retake.journal import Journal
    from ltx_retake.limits import DEFAULT_CONTEXT_S, limits_for
    from ltx_retake.ports import RetakeMode
    from ltx_retake.progress import EventLog
    from ltx_retake.orders import RetakeOrder
    from ltx_retake.runner import run
    from ltx_retake.settings import Settings

    settings = Settings(journal=str(folder / "journal.sqlite"))
    config = LocalServiceConfig(queue_delay=0.0, processing_delay=0.0, storage_dir=folder / "service")
    fal = limits_for("fal")
    rows = []
    with open_service("local", settings, local_config=config) as opened:
        for label, source in sources.items():
            (folder / label).mkdir(parents=True)
            timeline, window = project(source, folder / label, window_s)
            for context, context_s in (("default (1 s a side)", DEFAULT_CONTEXT_S), ("max", None)):
                samples = []
                for i in range(runs):
                    wiring = offline_wiring(settings)
                    counting = _Counting(opened.host)
                    wiring.service, wiring.host = opened.service, counting
                    stamps: list = []
                    log = EventLog(lambda e: stamps.append((time.perf_counter(), e.step)) if e.job == "job1" else None)
                    out = folder / label / f"{context[:3]}{i}"
                    order = RetakeOrder(timeline=timeline, output=out / "out.otio", prompt="dusk",
                                        mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, provider="local", model="m",
                                        range=(str(window[0]), str(window[1])), media_dir=out / "media",
                                        context_s=context_s, fresh=True)
                    with Journal(out / "journal.sqlite") as journal:
                        began = time.perf_counter()
                        outcome = run(order, wiring, log, journal=journal)
                        ended = time.perf_counter()
                    (job,) = outcome.jobs
                    if outcome.exit_code:
                        raise SystemExit(f"the retake failed: {job.error}")
                    times = split(stamps, began, ended)
                    samples.append({"input": job.plan.input_seconds, "sent": sum(counting.sent),
                                    "estimate": fal.estimate_usd(job.plan.input_seconds), "cut": times["cut"],
                                    "conform": times["conform"], "context": job.plan.context,
                                    "rate": float(job.plan.media.frame_rate)})
                    print(f"{label} {context} run {i + 1}: cut {times['cut']:.2f} s, conform {times['conform']:.2f} s",
                          file=sys.stderr, flush=True)
                med = {k: statistics.median(r[k] for r in samples) for k in ("input", "sent", "estimate", "cut", "conform")}
                before, after = samples[0]["context"]
                rows.append({"source": label, "context": context, **med,
                             "sides": (before / samples[0]["rate"], after / samples[0]["rate"])})
    return rows


def print_context_table(rows: list[dict], window_s: float, ffmpeg: str) -> None:
    print(f"a {window_s:g} s window in the middle of a 20 s source (24 fps, H.264 + AAC); medians\n")
    print("| source | context | context sent (before + after) | input | uploaded | estimate (fal, $0.10/s) | cut | "
          "conform | cut + conform |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['source']} | {r['context']} | {r['sides'][0]:.2f} + {r['sides'][1]:.2f} s | {r['input']:.2f} s | "
              f"{r['sent'] / 1e6:.1f} MB | ${r['estimate']:.2f} | {r['cut']:.2f} s | {r['conform']:.2f} s | "
              f"{r['cut'] + r['conform']:.2f} s |")
    hd = next(r for r in rows if r["source"] == "1080p" and r["context"].startswith("default"))
    uhd = next(r for r in rows if r["source"] == "UHD" and r["context"].startswith("default"))
    hd_total, uhd_total = hd["cut"] + hd["conform"], uhd["cut"] + uhd["conform"]
    print(f"\ndefault input {hd['input']:.2f} s against the window plus twice the context {window_s + 2:.2f} s "
          f"({'met' if hd['input'] <= window_s + 2 + 1e-9 else 'NOT met'}); 1080p cut + conform {hd_total:.2f} s "
          f"(target 3 s: {'met' if hd_total <= 3 else 'NOT met'}); UHD {uhd_total:.2f} s = {uhd_total / hd_total:.2f}x "
          f"1080p (target 1.3x: {'met' if uhd_total <= 1.3 * hd_total else 'NOT met'})")
    print(f"machine: {machine_line(ffmpeg)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench steps", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="retakes to run; the table shows medians (default 3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the source clip (default 30)")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of the window to retake (default 5)")
    parser.add_argument("--gop", type=int, default=48, help="the source's keyframe interval in frames (default 48)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"where the source is kept (default {DEFAULT_CACHE})")
    parser.add_argument("--context-table", action="store_true", help="the context's cost: 2.5 s windows of 1080p and UHD "
                        "sources, default context against max")
    a = parser.parse_args(argv)

    from ltx_retake.adapters.ffmpeg_exe import ffmpeg_path

    ffmpeg = ffmpeg_path()
    if a.context_table:
        sources = {"1080p": make_source(a.cache, 20 / 60, a.gop, "mp4", ffmpeg),
                   "UHD": make_source(a.cache, 20 / 60, a.gop, "mp4", ffmpeg, (3840, 2160))}
        folder = Path(tempfile.mkdtemp(prefix="ltx-retake-bench-context-"))
        try:
            rows = context_rows(sources, max(1, a.runs), 2.5, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print_context_table(rows, 2.5, ffmpeg)
        return 0
    source = make_source(a.cache, a.seconds / 60, a.gop, "mp4", ffmpeg)
    folder = Path(tempfile.mkdtemp(prefix="ltx-retake-bench-steps-"))
    try:
        results = measure(source, max(1, a.runs), a.window, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    total = med["total"]
    print(f"source: {source.name} ({a.seconds:g} s, 1080p24, H.264 + AAC); window {a.window:g} s in the middle; "
          f"the input cut is {int(med['frames'])} frames; {len(results)} runs, medians\n")
    print("| step | median | min | max | share of total |")
    print("| --- | --- | --- | --- | --- |")
    for name in STEPS + ("total",):
        values = [r[name] for r in results]
        print(f"| {name} | {med[name]:.2f} s | {min(values):.2f} s | {max(values):.2f} s | "
              f"{100 * med[name] / total:.0f}% |")
    gen = [r["generation"] for r in results]
    over = [r["overhead"] for r in results]
    print(f"| generation (the service's render, inside follow) | {med['generation']:.2f} s | {min(gen):.2f} s | "
          f"{max(gen):.2f} s | {100 * med['generation'] / total:.0f}% |")
    print(f"| overhead around the model (total - generation) | {med['overhead']:.2f} s | {min(over):.2f} s | "
          f"{max(over):.2f} s | {100 * med['overhead'] / total:.0f}% |")
    print(f"\nfollow beyond generation (status latency): {med['status latency']:.3f} s; "
          f"service queue wait: {med['service queue']:.3f} s")
    print(f"machine: {machine_line(ffmpeg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
