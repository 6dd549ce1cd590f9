"""FCPXML read right and written back in place: the corpus files and generated projects at seven rates.

Times are checked against the XML itself, computed here independently (ElementTree, exact fractions) from the
attributes: every clip's record start and end and its media in-point. A retake through the CLI with stand-in media
changes only the retaken spine item (a structural diff of the two files lists every other element unchanged, and
the bytes outside the edit are the input's), the output follows the DTD's structure, re-reads, and shows the
version over exactly the window, checked by the frame index each decoded frame carries.
"""

from __future__ import annotations

import difflib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio
import pytest

from ltx_retake.adapters import fcpx_file
from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.testcard import read_index
from ltx_retake.adapters.timeline_files import read_document, read_timeline, save
from ltx_retake.cli import main
from ltx_retake.document import ReadOptions
from ltx_retake.errors import InputError, SelectionError, TimelineReadError, UnsupportedEditError
from ltx_retake.origin import origin_of
from ltx_retake.plan import source_clip, time_scalar
from ltx_retake.relink import Relinker
from ltx_retake.selection import find_track, select_clip, select_markers, track_label
from ltx_retake.versions import list_versions

from fcpxml_gen import make_fcpxml
from showing import indices_shown as index_shown_at
from standins import standin_media

MEDIA = FfmpegMediaTool()
RATES = {"23.976": Fraction(24000, 1001), "24": Fraction(24), "25": Fraction(25), "29.97DF": Fraction(30000, 1001),
         "30": Fraction(30), "50": Fraction(50), "59.94DF": Fraction(60000, 1001)}
CORPUS_FILES = ["fcpxml/fcpx_example.fcpxml", "fcpxml/fcp113_audition_conform.fcpxml", "fcpxml/fcp111_5994_mixed_rates.fcpxml"]


# --- the XML read here, independently ---------------------------------------------------------------------------

def T(text: str | None) -> Fraction:
    num, _, den = (text or "0s").rstrip("s").partition("/")
    return Fraction(int(num), int(den or 1))


@dataclass(frozen=True)
class Placed:
    name: str
    lane: int
    rec: Fraction           # record start, seconds from the sequence's first frame
    end: Fraction
    asset: str
    media_in: Fraction      # media time (the asset's own time) of the first frame shown
    offset: Fraction        # as written


class XmlView:
    """The media clips of a project's own storylines, from the XML attributes (no nests: compound and multicam
    clips are not media clips)."""

    def __init__(self, data: bytes):
        self.root = ET.fromstring(data)
        self.assets = {a.get("id"): a for a in self.root.iter("asset")}
        self.rates = {f.get("id"): 1 / T(f.get("frameDuration")) for f in self.root.iter("format") if f.get("frameDuration")}

    def sequence(self, project: str | None = None) -> ET.Element:
        for p in self.root.iter("project"):
            if project is None or p.get("name") == project:
                return p.find("sequence")
        raise KeyError(project)

    def src(self, asset_id: str) -> str:
        a = self.assets[asset_id]
        rep = a.find("media-rep")
        return rep.get("src") if rep is not None else a.get("src")

    def placed(self, project: str | None = None) -> list[Placed]:
        seq = self.sequence(project)
        out: list[Placed] = []
        self._spine(seq.find("spine"), -T(seq.get("tcStart")), 0, out)
        return out

    def _spine(self, spine, rec0, lane, out) -> None:
        for el in spine:
            if el.tag != "transition":
                self._visit(el, rec0 + T(el.get("offset")), lane, out, T(el.get("offset")))

    def _visit(self, el, rec, lane, out, offset) -> None:
        if el.tag == "audition":
            el = next(iter(el))
        local = T(el.get("start")) if el.get("start") else (
            T(self.assets[el.get("ref")].get("start")) if el.tag == "asset-clip" else Fraction(0))
        media = self._media(el, local)
        if media is not None:
            out.append(Placed(el.get("name"), lane, rec, rec + T(el.get("duration")), media[0], media[1], offset))
        for child in el:
            if child.get("lane") is None:
                continue
            own = int(child.get("lane"))
            eff = own if lane == 0 or (own > 0) != (lane > 0) else lane + own
            at = rec + T(child.get("offset")) - local
            if child.tag == "spine":
                self._spine(child, at, eff, out)
            elif child.tag in ("asset-clip", "clip", "audio", "video", "ref-clip", "gap"):
                self._visit(child, at, eff, out, T(child.get("offset")))

    def _media(self, el, local):
        tmap = el.find("timeMap")
        if tmap is not None:
            (t0, v0), (t1, v1) = [(T(p.get("time")), T(p.get("value"))) for p in tmap.findall("timept")][::len(tmap) - 1]
            local = v0 + (local - t0) * (v1 - v0) / (t1 - t0)
        if el.tag == "asset-clip":
            return el.get("ref"), local
        if el.tag != "clip":
            return None
        own = [c for c in el if c.tag in ("video", "audio", "gap", "asset-clip", "spine") and c.get("lane") is None]
        if len(own) != 1:
            return None
        inner = own[0]
        t = local
        if inner.tag == "gap":
            t = T(inner.get("start")) + t - T(inner.get("offset"))
            inner = next(iter(inner))
        start = T(inner.get("start")) if inner.get("start") else T(self.assets[inner.get("ref")].get("start"))
        return inner.get("ref"), start + t - T(inner.get("offset"))


def lane_of(timeline, ti: int) -> int:
    label = track_label(timeline, ti).split(" ")[0]
    return int(label[1:]) - 1 if label[0] == "V" else -int(label[1:])


def check_times_against_the_xml(timeline: otio.schema.Timeline, view: XmlView, project: str | None = None) -> int:
    """Every media clip on the timeline's tracks is where the XML puts it, showing what the XML says; returns the count."""
    expected = {(p.lane, p.rec): p for p in view.placed(project)}
    seq = view.sequence(project)
    rate = view.rates[seq.get("format")]
    assert fcpx_file._exact(timeline.global_start_time.rate) == rate
    assert fcpx_file._seconds(timeline.global_start_time) == T(seq.get("tcStart"))
    seen = 0
    for ti, track in enumerate(timeline.tracks):
        ranges = track.range_of_all_children()
        for item in track:
            if not isinstance(item, otio.schema.Clip) or isinstance(item.media_reference, otio.schema.GeneratorReference):
                continue
            rng = ranges[item]
            rec = fcpx_file._seconds(rng.start_time)
            key = min(expected, key=lambda k: (k[0] != lane_of(timeline, ti), abs(k[1] - rec)))
            want = expected.pop(key)
            assert key[0] == lane_of(timeline, ti) and abs(want.rec - rec) < Fraction(1, 10**6), (item.name, rec, want)
            assert abs(fcpx_file._seconds(rng.end_time_exclusive()) - want.end) < Fraction(1, 10**6), item.name
            assert item.name == want.name
            assert abs(fcpx_file._seconds(item.source_range.start_time) - want.media_in) < Fraction(1, 10**6), item.name
            assert item.media_reference.target_url == view.src(want.asset)
            seen += 1
    assert not expected, f"clips the reader did not place: {sorted(expected.values(), key=lambda p: p.rec)}"
    return seen


# --- a structural diff, the DTD's structure, the frames shown -----------------------------------------------------

def _records(data: bytes) -> list[tuple]:
    out = []

    def walk(el, depth):
        out.append((depth, el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip()))
        for c in el:
            walk(c, depth + 1)

    walk(ET.fromstring(data), 0)
    return out


def structural_diff(a: bytes, b: bytes) -> tuple[list[tuple], list[tuple], int]:
    """(elements only in a, elements only in b, elements unchanged), in document order, by tag, attributes and text."""
    ra, rb = _records(a), _records(b)
    sm = difflib.SequenceMatcher(a=ra, b=rb, autojunk=False)
    gone, new, same = [], [], 0
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            same += i2 - i1
        else:
            gone += ra[i1:i2]
            new += rb[j1:j2]
    return gone, new, same


def subtree(data: bytes, match) -> list[tuple]:
    """The records of the first element (and its descendants) that `match(element)` accepts."""
    root = ET.fromstring(data)
    for el in root.iter():
        if match(el):
            return _records(ET.tostring(el))
    raise AssertionError("no such element")


def assert_only_changed(before: bytes, after: bytes, item_name: str, item_offset: str, shot: str = "B") -> None:
    """Only the spine item (or connected clip) `item_name` at `item_offset` changed, into pieces named after it, and
    <resources> gained assets and formats; every other element is unchanged, and so is every byte outside the edit."""
    gone, new, same = structural_diff(before, after)
    target = subtree(before, lambda el: el.get("name") == item_name and el.get("offset") == item_offset)
    inside = {r[1:] for r in target}
    for r in gone:
        assert r[1:] in inside, f"an element outside {item_name} changed: {r}"
    names = [dict(r[2]).get("name", "") for r in new if r[1] in ("asset-clip", "clip", "video", "audio")]
    for r in new:
        assert r[1] in {"asset", "format", "media-rep", "metadata", "md", "asset-clip", "clip", "video", "audio", "gap",
                        "marker", "keyword", "conform-rate", "adjust-colorConform"}, r
    assert all(n.startswith(shot) or n == "" for n in names), names
    assert same >= len(_records(before)) - len(target)
    # bytes: the input up to the end of <resources>' last child, and from the end of the item on, are untouched
    res_end = before.rindex(b"</resources>")
    res_end = before.rindex(b">", 0, res_end) + 1
    start = next(m.start() for m in re.finditer(rb"<[^>]+>", before[res_end:])
                 if f'name="{item_name}"'.encode() in m.group() and f'offset="{item_offset}"'.encode() in m.group()) + res_end
    assert after[:res_end] == before[:res_end]
    assert before[res_end:start].strip() in after
    tail = _element_end(before, start)
    assert after.endswith(before[tail:])


def _element_end(data: bytes, start: int) -> int:
    tag = re.match(rb"<([^\s/>]+)", data[start:]).group(1)
    head_end = data.index(b">", start) + 1
    if data[head_end - 2:head_end] == b"/>":
        return head_end
    depth, i = 1, head_end
    pat = re.compile(rb"<(/?)" + re.escape(tag) + rb"[\s/>]")
    while depth:
        m = pat.search(data, i)
        close = data.index(b">", m.start()) + 1
        if m.group(1):
            depth -= 1
        elif data[close - 2:close] != b"/>":
            depth += 1
        i = close
    return i


_RANK = {"note": 0, "conform-rate": 1, "timeMap": 2}
_ANCHOR = {"audio", "video", "clip", "title", "caption", "mc-clip", "ref-clip", "sync-clip", "asset-clip", "audition", "spine", "gap"}
_MARK = {"marker", "chapter-marker", "rating", "keyword", "analysis-marker"}


def _rank(tag: str) -> int:
    if tag in _RANK:
        return _RANK[tag]
    if tag.startswith("adjust-") or tag == "object-tracker":
        return 3
    if tag in _ANCHOR:
        return 4
    if tag in _MARK:
        return 5
    return {"audio-channel-source": 6, "filter-video": 7, "filter-video-mask": 7, "filter-audio": 8, "metadata": 9}.get(tag, 99)


def check_dtd_structure(data: bytes) -> None:
    """The structure the FCPXML DTD requires of the elements a write makes or edits: required attributes, allowed
    children and their order (asset, media-rep, format, asset-clip, clip, gap, spine, sequence, metadata, md)."""
    root = ET.fromstring(data)
    minor = int(root.get("version").split(".")[1])
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids)), "ids must be unique"
    refs = set(ids)
    for el in root.iter():
        kids = [c.tag for c in el]
        if el.tag == "asset":
            assert el.get("id")
            if minor >= 9:
                assert kids and kids[0] == "media-rep" and set(kids) <= {"media-rep", "metadata"}
                assert kids.index("metadata") == len(kids) - 1 if "metadata" in kids else True
            else:
                assert el.get("src") and set(kids) <= {"bookmark", "metadata"} and kids == sorted(kids)
        elif el.tag == "media-rep":
            assert el.get("src") and el.get("kind", "original-media") in ("original-media", "proxy-media")
        elif el.tag == "format":
            assert el.get("id")
        elif el.tag in ("asset-clip", "clip", "gap"):
            if el.tag == "asset-clip":
                assert el.get("ref") in refs
            if el.tag != "asset-clip":
                assert el.get("duration")
            ranks = [_rank(k) for k in kids]
            assert ranks == sorted(ranks) and 99 not in ranks, (el.tag, el.get("name"), kids)
        elif el.tag == "spine":
            assert set(kids) <= {"audio", "video", "clip", "title", "mc-clip", "ref-clip", "sync-clip", "asset-clip",
                                 "audition", "gap", "transition"}, kids
        elif el.tag == "sequence":
            assert el.get("format") in refs and [k for k in kids if k != "note"][0] == "spine" and kids.count("spine") == 1
        elif el.tag == "metadata":
            assert set(kids) <= {"md"}
        elif el.tag == "md":
            assert el.get("key")
        for key in ("ref", "format"):
            if el.get(key) and el.tag not in ("mc-source",):
                assert el.get(key) in refs, (el.tag, key, el.get(key))


def shown_on_v1(data: bytes, frames: range, rate: Fraction, where) -> dict[int, tuple[str, int]]:
    """The file and file frame the primary storyline shows at each record frame, from the XML's attributes alone.
    `where(asset element) -> (path, the source time of the file's first frame)`."""
    view = XmlView(data)
    seq = view.sequence()
    zero = T(seq.get("tcStart"))
    items = [el for el in seq.find("spine") if el.tag == "asset-clip"]
    out = {}
    for t in frames:
        at = zero + Fraction(t) / rate
        el = next(e for e in items if T(e.get("offset")) <= at < T(e.get("offset")) + T(e.get("duration")))
        asset = view.assets[el.get("ref")]
        local = T(el.get("start")) if el.get("start") else T(asset.get("start"))
        path, first = where(asset)
        frame = (local + at - T(el.get("offset")) - first) * rate
        assert frame.denominator == 1, f"record frame {t} falls between frames of {path}"
        out[t] = (path, int(frame))
    return out


def indices_shown(shown: dict[int, tuple[str, int]]) -> dict[int, int | None]:
    wanted: dict[str, set[int]] = {}
    for path, f in shown.values():
        wanted.setdefault(path, set()).add(f)
    pics = {path: MEDIA.read_frames(path, fs) for path, fs in wanted.items()}
    return {t: read_index(pics[path][f]) for t, (path, f) in shown.items()}


def standin_locator(made: dict, rate: Fraction):
    def where(asset) -> tuple[str, Fraction]:
        rep = asset.find("media-rep")
        src = rep.get("src") if rep is not None else asset.get("src")
        path = unquote(urlparse(src).path)
        name = path.rsplit("/", 1)[-1]
        if name in made:
            return str(made[name].path), Fraction(made[name].first) / rate
        return path, T(asset.get("start"))
    return where


def retake(*args) -> int:
    return main(["retake", *map(str, args), "--provider", "local", "--yes", "--quiet"])


# --- the corpus ---------------------------------------------------------------------------------------------------

def _timelines(path: Path):
    return fcpx_file.read(path.read_bytes(), path, ReadOptions(), lambda clip: None)


def test_corpus_projects_read_right(corpus):
    checked = 0
    for name in CORPUS_FILES:
        path = corpus / name
        timelines, notes = _timelines(path)
        view = XmlView(path.read_bytes())
        for tl in timelines:
            checked += check_times_against_the_xml(tl, view, tl.name)
            for item in tl.find_children():
                assert origin_of(item) is not None or isinstance(item, (otio.schema.Gap, otio.schema.Track))

    # the library: two projects, chosen by name; lanes as an editor numbers them; connected clips in their parent's time
    with pytest.raises(TimelineReadError, match="choose one with --timeline"):
        read_timeline(corpus / CORPUS_FILES[0])
    tl = read_timeline(corpus / CORPUS_FILES[0], name="OpenTimeline_Project")
    assert [t.name for t in tl.tracks] == ["V1", "V2", "V3", "A1"]
    v2 = tl.tracks[find_track(tl, "V2")]
    at = {c.name: r for c, r in ((c, v2.range_of_child(c)) for c in v2.find_clips(shallow_search=True))}
    assert at["IMG_0513"].start_time.to_seconds() == 20  # OTIO's reader: 3,620 s
    assert [type(i).__name__ for i in tl.tracks[0]][9] == "Stack"  # compound_clip_1, a nest
    assert select_markers(tl)[0].prompt == "Marker 1"

    # FCPXML 1.13 at 23.976: the audition shows its pick; media-rep paths; exact rates
    tl = read_timeline(corpus / CORPUS_FILES[1])
    (pick,) = tl.tracks[0].find_clips()
    assert pick.name == "chocolate for senses" and fcpx_file._exact(pick.source_range.start_time.rate) == Fraction(24000, 1001)
    assert pick.media_reference.target_url.endswith("Interviews/chocolate%20for%20senses.mov")
    assert pick.source_range.start_time.value == 6031  # 6037031/24000 s: frame 6031 at 23.976 (OTIO's reader: rate 23)

    # FCPXML 1.11 at 59.94: 23.976 and 29.97 media, constant time maps as speeds
    tl = read_timeline(corpus / CORPUS_FILES[2])
    assert fcpx_file._exact(tl.global_start_time.rate) == Fraction(60000, 1001)
    warps = {c.markers[0].name: time_scalar(c) for c in tl.tracks[0].find_clips(shallow_search=True)
             if c.effects and c.markers}
    assert warps["Shot_04"] == Fraction(149819760, 65872008).limit_denominator(100000)
    assert {m.name for c in tl.find_clips() for m in c.markers} >= {f"Shot_0{i}" for i in range(1, 10)}
    assert checked >= 40


def test_corpus_written_back_with_no_retake_is_identical(corpus, tmp_path):
    for name in CORPUS_FILES:
        path = corpus / name
        for tl in _timelines(path)[0]:
            document = read_document(path, ReadOptions(timeline_name=tl.name))
            out = save(document.timeline, tmp_path / f"{tl.name}.fcpxml", document=document)
            assert out.read_bytes() == path.read_bytes(), f"{name} / {tl.name}"


def test_what_a_file_cannot_hold_is_refused_with_what_to_do(corpus):
    tl = read_timeline(corpus / CORPUS_FILES[0], name="OpenTimeline_Project")
    nested = next(c for c in tl.tracks[0][9].find_clips())
    nested.name = "changed"
    (sentence,) = fcpx_file.cannot_hold(tl)
    assert "inside the compound clip 'compound_clip_1'" in sentence and "Break Apart" in sentence

    tl = read_timeline(corpus / CORPUS_FILES[1])
    tl.find_clips()[0].name = "changed"
    assert "Finalize Audition" in fcpx_file.cannot_hold(tl)[0]

    tl = read_timeline(corpus / CORPUS_FILES[2])
    retimed = next(c for c in tl.tracks[0].find_clips(shallow_search=True) if c.effects)
    retimed.enabled = False
    assert "speed change" in fcpx_file.cannot_hold(tl)[0]
    with pytest.raises(InputError, match="speed change"):
        fcpx_file.write((corpus / CORPUS_FILES[2]).read_bytes(), tl, Path("out.fcpxml"))


def _only_used(timeline: otio.schema.Timeline, names: set[str]) -> otio.schema.Timeline:
    """A timeline of only the clips whose media is named (stand-ins for them alone keep the test quick)."""
    track = otio.schema.Track()
    for clip in timeline.find_clips():
        if (clip.metadata.get("ltx_retake") or {}).get("media_hints", [""])[0] in names:
            track.append(clip.clone())
    out = otio.schema.Timeline()
    out.tracks.append(track)
    return out


@pytest.mark.slow
def test_corpus_retake_splits_the_picture_and_its_detached_sound(corpus, tmp_path):
    src = corpus / CORPUS_FILES[0]
    tl = read_timeline(src, name="OpenTimeline_Project")
    made = standin_media(_only_used(tl, {"IMG_0715.MOV"}), tmp_path / "media", handle_s=0)
    out = tmp_path / "out.fcpxml"
    assert retake(src, "--timeline", "OpenTimeline_Project", "--range", "60", "120", "--prompt", "snow",
                  "-o", out, "--media-search", tmp_path / "media") == 0
    before, after = src.read_bytes(), out.read_bytes()
    assert_only_changed(before, after, "IMG_0715", "0s", shot="IMG_0715")
    check_dtd_structure(after)
    new = read_timeline(out, name="OpenTimeline_Project")
    (picture, sound) = list_versions(new)  # the <clip>'s picture on V1 and its connected sound on A1, both retaken
    assert (picture.track, sound.track) == ("V1", "A1")
    assert picture.record_timecode == sound.record_timecode == "00:00:02:00-00:00:04:00"
    assert picture.versions == sound.versions == ("retake_v001",)
    pieces = [c.name for c in new.tracks[3].find_clips(shallow_search=True)][:3]
    assert pieces == ["IMG_0715", "IMG_0715_retake_v001", "IMG_0715"]
    view = XmlView(after)
    check_times_against_the_xml(new, view, "OpenTimeline_Project")
    assert made  # the stand-in was used: relinked by name


def test_corpus_mixed_rates_the_version_shows_over_the_marked_frames_by_content(corpus, tmp_path):
    """FCP 11 at 59.94 with 23.976 media: a clip frame lasts 2.5 project frames. A window marked on the project's
    frames shows the version over exactly those frames once written and read back, and every frame around it shows
    the moment of the shot it showed before (read by the stand-ins' frame index)."""
    src = corpus / CORPUS_FILES[2]
    tl = read_timeline(src)
    standin_media(_only_used(tl, {"TestVideo.mp4"}), tmp_path / "media", max_frames=12000)
    out = tmp_path / "out.fcpxml"
    assert retake(src, "--range", "4300", "4420", "--prompt", "snow", "-o", out, "--media-search", tmp_path / "media") == 0
    check_dtd_structure(out.read_bytes())
    new = read_timeline(out)
    relinker = Relinker(None, (), [tmp_path / "media", tmp_path])
    around = range(4296, 4424)
    before, after = index_shown_at(tl, 0, around, relinker), index_shown_at(new, 0, around, relinker)
    assert [t for t in around if before[t][2] != after[t][2]] == [], "a frame shows another moment of the shot"
    shown = [t for t in around if "retake" in after[t][0].name]
    assert (shown[0], shown[-1], len(shown)) == (4300, 4419, 120)      # was 4300-4418: the end rounded inward


# --- generated projects -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", RATES.values(), ids=RATES.keys())
def test_generated_project_reads_right_and_writes_back_identical(tmp_path, rate):
    project = make_fcpxml(rate)
    path = tmp_path / "gen.fcpxml"
    path.write_text(project.text)
    tl = read_timeline(path)
    assert check_times_against_the_xml(tl, XmlView(path.read_bytes())) == 4
    assert fcpx_file._exact(tl.global_start_time.rate) == rate and tl.global_start_time.value == project.start
    assert [t.name for t in tl.tracks] == ["V1", "V2"]
    b = select_clip(tl, "B")
    assert b.record_range.start_time.value == 2 * project.fps and b.record_range.duration.value == 3 * project.fps
    assert [m.name for m in b.clip.markers] == ["Marker B1", "Marker B2"]
    with pytest.raises(SelectionError, match="generator"):
        source_clip(tl, select_clip(tl, "Opener", "V2"), tmp_path)
    document = read_document(path)
    assert save(document.timeline, tmp_path / "same.fcpxml", document=document).read_bytes() == path.read_bytes()
    if rate == 25:  # a bundle (.fcpxmld, a folder holding Info.fcpxml) reads as its document and is written as one
        bundle = tmp_path / "Gen.fcpxmld"
        bundle.mkdir()
        (bundle / "Info.fcpxml").write_bytes(path.read_bytes())
        document = read_document(bundle)
        assert document.format == "fcpx_xml" and document.source == path.read_bytes()
        out = save(document.timeline, tmp_path / "Out.fcpxmld", document=document)
        assert (out / "Info.fcpxml").read_bytes() == path.read_bytes()
        assert save(document.timeline, tmp_path / "flat.fcpxml", document=document).read_bytes() == path.read_bytes()
        (bundle / "Info.fcpxml").unlink()
        with pytest.raises(TimelineReadError, match="Gen.fcpxmld is a bundle without its Info.fcpxml"):
            read_document(bundle)


@pytest.mark.slow
@pytest.mark.parametrize("rate", RATES.values(), ids=RATES.keys())
def test_a_retake_changes_only_that_spine_item_and_shows_over_exactly_the_window(tmp_path, rate):
    project = make_fcpxml(rate, version="1.8" if rate == 30 else "1.10")
    path = tmp_path / "gen.fcpxml"
    path.write_text(project.text)
    made = standin_media(_only_used(read_timeline(path), {"A001C002.mov"}), tmp_path / "media", handle_s=0)
    where = standin_locator(made, rate)
    fps = project.fps
    rs, re_ = 2 * fps + fps // 2, 4 * fps + fps // 2           # half a second into B, 2 s long
    out = tmp_path / "out.fcpxml"
    assert retake(path, "--range", rs, re_, "--prompt", "snow", "--mode", "video", "-o", out,
                  "--media-search", tmp_path / "media") == 0
    before, after = path.read_bytes(), out.read_bytes()
    assert_only_changed(before, after, "B", XmlView(before).sequence().find("spine")[1].get("offset"))
    check_dtd_structure(after)

    # the pieces: B keeps its media either side; the middle shows the version from the window's source time
    view = XmlView(after)
    b_pieces = [p for p in view.placed() if p.lane == 0 and p.name.startswith("B")]
    assert [p.name for p in b_pieces] == ["B", "B_retake_v001", "B"]
    assert [(p.rec - b_pieces[0].rec) * rate for p in b_pieces] == [0, fps // 2, fps // 2 + 2 * fps]
    version = view.assets[b_pieces[1].asset]
    assert T(version.get("start")) == b_pieces[1].media_in and T(version.get("duration")) * rate == 2 * fps
    # the connected clip stays on the piece that covers it (left), the markers on theirs, at the same times
    spine = view.sequence().find("spine")
    left, middle, right = [el for el in spine if (el.get("name") or "").startswith("B")]
    assert [c.get("name") for c in left if c.get("lane")] == ["C"] and not [c for c in middle if c.get("lane")]
    assert [m.get("value") for m in middle.iter("marker")] == ["Marker B1"]
    assert [m.get("value") for m in right.iter("marker")] == ["Marker B2"]

    # by frame content: every record frame around the window shows what it showed, the window from the version
    around = range(rs - 4, re_ + 4)
    was, now = shown_on_v1(before, around, rate, where), shown_on_v1(after, around, rate, where)
    seen_was, seen_now = indices_shown(was), indices_shown(now)
    for t in around:
        assert seen_was[t] == was[t][1], f"the stand-in misreads at record frame {t}"
        assert seen_now[t] == seen_was[t], f"record frame {t} shows frame {seen_now[t]}, expected {seen_was[t]}"
        assert now[t][0].endswith("B_retake_v001.mov") == (rs <= t < re_), t
    new = read_timeline(out)
    assert check_times_against_the_xml(new, view) == 6
    (retaken,) = list_versions(new)
    assert (retaken.original_name, retaken.versions, retaken.active) == ("B", ("retake_v001",), "retake_v001")
    if rate != Fraction(30000, 1001):  # drop-frame: the rate whose timecode arithmetic is the trickiest
        return

    # use original, a second retake of the same window, use v001: each changes only the middle piece
    first = after
    orig = tmp_path / "orig.fcpxml"
    assert main(["use", str(out), "B", "original", "-o", str(orig)]) == 0
    assert_only_changed(first, orig.read_bytes(), "B_retake_v001", middle.get("offset"))
    check_dtd_structure(orig.read_bytes())
    back = shown_on_v1(orig.read_bytes(), around, rate, where)
    assert back == was
    second = tmp_path / "second.fcpxml"
    assert retake(orig, "--range", rs, re_, "--prompt", "rain", "--mode", "video", "-o", second,
                  "--media-search", tmp_path / "media") == 0
    assert_only_changed(orig.read_bytes(), second.read_bytes(), "B", middle.get("offset"))
    check_dtd_structure(second.read_bytes())
    now = shown_on_v1(second.read_bytes(), around, rate, where)
    assert indices_shown(now) == seen_was
    assert all(now[t][0].endswith("B_retake_v002.mov") == (rs <= t < re_) for t in around)
    (retaken,) = list_versions(read_timeline(second))
    assert (retaken.versions, retaken.active) == (("retake_v001", "retake_v002"), "retake_v002")
    assert retaken.clip.media_references()["DEFAULT_MEDIA"].target_url.endswith("/A001C002.mov")
    third = tmp_path / "third.fcpxml"
    assert main(["use", str(second), "B", "v001", "-o", str(third)]) == 0
    assert_only_changed(second.read_bytes(), third.read_bytes(), "B_retake_v002", middle.get("offset"))
    assert shown_on_v1(third.read_bytes(), around, rate, where) == shown_on_v1(first, around, rate, where)


@pytest.mark.slow
def test_a_retake_placed_above_is_a_connected_clip_on_the_first_free_lane(tmp_path):
    rate = Fraction(25)
    project = make_fcpxml(rate)
    path = tmp_path / "gen.fcpxml"
    path.write_text(project.text)
    standin_media(_only_used(read_timeline(path), {"A001C002.mov"}), tmp_path / "media", handle_s=0)
    out = tmp_path / "above.fcpxml"
    assert retake(path, "--clip", "B", "--prompt", "fog", "--mode", "video", "--placement", "above", "-o", out,
                  "--media-search", tmp_path / "media") == 0
    before, after = path.read_bytes(), out.read_bytes()
    check_dtd_structure(after)
    gone, new, same = structural_diff(before, after)
    assert not gone and same == len(_records(before))  # nothing changed: a clip and its asset were added
    added = [r for r in new if r[1] == "asset-clip"]
    (clip,) = added
    attrs = dict(clip[2])
    assert attrs["lane"] == "2" and attrs["name"] == "B_retake_v001"  # lane 1 holds C over the window: the next one
    tl = read_timeline(out)
    assert [t.name for t in tl.tracks] == ["V1", "V2", "V3"]
    (retaken,) = list_versions(tl)
    assert (retaken.track, retaken.placement, retaken.active) == ("V3", "above", "retake_v001")
    off = tmp_path / "off.fcpxml"
    assert main(["use", str(out), "B", "original", "-o", str(off)]) == 0
    gone, new, _ = structural_diff(after, off.read_bytes())
    assert [dict(r[2]).get("enabled") for r in new if r[1] == "asset-clip"] == ["0"]
    assert list_versions(read_timeline(off))[0].active == "original"


def test_a_version_at_a_rate_no_format_has_gets_its_own_format(tmp_path):
    """The writer alone, on a timeline edited by hand as a splice leaves it (no media needed): a version of the whole
    of B at 50 fps in a 25 fps project adds a <format> of that rate and the source's size."""
    project = make_fcpxml(Fraction(25))
    path = tmp_path / "gen.fcpxml"
    path.write_text(project.text)
    tl = read_timeline(path)
    b = select_clip(tl, "B").clip
    refs = dict(b.media_references())
    start = b.source_range.start_time.rescaled_to(50)
    version = otio.schema.ExternalReference(target_url=str(tmp_path / "B_retake_v001.mov"),
                                            available_range=otio.opentime.TimeRange(start, otio.opentime.RationalTime(150, 50)))
    version.name = "B_retake_v001"
    version.metadata["ltx_retake"] = {"prompt": "dusk & \"rain\" <soon>"}
    refs["retake_v001"] = version
    b.set_media_references(refs, "retake_v001")
    b.metadata["ltx_retake"] = {**b.metadata["ltx_retake"], "original_name": "B", "active": "retake_v001",
                                "placement": "splice", "versions": {"retake_v001": {"prompt": "dusk"}}}
    b.name = "B_retake_v001"
    out = fcpx_file.write(path.read_bytes(), tl, path)
    check_dtd_structure(out)
    assert_only_changed(path.read_bytes(), out, "B", XmlView(path.read_bytes()).sequence().find("spine")[1].get("offset"))
    root = ET.fromstring(out)
    (fmt,) = [f for f in root.iter("format") if f.get("frameDuration") == "1/50s"]
    assert (fmt.get("width"), fmt.get("height")) == ("1920", "1080")
    (asset,) = [a for a in root.iter("asset") if a.get("name") == "B_retake_v001"]
    assert asset.get("format") == fmt.get("id") and asset.get("start") == f"{fcpx_file._seconds(start)}s".replace("/1s", "s")
    again = read_timeline(_write(tmp_path / "again.fcpxml", out))
    clip = select_clip(again, "B_retake_v001").clip
    assert clip.media_references()["DEFAULT_MEDIA"].target_url.endswith("A001C002.mov")
    assert clip.media_references()["retake_v001"].metadata["ltx_retake"]["prompt"] == 'dusk & "rain" <soon>'
    assert clip.metadata["fcpx_xml"]["roles"] == {"audioRole": "dialogue"}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- what else is read right ----------------------------------------------------------------------------------------

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.11">
    <resources>
"""


def _doc(tmp_path, resources: str, spine: str, fmt="r1", tc="0s", name="x.fcpxml") -> Path:
    path = tmp_path / name
    path.write_text(f"""{_HEAD}{resources}
    </resources>
    <project name="P">
        <sequence format="{fmt}" tcStart="{tc}" tcFormat="NDF">
            <spine>
{spine}
            </spine>
        </sequence>
    </project>
</fcpxml>
""")
    return path


def test_multicam_conform_lanes_and_what_is_refused(tmp_path):
    # a 25 fps clip rate-conformed in a 24 fps project plays frame for frame (CommandPost/FCPCafe's measured case)
    path = _doc(tmp_path, """        <format id="r1" frameDuration="100/2400s" width="1920" height="1080"/>
        <format id="r3" frameDuration="100/2500s" width="1920" height="1080"/>
        <asset id="r2" name="T" start="9307900/2500s" duration="60s" hasVideo="1" format="r3"><media-rep kind="proxy-media" src="file:///p/T.mov"/></asset>""",
                """                <asset-clip ref="r2" offset="7148480/1920s" name="T" start="93079/25s" duration="12000/1920s" format="r3">
                    <conform-rate srcFrameRate="25"/>
                </asset-clip>""", tc="7148480/1920s")
    tl, notes = fcpx_file.read(path.read_bytes(), path, ReadOptions(), None)
    (clip,) = tl[0].find_clips()
    assert time_scalar(clip) == Fraction(24, 25)
    # record 01:02:08:07 (123 frames in) shows source 01:02:08:02 (123 frames in at 25): FCP's own Source Timecode
    assert clip.source_range.start_time.value + 123 * 25 / 24 * time_scalar(clip) == 93079 + 123
    assert any("proxy" in n for n in notes)

    # a multicam clip: its active video angle; lanes 2 and -2 make V3 and A2 (with empty V2, A1)
    path = _doc(tmp_path, """        <format id="r1" frameDuration="1/25s" width="1920" height="1080"/>
        <asset id="c1" name="Cam 1" start="0s" duration="120s" hasVideo="1" format="r1"><media-rep src="file:///m/Cam1.mov"/></asset>
        <asset id="c2" name="Cam 2" start="0s" duration="120s" hasVideo="1" format="r1"><media-rep src="file:///m/Cam2.mov"/></asset>
        <media id="mc" name="MC"><multicam format="r1" tcStart="0s">
            <mc-angle name="A" angleID="a"><gap offset="0s" duration="2s"/><asset-clip ref="c1" offset="2s" duration="100s" name="Cam 1"/></mc-angle>
            <mc-angle name="B" angleID="b"><asset-clip ref="c2" offset="0s" start="5s" duration="100s" name="Cam 2"/></mc-angle>
        </multicam></media>""", """                <mc-clip ref="mc" offset="0s" name="MC" start="10s" duration="4s">
                    <mc-source angleID="b" srcEnable="audio"/><mc-source angleID="a" srcEnable="video"/>
                    <asset-clip ref="c2" lane="2" offset="11s" duration="1s" name="Up"/>
                    <asset-clip ref="c2" lane="-2" offset="12s" duration="1s" name="Down" enabled="0"/>
                </mc-clip>""", name="mc.fcpxml")
    tl = read_timeline(path)
    assert [t.name for t in tl.tracks] == ["V1", "V2", "V3", "A1", "A2"]
    (mc,) = tl.tracks[0]
    assert isinstance(mc, otio.schema.Stack) and [c.name for c in mc.find_clips()] == ["Cam 1"]
    assert mc.metadata["fcpx_xml"]["video_angle"] == "A" and mc.metadata["fcpx_xml"]["audio_angle"] == "B"
    (cam1,) = mc.find_clips()  # the multicam's 10 s shows first; Cam 1 enters its angle at 2 s: media 8 s shows first
    assert (mc.source_range.start_time.value, mc[-1].range_of_child(cam1).start_time.value) == (10 * 25, 2 * 25)
    assert select_clip(tl, "Cam 1").record_range.duration.value == 4 * 25
    up = tl.tracks[2][1]
    assert up.name == "Up" and tl.tracks[2].range_of_child(up).start_time.value == 25
    down = tl.tracks[4][1]
    assert down.name == "Down" and not down.enabled and tl.tracks[4].range_of_child(down).start_time.value == 50

    # refusals name the file and what to do; never a library's words
    bad = _doc(tmp_path, '<format id="r1" frameDuration="1/25s"/>', '<asset-clip ref="nope" offset="0s" duration="1s"/>', name="bad.fcpxml")
    with pytest.raises(TimelineReadError, match="bad.fcpxml.*'nope'.*export it again"):
        read_timeline(bad)
    bomb = tmp_path / "bomb.fcpxml"
    bomb.write_text('<?xml version="1.0"?>\n<!DOCTYPE fcpxml [<!ENTITY a "aaaa">]>\n<fcpxml version="1.10"/>')
    with pytest.raises(TimelineReadError, match="declares XML entities"):
        read_timeline(bomb)
    odd = _doc(tmp_path, '<format id="r1" frameDuration="1/25s"/>', '<gap offset="0s" duration="ten seconds"/>', name="odd.fcpxml")
    with pytest.raises(TimelineReadError, match="not an FCPXML time"):
        read_timeline(odd)
    with pytest.raises(UnsupportedEditError):
        retimed = _doc(tmp_path, """        <format id="r1" frameDuration="1/25s"/>
        <asset id="r2" name="S" start="0s" duration="60s" hasVideo="1" format="r1"><media-rep src="file:///m/S.mov"/></asset>""",
                       """                <asset-clip ref="r2" offset="0s" duration="4s" name="Ramp"><timeMap>
                    <timept time="0s" value="0s"/><timept time="2s" value="2s"/><timept time="4s" value="8s"/></timeMap></asset-clip>""",
                       name="ramp.fcpxml")
        time_scalar(read_timeline(retimed).find_clips()[0])
