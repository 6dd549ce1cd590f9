"""CMX 3600 EDLs read right (their rate decided or refused) and edited in place: only the retaken event changes.

An EDL is lines. Before the first event: the header (TITLE, FCM, comments), kept as it is. Then events: an event
line (`NNN  REEL  CHANNELS  EDIT [DUR]  SRC-IN SRC-OUT REC-IN REC-OUT`; two lines with one number for a dissolve,
wipe or key: the outgoing source, then the incoming one with the transition's length), followed by the lines that
belong to it (`*` comments, `M2` speed, `AUD` extra sound channels, `EFFECTS NAME IS`, REM), then its tail (blank
lines, an FCM or SPLIT line for the next event, trailing REM lines).

Reading: every event becomes one item per channel (V, A1, A2, ...; `B` and `AA/V` are picture and sound) stamped
with its event (`origin.stamp`); a later event overwrites what an earlier one put on the same channel, as an edit
controller would. The rate: an EDL almost never states it; see `decide_rate`.

Writing: every event whose items are unchanged is copied byte for byte (renumbered only when an earlier event
became several). A changed event is drawn again from its items: where they differ (a retake's window) it becomes
several events (before, version, after), each with the comments that belong to it. A version's event has its own
reel and `* FROM CLIP NAME:` / `* SOURCE FILE:` naming the version file, and `* LTX-RETAKE` comments that give the
original media, every version and the one shown, so reading it back rebuilds the clip (see `_ltx_lines`).
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import opentimelineio as otio

from ..document import ReadOptions
from ..errors import InputError, RateUndecidedError, TimelineReadError
from ..metadata import NS, is_version_key
from ..origin import added_tracks, origin_of, pieces_by_origin, stamp, unchanged
from ..relink import HINTS
from ..timing import exact_rate, format_timecode, is_drop_frame_rate, parse_timecode, rate_text

__all__ = ["read", "write", "cannot_hold", "decide_rate", "EDL_RATES", "RateEvidence"]

_RT = otio.opentime.RationalTime
_TR = otio.opentime.TimeRange

# the rates an EDL can count, in the order a refusal lists them
EDL_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(48),
             Fraction(50), Fraction(60000, 1001), Fraction(60))
_DF_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))

_TC = r"\d{2}[:;.]\d{2}[:;.]\d{2}[:;.]\d{2}"
_EVENT = re.compile(
    rf"^(?P<num>\d{{1,8}})\s+(?P<reel>\S(?:.*?\S)?)\s+(?P<chan>\S+)\s+(?P<edit>C|D|W\d{{1,4}}|KB|KO|K)\s+"
    rf"(?:(?P<dur>\d{{1,5}})\s+)?(?P<sin>{_TC})\s+(?P<sout>{_TC})\s+(?P<rin>{_TC})\s+(?P<rout>{_TC})(?P<rest>\s*)$",
    re.IGNORECASE)
_LOOKS_LIKE_EVENT = re.compile(rf"^\d{{1,8}}\s+\S.*{_TC}.*{_TC}")
_TC_ANY = re.compile(rf"(?<!\d){_TC}(?!\d)")
_FCM = re.compile(r"^\s*FCM\s*:\s*(DROP|NON[- ]?DROP)\s*FRAME", re.IGNORECASE)
_M2 = re.compile(rf"^M2\s+(?P<reel>.*?)\s+(?P<speed>[-+]?\d+(?:\.\d*)?)\s+(?P<tc>{_TC})\s*$", re.IGNORECASE)
_AUD = re.compile(r"^AUD\s+(.*)$", re.IGNORECASE)
_LOC = re.compile(rf"^\*\s*LOC\s*:\s*(?P<tc>{_TC})\s*(?P<rest>.*?)\s*$", re.IGNORECASE)
_IDENTITY = re.compile(r"^(?P<lead>\*\s*(?P<kind>FROM CLIP NAME|TO CLIP NAME|SOURCE FILE|FROM CLIP|FROM FILE|"
                       r"OTIO REFERENCE \w+|OTIO TRUNCATED REEL NAME FROM)\s*:\s*)(?P<value>.*?)(?P<trail>\s*)$",
                       re.IGNORECASE)
_LTX = re.compile(r"^\*\s*LTX-RETAKE(?:(?P<more>\+)|\s+(?P<kind>[A-Z]+):)\s?(?P<chunk>.*?)\s*$")
_ASC_SOP = re.compile(r"^\*\s*ASC_SOP\s*(.*)$", re.IGNORECASE)
_ASC_SAT = re.compile(r"^\*\s*ASC_SAT\s*(.*)$", re.IGNORECASE)
_BODY_KINDS = ("comment", "m2", "aud", "effect", "rem")
_COLOURS = {"RED", "PINK", "ORANGE", "YELLOW", "GREEN", "CYAN", "BLUE", "PURPLE", "MAGENTA", "BLACK", "WHITE"}
_STILLS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr", ".dpx", ".dng", ".psd", ".gif", ".bmp", ".tga",
           ".wav", ".aif", ".aiff", ".mp3", ".m4a", ".bwf"}
_CHANNELS = {"V": ("V",), "A": ("A1",), "A1": ("A1",), "AA": ("A1", "A2"), "B": ("V", "A1"), "A/V": ("V", "A1"),
             "V/A": ("V", "A1"), "AA/V": ("V", "A1", "A2"), "V/AA": ("V", "A1", "A2"), "NONE": ()}
_CODES = {("V",): "V", ("A1",): "A", ("A2",): "A2", ("A1", "A2"): "AA", ("V", "A1"): "B", ("V", "A2"): "A2/V",
          ("V", "A1", "A2"): "AA/V", (): "NONE"}
_LTX_WIDTH = 80                      # CMX 3600 lines: our comments stay within 80 columns
EDL = "cmx_3600"                     # the metadata namespace OTIO's EDL adapter uses (reel, cdl)


# --- the file as lines ------------------------------------------------------------------------------------------

@dataclass
class _Line:
    no: int            # 1-based line number
    text: str          # decoded, without its line ending
    raw: bytes         # as in the file, with its line ending
    eol: bytes

    @property
    def kind(self) -> str:
        t = self.text.strip()
        if not t:
            return "blank"
        if t.startswith("*"):
            return "comment"
        up = t.upper()
        if up.startswith("M2 ") or up.startswith("M2\t"):
            return "m2"
        if up.startswith("AUD ") or up.startswith("AUD\t"):
            return "aud"
        if up.startswith("EFFECTS NAME IS"):
            return "effect"
        if up.startswith("REM"):
            return "rem"
        if _FCM.match(t):
            return "fcm"
        if up.startswith("SPLIT"):
            return "split"
        return "other"


@dataclass
class _Head:
    """One event line, with where each field sits (to write a changed event in the file's own columns)."""

    line: _Line
    m: re.Match

    def __getattr__(self, name):  # num, reel, chan, edit, dur, sin, sout, rin, rout
        if name in ("num", "reel", "chan", "edit", "dur", "sin", "sout", "rin", "rout", "rest"):
            return self.m.group(name)
        raise AttributeError(name)


@dataclass
class _Event:
    index: int
    heads: list[_Head]
    body: list[_Line] = field(default_factory=list)
    tail: list[_Line] = field(default_factory=list)
    fcm_drop: bool = False
    split: str | None = None
    # worked out once the rate is known
    channels: tuple[str, ...] = ()
    rin: int = 0
    rout: int = 0
    sin: int = 0
    sout: int = 0
    tr: int = 0                     # the transition's length (0: a cut)
    packed: str | None = None       # its facts for the stamps of its items (`_facts_of`)

    @property
    def id(self) -> str:
        return f"event{self.index}"

    @property
    def head(self) -> _Head:
        """The line of the clip this event shows (the incoming one of a transition)."""
        return self.heads[-1]

    @property
    def number(self) -> str:
        return self.heads[0].num

    def label(self) -> str:
        return f"event {self.number} (line {self.heads[0].line.no})"


@dataclass
class _Edl:
    name: str
    lines: list[_Line]
    header: list[_Line]
    events: list[_Event]
    encoding: str
    eol: bytes

    @property
    def title(self) -> str:
        for line in self.header:
            m = re.match(r"^\s*\ufeff?\s*TITLE\s*:\s*(.*?)\s*$", line.text, re.IGNORECASE)
            if m:
                return m.group(1)
        return Path(self.name).stem


def _split_lines(data: bytes) -> tuple[list[_Line], str]:
    try:
        data.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "latin-1"
    parts = re.split(rb"(\r\n|\n|\r)", data)
    lines = []
    for i in range(0, len(parts), 2):
        body = parts[i]
        eol = parts[i + 1] if i + 1 < len(parts) else b""
        if not body and not eol:
            continue
        text = body.decode(encoding)
        if not lines and text.startswith("\ufeff"):
            text = text[1:]
        lines.append(_Line(len(lines) + 1, text, body + eol, eol))
    return lines, encoding


def _parse(data: bytes, name: str) -> _Edl:
    lines, encoding = _split_lines(data)
    eols = [line.eol for line in lines if line.eol]
    eol = max(set(eols), key=eols.count) if eols else b"\n"
    header: list[_Line] = []
    events: list[_Event] = []
    current: _Event | None = None
    pending: list[_Line] = []        # lines after an event's heads, until the next event
    fcm_drop = False
    split = None

    def close() -> None:
        if current is None:
            return
        cut = len(pending)
        for i, line in enumerate(pending):
            if line.kind not in _BODY_KINDS:
                cut = i
                break
        current.body, current.tail = pending[:cut], pending[cut:]

    for line in lines:
        m = _EVENT.match(line.text.lstrip())
        if m is None and _LOOKS_LIKE_EVENT.match(line.text.strip()):
            raise TimelineReadError(
                f"{name} line {line.no} looks like an event but does not read as one ({line.text.strip()[:60]!r}): "
                "an event is NUMBER REEL CHANNELS EDIT [LENGTH] and four timecodes. Export the EDL again from the NLE "
                "(CMX 3600), or write the timeline as .otio or XML.")
        if m is None:
            if current is None:
                header.append(line)
            else:
                pending.append(line)
            kind = line.kind
            if kind == "fcm":
                fcm_drop = _FCM.match(line.text.strip()).group(1).upper() == "DROP"
            elif kind == "split":
                split = line.text.strip()
            continue
        head = _Head(line, m)
        if (current is not None and len(current.heads) == 1 and not pending and head.num == current.number
                and head.edit.upper() != "C"):
            current.heads.append(head)   # the incoming side of a dissolve, wipe or key
            continue
        close()
        current = _Event(len(events), [head], fcm_drop=fcm_drop, split=split)
        split = None
        pending = []
        events.append(current)
    close()
    return _Edl(name, lines, header, events, encoding, eol)


# --- the rate ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RateEvidence:
    """What an EDL says about its rate: its frame fields, drop-frame marks, and (in files ltx-retake wrote) the rate."""

    highest: int                         # the highest frame field of any timecode
    fcm: str | None                      # "DROP FRAME", "NON-DROP FRAME" (the first FCM line), or None
    semicolons: bool                     # a `;` separator in a timecode (drop-frame)
    stated: Fraction | None = None       # the rate an `* LTX-RETAKE` comment gives

    @property
    def drop(self) -> bool:
        return self.semicolons or self.fcm == "DROP FRAME"

    def fits(self, rate: Fraction) -> bool:
        return math.ceil(rate) > self.highest and (not self.drop or rate in _DF_RATES)

    def fitting(self) -> list[Fraction]:
        return [r for r in EDL_RATES if self.fits(r)]

    def describe(self) -> str:
        parts = [f"highest frame field {self.highest}", f"FCM: {self.fcm}" if self.fcm else "no FCM line"]
        if self.semicolons:
            parts.append("';' drop-frame separators")
        return "; ".join(parts)


def _pulled(a: Fraction, b: Fraction) -> bool:
    """Whether two rates count the same frames (equal, or a 1000/1001 pull-down apart: 23.976 and 24)."""
    return a == b or a / b in (Fraction(1001, 1000), Fraction(1000, 1001))


def _rates(rates) -> str:
    texts = [rate_text(r) for r in rates]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def decide_rate(name: str, evidence: RateEvidence, given: Fraction | None,
                media: list[tuple[str, Fraction]]) -> tuple[Fraction, str]:
    """The EDL's rate and how it was decided, or a refusal that says which rates fit and how to give one.

    Deciders, strongest first: --rate (`given`), the rate ltx-retake wrote into the file, the media's own rate
    (`media`: label and rate of every clip whose media was found), then the file alone: drop-frame marks mean 29.97
    (59.94 when a frame field is 30 or more), and frame fields that leave one rate. Every decider must agree with
    the others and with the timecodes; media count as agreeing with a rate a pull-down away (23.976 media in an EDL
    counted at 24 are the same frames).
    """
    fitting = evidence.fitting()
    fits_text = (f"its timecodes fit {_rates(fitting)} fps" if fitting else "its timecodes fit no rate")
    how_ask = "give it with --rate, or let ltx-retake find the media (--media-search DIR) to read it from them"
    distinct: dict[Fraction, str] = {}
    for label, r in media:
        distinct.setdefault(r, label)
    classes = []
    for r in distinct:
        if not any(_pulled(r, c) for c in classes):
            classes.append(r)
    if len(classes) > 1:
        a, b = classes[:2]
        raise TimelineReadError(
            f"{name}: its media disagree on the frame rate ({distinct[a]} runs at {rate_text(a)} fps, {distinct[b]} at "
            f"{rate_text(b)} fps); an EDL counts one rate, so one of them is not that event's media. Relink it to the "
            "right file (--map-path, --media-search).")

    def check_media(rate: Fraction, said: str) -> None:
        for r, label in distinct.items():
            if not _pulled(r, rate):
                raise TimelineReadError(
                    f"{name}: {said} {rate_text(rate)} fps, but its media {label} runs at {rate_text(r)} fps. Give the "
                    f"media's rate with --rate, or relink the event to the right media (--map-path, --media-search).")

    def check_fits(rate: Fraction, said: str) -> None:
        if evidence.drop and rate not in _DF_RATES:
            raise TimelineReadError(
                f"{name} counts drop-frame timecode ({evidence.describe()}), which exists only at 29.97 and 59.94 fps, "
                f"but {said} {rate_text(rate)} fps; give --rate 29.97 (or 59.94).")
        if not math.ceil(rate) > evidence.highest:
            raise TimelineReadError(
                f"{name} cannot be counted at {rate_text(rate)} fps as {said.rsplit(' ', 1)[0]} says: its frame fields go "
                f"up to {evidence.highest}, and {rate_text(rate)} fps stops at {math.ceil(rate) - 1}; {fits_text}. "
                "Give one of those with --rate.")

    if given is not None:
        check_fits(given, "--rate says")
        if evidence.stated is not None and not _pulled(evidence.stated, given):
            raise TimelineReadError(
                f"{name} was written by ltx-retake at {rate_text(evidence.stated)} fps, but --rate says "
                f"{rate_text(given)} fps; leave --rate out (or give {rate_text(evidence.stated)}).")
        check_media(given, "--rate says")
        return given, f"{name} is counted at {rate_text(given)} fps (--rate)"
    if evidence.stated is not None:
        check_fits(evidence.stated, "its ltx-retake comment says")
        check_media(evidence.stated, "its ltx-retake comment says")
        return evidence.stated, f"{name} is counted at {rate_text(evidence.stated)} fps (as ltx-retake wrote it)"
    if distinct:
        labels = ", ".join(sorted(distinct.values())[:3])
        candidates = [r for r in fitting if all(_pulled(r, m) for m in distinct)]
        exact = [r for r in candidates if r in distinct]
        if len(exact) == 1:
            return exact[0], f"{name} is counted at {rate_text(exact[0])} fps (the rate of its media: {labels})"
        if len(candidates) == 1:
            return candidates[0], (f"{name} is counted at {rate_text(candidates[0])} fps (its media {labels} run at "
                                   f"{_rates(sorted(distinct))} fps, a pull-down away; drop-frame timecode says 29.97)")
        if not candidates:
            r, label = next(iter(distinct.items()))
            raise TimelineReadError(
                f"{name}: its media {label} runs at {rate_text(r)} fps, but its timecodes do not fit that rate "
                f"({evidence.describe()}; {fits_text}); relink the events to their own media (--map-path, "
                "--media-search).")
        raise RateUndecidedError(
            f"{name} does not say its frame rate and its media run at {_rates(sorted(distinct))} fps, which count the "
            f"same frames; give the EDL's rate with --rate ({_rates(candidates)}).", candidates)
    if evidence.drop and fitting:
        rate = fitting[0]
        return rate, f"{name} is counted at {rate_text(rate)} fps drop-frame (its drop-frame timecode; {evidence.describe()})"
    if len(fitting) == 1:
        return fitting[0], f"{name} is counted at {rate_text(fitting[0])} fps (the only rate its timecodes fit)"
    raise RateUndecidedError(f"{name} does not say its frame rate: {fits_text} ({evidence.describe()}); {how_ask}.", fitting)


def _evidence(edl: _Edl) -> RateEvidence:
    highest, semicolons, fcm = 0, False, None
    for line in edl.header:
        m = _FCM.match(line.text.strip())
        if m and fcm is None:
            fcm = "DROP FRAME" if m.group(1).upper() == "DROP" else "NON-DROP FRAME"
    stated = None
    for ev in edl.events:
        tcs = [tc for h in ev.heads for tc in (h.sin, h.sout, h.rin, h.rout)]
        for line in ev.body:
            if line.kind == "m2" or _LOC.match(line.text.strip()):
                tcs += _TC_ANY.findall(line.text)
        for line in ev.tail:
            m = _FCM.match(line.text.strip())
            if m and fcm is None:
                fcm = "DROP FRAME" if m.group(1).upper() == "DROP" else "NON-DROP FRAME"
        for tc in tcs:
            highest = max(highest, int(tc[-2:]))
            semicolons = semicolons or ";" in tc
        if ev.fcm_drop:
            fcm = "DROP FRAME"
        if stated is None:
            original = _ltx_records(ev).get("ORIGINAL")
            if original and original.get("rate"):
                try:
                    stated = exact_rate(Fraction(str(original["rate"])))
                except (ValueError, ZeroDivisionError, InputError):
                    stated = None
    return RateEvidence(highest, fcm, semicolons, stated)


# --- our own comments: the versions of a retaken event -----------------------------------------------------------

def _ltx_records(ev: _Event) -> dict:
    """The `* LTX-RETAKE KIND: {json}` records of an event (a record goes on over `* LTX-RETAKE+` lines):
    ORIGINAL once, VERSION once per version."""
    out: dict = {}
    kind, text = None, ""

    def flush() -> None:
        if kind is None:
            return
        try:
            value = json.loads(text)
        except ValueError:
            return
        if kind == "VERSION":
            out.setdefault("VERSION", []).append(value)
        else:
            out[kind] = value

    for line in ev.body:
        m = _LTX.match(line.text.strip())
        if not m:
            continue
        if m.group("more"):
            text += m.group("chunk")
            continue
        flush()
        kind, text = m.group("kind"), m.group("chunk")
    flush()
    return out


def _plain(value):
    """OTIO's metadata containers (AnyDictionary, AnyVector) as JSON's own."""
    if hasattr(value, "items"):
        return dict(value.items())
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return list(value)
    return str(value)


def _ltx_lines(kind: str, value: dict) -> list[str]:
    """A record as comment lines of at most 80 columns; no line starts or ends its chunk with a space, so an NLE
    that trims comment lines cannot change it."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=True, default=_plain)
    first = f"* LTX-RETAKE {kind}: "
    lines, prefix = [], first
    while text:
        room = _LTX_WIDTH - len(prefix)
        cut = min(room, len(text))
        while 1 < cut < len(text) and (text[cut - 1] == " " or text[cut] == " "):
            cut -= 1
        lines.append(prefix + text[:cut])
        text = text[cut:]
        prefix = "* LTX-RETAKE+ "
    return lines


# --- reading ----------------------------------------------------------------------------------------------------

_CLOCKS: dict[Fraction, tuple[int, bool]] = {}


def _clock(rate: Fraction) -> tuple[int, bool]:
    """The rate's frames per timecode second and whether it has drop-frame timecode (worked out once per rate)."""
    found = _CLOCKS.get(rate)
    if found is None:
        found = _CLOCKS[rate] = (math.ceil(rate), is_drop_frame_rate(rate))
    return found


def _frames(tc: str, rate: Fraction, df: bool) -> int:
    """A timecode as a frame number at `rate` (the same count as `timing.parse_timecode`, without its checks per
    call: an EDL's timecodes are checked against the rate once, when it is decided)."""
    nominal, can_drop = _clock(rate)
    hh, mm, ss, ff = int(tc[0:2]), int(tc[3:5]), int(tc[6:8]), int(tc[9:])
    if ff >= nominal or mm >= 60 or ss >= 60:
        raise InputError(f"Timecode {tc} is not valid at {rate_text(rate)} fps (frames must be below {nominal}).")
    minutes = hh * 60 + mm
    frames = (minutes * 60 + ss) * nominal + ff
    if df and can_drop:
        frames -= 2 * (nominal // 30) * (minutes - minutes // 10)
    return frames


def _drop(tc: str, ev: _Event, rate: Fraction) -> bool:
    return _clock(rate)[1] and (";" in tc or ev.fcm_drop)


def _identity(ev: _Event) -> dict:
    """The event's media as its comments and reel name it: clip name, source file, a path, the reel."""
    found: dict = {"reel": ev.head.reel}
    for line in ev.body:
        m = _IDENTITY.match(line.text)
        if not m:
            continue
        kind, value = m.group("kind").upper(), m.group("value").strip()
        if not value:
            continue
        if kind == "FROM CLIP NAME":
            found.setdefault("from_name", value)
        elif kind == "TO CLIP NAME":
            found.setdefault("to_name", value)
        elif kind == "SOURCE FILE":
            found.setdefault("file", value)
        elif kind in ("FROM CLIP", "FROM FILE") or kind.startswith("OTIO REFERENCE"):
            found.setdefault("url", value)
    name = found.get("to_name") if len(ev.heads) > 1 and found.get("to_name") else found.get("from_name")
    found["clip"] = name
    file = found.get("file")
    if file and _is_path(file) and "url" not in found:
        found["url"] = file
    return found


def _is_path(text: str) -> bool:
    return text.startswith(("/", "\\\\", "file:")) or bool(re.match(r"^[A-Za-z]:[\\/]", text))


def _hints(ident: dict) -> list[str]:
    """Names the media may go by, most specific first: the source file, the clip name, the reel (not AX or BL)."""
    out = []
    for value in (ident.get("file"), ident.get("clip"), ident.get("reel")):
        if value and value.upper() not in ("AX", "BL", "BLACK") and value not in out:
            out.append(value)
    return out


def _reference(ident: dict):
    meta = {EDL: {k: v for k, v in (("reel", ident.get("reel")), ("clip_name", ident.get("clip")),
                                    ("source_file", ident.get("file"))) if v}}
    if ident.get("url"):
        return otio.schema.ExternalReference(target_url=ident["url"], metadata=meta)
    hints = _hints(ident)
    return otio.schema.MissingReference(name=hints[0] if hints else "", metadata=meta)


def _speed(ev: _Event, rate: Fraction) -> tuple[Fraction, otio.schema.Effect | None, str | None]:
    """The event's speed from its M2 line: (scalar, effect, note). A speed its source and record lengths do not
    bear out is kept as an effect whose speed cannot be read (the planner refuses it, with a sentence)."""
    src, rec = ev.sout - ev.sin, ev.rout - ev.rin
    m2 = next((_M2.match(line.text.strip()) for line in ev.body if line.kind == "m2"), None)
    if m2 is None:
        if src != rec and rec > 0 and ev.head.reel.upper() != "BL":
            return Fraction(1), otio.schema.TimeEffect(name="EDL speed", effect_name="EDL source and record lengths differ"), \
                f"{ev.label()} shows {src} source frames over {rec} record frames with no M2 speed line; it cannot be retaken"
        return Fraction(1), None, None
    fps = Fraction(m2.group("speed"))
    scalar = fps / rate
    if scalar == 0:
        return Fraction(0), otio.schema.FreezeFrame(), None
    if rec > 0 and abs(abs(scalar) * rec - src) > max(2, rec * Fraction(1, 100)):
        effect = otio.schema.TimeEffect(name="M2", effect_name=f"M2 {m2.group('speed')} (source and record lengths disagree)")
        return Fraction(1), effect, (f"{ev.label()} has speed {m2.group('speed')} (M2) over {src} source frames and {rec} "
                                     "record frames, which do not agree; it cannot be retaken")
    return scalar, otio.schema.LinearTimeWarp(time_scalar=float(scalar)), None


def _cdl(ev: _Event) -> dict:
    out = {}
    for line in ev.body:
        t = line.text.strip()
        m = _ASC_SOP.match(t)
        if m:
            nums = re.findall(r"[-+]?\d*\.?\d+", m.group(1))
            if len(nums) == 9:
                v = [float(n) for n in nums]
                out["asc_sop"] = {"slope": v[0:3], "offset": v[3:6], "power": v[6:9]}
        m = _ASC_SAT.match(t)
        if m:
            try:
                out["asc_sat"] = float(m.group(1).split()[0])
            except (ValueError, IndexError):
                pass
    return out


def _channels(ev: _Event, name: str) -> tuple[str, ...]:
    code = ev.head.chan.upper()
    found = _CHANNELS.get(code)
    alone = re.fullmatch(r"A(\d{1,2})", code)
    with_picture = re.fullmatch(r"A(\d{1,2})/V|V/A(\d{1,2})", code)
    if found is None and alone:
        found = (f"A{int(alone.group(1))}",)
    elif found is None and with_picture:
        found = ("V", f"A{int(with_picture.group(1) or with_picture.group(2))}")
    if found is None:
        raise TimelineReadError(f"{name} {ev.label()} has channels {ev.head.chan!r}, which a CMX 3600 EDL does not have "
                                "(V, A, A2, AA, B, AA/V, A2/V, NONE); export the EDL again from the NLE.")
    extra = []
    for line in ev.body:
        m = _AUD.match(line.text.strip()) if line.kind == "aud" else None
        if m:
            extra += [f"A{n}" for n in re.findall(r"\d+", m.group(1))]
    return tuple(sorted(set(found) | set(extra), key=_channel_order))


def _channel_order(c: str) -> tuple[int, int]:
    return (0, 0) if c == "V" else (1, int(c[1:]))


class _Covered:
    """Record ranges already taken by later events on one channel (disjoint, sorted)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def visible(self, a: int, b: int) -> list[tuple[int, int]]:
        out, at = [], a
        i = max(0, bisect_left(self.starts, a) - 1)
        while i < len(self.starts) and self.starts[i] < b:
            s, e = self.starts[i], self.ends[i]
            if e > at:
                if s > at:
                    out.append((at, min(s, b)))
                at = max(at, e)
            i += 1
        if at < b:
            out.append((at, b))
        return out

    def add(self, a: int, b: int) -> None:
        if b <= a:
            return
        i = bisect_left(self.starts, a)
        if i > 0 and self.ends[i - 1] >= a:
            i -= 1
            a = min(a, self.starts[i])
        j = i
        while j < len(self.starts) and self.starts[j] <= b:
            b = max(b, self.ends[j])
            j += 1
        self.starts[i:j] = [a]
        self.ends[i:j] = [b]


def read(data: bytes, path: Path, options: ReadOptions, media_rate: Callable) -> tuple[list, list[str]]:
    """The EDL's timeline (one picture track, and a sound track per channel used), each item stamped with its event."""
    name = Path(path).name
    edl = _parse(data, name)
    if not edl.events:
        raise TimelineReadError(f"{name} has no events: it is not a CMX 3600 EDL, or it is empty. Export the EDL "
                                "again from the NLE.")
    evidence = _evidence(edl)
    rate, how = decide_rate(name, evidence, options.rate, _media_rates(edl, media_rate))
    notes = [how]
    frate = float(rate)
    for ev in edl.events:
        _place(ev, rate, name)
    tracks: dict[str, list] = {}
    covered: dict[str, _Covered] = {}
    for ev in reversed(edl.events):   # a later event overwrites an earlier one on the same channel
        ev.channels = _channels(ev, name)
        for ch in ev.channels:
            cov = covered.setdefault(ch, _Covered())
            parts = cov.visible(ev.rin, ev.rout) if ev.rout > ev.rin else []
            for a, b in parts:
                tracks.setdefault(ch, []).append((a, b, ev))
            if ev.rout > ev.rin:
                cov.add(ev.rin, ev.rout)
            tracks.setdefault(ch, [])
        if len(ev.heads) > 1 and ev.heads[0].rin != ev.heads[0].rout:
            notes.append(f"{ev.label()}: its outgoing line has a length of its own; it is read as a cut before the "
                         "transition and cannot be retaken")
        if ev.split:
            notes.append(f"{ev.label()} is a split edit ({ev.split}); its sound is read without the delay and it "
                         "cannot be retaken")
    start = min(ev.rin for ev in edl.events)
    timeline = otio.schema.Timeline(name=edl.title)
    timeline.global_start_time = _RT(start, frate)
    width = max(8, max(len(ev.head.reel) for ev in edl.events))
    last = max(int(ev.number) for ev in edl.events)
    timeline.metadata[NS] = {"edl": {"rate": str(rate), "reel_width": width,
                                     "number_width": min(len(ev.number) for ev in edl.events), "last_number": last}}
    showing = {id(p[2]) for t in tracks.values() for p in t}
    hidden = sum(1 for ev in edl.events if ev.rout > ev.rin and id(ev) not in showing)
    if hidden:
        notes.append(f"{hidden} event(s) are wholly covered by later events on the same channels and do not show")
    speed_notes: dict[int, str] = {}
    for ch in sorted(tracks, key=_channel_order):
        kind = otio.schema.TrackKind.Video if ch == "V" else otio.schema.TrackKind.Audio
        track = otio.schema.Track(name=ch, kind=kind)
        at = start
        for a, b, ev in sorted(tracks[ch], key=lambda p: p[0]):
            if a > at:
                track.append(otio.schema.Gap(source_range=_TR(_RT(0, frate), _RT(a - at, frate))))
            if a == ev.rin and ev.tr:
                track.append(_transition(ev, frate, ch))
            track.append(_item(ev, ch, a, b, rate, edl, speed_notes))
            at = b
        stamp(track, f"channel-{ch}", role="track")
        timeline.tracks.append(track)
    notes.extend(speed_notes[k] for k in sorted(speed_notes))
    return [timeline], notes


def _place(ev: _Event, rate: Fraction, name: str) -> None:
    head = ev.head
    try:
        ev.rin = _frames(head.rin, rate, _drop(head.rin, ev, rate))
        ev.rout = _frames(head.rout, rate, _drop(head.rout, ev, rate))
        ev.sin = _frames(head.sin, rate, _drop(head.sin, ev, rate))
        ev.sout = _frames(head.sout, rate, _drop(head.sout, ev, rate))
    except InputError as exc:
        raise TimelineReadError(f"{name} {ev.label()}: {exc}") from None
    if ev.rout < ev.rin:
        raise TimelineReadError(f"{name} {ev.label()} ends before it starts (record {head.rin} to {head.rout}); "
                                "export the EDL again from the NLE.")
    ev.tr = int(head.dur) if len(ev.heads) > 1 and head.dur else 0


def _media_rates(edl: _Edl, media_rate: Callable) -> list[tuple[str, Fraction]]:
    """The rate of each event's media that can be found here (stills and sound files say nothing of a rate)."""
    out, seen = [], {}
    for ev in edl.events:
        ident = _event_identity(ev)
        if ident.get("reel", "").upper() in ("BL", "BLACK") and not ident.get("url"):
            continue
        names = [ident.get("url") or ""] + _hints(ident)
        if any(Path(n).suffix.lower() in _STILLS for n in names if n):
            continue
        key = tuple(names)
        if key not in seen:
            probe = otio.schema.Clip(name=ident.get("clip") or ident.get("reel") or "", media_reference=_reference(ident))
            probe.metadata[NS] = {HINTS: _hints(ident)}
            seen[key] = media_rate(probe)
        if seen[key] is not None:
            label = (ident.get("url") or (_hints(ident) or [ident.get("reel")])[0]).replace("\\", "/").rsplit("/", 1)[-1]
            out.append((f"{label} (event {ev.number}, line {ev.heads[0].line.no})", exact_rate(seen[key])))
    return out


def _event_identity(ev: _Event) -> dict:
    """The media an event shows now: for an event ltx-retake wrote, the active version's (else the original's)."""
    records = _ltx_records(ev)
    original = records.get("ORIGINAL")
    if not original:
        return _identity(ev)
    active = original.get("active")
    for v in records.get("VERSION", []):
        if v.get("key") == active:
            return {"reel": v.get("reel"), "clip": v.get("name"), "file": Path(str(v.get("url", ""))).name,
                    "url": v.get("url")}
    return _original_identity(original)


def _original_identity(original: dict) -> dict:
    return {k: original.get(k) for k in ("reel", "clip", "file", "url") if original.get(k)}


def _transition(ev: _Event, frate: float, ch: str) -> otio.schema.Transition:
    edit = ev.head.edit.upper()
    effect = next((line.text.strip()[len("EFFECTS NAME IS"):].strip() for line in ev.body if line.kind == "effect"), "")
    kind = otio.schema.TransitionTypes.SMPTE_Dissolve if edit == "D" else otio.schema.TransitionTypes.Custom
    tr = otio.schema.Transition(name=effect or edit, transition_type=kind, in_offset=_RT(0, frate),
                                out_offset=_RT(ev.tr, frate))
    tr.metadata[EDL] = {"transition": edit, "effect": effect}
    stamp(tr, ev.id, channel=ch, role="transition", **_facts_of(ev, exact_rate(frate)))
    return tr


def _item(ev: _Event, ch: str, a: int, b: int, rate: Fraction, edl: _Edl, speed_notes: dict):
    frate = float(rate)
    ident = _identity(ev)
    facts = dict(channel=ch, role="clip", **_facts_of(ev, rate))
    if ident.get("reel", "").upper() in ("BL", "BLACK") and not ident.get("url"):
        gap = otio.schema.Gap(source_range=_TR(_RT(0, frate), _RT(b - a, frate)))
        stamp(gap, ev.id, channel=ch, role="black", **_facts_of(ev, rate))
        return gap
    scalar, effect, note = _speed(ev, rate)
    if note:
        speed_notes[ev.index] = note
    src = Fraction(ev.sin) + (a - ev.rin) * scalar
    clip = otio.schema.Clip(name=ident.get("clip") or ident.get("file") or ev.head.reel,
                            source_range=_TR(_RT(float(src), frate), _RT(b - a, frate)))
    records = _ltx_records(ev)
    original = records.get("ORIGINAL")
    hints = _hints(ident)
    if original:
        _rebuild_versions(clip, original, records.get("VERSION", []), frate)
        active = clip.media_reference
        if clip.active_media_reference_key != otio.schema.Clip.DEFAULT_MEDIA_KEY:
            hints = [Path(active.target_url).name, active.name]
        else:
            hints = _hints(_original_identity(original))
    else:
        clip.media_reference = _reference(ident)
    if effect is not None:
        clip.effects.append(effect)
    cdl = _cdl(ev)
    if cdl:
        clip.metadata["cdl"] = cdl
    if ch == ev.channels[0]:
        for marker in _markers(ev, a, b, rate, scalar, src):
            clip.markers.append(marker)
    stamp(clip, ev.id, **facts)
    mine = clip.metadata[NS]   # added in place: OTIO converts metadata anew on every assignment (slow on long EDLs)
    mine[HINTS] = hints
    return clip


def _rebuild_versions(clip: otio.schema.Clip, original: dict, versions: list[dict], frate: float) -> None:
    """The clip as ltx-retake spliced it: the original media as DEFAULT_MEDIA, every version, the one shown."""
    rate = exact_rate(frate)
    refs = {otio.schema.Clip.DEFAULT_MEDIA_KEY: _reference(_original_identity(original))}
    provenance = {}
    for v in versions:
        key = str(v.get("key") or "")
        if not is_version_key(key):
            continue
        start = v.get("start") or ""
        try:
            first = parse_timecode(start, rate, drop_frame=";" in start) if ":" in start or ";" in start else int(start)
        except (InputError, ValueError):
            continue
        ref = otio.schema.ExternalReference(target_url=str(v.get("url") or ""),
                                            available_range=_TR(_RT(first, frate), _RT(int(v.get("frames") or 0), frate)))
        ref.name = str(v.get("name") or key)
        ref.metadata[NS] = dict(v.get("meta") or {})
        ref.metadata[EDL] = {"reel": v.get("reel")}
        refs[key] = ref
        provenance[key] = dict(v.get("meta") or {})
    active = original.get("active") or "original"
    key = active if active in refs else otio.schema.Clip.DEFAULT_MEDIA_KEY
    clip.set_media_references(refs, key)
    name = original.get("name") or original.get("clip") or clip.name
    clip.name = refs[key].name if key != otio.schema.Clip.DEFAULT_MEDIA_KEY else name
    clip.metadata[NS] = {"original_name": name, "versions": provenance,
                         "active": active if key != otio.schema.Clip.DEFAULT_MEDIA_KEY else "original",
                         "placement": "splice"}


def _loc_record(ev: _Event, frame: int, scalar: Fraction) -> int:
    """A LOC's timecode as a record frame: Avid and Premiere write record timecode; OTIO's writer source timecode."""
    if ev.rin <= frame < max(ev.rout, ev.rin + 1):
        return frame
    if ev.sin <= frame < ev.sout and scalar:
        return ev.rin + int((frame - ev.sin) / abs(scalar))
    return frame


def _markers(ev: _Event, a: int, b: int, rate: Fraction, scalar: Fraction, src_a: Fraction) -> list[otio.schema.Marker]:
    """The event's LOC markers that fall on record frames [a, b), in the clip's source time, colour and text kept."""
    out = []
    frate = float(rate)
    for line in ev.body:
        m = _LOC.match(line.text.strip())
        if not m:
            continue
        tc = m.group("tc")
        try:
            at = _loc_record(ev, _frames(tc, rate, _drop(tc, ev, rate)), scalar)
        except InputError:
            continue
        if not (a <= at < b or (a == ev.rin and at < a)):
            continue
        words = m.group("rest").split(None, 1)
        colour = words[0] if words and words[0].upper() in _COLOURS else None
        text = (words[1] if colour and len(words) > 1 else "" if colour else m.group("rest")).strip()
        src = src_a + (at - a)   # OTIO maps a clip's markers to the track without its speed
        marker = otio.schema.Marker(name=text, marked_range=_TR(_RT(float(src), frate), _RT(0, frate)))
        if colour:
            marker.color = colour.upper()
        marker.metadata[EDL] = {"color": colour, "line": line.no}
        out.append(marker)
    return out


def _facts_of(ev: _Event, rate: Fraction) -> dict:
    """What `cannot_hold` needs to know of an event without the file (where it lies, what kind of edit it is),
    packed in one string: a long EDL stamps thousands of items."""
    if ev.packed is None:
        from_len = ev.heads[0].line.no if len(ev.heads) > 1 and ev.heads[0].rin != ev.heads[0].rout else 0
        ev.packed = "|".join(str(x) for x in (ev.number, ev.rin, ev.rout, ev.sin, ev.sout, ev.tr, ",".join(ev.channels),
                                              ev.head.edit.upper(), int(bool(ev.split)), from_len, _speed(ev, rate)[0]))
    return {"event": ev.packed}


# --- writing ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Facts:
    """An event as the writer plans it: from the file (`write`) or from its items' stamps (`cannot_hold`)."""

    id: str
    number: str
    rin: int
    rout: int
    sin: int
    sout: int
    tr: int
    channels: tuple[str, ...]
    edit: str
    split: bool
    from_len: int
    scalar: Fraction

    def label(self) -> str:
        return f"event {self.number}"


def _facts_from_stamp(eid: str, found: dict) -> _Facts:
    number, rin, rout, sin, sout, tr, channels, edit, split, from_len, scalar = str(found["event"]).split("|")
    return _Facts(eid, number, int(rin), int(rout), int(sin), int(sout), int(tr), tuple(c for c in channels.split(",") if c),
                  edit, split == "1", int(from_len), Fraction(scalar))


@dataclass
class _State:
    """What one channel of an event shows over a stretch of record: the original media, or a clip's active version."""

    item: object | None          # the clip piece (None: a stretch later events cover; it shows the original)
    key: str                     # the active media key (DEFAULT_MEDIA for the original)
    url: str                     # the active version's file ("" for the original)
    versions: tuple[str, ...]    # the version keys the piece carries
    scalar: Fraction
    src: Fraction                # the source frame at the stretch's start

    def same(self, other: "_State") -> bool:
        return (self.key, self.url, self.versions, self.scalar, self.src) == \
            (other.key, other.url, other.versions, other.scalar, other.src)

    @property
    def original(self) -> bool:
        return self.key == otio.schema.Clip.DEFAULT_MEDIA_KEY


@dataclass
class _Group:
    """One event line to write: record frames [s, e) on `channels`, showing `state`."""

    s: int
    e: int
    channels: tuple[str, ...]
    state: _State

    @property
    def src_out(self) -> Fraction:
        return self.state.src + (self.e - self.s) * self.state.scalar


def _scalar(item) -> Fraction:
    scalar = Fraction(1)
    for effect in getattr(item, "effects", []):
        if isinstance(effect, otio.schema.LinearTimeWarp):
            scalar *= Fraction(effect.time_scalar).limit_denominator(100000)
    return scalar


def _frames_of(t: otio.opentime.RationalTime, frate: float) -> Fraction:
    return Fraction(t.rescaled_to(frate).value).limit_denominator(1000)


def _state(item, at: int, a: int, frate: float) -> _State:
    key = item.active_media_reference_key
    ref = item.media_reference
    versions = tuple(sorted(k for k in item.media_references() if k != otio.schema.Clip.DEFAULT_MEDIA_KEY))
    scalar = _scalar(item)
    src = _frames_of(item.source_range.start_time, frate) + (at - a) * scalar
    url = "" if key == otio.schema.Clip.DEFAULT_MEDIA_KEY else str(getattr(ref, "target_url", "") or key)
    return _State(item, key, url, versions, scalar, src)


def _groups(f: _Facts, pieces, start: int, frate: float) -> list[_Group]:
    """The event lines a changed event becomes: its record cut where any channel's media changes, the channels
    that show the same media over a stretch written as one event, stretches that go on in the same media joined."""
    spans = []
    for p in pieces:
        found = origin_of(p.item)
        if found.get("role") != "clip" or not isinstance(p.item, otio.schema.Clip):
            continue
        a = start + round(p.record.start_time.rescaled_to(frate).value)
        b = a + round(p.record.duration.rescaled_to(frate).value)
        spans.append((found["channel"], a, b, p.item))
    bounds = sorted({f.rin, f.rout} | {x for _, a, b, _ in spans for x in (a, b) if f.rin <= x <= f.rout})
    elementary: list[_Group] = []
    for s, e in zip(bounds, bounds[1:]):
        states: list[tuple[str, _State]] = []
        for ch in f.channels:
            covering = next(((a, item) for c, a, b, item in spans if c == ch and a <= s and e <= b), None)
            if covering is None:
                state = _State(None, otio.schema.Clip.DEFAULT_MEDIA_KEY, "", (), f.scalar,
                               Fraction(f.sin) + (s - f.rin) * f.scalar)
            else:
                state = _state(covering[1], s, covering[0], frate)
            states.append((ch, state))
        while states:
            ch, state = states.pop(0)
            same = [c for c, st in states if st.same(state)]
            states = [(c, st) for c, st in states if not st.same(state)]
            elementary.append(_Group(s, e, tuple(sorted([ch, *same], key=_channel_order)), state))
    merged: list[_Group] = []
    for g in elementary:
        before = next((m for m in reversed(merged) if m.channels == g.channels and m.e == g.s), None)
        if before is not None and before.state.key == g.state.key and before.state.url == g.state.url \
                and before.state.versions == g.state.versions and before.state.scalar == g.state.scalar \
                and before.src_out == g.state.src:
            before.e = g.e
            if before.state.item is None:
                before.state.item = g.state.item
            continue
        merged.append(g)
    merged.sort(key=lambda g: (g.s, _channel_order(g.channels[0]) if g.channels else (2, 0)))
    return merged


def _problems(f: _Facts, groups: list[_Group], pieces) -> list[str]:
    """Sentences for what writing this event's groups cannot express."""
    out = []
    shown = [g for g in groups if not g.state.original]
    name = next((p.item.metadata.get(NS, {}).get("original_name") or p.item.name for p in pieces
                 if isinstance(p.item, otio.schema.Clip)), f.label())
    if f.split:
        out.append(f"{name!r} ({f.label()}) is a split edit, which ltx-retake cannot cut: retake another clip, or "
                   "export the EDL without split edits.")
    if f.edit.startswith("K"):
        out.append(f"{name!r} ({f.label()}) is a key (K) edit layering two sources; an EDL cannot show a version in it.")
    if f.from_len:
        out.append(f"{name!r} ({f.label()}) starts with an outgoing line of its own length (line {f.from_len}); "
                   "ltx-retake cannot cut it.")
    if f.tr and any(g.s < f.rin + f.tr for g in shown):
        out.append(f"The retake of {name!r} starts inside the transition at the head of {f.label()}; retake a window "
                   f"that starts after it ({f.tr} frames in).")
    for p in pieces:
        item = p.item
        if not isinstance(item, otio.schema.Clip) or item.active_media_reference_key == otio.schema.Clip.DEFAULT_MEDIA_KEY:
            continue
        parent = p.parent
        for j in (p.index - 1, p.index + 1):
            if 0 <= j < len(parent) and isinstance(parent[j], otio.schema.Transition) and \
                    origin_of(parent[j]).get("id") != f.id:
                out.append(f"The retake of {name!r} ({f.label()}) meets a transition; the transition would need frames "
                           "of the retake beyond its window. Retake a window that stops short of the transition.")
                break
    return out


def _changed(pieces) -> bool:
    return any(not unchanged(p.item) for p in pieces)


def _plan(timeline, facts_of: Callable[[str, list], _Facts | None]) -> tuple[dict, list[str]]:
    """Per changed event: its groups; and every sentence for what the EDL cannot hold."""
    problems: list[str] = []
    extra = added_tracks(timeline)
    for ti in extra:
        track = timeline.tracks[ti]
        problems.append(f"An EDL has one picture track and its own sound channels: the retake placed above on a new "
                        f"track ({track.name or 'unnamed'}) cannot be written into it; use --placement splice.")
    for ti, track in enumerate(timeline.tracks):
        if ti in extra:
            continue
        for item in track:
            if isinstance(item, otio.schema.Clip) and origin_of(item) is None:
                problems.append(f"Clip {item.name!r} on track {track.name} was not read from the EDL; an EDL edit can "
                                "only cut its own events.")
    frate = timeline.global_start_time.rate
    start = round(timeline.global_start_time.value)
    groups: dict[str, list[_Group]] = {}
    for eid, pieces in pieces_by_origin(timeline).items():
        if not eid.startswith("event") or not _changed(pieces):
            continue
        f = facts_of(eid, pieces)
        if f is None:
            continue
        gs = _groups(f, pieces, start, frate)
        problems.extend(_problems(f, gs, pieces))
        groups[eid] = gs
    return groups, problems


def cannot_hold(timeline: otio.schema.Timeline) -> list[str]:
    """What an edit of the EDL cannot express: a placement above (an EDL has one picture track), cuts inside
    transitions, keys and split edits, event numbers past the file's width."""
    def facts(eid, pieces):
        found = origin_of(pieces[0].item)
        return _facts_from_stamp(eid, found) if found and "event" in found else None

    groups, problems = _plan(timeline, facts)
    meta = (timeline.metadata.get(NS) or {}).get("edl") or {}
    width, last = meta.get("number_width"), meta.get("last_number")
    if width and last is not None:
        added = sum(len(g) - 1 for g in groups.values())
        if last + added >= 10 ** int(width):
            problems.append(f"The EDL's events are numbered with {width} digits, and the retake would need event "
                            f"number {last + added}; export the EDL with 6-digit event numbers (File_32/File_129).")
    return _unique(problems)


def _unique(items: list[str]) -> list[str]:
    out = []
    for i in items:
        if i not in out:
            out.append(i)
    return out


def write(data: bytes, timeline: otio.schema.Timeline, path: Path) -> bytes:
    """The EDL's bytes with each changed event drawn again from its items; every other byte as it was."""
    name = Path(path).name
    edl = _parse(data, name)
    meta = (timeline.metadata.get(NS) or {}).get("edl") or {}
    if "rate" not in meta:
        raise InputError(f"This timeline was not read from an EDL by ltx-retake, so {name} cannot be edited from it.")
    rate = Fraction(meta["rate"])
    frate = timeline.global_start_time.rate
    by_id = {ev.id: ev for ev in edl.events}
    for ev in edl.events:
        _place(ev, rate, name)
        ev.channels = _channels(ev, name)

    def facts(eid, pieces):
        ev = by_id.get(eid)
        if ev is None:
            return None
        return _Facts(eid, ev.number, ev.rin, ev.rout, ev.sin, ev.sout, ev.tr, ev.channels, ev.head.edit.upper(),
                      bool(ev.split), ev.heads[0].line.no if len(ev.heads) > 1 and ev.heads[0].rin != ev.heads[0].rout
                      else 0, _speed(ev, rate)[0])

    groups, problems = _plan(timeline, facts)
    if problems:
        raise InputError(f"{name} cannot be edited to hold this: {' '.join(_unique(problems))}")
    reels = _Reels(edl, timeline, int(meta.get("reel_width") or 8))
    out = [line.raw for line in edl.header]
    offset = 0
    for ev in edl.events:
        gs = groups.get(ev.id)
        width = len(ev.number)
        if gs is None:
            for line in [h.line for h in ev.heads]:
                out.append(_renumbered(line, ev, int(ev.number) + offset, width, edl.encoding))
            out.extend(line.raw for line in ev.body + ev.tail)
            continue
        base = int(ev.number) + offset
        if base + len(gs) - 1 >= 10 ** width:
            raise InputError(f"{name}: the retake would need event number {base + len(gs) - 1}, more than its "
                             f"{width}-digit event numbers hold; export the EDL with 6-digit event numbers.")
        out.append(_render_event(edl, ev, gs, base, width, rate, frate, reels))
        offset += len(gs) - 1
    return b"".join(out)


def _renumbered(line: _Line, ev: _Event, number: int, width: int, encoding: str) -> bytes:
    if number == int(ev.number):
        return line.raw
    head = next(h for h in ev.heads if h.line is line)
    lead = len(line.text) - len(line.text.lstrip())
    text = line.text[:lead + head.m.start("num")] + f"{number:0{width}d}" + line.text[lead + head.m.end("num"):]
    return text.encode(encoding) + line.eol




class _Reels:
    """Reel names for versions: at most 8 characters (or the file's own reel width), unique in the file."""

    def __init__(self, edl: _Edl, timeline, width: int):
        self.width = width
        self.taken = {ev.head.reel.upper() for ev in edl.events}
        self.given: dict[str, str] = {}
        for clip in timeline.find_clips():
            for key, ref in clip.media_references().items():
                reel = (ref.metadata.get(EDL) or {}).get("reel") if key != otio.schema.Clip.DEFAULT_MEDIA_KEY else None
                if reel:
                    self.given[str(getattr(ref, "target_url", key))] = reel
                    self.taken.add(reel.upper())

    def of(self, key: str, ref) -> str:
        if key == otio.schema.Clip.DEFAULT_MEDIA_KEY:
            return (ref.metadata.get(EDL) or {}).get("reel") or "AX"
        url = str(getattr(ref, "target_url", key))
        if url in self.given:
            return self.given[url]
        clean = re.sub(r"[^A-Za-z0-9_]", "", ref.name or key)
        candidates = [clean] if 0 < len(clean) <= self.width else []
        n = 1
        while True:
            candidates.append(f"LTX{n:0{max(1, min(5, self.width - 3))}d}")
            for c in candidates:
                if c.upper() not in self.taken:
                    self.taken.add(c.upper())
                    self.given[url] = c
                    return c
            candidates = []
            n += 1


def _tc_text(frame: int, rate: Fraction, df: bool, template: str) -> str:
    text = format_timecode(int(frame), rate, df and _clock(rate)[1])
    return f"{text[:2]}{template[2]}{text[3:5]}{template[5]}{text[6:8]}{template[8]}{text[9:]}"


def _event_text(head: _Head, **new) -> str:
    """An event line in the template's columns with some fields replaced (`dur=None` drops the length)."""
    text = head.line.text
    lead = len(text) - len(text.lstrip())
    values = {k: head.m.group(k) for k in ("num", "reel", "chan", "edit", "dur", "sin", "sout", "rin", "rout")}
    values.update(new)
    out = text[:lead]
    for key in ("num", "reel", "chan", "edit", "dur", "sin", "sout", "rin", "rout"):
        value = values[key]
        if value is None:
            continue
        col = lead + head.m.start(key) if head.m.group(key) is not None else len(out) + 1
        if len(out) < col:
            out += " " * (col - len(out))
        elif out and not out.endswith(" "):
            out += " "
        out += value
    return out + head.m.group("rest")


def _identity_lines(ev: _Event, first_of_transition: bool) -> list[str]:
    """The comment lines that name the event's own media on a piece that shows it."""
    original = _ltx_records(ev).get("ORIGINAL")
    if original and isinstance(original.get("lines"), list):
        return [str(t) for t in original["lines"]]
    lines = [line.text for line in ev.body if _IDENTITY.match(line.text)]
    if len(ev.heads) < 2 or first_of_transition:
        return lines
    out = []
    to_name = _identity(ev).get("to_name")
    for text in lines:   # a later piece of a transition's incoming clip is a cut: its clip is the TO clip
        m = _IDENTITY.match(text)
        kind = m.group("kind").upper()
        if kind == "TO CLIP NAME":
            continue
        if kind == "FROM CLIP NAME" and to_name:
            text = m.group("lead") + to_name + m.group("trail")
        out.append(text)
    return out


def _named_line(edl: _Edl, ev: _Event, kind: str, value: str) -> str:
    """A `* FROM CLIP NAME:` or `* SOURCE FILE:` line in the file's own style (its first such line), else Avid's."""
    style = None
    for source in [ev] + edl.events:
        for line in source.body:
            m = _IDENTITY.match(line.text)
            if m and m.group("kind").upper() == kind:
                return m.group("lead") + value + m.group("trail")
            if m and style is None:
                style = m
    if style is not None:   # the file's way of writing comments: `*FROM` or `* FROM`, and what ends the line
        star = re.match(r"\*\s*", style.group("lead")).group(0)
        return f"{star}{kind}: {value}{style.group('trail')}"
    return {"FROM CLIP NAME": "* FROM CLIP NAME:  ", "SOURCE FILE": "* SOURCE FILE: "}[kind] + value


def _ref_identity(ref) -> dict:
    meta = ref.metadata.get(EDL) or {}
    out = {"reel": meta.get("reel"), "clip": meta.get("clip_name"), "file": meta.get("source_file")}
    if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        out["url"] = ref.target_url
    return {k: v for k, v in out.items() if v}


def _records(g: _Group, ev: _Event, rate: Fraction, reels: _Reels, first_of_transition: bool) -> list[str]:
    """The `* LTX-RETAKE` lines of a piece that carries versions: the original media (with the EDL's rate and the
    version shown) and one record per version."""
    item = g.state.item
    refs = item.media_references()
    meta = item.metadata.get(NS) or {}
    default = refs.get(otio.schema.Clip.DEFAULT_MEDIA_KEY)
    original = {"rate": str(rate), "active": meta.get("active") or ("original" if g.state.original else g.state.key),
                "name": meta.get("original_name") or item.name, "lines": _identity_lines(ev, first_of_transition),
                **(_ref_identity(default) if default is not None else {})}
    lines = _ltx_lines("ORIGINAL", original)
    df = _drop(ev.head.sin, ev, rate)
    for key in sorted(k for k in refs if k != otio.schema.Clip.DEFAULT_MEDIA_KEY):
        ref = refs[key]
        available = getattr(ref, "available_range", None)
        start = round(_frames_of(available.start_time, float(rate))) if available else round(g.state.src)
        frames = round(_frames_of(available.duration, float(rate))) if available else g.e - g.s
        record = {"key": key, "reel": reels.of(key, ref), "name": ref.name or key,
                  "url": str(getattr(ref, "target_url", "")), "start": format_timecode(start, rate, df),
                  "frames": frames, "meta": dict(ref.metadata.get(NS) or {})}
        lines += _ltx_lines("VERSION", record)
    return lines


def _render_event(edl: _Edl, ev: _Event, groups: list[_Group], base: int, width: int, rate: Fraction,
                  frate: float, reels: _Reels) -> bytes:
    eol = ev.head.line.eol or edl.eol
    sep = []
    for line in ev.tail:
        if line.kind != "blank":
            break
        sep.append(line.text)
    texts: list[str] = []
    for n, g in enumerate(groups):
        number = f"{base + n:0{width}d}"
        first_of_transition = bool(ev.tr) and g.s == ev.rin and g.state.original
        ref = g.state.item.media_reference if g.state.item is not None else None
        reel = ev.head.reel if ref is None or (g.state.original and not g.state.versions) else reels.of(g.state.key, ref)
        code = ev.head.chan if set(g.channels) == set(ev.channels) else \
            _CODES.get(tuple(c for c in g.channels if c in ("V", "A1", "A2")), "NONE")
        src_in, src_out = round(g.state.src), round(g.src_out)
        if g.state.original and g.e == ev.rout:   # the event's own out (M2 events round it their own way)
            src_out = ev.sout
        head = ev.head
        fields = dict(num=number, reel=reel, chan=code,
                      sin=_tc_text(src_in, rate, _drop(head.sin, ev, rate), head.sin),
                      sout=_tc_text(src_out, rate, _drop(head.sout, ev, rate), head.sout),
                      rin=_tc_text(g.s, rate, _drop(head.rin, ev, rate), head.rin),
                      rout=_tc_text(g.e, rate, _drop(head.rout, ev, rate), head.rout))
        if first_of_transition:
            out_line = ev.heads[0]
            lead = len(out_line.line.text) - len(out_line.line.text.lstrip())
            t = out_line.line.text
            texts.append(t[:lead + out_line.m.start("num")] + number + t[lead + out_line.m.end("num"):])
            if set(g.channels) != set(ev.channels):
                texts[-1] = _event_text(out_line, num=number, chan=code)
            texts.append(_event_text(head, **fields))
        else:
            texts.append(_event_text(head, edit="C", dur=None, **fields))
        texts.extend(_body(edl, ev, g, reel, src_in, rate, reels, first_of_transition))
        if n < len(groups) - 1:
            texts.extend(sep)
    rendered = eol.join(t.encode(edl.encoding, errors="replace") for t in texts) + eol
    tail = b"".join(line.raw for line in ev.tail)
    last = (ev.body or [h.line for h in ev.heads])[-1] if not ev.tail else None
    if last is not None and not last.eol:   # the file ended without a line ending: so does the edit
        rendered = rendered[: -len(eol)]
    return rendered + tail


def _body(edl: _Edl, ev: _Event, g: _Group, reel: str, src_in: int, rate: Fraction, reels: _Reels,
          first_of_transition: bool) -> list[str]:
    """The lines under one of a changed event's event lines: the comments that belong to that piece."""
    out: list[str] = []
    state = g.state
    holds_markers = ev.channels and ev.channels[0] in g.channels
    identity_done = False
    extra = [c for c in g.channels if c not in ("V", "A1", "A2")]
    original_extra = [c for c in ev.channels if c not in ("V", "A1", "A2")]
    aud_done = False

    def identity() -> list[str]:
        if state.original:
            return _identity_lines(ev, first_of_transition)
        ref = state.item.media_reference
        file = Path(str(getattr(ref, "target_url", "") or ref.name)).name
        return [_named_line(edl, ev, "FROM CLIP NAME", ref.name or state.key), _named_line(edl, ev, "SOURCE FILE", file)]

    for line in ev.body:
        text = line.text
        stripped = text.strip()
        if _LTX.match(stripped):
            continue
        if _IDENTITY.match(text):
            if not identity_done:
                out.extend(identity())
                identity_done = True
            continue
        kind = line.kind
        if kind == "effect":
            if first_of_transition:
                out.append(text)
            continue
        if kind == "m2":
            m = _M2.match(stripped)
            if m is None or (g.s == ev.rin and state.original):
                out.append(text)
            else:
                lead = len(text) - len(text.lstrip())
                rs, re_ = m.span("reel")
                old = m.group("reel")
                new_reel = reel.ljust(len(old)) if len(reel) <= len(old) else reel
                t = stripped[:rs] + new_reel + stripped[re_:]
                shift = len(new_reel) - len(old)
                ts, te = m.span("tc")
                df = _drop(m.group("tc"), ev, rate)
                t = t[:ts + shift] + _tc_text(src_in, rate, df, m.group("tc")) + t[te + shift:]
                out.append(text[:lead] + t)
            continue
        if kind == "aud":
            if not aud_done and extra:
                out.append(text if extra == original_extra else
                           "AUD  " + "    ".join(c[1:] for c in extra))
            aud_done = True
            continue
        loc = _LOC.match(stripped)
        if loc:
            try:
                at = _loc_record(ev, _frames(loc.group("tc"), rate, _drop(loc.group("tc"), ev, rate)), _speed(ev, rate)[0])
            except InputError:
                at = ev.rin
            inside = g.s <= at < g.e or (g.s == ev.rin and not ev.rin <= at < ev.rout)
            if holds_markers and inside:
                out.append(text)
            continue
        out.append(text)
    if not identity_done and not state.original:
        out[0:0] = identity()
    if extra and not aud_done:
        out.append("AUD  " + "    ".join(c[1:] for c in extra))
    if state.versions and state.item is not None:
        out.extend(_records(g, ev, rate, reels, first_of_transition))
    return out
