"""The `ltx-retake` command line: retake, resume, jobs, costs, versions, use, serve, demo, panel, resolve. Exit codes a script can rely on.

    0    every job done (the new timeline is written)
    1    an unexpected error (a bug: please report it with the command line)
    2    bad input: timeline, selection, limits or arguments, or an estimate above the cost threshold without --yes;
         nothing was sent, nothing was charged
    3    media: ffmpeg could not cut, conform or verify
    4    service: refused, failed, unreachable, or no key
    5    the result could not be spliced into the timeline
    130  cancelled
Progress goes to stderr; results (paths, or JSON with --json) go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from . import __version__, resolve_cli
from .errors import InputError, RetakeError, redact, register_secret
from .costs import estimate
from .ports import DELIVERIES, RetakeMode
from .progress import JobEvent, Step
from .settings import load_settings, order_options

__all__ = ["main", "build_parser"]


class ConsoleProgress:
    """Prints a job's steps, service log lines and coarse progress to a stream (stderr)."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._last: dict[str, tuple[Step, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, e: JobEvent) -> None:
        if self.quiet and e.step not in (Step.FAILED, Step.CANCELLED):
            return
        with self._lock:
            lines = []
            if e.fraction is not None:
                tenth = int(e.fraction * 10)
                if self._last.get(e.job) == (e.step, tenth):
                    return
                self._last[e.job] = (e.step, tenth)
                lines.append(f"[{e.job}] {e.step.value} {int(e.fraction * 100)}%")
            elif e.message:
                lines.append(f"[{e.job}] {e.step.value}: {e.message}")
            lines.extend(f"[{e.job}]   | {line}" for line in e.log)
            for line in lines:
                try:
                    print(redact(line), file=self.stream, flush=True)
                except (BrokenPipeError, ValueError):  # the reader went away (`| head`): the run goes on quietly
                    self.quiet = True
                    return


def _rate(text: str):
    from .timing import parse_rate

    try:
        return parse_rate(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _path_map(text: str):
    from .relink import parse_path_map

    try:
        return parse_path_map(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_timeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("timeline", type=Path, help="a timeline file (.otio, .otioz, .edl, .xml, .fcpxml, .aaf)")
    p.add_argument("--timeline", dest="timeline_name", metavar="NAME", help="which timeline, when the file holds several")
    p.add_argument("--rate", type=_rate, help="the frame rate of an EDL (24, 25, 29.97, 30000/1001 ...), which the file "
                   "itself does not state; needed when its media cannot be found to tell")
    p.add_argument("--map-path", dest="path_maps", type=_path_map, action="append", default=[], metavar="FROM=TO",
                   help="media paths starting with FROM are under TO here (repeat; also the setting path_maps); "
                        "Windows (C:\\, C:/, file://localhost/C%%3a/), macOS and Linux forms all match")
    p.add_argument("--media-search", dest="media_search", type=Path, action="append", default=[], metavar="DIR",
                   help="find media the timeline cannot lead to by name (file, clip, reel) in DIR (repeat; also the "
                        "setting media_search)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ltx-retake", description="Retake a window of a clip with LTX-2 and splice it back as a new version.")
    parser.add_argument("--version", action="version", version=f"ltx-retake {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("retake", help="retake a clip, a range or every marker, and write a new timeline")
    _add_timeline_args(r)
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--clip", metavar="NAME", action="append", help="a clip by name, or #N for the N-th clip on the track "
                      "(repeat for several clips, one job each)")
    what.add_argument("--range", nargs=2, metavar=("IN", "OUT"), help="record in and out (timecode, or frames from the start); OUT is exclusive")
    what.add_argument("--markers", action="store_true", help="one job per marker; its name or comment is the prompt")
    r.add_argument("--track", help="V1, A2, a track name, or a number (default V1)")
    r.add_argument("--prompt", help="what the retake should show (with --markers: added before each marker's text)")
    r.add_argument("--mode", default="replace_audio_and_video", help="replace_video, replace_audio or replace_audio_and_video (video, audio, both)")
    r.add_argument("--provider", choices=("local", "fal", "runcomfy"), default="local")
    r.add_argument("--model", help="the model id (default: the provider's setting)")
    r.add_argument("--local-protocol", choices=("fal", "runcomfy"), default="fal", help="which protocol the local service is driven through")
    r.add_argument("--placement", choices=("splice", "above"), default="splice")
    r.add_argument("--deliver", choices=DELIVERIES, help="the version file's codec (default: the delivery setting, else "
                   "auto: H.264/AAC, .mov for a .mov source, else .mp4). DaVinci Resolve on Linux or the free edition "
                   "cannot decode H.264/AAC: use dnxhr or prores (.mov with PCM sound)")
    r.add_argument("-o", "--output", type=Path, required=True, help="the new timeline to write (.otio keeps every version)")
    r.add_argument("--media-dir", type=Path, help="where retake media goes (default: the output_dir setting, else beside "
                   "the timeline's earlier retakes, else <timeline>_retakes/ beside the output)")
    r.add_argument("--max-parallel", type=int, default=4, metavar="N", help="jobs in flight at once (default 4; fal starts "
                   "new accounts at 2 concurrent)")
    r.add_argument("--context", metavar="SECONDS|max", help="seconds of the shot sent on each side of the window, paid "
                   "for like the window (default: the context_s setting, 1 s); max sends all the service takes")
    r.add_argument("--full-res", action="store_true", help="send the picture at its own size (default: larger pictures "
                   "are sent at 1920x1080, the size the model works at, and the version is scaled back up)")
    r.add_argument("--dissolve", type=int, metavar="N", help="dissolve a changed picture over N frames at each edge "
                   "(default: the dissolve_frames setting, 0: a cut)")
    r.add_argument("--crossfade", type=float, metavar="MS", help="crossfade a changed sound over MS milliseconds at each "
                   "edge (default: the audio_crossfade_ms setting, 20; 0: none)")
    r.add_argument("--per-clip", action="store_true", help="a range across cuts becomes one job per clip")
    r.add_argument("--split", action="store_true", help="a window over the service's limit becomes several jobs")
    r.add_argument("--force", action="store_true", help="replace the output file if it exists")
    r.add_argument("--in-place", action="store_true", help="allow -o to be the input timeline itself")
    r.add_argument("--dry-run", action="store_true", help="plan and print, send nothing")
    r.add_argument("--yes", action="store_true", help="send without asking even when the estimate is above the cost "
                   "threshold, and write an output whose format cannot hold everything (what it loses is listed first)")
    r.add_argument("--fresh", action="store_true", help="pay for a new generation even when an identical request has a result")
    r.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    r.add_argument("--quiet", action="store_true", help="print only failures on stderr")

    re_ = sub.add_parser("resume", help="finish runs a crash or a lost network interrupted, without paying twice")
    re_.add_argument("run", nargs="?", help="a run id from `ltx-retake jobs` (default: every interrupted run)")
    re_.add_argument("--resubmit", action="store_true", help="send again requests whose submit may not have reached the service")
    re_.add_argument("-o", "--output", type=Path, help="write the run's timeline here instead (when its own output cannot "
                     "be written); needs RUN")
    re_.add_argument("--force", action="store_true", help="replace the output file if it exists")
    re_.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    re_.add_argument("--quiet", action="store_true", help="print only failures on stderr")

    j = sub.add_parser("jobs", help="list the journal's runs and the state of their jobs")
    j.add_argument("--all", action="store_true", help="every run, not only the latest 20")
    j.add_argument("--drop", metavar="RUN", help="give up on a run: it is never resumed; what it cost stays in the "
                   "ledger and the results it paid for are kept (their paths are printed)")
    j.add_argument("--json", action="store_true")

    c = sub.add_parser("costs", help="what was spent, by timeline and by day, from the journal's ledger")
    c.add_argument("--json", action="store_true")

    v = sub.add_parser("versions", help="list the clips that have retakes, their versions and the active one")
    _add_timeline_args(v)
    v.add_argument("--json", action="store_true")

    u = sub.add_parser("use", help="make a version (or the original) the one a clip shows")
    _add_timeline_args(u)
    u.add_argument("clip", help="the clip's original name or a version's name")
    u.add_argument("version", help="v002, retake_v002, <clip>_retake_v002, or original")
    u.add_argument("--at", metavar="TIMECODE", help="which window, when the clip was retaken in several places")
    u.add_argument("-o", "--output", type=Path, help="write here instead of updating TIMELINE in place")
    u.add_argument("--yes", action="store_true", help="write even when the output's format cannot hold everything (listed)")

    s = sub.add_parser("serve", help="run the embedded local retake service (fal and RunComfy protocols) until Ctrl-C",
                       description="Listening beyond 127.0.0.1 needs a key, taken from LTX_RETAKE_SERVE_KEY (never from "
                                   "the command line); clients then send it as their fal key or RunComfy token.")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--storage", type=Path, help="keep uploads and results here (default: a temporary folder)")
    s.add_argument("--queue-delay", type=float, default=0.0)
    s.add_argument("--processing-delay", type=float, default=0.0)
    s.add_argument("--quirks", default="", help="comma list of int_fps, snap_8k1, audio_24k: behave like the real model")

    pa = sub.add_parser("panel", help="open the retake panel (needs the ui extra: pip install 'ltx-retake[ui]')")
    pa.add_argument("timeline", type=Path, nargs="?", help="a timeline to open (any format OTIO reads)")
    pa.add_argument("--resolve", action="store_true", help="open on the timeline in the running DaVinci Resolve")
    resolve_cli.add_parser(sub)

    d = sub.add_parser("demo", help="make a small project with real media, retake a shot on the local service, show before and after")
    d.add_argument("--dir", type=Path, default=Path("ltx-retake-demo"), help="where to put the project (default ./ltx-retake-demo)")
    d.add_argument("--local-protocol", choices=("fal", "runcomfy"), default="fal")
    return parser


def _cmd_retake(a: argparse.Namespace) -> int:
    from .compose import model_for, offline_wiring, relink_settings, wiring_for
    from .orders import RetakeOrder
    from .runner import prepare, run

    settings = load_settings()
    maps, folders = relink_settings(settings, a.path_maps, a.media_search)
    if not a.markers and not a.prompt:
        raise InputError("--prompt is required with --clip and --range (with --markers each marker's text is the prompt).")
    order = RetakeOrder(
        timeline=a.timeline, output=a.output, prompt=a.prompt, mode=RetakeMode.parse(a.mode), provider=a.provider,
        model=model_for(a.provider, settings, a.model), clip=(a.clip[0] if len(a.clip) == 1 else tuple(a.clip)) if a.clip else None, range=tuple(a.range) if a.range else None,
        markers=a.markers, track=a.track, per_clip=a.per_clip, split=a.split, placement=a.placement,
        media_dir=a.media_dir or (Path(settings.output_dir) if settings.output_dir else None),
        overwrite=a.force, in_place=a.in_place, fresh=a.fresh, max_parallel=max(1, a.max_parallel),
        local_protocol=a.local_protocol, rate=a.rate, timeline_name=a.timeline_name,
        delivery=a.deliver or settings.delivery, path_maps=maps, media_search=folders, accept_losses=a.yes,
        **order_options(settings, context=a.context, full_res=a.full_res, dissolve=a.dissolve, crossfade=a.crossfade),
    )
    printer = ConsoleProgress(quiet=a.quiet)
    if a.dry_run:
        _, jobs, media_dir = prepare(order, offline_wiring(settings, rate=a.rate, timeline_name=a.timeline_name,
                                                           path_maps=maps, media_search=folders), printer)
        _report(a, jobs, None, media_dir)
        print(estimate([j.plan for j in jobs]).sentence(), file=sys.stderr)
        return 0

    def confirm(jobs) -> bool:
        return _confirm_cost(estimate([j.plan for j in jobs]), settings.cost_threshold_usd, a.yes)

    def work(journal, log, cancel):
        with wiring_for(a.provider, settings, model=a.model, local_protocol=a.local_protocol, rate=a.rate,
                        timeline_name=a.timeline_name, path_maps=maps, media_search=folders) as wiring:
            return [run(order, wiring, log, cancel, journal=journal, confirm=confirm)]

    return _in_worker(a, settings, work)


def _confirm_cost(est, threshold: float, yes: bool) -> bool:
    """Ask on the terminal when the estimate is above the threshold; a script must pass --yes."""
    if yes or not est.needs_confirmation(threshold):
        return True
    detail = "\n".join(f"  {line}" for line in est.basis)
    if not sys.stdin.isatty():
        raise InputError(f"{est.sentence().capitalize()}, above your threshold of ${threshold:.2f}:\n{detail}\n"
                         "Nothing was sent. Pass --yes to send it, or raise cost_threshold_usd in the settings.")
    print(f"{est.sentence().capitalize()} (threshold ${threshold:.2f}):\n{detail}", file=sys.stderr)
    print("Send? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _in_worker(a: argparse.Namespace, settings, work) -> int:
    """Run `work(journal, log, cancel)` off the main thread so Ctrl-C can cancel on the service, then report."""
    from .progress import EventLog

    log = EventLog(ConsoleProgress(quiet=a.quiet))
    cancel = threading.Event()
    box: dict = {}

    done = threading.Event()

    def target() -> None:
        try:
            with _journal(settings) as journal:
                box["outcomes"] = work(journal, log, cancel)
        except BaseException as exc:  # handed to the main thread, which reports it
            box["error"] = exc
        finally:
            done.set()

    # The main thread waits on an event, not on Thread.join: a Ctrl-C inside join() can leave the thread looking
    # finished while it still runs (CPython before 3.12), and the report, and the run's end, were lost.
    worker = threading.Thread(target=target, name="ltx-retake-run", daemon=True)
    worker.start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        _say("Cancelling: asking the service to stop the jobs (Ctrl-C again to leave at once) ...")
        cancel.set()
        try:
            while not done.wait(0.2):  # let the worker cancel on the service and clean up
                pass
        except KeyboardInterrupt:
            _leave_now("Left without waiting: jobs already submitted may still run on the service; `ltx-retake resume` "
                       "follows them.")
    if "error" in box:
        raise box["error"]
    outcomes = box.get("outcomes")
    if outcomes is None:
        return 130
    for outcome in outcomes:
        _report(a, outcome.jobs, outcome.output, outcome.media_dir, outcome.run_id)
    return max((o.exit_code for o in outcomes), default=0)


def _journal(settings):
    """The user's journal, saying on stderr when another program keeps it locked (and it is waited for)."""
    from .journal import Journal
    from .settings import journal_path

    return Journal(journal_path(settings), on_wait=lambda text: _say(f"ltx-retake: {text}"))


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _leave_now(text: str) -> None:
    """A second Ctrl-C: say so and leave at once (no waiting on worker threads, no 'Exception ignored' at exit).
    Children die with the process (ffmpeg: PR_SET_PDEATHSIG); scratch folders are swept on the next start."""
    _say(text)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    os._exit(130)


def _report(a, jobs, output, media_dir, run_id: str = "") -> None:
    if a.json:
        print(json.dumps({
            "run": run_id or None,
            "output": str(output) if output else None,
            "media_dir": str(media_dir),
            "jobs": [{
                "id": j.id, "state": j.step.value, "clip": j.plan.clip_name, "record": j.plan.record_timecode,
                "version": j.version.name if j.version else None,
                "file": str(j.version.path) if j.version and j.step == Step.SPLICED else None,
                "request_id": j.request_id, "error": j.error, "notes": list(j.plan.notes),
                "estimate_usd": j.plan.estimate_usd, "recoverable": j.recoverable, "reused_from": j.reused_from,
            } for j in jobs],
        }, indent=2))
        return
    for j in jobs:
        if j.step == Step.SPLICED:
            print(f"{j.version.name}\t{j.plan.record_timecode}\t{j.version.path}")
        elif j.step == Step.PLANNED:
            print(f"planned\t{j.plan.summary()}")
        else:
            print(f"{j.step.value}\t{j.plan.label}\t{j.error}" + (f"\trequest {j.request_id}" if j.request_id else ""))
    if output:
        print(f"timeline\t{output}")
    if run_id and any(j.recoverable or not j.step.finished for j in jobs):
        print(f"resume\tltx-retake resume {run_id}")


def _cmd_resume(a: argparse.Namespace) -> int:
    from .compose import wiring_for
    from .orders import order_from
    from .runner import resume

    settings = load_settings()

    if (a.output or a.force) and not a.run:
        raise InputError("-o and --force apply to one run: give its id (`ltx-retake jobs` lists them), e.g. "
                         "`ltx-retake resume RUN -o other.otio`.")

    def work(journal, log, cancel):
        runs = [journal.run(a.run)] if a.run else journal.interrupted()
        if not runs:
            print("Nothing to resume: every run in the journal is finished.", file=sys.stderr)
        outcomes = []
        for record in runs:
            order = order_from(record.order)
            with wiring_for(order.provider, settings, model=order.model, local_protocol=order.local_protocol,
                            rate=order.rate, timeline_name=order.timeline_name, path_maps=order.path_maps,
                            media_search=order.media_search) as wiring:
                outcomes.append(resume(record.id, wiring, journal, log, cancel, resubmit=a.resubmit, output=a.output,
                                       overwrite=a.force))
            if cancel.is_set():
                break
        return outcomes

    return _in_worker(a, settings, work)


def _cmd_jobs(a: argparse.Namespace) -> int:
    if a.drop:
        from .runner import drop

        with _journal(load_settings()) as journal:
            run_id, kept = drop(a.drop, journal)
        print(f"dropped\t{run_id}")
        for line in kept:
            print(f"kept\t{line}")
        return 0
    with _journal(load_settings()) as journal:
        runs = journal.runs(limit=None if a.all else 20)
    if a.json:
        print(json.dumps([{
            "run": r.id, "state": r.state, "timeline": str(r.timeline), "output": None if r.output is None else str(r.output),
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created)),
            "jobs": [{"id": j.name, "state": j.step.value, "clip": j.plan.clip_name, "record": j.plan.record_timecode,
                      "request_id": j.request_id, "reused_from": j.reused_from, "error": j.error, "recoverable": j.recoverable,
                      "version": j.version.get("path")} for j in r.jobs],
        } for r in runs], indent=2))
        return 0
    if not runs:
        print("The journal has no runs yet.", file=sys.stderr)
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        print(f"{r.id}\t{r.state}\t{when}\t{r.timeline.name} -> {'(the panel)' if r.output is None else r.output.name}")
        for j in r.jobs:
            extra = f"\trequest {j.request_id}" if j.request_id else f"\treused {j.reused_from}" if j.reused_from else ""
            extra += f"\t{j.error}" if j.error else ""
            print(f"  {j.name}\t{j.step.value}{' (resumable)' if j.recoverable else ''}\t{j.plan.clip_name}\t"
                  f"{j.plan.record_timecode}{extra}")
    return 0


def _cmd_costs(a: argparse.Namespace) -> int:
    from .costs import spend_report

    with _journal(load_settings()) as journal:
        report = spend_report(journal.ledger())
    if a.json:
        print(json.dumps(report, indent=2))
        return 0
    for title, rows in (("by timeline", report["by_timeline"]), ("by day", report["by_day"])):
        print(f"spend {title}")
        print("  requests\tspent\tunpriced\tfailed\tcancelled\t" + ("timeline" if title == "by timeline" else "day"))
        for b in rows:
            print(f"  {b['requests']}\t${b['spent_usd']:.2f}\t{b['unpriced']}\t{b['failed']}\t{b['cancelled']}\t{b['key']}")
    if not report["by_day"]:
        print("Nothing spent yet.", file=sys.stderr)
    return 0


def _cmd_versions(a: argparse.Namespace) -> int:
    from .compose import offline_wiring, relink_settings
    from .versions import list_versions

    settings = load_settings()
    maps, folders = relink_settings(settings, a.path_maps, a.media_search)
    tl = offline_wiring(settings, rate=a.rate, timeline_name=a.timeline_name, path_maps=maps,
                        media_search=folders).store.read(a.timeline)
    found = list_versions(tl)
    if a.json:
        print(json.dumps([{"clip": r.original_name, "record": r.record_timecode, "track": r.track,
                           "placement": r.placement, "versions": list(r.versions), "active": r.active} for r in found], indent=2))
    else:
        if not found:
            print(f"{a.timeline.name} has no retakes.", file=sys.stderr)
        for r in found:
            print(r.describe())
    return 0


def _cmd_use(a: argparse.Namespace) -> int:
    from .compose import offline_wiring, relink_settings
    from .versions import use_version

    settings = load_settings()
    maps, folders = relink_settings(settings, a.path_maps, a.media_search)
    store = offline_wiring(settings, rate=a.rate, timeline_name=a.timeline_name, path_maps=maps,
                           media_search=folders).store
    from .locks import hold

    out = a.output or a.timeline
    with hold(out, "saving", on_wait=lambda text: _say(f"ltx-retake: {text}")):  # one writer: a retake saving it waits
        document = store.open(a.timeline)
        changed = use_version(document.timeline, a.clip, a.version, a.at)
        store.save(document.timeline, out, document=document, overwrite=True, accept_losses=a.yes)
    for r in changed:
        print(f"{r.original_name}\t{r.record_timecode}\t{a.version}")
    print(f"timeline\t{out}")
    return 0


def _cmd_serve(a: argparse.Namespace) -> int:
    from .compose import serve_local

    quirks = {q.strip() for q in a.quirks.split(",") if q.strip()}
    unknown = quirks - {"int_fps", "snap_8k1", "audio_24k"}
    if unknown:
        raise InputError(f"Unknown quirks {sorted(unknown)}; use int_fps, snap_8k1, audio_24k.")
    key = os.environ.get("LTX_RETAKE_SERVE_KEY") or None
    register_secret(key)
    if not key and a.host not in ("127.0.0.1", "localhost", "::1"):
        raise InputError(f"Listening on {a.host} would let anyone on the network upload to this machine and make it fetch "
                         "any URL: set LTX_RETAKE_SERVE_KEY to a key the clients must send, or keep the default 127.0.0.1.")
    print(f"ltx-retake local service (offline preview engine) on http://{a.host}:{a.port}"
          f"{' (key required)' if key else ''}  (Ctrl-C stops it)", file=sys.stderr)
    serve_local(a.host, a.port, load_settings(), key=key, storage=a.storage, queue_delay=a.queue_delay,
                processing_delay=a.processing_delay, quirks=frozenset(quirks))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    started = time.monotonic()
    result = run_demo(a.dir, local_protocol=a.local_protocol, progress=ConsoleProgress())
    print(f"project\t{result.source_timeline}")
    print(f"timeline\t{result.output_timeline}")
    print(f"version\t{result.version_file}")
    print(f"contact sheet\t{result.contact_sheet}")
    print(f"took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


def _cmd_panel(a: argparse.Namespace) -> int:
    import importlib

    try:  # the core never imports Qt: the panel is loaded by name, only for this command
        app = importlib.import_module("ltx_retake.ui.app")
    except ImportError as exc:
        raise InputError(f"The panel needs PySide6, which is not installed ({exc.name}): pip install 'ltx-retake[ui]'.") from None
    return app.main(a.timeline, resolve=a.resolve)


def _cmd_resolve(a: argparse.Namespace) -> int:
    return resolve_cli.run_command(a, _in_worker, _report, _confirm_cost)


COMMANDS = {"panel": _cmd_panel, "retake": _cmd_retake, "resume": _cmd_resume, "jobs": _cmd_jobs, "costs": _cmd_costs, "versions": _cmd_versions, "use": _cmd_use, "serve": _cmd_serve, "demo": _cmd_demo, "resolve": _cmd_resolve}


def main(argv: list[str] | None = None) -> int:
    from .scratch import sweep

    args = build_parser().parse_args(argv)
    sweep()  # scratch folders of processes that were killed (the local service's uploads, ...)
    try:
        return COMMANDS[args.command](args)
    except RetakeError as exc:
        _say(f"ltx-retake: {redact(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("ltx-retake: cancelled")
        return 130
    except BrokenPipeError:  # `ltx-retake jobs | head`: the reader has what it wanted; no traceback, no report
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 141
    except Exception as exc:  # a bug: one sentence here, the traceback (redacted) in a file for the report
        where = _crash_report(exc, argv)
        print(f"ltx-retake: an unexpected error ({type(exc).__name__}) stopped `{args.command}`. Please report it with "
              f"the command line{f' and {where}' if where else ''}.", file=sys.stderr)
        return 1


def _crash_report(exc: BaseException, argv: list[str] | None) -> str:
    """Write the traceback, with secrets redacted, to a file in the user's data folder; its path ('' if none)."""
    import tempfile
    import traceback

    try:
        from platformdirs import user_log_dir

        folder = Path(user_log_dir("ltx-retake"))
        folder.mkdir(parents=True, exist_ok=True)
    except Exception:  # noqa: BLE001 - no log folder: the temp folder will do
        folder = Path(tempfile.gettempdir())
    path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    text = "ltx-retake " + " ".join(sys.argv[1:] if argv is None else argv) + "\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        path.write_text(redact(text), encoding="utf-8")
    except OSError:
        return ""
    return str(path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
