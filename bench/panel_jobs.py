"""The panel under load: N retake jobs at once against the embedded local service, measuring the Qt event loop's stalls.

The real window (timeline, form, jobs list, preview) is shown offscreen with a project of N clips cut from one
indexed plate; one request retakes every clip (one job each, all in flight together) through the panel's
session, exactly as the Retake button sends it. A 10 ms QTimer samples the event loop the whole time: a
stall is how much later than asked a tick arrived. The local service runs in the panel's process, as it
does for a user, so its HTTP server, the runner's threads and the window share one interpreter.

Run it with `python -m bench panel_jobs [--jobs 20] [--delay 2.0]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Sequence

TICK_MS = 10


def _project(folder: Path, jobs: int, seconds: float, rate: Fraction) -> Path:
    import opentimelineio as otio

    from ltx_retake.adapters.testcard import write_indexed_clip
    from ltx_retake.adapters.timeline_files import write_timeline

    per = round(seconds * rate)
    plate = folder / "plate.mov"
    write_indexed_clip(plate, frames=per * jobs, rate=rate, size=(320, 180), timecode="01:00:00:00")
    tl = otio.schema.Timeline(name="load")
    track = otio.schema.Track(name="V1")
    avail = otio.opentime.TimeRange(otio.opentime.RationalTime(86400, float(rate)), otio.opentime.RationalTime(per * jobs, float(rate)))
    for i in range(jobs):
        ref = otio.schema.ExternalReference(target_url=str(plate), available_range=avail)
        track.append(otio.schema.Clip(name=f"shot_{i + 1:03d}", media_reference=ref, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(86400 + i * per, float(rate)), otio.opentime.RationalTime(per, float(rate)))))
    tl.tracks.append(track)
    return write_timeline(tl, folder / "load.otio")


def measure(jobs: int = 20, delay: float = 2.0, seconds: float = 2.5) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    folder = Path(tempfile.mkdtemp(prefix="ltx-retake-bench-panel-"))
    os.environ["LTX_RETAKE_JOURNAL"] = str(folder / "journal.sqlite")
    os.environ["LTX_RETAKE_SETTINGS"] = str(folder / "settings.json")
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from ltx_retake.adapters.local_service import LocalServiceConfig
    from ltx_retake.settings import load_settings
    from ltx_retake.ui.window import RetakeWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    cut = _project(folder, jobs, seconds, Fraction(24))
    window = RetakeWindow(load_settings(), qsettings=QSettings(str(folder / "panel.ini"), QSettings.IniFormat),
                          local_config=LocalServiceConfig(processing_delay=delay))
    window.session.max_parallel = jobs
    window.resize(1400, 860)
    window.show()
    window.open(cut)

    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000 - TICK_MS)
        last[0] = now

    sampler = QTimer()
    sampler.setInterval(TICK_MS)
    sampler.timeout.connect(tick)
    window.form.set_prompt("the same shot at dusk")
    # what Retake sends for N clicked clips: each clip's place on the timeline
    request = window.form.request(clips=tuple((0, i) for i in range(jobs)))
    events = [0]
    window.session.events.connect(lambda batch: events.__setitem__(0, events[0] + len(batch)))
    started = time.perf_counter()
    sampler.start()
    last[0] = time.perf_counter()
    keys = [window.session.start(request)]
    while any(window.session.runs[k].outcome is None and window.session.runs[k].error is None for k in keys) \
            or window.session._finished or window.session.in_flight():
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()
    wall = time.perf_counter() - started
    sampler.stop()
    outcome = window.session.runs[keys[0]].outcome
    done = sum(1 for j in outcome.jobs if j.step.value == "spliced") if outcome else 0
    window.session.document.modified = False
    window.close()
    stalls = sorted(max(0.0, g) for g in gaps)
    return {"jobs": jobs, "spliced": done, "wall_s": wall, "events": events[0], "ticks": len(gaps),
            "max_stall_ms": stalls[-1] if stalls else 0.0,
            "p99_stall_ms": stalls[int(len(stalls) * 0.99) - 1] if stalls else 0.0,
            "median_stall_ms": statistics.median(stalls) if stalls else 0.0,
            "over_50ms": sum(1 for s in stalls if s > 50), "folder": str(folder)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench panel_jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds each job stays generating on the local service")
    a = parser.parse_args(argv)
    r = measure(a.jobs, a.delay)
    print(f"| jobs at once | spliced | wall | events | event-loop ticks | longest stall | p99 stall | median | stalls > 50 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {r['jobs']} | {r['spliced']} | {r['wall_s']:.1f} s | {r['events']} | {r['ticks']} | {r['max_stall_ms']:.1f} ms | "
          f"{r['p99_stall_ms']:.1f} ms | {r['median_stall_ms']:.1f} ms | {r['over_50ms']} |")
    print(f"target: longest stall under 50 ms (Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    return 0 if r["spliced"] == r["jobs"] else 1


if __name__ == "__main__":
    sys.exit(main())
