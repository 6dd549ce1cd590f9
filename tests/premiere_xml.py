"""Premiere-style FCP7 XML (xmeml v4) for tests: a sequence at any rate, clips on V1 linked to their stereo sound on
A1 and A2, `<file>` defined once and referred to by id, Windows `file://localhost/C%3a/...` paths, tabs, and an
optional structure checker for what Premiere and Final Cut Pro 7 require of the elements ltx-retake writes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import quote

from ltx_retake.timing import format_timecode, is_drop_frame_rate

__all__ = ["Shot", "premiere_xml", "check_xmeml", "ORDER"]

TICKS = 254016000000


@dataclass(frozen=True)
class Shot:
    """One clip on V1 (and its sound): its media file, where it starts in the media, how long, the gap before it."""

    name: str
    media_in: int            # frames into the media
    frames: int              # length on the timeline
    media_tc: int = 0        # the media's first timecode, as a frame number
    media_frames: int = 2000
    gap_before: int = 0


def _rate(rate: Fraction) -> tuple[int, str]:
    if rate.denominator == 1001:
        return rate.numerator // 1000, "TRUE"
    return int(rate), "FALSE"


def premiere_xml(rate: Fraction, shots: list[Shot], *, start_frame: int = 0, name: str = "cut",
                 folder: str = "C:/Users/editor/Media", speed: dict[int, tuple[float, bool]] | None = None) -> bytes:
    """An xmeml v4 sequence as Premiere exports it. `speed` gives shot index -> (percent, variable) for a Time Remap."""
    base, ntsc = _rate(rate)
    df = is_drop_frame_rate(rate)
    t = "\t"

    def rate_xml(depth: int) -> str:
        i = t * depth
        return f"{i}<rate>\n{i}\t<timebase>{base}</timebase>\n{i}\t<ntsc>{ntsc}</ntsc>\n{i}</rate>\n"

    def tc_xml(depth: int, frame: int) -> str:
        i = t * depth
        string = format_timecode(frame, rate, df)
        if df:
            string = string.replace(":", ";")
        return (f"{i}<timecode>\n{rate_xml(depth + 1)}{i}\t<string>{string}</string>\n{i}\t<frame>{frame}</frame>\n"
                f"{i}\t<displayformat>{'DF' if df else 'NDF'}</displayformat>\n{i}</timecode>\n")

    starts, at = [], 0
    for s in shots:
        at += s.gap_before
        starts.append(at)
        at += s.frames
    total = at
    n_clips = len(shots)
    ids = {(k, i): f"clipitem-{k * n_clips + i + 1}" for k in range(3) for i in range(n_clips)}
    index = {}   # clip index on its track (1-based, gaps do not count)
    for i in range(n_clips):
        index[i] = i + 1

    def links(i: int, depth: int) -> str:
        p = t * depth
        out = f"{p}<link>\n{p}\t<linkclipref>{ids[(0, i)]}</linkclipref>\n{p}\t<mediatype>video</mediatype>\n" \
              f"{p}\t<trackindex>1</trackindex>\n{p}\t<clipindex>{index[i]}</clipindex>\n{p}</link>\n"
        for k in (1, 2):
            out += (f"{p}<link>\n{p}\t<linkclipref>{ids[(k, i)]}</linkclipref>\n{p}\t<mediatype>audio</mediatype>\n"
                    f"{p}\t<trackindex>{k}</trackindex>\n{p}\t<clipindex>{index[i]}</clipindex>\n"
                    f"{p}\t<groupindex>1</groupindex>\n{p}</link>\n")
        return out

    def file_xml(i: int, depth: int, define: bool) -> str:
        p = t * depth
        if not define:
            return f'{p}<file id="file-{i + 1}"/>\n'
        s = shots[i]
        url = "file://localhost/" + quote(f"{folder}/{s.name}".replace(":", "%3a", 1), safe="/%'()!")
        return (f'{p}<file id="file-{i + 1}">\n{p}\t<name>{s.name}</name>\n{p}\t<pathurl>{url}</pathurl>\n'
                f"{rate_xml(depth + 1)}{p}\t<duration>{s.media_frames}</duration>\n{tc_xml(depth + 1, s.media_tc)}"
                f"{p}\t<media>\n{p}\t\t<video>\n{p}\t\t\t<samplecharacteristics>\n{rate_xml(depth + 4)}"
                f"{p}\t\t\t\t<width>1920</width>\n{p}\t\t\t\t<height>1080</height>\n{p}\t\t\t</samplecharacteristics>\n"
                f"{p}\t\t</video>\n{p}\t\t<audio>\n{p}\t\t\t<samplecharacteristics>\n{p}\t\t\t\t<depth>16</depth>\n"
                f"{p}\t\t\t\t<samplerate>48000</samplerate>\n{p}\t\t\t</samplecharacteristics>\n"
                f"{p}\t\t\t<channelcount>2</channelcount>\n{p}\t\t</audio>\n{p}\t</media>\n{p}</file>\n")

    def remap(i: int, depth: int) -> str:
        if not speed or i not in speed:
            return ""
        percent, variable = speed[i]
        p = t * depth
        return (f"{p}<filter>\n{p}\t<effect>\n{p}\t\t<name>Time Remap</name>\n{p}\t\t<effectid>timeremap</effectid>\n"
                f"{p}\t\t<effectcategory>motion</effectcategory>\n{p}\t\t<effecttype>motion</effecttype>\n"
                f"{p}\t\t<mediatype>video</mediatype>\n"
                f'{p}\t\t<parameter authoringApp="PremierePro">\n{p}\t\t\t<parameterid>variablespeed</parameterid>\n'
                f"{p}\t\t\t<value>{1 if variable else 0}</value>\n{p}\t\t</parameter>\n"
                f'{p}\t\t<parameter authoringApp="PremierePro">\n{p}\t\t\t<parameterid>speed</parameterid>\n'
                f"{p}\t\t\t<value>{percent}</value>\n{p}\t\t</parameter>\n"
                f'{p}\t\t<parameter authoringApp="PremierePro">\n{p}\t\t\t<parameterid>reverse</parameterid>\n'
                f"{p}\t\t\t<value>FALSE</value>\n{p}\t\t</parameter>\n{p}\t</effect>\n{p}</filter>\n")

    def clipitem(k: int, i: int) -> str:
        s = shots[i]
        p = t * 5
        audio = k > 0
        head = f'{p}<clipitem id="{ids[(k, i)]}"' + (' premiereChannelType="stereo"' if audio else "") + ">\n"
        ticks_in = s.media_in * TICKS * rate.denominator // rate.numerator
        ticks_out = (s.media_in + s.frames) * TICKS * rate.denominator // rate.numerator
        body = (f"{p}\t<masterclipid>masterclip-{i + 1}</masterclipid>\n{p}\t<name>{s.name}</name>\n"
                f"{p}\t<enabled>TRUE</enabled>\n{p}\t<duration>{s.media_frames}</duration>\n{rate_xml(6)}"
                f"{p}\t<start>{starts[i]}</start>\n{p}\t<end>{starts[i] + s.frames}</end>\n"
                f"{p}\t<in>{s.media_in}</in>\n{p}\t<out>{s.media_in + s.frames}</out>\n"
                f"{p}\t<pproTicksIn>{ticks_in}</pproTicksIn>\n{p}\t<pproTicksOut>{ticks_out}</pproTicksOut>\n")
        if not audio:
            body += f"{p}\t<alphatype>none</alphatype>\n"
        body += file_xml(i, 6, define=k == 0)
        if audio:
            body += f"{p}\t<sourcetrack>\n{p}\t\t<mediatype>audio</mediatype>\n{p}\t\t<trackindex>{k}</trackindex>\n{p}\t</sourcetrack>\n"
        else:
            body += remap(i, 6)
        body += links(i, 6)
        body += (f"{p}\t<logginginfo>\n{p}\t\t<description></description>\n{p}\t\t<scene></scene>\n"
                 f"{p}\t\t<shottake></shottake>\n{p}\t\t<lognote></lognote>\n{p}\t</logginginfo>\n"
                 f"{p}\t<labels>\n{p}\t\t<label2>Iris</label2>\n{p}\t</labels>\n")
        return head + body + f"{p}</clipitem>\n"

    def track(k: int, attrs: str, tail: str) -> str:
        items = "".join(clipitem(k, i) for i in range(n_clips))
        return f"\t\t\t\t<track{attrs}>\n{items}\t\t\t\t\t<enabled>TRUE</enabled>\n\t\t\t\t\t<locked>FALSE</locked>\n{tail}\t\t\t\t</track>\n"

    video_attrs = ' TL.SQTrackShy="0" TL.SQTrackExpandedHeight="25" TL.SQTrackExpanded="0" MZ.TrackTargeted="1"'

    def audio_attrs(k: int) -> str:
        return (' TL.SQTrackAudioKeyframeStyle="0" TL.SQTrackShy="0" MZ.TrackTargeted="1" PannerCurrentValue="0.5" '
                f'currentExplodedTrackIndex="{k - 1}" totalExplodedTrackCount="2" premiereTrackType="Stereo"')

    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n<xmeml version="4">\n'
            f'\t<sequence id="sequence-1" TL.SQAudioVisibleBase="0" MZ.Sequence.EditingModeGUID="x" explodedTracks="true">\n'
            f"\t\t<uuid>5ea30a6b-552f-4722-be92-6dfdb66c97e6</uuid>\n\t\t<duration>{total}</duration>\n{rate_xml(2)}"
            f"\t\t<name>{name}</name>\n\t\t<media>\n\t\t\t<video>\n\t\t\t\t<format>\n\t\t\t\t\t<samplecharacteristics>\n"
            f"{rate_xml(6)}\t\t\t\t\t\t<width>1920</width>\n\t\t\t\t\t\t<height>1080</height>\n"
            f"\t\t\t\t\t</samplecharacteristics>\n\t\t\t\t</format>\n"
            f"{track(0, video_attrs, '')}\t\t\t</video>\n\t\t\t<audio>\n\t\t\t\t<numOutputChannels>2</numOutputChannels>\n"
            f"{track(1, audio_attrs(1), chr(9) * 5 + '<outputchannelindex>1</outputchannelindex>' + chr(10))}"
            f"{track(2, audio_attrs(2), chr(9) * 5 + '<outputchannelindex>2</outputchannelindex>' + chr(10))}"
            f"\t\t\t</audio>\n\t\t</media>\n{tc_xml(2, start_frame)}"
            f"\t\t<labels>\n\t\t\t<label2>Forest</label2>\n\t\t</labels>\n\t</sequence>\n</xmeml>\n")
    return body.encode("utf-8")


# --- what Premiere and Final Cut Pro 7 require of the elements ltx-retake writes -----------------------------------
# Apple's xmeml DTD text is not copied here (it is Apple's); the checker holds what the Elements Catalog of the Final
# Cut Pro XML Interchange Format requires of a sequence, clip item, file, link and timecode (REQUIRED), and the order
# in which Premiere writes their children (ORDER, as in the three corpus exports: new elements must not stand out).

ORDER = {
    "clipitem": ["masterclipid", "ismasterclip", "name", "enabled", "duration", "rate", "start", "end", "in", "out",
                 "pproTicksIn", "pproTicksOut", "alphatype", "pixelaspectratio", "anamorphic", "file", "sequence",
                 "sourcetrack", "filter", "marker", "link", "logginginfo", "colorinfo", "labels", "comments"],
    "file": ["name", "pathurl", "mediaSource", "rate", "duration", "timecode", "media"],
    "link": ["linkclipref", "mediatype", "trackindex", "clipindex", "groupindex"],
    "track": ["clipitem", "generatoritem", "transitionitem", "enabled", "locked", "outputchannelindex"],
    "timecode": ["rate", "string", "frame", "displayformat", "reel"],
}
REQUIRED = {
    "clipitem": {"name", "rate", "start", "end", "in", "out"},
    "file": {"name"},
    "link": {"linkclipref"},
    "sequence": {"name", "duration", "rate", "media"},
    "timecode": {"rate", "frame"},
}


def check_xmeml(data: bytes) -> list[str]:
    """Every breach of the structure above, of id uniqueness, of file ids defined before they are referred to, and of
    links that lead nowhere (an empty list: the file imports)."""
    problems: list[str] = []
    root = ET.fromstring(data)
    if root.tag != "xmeml":
        return [f"the root is <{root.tag}>"]
    clip_ids: dict[str, int] = {}
    defined: set[str] = set()
    for e in root.iter():
        full = e.tag == "file" and len(e) > 0 or e.tag != "file"
        if e.tag == "file" and e.get("id"):
            if len(e) == 0 and e.get("id") not in defined:
                problems.append(f"<file id={e.get('id')!r}/> is referred to before it is defined")
            elif len(e) > 0:
                if e.get("id") in defined:
                    problems.append(f"<file id={e.get('id')!r}> is defined twice")
                defined.add(e.get("id"))
        if e.tag == "sequence" and len(e) == 0:
            continue
        if e.tag in ("clipitem", "generatoritem") and e.get("id"):
            clip_ids[e.get("id")] = clip_ids.get(e.get("id"), 0) + 1
        if not full:
            continue
        tags = [c.tag for c in e]
        missing = REQUIRED.get(e.tag, set()) - set(tags)
        if e.tag == "file" and "pathurl" not in tags and "mediaSource" not in tags:
            missing |= {"pathurl"}
        if e.tag == "clipitem" and not ({"file", "sequence"} & set(tags)):
            missing |= {"file"}
        if missing:
            problems.append(f"<{e.tag} id={e.get('id')!r}> lacks {sorted(missing)}")
        order = ORDER.get(e.tag)
        if order:
            rank = {t: (0 if t in ("clipitem", "generatoritem", "transitionitem") and e.tag == "track" else order.index(t))
                    for t in order}
            known = [t for t in tags if t in order]
            if [rank[t] for t in known] != sorted(rank[t] for t in known):
                problems.append(f"<{e.tag} id={e.get('id')!r}> has its children out of order: {known}")
    for ident, n in clip_ids.items():
        if n > 1:
            problems.append(f"the clip item id {ident!r} is used {n} times")
    for link in root.iter("link"):
        ref = link.findtext("linkclipref")
        if ref not in clip_ids:
            problems.append(f"a link refers to {ref!r}, which is no clip item")
    return problems
