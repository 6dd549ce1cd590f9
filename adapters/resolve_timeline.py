"""Reading Resolve's current timeline as an OTIO timeline, and what the editor picked on it.

The OTIO copy goes through the same selection and planner as a timeline file. Each clip keeps the Resolve
item it came from in `metadata["ltx_retake"]["resolve"]`: the item's unique id, its track and its absolute
record frames, so results find their way back to the item.

Frame origins, as measured on real installs: record frames (GetStart, GetEnd, GetStartFrame) are absolute
and GetEnd is exclusive; source frames count from the media file's first frame; no call reads a clip's
speed, so a retime is detected by comparing the source span with the record duration.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from typing import Any

import opentimelineio as otio

from ..errors import SelectionError
from ..live import LiveRead
from ..metadata import NS
from ..timing import exact_rate, format_timecode, parse_timecode, rate_text
from .resolve_connect import Features, has

__all__ = ["parse_rate", "read_live", "item_key", "resolve_meta"]

_RT = otio.opentime.RationalTime
_TR = otio.opentime.TimeRange
_MEDIA_SUFFIX = re.compile(r"\.(mov|mp4|m4v|mxf|avi|mkv|mts|m2ts|braw|r3d|ari|dng|wav|aif|aiff|mp3)$", re.IGNORECASE)


def parse_rate(text: Any) -> tuple[Fraction, bool]:
    """`timelineFrameRate` as Resolve writes it ("24", "23.976", "29.97 DF") -> (exact rate, drop-frame)."""
    raw = str(text or "").strip()
    m = re.match(r"^(\d+(?:\.\d+)?)\s*(DF|NDF)?$", raw, re.IGNORECASE)
    if not m:
        raise SelectionError(f"Resolve reports the timeline's frame rate as {raw!r}, which is not a rate; check "
                             "Timeline settings > Timeline frame rate.")
    rate = exact_rate(Fraction(m.group(1)))
    return rate, bool(m.group(2) and m.group(2).upper() == "DF")


def resolve_meta(clip: otio.core.Item) -> dict | None:
    """The Resolve item a clip of a live read came from (None for clips not read from Resolve)."""
    meta = clip.metadata.get(NS)
    return dict(meta["resolve"]) if meta and "resolve" in meta else None


def item_key(item: Any) -> str:
    """An item's identity across calls: its unique id (18.0), else where it sits."""
    if has(item, "GetUniqueId"):
        uid = item.GetUniqueId()
        if uid:
            return str(uid)
    return f"at:{item.GetStart()}:{item.GetName()}"


def _number(value: Any, default: float | None = None) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return default


def _clip_name(item: Any) -> str:
    name = str(item.GetName() or "clip")
    return _MEDIA_SUFFIX.sub("", name) or name


def _generated(item: Any, duration: int, rate: Fraction) -> otio.schema.Clip:
    kind = str(item.GetName() or "generated item")
    return otio.schema.Clip(name=kind, media_reference=otio.schema.GeneratorReference(generator_kind=f"Resolve {kind}"),
                            source_range=_TR(_RT(0, float(rate)), _RT(duration, float(rate))))


def version_info(item: Any) -> dict | None:
    """The provenance an LTX retake's marker carries on an item (None on the editor's own items)."""
    found = versions_info(item)
    return found[0] if found else None


def versions_info(item: Any) -> list[dict]:
    """The provenance of every LTX retake marker on an item (a clip with several takes carries one per version)."""
    found = []
    for marker in (item.GetMarkers() or {}).values():
        try:
            data = json.loads((marker or {}).get("customData") or "")
        except (ValueError, TypeError, AttributeError):
            continue
        if isinstance(data, dict) and data.get(NS):
            found.append(data)
    return found


def _original(item: Any, features: Features) -> tuple[Any, float, float | None]:
    """The item's own media, source in-point and source span (None: unknown), whichever take it shows.

    A retake is always made from the original: once an item has takes, take 1 is what the editor cut."""
    if int(item.GetTakesCount() or 0) > 0 and int(item.GetSelectedTakeIndex() or 1) != 1:
        first = item.GetTakeByIndex(1) or {}
        return first.get("mediaPoolItem"), _number(first.get("startFrame"), 0) or 0, None
    mpi = item.GetMediaPoolItem()
    if features.source_frames:
        src_in, src_end = _number(item.GetSourceStartFrame(), 0) or 0, _number(item.GetSourceEndFrame(), None)
        return mpi, src_in, None if src_end is None else src_end - src_in
    src_in = _number(item.GetLeftOffset(), 0) or 0
    right = _number(item.GetRightOffset(), None) if has(item, "GetRightOffset") else None
    frames = _number(mpi.GetClipProperty("Frames"), 0) if mpi is not None else 0
    duration = int(item.GetEnd()) - int(item.GetStart())
    # left + duration + right covers the whole media in the retimed domain; at 100% it is the media's length
    return mpi, src_in, None if right is None or not frames else frames * duration / (src_in + duration + right)


def _clip(item: Any, kind: str, index: int, rate: Fraction, features: Features) -> otio.schema.Clip:
    start, end = int(item.GetStart()), int(item.GetEnd())
    duration = end - start
    mpi, src_in, span = _original(item, features)
    if mpi is None:  # titles, generators, adjustment clips
        clip = _generated(item, duration, rate)
    else:
        props = mpi.GetClipProperty() or {}
        path = str(props.get("File Path") or "")
        fps = _number(props.get("FPS"))
        src_rate = exact_rate(Fraction(str(fps))) if fps else rate
        frames = int(_number(props.get("Frames"), 0) or 0)
        try:
            tc_start = parse_timecode(str(props.get("Start TC") or "00:00:00:00"), src_rate)
        except Exception:
            tc_start = 0
        expected = duration * src_rate / rate      # the source frames a 100% clip plays over its record duration
        ref = otio.schema.ExternalReference(target_url=path) if path else otio.schema.MissingReference()
        if frames:
            ref.available_range = _TR(_RT(tc_start, float(src_rate)), _RT(frames, float(src_rate)))
        clip = otio.schema.Clip(
            name=_clip_name(item), media_reference=ref,
            source_range=_TR(_RT(tc_start + int(round(src_in)), float(src_rate)),
                             _RT(duration, float(rate)).rescaled_to(float(src_rate))))
        if span is not None and abs(span - float(expected)) > 1.01:
            speed = 100.0 * span / float(expected) if expected else 0.0
            clip.effects.append(otio.schema.TimeEffect(
                name="Resolve speed change",
                effect_name=(f"Resolve speed change (about {speed:.0f}%: {span:.0f} source frames over {duration} "
                             "record frames; the scripting API cannot tell a constant speed from a ramp)")))
    if has(item, "GetClipEnabled") and item.GetClipEnabled() is False:
        clip.enabled = False
    meta = {"item": item_key(item), "kind": kind, "track": index, "start": start, "end": end, "name": str(item.GetName() or "")}
    made = version_info(item) if kind == "video" else None
    if made and made.get("source_item") != meta["item"]:
        meta["version_of"] = made.get("source_item")  # an LTX retake placed above its clip
    ours: dict = {"resolve": meta}
    numbers = [int(v) for v in (d.get("version") for d in versions_info(item)) if str(v).isdigit()] if made else []
    if numbers and made.get("clip"):  # versions count per clip: this clip's (or the clip it retakes) go on from here
        ours.update(original_name=str(made["clip"]), version=max(numbers))
    clip.metadata[NS] = ours
    return clip


def _track(timeline: Any, kind: str, index: int, start_frame: int, rate: Fraction, features: Features) -> otio.schema.Track:
    name = (timeline.GetTrackName(kind, index) if has(timeline, "GetTrackName") else None) or f"{kind[0].upper()}{index}"
    track = otio.schema.Track(name=str(name), kind=otio.schema.TrackKind.Video if kind == "video" else otio.schema.TrackKind.Audio)
    cursor = start_frame
    items = sorted(timeline.GetItemListInTrack(kind, index) or [], key=lambda it: int(it.GetStart()))
    for item in items:
        start, end = int(item.GetStart()), int(item.GetEnd())
        if end <= start or start < cursor:
            continue  # an item Resolve reports out of place (overlap, zero length) is left out of the copy
        if start > cursor:
            track.append(otio.schema.Gap(source_range=_TR(_RT(0, float(rate)), _RT(start - cursor, float(rate)))))
        track.append(_clip(item, kind, index, rate, features))
        cursor = end
    return track


def read_live(resolve_timeline: Any, features: Features) -> LiveRead:
    """Read the timeline (tracks, clips, gaps, rate, start) and the editor's pick on it (none: a note says what to do)."""
    if resolve_timeline is None:
        raise SelectionError("Resolve has no current timeline; open a project and a timeline in the Edit page, then retry.")
    rate, drop = parse_rate(resolve_timeline.GetSetting("timelineFrameRate"))
    start = int(_number(resolve_timeline.GetStartFrame(), 0) or 0)
    name = str(resolve_timeline.GetName() or "Timeline")
    timeline = otio.schema.Timeline(name=name, global_start_time=_RT(start, float(rate)))
    timeline.metadata[NS] = {"resolve": {"timeline": item_key(resolve_timeline), "rate": rate_text(rate),
                                         "drop_frame": drop, "start_frame": start}}
    video_index: dict[int, int] = {}
    for kind in ("video", "audio"):
        for i in range(1, int(resolve_timeline.GetTrackCount(kind) or 0) + 1):
            if kind == "video":
                video_index[i] = len(timeline.tracks)
            timeline.tracks.append(_track(resolve_timeline, kind, i, start, rate, features))
    live = LiveRead(timeline, name, item_key(resolve_timeline), rate, drop, start)
    _read_pick(resolve_timeline, features, live, video_index)
    return live


def _pick_of(live: LiveRead, item: Any, video_index: dict[int, int]) -> tuple[int, otio.schema.Clip] | None:
    """The clip of the read a picked item is, with its track's index; a retake placed above stands for the clip it
    retakes."""
    key = item_key(item)
    version_of = _version_of(live, key)
    if version_of:
        key = version_of
    for resolve_track, ti in video_index.items():
        for child in live.timeline.tracks[ti]:
            if isinstance(child, otio.schema.Clip):
                meta = resolve_meta(child)
                if meta and meta["item"] == key:
                    return ti, child
    return None


def _read_pick(tl: Any, features: Features, live: LiveRead, video_index: dict[int, int]) -> None:
    if features.selected_clips:
        chosen = tl.GetSelectedClips() or []
        if isinstance(chosen, dict):
            chosen = list(chosen.values())
        picks = [p for p in (_pick_of(live, item, video_index) for item in chosen) if p]
        skipped = len(chosen) - len(picks)
        if skipped:
            live.notes.append(f"{skipped} selected item(s) on sound tracks were left out: a retake starts from a video clip "
                              "(choose picture and sound with the mode).")
        if picks:
            live.picks, live.how = picks, f"{len(picks)} selected clip(s)"
            return
    if features.mark_in_out:
        marks = (tl.GetMarkInOut() or {}).get("video") or {}
        a, b = marks.get("in"), marks.get("out")
        if a is not None and b is not None and int(b) >= int(a):
            a, b = int(a), int(b)
            if a < live.start_frame:  # the marks are relative to the timeline's start (like markers)
                a, b = a + live.start_frame, b + live.start_frame
            ti = _top_track_at(live, video_index, a)
            if ti is not None:
                def tc(frame: int) -> str:
                    return format_timecode(frame, live.rate, live.drop_frame)

                live.range = (ti, tc(a), tc(b + 1))  # Resolve's out mark includes its frame
                live.how = f"the in/out marks {tc(a)} - {tc(b)}"
                return
    item = tl.GetCurrentVideoItem()
    pick = _pick_of(live, item, video_index) if item is not None else None
    if pick:
        live.picks, live.how = [pick], f"the clip under the playhead ({item.GetName()})"
        return
    live.how = "nothing"
    live.notes.append("Nothing is picked in Resolve: " + (
        "select clips on the timeline, set in/out marks, or park the playhead on a clip." if features.selected_clips else
        "set in/out marks or park the playhead on a clip." if features.mark_in_out else
        "park the playhead on a clip (this Resolve cannot report selected clips or in/out marks)."))


def _top_track_at(live: LiveRead, video_index: dict[int, int], frame: int) -> int | None:
    """The highest enabled video track with an editor's clip at `frame` (retakes placed above are versions of it)."""
    for resolve_track in sorted(video_index, reverse=True):
        ti = video_index[resolve_track]
        for child in live.timeline.tracks[ti]:
            meta = resolve_meta(child) if isinstance(child, otio.schema.Clip) else None
            if meta and meta["start"] <= frame < meta["end"] and child.enabled and not meta.get("version_of"):
                return ti
    return None


def _version_of(live: LiveRead, key: str) -> str | None:
    for clip in live.timeline.find_clips():
        meta = resolve_meta(clip)
        if meta and meta["item"] == key:
            return meta.get("version_of")
    return None

