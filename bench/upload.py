"""Uploading one big file to fal storage: our uploader against fal's official Python client, speed and peak memory.

One file of `--mb` MiB (default 300) of seeded random bytes is written once into a cache folder and kept
there for later runs. The embedded local service runs in this process and serves fal's storage endpoints
(token, single upload, multipart). Each uploader runs in its own fresh interpreter, one after the other:

  ltx-retake   `FalStorage.upload` (one streamed POST up to 100 MiB; above that multipart, 10 MiB parts,
               one part in memory at a time)
  fal-client   fal's official `fal_client.SyncClient.upload_file`, pointed at the local service by setting
               `fal_client.client.REST_URL` and `CDN_URL` after import (above 100 MiB it uploads 10 MiB parts,
               10 at a time; below, it reads the whole file into memory)

A subprocess reports its own peak resident memory (`VmHWM` in /proc/self/status, the kernel's high-water
mark of its RSS). The baseline is the peak of another fresh interpreter that makes the same imports and
builds the same client but uploads nothing; "above baseline" is peak minus baseline, the memory the upload
itself costs. After each upload the stored file is checked against the source (size and MD5), then removed.

What it prints, per uploader: seconds, throughput in MiB/s (MiB = 2^20 bytes, wall clock of the upload call
in the subprocess), peak RSS, baseline RSS, and peak above baseline.

Target (issue 6): our upload's peak above baseline under 64 MiB whatever the file's size. The interpreter with
httpx and the project's imports already takes tens of MiB before any upload, so the measure is the peak above
that baseline; the table shows the total peak as well.

Run it with `python -m bench upload [--mb 300]`; try it short with `--mb 50`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bench.common import machine

MiB = 1024 * 1024
TARGET_ABOVE_MIB = 64
SIDES = ("ours", "fal-client")
CONTENT_TYPE = "application/octet-stream"


# -- the subprocess: one uploader in a fresh interpreter -----------------------------------------------------------

def _peak_kib() -> int:
    """This process's RSS high-water mark in KiB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _child(side: str, base_url: str, path: Path, idle: bool) -> dict:
    """Import and build one uploader; unless `idle`, upload `path` with it. Returns what to report."""
    if side == "ours":
        import httpx

        from ltx_retake.adapters.fal import FalStorage

        http = httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), headers={"User-Agent": "ltx-retake"})
        storage = FalStorage(http, None, base_url)

        def upload() -> str:
            return storage.upload(path, CONTENT_TYPE)
    else:
        os.environ.setdefault("FAL_KEY", "bench-key")           # the local service takes any key
        import fal_client
        import fal_client.client as fc

        fc.REST_URL = base_url
        fc.CDN_URL = base_url + "/cdn"
        fc.QUEUE_URL_FORMAT = fc.RUN_URL_FORMAT = base_url + "/"
        client = fal_client.SyncClient()

        def upload() -> str:
            return client.upload_file(path)
    out: dict = {"side": side, "idle": idle, "before_kib": _peak_kib()}
    if not idle:
        began = time.perf_counter()
        out["url"] = upload()
        out["seconds"] = time.perf_counter() - began
    out["peak_kib"] = _peak_kib()
    return out


def _run_child(side: str, base_url: str, path: Path, idle: bool) -> dict:
    command = [sys.executable, "-m", "bench.upload", "--child", side, "--base-url", base_url, "--file", str(path)]
    if idle:
        command.append("--idle")
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} subprocess failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the parent: the file, the service, the table ------------------------------------------------------------------

def source_file(mb: int, folder: Path) -> Path:
    """`mb` MiB of seeded random bytes, written once into `folder` and reused while its size is right."""
    path = folder / f"upload-{mb}mib.bin"
    if path.is_file() and path.stat().st_size == mb * MiB:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".writing")
    rng = random.Random(mb)
    with open(tmp, "wb") as out:
        for _ in range(mb):
            out.write(rng.randbytes(MiB))
    tmp.replace(path)
    return path


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Uploaded:
    """One uploader's figures."""

    side: str
    seconds: float
    mib: float
    peak_kib: int
    baseline_kib: int
    intact: bool

    @property
    def rate(self) -> float:
        return self.mib / self.seconds if self.seconds else float("inf")

    @property
    def above_kib(self) -> int:
        return self.peak_kib - self.baseline_kib


def measure(mb: int = 300, folder: Path | None = None) -> tuple[list[Uploaded], dict]:
    from ltx_retake.adapters.local_service import LocalService, LocalServiceConfig

    folder = folder or Path(tempfile.gettempdir()) / "ltx-retake-bench-upload"
    path = source_file(mb, folder)
    size = path.stat().st_size
    want = _md5(path)
    rows: list[Uploaded] = []
    import fal_client
    info = {"mb": mb, "path": path, "fal_client": fal_client.__version__}
    with LocalService(LocalServiceConfig(max_upload_bytes=max(2 * 1024**3, 2 * size))) as service:
        for side in SIDES:
            idle = _run_child(side, service.base_url, path, idle=True)
            done = _run_child(side, service.base_url, path, idle=False)
            stored = service.state.own_file(done["url"])
            intact = bool(stored and stored.is_file() and stored.stat().st_size == size and _md5(stored) == want)
            if stored is not None:
                stored.unlink(missing_ok=True)
            rows.append(Uploaded(side=side, seconds=done["seconds"], mib=size / MiB, peak_kib=done["peak_kib"],
                                 baseline_kib=idle["peak_kib"], intact=intact))
    return rows, info


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def table(rows: list[Uploaded], info: dict) -> str:
    name = {"ours": "ltx-retake", "fal-client": f"fal-client {info['fal_client']}"}
    lines = [f"one {info['mb']} MiB file uploaded to the local service's fal storage; each uploader in its own "
             f"interpreter", ""]
    lines.append(f"| {'uploader':18} | {'seconds':>8} | {'MiB/s':>7} | {'peak RSS':>10} | {'baseline':>10} | "
                 f"{'above baseline':>14} | {'intact':6} |")
    lines.append(f"| {'-' * 18} | {'-' * 7}: | {'-' * 6}: | {'-' * 9}: | {'-' * 9}: | {'-' * 13}: | {'-' * 6} |")
    for row in rows:
        lines.append(f"| {name[row.side]:18} | {row.seconds:8.2f} | {row.rate:7.1f} | {_mib(row.peak_kib):>10} | "
                     f"{_mib(row.baseline_kib):>10} | {_mib(row.above_kib):>14} | {'yes' if row.intact else 'NO':6} |")
    ours = rows[0]
    lines.append("")
    lines.append("peak RSS: the subprocess's VmHWM; baseline: VmHWM of a fresh interpreter with the same imports and "
                 "client, uploading nothing; above baseline = peak - baseline (the measure: the baseline alone is "
                 f"{_mib(ours.baseline_kib)} for ours)")
    met = ours.above_kib < TARGET_ABOVE_MIB * 1024 and ours.intact
    lines.append(f"ours above baseline: {_mib(ours.above_kib)} (target under {TARGET_ABOVE_MIB} MiB): "
                 f"{'met' if met else 'MISSED'}; total peak {_mib(ours.peak_kib)} "
                 f"({'under' if ours.peak_kib < TARGET_ABOVE_MIB * 1024 else 'over'} {TARGET_ABOVE_MIB} MiB)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench upload", description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="the file's size in MiB (300)")
    parser.add_argument("--folder", type=Path, default=None,
                        help="where the file is written once and kept (default: <temp>/ltx-retake-bench-upload)")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.base_url, args.file, args.idle)))
        return 0
    if args.mb < 1:
        parser.error("--mb must be at least 1")
    try:
        import fal_client  # noqa: F401
    except ImportError:
        print("fal-client is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    rows, info = measure(args.mb, args.folder)
    print(table(rows, info))
    print(machine("fal-client"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
