"""The input cut: our cut of a 10 s window from a long 1080p camera-like source against one bare ffmpeg command.

The source (default 10 minutes, 1920x1080 at 24 fps, H.264 long-GOP with B-frames at about 20 Mbit/s, AAC
stereo) is generated once with ffmpeg into a cache folder and reused. A one-clip OTIO timeline of it goes
through the real planner (`ltx_retake.runner.prepare` on a --range of the window in the middle of the clip),
and the plan's CutSpec is cut with `FfmpegMediaTool.cut`, the call the runner's cut step makes:

  ours (runner)   the cut step as the runner runs it: the source's probe is already in the process's cache,
                  because planning probed it
  ours (cold)     the same call with the probe cache emptied first, as a fresh process that did not plan
  probing         of the cold cut, the in-process probe of the source alone (the file is in the OS's cache)
  bare ffmpeg     one plain `ffmpeg -ss T -i SOURCE -t D` command with the same encoder settings
                  (libx264 veryfast crf 16, yuv420p, the same rate, AAC 192k 48 kHz stereo, faststart), run
                  at the same background priority

Each is run --runs times (taking turns in rotating order, so drifts of the machine's load fall on all of them
alike); the table shows the medians of wall time and of CPU time (this process and its ffmpeg children: what
a shared, busy machine disturbs least), their ratios to bare ffmpeg (target <= 1.1), whether the first and last frames are the source's
(each matches its own source frame better than that frame's neighbours), and the bytes of the cut against
the bytes of the whole source (what uploading the source instead of a cut would send).

Run it with `python -m bench cut [--minutes 10] [--runs 5] [--cache DIR]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

RATE = 24
SIZE = (1920, 1080)
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ltx-retake-bench"


def source_path(cache: Path, minutes: float, gop: int, container: str, size: tuple[int, int] = SIZE) -> Path:
    """Where the generated source for these settings lives in the cache."""
    return cache / f"camera_{minutes:g}min_{size[1]}p{RATE}_gop{gop}.{container}"


def make_source(cache: Path, minutes: float, gop: int, container: str, ffmpeg: str, size: tuple[int, int] = SIZE) -> Path:
    """A camera-like source, generated once: moving test pattern with temporal grain, long-GOP H.264 with
    B-frames at about 20 Mbit/s (80 at UHD), AAC stereo at 48 kHz."""
    dest = source_path(cache, minutes, gop, container, size)
    if dest.is_file():
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.partial{dest.suffix}")
    if container != "mp4":  # the same streams in another container: copied from the MP4, not encoded again
        mp4 = make_source(cache, minutes, gop, "mp4", ffmpeg, size)
        try:
            subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(mp4),
                            "-map", "0", "-c", "copy", str(tmp)], check=True)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest
    seconds = minutes * 60
    print(f"generating {dest} ({seconds:g} s of {size[1]}p; once, it is cached) ...", file=sys.stderr, flush=True)
    rate_mb = 20 * size[0] * size[1] // (1920 * 1080)
    began = time.perf_counter()
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={RATE},noise=alls=12:allf=t+u",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:beep_factor=4",
           "-t", f"{seconds:g}", "-map", "0:v", "-map", "1:a",
           "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", str(gop), "-keyint_min", str(gop),
           "-sc_threshold", "0", "-b:v", f"{rate_mb}M", "-maxrate", f"{rate_mb * 5 // 4}M", "-bufsize", f"{rate_mb * 2}M",
           "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-ac", "2", "-b:a", "256k"]
    if container in ("mp4", "mov"):
        cmd += ["-movflags", "+faststart"]
    cmd.append(str(tmp))
    try:
        subprocess.run(cmd, check=True)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"generated in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return dest


def plan_window(source: Path, folder: Path, window_s: float):
    """The CutSpec the real planner makes for a `window_s` window in the middle of a one-clip timeline of `source`."""
    from bench.common import one_clip_timeline

    from ltx_retake.adapters.media import FfmpegMediaTool
    from ltx_retake.adapters.timeline_files import OtioFiles, write_timeline
    from ltx_retake.ports import RetakeMode
    from ltx_retake.jobs import Wiring
    from ltx_retake.orders import RetakeOrder
    from ltx_retake.runner import prepare

    media = FfmpegMediaTool()
    info = media.probe(source)
    rate = float(info.frame_rate)
    tl = one_clip_timeline(source, info.frame_count, rate, "cut bench")
    timeline = write_timeline(tl, folder / "one_clip.otio", overwrite=True)
    frames = round(window_s * rate)
    start = (info.frame_count - frames) // 2
    order = RetakeOrder(timeline=timeline, output=folder / "out.otio", prompt="the same shot at dusk",
                        mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, provider="local", model="local",
                        range=(str(start), str(start + frames)), media_dir=folder / "media")
    _, jobs, _ = prepare(order, Wiring(media=media, store=OtioFiles()))
    return media, jobs[0].plan


def bare_command(ffmpeg: str, spec, out: Path) -> list[str]:
    """One plain ffmpeg command line that encodes the same frames with the same settings as our cut."""
    rate = Fraction(spec.frame_rate)
    start = Fraction(spec.start_frame) / rate
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-ss", f"{float(start):.6f}", "-i", spec.source_path, "-t", f"{float(spec.total_frames / rate):.6f}",
            "-map", "0:v:0", "-map", "0:a:0?",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p",
            "-r", f"{rate.numerator}/{rate.denominator}",
            "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2", "-movflags", "+faststart",
            "-map_metadata", "-1", "-f", "mp4", str(out)]


def run_bare(cmd: list[str]) -> None:
    """Run the bare command at the priority our cuts run at (run_ffmpeg lowers its child the same way)."""
    from ltx_retake.priority import BACKGROUND_NICE

    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid, BACKGROUND_NICE)
        except OSError:
            pass
        _, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"bare ffmpeg failed: {err.decode(errors='replace')[-500:]}")


def _gray(frame) -> np.ndarray:
    return frame.to_ndarray(format="gray").astype(np.int16)


def source_frames(path: Path, indices: Sequence[int], rate: Fraction) -> dict[int, np.ndarray]:
    """Frames of a CFR source by index, decoded from the keyframe before the first (not from the file's start)."""
    wanted = set(indices)
    out: dict[int, np.ndarray] = {}
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        tb = Fraction(vs.time_base)
        start = Fraction(vs.start_time or 0) * tb
        first = min(wanted)
        c.seek(int((start + Fraction(max(0, first - 2)) / rate) / tb), stream=vs, backward=True)
        for frame in c.decode(vs):
            n = round((Fraction(frame.pts) * tb - start) * rate)
            if n in wanted:
                out[n] = _gray(frame)
            if n >= max(wanted):
                break
    return out


def output_ends(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The first and last frames of a cut, and its frame count."""
    first = last = None
    n = 0
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        for frame in c.decode(vs):
            if first is None:
                first = _gray(frame)
            last = frame
            n += 1
    return first, _gray(last), n


def lands_on(frame: np.ndarray, candidates: dict[int, np.ndarray], want: int) -> bool:
    """Does `frame` look most like source frame `want` (rather than its neighbours)?"""
    diffs = {i: float(np.abs(frame - f).mean()) for i, f in candidates.items() if f.shape == frame.shape}
    return bool(diffs) and min(diffs, key=diffs.get) == want


class _Clock:
    """Wall time and CPU time (this process's threads and its finished children: ffmpeg) of one block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu() - self.cpu


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(source: Path, runs: int, window_s: float, folder: Path) -> dict:
    from ltx_retake.adapters import media_probe

    media, plan = plan_window(source, folder, window_s)
    spec = plan.cut
    rate = Fraction(spec.frame_rate)
    times: dict[str, list[tuple[float, float]]] = {"warm": [], "cold": [], "bare": [], "probe": []}
    out_ours, out_bare = folder / "ours.mp4", folder / "bare.mp4"
    cmd = bare_command(media.ffmpeg, spec, out_bare)
    orders = (("warm", "bare", "cold"), ("cold", "warm", "bare"), ("bare", "cold", "warm"))
    for i in range(runs):
        for what in orders[i % 3]:          # each takes every place in turn: load drifts fall on all alike
            if what == "bare":
                out_bare.unlink(missing_ok=True)
                with _Clock() as clock:
                    run_bare(cmd)
                times["bare"].append((clock.wall, clock.cpu))
                continue
            out_ours.unlink(missing_ok=True)
            if what == "cold":
                media_probe._probe_cached.cache_clear()
                with _Clock() as clock:
                    media_probe.probe_media(spec.source_path)
                times["probe"].append((clock.wall, clock.cpu))
                media_probe._probe_cached.cache_clear()
            else:
                media.probe(spec.source_path)   # as the runner has it: planning probed the source
            with _Clock() as clock:
                media.cut(spec, out_ours)
            times[what].append((clock.wall, clock.cpu))
    a, b = spec.start_frame, spec.start_frame + spec.frame_count - 1
    near = source_frames(source, [a - 1, a, a + 1, b - 1, b, b + 1], rate)
    exact = {}
    counts = {}
    for name, path in (("ours", out_ours), ("bare", out_bare)):
        first, last, counts[name] = output_ends(path)
        exact[name] = (lands_on(first, {k: near[k] for k in (a - 1, a, a + 1) if k in near}, a)
                       and lands_on(last, {k: near[k] for k in (b - 1, b, b + 1) if k in near}, b))
    return {"spec": spec, "plan": plan, "command": cmd, "times": times, "exact": exact, "counts": counts,
            "cut_bytes": out_ours.stat().st_size, "bare_bytes": out_bare.stat().st_size,
            "source_bytes": source.stat().st_size}


def _ffmpeg_version(ffmpeg: str) -> str:
    line = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return line.split(" Copyright")[0].replace("ffmpeg version ", "")


def machine_line(ffmpeg: str) -> str:
    return (f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
            f"ffmpeg {_ffmpeg_version(ffmpeg)}, PyAV {av.__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cut", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the generated source (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each; the table shows medians (default 5)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of the window to retake (default 10)")
    parser.add_argument("--gop", type=int, default=48, help="the source's keyframe interval in frames (default 48)")
    parser.add_argument("--container", choices=("mp4", "mov", "mkv"), default="mp4")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"where the source is kept (default {DEFAULT_CACHE})")
    a = parser.parse_args(argv)

    from ltx_retake.adapters.ffmpeg_exe import ffmpeg_path

    ffmpeg = ffmpeg_path()
    source = make_source(a.cache, a.minutes, a.gop, a.container, ffmpeg)
    folder = Path(tempfile.mkdtemp(prefix="ltx-retake-bench-cut-"))
    try:
        r = measure(source, max(1, a.runs), a.window, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    spec = r["spec"]
    rate = Fraction(spec.frame_rate)
    t = r["times"]
    wall = {k: statistics.median(w for w, _ in v) for k, v in t.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in t.items()}
    print(f"source: {source.name}, {r['source_bytes'] / 1e6:,.1f} MB; window {a.window:g} s in the middle; the plan cuts "
          f"frames {spec.start_frame}..{spec.start_frame + spec.frame_count - 1} ({spec.total_frames} frames, "
          f"{float(spec.total_frames / rate):.2f} s, pad {spec.pad_head}/{spec.pad_tail}); {len(t['bare'])} runs each\n")
    print("| cut | wall, median | min | max | ratio to bare | CPU, median | ratio to bare | frames | "
          "first/last frame are the source's | bytes | of the source |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = (("ours (runner: probe cached)", "warm", "ours", r["cut_bytes"]),
            ("ours (cold: probe included)", "cold", "ours", r["cut_bytes"]),
            ("bare ffmpeg -ss -i -t", "bare", "bare", r["bare_bytes"]))
    for name, key, which, size in rows:
        walls = [w for w, _ in t[key]]
        print(f"| {name} | {wall[key]:.2f} s | {min(walls):.2f} s | {max(walls):.2f} s | {wall[key] / wall['bare']:.2f} | "
              f"{cpu[key]:.1f} s | {cpu[key] / cpu['bare']:.2f} | {r['counts'][which]} | "
              f"{'yes' if r['exact'][which] else 'NO'} | {size / 1e6:,.1f} MB | {100 * size / r['source_bytes']:.2f}% |")
    walls = [w for w, _ in t["probe"]]
    print(f"| of which: probing the source (cold) | {wall['probe']:.2f} s | {min(walls):.2f} s | {max(walls):.2f} s | | "
          f"{cpu['probe']:.2f} s | | | | | |")
    print(f"| upload the whole source instead | | | | | | | | | {r['source_bytes'] / 1e6:,.1f} MB | 100% |")
    print("\nper run, wall s (CPU s): " + "; ".join(
        f"{key}: " + ", ".join(f"{w:.1f} ({c:.0f})" for w, c in t[key]) for key in ("warm", "cold", "bare")))
    verdicts = []
    for key, label in (("warm", "runner"), ("cold", "cold")):
        for unit, table in (("wall", wall), ("CPU", cpu)):
            ratio = table[key] / table["bare"]
            verdicts.append(f"{label} {unit} {ratio:.2f} ({'met' if ratio <= 1.1 else 'NOT met'})")
    print("target: ours / bare <= 1.1 -> " + ", ".join(verdicts))
    print("bare command: " + " ".join(Path(x).name if x in (ffmpeg, spec.source_path) else x for x in r["command"]))
    print(f"machine: {machine_line(ffmpeg)}")
    return 0 if r["exact"]["ours"] else 1


if __name__ == "__main__":
    sys.exit(main())
