"""`python -m bench NAME [options]`: the one entry point to every benchmark; each prints a table."""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "soak": "hundreds of retakes with a share of every call faulted, and one resume pass",
    "timeline_view": "the panel's timeline on 10,000 clips: show, zoom steps, fit",
    "monitor": "the panel's picture monitor: frame latency per playhead step, jump and drag (320x180, 1080p H.264)",
    "panel_jobs": "the panel with N jobs in flight against the local service: the event loop's longest stall",
    "follow": "one 60 s job followed by our fal client and by fal-client: requests made, delay until known",
    "upload": "a 300 MiB file into fal storage by our uploader and by fal-client: MiB/s, peak memory",
    "cut": "the input cut of a 10 s window from a 10-minute 1080p source, ours against one bare ffmpeg command",
    "steps": "one clip's retake through the runner and a zero-delay local service: wall time per step",
    "many": "50 jobs in one run (max_parallel=50) vs 1 against the local service: wall, peak RSS, threads, ffmpegs",
    "big_timeline": "read, plan 100, splice 100, write at 1,000-10,000 clips: time per step and how it grows",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in BENCHES:
        print("usage: python -m bench NAME [options]   (python -m bench NAME --help for its options)\n")
        for name, what in BENCHES.items():
            print(f"  {name:14} {what}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    return importlib.import_module(f"bench.{args[0]}").main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
