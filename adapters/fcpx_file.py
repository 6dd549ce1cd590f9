"""FCPXML (Final Cut Pro X and 11, versions 1.8 to 1.13): every project read right; a retake written into the file itself.

Reading (`read`): one OTIO timeline per `<project>`. Times are FCPXML's exact rational seconds (`1001/24000s`); rates
come from each `<format frameDuration>`. The sequence's `tcStart` is the timeline's global start. The primary
storyline is V1; the lanes of connected clips and secondary storylines are tracks as an editor numbers them: lane 1
is V2, lane 2 is V3, lane -1 is A1, lane -2 is A2. A spine item's `offset` is in its spine's time; a connected
clip's `offset` is in its parent clip's local time (the parent's `start` is that time's first frame); `start` is a
clip's in-point in its own time, which for media is the media's own time (its timecode). Media paths come from
`<asset src>` (1.8) or `<media-rep kind="original-media">` (1.9 and later; a proxy only when no original is listed).
Compound clips (`ref-clip`) and multicam clips (`mc-clip`, the active video angle) are nested stacks; an audition
shows its active pick (its first child); titles and generators are clips with a generator reference (not footage).
Speed: a constant `timeMap` or a speed-changing rate conform (`conform-rate`, Apple's chart: 23.98/24/25) is a
LinearTimeWarp; a speed ramp is a TimeEffect the planner refuses by name. Every item made from an element carries
that element's identity (`origin.stamp`, the element's byte offset in the file).

Writing (`write`): the file's own bytes with only the retaken spine items (or connected clips) edited. A retaken
item is split at the window's edges: the pieces keep the original element's text (its effects, roles, keywords,
metadata) with adjusted `offset`/`start`/`duration`; the middle one references the version's `<asset>`
(added to `<resources>`, with a `<format>` when no existing one fits) and carries `<metadata>` naming the original
media and every version, so `versions`, `use` and a second retake work on the file we wrote. Markers, keywords and
connected clips stay on the piece that covers them, at the same place in its time. A retake placed above is a
connected clip on the first free lane above. What cannot be expressed (a retake inside a compound clip, a multicam
angle or an audition, which would change every use of it) is refused by `cannot_hold` with what to do instead.

Facts relied on: Apple's FCPXML Reference (Timing Attributes: offset is in parent time, or the base element's time
for an anchor; start is the start of the local timeline; conform-rate and its rate chart) and the FCPXML 1.10 DTD
as published there (content models of asset, media-rep, format, asset-clip, clip, gap, spine, sequence);
CommandPost/FCPCafe's measured source-timecode examples (spine offsets include the sequence's tcStart; a 25 fps
clip rate-conformed in a 24 fps project plays frame for frame).
"""

from __future__ import annotations

import json
import math
import re
import xml.parsers.expat as expat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlparse

import opentimelineio as otio

from ..errors import InputError, TimelineReadError
from ..metadata import NS
from ..origin import origin_of, pieces_by_origin, stamp, unchanged
from ..relink import HINTS, written_path

__all__ = ["read", "write", "cannot_hold", "parse_time", "time_text", "Element", "parse_xml", "FCPX", "CLIP_MD",
           "VERSION_MD", "lane_of_track"]

FCPX = "fcpx_xml"                        # metadata namespace of this format's facts (as OTIO's adapter names it)
CLIP_MD = "com.ltx-retake.retake"        # <md key> on a retaken clip: its original media and every version
VERSION_MD = "com.ltx-retake.version"    # <md key> on a version's <asset>: which version, and its provenance

_RT = otio.opentime.RationalTime
_TR = otio.opentime.TimeRange
_DEFAULT = otio.schema.Clip.DEFAULT_MEDIA_KEY

_STORY = {"asset-clip", "clip", "video", "audio", "gap", "title", "ref-clip", "mc-clip", "sync-clip", "audition",
          "caption", "spine"}
_MARKERS = {"marker", "chapter-marker", "rating", "keyword", "analysis-marker"}
_WRITABLE = {"asset-clip", "clip", "video", "audio"}   # elements a retake can split (media clips)
_MAX_DEPTH = 32


# --- the file as elements with byte offsets --------------------------------------------------------------------

class Element:
    """One XML element: its tag, attributes (document order) and where its text lies in the file's bytes."""

    __slots__ = ("tag", "attrs", "start", "head_end", "end", "parent", "children")

    def __init__(self, tag: str, attrs: dict[str, str], start: int, head_end: int, parent: "Element | None"):
        self.tag, self.attrs, self.start, self.head_end, self.parent = tag, attrs, start, head_end, parent
        self.end = head_end
        self.children: list[Element] = []

    @property
    def eid(self) -> str:
        """The element's identity in this file: the byte offset of its start tag."""
        return f"@{self.start}"

    @property
    def empty(self) -> bool:
        return self.end == self.head_end

    def get(self, key: str, default=None):
        return self.attrs.get(key, default)

    def kids(self, *tags: str) -> list["Element"]:
        return [c for c in self.children if not tags or c.tag in tags]

    def first(self, tag: str) -> "Element | None":
        return next((c for c in self.children if c.tag == tag), None)

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def __repr__(self) -> str:
        return f"<{self.tag} {self.eid}>"


_HEAD = re.compile(rb"<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*/?>")


class _Refused(Exception):
    """Raised inside the expat callbacks; turned into a sentence by `parse_xml`."""


def parse_xml(data: bytes, name: str = "the file") -> Element:
    """The document's root element, every element knowing its byte range. Entity declarations are refused."""
    head = data[:200].lstrip(b"\xef\xbb\xbf").lstrip()
    declared = re.match(rb"<\?xml[^>]*encoding\s*=\s*[\"']([^\"']+)", head)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (declared and declared.group(1).lower().replace(b"-", b"") != b"utf8"):
        raise TimelineReadError(f"{name} is not UTF-8; Final Cut Pro writes FCPXML as UTF-8. Export it again from Final Cut Pro.")
    parser = expat.ParserCreate()
    parser.ordered_attributes = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Element] = []
    root: list[Element] = []

    def no_entities(*_args) -> None:
        raise _Refused("it declares XML entities, which FCPXML never does")

    def start(tag: str, attrs: list[str]) -> None:
        at = parser.CurrentByteIndex
        m = _HEAD.match(data, at)
        if m is None:
            raise _Refused(f"the start tag at byte {at} cannot be located")
        parent = stack[-1] if stack else None
        el = Element(tag, dict(zip(attrs[::2], attrs[1::2])), at, m.end(), parent)
        if parent is not None:
            parent.children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(_tag: str) -> None:
        el = stack.pop()
        if data[el.head_end - 2:el.head_end] == b"/>":
            el.end = el.head_end
        else:
            el.end = data.index(b">", parser.CurrentByteIndex) + 1

    parser.EntityDeclHandler = no_entities
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise TimelineReadError(f"{name} is not well-formed XML (line {exc.lineno}); export it again from Final Cut Pro.") from None
    except _Refused as exc:
        raise TimelineReadError(f"{name} cannot be read as FCPXML: {exc}.") from None
    if not root:
        raise TimelineReadError(f"{name} holds no XML element.")
    return root[0]


# --- time values -----------------------------------------------------------------------------------------------

_TIME = re.compile(r"^\s*(-?\d+)(?:/(\d+))?s\s*$")


def parse_time(text: str | None, what: str = "a time value") -> Fraction:
    """An FCPXML time (`1001/24000s`, `10s`, `0s`) as exact seconds."""
    m = _TIME.match(text or "")
    if not m or m.group(2) == "0":
        raise TimelineReadError(f"{what} is {text!r}, not an FCPXML time such as 1001/24000s; export the file again from Final Cut Pro.")
    return Fraction(int(m.group(1)), int(m.group(2) or 1))


def time_text(t: Fraction) -> str:
    """Exact seconds as an FCPXML time value."""
    t = Fraction(t)
    return f"{t.numerator}s" if t.denominator == 1 else f"{t.numerator}/{t.denominator}s"


def _rt(seconds: Fraction, rate: Fraction) -> otio.opentime.RationalTime:
    return _RT(float(seconds * rate), float(rate))


def _seconds(t: otio.opentime.RationalTime) -> Fraction:
    """An OTIO time as seconds, exact for the times this module builds (values and rates from exact fractions)."""
    return Fraction(t.value).limit_denominator(10**7) / _exact(t.rate)


def _exact(rate: float) -> Fraction:
    """A float rate built from an exact one (24000/1001 -> 23.976023976...) back to the exact one."""
    r = Fraction(rate)
    near = r.limit_denominator(1001)
    return near if abs(near - r) < Fraction(1, 10**9) else r.limit_denominator(10**6)


# --- resources -------------------------------------------------------------------------------------------------

@dataclass
class _Format:
    el: Element
    id: str
    rate: Fraction | None
    width: str | None
    height: str | None


@dataclass
class _Asset:
    el: Element
    id: str
    name: str
    start: Fraction
    duration: Fraction | None
    format: str | None
    src: str
    rep: str                      # "original-media", "proxy-media", "src" (1.8) or "" (no media listed)
    has_video: bool
    has_audio: bool
    md: dict[str, str]


def _md(el: Element | None) -> dict[str, str]:
    """The <md key value> pairs of an element's <metadata> child."""
    meta = el.first("metadata") if el is not None else None
    return {m.get("key", ""): m.get("value", "") for m in meta.kids("md")} if meta is not None else {}


def _json(text: str | None):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


# Apple's rate-conforming chart: these media rates in these project rates play frame for frame (a speed change).
_CONFORMING = {Fraction(24000, 1001), Fraction(24), Fraction(25)}


# --- reading ---------------------------------------------------------------------------------------------------

@dataclass
class _Info:
    """What the writer needs of one element as read: where it sits and how its own time runs."""

    el: Element
    rec: Fraction                 # record start (seconds, in its container's track time)
    dur: Fraction
    local: Fraction               # its local time at its first frame (`start`)
    k: Fraction                   # local seconds per record second (a speed-changing rate conform)
    k_parent: Fraction            # the same for the element its offset is in (1 in a spine)
    lane: int
    media: Element | None         # the element that names the asset (the asset-clip itself, or a clip's <video>)
    asset: _Asset | None
    nest: str                     # "" on the project's own timeline, else what it lies inside
    audition: Element | None
    timemap: bool
    rate: Fraction                # the rate of its OTIO source times
    seq_rate: Fraction            # its container's frame rate
    project: str
    anchor: Element | None        # the element it is connected to (None for a spine item)
    offset: Fraction              # its offset as read (in its spine's time, or its anchor's local time)


@dataclass
class _Entry:
    start: Fraction
    dur: Fraction
    item: object
    group: int
    cut: bool = False             # a transition


@dataclass
class _Scope:
    rate: Fraction
    nest: str
    depth: int
    media: tuple[str, ...]
    project: str


class _Reader:
    """Reads every project of one FCPXML document; keeps each element's facts for the writer."""

    def __init__(self, data: bytes, name: str = "the file"):
        self.data = data
        self.name = name
        self.root = parse_xml(data, name)
        if self.root.tag != "fcpxml":
            raise TimelineReadError(f"{name} is not FCPXML: its root element is <{self.root.tag}>, not <fcpxml>.")
        self.version = self.root.get("version", "")
        m = re.match(r"^1\.(\d+)$", self.version)
        if not m or not 5 <= int(m.group(1)) <= 13:
            raise TimelineReadError(f"{name} is FCPXML version {self.version or '(none)'}; versions 1.5 to 1.13 are read. "
                                    "Export it again from Final Cut Pro choosing version 1.13 or earlier (File > Export XML).")
        self.minor = int(m.group(1))
        self.formats: dict[str, _Format] = {}
        self.assets: dict[str, _Asset] = {}
        self.effects: dict[str, Element] = {}
        self.media: dict[str, Element] = {}
        self.infos: dict[str, _Info] = {}
        self.notes: list[str] = []
        self._groups = 0
        self.resources = self.root.first("resources")
        if self.resources is not None:
            self._read_resources(self.resources)

    # resources

    def _read_resources(self, resources: Element) -> None:
        for el in resources.children:
            rid = el.get("id", "")
            if el.tag == "format":
                fd = el.get("frameDuration")
                rate = None
                if fd:
                    d = parse_time(fd, f"format {rid}'s frameDuration")
                    rate = 1 / d if d > 0 else None
                self.formats[rid] = _Format(el, rid, rate, el.get("width"), el.get("height"))
            elif el.tag == "effect":
                self.effects[rid] = el
            elif el.tag == "media":
                self.media[rid] = el
        for el in resources.kids("asset"):
            self.assets[el.get("id", "")] = self._asset(el)

    def _asset(self, el: Element) -> _Asset:
        rid = el.get("id", "")
        name = el.get("name", rid)
        src, rep = el.get("src", ""), "src" if el.get("src") else ""
        reps = el.kids("media-rep")
        if reps:
            originals = [r for r in reps if r.get("kind", "original-media") == "original-media" and r.get("src")]
            proxies = [r for r in reps if r.get("kind") == "proxy-media" and r.get("src")]
            chosen = (originals or proxies or [None])[0]
            if chosen is not None:
                src, rep = chosen.get("src"), chosen.get("kind", "original-media")
                if rep == "proxy-media":
                    self.notes.append(f"asset {name!r} lists only proxy media; its clips use the proxy {_file_name(src)}")
        start = parse_time(el.get("start", "0s"), f"asset {name!r}'s start")
        duration = parse_time(el.get("duration"), f"asset {name!r}'s duration") if el.get("duration") else None
        return _Asset(el, rid, name, start, duration, el.get("format"), src, rep, el.get("hasVideo") == "1",
                      el.get("hasAudio") == "1", _md(el))

    def _format_rate(self, fid: str | None) -> Fraction | None:
        f = self.formats.get(fid or "")
        return f.rate if f else None

    def _asset_rate(self, asset: _Asset, scope: _Scope) -> Fraction:
        return self._format_rate(asset.format) or scope.rate

    # projects

    def projects(self) -> list[Element]:
        return [el for el in self.root.walk() if el.tag == "project"]

    def timelines(self) -> list[otio.schema.Timeline]:
        out = []
        for project in self.projects():
            out.append(self._timeline(project))
        return out

    def _timeline(self, project: Element) -> otio.schema.Timeline:
        name = project.get("name", "Project")
        seq = project.first("sequence")
        if seq is None or seq.first("spine") is None:
            raise TimelineReadError(f"{self.name}: project {name!r} has no sequence with a spine; export it again from Final Cut Pro.")
        rate = self._format_rate(seq.get("format"))
        if rate is None:
            raise TimelineReadError(f"{self.name}: project {name!r} names format {seq.get('format')!r}, which has no frame "
                                    "duration in <resources>; export it again from Final Cut Pro.")
        tc_start = parse_time(seq.get("tcStart", "0s"), f"project {name!r}'s tcStart")
        scope = _Scope(rate, "", 0, (), name)
        lanes: dict[int, list[_Entry]] = {}
        self._storyline(seq.first("spine"), -tc_start, 0, scope, lanes, primary=True)
        tl = otio.schema.Timeline(name=name, global_start_time=_rt(tc_start, rate))
        tl.metadata[FCPX] = {"version": self.version, "project": name, "format": seq.get("format"),
                             "tcFormat": seq.get("tcFormat", "NDF"), "duration": seq.get("duration")}
        for track in self._tracks(lanes, rate, nest=False):
            tl.tracks.append(track)
        for eid, pieces in pieces_by_origin(tl).items():  # a compound clip used twice: its elements stand twice
            if len(pieces) > 1:
                for piece in pieces:
                    piece.item.metadata[NS]["origin"]["uses"] = len(pieces)
        return tl

    # storylines, lanes and tracks

    def _storyline(self, spine: Element, rec0: Fraction, lane: int, scope: _Scope, lanes: dict, *, primary: bool = False) -> None:
        """A spine's items on `lane`: each at rec0 + its offset (the spine's own time)."""
        self._groups += 1
        group = self._groups
        cursor = None
        for child in spine.children:
            if child.tag == "transition":
                at = parse_time(child.get("offset", "0s"), "a transition's offset")
                dur = parse_time(child.get("duration"), "a transition's duration")
                tr = otio.schema.Transition(name=child.get("name", ""), transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve)
                tr.metadata[FCPX] = {"element": "transition"}
                lanes.setdefault(lane, []).append(_Entry(rec0 + at, dur, (tr, child), group, cut=True))
                continue
            if child.tag not in _STORY or child.tag == "spine":
                continue
            at = parse_time(child.get("offset"), f"the offset of <{child.tag}>") if child.get("offset") else cursor
            if at is None:
                at = Fraction(0)
            self._place(child, rec0 + at, lane, Fraction(1), scope, lanes, group, None, offset=at)
            dur = self._duration(child, scope)
            cursor = at + dur

    def _duration(self, el: Element, scope: _Scope) -> Fraction:
        if el.tag == "audition":
            pick = _pick(el)
            return self._duration(pick, scope) if pick is not None else Fraction(0)
        if el.get("duration"):
            return parse_time(el.get("duration"), f"the duration of <{el.tag}> {el.get('name', '')!r}")
        if el.tag == "asset-clip" and el.get("ref") in self.assets:
            asset = self.assets[el.get("ref")]
            start = parse_time(el.get("start"), "a start") if el.get("start") else asset.start
            if asset.duration is not None:
                return asset.start + asset.duration - start
        raise TimelineReadError(f"{self.name}: <{el.tag}> {el.get('name', '')!r} has no duration; export it again from Final Cut Pro.")

    def _anchored(self, parent: Element, rec: Fraction, local: Fraction, k: Fraction, lane: int, scope: _Scope,
                  lanes: dict, skip: Element | None = None) -> None:
        """The clips and storylines connected to `parent` (those with a lane), each at its place in record time."""
        for child in parent.children:
            if child is skip or child.tag not in _STORY or child.get("lane") is None:
                continue
            try:
                own = int(child.get("lane"))
            except ValueError:
                raise TimelineReadError(f"{self.name}: <{child.tag}> {child.get('name', '')!r} has lane {child.get('lane')!r}, not a number.") from None
            eff = own if lane == 0 or (own > 0) != (lane > 0) else lane + own
            at = parse_time(child.get("offset", "0s"), f"the offset of <{child.tag}> {child.get('name', '')!r}")
            where = rec + (at - local) / k
            if child.tag == "spine":
                self._storyline(child, where, eff, scope, lanes)
            else:
                self._groups += 1
                self._place(child, where, eff, k, scope, lanes, self._groups, parent, offset=at)

    def _place(self, el: Element, rec: Fraction, lane: int, k_parent: Fraction, scope: _Scope, lanes: dict, group: int,
               anchor: Element | None, audition: Element | None = None, *, offset: Fraction = Fraction(0)) -> None:
        """One story element at record time `rec` on `lane`, then what is connected to it."""
        if el.tag == "audition":
            pick = _pick(el)
            if pick is None:
                return
            others = len([c for c in el.children if c.tag in _STORY]) - 1
            if others:
                self.notes.append(f"{scope.project}: an audition at {float(rec):.2f} s shows its pick {pick.get('name', '')!r}; "
                                  f"its {others} other take(s) are not on the timeline")
            self._place(pick, rec, lane, k_parent, scope, lanes, group, anchor, audition=el, offset=offset)
            return
        if el.tag == "caption":
            return
        made = self._make(el, rec, lane, k_parent, scope, anchor, audition, offset)
        if made is None:
            return
        item, dur, local, k = made
        lanes.setdefault(lane, []).append(_Entry(rec, dur, item, group))
        self._anchored(el, rec, local, k, lane, scope, lanes)

    def _tracks(self, lanes: dict[int, list[_Entry]], rate: Fraction, *, nest: bool) -> list[otio.schema.Track]:
        """Tracks for the lanes: V1 the primary storyline, V2.. lanes 1.., A1.. lanes -1..; overlapping groups on a
        lane go to an extra track of that lane (never moved in time)."""
        top = max([0, *lanes]) if lanes else 0
        bottom = min([0, *lanes]) if lanes else 0
        video = list(range(0, top + 1))
        audio = list(range(-1, bottom - 1, -1))
        made: dict[int, list[otio.schema.Track]] = {}
        for lane in video + audio:
            kind = otio.schema.TrackKind.Video if lane >= 0 else otio.schema.TrackKind.Audio
            label = f"V{lane + 1}" if lane >= 0 else f"A{-lane}"
            made[lane] = self._lane_tracks(lanes.get(lane, []), rate, kind, label, lane)
        if nest:  # a nest's layers: sound below picture, the storyline under its connected clips
            order = [t for lane in reversed(audio) for t in made[lane]] + [t for lane in video for t in made[lane]]
        else:
            order = [made[lane][0] for lane in video] + [t for lane in video for t in made[lane][1:]] + \
                    [made[lane][0] for lane in audio] + [t for lane in audio for t in made[lane][1:]]
        return order

    def _lane_tracks(self, entries: list[_Entry], rate: Fraction, kind: str, label: str, lane: int) -> list[otio.schema.Track]:
        groups: dict[int, list[_Entry]] = {}
        for e in entries:
            groups.setdefault(e.group, []).append(e)
        ordered = sorted(groups.values(), key=lambda g: (min(e.start for e in g), g[0].group))
        tracks: list[tuple[otio.schema.Track, list]] = []   # (track, [cursor])
        for g in ordered:
            first = min(e.start for e in g)
            for track, cursor in tracks:
                if cursor[0] <= first:
                    break
            else:
                name = label if not tracks else f"{label} overlap {len(tracks)}"
                track = otio.schema.Track(name=name, kind=kind)
                track.metadata[FCPX] = {"lane": lane, **({"overflow": True} if tracks else {})}
                cursor = [Fraction(0)]
                tracks.append((track, cursor))
            self._fill(track, cursor, g, rate)
        if not tracks:
            track = otio.schema.Track(name=label, kind=kind)
            track.metadata[FCPX] = {"lane": lane}
            tracks.append((track, [Fraction(0)]))
        return [t for t, _ in tracks]

    def _fill(self, track: otio.schema.Track, cursor: list, group: list[_Entry], rate: Fraction) -> None:
        for i, e in enumerate(group):
            if e.cut:
                tr, el = e.item
                nxt = next((x for x in group[i + 1:] if not x.cut), None)
                cut = cursor[0] if (i > 0 and any(not x.cut for x in group[:i])) or nxt is None else max(cursor[0], nxt.start)
                if cut > cursor[0]:
                    track.append(_filler(cut - cursor[0], rate))
                    cursor[0] = cut
                tr.in_offset = _rt(max(Fraction(0), cut - e.start), rate)
                tr.out_offset = _rt(max(Fraction(0), e.start + e.dur - cut), rate)
                stamp(tr, el.eid, kind="transition")
                track.append(tr)
                continue
            if e.start > cursor[0]:
                track.append(_filler(e.start - cursor[0], rate))
            elif e.start < cursor[0]:
                raise TimelineReadError(
                    f"{self.name}: {getattr(e.item, 'name', 'an item')!r} starts at {float(e.start):.3f} s, before the item "
                    f"before it on {track.name} ends ({float(cursor[0]):.3f} s); the storyline is inconsistent. Export it again from Final Cut Pro.")
            track.append(e.item)
            cursor[0] = e.start + e.dur

    # items

    def _make(self, el: Element, rec: Fraction, lane: int, k_parent: Fraction, scope: _Scope, anchor, audition, offset):
        """The OTIO item for a story element, with its duration, local start and speed (None for what is skipped)."""
        tag = el.tag
        dur = self._duration(el, scope)
        enabled = el.get("enabled", "1") != "0"
        name = el.get("name") or ""
        base = dict(el=el, rec=rec, dur=dur, k_parent=k_parent, lane=lane, nest=scope.nest, audition=audition,
                    seq_rate=scope.rate, project=scope.project, anchor=anchor, offset=offset)
        if tag == "gap":
            local = parse_time(el.get("start", "0s"), "a gap's start")
            gap = otio.schema.Gap(source_range=_TR(_rt(Fraction(0), scope.rate), _rt(dur, scope.rate)))
            gap.name = name
            self._markers(gap, el, local, Fraction(0), scope.rate)
            self._keep(el, base, local, Fraction(1), None, None, False, scope.rate)
            stamp(gap, el.eid, **self._facts(el, scope, audition, "gap"))
            return gap, dur, local, Fraction(1)
        if tag in ("asset-clip", "video", "audio", "clip", "title"):
            found = self._media_of(el) if tag != "title" else None
            if tag == "title" or (found is not None and found[0] is None):
                effect = self.effects.get((found[1].get("ref") if found else el.get("ref")) or "")
                kind = "title" if tag == "title" else "generator"
                local = parse_time(el.get("start", "0s"), "a start")
                clip = otio.schema.Clip(name=name or (effect.get("name") if effect is not None else kind),
                                        source_range=_TR(_rt(local, scope.rate), _rt(dur, scope.rate)))
                clip.media_reference = otio.schema.GeneratorReference(
                    generator_kind=f"Final Cut Pro {kind}" + (f" {effect.get('name')!r}" if effect is not None else ""))
                clip.enabled = enabled
                self._markers(clip, el, local, local, scope.rate)
                clip.metadata[FCPX] = {"element": tag, "lane": lane}
                self._keep(el, base, local, Fraction(1), None, None, False, scope.rate)
                stamp(clip, el.eid, **self._facts(el, scope, audition, tag))
                return clip, dur, local, Fraction(1)
            if found is not None:
                return self._media_clip(el, found, dur, enabled, name, base, lane, scope, audition)
        if tag in ("ref-clip", "mc-clip", "sync-clip", "clip"):
            return self._nest(el, dur, enabled, name, base, lane, scope, audition)
        self.notes.append(f"{scope.project}: <{tag}> {name!r} is not read")
        return None

    def _media_of(self, el: Element):
        """For a media clip: (asset or None for an effect, the element naming it, the elements from the clip to it).

        An asset-clip, video or audio names its asset itself. A <clip> is a media clip when its own content is one
        video or audio element, or a gap holding one (how Final Cut Pro writes detached sound); else None.
        """
        if el.tag in ("asset-clip", "video", "audio"):
            ref = el.get("ref", "")
            if ref in self.assets:
                return self.assets[ref], el, []
            if ref in self.effects and el.tag == "video":
                return None, el, []
            if el.tag == "asset-clip" or ref not in self.media:
                raise TimelineReadError(f"{self.name}: <{el.tag}> {el.get('name', '')!r} refers to {ref!r}, which "
                                        "<resources> does not hold; export it again from Final Cut Pro.")
            return None
        if el.tag != "clip":
            return None
        own = [c for c in el.children if c.tag in _STORY and c.get("lane") is None]
        if len(own) != 1:
            return None
        inner = own[0]
        if inner.tag in ("video", "audio"):
            found = self._media_of(inner)
            return (found[0], inner, [inner]) if found is not None else None
        if inner.tag == "gap":
            held = [c for c in inner.children if c.tag in _STORY]
            if len(held) == 1 and held[0].tag in ("video", "audio"):
                found = self._media_of(held[0])
                return (found[0], held[0], [inner, held[0]]) if found is not None else None
        return None

    def _media_time(self, el: Element, asset: _Asset, chain: list[Element], local: Fraction) -> Fraction:
        """The media time an element shows at its local time `local`, through a clip's inner elements."""
        t = local
        for inner in chain:
            offset = parse_time(inner.get("offset", "0s"), f"the offset of <{inner.tag}>")
            default = asset.start if inner.tag in ("video", "audio") else Fraction(0)
            start = parse_time(inner.get("start"), f"the start of <{inner.tag}>") if inner.get("start") else default
            t = start + (t - offset)
        return t

    def _speed(self, el: Element, media_rate: Fraction | None, scope: _Scope, asset: _Asset | None):
        """(k, effect, mapping): k is local seconds per record second (a speed-changing rate conform); effect is what
        the item carries (a LinearTimeWarp for a constant speed, a TimeEffect for what cannot be mapped, None at
        normal speed); mapping turns local time into media time through a time map (None without one)."""
        k = Fraction(1)
        effect = None
        conform = el.first("conform-rate")
        if conform is not None and conform.get("scaleEnabled", "1") != "0" and media_rate is not None:
            a, b = media_rate, scope.rate
            if a != b and a in _CONFORMING and b in _CONFORMING:
                k = b / a
        tmap = el.first("timeMap")
        points = [(parse_time(p.get("time"), "a timept time"), parse_time(p.get("value"), "a timept value"))
                  for p in tmap.kids("timept")] if tmap is not None else []
        if len(points) < 2:
            if k != 1:
                effect = otio.schema.LinearTimeWarp(name="rate conform", time_scalar=float(k))
            return k, effect, None

        def mapping(t: Fraction) -> Fraction:
            """Local time -> media time along the time map's points (straight between them)."""
            pairs = list(zip(points, points[1:]))
            for (t0, v0), (t1, v1) in pairs:
                if t < t1 or (t0, v0) == pairs[-1][0]:
                    return v0 + (t - t0) * (v1 - v0) / (t1 - t0) if t1 != t0 else v0
            return points[-1][1]

        (t0, v0), (t1, v1) = points[0], points[-1]
        slope = (v1 - v0) / (t1 - t0) if t1 != t0 else Fraction(0)
        if not all(v == v0 + (t - t0) * slope for t, v in points):
            effect = otio.schema.TimeEffect(name="speed ramp", effect_name="Final Cut Pro speed ramp (time map)")
        elif asset is not None and asset.start != 0:
            effect = otio.schema.TimeEffect(name="retime", effect_name="Final Cut Pro retime of media with a start timecode")
        elif k != 1:
            effect = otio.schema.TimeEffect(name="retime", effect_name="Final Cut Pro retime of rate-conformed media")
        elif slope != 1 or v0 != t0:
            effect = otio.schema.LinearTimeWarp(name="retime", time_scalar=float(slope))
        return k, effect, mapping

    def _media_clip(self, el, found, dur, enabled, name, base, lane, scope, audition):
        asset, media_el, chain = found
        rate = self._asset_rate(asset, scope)
        if el.get("start"):
            local = parse_time(el.get("start"), f"the start of {name!r}")
        else:
            local = asset.start if el.tag in ("asset-clip", "video", "audio") else Fraction(0)
        k, effect, mapping = self._speed(el, self._format_rate(asset.format), scope, asset)
        shown_local = mapping(local) if mapping is not None else local
        media_in = self._media_time(el, asset, chain, shown_local)
        clip = otio.schema.Clip(name=name or asset.name, source_range=_TR(_rt(media_in, rate), _rt(dur, rate)))
        clip.enabled = enabled
        ref = self._reference(asset, rate)
        ours = _json(_md(el).get(CLIP_MD))
        facts = self._facts(el, scope, audition, el.tag)
        facts["timemap"] = el.first("timeMap") is not None
        if isinstance(ours, dict) and isinstance(ours.get("versions"), dict):
            self._versions(clip, ref, asset, ours, rate, scope, el)
        else:
            clip.media_reference = ref
        if effect is not None:
            clip.effects.append(effect)
        self._markers(clip, el, local, media_in, rate)
        roles = {k2: el.get(k2) for k2 in ("audioRole", "videoRole", "role") if el.get(k2)}
        keywords = [{"value": kw.get("value", ""), "start": kw.get("start"), "duration": kw.get("duration")} for kw in el.kids("keyword")]
        clip.metadata[FCPX] = {"element": el.tag, "lane": lane, "asset": asset.id, "asset_name": asset.name,
                               **({"roles": roles} if roles else {}), **({"keywords": keywords} if keywords else {}),
                               **({"srcEnable": el.get("srcEnable")} if el.get("srcEnable") else {}),
                               **({"audition": audition.eid} if audition is not None else {})}
        meta = dict(clip.metadata.get(NS, {}))
        meta[HINTS] = [h for h in (_file_name(asset.src), asset.name) if h]
        clip.metadata[NS] = meta
        self._keep(el, base, local, k, media_el, asset, facts["timemap"], rate)
        stamp(clip, el.eid, **facts)
        return clip, dur, local, k

    def _reference(self, asset: _Asset, rate: Fraction) -> otio.core.MediaReference:
        if not asset.src:
            self.notes.append(f"asset {asset.name!r} lists no media file; its clips are offline")
            ref = otio.schema.MissingReference(name=asset.name)
        else:
            available = _TR(_rt(asset.start, rate), _rt(asset.duration, rate)) if asset.duration is not None else None
            ref = otio.schema.ExternalReference(target_url=asset.src, available_range=available)
            ref.name = asset.name
        ref.metadata[FCPX] = {"asset": asset.id}
        return ref

    def _versions(self, clip, original_ref, shown: _Asset, ours: dict, rate: Fraction, scope: _Scope, el: Element) -> None:
        """A clip this module wrote: its original media, every version, and which one shows."""
        refs: dict[str, otio.core.MediaReference] = {}
        original = ours.get("original") or {}
        placement = ours.get("placement", "splice")
        if placement == "splice" and original.get("ref") in self.assets:
            refs[_DEFAULT] = self._reference(self.assets[original["ref"]], rate)
        elif placement == "splice":
            refs[_DEFAULT] = original_ref
        provenance = {}
        active = _DEFAULT if placement == "splice" else None
        for key, rid in sorted(ours["versions"].items()):
            asset = self.assets.get(rid)
            if asset is None:
                self.notes.append(f"{scope.project}: version {key} of {clip.name!r} names asset {rid!r}, which is not in <resources>")
                continue
            ref = self._reference(asset, rate)
            vmd = _json(asset.md.get(VERSION_MD)) or {}
            prov = vmd.get("provenance") if isinstance(vmd.get("provenance"), dict) else {}
            ref.metadata[NS] = dict(prov)
            refs[key] = ref
            provenance[key] = dict(prov)
            if rid == shown.id:
                active = key
        if active is None or active not in refs:
            active = next(iter(refs)) if refs else _DEFAULT
        if not refs:
            clip.media_reference = original_ref
            return
        clip.set_media_references(refs, active)
        meta = {"original_name": ours.get("original_name", clip.name), "versions": provenance,
                "active": "original" if active == _DEFAULT else active, "placement": placement}
        if placement == "above":
            meta["version"] = max((int(k.rsplit("v", 1)[-1]) for k in provenance if k.rsplit("v", 1)[-1].isdigit()), default=1)
            meta["source_track"] = ours.get("source_track", "")
        clip.metadata[NS] = {**clip.metadata.get(NS, {}), **meta}

    def _nest(self, el, dur, enabled, name, base, lane, scope, audition):
        """A compound clip, multicam clip, sync clip or a clip holding several items: a nested stack."""
        if scope.depth >= _MAX_DEPTH:
            raise TimelineReadError(f"{self.name} nests clips more than {_MAX_DEPTH} deep; export it again flattened.")
        tag = el.tag
        local = parse_time(el.get("start"), f"the start of {name!r}") if el.get("start") else None
        inner_lanes: dict[int, list[_Entry]] = {}
        label = {"ref-clip": "compound clip", "mc-clip": "multicam clip", "sync-clip": "synchronized clip", "clip": "clip"}[tag]
        where = f"{label} {name!r}"
        extra: dict = {}
        if tag in ("ref-clip", "mc-clip"):
            media = self.media.get(el.get("ref", ""))
            if media is None:
                raise TimelineReadError(f"{self.name}: {where} refers to {el.get('ref')!r}, which <resources> does not hold; "
                                        "export it again from Final Cut Pro.")
            if media.get("id") in scope.media:
                raise TimelineReadError(f"{self.name}: {where} contains itself; export it again from Final Cut Pro.")
            body = media.first("sequence") if tag == "ref-clip" else media.first("multicam")
            if body is None:
                raise TimelineReadError(f"{self.name}: {where} refers to media {media.get('name', '')!r}, which holds no "
                                        f"{'sequence' if tag == 'ref-clip' else 'multicam'}.")
            rate = self._format_rate(body.get("format")) or scope.rate
            zero = parse_time(body.get("tcStart", "0s"), f"the tcStart of {media.get('name', '')!r}")
            inner = _Scope(rate, scope.nest or where, scope.depth + 1, (*scope.media, media.get("id")), scope.project)
            if tag == "ref-clip":
                spine = body.first("spine")
                if spine is not None:
                    self._storyline(spine, -zero, 0, inner, inner_lanes)
            else:
                angles = {a.get("angleID"): a for a in body.kids("mc-angle")}
                sources = el.kids("mc-source")
                video = next((s.get("angleID") for s in sources if s.get("srcEnable", "all") in ("all", "video")), None)
                audio = next((s.get("angleID") for s in sources if s.get("srcEnable", "all") in ("all", "audio")), None)
                shown = video if video in angles else audio if audio in angles else next(iter(angles), None)
                if shown is not None:
                    angle = angles[shown]
                    self._storyline(angle, -zero, 0, inner, inner_lanes)
                extra = {"video_angle": angles[video].get("name") if video in angles else None,
                         "audio_angle": angles[audio].get("name") if audio in angles else None}
            if local is None:
                local = zero
        else:
            rate = self._format_rate(el.get("format")) or scope.rate
            zero = Fraction(0)
            inner = _Scope(rate, scope.nest or where, scope.depth + 1, scope.media, scope.project)
            for child in el.children:
                if child.tag == "spine" and child.get("lane") is None:
                    self._storyline(child, Fraction(0), 0, inner, inner_lanes)
                elif child.tag in _STORY and child.get("lane") is None:
                    self._groups += 1
                    at = parse_time(child.get("offset", "0s"), f"the offset of <{child.tag}>")
                    self._place(child, at, 0, Fraction(1), inner, inner_lanes, self._groups, el, offset=at)
            if local is None:
                local = Fraction(0)
        k, effect, mapping = self._speed(el, rate, scope, None)
        shown_local = mapping(local) if mapping is not None else local
        stack = otio.schema.Stack(name=name, source_range=_TR(_rt(shown_local - zero, rate), _rt(dur, rate)))
        for track in self._tracks(inner_lanes, rate, nest=True):
            stack.append(track)
        stack.enabled = enabled
        if effect is not None:
            stack.effects.append(effect)
        self._markers(stack, el, local, shown_local - zero, rate)
        stack.metadata[FCPX] = {"element": tag, "lane": lane, **({"media": el.get("ref")} if el.get("ref") else {}), **extra}
        self._keep(el, base, local, k, None, None, el.first("timeMap") is not None, rate)
        stamp(stack, el.eid, **self._facts(el, scope, audition, tag))
        return stack, dur, local, k

    def _facts(self, el: Element, scope: _Scope, audition, kind: str) -> dict:
        return {"kind": kind, "nest": scope.nest, "audition": audition is not None, "project": scope.project,
                "writable": kind in _WRITABLE and not scope.nest and audition is None}

    def _keep(self, el, base, local, k, media_el, asset, timemap, rate) -> None:
        self.infos[el.eid] = _Info(local=local, k=k, media=media_el, asset=asset, timemap=timemap, rate=rate, **base)

    def _markers(self, item, el: Element, local: Fraction, source_at_local: Fraction, rate: Fraction) -> None:
        """The element's markers on the item, in its source time (its local time shifted to the source range)."""
        for m in el.children:
            if m.tag not in ("marker", "chapter-marker"):
                continue
            at = parse_time(m.get("start"), "a marker's start")
            length = parse_time(m.get("duration"), "a marker's duration") if m.get("duration") else Fraction(0)
            completed = m.get("completed")
            color = (otio.schema.MarkerColor.ORANGE if m.tag == "chapter-marker" else
                     otio.schema.MarkerColor.RED if completed == "0" else
                     otio.schema.MarkerColor.GREEN if completed == "1" else otio.schema.MarkerColor.BLUE)
            marker = otio.schema.Marker(name=m.get("value", ""), marked_range=_TR(_rt(source_at_local + at - local, rate), _rt(length, rate)),
                                        color=color)
            if m.get("note"):
                marker.comment = m.get("note")
            marker.metadata[FCPX] = {"element": m.tag, **({"completed": completed} if completed is not None else {})}
            item.markers.append(marker)


def _pick(audition: Element) -> Element | None:
    """An audition's active pick: its first clip."""
    return next((c for c in audition.children if c.tag in _STORY), None)


def _filler(seconds: Fraction, rate: Fraction) -> otio.schema.Gap:
    return otio.schema.Gap(source_range=_TR(_rt(Fraction(0), rate), _rt(seconds, rate)))


def _file_name(src: str) -> str:
    return written_path(src).rsplit("/", 1)[-1] if src else ""


def lane_of_track(track: otio.schema.Track) -> int | None:
    """The FCPXML lane a track stands for (None for a track this module did not read)."""
    meta = track.metadata.get(FCPX)
    return meta.get("lane") if meta else None


def read(data: bytes, path: Path, options, media_rate) -> tuple[list[otio.schema.Timeline], list[str]]:
    """Every project in the file as a timeline (the faithful format module's `read`)."""
    name = Path(path).name
    reader = _Reader(data, name)
    timelines = reader.timelines()
    if not timelines:
        raise TimelineReadError(f"{name} holds no project (only event clips); select the project in Final Cut Pro and "
                                "export it (File > Export XML).")
    notes = list(dict.fromkeys(reader.notes))
    return timelines, notes


# --- what an edit of the file cannot hold ----------------------------------------------------------------------

def _changed(pieces) -> bool:
    """Whether an element's items differ from what was read (split, switched, renamed, enabled, or gone)."""
    found = origin_of(pieces[0].item) or {}
    return len(pieces) != found.get("uses", 1) or not all(unchanged(p.item) for p in pieces)


def _added_clips(timeline: otio.schema.Timeline) -> list[tuple[int, otio.schema.Clip, otio.opentime.TimeRange]]:
    """Clips no reader stamped: retakes placed above (filler gaps are not elements and are ignored)."""
    out = []
    for ti, track in enumerate(timeline.tracks):
        ranges = None
        for item in track:
            if isinstance(item, otio.schema.Clip) and origin_of(item) is None:
                ranges = ranges or track.range_of_all_children()
                out.append((ti, item, ranges[item]))
    return out


def _source_item(timeline: otio.schema.Timeline, clip: otio.schema.Clip, rng: otio.opentime.TimeRange):
    """The clip a retake placed above was made from: on its source track, over its start, by its original name."""
    from ..selection import clips_on_track

    meta = clip.metadata.get(NS) or {}
    wanted = meta.get("source_track")
    tracks = [i for i, t in enumerate(timeline.tracks) if t.name == wanted] or \
             ([wanted] if isinstance(wanted, int) and 0 <= wanted < len(timeline.tracks) else list(range(len(timeline.tracks))))
    mid = rng.start_time.to_seconds() + rng.duration.to_seconds() / 2
    for ti in tracks:
        for item, r in clips_on_track(timeline.tracks[ti]):
            if item is clip or origin_of(item) is None:
                continue
            name = (item.metadata.get(NS) or {}).get("original_name", item.name)
            if name == meta.get("original_name") and r.start_time.to_seconds() <= mid < r.end_time_exclusive().to_seconds():
                return item
    return None


def cannot_hold(timeline: otio.schema.Timeline) -> list[str]:
    """Sentences for the edits an FCPXML file cannot hold as an edit of itself (the faithful module's `cannot_hold`)."""
    from ..selection import track_label

    out: list[str] = []
    for eid, pieces in pieces_by_origin(timeline).items():
        item = pieces[0].item
        if isinstance(item, otio.schema.Track) or not _changed(pieces):
            continue
        facts = origin_of(item) or {}
        label = f"{(item.metadata.get(NS) or {}).get('original_name', item.name)!r} on {track_label(timeline, pieces[0].track_index)}"
        if facts.get("nest"):
            out.append(f"Clip {label} lies inside the {facts['nest']}: a retake there would change every use of it. Open the "
                       f"{facts['nest'].split(' ')[0]} clip in Final Cut Pro and retake it in its own timeline, or break it apart "
                       "(Clip > Break Apart Clip Items) and export again.")
        elif facts.get("audition"):
            out.append(f"Clip {label} is the pick of an audition: finalize the audition in Final Cut Pro (Clip > Audition > "
                       "Finalize Audition) and export again, then retake it.")
        elif facts.get("kind") not in _WRITABLE:
            out.append(f"The {facts.get('kind', 'item')} {label} would change, and a retake only splits media clips; "
                       "nothing else in the file is edited.")
        elif facts.get("timemap"):
            out.append(f"Clip {label} has a speed change (a retime): its time map cannot be carried to the retake's media "
                       "in this file. Set it to Normal (100%) speed in Final Cut Pro and export again, or write .otio.")
    for ti, clip, rng in _added_clips(timeline):
        meta = clip.metadata.get(NS) or {}
        if meta.get("placement") != "above":
            out.append(f"Clip {clip.name!r} on {track_label(timeline, ti)} is new and not a retake placed above; only "
                       "retakes are added to the file.")
            continue
        source = _source_item(timeline, clip, rng)
        facts = origin_of(source) or {} if source is not None else {}
        if facts.get("nest") or facts.get("audition"):
            out.append(f"The retake {clip.name!r} comes from a clip inside the {facts.get('nest') or 'an audition'}; "
                       "retake it in its own timeline in Final Cut Pro.")
        elif facts.get("timemap"):
            out.append(f"The retake {clip.name!r} comes from a clip with a speed change (a retime), which cannot be carried "
                       "to the retake's media in this file; set it to Normal speed, or write .otio.")
        elif _storyline_item_at(timeline, rng) is None:
            out.append(f"The retake {clip.name!r} lies beyond the end of the primary storyline; a connected clip needs a "
                       "storyline clip to connect to. Write .otio, or extend the storyline in Final Cut Pro.")
    return out


def _storyline_item_at(timeline: otio.schema.Timeline, rng: otio.opentime.TimeRange):
    """The primary storyline's item (a stamped clip or gap on V1) over the start of `rng`."""
    if not len(timeline.tracks):
        return None
    track = timeline.tracks[0]
    t = rng.start_time.to_seconds() + 1e-9
    for item, r in track.range_of_all_children().items():
        if isinstance(item, otio.schema.Transition) or origin_of(item) is None:
            continue
        if r.start_time.to_seconds() <= t < r.end_time_exclusive().to_seconds():
            return item
    return None


# --- writing ---------------------------------------------------------------------------------------------------

def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


_ATTR = re.compile(r"""(\s+)([^\s=/>]+)(\s*=\s*)("[^"]*"|'[^']*')""")


def _set_attrs(head: str, changes: dict[str, str | None]) -> str:
    """A start tag with attributes replaced in place (keeping every other byte), removed (None) or appended."""
    done = set()

    def swap(m: re.Match) -> str:
        key = m.group(2)
        if key not in changes:
            return m.group(0)
        done.add(key)
        value = changes[key]
        if value is None:
            return ""
        quote = m.group(4)[0]
        return f"{m.group(1)}{key}{m.group(3)}{quote}{_attr(value)}{quote}"

    out = _ATTR.sub(swap, head)
    extra = "".join(f' {k}="{_attr(v)}"' for k, v in changes.items() if k not in done and v is not None)
    if extra:
        close = 2 if out.endswith("/>") else 1
        body = out[:-close].rstrip()
        out = body + extra + out[len(out) - close:] if out[:-close] == body else body + extra + out[-close:]
    return out


def _plain(obj):
    """OTIO's metadata containers (AnyDictionary, AnyVector) as plain dicts and lists, for JSON."""
    if hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or (hasattr(obj, "__iter__") and not isinstance(obj, (str, bytes))):
        return [_plain(v) for v in obj]
    return obj


def _md_value(obj) -> str:
    return json.dumps(_plain(obj), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _url(target: str) -> str:
    """A version's path as the file URL FCPXML names media by."""
    if urlparse(target).scheme == "file":
        return target
    return Path(target).absolute().as_uri()


class _Writer:
    """Edits the file's bytes: the changed elements re-rendered, new versions' assets and formats added."""

    def __init__(self, reader: _Reader, timeline: otio.schema.Timeline):
        self.r = reader
        self.data = reader.data
        self.tl = timeline
        self.nl = "\r\n" if b"\r\n" in self.data[:65536] else "\n"
        self.unit = self._indent_unit()
        self.pieces = pieces_by_origin(timeline)
        self.changed = {eid: ps for eid, ps in self.pieces.items() if eid in reader.infos and _changed(ps)}
        ids = [el.get("id") for el in reader.root.walk() if el.get("id")]
        self.next_id = 1 + max([int(i[1:]) for i in ids if re.fullmatch(r"r\d+", i)] or [0])
        self.taken = set(ids)
        self.new_resources: list[str] = []
        self.asset_by_url: dict[str, str] = {}
        self.extra: dict[str, list[tuple[Fraction, str]]] = {}
        self.new_ranges: dict[str, tuple[Fraction, Fraction]] = {}

    # layout

    def _indent_unit(self) -> str:
        root = self.r.root
        for el in root.walk():
            if el.children:
                a, b = self._indent(el), self._indent(el.children[0])
                if b.startswith(a) and len(b) > len(a):
                    return b[len(a):]
        return "    "

    def _indent(self, el: Element) -> str:
        line = self.data.rfind(b"\n", 0, el.start) + 1
        lead = self.data[line:el.start]
        return lead.decode("utf-8") if not lead.strip() else ""

    def _text(self, a: int, b: int) -> str:
        return self.data[a:b].decode("utf-8")

    def _id(self) -> str:
        while f"r{self.next_id}" in self.taken:
            self.next_id += 1
        rid = f"r{self.next_id}"
        self.taken.add(rid)
        return rid

    # the edit

    def output(self) -> bytes:
        if not self.changed and not _added_clips(self.tl):
            return self.data
        self._check_nothing_lost()
        edits: list[tuple[int, int, str]] = []
        for ti, clip, rng in _added_clips(self.tl):
            anchor, offset, text = self._above(ti, clip, rng)
            if self._inside_changed(anchor, self_too=True):
                self.extra.setdefault(anchor.eid, []).append((offset, text))
            else:
                edits.append(self._insertion(anchor, text))
        for eid in self.changed:
            el = self.r.infos[eid].el
            if self._inside_changed(el):
                continue
            texts = [t for _, t in self._render(eid)]
            edits.append((el.start, el.end, (self.nl + self._indent(el)).join(texts)))
        if self.new_resources:
            edits.append(self._resources_edit())
        out = self.data
        last = len(out) + 1
        for start, end, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
            if end > last:
                raise InputError("Two edits of the FCPXML overlap; nothing was written. Please report this with the timeline.")
            out = out[:start] + text.encode("utf-8") + out[end:]
            last = start
        return out

    def _check_nothing_lost(self) -> None:
        project = (self.tl.metadata.get(FCPX) or {}).get("project", self.tl.name)
        read_ids = {eid for eid, info in self.r.infos.items() if info.project == project and not info.nest}
        gone = sorted(read_ids - set(self.pieces), key=lambda e: int(e[1:]))
        if gone:
            el = self.r.infos[gone[0]].el
            raise InputError(f"The timeline no longer holds <{el.tag}> {el.get('name', '')!r} (and {len(gone) - 1} more) of the "
                             "FCPXML; a retake never removes anything, so this edit cannot be written. Write .otio instead.")

    def _inside_changed(self, el: Element, self_too: bool = False) -> bool:
        node = el if self_too else el.parent
        while node is not None:
            if node.eid in self.changed:
                return True
            node = node.parent
        return False

    # pieces of a changed element

    def _bounds(self, info: _Info, pieces) -> list[Fraction]:
        """Record times where the pieces meet, on the project's frame grid: each at the nearest frame edge (a clip at
        another rate than the project's meets its version between two of the project's frames), except that a
        version's piece never starts before or ends after its media (those edges then round inward)."""
        grid = info.seq_rate
        version = [self._shows_version(p.item) for p in pieces]
        bounds = [info.rec]
        for j in range(1, len(pieces)):
            frames = _seconds(pieces[j].record.start_time) * grid
            f = math.floor(frames + Fraction(1, 2))
            if version[j]:
                first = self._media_edges(pieces[j])[0]
                low = math.ceil(first * grid - Fraction(1, 1000)) if first is not None else \
                    math.ceil(frames - Fraction(1, 1000))
                f = max(f, low)
            if version[j - 1]:
                last = self._media_edges(pieces[j - 1])[1]
                high = math.floor(last * grid + Fraction(1, 1000)) if last is not None else \
                    math.floor(frames + Fraction(1, 1000))
                f = min(f, high)
            bounds.append(Fraction(f) / grid)
        bounds.append(info.rec + info.dur)
        if any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise InputError(f"The retake of {info.el.get('name', '')!r} is shorter than a frame of the project once its "
                             "edges meet the project's frames; retake a longer window.")
        return bounds

    @staticmethod
    def _media_edges(piece) -> tuple[Fraction | None, Fraction | None]:
        """The record times (seconds) where the media a version's piece shows begins and ends (None: not known, or
        not at the record's speed)."""
        item = piece.item
        ref = item.media_references().get(item.active_media_reference_key)
        avail = getattr(ref, "available_range", None)
        if avail is None or any(isinstance(e, otio.schema.TimeEffect) for e in item.effects):
            return None, None
        start = _seconds(piece.record.start_time) + _seconds(avail.start_time) - _seconds(item.source_range.start_time)
        return start, start + _seconds(avail.duration)

    @staticmethod
    def _shows_version(item) -> bool:
        return isinstance(item, otio.schema.Clip) and item.active_media_reference_key != _DEFAULT

    def _render(self, eid: str) -> list[tuple[Fraction, str]]:
        """(offset in its parent's time, text) of each piece that now stands for the element, in time order."""
        info = self.r.infos[eid]
        pieces = sorted(self.changed[eid], key=lambda p: p.record.start_time.to_seconds())
        if info.el.tag not in _WRITABLE and not all(unchanged(p.item) for p in pieces):
            raise InputError(f"<{info.el.tag}> {info.el.get('name', '')!r} would change; only media clips are edited.")
        bounds = self._bounds(info, pieces)
        local = [info.local + (b - info.rec) * info.k for b in bounds]
        out = []
        for i, piece in enumerate(pieces):
            offset = info.offset + (bounds[i] - info.rec) * info.k_parent
            out.append((offset, self._piece(info, piece.item, i, bounds, local, offset)))
        return out

    def _asset_id(self, info: _Info, item, key: str) -> str:
        """The <asset> id the piece shows for media reference `key` (a new asset for a version not in the file)."""
        ref = item.media_references().get(key) if isinstance(item, otio.schema.Clip) else None
        known = (ref.metadata.get(FCPX) or {}).get("asset") if ref is not None else None
        if known in self.r.assets:
            return known
        if key == _DEFAULT or ref is None:
            return self._original(info).get("ref") or info.asset.id
        return self._version_asset(info.asset, ref, key)

    def _version_asset(self, source: _Asset, ref, key: str) -> str:
        url = _url(ref.target_url)
        if url not in self.asset_by_url:
            self.asset_by_url[url] = self._new_asset(source, ref, url, key)
        return self.asset_by_url[url]

    def _new_asset(self, source: _Asset, ref, url: str, key: str) -> str:
        """A version's <asset>: the source's media kind and sound layout, its own file, start (its first frame's
        source time) and length, and its provenance in <metadata>."""
        rid = self._id()
        rng = ref.available_range
        if rng is None:
            raise InputError(f"The version {key} ({Path(written_path(url)).name}) has no known length; write .otio instead.")
        rate = _exact(rng.start_time.rate)
        start, duration = _seconds(rng.start_time), _seconds(rng.duration)
        self.new_ranges[rid] = (start, duration)
        fmt = self._format_for(source, rate)
        attrs = {"id": rid, "name": ref.name or Path(written_path(url)).stem}
        if self.r.minor < 9:
            attrs["src"] = url
        attrs.update(start=time_text(start), duration=time_text(duration))
        for name in ("hasVideo", "format", "hasAudio", "videoSources", "audioSources", "audioChannels", "audioRate"):
            value = fmt if name == "format" else source.el.get(name)
            if value:
                attrs[name] = value
        u = self.unit
        lines = ["<asset " + " ".join(f'{k}="{_attr(v)}"' for k, v in attrs.items()) + ">"]
        if self.r.minor >= 9:
            lines.append(f'{u}<media-rep kind="original-media" src="{_attr(url)}"/>')
        record = {"key": key, "provenance": dict(ref.metadata.get(NS) or {})}
        lines += [f"{u}<metadata>", f'{u}{u}<md key="{VERSION_MD}" value="{_attr(_md_value(record))}"/>', f"{u}</metadata>",
                  "</asset>"]
        self.new_resources.append(lines)
        return rid

    def _format_for(self, source: _Asset, rate: Fraction) -> str | None:
        """The source's format when the version's rate matches it (the version has the source's rate and size), else
        an existing format of that rate and size, else a new <format>."""
        own = self.r.formats.get(source.format or "")
        if own is not None and own.rate == rate:
            return own.id
        for f in self.r.formats.values():
            if f.rate == rate and (own is None or (f.width, f.height) == (own.width, own.height)):
                return f.id
        rid = self._id()
        attrs = {"id": rid, "frameDuration": time_text(1 / rate)}
        if own is not None and own.width and own.height:
            attrs.update(width=own.width, height=own.height)
        self.new_resources.append(["<format " + " ".join(f'{k}="{_attr(v)}"' for k, v in attrs.items()) + "/>"])
        self.r.formats[rid] = _Format(self.r.root, rid, rate, attrs.get("width"), attrs.get("height"))
        return rid

    def _ours(self, info: _Info) -> dict:
        found = _json(_md(info.el).get(CLIP_MD))
        return found if isinstance(found, dict) else {}

    def _original(self, info: _Info) -> dict:
        """What a piece shows with `use original`: the element's own media as read (or as our metadata names it)."""
        ours = self._ours(info)
        if "original" in ours:
            return ours["original"] or {}
        out = {"ref": info.asset.id, "name": info.el.get("name", ""), "element": info.el.tag}
        if info.media is not None and info.media is not info.el:
            out["inner"] = {k: info.media.get(k) for k in ("offset", "start", "duration")}
        return out

    def _piece(self, info: _Info, item, i: int, bounds, local, offset: Fraction) -> str:
        el = info.el
        n = len(bounds) - 1
        changes: dict[str, str | None] = {}
        if el.get("offset") is not None or offset != info.offset:
            if el.get("offset") is None or parse_time(el.get("offset")) != offset:
                changes["offset"] = time_text(offset)
        duration = bounds[i + 1] - bounds[i]
        if el.get("duration") is None or parse_time(el.get("duration")) != duration:
            changes["duration"] = time_text(duration)
        if (el.get("name") or "") != item.name and item.name:
            changes["name"] = item.name
        enabled = getattr(item, "enabled", True)
        if (el.get("enabled", "1") != "0") != enabled:
            changes["enabled"] = "1" if enabled else "0"
        key = item.active_media_reference_key if isinstance(item, otio.schema.Clip) else _DEFAULT
        shown = self._asset_id(info, item, key) if info.asset is not None else None
        was = info.media.get("ref") if info.media is not None else None
        default_start = info.asset.start if el.tag in ("asset-clip", "video", "audio") and info.asset else Fraction(0)
        if el.get("start") is not None or local[i] != default_start or (shown != was and el is info.media):
            if el.get("start") is None or parse_time(el.get("start")) != local[i]:
                changes["start"] = time_text(local[i])
        inner_head = None
        if shown is not None and shown != was:
            if info.media is el:
                changes["ref"] = shown
            else:
                inner_head = self._inner_head(info, shown)
        head = _set_attrs(self._text(el.start, el.head_end), changes)
        desired = self._desired_md(info, item, key)
        body = self._children(info, i, n, local, desired, inner_head)
        if body is None:
            return head
        if el.empty:
            close = f"</{el.tag}>"
            head = head[:-2].rstrip() + ">"
            indent = self._indent(el)
            return head + body + self.nl + indent + close
        close_at = self.data.rindex(b"</", el.start, el.end)
        return head + body + self._text(close_at, el.end)

    def _inner_head(self, info: _Info, shown: str) -> str:
        """The start tag of a clip's inner <video>/<audio> showing asset `shown` (its time kept, its range the asset's)."""
        media = info.media
        original = self._original(info)
        if shown == original.get("ref") and original.get("inner"):
            inner = original["inner"]
            changes = {"ref": shown, **{k: inner.get(k) for k in ("offset", "start", "duration")}}
        else:
            asset = self.r.assets.get(shown)
            ref_asset = self.r.assets.get(media.get("ref", ""))
            vs, vd = (asset.start, asset.duration) if asset is not None else self.new_ranges[shown]
            start_eff = parse_time(media.get("start")) if media.get("start") else (ref_asset.start if ref_asset else Fraction(0))
            at = parse_time(media.get("offset", "0s"))
            changes = {"ref": shown, "offset": time_text(at + (vs - start_eff)), "start": time_text(vs)}
            if vd is not None:
                changes["duration"] = time_text(vd)
        return _set_attrs(self._text(media.start, media.head_end), changes)

    def _desired_md(self, info: _Info, item, key: str) -> dict | None:
        meta = item.metadata.get(NS) if isinstance(item, otio.schema.Clip) else None
        if not meta or "versions" not in meta:
            return None
        versions = {k: self._asset_id(info, item, k) for k in item.media_references() if k != _DEFAULT}
        out = {"original_name": meta.get("original_name", item.name), "original": self._original(info),
               "versions": versions, "active": "original" if key == _DEFAULT else key,
               "placement": meta.get("placement", "splice")}
        if out["placement"] == "above":
            out["source_track"] = meta.get("source_track", "")
        return out

    def _children(self, info: _Info, i: int, n: int, local, desired: dict | None, inner_head: str | None) -> str | None:
        """The content of piece i: untimed children copied, timed ones (markers, keywords, connected clips) kept on the
        piece that covers them, our metadata added or updated. None when the element stays empty."""
        el = info.el

        def here(at: Fraction) -> bool:
            return (local[i] <= at < local[i + 1]) or (i == 0 and at < local[0]) or (i == n - 1 and at >= local[n])

        def overlaps(a: Fraction, b: Fraction) -> bool:
            return (a < local[i + 1] and b > local[i]) or (i == 0 and a < local[0]) or (i == n - 1 and b > local[n])

        parts: list[str] = []
        prev = el.head_end
        wrote_md = False
        chain_root = self._chain_root(info)
        extra = sorted(self.extra.get(el.eid, []), key=lambda x: x[0])
        placed_extra = False
        child_indent = None
        for child in el.children:
            pre = self._text(prev, child.start)
            prev = child.end
            child_indent = self._indent(child) or child_indent
            text = self._text(child.start, child.end)
            if extra and not placed_extra and (child.tag in _MARKERS or child.tag in _AFTER_ANCHORS):
                parts += [pre + t for at, t in extra if here(at)]
                placed_extra = True
            if child.tag in _STORY and child.get("lane") is not None:
                if child.eid in self.changed:
                    parts += [pre + t for at, t in self._render(child.eid) if here(at)]
                    continue
                if not here(parse_time(child.get("offset", "0s"))):
                    continue
                text = self._nested_text(child)
            elif child.tag in _MARKERS:
                start = parse_time(child.get("start")) if child.get("start") else None
                if start is None:
                    pass
                elif child.get("duration") and child.tag in ("keyword", "rating", "analysis-marker"):
                    if not overlaps(start, start + parse_time(child.get("duration"))):
                        continue
                elif not here(start):
                    continue
            elif child is chain_root and inner_head is not None:
                text = self._replace_head(child, info.media, inner_head)
            elif child.tag == "metadata":
                wrote_md = True
                text = self._metadata_text(child, desired)
            elif child.tag in _STORY and child.eid in self.changed:
                raise InputError(f"<{child.tag}> {child.get('name', '')!r} inside {el.get('name', '')!r} would change; only "
                                 "clips on the project's own storylines are edited.")
            parts.append(pre + text)
        if extra and not placed_extra:
            indent = child_indent or self._indent(el) + self.unit
            parts += [self.nl + indent + t for at, t in extra if here(at)]
        tail = self._text(prev, self.data.rindex(b"</", el.start, el.end)) if not el.empty else ""
        if desired is not None and not wrote_md:
            indent = child_indent or self._indent(el) + self.unit
            parts.append(self.nl + indent + self._new_metadata(desired, indent))
            if el.empty:
                return "".join(parts)
        if el.empty and not parts:
            return None
        return "".join(parts) + tail

    def _nested_text(self, el: Element) -> str:
        """An unchanged element's text, with any changed element inside it rendered (a connected clip's own)."""
        inside = [c for c in el.walk() if c is not el and c.eid in self.changed and not self._inside_changed_below(c, el)]
        if not inside:
            return self._text(el.start, el.end)
        out, prev = [], el.start
        for c in sorted(inside, key=lambda c: c.start):
            out.append(self._text(prev, c.start))
            out.append((self.nl + self._indent(c)).join(t for _, t in self._render(c.eid)))
            prev = c.end
        out.append(self._text(prev, el.end))
        return "".join(out)

    def _inside_changed_below(self, c: Element, top: Element) -> bool:
        node = c.parent
        while node is not None and node is not top:
            if node.eid in self.changed:
                return True
            node = node.parent
        return False

    def _chain_root(self, info: _Info) -> Element | None:
        media = info.media
        if media is None or media is info.el:
            return None
        node = media
        while node.parent is not None and node.parent is not info.el:
            node = node.parent
        return node

    def _replace_head(self, root: Element, target: Element, head: str) -> str:
        return self._text(root.start, target.start) + head + self._text(target.head_end, root.end)

    def _metadata_text(self, meta: Element, desired: dict | None) -> str:
        ours = [m for m in meta.kids("md") if m.get("key") == CLIP_MD]
        text = self._text(meta.start, meta.end)
        if desired is None:
            if not ours:
                return text
            m = ours[0]
            line = self.data.rfind(b"\n", meta.start, m.start)
            cut_from = line if line > meta.start else m.start
            return self._text(meta.start, cut_from) + self._text(m.end, meta.end)
        value = _md_value(desired)
        if ours:
            m = ours[0]
            if _json(m.get("value")) == desired:
                return text
            new_head = _set_attrs(self._text(m.start, m.head_end), {"value": value})
            return self._text(meta.start, m.start) + new_head + self._text(m.head_end, meta.end)
        indent = self._indent(meta)
        md = f'{self.nl}{indent}{self.unit}<md key="{CLIP_MD}" value="{_attr(value)}"/>'
        if meta.empty:
            return self._text(meta.start, meta.head_end)[:-2].rstrip() + ">" + md + self.nl + indent + "</metadata>"
        last = meta.children[-1].end if meta.children else meta.head_end
        return self._text(meta.start, last) + md + self._text(last, meta.end)

    def _new_metadata(self, desired: dict, indent: str) -> str:
        u = self.unit
        return (f"<metadata>{self.nl}{indent}{u}<md key=\"{CLIP_MD}\" value=\"{_attr(_md_value(desired))}\"/>"
                f"{self.nl}{indent}</metadata>")

    # a retake placed above

    def _above(self, ti: int, clip: otio.schema.Clip, rng: otio.opentime.TimeRange) -> tuple[Element, Fraction, str]:
        """The connected clip for a retake placed above: its anchor (the storyline item under its start), its offset in
        the anchor's time, and its text."""
        info_by_id = self.r.infos
        lane = self._lane(ti)
        source = _source_item(self.tl, clip, rng)
        src_info = info_by_id.get((origin_of(source) or {}).get("id", "")) if source is not None else None
        item = _storyline_item_at(self.tl, rng)
        anchor = info_by_id.get((origin_of(item) or {}).get("id", "")) if item is not None else None
        if anchor is None or src_info is None:
            raise InputError(f"The retake {clip.name!r} has no storyline clip to connect to, or its source clip is not in the "
                             "file; write .otio instead.")
        grid = anchor.seq_rate
        a = math.ceil(_seconds(rng.start_time) * grid - Fraction(1, 1000))
        b = math.floor(_seconds(rng.end_time_exclusive()) * grid + Fraction(1, 1000))
        rec, end = Fraction(a) / grid, Fraction(b) / grid
        offset = anchor.local + (rec - anchor.rec) * anchor.k
        k = src_info.k
        start = _seconds(clip.source_range.start_time) + (rec - _seconds(rng.start_time)) * k
        key = clip.active_media_reference_key
        rid = self._version_asset(src_info.asset, clip.media_references()[key], key)
        meta = clip.metadata.get(NS) or {}
        desired = {"original_name": meta.get("original_name", clip.name), "original": {}, "placement": "above",
                   "versions": {key: rid}, "active": key, "source_track": meta.get("source_track", "")}
        src_el = src_info.el
        attrs = {"ref": rid, "lane": str(lane), "offset": time_text(offset), "name": clip.name,
                 "start": time_text(start), "duration": time_text(end - rec)}
        for keep in ("format", "tcFormat", "audioRole", "videoRole"):
            if src_el.get(keep) and src_el.tag == "asset-clip":
                attrs[keep] = src_el.get(keep)
        if not clip.enabled:
            attrs["enabled"] = "0"
        indent = self._indent(anchor.el) + self.unit
        lines = ["<asset-clip " + " ".join(f'{k2}="{_attr(v)}"' for k2, v in attrs.items()) + ">"]
        conform = src_el.first("conform-rate")
        if conform is not None:
            lines.append(indent + self.unit + self._text(conform.start, conform.end))
        lines.append(indent + self.unit + self._new_metadata(desired, indent + self.unit))
        lines.append(indent + "</asset-clip>")
        return anchor.el, offset, self.nl.join(lines)

    def _lane(self, ti: int) -> int:
        track = self.tl.tracks[ti]
        lane = lane_of_track(track)
        if lane is not None:
            return lane
        video = track.kind == otio.schema.TrackKind.Video
        known = [lane_of_track(t) for t in self.tl.tracks if lane_of_track(t) is not None]
        new = [t for t in self.tl.tracks if lane_of_track(t) is None and t.kind == track.kind]
        step = new.index(track) + 1
        return (max(known + [0]) + step) if video else (min(known + [0]) - step)

    def _insertion(self, anchor: Element, text: str) -> tuple[int, int, str]:
        """Connect `text` to `anchor`: after its connected clips, before its markers and effects."""
        later = next((c for c in anchor.children if c.tag in _MARKERS or c.tag in _AFTER_ANCHORS), None)
        if later is not None:
            return later.start, later.start, text + self.nl + self._indent(later)
        if anchor.children:
            last = anchor.children[-1]
            return last.end, last.end, self.nl + self._indent(last) + text
        indent = self._indent(anchor)
        if anchor.empty:
            head = self._text(anchor.start, anchor.head_end)
            opened = head[:-2].rstrip() + ">"
            return anchor.start, anchor.end, (opened + self.nl + indent + self.unit + text + self.nl + indent + f"</{anchor.tag}>")
        return anchor.head_end, anchor.head_end, self.nl + indent + self.unit + text

    def _resources_edit(self) -> tuple[int, int, str]:
        res = self.r.resources
        if res is None or not res.children:
            raise InputError("The FCPXML has no <resources> to add the retake's media to; export it again from Final Cut Pro.")
        last = res.children[-1]
        indent = self._indent(last)
        text = ""
        for lines in self.new_resources:
            text += self.nl + indent + (self.nl + indent).join(lines)
        return last.end, last.end, text


_AFTER_ANCHORS = {"audio-channel-source", "audio-role-source", "sync-source", "filter-video", "filter-video-mask",
                  "filter-audio", "metadata", "reserved"}


def write(data: bytes, timeline: otio.schema.Timeline, path: Path) -> bytes:
    """The file's bytes with the retaken items edited (the faithful module's `write`; never touches the disk)."""
    name = Path(path).name
    reader = _Reader(data, name)
    reader.timelines()
    refused = cannot_hold(timeline)
    if refused:
        raise InputError(f"{name} cannot be edited to hold this: {' '.join(refused)}")
    return _Writer(reader, timeline).output()
