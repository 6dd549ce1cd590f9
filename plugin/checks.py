"""What is checked before anything is paid for: destination, room, the output's format, media, numbering."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from .atomic import check_room, check_writable
from .document import Document
from .errors import InputError, SelectionError
from .jobs import Job, Wiring
from .journal import version_in_flight
from .landing import splice_job
from .locks import claimed
from .metadata import is_version_key, NS, original_reference
from .orders import RetakeOrder
from .paths import safe_stem, same_file
from .plan import Plan
from .ports import delivery_of, MediaInfo
from .selection import Selection
from .timing import exact_rate, rate_text

__all__ = ["free_version_path", "name_taken", "check_destination", "bytes_needed", "check_room_for", "check_relinked",
           "check_output", "default_media_dir", "refuse_undeliverable", "refuse_overlaps"]


def free_version_path(media_dir: Path, name: str, output: Path, claimed: set[Path]) -> Path:
    """Where a version file goes: `media_dir/name`, unless a file of that name is there already (never written over):
    then `media_dir/<output's name>/name`, and `-2`, `-3` ... before the suffix if even that is taken."""
    path = (media_dir / name).absolute()
    if not name_taken(path, claimed):
        return path
    folder = media_dir.absolute() / safe_stem(output.stem)
    stem, suffix = Path(name).stem, Path(name).suffix
    path, k = folder / name, 1
    while name_taken(path, claimed):
        k += 1
        path = folder / f"{stem}-{k}{suffix}"
    return path


def name_taken(path: Path, planned: set[Path]) -> bool:
    """A version name is taken by a file, by another job of this plan, or by another run's claim (see locks)."""
    return path.exists() or path in planned or claimed(path, in_flight=version_in_flight)


def check_destination(order: RetakeOrder) -> None:
    """The output can be written by this run: not the input (unless --in-place), not there already (unless --force),
    in a folder that can be written. (No output: a face's open document takes the versions.)"""
    if order.output is None:
        return
    same = same_file(order.output, order.timeline)
    if same and not order.in_place:
        raise InputError(f"The output {order.output.name} is the input timeline; give another -o path (the original is never overwritten), or pass --in-place.")
    if order.output.exists() and not (order.overwrite or (order.in_place and same)):
        raise InputError(f"{order.output} already exists; choose another -o path, or pass --force to replace it.")
    check_writable(order.output.parent, f"the timeline {order.output.name}", folder=True)


# Upper bounds of what the media written per job takes, in bits per pixel (from the encoders' settings: H.264 at
# CRF 14-16 stays well under 1; ProRes 422 HQ about 4.5 at 10 bits; DNxHR HQ 3.5) and bytes per second of sound.
_BITS_PER_PIXEL = {"h264": 1.0, "prores": 6.0, "dnxhr": 4.0}


_SOUND_BYTES_S = 48000 * 2 * 4       # the deepest PCM a version keeps (32 bits, stereo), above any AAC


_SERVICE_PICTURE = 1920 * 1080       # what the service returns at least (the model works at 1080p)


def bytes_needed(plan: Plan, delivery: str) -> tuple[int, int]:
    """(bytes of the work files: the input cut and the service's return, bytes of the version file), as upper bounds."""
    cut = plan.cut
    w, h = cut.max_size or (plan.media.width, plan.media.height)
    rate = float(cut.frame_rate) or 24.0
    cut_s = cut.total_frames / rate
    sent = min(w * h, plan.media.width * plan.media.height) if cut.max_size else plan.media.width * plan.media.height
    work = (sent + max(sent, _SERVICE_PICTURE)) * cut.total_frames * _BITS_PER_PIXEL["h264"] / 8 + 2 * _SOUND_BYTES_S * cut_s
    codec = delivery_of(delivery, plan.media.path)[0]
    version = (plan.media.width * plan.media.height * plan.window_frames * _BITS_PER_PIXEL[codec] / 8
               + _SOUND_BYTES_S * plan.window_frames / rate)
    return int(work), int(version)


def check_room_for(document: Document, jobs: list[Job], order: RetakeOrder, media_dir: Path) -> None:
    """Before anything is paid for: the media folder can be written, and the disks hold the cuts, the returns, the
    versions and the timeline (estimated from the plan as upper bounds)."""
    if not jobs:
        return
    check_writable(media_dir, f"retake media in {media_dir.name}", folder=True)
    work = version = 0
    for job in jobs:
        w, v = bytes_needed(job.plan, order.delivery)
        work, version = work + w, version + v
    size = len(document.source) if document.source is not None else (
        document.path.stat().st_size if document.path and document.path.is_file() else 0)
    needs: dict[Path, tuple[int, str]] = {}
    needs[media_dir] = (work + version, f"the cuts, the service's results and the versions ({len(jobs)} job(s))")
    saved = order.output or order.timeline     # a face's document is saved beside the file it was opened from
    out = saved.absolute().parent
    timeline = (2 * size + 64_000 * len(jobs), f"the timeline {saved.name}")   # a temp copy beside the old file
    if out in needs:
        needs[out] = (needs[out][0] + timeline[0], needs[out][1] + f" and {timeline[1]}")
    else:
        needs[out] = timeline
    check_room(needs)


def check_relinked(sel: Selection, src, info: MediaInfo, found) -> str | None:
    """Media found by a path map or by name must be the clip's. Where the timeline says the media's own rate, a file
    at another rate is refused (a pull-down counts as the same); where it does not, a rate other than the clip's is
    only noted (NLEs play such media by time)."""
    media_rate = exact_rate(info.frame_rate)
    ref = original_reference(sel.clip)
    declared = (getattr(ref, "metadata", {}).get(NS) or {}).get("media_rate")
    if declared:
        said = exact_rate(Fraction(declared))
        if said != media_rate and said / media_rate not in (Fraction(1001, 1000), Fraction(1000, 1001)):
            raise SelectionError(f"{sel.label}: the media {found.path} ({found.how}) runs at {rate_text(media_rate)} fps, "
                                 f"but the timeline says its media runs at {rate_text(said)} fps; it is not this clip's "
                                 "media. Relink to the right file (--map-path, --media-search).")
        return None
    clip_rate = exact_rate(src.clip_range.start_time.rate)
    if clip_rate != media_rate and clip_rate / media_rate not in (Fraction(1001, 1000), Fraction(1000, 1001)):
        return (f"the relinked media {found.path.name} runs at {rate_text(media_rate)} fps and the clip counts "
                f"{rate_text(clip_rate)} fps: its frames are mapped by time")
    return None


def check_output(document: Document, jobs: list[Job], order: RetakeOrder, wiring: Wiring) -> None:
    """Splice the planned versions into a copy and ask the store what the output would lose or cannot hold, before
    anything is paid for: a refusal raises; losses raise unless the order accepts them (--yes)."""
    if not jobs or order.output is None:
        return
    trial = document.timeline.deepcopy()
    for job in sorted(jobs, key=lambda j: (j.plan.track_index, j.plan.record_range.start_time.to_seconds())):
        splice_job(trial, job, order.placement, lambda event: None)
    lost = wiring.store.losses(trial, order.output, document)
    if lost and not order.accept_losses:
        raise InputError(f"Writing {order.output.name} would lose: {'; '.join(lost)}. Nothing was sent. Write .otio to keep "
                         "everything, or pass --yes to accept this.")


def default_media_dir(timeline: otio.schema.Timeline, output: Path, stem: str) -> Path:
    """Where a run's versions go unless told: the timeline's earlier retakes' folder, else `<stem>_retakes` beside the output."""
    return _existing_retake_folder(timeline) or output.absolute().parent / f"{safe_stem(stem)}_retakes"


def _existing_retake_folder(timeline: otio.schema.Timeline) -> Path | None:
    """Where this timeline's earlier retakes live, so every version of a project stays in one folder."""
    folders: dict[Path, int] = {}
    for clip in timeline.find_clips():
        if NS not in clip.metadata:
            continue
        for key, ref in clip.media_references().items():
            url = getattr(ref, "target_url", "")
            if is_version_key(key) and url:
                folder = Path(url).parent
                folders[folder] = folders.get(folder, 0) + 1
    existing = [f for f in sorted(folders, key=folders.get, reverse=True) if f.is_dir()]
    return existing[0] if existing else None




def refuse_undeliverable(plans: list[Plan], delivery: str) -> None:
    """DNxHR takes pictures from 256x120 up (the version has the source's size, upright, in even numbers)."""
    if delivery != "dnxhr":
        return
    for plan in plans:
        m = plan.media
        w, h = (m.display_width, m.display_height) if m.rotation % 360 else (m.width, m.height)
        w, h = max(2, int(w / 2 + 0.5) * 2), max(2, int(h / 2 + 0.5) * 2)
        if w < 256 or h < 120:
            raise InputError(f"{plan.label}: DNxHR needs a picture of at least 256x120, and {Path(m.path).name} is "
                             f"{w}x{h}; deliver it as prores or h264 instead (--deliver prores).")


def refuse_overlaps(plans: list[Plan]) -> None:
    for a_i, a in enumerate(plans):
        for b in plans[a_i + 1:]:
            if a.track_index == b.track_index and a.record_range.intersects(b.record_range):
                raise SelectionError(f"{a.label} and {b.label} overlap after widening ({a.record_timecode} and {b.record_timecode}); "
                                     "move the markers apart or retake them one at a time.")
