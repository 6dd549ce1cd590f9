"""The picture monitor while scrubbing: how long a frame takes from a playhead move to the screen.

One indexed H.264 source per size (a 10 s clip at 24 fps, libx264's default GOP of 250 frames, so most seeks
decode from far back) cut as three clips on V1; the panel's own `Monitor` (its decoding thread, the newest
request winning) and `TimelineIndex.picture_at`, offscreen. Steps, for each size:

  step        the playhead one frame forward, 48 times, each picture awaited (arrow keys, J/K/L at 1x)
  jump        the playhead to 24 random frames, each awaited (a click on the ruler)
  drag        60 playhead moves 8 ms apart without waiting (dragging on the ruler): pictures shown, and the time
              from the last move to its picture

Every picture is checked by content (the frame index the test card carries). Run it with
`python -m bench monitor [--sizes 320x180,1920x1080]`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

__all__ = ["main"]


def _table(rows: list[tuple]) -> str:
    head = ("size", "step median ms", "step max ms", "jump median ms", "jump max ms", "drag: shown/moves", "drag: last ms")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in [head, *rows]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench monitor", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="320x180,1920x1080")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import numpy as np
    import opentimelineio as otio
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from ltx_retake.adapters.media import FfmpegMediaTool
    from ltx_retake.adapters.testcard import read_index, write_indexed_clip
    from ltx_retake.ui.monitor import FrameSource, Monitor
    from ltx_retake.ui.timeline_model import TimelineIndex

    app = QApplication.instance() or QApplication([])
    media = FfmpegMediaTool()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ltx-bench-monitor-") as tmp:
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            src = write_indexed_clip(Path(tmp) / f"src_{size}.mov", frames=240, rate=Fraction(24), size=(w, h), audio=False)
            rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
            tl = otio.schema.Timeline(name="bench")
            track = otio.schema.Track(name="V1")
            for name, a, b in (("A", 0, 80), ("B", 80, 160), ("C", 160, 240)):
                ref = otio.schema.ExternalReference(target_url=str(src), available_range=tr(rt(0, 24), rt(240, 24)))
                track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=tr(rt(a, 24), rt(b - a, 24))))
            tl.tracks.append(track)
            index = TimelineIndex(tl)
            reader = media.frame_reader()
            monitor = Monitor(reader.read, media.probe)
            monitor.resize(960, 600)

            def ask(frame: int) -> None:
                picture = index.picture_at(frame)
                monitor.show_picture(picture, FrameSource(src, picture.media_time.to_seconds(), 0.0), "")

            def wait() -> None:
                while monitor.pending():
                    app.processEvents()
                    time.sleep(0.0005)

            def shown() -> int | None:
                image = monitor.image().convertToFormat(QImage.Format.Format_RGB888)
                line = image.bytesPerLine()
                rgb = np.frombuffer(image.constBits(), np.uint8, count=image.height() * line)
                rgb = rgb.reshape(image.height(), line)[:, :image.width() * 3].reshape(image.height(), image.width(), 3)
                return read_index(rgb.copy())

            def timed(frames) -> list[float]:
                out = []
                for f in frames:
                    t0 = time.perf_counter()
                    ask(f)
                    wait()
                    out.append((time.perf_counter() - t0) * 1000)
                    assert shown() == f, f"the monitor showed {shown()} for frame {f}"
                return out

            timed([100])                                   # open the file, probe it
            step = timed(range(101, 149))
            rng = random.Random(7)
            jump = timed([rng.randrange(240) for _ in range(24)])
            before = len(monitor.latencies)
            t_last = 0.0
            for f in range(10, 70):
                ask(f)
                t_last = time.perf_counter()
                app.processEvents()
                time.sleep(0.008)
            wait()
            last = (time.perf_counter() - t_last) * 1000
            assert shown() == 69
            drawn = len(monitor.latencies) - before
            rows.append((size, f"{statistics.median(step):.1f}", f"{max(step):.1f}", f"{statistics.median(jump):.1f}",
                         f"{max(jump):.1f}", f"{drawn}/60", f"{last:.1f}"))
            monitor.close_decoder()
            reader.close()
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
