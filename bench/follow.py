"""Following one long job: our fal client against fal's official Python client, on the same local service.

The embedded local service runs in this process with a job that takes `--seconds` (default 60): a sixth of it
IN_QUEUE, the rest IN_PROGRESS. One small indexed clip is uploaded once (not counted); then, one after the
other, each client submits a retake of it and follows it to its result:

  ltx-retake   `FalClient.submit`, `follow` (the status stream, polling with backoff if the stream fails),
               `result`
  fal-client   fal's official `fal_client.SyncClient.subscribe(..., with_logs=True, on_queue_update=...)`,
               the way its README shows it, pointed at the local service by setting
               `fal_client.client.QUEUE_URL_FORMAT` after import

What it prints, per client:
  requests     HTTP requests the service received from submit to result, from the service's own request
               log (the log holds every request: routes submit, status, stream, result)
  by route     the same, split by route
  knows        seconds from the job's completion on the service (`finished_at`, the service's clock, which
               is this process's clock) to the moment the client reported COMPLETED to its caller
               (our `on_status`, fal-client's `on_queue_update`)
  returns      seconds from the job's completion to the moment the client's call returned the result JSON

Targets (issue 6): our requests at most 1/20 of fal-client's; our `knows` under 0.2 s.

Run it with `python -m bench follow [--seconds 60]`; try it short with `--seconds 10`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from bench.common import machine

MODEL = "fal-ai/ltx-2/retake-video"
TARGET_RATIO = 20
TARGET_DELAY = 0.2


@dataclass
class Followed:
    """What one client did to follow one job."""

    client: str
    request_id: str = ""
    requests: int = 0
    by_route: Counter = field(default_factory=Counter)
    knows: float | None = None          # seconds after the service finished the job
    returns: float | None = None
    finished_at: float = 0.0          # the service's clock
    took: float = 0.0                 # the job's length, submit to completion


def _requests_of(service, since: int, request_id: str) -> tuple[int, Counter]:
    """Requests logged from index `since` on that belong to this job: its submit and every call under its id."""
    log = service.requests[since:]
    mine = [r for r in log if r["route"] == "submit" or request_id in r["path"]]
    return len(mine), Counter(r["route"] for r in mine)


def follow_ours(service, video_url: str, prompt: str) -> Followed:
    import httpx

    from ltx_retake.adapters.fal import FalClient
    from ltx_retake.ports import RetakeMode, RetakeRequest

    out = Followed("ltx-retake")
    seen: dict[str, float] = {}
    since = len(service.requests)
    with httpx.Client(timeout=httpx.Timeout(30.0, read=120.0)) as http:
        client = FalClient(http, None, service.base_url, MODEL)
        job = client.submit(RetakeRequest(video_url=video_url, prompt=prompt, start_time=0.5, duration=2.0,
                                          mode=RetakeMode.REPLACE_VIDEO))
        client.follow(job, lambda status: seen.setdefault(status.state, time.time()))
        client.result(job)
        returned = time.time()
    out.request_id = job.request_id
    out.finished_at = service.jobs[job.request_id].finished_at
    out.knows = seen["completed"] - out.finished_at if "completed" in seen else None
    out.returns = returned - out.finished_at
    out.requests, out.by_route = _requests_of(service, since, job.request_id)
    return out


def follow_theirs(service, video_url: str, prompt: str) -> Followed:
    os.environ.setdefault("FAL_KEY", "bench-key")             # the local service takes any key
    import fal_client
    import fal_client.client as fc

    base = service.base_url + "/"
    fc.QUEUE_URL_FORMAT = base
    fc.RUN_URL_FORMAT = base
    fc.REST_URL = service.base_url
    fc.CDN_URL = service.base_url + "/cdn"

    out = Followed(f"fal-client {fal_client.__version__}")
    seen: dict[str, float] = {}
    ids: list[str] = []
    since = len(service.requests)
    client = fal_client.SyncClient()

    def on_update(status) -> None:
        if isinstance(status, fal_client.Completed):
            seen.setdefault("completed", time.time())

    client.subscribe(MODEL, {"video_url": video_url, "prompt": prompt, "start_time": 0.5, "duration": 2.0,
                             "retake_mode": "replace_video"},
                     with_logs=True, on_enqueue=ids.append, on_queue_update=on_update)
    returned = time.time()
    out.request_id = ids[0]
    out.finished_at = service.jobs[out.request_id].finished_at
    out.knows = seen["completed"] - out.finished_at if "completed" in seen else None
    out.returns = returned - out.finished_at
    out.requests, out.by_route = _requests_of(service, since, out.request_id)
    return out


def measure(seconds: float = 60.0) -> tuple[list[Followed], dict]:
    import httpx

    from ltx_retake.adapters.fal import FalStorage
    from ltx_retake.adapters.local_service import LocalService, LocalServiceConfig
    from ltx_retake.adapters.testcard import write_indexed_clip

    queue = seconds / 6
    config = LocalServiceConfig(queue_delay=queue, processing_delay=seconds - queue)
    folder = Path(tempfile.mkdtemp(prefix="ltx-retake-bench-follow-"))
    try:
        clip = write_indexed_clip(folder / "plate.mp4", frames=72, rate=Fraction(24), size=(320, 180))
        with LocalService(config) as service:
            with httpx.Client() as http:
                video_url = FalStorage(http, None, service.base_url).upload(clip, "video/mp4")
            rows = [follow_ours(service, video_url, "follow bench: ours"),
                    follow_theirs(service, video_url, "follow bench: fal-client")]
            for row in rows:
                job = service.jobs[row.request_id]
                row.took = job.finished_at - job.submitted_at
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows, {"seconds": seconds, "queue": queue}


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.3f} s"


def table(rows: list[Followed], info: dict) -> str:
    ours, theirs = rows
    lines = [f"one job of {info['seconds']:g} s ({info['queue']:g} s queued) on the embedded local service, "
             f"followed by each client in turn", ""]
    lines.append(f"| {'client':18} | {'job took':>9} | {'requests':>8} | {'by route':36} | {'knows':>9} | "
                 f"{'returns':>9} |")
    lines.append(f"| {'-' * 18} | {'-' * 8}: | {'-' * 7}: | {'-' * 36} | {'-' * 8}: | {'-' * 8}: |")
    for row in rows:
        routes = ", ".join(f"{k} {v}" for k, v in sorted(row.by_route.items()))
        lines.append(f"| {row.client:18} | {row.took:7.1f} s | {row.requests:8d} | {routes:36} | "
                     f"{_secs(row.knows):>9} | {_secs(row.returns):>9} |")
    ratio = theirs.requests / ours.requests if ours.requests else float("inf")
    lines.append("")
    lines.append(f"requests: ours {ours.requests}, fal-client {theirs.requests}: 1/{ratio:.1f} of theirs "
                 f"(target at most 1/{TARGET_RATIO}): {'met' if ours.requests * TARGET_RATIO <= theirs.requests else 'MISSED'}")
    met = ours.knows is not None and ours.knows < TARGET_DELAY
    lines.append(f"delay until ours knows: {_secs(ours.knows)} (target under {TARGET_DELAY} s): "
                 f"{'met' if met else 'MISSED'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench follow", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the job takes on the service (60)")
    args = parser.parse_args(argv)
    try:
        import fal_client  # noqa: F401
    except ImportError:
        print("fal-client is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    rows, info = measure(args.seconds)
    print(table(rows, info))
    print(machine("fal-client"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
