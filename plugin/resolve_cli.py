"""`ltx-retake resolve ...`: status, retake (live or through OTIO), install and uninstall of the Scripts-menu entry."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

from .ports import DELIVERIES, RetakeMode
from .settings import Settings, load_settings, order_options

__all__ = ["add_parser", "run_command", "delivery_for", "retakes_root"]


def add_parser(sub) -> None:
    """The `resolve` command and its subcommands."""
    rs = sub.add_parser("resolve", help="work on the timeline open in DaVinci Resolve (status, retake, install)")
    rsub = rs.add_subparsers(dest="resolve_command", required=True)
    rsub.add_parser("status", help="what the running Resolve supports, its timeline, and what is picked on it")
    r = rsub.add_parser("retake", help="retake what is picked in Resolve and put the versions back (takes, or a track above)")
    r.add_argument("--prompt", required=True, help="what the retake should show")
    r.add_argument("--mode", default="replace_audio_and_video", help="replace_video, replace_audio or replace_audio_and_video")
    r.add_argument("--provider", choices=("local", "fal", "runcomfy"), default="local")
    r.add_argument("--model", help="the model id (default: the provider's setting)")
    r.add_argument("--local-protocol", choices=("fal", "runcomfy"), default="fal")
    r.add_argument("--deliver", choices=DELIVERIES, help="the version's codec (default: DNxHR .mov with PCM sound where this "
                   "Resolve cannot decode H.264/AAC, on Linux or the free edition; else the delivery setting)")
    r.add_argument("--route", choices=("live", "otio"), default="live", help="live: put versions back on the timeline as "
                   "takes or on a track above; otio: export the timeline as OTIO, retake the file, import the result as "
                   "a new timeline")
    r.add_argument("--finalize", action="store_true", help="finalise whole-clip takes (the take selector goes away)")
    r.add_argument("--media-dir", type=Path, help="where versions go (default: the output_dir setting, else "
                   "~/LTX Retakes/<timeline>/media)")
    r.add_argument("--max-parallel", type=int, default=4, metavar="N")
    r.add_argument("--context", metavar="SECONDS|max", help="seconds of the shot sent each side of the window, paid for "
                   "like the window (default: the context_s setting, 1 s)")
    r.add_argument("--full-res", action="store_true", help="send the picture at its own size (default: 1920x1080 at most)")
    r.add_argument("--dissolve", type=int, metavar="N", help="dissolve a changed picture over N frames at each edge")
    r.add_argument("--crossfade", type=float, metavar="MS", help="crossfade a changed sound over MS ms at each edge")
    r.add_argument("--yes", action="store_true", help="send without asking even above the cost threshold")
    r.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    r.add_argument("--quiet", action="store_true", help="print only failures on stderr")
    for name, what in (("install", "add LTX Retake to Workspace > Scripts > Utility in Resolve"),
                       ("uninstall", "remove the Scripts-menu entry")):
        p = rsub.add_parser(name, help=what)
        p.add_argument("--folder", type=Path, help="the Scripts/Utility folder (default: your own, for this OS)")


def delivery_for(requested: str | None, settings: Settings, decodes_h264: bool) -> str:
    """The codec Resolve gets: the flag, else DNxHR where Resolve cannot read H.264/AAC, else the setting."""
    if requested:
        return requested
    if not decodes_h264 and settings.delivery in ("auto", "h264"):
        return "dnxhr"
    return settings.delivery


def retakes_root() -> Path:
    """Where live timelines' snapshots (and, unless told, versions) are kept: `~/LTX Retakes/<timeline>/`."""
    return Path.home() / "LTX Retakes"


def run_command(a: argparse.Namespace, in_worker, report, confirm_cost) -> int:
    """Dispatch `ltx-retake resolve <command>`; the CLI lends its worker, report and cost question."""
    if a.resolve_command in ("install", "uninstall"):
        from .compose import menu_entry

        install, uninstall = menu_entry()
        if a.resolve_command == "install":
            path = install(a.folder)
            print(f"installed\t{path}")
            print("Restart Resolve (or reopen Workspace > Scripts) and choose Utility > LTX Retake.", file=sys.stderr)
        else:
            path = uninstall(a.folder)
            print(f"removed\t{path}" if path else "nothing to remove")
        return 0
    from .compose import live_nle

    live = live_nle()
    if a.resolve_command == "status":
        return _status(live)
    return _retake(a, live, in_worker, report, confirm_cost)


def _status(live) -> int:
    for line in live.features.lines():
        print(line)
    read = live.read() if live.project.GetCurrentTimeline() is not None else None
    if read is None:
        print("no timeline is open")
        return 0
    from .timing import format_timecode, rate_text

    print(f"timeline\t{read.name}\t{rate_text(read.rate)}{' DF' if read.drop_frame else ''} fps\tstarts "
          f"{format_timecode(read.start_frame, read.rate, read.drop_frame)}")
    print(f"picked\t{read.how}")
    for note in read.notes:
        print(f"note\t{note}")
    return 0


def _retake(a, live, in_worker, report, confirm_cost) -> int:
    from .compose import model_for, wiring_for
    from .costs import estimate

    from .live import live_folder, order_for, retake_live, selections_for
    from .runner import run

    settings = load_settings()
    mode = RetakeMode.parse(a.mode)
    model = model_for(a.provider, settings, a.model)
    delivery = delivery_for(a.deliver, settings, live.features.decodes_h264)
    root = retakes_root()
    media_dir = a.media_dir or (Path(settings.output_dir) if settings.output_dir else None)
    extra = dict(delivery=delivery, max_parallel=max(1, a.max_parallel), local_protocol=a.local_protocol,
                 **order_options(settings, context=a.context, full_res=a.full_res, dissolve=a.dissolve,
                                 crossfade=a.crossfade))

    def confirm(jobs) -> bool:
        return confirm_cost(estimate([j.plan for j in jobs]), settings.cost_threshold_usd, a.yes)

    def work(journal, log, cancel):
        with wiring_for(a.provider, settings, model=a.model, local_protocol=a.local_protocol) as wiring:
            if a.route == "live":
                done = retake_live(live, wiring, root, prompt=a.prompt, mode=mode, provider=a.provider, model=model,
                                   media_dir=media_dir, journal=journal, progress=log, cancel=cancel,
                                   finalize=a.finalize, confirm=confirm, **extra)
                for line in done.landed:
                    print(f"resolve\t{line}")
                return done.outcomes
            read = live.read()
            folder = live_folder(root, read)
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            exported = live.export_otio(folder / "exports" / f"{stamp}.otio")
            document = wiring.store.open(exported)
            order = order_for(exported, media_dir or folder / "media", prompt=a.prompt, mode=mode, provider=a.provider,
                              model=model, placement="splice", **extra)   # the OTIO route splices into the export
            outcomes = [run(order, wiring, log, cancel, journal=journal, confirm=confirm, document=document,
                            selections=selections_for(read, document.timeline))]
            for outcome in outcomes:
                if outcome.output is not None:
                    name = live.import_otio(outcome.output, f"{read.name} LTX retakes")
                    print(f"resolve\timported the retaken timeline as {name!r}")
            return outcomes

    return in_worker(a, settings, work)

