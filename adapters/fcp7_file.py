"""FCP7 / Premiere XML (xmeml 1-5): read every clip item as the NLE does, and write a retake back into the file's own text.

Reading. OTIO's `fcp_xml` reader drops the second channel of every stereo pair (128 of the 192 clip items of a
real Premiere export), reads every clip as enabled, and ignores speed; this module reads the xmeml itself
(expat, so every element keeps its byte offsets) into the OTIO timeline the planner works on:

- every `<track>` of `<video>` and `<audio>` is a track (Premiere's exploded stereo channels included), with its
  `<enabled>`; clip items and generator items are clips (`<enabled>FALSE</enabled>` reads as `enabled=False`),
  transition items are transitions, a clip item holding a `<sequence>` is a nested stack of that sequence's
  tracks of the same kind; sequence and clip markers are markers;
- times are frames at the rates the file writes (`<timebase>` with `<ntsc>`: 30 + TRUE is 30000/1001, as a
  float 29.97002997...); a clip item counts `<in>`/`<out>` at its own `<rate>` (a 15 fps clip in a 30 fps
  sequence), `<start>`/`<end>` at the sequence's; -1 means "at the cut of the transition beside it" (its
  `cutPointTicks` in Premiere's ticks, else its `<alignment>`), and the clip's `<in>` is then the frame at the
  transition's start;
- a clip's source range starts at its media's first timecode plus `<in>` (the timecode's `<frame>`, carried to
  the clip's rate by the same rule the planner uses); its media reference keeps `<pathurl>` exactly as written
  (`file://localhost/C%3a/...`: the Relinker turns it into a path, `--map-path` and `--media-search` apply);
  `<file id>` elements are defined once and referred to by id alone, in any order; a `<file>` with a
  `<mediaSource>` (Slug, a title) and `<generatoritem>`s are generators;
- a `<timecode>` whose `<displayformat>` is DF at a rate that is not NTSC (Premiere writes this at 30 fps) is
  read by its `<frame>` count, with a note; without a `<frame>` it is refused with a sentence;
- Premiere's Time Remap filter is a LinearTimeWarp at a constant speed (reverse: negative), a TimeEffect the
  planner refuses by name when the speed varies.

Every item is stamped (`origin.stamp`) with the byte offset of its element (`@1234`; inside a nested sequence,
the path of offsets through the clip items that use it), so the writer finds it again.

Writing edits the file's text: elements the timeline still holds unchanged keep every byte. A clip item a
retake split becomes one clip item per piece, each a copy of the original element's text with only what differs
rewritten: `<start>`/`<end>`/`<in>`/`<out>` (-1 kept at a transition), `pproTicksIn/Out`, `<name>`,
`<enabled>`, `<duration>`, the `<file>`, markers outside the piece dropped, and `<link>`s rebuilt among the
pieces of one split (each piece to the piece of each split linked clip that lies most under it: left to left, the
version to the version; links to clip items that did not change stay as written). The first piece keeps the element's id;
the others get new `clipitem-N` ids. The version's `<file>` is a new `file-N` element (a file URL of its
absolute path, its rate, length and timecode, the original's `<media>` description), defined where it is first
used and referred to by id after; the version gets its own `masterclip-N`. Where a split leaves a `<file>` only
referred to, its definition moves to the first use. A retake placed above goes on its track, a copy of the clip
item it was made from (a new `<track>` appended to `<video>`, or to `<audio>` for its sound, when none is free).
The sequence's `<duration>`, its other tracks and their ids stay. What a clip item cannot hold (a version of a
sped-up clip, a cut between the frames the file counts, an edit inside a nested sequence used more than once) is
refused by `cannot_hold` before anything is paid for.

The record of a retaken clip (which versions it has, the shown one, their provenance, and the original media's
`<file>` element verbatim) is an XML comment inside its clip item, `<!-- ltx-retake {json} -->`: an XML
comment cannot change how Premiere or Final Cut Pro import the clip (every XML reader skips it), it keeps the
original `<file>` exactly even when no clip item refers to that media any more, and it needs no escaping but
for `--`. The version is also named `<shot>_retake_v001` and shows its own `<file>`, so it is recognisable
where an NLE re-exported the file without the comment.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote
from xml.parsers import expat
from xml.sax.saxutils import escape

import opentimelineio as otio

from ..document import ReadOptions
from ..errors import InputError, TimelineReadError
from ..metadata import NS, original_name
from ..origin import origin_of, pieces_by_origin, unchanged
from ..origin import stamp as _stamp
from ..paths import shot_name
from ..relink import HINTS
from ..timing import exact_rate, format_timecode, frames_between_rates, is_drop_frame_rate, parse_timecode, rate_text

__all__ = ["read", "write", "cannot_hold", "RECORD", "TICKS_PER_SECOND", "parse_xmeml", "XmlNode"]

RECORD = "ltx-retake"                 # the comment that holds a retaken clip's record
TICKS_PER_SECOND = 254016000000       # Premiere's pproTicksIn/pproTicksOut unit
_ITEMS = ("clipitem", "generatoritem", "transitionitem")
_CLIPS = ("clipitem", "generatoritem")
_TR = otio.opentime.TimeRange
_RT = otio.opentime.RationalTime


# --- the text of the file, with every element's byte offsets ------------------------------------------------------

class XmlNode:
    """One element: its tag, attributes, text, children, and where it lies in the file's bytes."""

    __slots__ = ("tag", "attrs", "start", "open_end", "close_start", "end", "parent", "children", "parts", "comments")

    def __init__(self, tag: str, attrs: dict, start: int, open_end: int, parent: "XmlNode | None"):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.start, self.open_end = start, open_end          # '<' of the start tag, just after its '>'
        self.close_start = self.end = open_end               # '<' of the end tag, just after the element
        self.children: list[XmlNode] = []
        self.parts: list[str] = []
        self.comments: list[tuple[int, int, str]] = []       # (start, end, text) of comments directly inside

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def kid(self, tag: str) -> "XmlNode | None":
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def kids(self, tag: str) -> list["XmlNode"]:
        return [c for c in self.children if c.tag == tag]

    def text_of(self, tag: str, default: str | None = None) -> str | None:
        c = self.kid(tag)
        return c.text.strip() if c is not None else default

    @property
    def empty(self) -> bool:
        return self.close_start == self.open_end and self.end == self.open_end

    def __repr__(self) -> str:
        return f"<{self.tag} @{self.start}>"


@dataclass
class _Doc:
    data: bytes
    root: XmlNode
    nodes: list[XmlNode]
    codec: str
    newline: str

    def bytes_of(self, node: XmlNode) -> bytes:
        return self.data[node.start:node.end]

    def indent_of(self, node: XmlNode) -> str:
        """The whitespace before the element on its line ("" when something else precedes it there)."""
        line = self.data.rfind(b"\n", 0, node.start) + 1
        lead = self.data[line:node.start]
        return lead.decode(self.codec) if not lead.strip() else ""


def _start_tag_end(data: bytes, at: int) -> tuple[int, bool]:
    """Just after the '>' of the start tag at `at`, and whether it is an empty-element tag (quotes skipped)."""
    quote_char = None
    i = at + 1
    n = len(data)
    while i < n:
        c = data[i]
        if quote_char is not None:
            if c == quote_char:
                quote_char = None
        elif c in (0x22, 0x27):
            quote_char = c
        elif c == 0x3E:
            return i + 1, data[i - 1] == 0x2F
        i += 1
    raise ValueError("unterminated tag")


def _codec_of(data: bytes) -> str:
    head = data[:200]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        return "utf-16"
    m = re.match(rb'^\s*<\?xml[^>]*encoding\s*=\s*["\']([A-Za-z0-9._-]+)["\']', head)
    return m.group(1).decode("ascii").lower() if m else "utf-8"


def parse_xmeml(data: bytes, name: str = "the file") -> _Doc:
    """Parse the file's bytes into elements with their byte offsets (refusing what is not a plain xmeml document)."""
    codec = _codec_of(data)
    if codec.replace("-", "").replace("_", "") in ("utf16", "utf16le", "utf16be", "utf32", "ucs2"):
        raise TimelineReadError(f"{name} is written in {codec.upper()}; Premiere and Final Cut Pro write XML in UTF-8. "
                                "Export it again from the NLE.")
    try:
        "x".encode(codec)
    except LookupError:
        raise TimelineReadError(f"{name} declares the text encoding {codec!r}, which is not known here; export it "
                                "again from the NLE in UTF-8.") from None
    parser = expat.ParserCreate()
    stack: list[XmlNode] = []
    nodes: list[XmlNode] = []
    holder: list[XmlNode] = []

    def start(tag, attrs):
        at = parser.CurrentByteIndex
        open_end, is_empty = _start_tag_end(data, at)
        node = XmlNode(tag, attrs, at, open_end, stack[-1] if stack else None)
        if is_empty:
            node.close_start = node.end = open_end
        if stack:
            stack[-1].children.append(node)
        else:
            holder.append(node)
        nodes.append(node)
        stack.append(node)

    def end(tag):
        node = stack.pop()
        if node.end == node.open_end and not _is_empty_tag(data, node):
            at = parser.CurrentByteIndex
            node.close_start = at
            node.end = data.index(b">", at) + 1

    def chars(text):
        if stack:
            stack[-1].parts.append(text)

    def comment(text):
        if stack:
            at = parser.CurrentByteIndex
            stack[-1].comments.append((at, data.index(b"-->", at) + 3, text))

    def entity(*_args):
        raise TimelineReadError(f"{name} declares its own XML entities, which an NLE's export never does; ltx-retake "
                                "does not expand them. Export the timeline again from the NLE.")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.CommentHandler = comment
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise TimelineReadError(f"{name} is not well-formed XML ({expat.ErrorString(exc.code)} at line {exc.lineno}); "
                                "export it again from the NLE and check that the file is complete.") from None
    if not holder or holder[0].tag != "xmeml":
        raise TimelineReadError(f"{name} is XML but not FCP7/Premiere XML (its root is <{holder[0].tag if holder else '?'}>, "
                                "not <xmeml>); FCPXML files end in .fcpxml.")
    newline = "\r\n" if b"\r\n" in data else "\n"     # what new lines are written with
    return _Doc(data, holder[0], nodes, codec, newline)


def _is_empty_tag(data: bytes, node: XmlNode) -> bool:
    return data[node.open_end - 2:node.open_end] == b"/>"


# --- rates and timecode ------------------------------------------------------------------------------------------

def _flag(text: str | None, default: bool = False) -> bool:
    if text is None:
        return default
    return text.strip().upper() in ("TRUE", "1", "YES")


def _rate_of(node: XmlNode | None, fallback: Fraction | None) -> Fraction | None:
    """The node's own `<rate>` (timebase, ntsc), else `fallback` (FCP7 XML inherits rates from the enclosing element)."""
    rate = node.kid("rate") if node is not None else None
    if rate is None:
        return fallback
    base = rate.text_of("timebase")
    if not base:
        return fallback
    try:
        value = Fraction(base)
    except (ValueError, ZeroDivisionError):
        return fallback
    if value <= 0:
        return fallback
    if _flag(rate.text_of("ntsc")):
        return exact_rate(value * Fraction(1000, 1001))
    return value


def _native(rate: Fraction) -> float:
    """The rate as OTIO times carry it: the file's own value as a float (30000/1001 -> 29.97002997...)."""
    return float(rate)


def _rate_xml(rate: Fraction) -> tuple[int, bool]:
    """A rate as xmeml writes it: timebase and ntsc."""
    r = exact_rate(rate)
    if r.denominator == 1001:
        return r.numerator // 1000, True
    return round(r), False


def _int(text: str | None, what: str) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        try:
            return round(float(str(text).strip()))
        except (TypeError, ValueError):
            raise TimelineReadError(f"{what} is {text!r}, not a number of frames; export the timeline again from the NLE.") from None


def _timecode(node: XmlNode, fallback: Fraction | None, what: str, notes: list[str]) -> tuple[int, Fraction, bool]:
    """A `<timecode>` element as (frame number, its rate, drop-frame display), by the rule in the module docstring."""
    rate = _rate_of(node, fallback)
    if rate is None:
        raise TimelineReadError(f"{what}: its timecode has no rate; export the timeline again from the NLE.")
    string = node.text_of("string") or ""
    df = (node.text_of("displayformat") or "").upper() == "DF" or (";" in string and not node.text_of("displayformat"))
    ntsc = rate.denominator == 1001
    frame = node.text_of("frame")
    if frame is not None and frame.strip():
        number = _int(frame, f"{what}: the timecode's <frame>")
        if df and not ntsc:
            nominal = round(rate)
            counted = None
            if string and nominal % 30 == 0:
                try:
                    counted = parse_timecode(string.replace(":", ";"), Fraction(nominal * 1000, 1001), drop_frame=True)
                except InputError:
                    counted = None
            agrees = "which its string matches when counted drop-frame" if counted == number else "not its string"
            notes.append(f"{what}: its timecode {string or number} is marked drop-frame (DF) at {rate_text(rate)} fps, "
                         f"which is not an NTSC rate (drop-frame counting exists only at 29.97 and 59.94); its frame count "
                         f"{number} was used, as Premiere and Final Cut Pro place media by it ({agrees}).")
        return number, rate, df and ntsc
    if not string:
        return 0, rate, False
    if df and not ntsc:
        raise TimelineReadError(
            f"{what}: its timecode {string} is marked drop-frame (DF) at {rate_text(rate)} fps, which is not an NTSC "
            "rate, and it has no <frame> count to say which frame it means; export the timeline again from the NLE "
            "(or set the media's timecode display to non-drop-frame).")
    try:
        return parse_timecode(string, rate, drop_frame=df), rate, df
    except InputError as exc:
        raise TimelineReadError(f"{what}: {exc} Export the timeline again from the NLE.") from None


# --- where each clip item lies, one rule for reading and writing -----------------------------------------------------

@dataclass(frozen=True)
class _Timing:
    """A track item's record span in sequence frames, and how much of a clip lies under a transition beside it."""

    start: int          # record start (the cut, for -1)
    end: int            # record end (exclusive; the cut, for -1)
    start_cut: bool     # <start> is -1
    end_cut: bool       # <end> is -1
    head: int           # sequence frames from the head transition's start to the cut (what <in> counts from)
    tail: int           # sequence frames from the cut to the tail transition's end (what <out> counts to)
    cut: int = 0        # for a transition: where it cuts


def _cut_of(node: XmlNode, seq_rate: Fraction) -> int:
    start = _int(node.text_of("start"), "A transition's <start>")
    end = _int(node.text_of("end"), "A transition's <end>")
    ticks = node.text_of("cutPointTicks")
    if ticks:
        try:
            at = Fraction(int(ticks)) * seq_rate / TICKS_PER_SECOND
            if abs(at - round(at)) < Fraction(1, 100) and 0 <= round(at) <= end - start:
                return start + round(at)
        except ValueError:
            pass
    alignment = (node.text_of("alignment") or "center").lower()
    if alignment in ("end", "end-black"):
        return end
    if alignment in ("start", "start-black"):
        return start
    return (start + end) // 2


def _timings(items: list[XmlNode], seq_rate: Fraction, where: str) -> list[_Timing]:
    out = []
    for i, node in enumerate(items):
        what = f"{where}, {_describe(node)}"
        if node.tag == "transitionitem":
            s = _int(node.text_of("start"), f"{what}: <start>")
            e = _int(node.text_of("end"), f"{what}: <end>")
            out.append(_Timing(s, e, False, False, 0, 0, _cut_of(node, seq_rate)))
            continue
        s = _int(node.text_of("start"), f"{what}: <start>")
        e = _int(node.text_of("end"), f"{what}: <end>")
        head = tail = 0
        if s == -1:
            prev = items[i - 1] if i > 0 else None
            if prev is None or prev.tag != "transitionitem":
                raise TimelineReadError(f"{what} starts at -1 (at a transition) but no transition item comes before it; "
                                        "export the timeline again from the NLE.")
            s = _cut_of(prev, seq_rate)
            head = s - _int(prev.text_of("start"), f"{what}: the transition's <start>")
        if e == -1:
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is None or nxt.tag != "transitionitem":
                raise TimelineReadError(f"{what} ends at -1 (at a transition) but no transition item follows it; "
                                        "export the timeline again from the NLE.")
            e = _cut_of(nxt, seq_rate)
            tail = _int(nxt.text_of("end"), f"{what}: the transition's <end>") - e
        if e < s:
            raise TimelineReadError(f"{what} ends ({e}) before it starts ({s}); export the timeline again from the NLE.")
        out.append(_Timing(s, e, node.text_of("start", "").strip() == "-1", node.text_of("end", "").strip() == "-1", head, tail))
    return out


def _clamp_overlaps(items: list[XmlNode], timings: list[_Timing]) -> int:
    """A clip item that runs into the next one on its track ends where the next starts (Premiere writes a sound
    clip's end through the transition on its linked picture: 956-1177 then 1164-1258); the frames clamped."""
    clamped = 0
    for i in range(len(items) - 1):
        a, b = timings[i], timings[i + 1]
        if items[i].tag in _CLIPS and items[i + 1].tag in _CLIPS and b.start < a.end and b.start > a.start and not a.end_cut:
            clamped += a.end - b.start
            timings[i] = _Timing(a.start, b.start, a.start_cut, a.end_cut, a.head, 0)
    return clamped


def _describe(node: XmlNode) -> str:
    name = node.text_of("name")
    ident = node.attrs.get("id")
    label = f"{node.tag} {ident}" if ident else node.tag
    return f"{label} ({name!r})" if name else label


# --- speed -----------------------------------------------------------------------------------------------------

def _parameters(effect: XmlNode) -> dict[str, XmlNode]:
    return {(p.text_of("parameterid") or p.text_of("name") or "").lower(): p for p in effect.kids("parameter")}


def _speed(item: XmlNode) -> tuple[Fraction, otio.schema.Effect | None, int | None]:
    """The clip's speed from a Time Remap filter: (scalar, the OTIO effect, the media frame at <in> if the graph says)."""
    for f in item.kids("filter"):
        if not _flag(f.text_of("enabled"), True):
            continue
        effect = f.kid("effect")
        if effect is None or (effect.text_of("effectid") or "").lower() not in ("timeremap", "time remap"):
            continue
        params = _parameters(effect)
        varies = params.get("variablespeed")
        if varies is not None and _flag(varies.text_of("value")):
            return Fraction(1), otio.schema.TimeEffect(name="Time Remap", effect_name="Time Remap (variable speed)"), None
        speed = params.get("speed")
        try:
            scalar = Fraction(speed.text_of("value")) / 100 if speed is not None else Fraction(1)
        except (TypeError, ValueError, ZeroDivisionError):
            return Fraction(1), otio.schema.TimeEffect(name="Time Remap", effect_name="Time Remap (unreadable speed)"), None
        reverse = params.get("reverse")
        if reverse is not None and _flag(reverse.text_of("value")):
            scalar = -scalar
        media_in = None
        graph = params.get("graphdict")
        if graph is not None:
            for kf in graph.kids("keyframe"):
                if _flag(kf.text_of("speedkfin")):
                    try:
                        media_in = round(Fraction(kf.text_of("value")))
                    except (TypeError, ValueError):
                        media_in = None
        if scalar == 1:
            return Fraction(1), None, None
        return scalar, otio.schema.LinearTimeWarp(name="Time Remap", time_scalar=float(scalar)), media_in
    return Fraction(1), None, None


# --- the record of a retaken clip --------------------------------------------------------------------------------

def _record_of(node: XmlNode) -> dict | None:
    for _, _, text in node.comments:
        body = text.strip()
        if body.startswith(RECORD + " "):
            try:
                found = json.loads(body[len(RECORD) + 1:])
            except ValueError:
                return None
            return found if isinstance(found, dict) and found.get("v") == 1 else None
    return None


def _record_text(record: dict) -> str:
    body = json.dumps(record, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    while "--" in body:  # never inside an XML comment; only JSON strings can hold it, where \u002d reads back as '-'
        body = body.replace("--", "-\\u002d")
    return f"<!-- {RECORD} {body} -->"


# --- reading -----------------------------------------------------------------------------------------------------

@dataclass
class _Files:
    """Every `<file>` and nested `<sequence>` definition by id (an element with children), wherever it is."""

    files: dict[str, XmlNode] = field(default_factory=dict)
    sequences: dict[str, XmlNode] = field(default_factory=dict)
    uses: dict[tuple[str, str], int] = field(default_factory=dict)   # (sequence id, track kind) -> clip items using it

    @classmethod
    def index(cls, doc: _Doc) -> "_Files":
        out = cls()
        for node in doc.nodes:
            ident = node.attrs.get("id")
            if node.tag == "file" and ident and node.children and ident not in out.files:
                out.files[ident] = node
            elif node.tag == "sequence" and ident and node.children and node.parent is not None \
                    and node.parent.tag == "clipitem" and ident not in out.sequences:
                out.sequences[ident] = node
            if node.tag == "clipitem":
                seq = node.kid("sequence")
                track = node.parent
                if seq is not None and seq.attrs.get("id") and track is not None and track.parent is not None:
                    key = (seq.attrs["id"], track.parent.tag)
                    out.uses[key] = out.uses.get(key, 0) + 1
        return out

    def file(self, node: XmlNode | None) -> XmlNode | None:
        if node is None:
            return None
        if node.children:
            return node
        return self.files.get(node.attrs.get("id", ""))

    def sequence(self, node: XmlNode | None) -> XmlNode | None:
        if node is None:
            return None
        if node.children:
            return node
        return self.sequences.get(node.attrs.get("id", ""))


def _element_id(prefix: str, node: XmlNode) -> str:
    return f"{prefix}@{node.start}"


def _node_of(doc_index: dict[int, XmlNode], element_id: str) -> XmlNode | None:
    last = element_id.rsplit("/", 1)[-1]
    if not last.startswith("@"):
        return None
    try:
        return doc_index.get(int(last[1:]))
    except ValueError:
        return None


def _top_sequences(root: XmlNode, files: _Files) -> list[XmlNode]:
    out: list[XmlNode] = []

    def walk(node: XmlNode) -> None:
        for c in node.children:
            if c.tag == "sequence":
                seq = files.sequence(c) or c
                if seq not in out:
                    out.append(seq)
            elif c.tag in ("project", "bin", "children"):
                walk(c)

    walk(root)
    return out


@dataclass
class _ClipMedia:
    """What a clip item shows, in its own frames: the file (or nest), origin, speed and length of its media."""

    clip_rate: Fraction
    origin: Fraction                    # the media's first frame in the clip's frames (its timecode)
    scalar: Fraction
    effect: otio.schema.Effect | None
    media_in: int | None                # Time Remap's media frame at <in>
    length: Fraction | None             # <duration>: the media's length in the clip's (speed-adjusted) frames
    file: XmlNode | None                # the <file> definition
    file_id: str | None
    nest: XmlNode | None                # the nested <sequence> definition


class _Reader:
    def __init__(self, doc: _Doc, name: str, notes: list[str]):
        self.doc, self.name, self.notes = doc, name, notes
        self.files = _Files.index(doc)
        self._timecodes: dict[int, tuple[int, Fraction, bool]] = {}

    def timelines(self) -> list[otio.schema.Timeline]:
        sequences = _top_sequences(self.doc.root, self.files)
        return [self.timeline(seq) for seq in sequences]

    def timeline(self, seq: XmlNode) -> otio.schema.Timeline:
        name = seq.text_of("name") or ""
        rate = _rate_of(seq, None)
        if rate is None:
            raise TimelineReadError(f"{self.name}: the sequence {name!r} has no <rate>; export it again from the NLE.")
        tl = otio.schema.Timeline(name=name)
        tc = seq.kid("timecode")
        native = _native(rate)
        if tc is not None:
            frame, tc_rate, _ = self.timecode(tc, rate, f"{self.name}: the sequence {name!r}")
            tl.global_start_time = _RT(float(frames_between_rates(frame, tc_rate, rate)), native)
        else:
            tl.global_start_time = _RT(0, native)
        for track in self.tracks(seq, rate, "", ("video", "audio"), f"{self.name}: sequence {name!r}", shared=0):
            tl.tracks.append(track)
        for m in seq.kids("marker"):
            tl.tracks.markers.append(self.marker(m, Fraction(0), rate))
        return tl

    def timecode(self, node: XmlNode, fallback: Fraction | None, what: str) -> tuple[int, Fraction, bool]:
        if node.start not in self._timecodes:
            self._timecodes[node.start] = _timecode(node, fallback, what, self.notes)
        return self._timecodes[node.start]

    def tracks(self, seq: XmlNode, rate: Fraction, prefix: str, kinds: tuple[str, ...], where: str, shared: int) -> list[otio.schema.Track]:
        media = seq.kid("media")
        out = []
        if media is None:
            return out
        for kind in kinds:
            holder = media.kid(kind)
            if holder is None:
                continue
            otio_kind = otio.schema.TrackKind.Video if kind == "video" else otio.schema.TrackKind.Audio
            for n, track in enumerate(holder.kids("track"), 1):
                label = f"{where}, track {'V' if kind == 'video' else 'A'}{n}"
                out.append(self.track(track, otio_kind, rate, prefix, label, shared))
        return out

    def track(self, node: XmlNode, kind: str, rate: Fraction, prefix: str, where: str, shared: int) -> otio.schema.Track:
        track = otio.schema.Track(name=node.attrs.get("MZ.TrackName", ""), kind=kind)
        track.enabled = _flag(node.text_of("enabled"), True)
        native = _native(rate)
        items = [c for c in node.children if c.tag in _ITEMS]
        timings = _timings(items, rate, where)
        overlap = _clamp_overlaps(items, timings)
        if overlap:
            self.notes.append(f"{where}: clip items run into the next one ({overlap} frame(s) in all; Premiere writes a "
                              "sound clip's end through the transition on its linked picture); each was read as ending "
                              "where the next one starts.")
        cursor = 0
        for node_i, (item, timing) in enumerate(zip(items, timings)):
            what = f"{where}, {_describe(item)}"
            if item.tag == "transitionitem":
                if timing.cut > cursor:
                    track.append(otio.schema.Gap(source_range=_TR(_RT(0, native), _RT(timing.cut - cursor, native))))
                    cursor = timing.cut
                elif timing.cut < cursor:
                    raise TimelineReadError(f"{what} cuts at frame {timing.cut}, inside the clip before it (which ends at "
                                            f"{cursor}); export the timeline again from the NLE.")
                transition = otio.schema.Transition(
                    name=_effect_name(item) or "Cross Dissolve",
                    transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve
                    if "dissolve" in (_effect_name(item) or "dissolve").lower() else otio.schema.TransitionTypes.Custom,
                    in_offset=_RT(timing.cut - timing.start, native), out_offset=_RT(timing.end - timing.cut, native))
                _stamp(transition, _element_id(prefix, item), kind="transitionitem")
                track.append(transition)
                continue
            if timing.start < cursor:
                raise TimelineReadError(f"{what} starts at frame {timing.start}, before the item before it ends ({cursor}): "
                                        "clip items on one track overlap; export the timeline again from the NLE.")
            if timing.start > cursor:
                track.append(otio.schema.Gap(source_range=_TR(_RT(0, native), _RT(timing.start - cursor, native))))
            track.append(self.item(item, timing, rate, prefix, kind, what, shared))
            cursor = timing.end
        _stamp(track, _element_id(prefix, node), kind="track")
        return track

    def media(self, item: XmlNode, seq_rate: Fraction, what: str) -> _ClipMedia:
        clip_rate = _rate_of(item, seq_rate)
        scalar, effect, media_in = _speed(item)
        length_text = item.text_of("duration")
        length = Fraction(_int(length_text, f"{what}: <duration>")) if length_text not in (None, "") else None
        file_ref = item.kid("file")
        nest = self.files.sequence(item.kid("sequence")) if item.tag == "clipitem" else None
        file = self.files.file(file_ref)
        if file_ref is not None and file is None:
            raise TimelineReadError(f"{what} refers to <file id={file_ref.attrs.get('id')!r}>, which the file never "
                                    "defines; export the timeline again from the NLE.")
        origin = Fraction(0)
        if file is not None:
            tc = file.kid("timecode")
            if tc is not None:
                label = f"{what}: its media {file.text_of('name') or file.attrs.get('id', '')!r}"
                frame, tc_rate, _ = self.timecode(tc, _rate_of(file, clip_rate), label)
                origin = frames_between_rates(frame, tc_rate, clip_rate)
        return _ClipMedia(clip_rate, origin, scalar, effect, media_in, length, file,
                          file_ref.attrs.get("id") if file_ref is not None else None, nest)

    def item(self, item: XmlNode, timing: _Timing, seq_rate: Fraction, prefix: str, kind: str, what: str, shared: int):
        m = self.media(item, seq_rate, what)
        native = _native(m.clip_rate)
        name = item.text_of("name") or ""
        element = _element_id(prefix, item)
        in_frames = Fraction(_int(item.text_of("in", "0") or "0", f"{what}: <in>"))
        to_clip = m.clip_rate / seq_rate
        head = timing.head * to_clip
        duration = (timing.end - timing.start) * to_clip
        if m.nest is not None:
            nest_rate = _rate_of(m.nest, m.clip_rate)
            nest_name = m.nest.text_of("name") or name
            uses = self.files.uses.get((m.nest.attrs.get("id", ""), "video" if kind == otio.schema.TrackKind.Video else "audio"), 1)
            stack = otio.schema.Stack(name=name or nest_name)
            kinds = ("video",) if kind == otio.schema.TrackKind.Video else ("audio",)
            for t in self.tracks(m.nest, nest_rate, element + "/", kinds, f"{what} (nested sequence {nest_name!r})",
                                 max(shared, uses if uses > 1 else 0)):
                stack.append(t)
            stack.source_range = _TR(_RT(float(in_frames + head), native), _RT(float(duration), native))
            stack.enabled = _flag(item.text_of("enabled"), True)
            _stamp(stack, element, kind="nest", xml_id=item.attrs.get("id", ""), shared=shared)
            return stack
        start = m.origin + (Fraction(m.media_in) if m.media_in is not None else in_frames * m.scalar) + head * m.scalar
        clip = otio.schema.Clip(name=name, source_range=_TR(_RT(float(start), native), _RT(float(duration), native)))
        clip.enabled = _flag(item.text_of("enabled"), True)
        available = None
        if m.length is not None:
            available = _TR(_RT(float(m.origin), native), _RT(float(m.length * abs(m.scalar)), native))
        clip.media_reference = self.reference(item, m, available, what)
        if m.effect is not None:
            clip.effects.append(m.effect)
        for marker in item.kids("marker"):
            clip.markers.append(self.marker(marker, m.origin, m.clip_rate))
        meta = {HINTS: [h for h in ((m.file.text_of("name") if m.file is not None else None), name) if h]}
        record = _record_of(item)
        if record is not None:
            self.retaken(clip, record, m, item, what)
            meta.update(clip.metadata.get(NS, {}))
        clip.metadata[NS] = meta
        _stamp(clip, element, kind=item.tag, xml_id=item.attrs.get("id", ""), shared=shared)
        return clip

    def reference(self, item: XmlNode, m: _ClipMedia, available, what: str):
        if item.tag == "generatoritem" or m.file is None:
            effect = item.kid("effect")
            if item.tag == "generatoritem" or effect is not None:
                kind = (effect.text_of("effectid") or effect.text_of("name")) if effect is not None else "generator"
                return otio.schema.GeneratorReference(name=item.text_of("name") or "", generator_kind=kind or "generator",
                                                      available_range=available)
            return otio.schema.MissingReference(name=item.text_of("name") or "", available_range=available)
        return self.file_reference(m.file, available)

    def file_reference(self, file: XmlNode, available):
        url = file.text_of("pathurl")
        name = file.text_of("name") or ""
        if url:
            ref = otio.schema.ExternalReference(target_url=url, available_range=available)
            ref.name = name
            own = _rate_of(file.kid("rate"), None)
            if own:  # the media's own rate as the file says it: what a relinked file must run at
                ref.metadata[NS] = {"media_rate": str(own)}
            return ref
        source = file.text_of("mediaSource")
        if source:
            return otio.schema.GeneratorReference(name=name, generator_kind=source, available_range=available)
        return otio.schema.MissingReference(name=name, available_range=available)

    def marker(self, node: XmlNode, origin: Fraction, rate: Fraction) -> otio.schema.Marker:
        native = _native(rate)
        at = _int(node.text_of("in", "0") or "0", "A marker's <in>")
        out = _int(node.text_of("out", "-1") or "-1", "A marker's <out>")
        length = out - at if out > at else 0
        return otio.schema.Marker(name=node.text_of("name") or "", comment=node.text_of("comment") or "",
                                  marked_range=_TR(_RT(float(origin + at), native), _RT(length, native)))

    def retaken(self, clip: otio.schema.Clip, record: dict, m: _ClipMedia, item: XmlNode, what: str) -> None:
        """Rebuild a clip ltx-retake wrote: the original media as DEFAULT_MEDIA, every version, the one shown."""
        native = _native(m.clip_rate)
        original = record.get("original") or {}
        versions = record.get("versions") or {}
        meta = dict(record.get("meta") or {})
        refs: dict[str, otio.core.MediaReference] = {}
        shown = None
        file = self.files.files.get(original["file"]) if original.get("file") else None
        if file is None and original.get("file_xml"):   # no clip item uses the original media any more (or it has no id)
            file = _loose_file(original["file_xml"], self.name)
        if file is not None:
            origin = m.origin
            tc = file.kid("timecode")
            if tc is not None:
                frame, tc_rate, _ = _timecode(tc, _rate_of(file, m.clip_rate), what, [])
                origin = frames_between_rates(frame, tc_rate, m.clip_rate)
            length = Fraction(original.get("length") or 0)
            available = _TR(_RT(float(origin), native), _RT(float(length * abs(m.scalar)), native))
            refs[otio.schema.Clip.DEFAULT_MEDIA_KEY] = self.file_reference(file, available)
            if m.file_id == original.get("file"):      # the clip item shows its original media (both without id: too)
                shown = otio.schema.Clip.DEFAULT_MEDIA_KEY
        for key, v in versions.items():
            start, frames, rate = v["range"]
            ref = otio.schema.ExternalReference(target_url=v["path"],
                                                available_range=_TR(_RT(start, rate), _RT(frames, rate)))
            ref.name = f"{shot_name(meta.get('original_name') or clip.name)}_{key}"
            ref.metadata[NS] = dict((meta.get("versions") or {}).get(key, {}))
            refs[key] = ref
            if shown is None and m.file_id and m.file_id == v.get("file"):
                shown = key
        if shown is None:
            self.notes.append(f"{what} carries an ltx-retake record that does not match the media it shows; it was read "
                              "as a plain clip (its other versions are not offered).")
            return
        if shown != otio.schema.Clip.DEFAULT_MEDIA_KEY:
            # the clip's source times count from the version file's own first frame (its available range)
            first = refs[shown].available_range.start_time.rescaled_to(native).value
            offset = clip.source_range.start_time.value - float(m.origin)
            clip.source_range = _TR(_RT(first + offset, native), clip.source_range.duration)
        if otio.schema.Clip.DEFAULT_MEDIA_KEY not in refs:
            refs[otio.schema.Clip.DEFAULT_MEDIA_KEY] = otio.schema.MissingReference(name=meta.get("original_name", ""))
        clip.set_media_references(refs, shown)
        clip.metadata[NS] = meta


def _loose_file(text: str, name: str) -> XmlNode | None:
    """A `<file>` element kept in a record (its media no longer used by any clip item), parsed on its own."""
    try:
        doc = parse_xmeml(f"<xmeml>{text}</xmeml>".encode("utf-8"), name)
    except TimelineReadError:
        return None
    return doc.root.kid("file")


def _effect_name(item: XmlNode) -> str | None:
    effect = item.kid("effect")
    return (effect.text_of("name") or effect.text_of("effectid")) if effect is not None else None


def read(data: bytes, path: Path, options: ReadOptions, media_rate) -> tuple[list[otio.schema.Timeline], list[str]]:
    """Every sequence of the file as a timeline (nested sequences stay nests inside them), and notes for the editor."""
    name = Path(path).name
    doc = parse_xmeml(data, name)
    notes: list[str] = []
    timelines = _Reader(doc, name, notes).timelines()
    seen: list[str] = []
    for note in notes:
        if note not in seen:
            seen.append(note)
    return timelines, seen


# --- writing -----------------------------------------------------------------------------------------------------

class _FileUse:
    """A `<file>` in the output: its definition where its id is first used in the file, a reference after."""

    __slots__ = ("ident", "indent", "original", "defines")

    def __init__(self, ident: str, indent: str, original: bytes | None = None, defines: bool = False):
        self.ident, self.indent, self.original, self.defines = ident, indent, original, defines


def _reindent(text: str, old: str, new: str) -> str:
    """Text written at indentation `old` (its first line unindented) moved to indentation `new`."""
    if old == new:
        return text
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        out.append(new + line[len(old):] if line.startswith(old) else line)
    return "\n".join(out)


def _file_url(path: str, localhost: bool) -> str:
    """A version's absolute path as a file URL, spelled as Premiere spells them (file://localhost/C%3a/...)."""
    p = str(path).replace("\\", "/")
    drive = re.match(r"^([A-Za-z]):/", p)
    if drive:
        p = "/" + p
    quoted = quote(p, safe="/'()!*,;=+$@~&")
    if drive:
        quoted = re.sub(r"^/([A-Za-z])%3A/", r"/\1%3a/", quoted)
    return ("file://localhost" if localhost else "file://") + quoted


def _frames(value: float | Fraction, what: str) -> int:
    """A count that must be whole frames (a retake's edges fall on frames of the clip's own rate)."""
    f = Fraction(value).limit_denominator(1_000_000) if not isinstance(value, Fraction) else value
    n = round(f)
    if abs(f - n) > Fraction(1, 1000):
        raise InputError(f"{what} falls between frames ({float(f):.3f}); the clip's rate cannot hold it. Retake a range "
                         "that starts and ends on the clip's own frames, or write .otio.")
    return int(n)


def _value(t: otio.opentime.RationalTime, rate: Fraction) -> Fraction:
    return Fraction(t.rescaled_to(_native(rate)).value).limit_denominator(1_000_000)


def _plain(obj):
    """OTIO metadata (AnyDictionary, AnyVector) as plain JSON values."""
    if hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or type(obj).__name__ == "AnyVector":
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


@dataclass
class _Element:
    """A clip item of the file and what stands for it now."""

    node: XmlNode
    pieces: list                    # origin.Piece, in track order
    timing: _Timing
    media: _ClipMedia
    seq_rate: Fraction
    shown: str = otio.schema.Clip.DEFAULT_MEDIA_KEY   # the media key the element shows as written
    ids: list[str] = field(default_factory=list)


@dataclass
class _Placed:
    """A clip no element stands for: a retake placed above, on an existing or a new track."""

    clip: otio.schema.Clip
    track_index: int
    record: otio.opentime.TimeRange
    track_node: XmlNode | None
    ident: str = ""


class _Writer:
    def __init__(self, doc: _Doc, timeline: otio.schema.Timeline, name: str):
        self.doc, self.timeline, self.name = doc, timeline, name
        self.by_start = {n.start: n for n in doc.nodes}
        self.reader = _Reader(doc, name, [])
        self.files = self.reader.files
        self.localhost = b"file://localhost/" in doc.data
        ids = [n.attrs["id"] for n in doc.nodes if "id" in n.attrs]
        ids += [n.text.strip() for n in doc.nodes if n.tag == "masterclipid" and n.text.strip()]
        self.taken = set(ids)
        self.next_number: dict[str, int] = {}
        for ident in ids:
            m = re.match(r"^(.*?)-(\d+)$", ident)
            if m:
                self.next_number[m.group(1)] = max(self.next_number.get(m.group(1), 0), int(m.group(2)))
        self.defs: dict[str, tuple[str, str]] = {}      # file id -> (its definition's text, the indentation it is at)
        for ident, node in self.files.files.items():
            self.defs[ident] = (doc.bytes_of(node).decode(doc.codec), doc.indent_of(node))
        self.versions: dict[str, tuple[str, str]] = {}  # version path -> (file id, masterclip id)
        self.unit = self._indent_unit()

    # ids and indentation
    def new_id(self, prefix: str) -> str:
        while True:
            n = self.next_number.get(prefix, 0) + 1
            self.next_number[prefix] = n
            ident = f"{prefix}-{n}"
            if ident not in self.taken:
                self.taken.add(ident)
                return ident

    def claim(self, ident: str | None) -> str | None:
        """`ident` when no element of the file uses it (it becomes taken), else None."""
        if not ident or ident in self.taken:
            return None
        self.taken.add(ident)
        return ident

    def _indent_unit(self) -> str:
        for node in self.doc.nodes:
            if node.children and node.parent is not None:
                outer, inner = self.doc.indent_of(node), self.doc.indent_of(node.children[0])
                if inner.startswith(outer) and len(inner) > len(outer):
                    return inner[len(outer):]
        return "\t"

    def text(self, node: XmlNode) -> str:
        return self.doc.bytes_of(node).decode(self.doc.codec)

    def removal(self, start: int, end: int) -> tuple[int, int]:
        """The span to delete for an element or comment, with the line break and indentation before it."""
        data = self.doc.data
        line = data.rfind(b"\n", 0, start)
        if line >= 0 and not data[line + 1:start].strip():
            if line > 0 and data[line - 1:line] == b"\r":
                line -= 1
            return line, end
        return start, end

    # the plan
    def elements(self) -> tuple[dict[XmlNode, _Element], list[_Placed]]:
        changed: dict[XmlNode, _Element] = {}
        seen: dict[XmlNode, str] = {}
        for element_id, pieces in pieces_by_origin(self.timeline).items():
            node = _node_of(self.by_start, element_id)
            if node is None:
                raise InputError(f"{self.name}: the timeline holds an item that is not in this file ({element_id}); "
                                 "write .otio instead.")
            if len(pieces) == 1 and unchanged(pieces[0].item):
                continue
            what = _describe(node)
            if node.tag not in _CLIPS or not all(isinstance(p.item, otio.schema.Clip) for p in pieces):
                raise InputError(f"{self.name}: {what} was changed in a way FCP7 XML cannot be edited to hold (only "
                                 "clips are split and given versions); write .otio instead.")
            if node in seen:
                raise InputError(f"{self.name}: {what} lies in a nested sequence the file uses more than once; a retake "
                                 "there would change every use. Retake it in the nested sequence itself, or write .otio.")
            seen[node] = element_id
            track = node.parent
            seq = track.parent.parent.parent
            seq_rate = _rate_of(seq, None)
            items = [c for c in track.children if c.tag in _ITEMS]
            timings = _timings(items, seq_rate, self.name)
            _clamp_overlaps(items, timings)
            timing = timings[items.index(node)]
            media = self.reader.media(node, seq_rate, what)
            kind = otio.schema.TrackKind.Video if track.parent.tag == "video" else otio.schema.TrackKind.Audio
            as_read = self.reader.item(node, timing, seq_rate, "", kind, what, 0)
            shown = getattr(as_read, "active_media_reference_key", otio.schema.Clip.DEFAULT_MEDIA_KEY)
            changed[node] = _Element(node, pieces, timing, media, seq_rate, shown)
        placed = []
        for ti, track in enumerate(self.timeline.tracks):
            track_origin = origin_of(track)
            track_node = _node_of(self.by_start, track_origin["id"]) if track_origin else None
            ranges = None
            for i, item in enumerate(track):
                if isinstance(item, otio.schema.Clip) and origin_of(item) is None:
                    if ranges is None:
                        ranges = track.range_of_all_children()
                    placed.append(_Placed(item, ti, ranges[item], track_node))
        return changed, placed

    def write(self) -> bytes:
        changed, placed = self.elements()
        if not changed and not placed:
            return self.doc.data
        for element in changed.values():
            original = element.node.attrs.get("id")
            element.ids = [original or self.new_id("clipitem")] + [self.new_id("clipitem") for _ in element.pieces[1:]]
        for p in placed:
            p.ident = self.new_id("clipitem")
        self.changed, self.placed = changed, placed
        self.piece_of = {id(p.item): (e, i) for e in changed.values() for i, p in enumerate(e.pieces)}
        self.by_xml_id = {}
        for n in self.doc.nodes:
            if n.tag in _CLIPS and "id" in n.attrs:
                self.by_xml_id.setdefault(n.attrs["id"], n)
        self.new_tracks: dict[int, list[_Placed]] = {}
        self.track_lists: dict[int, list] = {}
        edits: list[tuple[int, int, list]] = []
        for element in changed.values():
            edits.append((element.node.start, element.node.end, self.render_element(element)))
        edits.extend(self.render_placed())
        edits.sort(key=lambda e: (e[0], e[1]))
        return self.assemble(edits)

    # final places of items on tracks (for <clipindex>)
    def track_list(self, track: XmlNode) -> list:
        """The track's items as the output will hold them: nodes, and (element, piece index) for split clips."""
        if track.start not in self.track_lists:
            out: list = []
            for c in track.children:
                if c.tag not in _ITEMS:
                    continue
                element = self.changed.get(c)
                if element is None:
                    out.append(c)
                else:
                    out.extend((element, i) for i in range(len(element.pieces)))
            for p in self.placed:
                if p.track_node is track:
                    out.insert(self.insert_index(track, p), p)
            self.track_lists[track.start] = out
        return self.track_lists[track.start]

    def clip_index(self, track: XmlNode, key) -> int:
        for i, entry in enumerate(self.track_list(track), 1):
            if entry is key or (isinstance(entry, tuple) and isinstance(key, tuple) and entry[0] is key[0] and entry[1] == key[1]):
                return i
        raise InputError(f"{self.name}: lost track of a clip item while rebuilding links; please report this with the file.")

    def insert_index(self, track: XmlNode, placed: _Placed) -> int:
        """How many of the track's items lie before a placed clip (by their record start)."""
        seq_rate = _rate_of(track.parent.parent.parent, None)
        items = [c for c in track.children if c.tag in _ITEMS]
        timings = _timings(items, seq_rate, self.name)
        start = _frames(_value(placed.record.start_time, seq_rate), "The retake's start")
        return sum(1 for t in timings if t.start < start)

    # rendering one clip item
    def piece_span(self, element: _Element, index: int) -> tuple[int, int]:
        piece = element.pieces[index]
        rng = piece.parent.range_of_child_at_index(piece.index)
        what = f"{self.name}: the retake of {_describe(element.node)}"
        return (_frames(_value(rng.start_time, element.seq_rate), f"{what}: its start"),
                _frames(_value(rng.end_time_exclusive(), element.seq_rate), f"{what}: its end"))

    def original_facts(self, node: XmlNode, media: _ClipMedia) -> dict:
        """The element's own media: its file id, length and master clip (from its record when we wrote it)."""
        record = _record_of(node)
        if record is not None and record.get("original"):
            return dict(record["original"])
        file_id = media.file_id
        facts = {"file": file_id, "length": node.text_of("duration"), "masterclipid": node.text_of("masterclipid")}
        if file_id and file_id in self.defs:
            text, indent = self.defs[file_id]
            facts["file_xml"] = _reindent(text, indent, "")
        elif not file_id and media.file is not None:  # a <file> written in full, without an id (Final Cut Pro 7 may)
            facts["file_xml"] = _reindent(self.text(media.file), self.doc.indent_of(media.file), "")
        return facts

    def render_element(self, element: _Element) -> list:
        node = element.node
        indent = self.doc.indent_of(node)
        out: list = []
        for i, piece in enumerate(element.pieces):
            if i:
                out.append(self.doc.newline + indent)
            start, end = self.piece_span(element, i)
            out.extend(self.render_clip(node, piece.item, element, i, start, end, element.ids[i], indent))
        return out

    def render_clip(self, node: XmlNode, clip: otio.schema.Clip, element: _Element | None, index: int,
                    start: int, end: int, ident: str, indent: str, media: _ClipMedia | None = None) -> list:
        """A copy of `node`'s text standing for `clip` over record frames [start, end): only what differs rewritten."""
        media = media or element.media
        timing = element.timing if element is not None else None
        pieces = element.pieces if element is not None else [None]
        first, last = index == 0, index == len(pieces) - 1
        what = f"{self.name}: the retake of {_describe(node)}"
        key = clip.active_media_reference_key
        original = key == otio.schema.Clip.DEFAULT_MEDIA_KEY
        ref = clip.media_reference
        facts = self.original_facts(node, media)
        scalar = abs(media.scalar)
        rate = media.clip_rate
        available = getattr(ref, "available_range", None)
        origin = _value(available.start_time, rate) if available is not None else media.origin
        src = _value(clip.source_range.start_time, rate)
        length = _value(clip.source_range.duration, rate)
        at = (src - origin) / scalar
        same = element is not None and key == element.shown      # the piece shows what the element showed
        keep_start = same and first and start == timing.start
        keep_end = same and last and end == timing.end
        if not original and timing is not None and ((first and start == timing.start and timing.start_cut)
                                                    or (last and end == timing.end and timing.end_cut)):
            raise InputError(f"{what} would put the version against a transition; retake a range clear of the dissolve.")
        edits: list[tuple[int, int, object]] = []
        data = self.doc.data

        def child_text(tag: str, value: str) -> None:
            c = node.kid(tag)
            if c is None:
                return
            if c.text.strip() == value:
                return
            payload = escape(value)
            if c.empty:
                edits.append((c.start, c.end, f"<{tag}>{payload}</{tag}>"))
            else:
                edits.append((c.open_end, c.close_start, payload))

        # the id attribute
        tag_text = data[node.start:node.open_end]
        m = re.search(rb'\sid\s*=\s*(["\'])(.*?)\1', tag_text)
        if m:
            if m.group(2).decode(self.doc.codec) != ident:
                edits.append((node.start + m.start(2), node.start + m.end(2), escape(ident, {'"': "&quot;"})))
        else:
            at_name = node.start + 1 + len(node.tag.encode(self.doc.codec))
            edits.append((at_name, at_name, f' id="{ident}"'))
        child_text("name", clip.name)
        child_text("enabled", "TRUE" if clip.enabled else "FALSE")
        if not keep_start:
            child_text("start", str(start))
        if not keep_end:
            child_text("end", str(end))
        in_value = out_value = None
        if not keep_start:
            in_value = _frames(at, f"{what}: its in point")
            child_text("in", str(in_value))
        if not keep_end:
            out_value = _frames(at + length, f"{what}: its out point")
            child_text("out", str(out_value))
        for tag, value in (("pproTicksIn", in_value), ("pproTicksOut", out_value)):
            if value is not None and node.kid(tag) is not None:
                child_text(tag, str(round(Fraction(value) * scalar * TICKS_PER_SECOND / rate)))
        if original:
            if facts.get("length"):
                child_text("duration", str(facts["length"]))
            if facts.get("masterclipid"):
                child_text("masterclipid", str(facts["masterclipid"]))
        else:
            child_text("duration", str(_frames(_value(available.duration, rate) / scalar, f"{what}: its version's length")))
        # the media
        file_node = node.kid("file")
        if original:
            use = self.file_use(facts.get("file"), file_node, node)
            if use is None and file_node is not None and facts.get("file_xml") and _record_of(node) is not None:
                use = _reindent(facts["file_xml"], "", self.doc.indent_of(file_node))  # back to the original's own
        else:
            ident_v, master = self.version_file(ref, media, facts, node, what)
            child_text("masterclipid", master)
            use = _FileUse(ident_v, self.doc.indent_of(file_node) if file_node is not None else indent + self.unit)
        if file_node is not None and use is not None:
            edits.append((file_node.start, file_node.end, use))
        # links, markers and the record
        links = node.kids("link")
        if links:
            rebuilt = self.links(node, element, index, links) if element is not None else []
            for i, link in enumerate(links):
                if i == 0 and rebuilt:
                    edits.append((link.start, link.end, rebuilt))
                else:
                    a, b = self.removal(link.start, link.end)
                    edits.append((a, b, ""))
        shift = (self.shown_origin(node, media) - origin) / scalar
        low = -math.inf if keep_start else at            # the first and last pieces keep the markers in the handles
        high = math.inf if keep_end else at + length
        for marker in node.kids("marker"):
            m_in = Fraction(_int(marker.text_of("in", "0"), "A marker's <in>")) + shift
            if element is None or not (low <= m_in < high):
                a, b = self.removal(marker.start, marker.end)
                edits.append((a, b, ""))
            elif shift:
                edits.append(self.child_edit(marker, "in", str(_frames(m_in, f"{what}: a marker"))))
                m_out = _int(marker.text_of("out", "-1"), "A marker's <out>")
                if m_out >= 0:
                    edits.append(self.child_edit(marker, "out", str(_frames(m_out + shift, f"{what}: a marker"))))
        for c_start, c_end, text in node.comments:
            if text.strip().startswith(RECORD + " "):
                a, b = self.removal(c_start, c_end)
                edits.append((a, b, ""))
        meta = clip.metadata.get(NS) or {}
        if "versions" in meta:
            record = self.record(clip, facts, media, node)
            last_end = max([c.end for c in node.children] + [e for _, e, _ in node.comments] + [node.open_end])
            child_indent = self.doc.indent_of(node.children[0]) if node.children else indent + self.unit
            edits.append((last_end, last_end, self.doc.newline + child_indent + _record_text(record)))
        return self.apply(node.start, node.end, edits)

    def shown_origin(self, node: XmlNode, media: _ClipMedia) -> Fraction:
        """Where the media the element shows as written starts, in its clip's frames (a version's, from its record)."""
        record = _record_of(node)
        for v in ((record or {}).get("versions") or {}).values():
            if media.file_id and v.get("file") == media.file_id:
                start, _, rate = v["range"]
                return Fraction(_RT(start, rate).rescaled_to(_native(media.clip_rate)).value).limit_denominator(1_000_000)
        return media.origin

    def child_edit(self, node: XmlNode, tag: str, value: str) -> tuple[int, int, str]:
        c = node.kid(tag)
        return (c.open_end, c.close_start, escape(value))

    def apply(self, start: int, end: int, edits: list) -> list:
        """The bytes [start, end) with `edits` (start, end, str | _FileUse | list) applied, as output segments."""
        out: list = []
        at = start
        for a, b, payload in sorted(edits, key=lambda e: (e[0], e[1])):
            if a < at:
                continue  # inside an edit already made (a removed element's children)
            out.append(self.doc.data[at:a])
            if isinstance(payload, list):
                out.extend(payload)
            elif isinstance(payload, _FileUse):
                out.append(payload)
            elif payload:
                out.append(payload.encode(self.doc.codec, "xmlcharrefreplace") if isinstance(payload, str) else payload)
            at = b
        out.append(self.doc.data[at:end])
        return out

    def file_use(self, ident: str | None, file_node: XmlNode | None, node: XmlNode) -> _FileUse | None:
        if file_node is None:
            return None
        if not ident:
            return None  # a <file> without an id stays as written
        indent = self.doc.indent_of(file_node)
        if ident not in self.defs:
            record = _record_of(node)
            text = ((record or {}).get("original") or {}).get("file_xml")
            if text:
                self.defs[ident] = (text, "")
        return _FileUse(ident, indent)

    def version_file(self, ref, media: _ClipMedia, facts: dict, node: XmlNode, what: str) -> tuple[str, str]:
        """The version's `<file>` (id, defined once) and master clip id, made from the original's description."""
        path = str(getattr(ref, "target_url", "") or "")
        if not path or ref.available_range is None:
            raise InputError(f"{what}: the version has no file or no range; write .otio instead.")
        if path in self.versions:
            return self.versions[path]
        for ident, (text, _) in self.defs.items():  # a version this file already holds (a second write)
            if f"<pathurl>{escape(_file_url(path, self.localhost))}</pathurl>" in text:
                master = self._master_of(ident)
                self.versions[path] = (ident, master)
                return ident, master
        before = next((v for v in ((_record_of(node) or {}).get("versions") or {}).values() if v.get("path") == path), {})
        ident = self.claim(before.get("file")) or self.new_id("file")       # the ids it had when we wrote it last
        master = self.claim(before.get("masterclipid")) or self.new_id("masterclip")
        self.versions[path] = (ident, master)
        original = _loose_file(facts["file_xml"], self.name) if facts.get("file_xml") else None
        provenance = getattr(ref, "metadata", {}).get(NS) or {}
        rate = None
        try:
            rate = exact_rate(Fraction(str((provenance.get("source_range") or {}).get("rate"))))
        except (TypeError, ValueError, ZeroDivisionError, InputError):
            rate = None
        if rate is None:
            rate = _rate_of(original, None) if original is not None else None
        rate = rate or media.clip_rate
        clip_rate = media.clip_rate
        first = _frames(frames_between_rates(_value(ref.available_range.start_time, clip_rate), clip_rate, rate),
                        f"{what}: the version's first frame")
        count = _frames(frames_between_rates(_value(ref.available_range.duration, clip_rate), clip_rate, rate),
                        f"{what}: the version's length")
        tc = original.kid("timecode") if original is not None else None
        df = is_drop_frame_rate(rate) and tc is not None and (tc.text_of("displayformat") or "").upper() == "DF"
        string = format_timecode(first, rate, df)
        if df:
            string = string.replace(":", ";")
        base, ntsc = _rate_xml(rate)
        u, nl = self.unit, self.doc.newline
        rate_xml = f"<rate>{nl}{{i}}{u}<timebase>{base}</timebase>{nl}{{i}}{u}<ntsc>{'TRUE' if ntsc else 'FALSE'}</ntsc>{nl}{{i}}</rate>"
        lines = [f'<file id="{ident}">',
                 f"{u}<name>{escape(Path(path).name)}</name>",
                 f"{u}<pathurl>{escape(_file_url(path, self.localhost))}</pathurl>",
                 u + rate_xml.format(i=u),
                 f"{u}<duration>{count}</duration>",
                 f"{u}<timecode>",
                 u + u + rate_xml.format(i=u + u),
                 f"{u}{u}<string>{string}</string>",
                 f"{u}{u}<frame>{first}</frame>",
                 f"{u}{u}<displayformat>{'DF' if df else 'NDF'}</displayformat>"]
        if tc is not None and tc.kid("reel") is not None:
            reel = tc.kid("reel")
            lines.append(u + u + _loose_text(facts["file_xml"], reel, u + u))
        lines.append(f"{u}</timecode>")
        if original is not None and original.kid("media") is not None:
            lines.append(u + _loose_text(facts["file_xml"], original.kid("media"), u))
        lines.append("</file>")
        self.defs[ident] = (nl.join(lines), "")
        return ident, master

    def _master_of(self, file_id: str) -> str:
        for n in self.doc.nodes:
            if n.tag == "clipitem":
                f = n.kid("file")
                if f is not None and f.attrs.get("id") == file_id and n.text_of("masterclipid"):
                    return n.text_of("masterclipid")
        return self.new_id("masterclip")

    def record(self, clip: otio.schema.Clip, facts: dict, media: _ClipMedia, node: XmlNode) -> dict:
        meta = _plain(clip.metadata.get(NS) or {})
        meta.pop("origin", None)
        meta.pop(HINTS, None)
        versions = {}
        for key, ref in clip.media_references().items():
            if key == otio.schema.Clip.DEFAULT_MEDIA_KEY:
                continue
            rng = ref.available_range
            ident, master = self.version_file(ref, media, facts, node, f"{self.name}: the retake of {_describe(node)}")
            versions[key] = {"path": str(ref.target_url), "file": ident, "masterclipid": master,
                             "range": [rng.start_time.value, rng.duration.value, rng.start_time.rate]}
        original = {k: facts.get(k) for k in ("file", "length", "masterclipid", "file_xml") if facts.get(k) is not None}
        return {"v": 1, "meta": meta, "original": original, "versions": versions}

    def links(self, node: XmlNode, element: _Element, index: int, links: list[XmlNode]) -> list:
        """The piece's `<link>`s: to the pieces of split linked clips over its record span, others as written."""
        me = element.pieces[index]
        lo, hi = me.record.start_time.to_seconds(), me.record.end_time_exclusive().to_seconds()
        out: list = []
        indent = self.doc.indent_of(links[0])
        for link in links:
            target = self.by_xml_id.get(link.text_of("linkclipref") or "")
            other = self.changed.get(target) if target is not None else None
            if other is None:
                chunk = self.doc.bytes_of(link)
                out.append(chunk)
                out.append((self.doc.newline + indent).encode(self.doc.codec))
                continue
            # the piece of the linked clip that lies most under this one (a clip at another rate than its sound
            # splits a frame apart from it: 15 fps picture over 30 fps sound)
            overlaps = [min(hi, p.record.end_time_exclusive().to_seconds()) - max(lo, p.record.start_time.to_seconds())
                        for p in other.pieces]
            best = max(range(len(overlaps)), key=lambda j: overlaps[j])
            for j in ([best] if overlaps[best] > 1e-6 else []):
                edits = [self.child_edit(link, "linkclipref", other.ids[j])]
                if link.kid("clipindex") is not None:
                    edits.append(self.child_edit(link, "clipindex", str(self.clip_index(other.node.parent, (other, j)))))
                out.extend(self.apply(link.start, link.end, edits))
                out.append((self.doc.newline + indent).encode(self.doc.codec))
        return out[:-1]

    # retakes placed above
    def render_placed(self) -> list[tuple[int, int, list]]:
        edits = []
        new_tracks: dict[int, list[_Placed]] = {}
        for p in self.placed:
            if p.track_node is None:
                new_tracks.setdefault(p.track_index, []).append(p)
                continue
            track = p.track_node
            source, media = self.source_of(p)
            start, end = self.placed_span(p, track)
            items = [c for c in track.children if c.tag in _ITEMS]
            k = self.insert_index(track, p)
            body_indent = self.doc.indent_of(items[0]) if items else self.doc.indent_of(track) + self.unit
            clip = self.render_clip(source, p.clip, None, 0, start, end, p.ident, self.doc.indent_of(source), media)
            clip = self.moved(clip, self.doc.indent_of(source), body_indent)
            nl = (self.doc.newline + body_indent).encode(self.doc.codec)
            if k < len(items):
                edits.append((items[k].start, items[k].start, clip + [nl]))
            elif items:
                edits.append((items[-1].end, items[-1].end, [nl] + clip))
            else:
                at = track.children[0].start if track.children else track.open_end
                edits.append((at, at, clip + [nl]) if track.children else (at, at, [nl] + clip))
        for ti, group in new_tracks.items():
            edits.append(self.new_track(ti, group))
        return edits

    def moved(self, segments: list, old: str, new: str) -> list:
        if old == new:
            return segments
        out = []
        for s in segments:
            if isinstance(s, bytes):
                out.append(_reindent(s.decode(self.doc.codec), old, new).encode(self.doc.codec))
            elif isinstance(s, _FileUse):
                out.append(_FileUse(s.ident, new + s.indent[len(old):] if s.indent.startswith(old) else s.indent,
                                    s.original, s.defines))
            else:
                out.append(s)
        return out

    def placed_span(self, p: _Placed, track_node: XmlNode | None) -> tuple[int, int]:
        seq = self.sequence_node()
        rate = _rate_of(seq, None)
        what = f"{self.name}: the retake placed above"
        return (_frames(_value(p.record.start_time, rate), f"{what}: its start"),
                _frames(_value(p.record.end_time_exclusive(), rate), f"{what}: its end"))

    def sequence_node(self) -> XmlNode:
        for track in self.timeline.tracks:
            found = origin_of(track)
            if found:
                node = _node_of(self.by_start, found["id"])
                if node is not None:
                    return node.parent.parent.parent
        raise InputError(f"{self.name}: the timeline has no track from this file; write .otio instead.")

    def source_of(self, p: _Placed) -> tuple[XmlNode, _ClipMedia]:
        """The clip item a retake placed above was made from (its rate, media description and filters are the version's)."""
        want = original_name(p.clip)
        kind = self.timeline.tracks[p.track_index].kind
        mid = (p.record.start_time.to_seconds() + p.record.end_time_exclusive().to_seconds()) / 2
        found = []
        for element_id, pieces in pieces_by_origin(self.timeline).items():
            for piece in pieces:
                item = piece.item
                if not isinstance(item, otio.schema.Clip) or original_name(item) != want:
                    continue
                if piece.record.start_time.to_seconds() - 1e-6 <= mid < piece.record.end_time_exclusive().to_seconds():
                    same = self.timeline.tracks[piece.track_index].kind == kind and piece.track_index < p.track_index
                    found.append((not same, element_id))   # the clip below it of its own kind first (its sound, for sound)
        if found:
            node = _node_of(self.by_start, min(found)[1])
            track = node.parent
            seq_rate = _rate_of(track.parent.parent.parent, None)
            return node, self.reader.media(node, seq_rate, _describe(node))
        raise InputError(f"{self.name}: cannot find the clip item the retake {p.clip.name!r} was made from; write .otio instead.")

    def new_track(self, ti: int, group: list[_Placed]) -> tuple[int, int, list]:
        kind = "video" if self.timeline.tracks[ti].kind == otio.schema.TrackKind.Video else "audio"
        seq = self.sequence_node()
        holder = seq.kid("media").kid(kind) if seq.kid("media") is not None else None
        tracks = holder.kids("track") if holder is not None else []
        if not tracks:
            raise InputError(f"{self.name}: the sequence has no {kind} tracks to add a retake track beside; write .otio instead.")
        last = tracks[-1]
        indent = self.doc.indent_of(last)
        inner = indent + self.unit
        nl = self.doc.newline
        name = self.timeline.tracks[ti].name
        premiere = any(k.startswith("MZ.") for t in tracks for k in t.attrs)
        head = f'<track MZ.TrackName="{escape(name, {chr(34): "&quot;"})}">' if premiere and name else "<track>"
        segments: list = [head.encode(self.doc.codec)]
        for p in sorted(group, key=lambda q: q.record.start_time.to_seconds()):
            source, media = self.source_of(p)
            start, end = self.placed_span(p, None)
            clip = self.render_clip(source, p.clip, None, 0, start, end, p.ident, self.doc.indent_of(source), media)
            segments.append((nl + inner).encode(self.doc.codec))
            segments.extend(self.moved(clip, self.doc.indent_of(source), inner))
        tail = ["<enabled>TRUE</enabled>", "<locked>FALSE</locked>"]
        channel = last.text_of("outputchannelindex")
        if kind == "audio" and channel:
            tail.append(f"<outputchannelindex>{escape(channel)}</outputchannelindex>")
        segments.append("".join(nl + inner + t for t in tail).encode(self.doc.codec))
        segments.append(f"{nl}{indent}</track>".encode(self.doc.codec))
        return (last.end, last.end, [(nl + indent).encode(self.doc.codec)] + segments)

    # the output, with each <file> defined where it is first used
    def assemble(self, edits: list[tuple[int, int, list]]) -> bytes:
        data = self.doc.data
        files = [n for n in self.doc.nodes if n.tag == "file" and n.attrs.get("id")]
        segments: list = []
        at = 0

        def untouched(a: int, b: int) -> None:
            pos = a
            for f in files:
                if f.start >= pos and f.end <= b:
                    segments.append(data[pos:f.start])
                    segments.append(_FileUse(f.attrs["id"], self.doc.indent_of(f), data[f.start:f.end], bool(f.children)))
                    pos = f.end
            segments.append(data[pos:b])

        for a, b, payload in edits:
            if a < at:
                raise InputError(f"{self.name}: two edits overlap; please report this with the timeline.")
            untouched(at, a)
            segments.extend(payload)
            at = b
        untouched(at, len(data))
        defined: set[str] = set()
        out: list[bytes] = []
        for s in segments:
            if not isinstance(s, _FileUse):
                out.append(s if isinstance(s, bytes) else str(s).encode(self.doc.codec))
                continue
            first = s.ident not in defined
            defined.add(s.ident)
            if first and s.original is not None and s.defines:
                out.append(s.original)
            elif first:
                if s.ident not in self.defs:
                    raise InputError(f"{self.name}: the media <file id={s.ident!r}> has no definition left to write; "
                                     "write .otio instead.")
                text, indent = self.defs[s.ident]
                out.append(_reindent(text, indent, s.indent).encode(self.doc.codec, "xmlcharrefreplace"))
            elif s.original is not None and not s.defines:
                out.append(s.original)
            else:
                out.append(f'<file id="{escape(s.ident, {chr(34): "&quot;"})}"/>'.encode(self.doc.codec))
        return b"".join(out)


def _loose_text(file_xml: str, node: XmlNode, indent: str) -> str:
    """The text of an element of a `<file>` kept as text (written at no indentation), moved to `indent`."""
    raw = file_xml.encode("utf-8")[node.start - len("<xmeml>"):node.end - len("<xmeml>")].decode("utf-8")
    return _reindent(raw, _indent_in(file_xml, node.start - len("<xmeml>")), indent)


def _indent_in(text: str, at: int) -> str:
    raw = text.encode("utf-8")
    line = raw.rfind(b"\n", 0, at) + 1
    lead = raw[line:at].decode("utf-8")
    return lead if not lead.strip() else ""


def write(data: bytes, timeline: otio.schema.Timeline, path: Path) -> bytes:
    """The file's bytes with the clips the timeline changed rewritten (never touches the disk)."""
    name = Path(path).name
    refused = cannot_hold(timeline)
    if refused:
        raise InputError(f"{name} cannot be edited to hold this: {' '.join(refused)}")
    return _Writer(parse_xmeml(data, name), timeline, name).write()


def cannot_hold(timeline: otio.schema.Timeline) -> list[str]:
    """What an edit of the FCP7 XML file cannot express, one sentence each (from the timeline alone)."""
    out: list[str] = []
    labels: dict[int, str] = {}
    rate = timeline.global_start_time.rate if timeline.global_start_time is not None else None
    for ti, track in enumerate(timeline.tracks):
        kind = "V" if track.kind == otio.schema.TrackKind.Video else "A"
        labels[ti] = f"{kind}{sum(1 for t in list(timeline.tracks)[:ti + 1] if t.kind == track.kind)}"
        where = f"on {labels[ti]}"
        for item in track.find_children():
            found = origin_of(item)
            meta = item.metadata.get(NS) or {}
            if isinstance(item, otio.schema.Gap):
                continue
            if found is None:
                if not isinstance(item, otio.schema.Clip) or "versions" not in meta:
                    out.append(f"the {type(item).__name__.lower()} {item.name!r} {where} is not in the file and is not a retake;")
                    continue
            elif found.get("shared") and not unchanged(item):
                out.append(f"clip {original_name(item)!r} {where} lies in a nested sequence the file uses {found['shared']} "
                           "times, and a retake there would change every use (retake it in the nested sequence itself, "
                           "or retake the picture alone with --mode replace_video);")
            elif isinstance(item, (otio.schema.Transition, otio.core.Composition)) and not unchanged(item):
                out.append(f"the {type(item).__name__.lower()} {item.name!r} {where} changed, and only clips are edited;")
            if isinstance(item, otio.schema.Clip) and "versions" in meta:
                for effect in item.effects:
                    if isinstance(effect, otio.schema.TimeEffect) and not (
                            isinstance(effect, otio.schema.LinearTimeWarp) and effect.time_scalar == 1):
                        out.append(f"clip {original_name(item)!r} {where} plays at a changed speed "
                                   f"({effect.name or effect.effect_name}), and its version would need its Time Remap "
                                   "rebuilt, which ltx-retake does not write yet (write .otio, or retake it at normal speed);")
                        break
                for key, ref in item.media_references().items():
                    if key == otio.schema.Clip.DEFAULT_MEDIA_KEY:
                        continue
                    if not isinstance(ref, otio.schema.ExternalReference) or ref.available_range is None:
                        out.append(f"the version {key} of {original_name(item)!r} {where} is not a media file with a range;")
                    elif not _whole(item.source_range.start_time - ref.available_range.start_time, item.source_range.start_time.rate):
                        out.append(f"the version {key} of {original_name(item)!r} {where} starts between two frames of the "
                                   f"clip's own rate ({item.source_range.start_time.rate:g} fps, not its media's), which a "
                                   "clip item's <in> cannot hold;")
            if isinstance(item, otio.schema.Clip) and item.parent() is track and not unchanged(item) and rate:
                rng = track.range_of_child(item)
                if not (_whole(rng.start_time, rate) and _whole(rng.duration, rate)):
                    out.append(f"clip {original_name(item)!r} {where} would start or end between two frames of the "
                               f"sequence ({rate:g} fps);")
    return out


def _whole(t: otio.opentime.RationalTime, rate: float) -> bool:
    value = t.rescaled_to(rate).value
    return abs(value - round(value)) < 1e-3
