"""Timeline view speed: show a 10,000-clip timeline, zoom step by step, repaint fit-all; against otioview's figures.

The timeline: one video track of 10,000 clips of varied lengths (12 to 119 frames at 24 fps), each named, a
marker on every 250th clip, a version badge on every 100th, a dissolve every 500th cut; and one audio track
mirroring the video clips one for one (same names and lengths), so 20,000 clips in all. It is written to a
temporary .otio and read back, as a user's file would be.

Steps (time.perf_counter, offscreen Qt; the median of 5 runs unless said):
  read .otio       reading the file (`ltx_retake.adapters.timeline_files.read_timeline`), reported apart
  show             create the view, set_timeline, resize to 1600x600, show and paint it once (grab)
  zoom step        zoom_in + repaint, over 20 steps from fit-all to about a frame per 20 pixels (median, max)
  fit-all repaint  repaint of the whole timeline fitted to the width

otioview's figures (one QGraphicsItem per OTIO object) are from /work/shared/reference/otio-and-qt-notes.md:
10,000 clips take 4.5-5.3 s to show and 275 ms per zoom step.

Run it with `python -m bench.timeline_view [--clips N] [--runs R]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["build_timeline", "main"]

OTIOVIEW = {"show": (4.5, 5.3), "zoom step": (0.275, 0.275)}


def build_timeline(clips: int = 10_000, rate: float = 24):
    """A timeline of `clips` named clips on V1 with markers, badges and dissolves, and A1 mirroring them."""
    import opentimelineio as otio

    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    tl = otio.schema.Timeline(name=f"bench {clips} clips")
    tl.global_start_time = rt(86400, rate)
    video = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="Sound", kind=otio.schema.TrackKind.Audio)
    for n in range(clips):
        length = 12 + (n * 37) % 108
        name = f"sc{n // 100:03d}_sh{n % 100:03d}0_take{1 + n % 4}"
        for track, suffix in ((video, ".mov"), (audio, ".wav")):
            ref = otio.schema.ExternalReference(target_url=f"/media/{name}{suffix}",
                                                available_range=tr(rt(0, rate), rt(length + 48, rate)))
            clip = otio.schema.Clip(name=name, media_reference=ref, source_range=tr(rt(24, rate), rt(length, rate)))
            if track is video and n % 250 == 0:
                clip.markers.append(otio.schema.Marker(name=f"note {n}", color="GREEN",
                                                       marked_range=tr(rt(24 + length // 2, rate), rt(0, rate))))
            if track is video and n % 100 == 7:
                clip.metadata["ltx_retake"] = {"versions": ["retake_v001", "retake_v002"], "active": "retake_v002"}
            if track is video and n % 500 == 499 and n + 1 < clips:
                track.append(clip)
                track.append(otio.schema.Transition(name="dissolve", in_offset=rt(4, rate), out_offset=rt(4, rate)))
                continue
            track.append(clip)
    tl.tracks.append(video)
    tl.tracks.append(audio)
    return tl


def _median_max(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline_view", description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000, help="clips on the video track (the audio track mirrors them)")
    parser.add_argument("--runs", type=int, default=5, help="runs of show, read and fit-all (the median is reported)")
    parser.add_argument("--steps", type=int, default=20, help="zoom steps")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import opentimelineio as otio
    from ltx_retake.adapters.timeline_files import read_timeline
    from ltx_retake.ui.timeline_view import TimelineView
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    built = build_timeline(args.clips)
    with tempfile.TemporaryDirectory(prefix="bench-timeline-view-") as tmp:
        path = Path(tmp) / "bench.otio"
        otio.adapters.write_to_file(built, str(path), indent=0)
        reads, shows, fits = [], [], []
        timeline = None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            timeline = read_timeline(path)
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            view = TimelineView()
            view.set_timeline(timeline)
            view.resize(1600, 600)
            view.show()
            view.grab()
            app.processEvents()
            shows.append(time.perf_counter() - t0)
            view.close()
            view.deleteLater()
            app.processEvents()
        view = TimelineView()
        view.set_timeline(timeline)
        view.resize(1600, 600)
        view.show()
        app.processEvents()
        view.set_playhead(view.frame_at(view.width() // 2))
        view.zoom_fit()
        for _ in range(args.runs):
            t0 = time.perf_counter()
            view.repaint()
            fits.append(time.perf_counter() - t0)
        fit_stats = view.paint_stats()
        zooms, levels = [], []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            view.zoom_in()
            view.repaint()
            zooms.append(time.perf_counter() - t0)
            levels.append(view.pixels_per_frame())
        view.close()
    frames = int(sum(c.source_range.duration.value for c in timeline.tracks[0].find_clips()))
    read_med = statistics.median(reads)
    show_med = statistics.median(shows)
    zoom_med, zoom_max = _median_max(zooms)
    fit_med = statistics.median(fits)

    def ms(s: float) -> str:
        return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"

    def ratio(ours: float, ref: tuple[float, float]) -> str:
        lo, hi = ref[0] / ours, ref[1] / ours
        return f"{lo:.0f}x faster" if abs(lo - hi) < 0.5 else f"{lo:.0f}-{hi:.0f}x faster"

    print(f"timeline view: {args.clips:,} clips on V1 + {args.clips:,} mirrored on A1 ({frames:,} frames at 24 fps), "
          f"1600x600 offscreen, median of {args.runs} runs; zoom over {args.steps} steps "
          f"({levels[0]:.4f} to {levels[-1]:.2f} px/frame); fit-all drew {fit_stats['rects']} clip rects.")
    print()
    print("| step | ours | otioview | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| read .otio (apart) | {ms(read_med)} | - | - |")
    print(f"| show (view, set_timeline, resize, show, paint) | {ms(show_med)} | 4.5-5.3 s | {ratio(show_med, OTIOVIEW['show'])} |")
    print(f"| show incl. read | {ms(show_med + read_med)} | 4.5-5.3 s | {ratio(show_med + read_med, OTIOVIEW['show'])} |")
    print(f"| zoom step (median) | {ms(zoom_med)} | 275 ms | {ratio(zoom_med, OTIOVIEW['zoom step'])} |")
    print(f"| zoom step (max) | {ms(zoom_max)} | 275 ms | {ratio(zoom_max, OTIOVIEW['zoom step'])} |")
    print(f"| fit-all repaint | {ms(fit_med)} | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
