"""Where each item of a timeline came from in the editor's file, so a writer edits only the items that changed.

A reader stamps every item it makes from an element of the file with that element's identity (`stamp`); the
stamp lives in the item's metadata (`metadata["ltx_retake"]["origin"]`), so the pieces a splice cuts out of a
clip (clones) keep it. A faithful writer then walks the file's own elements and asks, per element, which items
stand for it now (`pieces_by_origin`) and whether they are still exactly what was read (`unchanged`); items
with no stamp (a track or a clip a retake added) are new.
"""

from __future__ import annotations

from dataclasses import dataclass

import opentimelineio as otio

from .metadata import NS

__all__ = ["ORIGIN", "stamp", "origin_of", "Piece", "pieces_by_origin", "unchanged", "signature", "added_tracks"]

ORIGIN = "origin"


def signature(item) -> str:
    """What a writer must rewrite when it differs: the item's source range, name, enabled flag and active media."""
    sr = getattr(item, "source_range", None)  # a Transition has none
    rng = "" if sr is None else f"{sr.start_time.value!r}/{sr.duration.value!r}@{sr.start_time.rate!r}"
    active = item.active_media_reference_key if isinstance(item, otio.schema.Clip) else ""
    if isinstance(item, otio.schema.Transition):
        rng = f"{item.in_offset.value!r}/{item.out_offset.value!r}@{item.in_offset.rate!r}"
    return f"{type(item).__name__}|{rng}|{item.name}|{getattr(item, 'enabled', True)}|{active}"


def stamp(item, element_id: str, **facts) -> None:
    """Record that `item` stands for the file's element `element_id` (plus any facts its writer wants back)."""
    meta = dict(item.metadata.get(NS, {}))
    meta[ORIGIN] = {"id": element_id, "read": signature(item), **facts}
    item.metadata[NS] = meta


def origin_of(item) -> dict | None:
    """The stamp a reader left on `item` (None for an item that was not read from the file)."""
    meta = item.metadata.get(NS)
    if not meta:
        return None
    found = meta.get(ORIGIN)
    return dict(found) if found else None


def unchanged(item) -> bool:
    """Whether `item` is still exactly the element it was read from (a stamped item not edited since)."""
    found = origin_of(item)
    return found is not None and found.get("read") == signature(item)


@dataclass(frozen=True)
class Piece:
    """One item that stands for (part of) a file element, where it sits now."""

    item: object                          # a Clip, Gap, Transition or Composition
    track_index: int                      # its top-level track
    parent: object                        # the composition that holds it
    index: int                            # its place in the parent
    record: otio.opentime.TimeRange       # where it sits in the top-level track's time


def pieces_by_origin(timeline: otio.schema.Timeline) -> dict[str, list[Piece]]:
    """Every stamped item under the timeline's tracks, grouped by the element it came from, in track order.

    One element usually stands for one item; a split clip gives several (left, version, right).
    """
    out: dict[str, list[Piece]] = {}

    def walk(comp, ti: int, top, ranges: dict | None) -> None:
        own = comp.range_of_all_children() if ranges is None else ranges
        for index, item in enumerate(comp):
            found = origin_of(item)
            rng = own[item]
            record = rng if comp is top else comp.transformed_time_range(rng, top)
            if found is not None:
                out.setdefault(found["id"], []).append(Piece(item, ti, comp, index, record))
            if isinstance(item, otio.core.Composition):
                walk(item, ti, top, None)

    for ti, track in enumerate(timeline.tracks):
        found = origin_of(track)
        if found is not None:
            out.setdefault(found["id"], []).append(Piece(track, ti, timeline.tracks, ti, track.trimmed_range()))
        walk(track, ti, track, None)
    return out


def added_tracks(timeline: otio.schema.Timeline) -> list[int]:
    """Indices of the tracks no reader stamped (a track a retake placed above)."""
    return [ti for ti, track in enumerate(timeline.tracks) if origin_of(track) is None]
