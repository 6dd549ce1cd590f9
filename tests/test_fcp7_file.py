"""FCP7 / Premiere XML read right and written back in place: the three corpus files and Premiere-style sequences made
here at 23.976, 24, 25, 29.97 DF, 30, 50 and 59.94, relinked to frame-index stand-ins and retaken through the CLI.

Written back with no retake, every file is byte-identical. A retake changes only the clip items of the retaken clip
(and of its linked sound): a structural diff of the XML lists every other element unchanged. The output re-reads,
shows the version over exactly the window by frame content, passes the structure Premiere and FCP7 require, and a
second retake, `use ... original` and `versions` work on it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.adapters import fcp7_file
from ltx_retake.adapters.timeline_files import FAITHFUL, read_document, read_timeline, save
from ltx_retake.cli import main
from ltx_retake.document import ReadOptions
from ltx_retake.errors import InputError, SelectionError, TimelineReadError, UnsupportedEditError
from ltx_retake.limits import limits_for
from ltx_retake.origin import origin_of
from ltx_retake.paths import safe_stem
from ltx_retake.plan import plan_retake, source_clip, time_scalar
from ltx_retake.ports import MediaInfo, RetakeMode
from ltx_retake.relink import Relinker
from ltx_retake.selection import clip_at, clips_on_track, find_track, select_clip, select_range, track_label
from ltx_retake.splice import Version, linked_sound, place_above, splice_version, version_name
from ltx_retake.timing import exact_rate, is_drop_frame_rate, parse_timecode
from ltx_retake.versions import use_version

from premiere_xml import Shot, check_xmeml, premiere_xml
from showing import indices_shown
from standins import standin_media

XML = "fcp7xml"
CORPUS_FILES = ["premiere_example.xml", "premiere_disabled_clips.xml", "premiere_jjgv_2997df_192clips.xml"]
RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50),
         Fraction(60000, 1001)]


# --- a structural diff of two xmeml files ---------------------------------------------------------------------------

def _canonical(e: ET.Element, files: dict[str, ET.Element]) -> str:
    """An element as a diff compares it: tag, attributes, trimmed text, children; a `<file id/>` read through its id."""
    if e.tag == "file" and len(e) == 0 and e.get("id") in files:
        e = files[e.get("id")]
    kids = "".join(_canonical(c, files) for c in e)
    return f"<{e.tag} {sorted(e.attrib.items())}>{(e.text or '').strip()}{kids}</{e.tag}>"


def units(data: bytes) -> dict[str, str]:
    """Every element of the file once: clip items by id (whole, `<file>`s resolved, comments left out), transitions by
    place, every other element by its path with its own attributes and text and the keys of its children."""
    root = ET.fromstring(data)
    files = {f.get("id"): f for f in root.iter("file") if f.get("id") and len(f)}
    out: dict[str, str] = {}

    def walk(e: ET.Element, path: str) -> str:
        if e.tag in ("clipitem", "generatoritem") and e.get("id"):
            key = f"{e.tag}:{e.get('id')}"
            out[key] = _canonical(e, files)
            return key
        if e.tag == "transitionitem":
            key = f"{path}/transitionitem@{e.findtext('start')}-{e.findtext('end')}"
            out[key] = _canonical(e, files)
            return key
        if e.tag == "file" and e.get("id"):
            return f"file:{e.get('id')}"
        counts: dict[str, int] = {}
        kids = []
        for c in e:
            if c.tag in ("clipitem", "generatoritem", "transitionitem"):
                kids.append(walk(c, path))
                continue
            counts[c.tag] = counts.get(c.tag, 0) + 1
            kids.append(walk(c, f"{path}/{c.tag}[{counts[c.tag]}]"))
        out[path] = f"{sorted(e.attrib.items())}|{(e.text or '').strip()}|{kids}"
        return path

    walk(root, "xmeml")
    return out


def changed_units(before: bytes, after: bytes) -> tuple[set[str], set[str], set[str]]:
    """(changed, added, removed) keys between two files."""
    a, b = units(before), units(after)
    return ({k for k in a.keys() & b.keys() if a[k] != b[k]}, b.keys() - a.keys(), a.keys() - b.keys())


def clip_ids(data: bytes, names: set[str]) -> set[str]:
    return {f"clipitem:{c.get('id')}" for c in ET.fromstring(data).iter("clipitem") if c.findtext("name") in names}


def assert_only_the_retake_changed(before: bytes, after: bytes, retaken: set[str], names: set[str]) -> set[str]:
    """Only the retaken clip items (and the new ones beside them, named for the clip or its version) and the lists of
    items of their tracks differ; every other element is as it was. Returns the keys of the new clip items."""
    changed, added, removed = changed_units(before, after)
    assert not removed, removed
    new_clips = {k for k in added if k.startswith("clipitem:")}
    assert added == new_clips, added - new_clips
    assert new_clips <= clip_ids(after, names), new_clips
    tracks = {k for k in changed if k.rsplit("/", 1)[-1].startswith("track[")}
    a, b = units(before), units(after)
    for k in tracks:   # a track whose own attributes and other children are as they were, its items in their order
        (attrs_a, _, kids_a), (attrs_b, _, kids_b) = a[k].split("|", 2), b[k].split("|", 2)
        assert attrs_a == attrs_b, k
        kept = [x for x in eval(kids_b) if x in eval(kids_a)]
        assert kept == [x for x in eval(kids_a) if x in kept], k
    assert changed - tracks <= retaken, changed - tracks - retaken
    assert retaken & changed, "the retaken clip item itself did not change"
    untouched = len(units(before)) - len(changed)
    assert untouched > 0
    return new_clips


# --- reading --------------------------------------------------------------------------------------------------------

def _read(path: Path):
    timelines, notes = fcp7_file.read(path.read_bytes(), path, ReadOptions(), lambda clip: None)
    return timelines[0], notes


def test_the_module_is_the_faithful_reader_and_writer_of_fcp_xml():
    assert FAITHFUL["fcp_xml"] == "fcp7_file"


def test_every_clip_item_of_the_corpus_is_read(corpus):
    expected = {"premiere_example.xml": 25, "premiere_disabled_clips.xml": 16, "premiere_jjgv_2997df_192clips.xml": 192}
    for name in CORPUS_FILES:
        path = corpus / XML / name
        tl, _ = _read(path)
        root = ET.fromstring(path.read_bytes())
        items = list(root.iter("clipitem"))
        nest_refs = {c.get("id") for c in items if c.find("sequence") is not None}
        with_media = {c.get("id") for c in items} - nest_refs
        read = [origin_of(c)["xml_id"] for c in tl.find_clips()]
        assert set(read) == with_media, name                        # every clip item with media, none invented
        assert len(read) == expected[name], name
        tracks = len(root.findall(".//sequence/media/video/track")) + len(root.findall(".//sequence/media/audio/track"))
        nested = sum(len(s.findall("media/*/track")) for s in root.iter("sequence") if s is not root.find("sequence") and len(s))
        assert len(tl.tracks) == tracks - nested, name
    # a real Premiere export: 64 pictures and both channels of their stereo sound (OTIO's own reader keeps 128)
    tl, _ = _read(corpus / XML / "premiere_jjgv_2997df_192clips.xml")
    assert [len(t.find_clips()) for t in tl.tracks] == [64, 0, 0, 64, 64, 0, 0, 0, 0, 0, 0]


def test_corpus_facts_disabled_rates_timecode_paths_speed(corpus):
    tl, _ = _read(corpus / XML / "premiere_disabled_clips.xml")
    assert [c.name for c in tl.find_clips() if not c.enabled] == [
        "video_track_1_disabled_1", "video_track_1_disabled_2", "video_track_3_disabled_1",
        "audio_track_1_disabled_1", "audio_track_1_disabled_1"]
    assert [t.enabled for t in tl.tracks if t.kind == otio.schema.TrackKind.Video] == [True, True, False]
    with pytest.raises(SelectionError, match="it is disabled"):            # never retaken as if it showed
        select_clip(tl, "video_track_1_disabled_1", "V1")
    with pytest.raises(SelectionError, match="disabled"):
        select_clip(tl, "video_track_3_disabled_1", "V3")

    tl, notes = _read(corpus / XML / "premiere_example.xml")
    assert tl.global_start_time == otio.opentime.RationalTime(0, 30)
    v1 = tl.tracks[find_track(tl, "V1")]
    fifteen = v1.find_clips()[0]
    assert fifteen.source_range == otio.opentime.TimeRange(otio.opentime.RationalTime(0, 15), otio.opentime.RationalTime(50, 15))
    assert v1.range_of_child(fifteen).start_time.value == 536 and v1.duration().value == 636
    assert fifteen.media_reference.target_url == "file://localhost/D%3a/media/sc01_sh010_anim.mov"   # as written
    mapped = Relinker(None, [("D:/media", "/mnt/media")]).mapped(Relinker().written(fifteen.media_reference))
    assert [str(p) for p, _ in mapped] == ["/mnt/media/sc01_sh010_anim.mov"]
    # the placeholder's timecode says DF at 30 fps (not NTSC): its frame count is used, and the editor is told
    wav = next(c for c in tl.find_clips() if c.name == "sc01_placeholder.wav")
    assert wav.source_range.start_time.value == 8497
    assert any("00;04;43;15" in n and "drop-frame" in n and "8497" in n for n in notes)
    # transitions at their cut (end-black: the cut is the end; centre: cutPointTicks), the clips beside them
    transitions = [t for t in tl.find_children(descended_from_type=otio.schema.Transition)]
    assert [(t.in_offset.value, t.out_offset.value) for t in transitions] == [(19, 0), (12, 13)]
    v4 = tl.tracks[find_track(tl, "V4")]
    assert [(c.name, v4.range_of_child(c).start_time.value, c.source_range.start_time.value) for c in v4.find_clips()] \
        == [("sc01_master_layerA_sh030_temp.mov", 956, 133), ("sc01_sh010_anim.mov", 1164, 18)]
    # a title is a generator, refused as footage; the nested sequence is a stack of its own tracks
    title = next(c for c in tl.find_clips() if c.name == "test_title")
    with pytest.raises(SelectionError, match="generator"):
        Relinker().written(title.media_reference)
    assert any(isinstance(i, otio.schema.Stack) for i in tl.tracks[find_track(tl, "V2")])
    assert [m.name for m in tl.tracks.markers] == ["My MArker 1", "dsf", ""]

    tl, notes = _read(corpus / XML / "premiere_jjgv_2997df_192clips.xml")
    assert tl.global_start_time == otio.opentime.RationalTime(0, 30000 / 1001) and not notes
    fast = next(c for c in tl.find_clips() if origin_of(c)["xml_id"] == "clipitem-18")
    assert time_scalar(fast) == Fraction("5.00012")
    assert fast.source_range.start_time.value == 100                   # Time Remap's media frame at <in>
    assert fast.media_reference.target_url.startswith("file://localhost/C%3a/Users/Patrick/")


def test_timecode_and_speed_rules_in_generated_files(tmp_path):
    shots = [Shot("A.mov", 10, 48, media_tc=86400), Shot("B.mov", 0, 48)]
    data = premiere_xml(Fraction(30), shots, speed={0: (200.0, False), 1: (100.0, True)})
    path = tmp_path / "speed.xml"
    path.write_bytes(data)
    tl = read_timeline(path)
    a, b = tl.tracks[0].find_clips()
    assert time_scalar(a) == 2 and a.source_range.start_time.value == 86400 + 20
    with pytest.raises(UnsupportedEditError, match="Time Remap"):
        time_scalar(b)
    # a drop-frame timecode at a rate that has none, with no frame count to say which frame it means: refused
    bad = data.replace(b"<frame>0</frame>\n\t\t\t<displayformat>NDF", b"<displayformat>DF")
    bad = bad.replace(b"<string>00:00:00:00</string>", b"<string>00;00;01;00</string>")
    assert bad != data
    path.write_bytes(bad)
    with pytest.raises(TimelineReadError, match=r"speed\.xml.*drop-frame \(DF\) at 30 fps.*no <frame>"):
        read_timeline(path)


@pytest.mark.parametrize("rate", RATES, ids=lambda r: f"{float(r):.3f}")
def test_generated_sequences_read_and_write_back_identical(tmp_path, rate):
    start = parse_timecode("01:00:00;00" if is_drop_frame_rate(rate) else "01:00:00:00", rate)
    data = premiere_xml(rate, [Shot("A.mov", 40, 72, 3000), Shot("B.mov", 10, 96, gap_before=12)], start_frame=start)
    assert check_xmeml(data) == []
    for newline in (b"\n", b"\r\n"):
        path = tmp_path / f"cut{len(newline)}.xml"
        path.write_bytes(data.replace(b"\n", newline))
        doc = read_document(path)
        assert float(doc.timeline.global_start_time.rate) == pytest.approx(float(rate), abs=1e-9)
        assert doc.timeline.global_start_time.value == start
        assert [len(t.find_clips()) for t in doc.timeline.tracks] == [2, 2, 2]
        out = save(doc.timeline, tmp_path / f"same{len(newline)}.xml", document=doc)
        assert out.read_bytes() == path.read_bytes()


def test_corpus_files_write_back_byte_identical(corpus, tmp_path):
    for name in CORPUS_FILES:
        doc = read_document(corpus / XML / name)
        out = save(doc.timeline, tmp_path / name, document=doc)
        assert out.read_bytes() == (corpus / XML / name).read_bytes(), name
        assert fcp7_file.cannot_hold(doc.timeline) == []


def test_damaged_and_foreign_xml_is_refused_with_a_sentence(tmp_path):
    cases = {
        "entities.xml": (b'<?xml version="1.0"?>\n<!DOCTYPE xmeml [<!ENTITY a "aaaa">]>\n<xmeml version="4"/>', "entities"),
        "minus.xml": (premiere_xml(Fraction(25), [Shot("A.mov", 0, 25)]).replace(b"<start>0</start>", b"<start>-1</start>", 1),
                      "no transition item comes before it"),
    }
    for name, (data, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(TimelineReadError, match=words) as info:
            read_timeline(path)
        assert name in str(info.value) and "Traceback" not in str(info.value)


# --- retakes through the CLI -----------------------------------------------------------------------------------------

def _retake(capsys, *args: str) -> dict:
    code = main(["retake", *args, "--prompt", "rain", "--provider", "local", "--yes", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _version_span(tl: otio.schema.Timeline, ti: int, version: str) -> tuple[int, int]:
    rate = float(tl.global_start_time.rate)
    (rng,) = [r for c, r in clips_on_track(tl.tracks[ti]) if c.name == version]
    return round(rng.start_time.rescaled_to(rate).value), round(rng.end_time_exclusive().rescaled_to(rate).value)


def check_by_content(before: otio.schema.Timeline, after: otio.schema.Timeline, ti: int, version: str, path: str,
                     relinker: Relinker, margin: int = 3) -> tuple[int, int]:
    """Track `ti` of `after` shows `path` exactly where its clip `version` lies, and the frames of `before` (same
    index) there and around it: checked by the index every decoded frame carries."""
    rs, re_ = _version_span(after, ti, version)
    rate = float(before.global_start_time.rate)
    track_rate = before.tracks[ti].duration().rate
    around = [t for t in range(max(0, rs - margin), re_ + margin)     # where something shows
              if clip_at(before, ti, otio.opentime.RationalTime(t, rate).rescaled_to(track_rate)) is not None]
    was, now = indices_shown(before, ti, around, relinker), indices_shown(after, ti, around, relinker)
    for t in around:
        assert was[t][2] is not None, f"record frame {t}: the original does not read"
        assert now[t][2] == was[t][2], f"record frame {t}: shows index {now[t][2]}, expected {was[t][2]}"
        assert (Path(now[t][0]).resolve() == Path(path).resolve()) == (rs <= t < re_), f"record frame {t}: {now[t][0]}"
    return rs, re_


def _versions(capsys, path: Path, *extra: str) -> list[dict]:
    assert main(["versions", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_the_15fps_clip_retaken_twice_and_put_back(corpus, tmp_path, capsys):
    """The Premiere example's 15 fps clip in its 30 fps sequence (OTIO's own writer cannot write this rate):
    retaken with its linked stereo sound, retaken again, then put back to the original."""
    source = corpus / XML / "premiere_example.xml"
    original = read_timeline(source)
    media = tmp_path / "media"
    standin_media(original, media, handle_s=1.0)
    maps = ["--map-path", f"D:/media={media}"]
    relinker = Relinker(source.parent, [("D:/media", str(media))])
    before = source.read_bytes()

    out1 = tmp_path / "v1.xml"
    first = _retake(capsys, str(source), "--range", "560", "600", "--track", "V1", "-o", str(out1), *maps)
    (job,) = first["jobs"]
    after = out1.read_bytes()
    assert check_xmeml(after) == []
    retaken = {"clipitem:clipitem-1", "clipitem:clipitem-14", "clipitem:clipitem-16"}     # picture, A1, A2
    new = assert_only_the_retake_changed(before, after, retaken, {"sc01_sh010_anim.mov", job["version"]})
    assert len(new) == 6                                   # each of the three split in three
    root = ET.fromstring(after)
    assert root.find("sequence/duration").text == "636"    # the sequence's length as it was
    version_items = [c for c in root.iter("clipitem") if c.findtext("name") == job["version"]]
    assert [c.findtext("rate/timebase") for c in version_items] == ["15", "30", "30"]
    assert len({c.findtext("masterclipid") for c in version_items}) == 1
    assert version_items[0].findtext("masterclipid") not in {c.findtext("masterclipid") for c in ET.fromstring(before).iter("clipitem")}
    version_file = version_items[0].find("file")
    assert version_file.findtext("rate/timebase") == "15" and version_file.findtext("media/video/samplecharacteristics/width") == "1280"
    assert version_file.findtext("pathurl") == "file://localhost" + Path(job["file"]).as_posix()
    links = {c.get("id"): [l.findtext("linkclipref") for l in c.findall("link")] for c in version_items}
    assert all(sorted(v) == sorted(links) for v in links.values())         # the version picture to the version sound

    new_tl = read_timeline(out1)
    assert new_tl.duration() == original.duration() and len(new_tl.tracks) == len(original.tracks)
    v1 = find_track(new_tl, "V1")
    check_by_content(original, new_tl, v1, job["version"], job["file"], relinker)
    listed = _versions(capsys, out1)
    assert [(r["track"], r["versions"], r["active"]) for r in listed] == [
        ("V1", ["retake_v001"], "retake_v001"), ("A1", ["retake_v001"], "retake_v001"), ("A2", ["retake_v001"], "retake_v001")]

    # a second retake, of another clip of the same file (picture only): only that clip item changes
    out2 = tmp_path / "v2.xml"
    second = _retake(capsys, str(out1), "--clip", "sc01_sh020_anim.mov", "--track", "V2", "--mode", "replace_video",
                     "-o", str(out2), *maps)
    (job2,) = second["jobs"]
    again = out2.read_bytes()
    assert check_xmeml(again) == []
    assert_only_the_retake_changed(after, again, {"clipitem:clipitem-3"}, {"sc01_sh020_anim.mov", job2["version"]})
    tl2 = read_timeline(out2)
    check_by_content(original, tl2, v1, job["version"], job["file"], relinker)
    check_by_content(original, tl2, find_track(tl2, "V2"), job2["version"], job2["file"], relinker)
    assert [(r["clip"], r["track"], r["active"]) for r in _versions(capsys, out2)] == [
        ("sc01_sh010_anim.mov", "V1", "retake_v001"), ("sc01_sh020_anim.mov", "V2", "retake_v001"),
        ("sc01_sh010_anim.mov", "A1", "retake_v001"), ("sc01_sh010_anim.mov", "A2", "retake_v001")]

    # use ... original: the pieces show the original media again; the file differs from the input only in the splits
    back = tmp_path / "back.xml"
    assert main(["use", str(out2), "sc01_sh010_anim.mov", "original", "-o", str(back), *maps]) == 0
    capsys.readouterr()
    restored = back.read_bytes()
    assert check_xmeml(restored) == []
    assert_only_the_retake_changed(again, restored, clip_ids(again, {job["version"]}), {"sc01_sh010_anim.mov"})
    tl3 = read_timeline(back)
    for ti in (v1, find_track(tl3, "A1"), find_track(tl3, "A2")):
        for clip, _ in clips_on_track(tl3.tracks[ti]):
            assert "_retake_v" not in clip.name and "_retake_v" not in getattr(clip.media_reference, "target_url", "")
    check_by_content(original, tl3, find_track(tl3, "V2"), job2["version"], job2["file"], relinker)
    assert [r["active"] for r in _versions(capsys, back)] == ["original", "retake_v001", "original", "original"]
    # and back to a version: the record kept every version
    forward = tmp_path / "forward.xml"
    assert main(["use", str(back), "sc01_sh010_anim.mov", "v001", "-o", str(forward), *maps]) == 0
    capsys.readouterr()
    assert check_xmeml(forward.read_bytes()) == []
    check_by_content(original, read_timeline(forward), v1, job["version"], job["file"], relinker)


@pytest.mark.slow
@pytest.mark.parametrize("rate", RATES, ids=lambda r: f"{float(r):.3f}")
def test_a_generated_sequence_retaken_at_every_rate(tmp_path, capsys, rate):
    start = parse_timecode("01:00:00;00" if is_drop_frame_rate(rate) else "01:00:00:00", rate)
    second = round(rate)
    shots = [Shot("A012_C003.mov", 40, second, media_tc=start + 600, media_frames=40 + second + 6),
             Shot("A012_C004 (alt).mov", 10, 3 * second, media_tc=start + 9000, media_frames=10 + 3 * second + 6, gap_before=7)]
    source = tmp_path / "cut.xml"
    data = premiere_xml(rate, shots, start_frame=start)
    crlf = rate == 25                            # Windows line ends, kept on every line written
    source.write_bytes(data.replace(b"\n", b"\r\n") if crlf else data)
    original = read_timeline(source)
    media = tmp_path / "media"
    standin_media(original, media, handle_s=0.25)
    out = tmp_path / "out.xml"
    rs = second + 7 + second // 2                # half a second into the second clip, for two seconds
    first = _retake(capsys, str(source), "--range", str(rs), str(rs + 2 * second), "--track", "V1",
                    "-o", str(out), "--media-search", str(media))
    (job,) = first["jobs"]
    before, after = source.read_bytes(), out.read_bytes()
    assert check_xmeml(after) == []
    retaken = {"clipitem:clipitem-2", "clipitem:clipitem-4", "clipitem:clipitem-6"}
    assert_only_the_retake_changed(before, after, retaken, {shots[1].name, job["version"]})
    new_tl = read_timeline(out)
    assert new_tl.duration() == original.duration() and new_tl.global_start_time == original.global_start_time
    relinker = Relinker(tmp_path, (), (media,))
    check_by_content(original, new_tl, 0, job["version"], job["file"], relinker)
    if crlf:
        assert after.count(b"\n") == after.count(b"\r\n")
    tc = ET.fromstring(after).find(".//clipitem[name='%s']/file/timecode" % job["version"])
    assert tc.findtext("displayformat") == ("DF" if is_drop_frame_rate(rate) else "NDF")
    assert int(tc.findtext("frame")) == parse_timecode(tc.findtext("string"), rate)


@pytest.mark.slow
def test_a_clip_of_the_real_premiere_export_with_its_stereo_sound(corpus, tmp_path, capsys):
    """192 clip items at 29.97 DF from Windows paths with apostrophes and parentheses: one clip retaken with both
    channels of its sound, relinked with --map-path from C:/ (written file://localhost/C%3a/...)."""
    source = corpus / XML / "premiere_jjgv_2997df_192clips.xml"
    original = read_timeline(source)
    clip = original.tracks[0].find_clips()[16]
    assert "Heatwave Terror! (The" in clip.name
    only = otio.schema.Timeline(tracks=[otio.schema.Track(children=[clip.clone()])])
    media = tmp_path / "media"
    standin_media(only, media, handle_s=1.0)
    folder = "C:/Users/Patrick/Documents/JJGV/Season2/s02e08/episodes"
    out = tmp_path / "out.xml"
    first = _retake(capsys, str(source), "--clip", "#17", "--track", "V1", "-o", str(out), "--map-path", f"{folder}={media}")
    (job,) = first["jobs"]
    before, after = source.read_bytes(), out.read_bytes()
    assert check_xmeml(after) == []
    retaken = {"clipitem:clipitem-17", "clipitem:clipitem-81", "clipitem:clipitem-145"}
    assert_only_the_retake_changed(before, after, retaken, {clip.name, job["version"]})
    new_tl = read_timeline(out)
    assert len(new_tl.find_clips()) == 192 and new_tl.duration() == original.duration()
    check_by_content(original, new_tl, 0, job["version"], job["file"], Relinker(source.parent, [(folder, str(media))]), margin=0)
    assert [(r["track"], r["active"]) for r in _versions(capsys, out)] == [("V1", "retake_v001"), ("A1", "retake_v001"),
                                                                           ("A2", "retake_v001")]


@pytest.mark.slow
def test_a_retake_placed_above_goes_on_a_new_track_and_can_be_switched_off(tmp_path, capsys):
    rate = Fraction(25)
    shots = [Shot("A.mov", 20, 75, media_tc=90000, media_frames=100), Shot("B.mov", 5, 60, media_tc=180000, media_frames=70)]
    source = tmp_path / "cut.xml"
    source.write_bytes(premiere_xml(rate, shots, start_frame=90000))
    original = read_timeline(source)
    media = tmp_path / "media"
    standin_media(original, media, handle_s=1.0)
    search = ["--media-search", str(media)]
    out = tmp_path / "above.xml"
    first = _retake(capsys, str(source), "--clip", "B.mov", "--placement", "above", "-o", str(out), *search)
    (job,) = first["jobs"]
    before, after = source.read_bytes(), out.read_bytes()
    assert check_xmeml(after) == []
    changed, added, removed = changed_units(before, after)
    video, audio = "xmeml/sequence[1]/media[1]/video[1]", "xmeml/sequence[1]/media[1]/audio[1]"
    assert not removed and changed == {video, audio}           # one more picture track and one more sound track
    assert added == {f"{video}/track[2]", f"{video}/track[2]/enabled[1]", f"{video}/track[2]/locked[1]",
                     f"{audio}/track[3]", f"{audio}/track[3]/enabled[1]", f"{audio}/track[3]/locked[1]",
                     f"{audio}/track[3]/outputchannelindex[1]"} | clip_ids(after, {job["version"]})
    assert len(clip_ids(after, {job["version"]})) == 2
    track = ET.fromstring(after).findall("sequence/media/video/track")[1]
    assert track.get("MZ.TrackName") == "LTX Retakes" and track.findtext("enabled") == "TRUE"
    assert ET.fromstring(after).findall("sequence/media/audio/track")[2].get("MZ.TrackName") == "LTX Retakes (sound)"
    new_tl = read_timeline(out)
    v2 = find_track(new_tl, "V2")
    assert new_tl.tracks[v2].name == "LTX Retakes"
    check_by_content(original, new_tl, v2, job["version"], job["file"], Relinker(tmp_path, (), (media,)), margin=0)
    assert [(r["track"], r["placement"], r["active"]) for r in _versions(capsys, out)] == [
        ("V2 ('LTX Retakes')", "above", "retake_v001"), ("A3 ('LTX Retakes (sound)')", "above", "retake_v001")]
    off = tmp_path / "off.xml"
    assert main(["use", str(out), "B.mov", "original", "-o", str(off)]) == 0
    capsys.readouterr()
    changed, added, removed = changed_units(after, off.read_bytes())
    assert changed == clip_ids(after, {job["version"]}) and not added and not removed
    assert [(r["placement"], r["active"]) for r in _versions(capsys, off)] == [("above", "original")] * 2
    assert [c.findtext("enabled") for c in ET.fromstring(off.read_bytes()).iter("clipitem")
            if c.findtext("name") == job["version"]] == ["FALSE", "FALSE"]


def test_a_speed_changed_clip_is_refused_before_anything_is_sent(tmp_path, capsys):
    shots = [Shot("A.mov", 10, 75, media_tc=0, media_frames=170), Shot("B.mov", 0, 50, media_frames=50)]
    source = tmp_path / "fast.xml"
    source.write_bytes(premiere_xml(Fraction(25), shots, speed={0: (200.0, False)}))
    media = tmp_path / "media"
    standin_media(read_timeline(source), media, handle_s=1.0, size=(32, 18))
    code = main(["retake", str(source), "--clip", "A.mov", "--prompt", "x", "--provider", "local", "--dry-run",
                 "-o", str(tmp_path / "out.xml"), "--media-search", str(media)])
    err = capsys.readouterr().err
    assert code == 2 and "fast.xml" in err and "speed" in err and "Time Remap" in err, err
    assert not (tmp_path / "out.xml").exists()


# --- splices written without a service (writing never needs the version's file) --------------------------------------

def splice_in_memory(tl: otio.schema.Timeline, sel, mode=RetakeMode.REPLACE_VIDEO, number: int = 1):
    """Plan and splice a retake of `sel` as the runner does, with a version file that does not exist."""
    rate = exact_rate(sel.clip.source_range.start_time.rate)
    info = MediaInfo(path="/media/x.mov", frame_rate=rate, frame_count=100_000, width=1280, height=720,
                     display_width=1280, display_height=720, has_audio=True)
    src = source_clip(tl, sel, None, media=Path("/media/x.mov"))
    (plan,) = plan_retake(tl, src, info, limits_for("local"), prompt="x", mode=mode, provider="local", model="m")
    version = Version(number, plan.clip_name, Path(f"/renders/{safe_stem(version_name(plan.clip_name, number))}.mov"), {})
    sound = linked_sound(tl, plan) if mode != RetakeMode.REPLACE_VIDEO else []
    for p in [plan, *sound]:
        splice_version(tl, p, version)
    return plan, version, sound


def _items(data: bytes, name: str) -> list[ET.Element]:
    return [c for c in ET.fromstring(data).iter("clipitem") if c.findtext("name") == name]


def test_a_split_beside_a_transition_keeps_the_transition_and_its_minus_ones(corpus, tmp_path):
    source = corpus / XML / "premiere_example.xml"
    doc = read_document(source)
    tl = doc.timeline
    (sel,) = select_range(tl, "980", "1100", "V4")
    plan, version, sound = splice_in_memory(tl, sel, RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    assert [track_label(tl, s.track_index) for s in sound] == ["A7", "A8"]
    assert fcp7_file.cannot_hold(tl) == []
    out = save(tl, tmp_path / "out.xml", document=doc)
    before, after = source.read_bytes(), out.read_bytes()
    assert check_xmeml(after) == []
    assert_only_the_retake_changed(before, after, {"clipitem:clipitem-11", "clipitem:clipitem-23", "clipitem:clipitem-25"},
                                   {"sc01_master_layerA_sh030_temp.mov", version.name})
    left, middle, right = _items(after, "sc01_master_layerA_sh030_temp.mov")[:1] + _items(after, version.name)[:1] + \
        _items(after, "sc01_master_layerA_sh030_temp.mov")[1:2]
    timing = lambda c: [c.findtext(t) for t in ("start", "end", "in", "out")]  # noqa: E731
    assert timing(left) == ["956", "980", "34", "58"] and left.get("id") == "clipitem-11"
    assert timing(middle)[:2] == ["980", "1100"]
    assert timing(right) == ["1100", "-1", "178", "255"]       # still ends at the dissolve, its media under it kept
    assert right.findtext("pproTicksOut") == "2159136000000"   # as written
    # the sound on A7 was written through the dissolve (956-1177): its last piece keeps that end as written
    a7 = [c for c in ET.fromstring(after).findall("sequence/media/audio/track")[6].findall("clipitem")]
    assert [timing(c) for c in a7] == [["956", "980", "34", "58"], ["980", "1100", "0", "120"], ["1100", "1177", "178", "255"],
                                       ["1164", "1258", "6", "100"]]
    back = read_timeline(out)
    v4 = find_track(back, "V4")
    assert [(c.name, r.start_time.value, r.duration.value) for c, r in clips_on_track(back.tracks[v4])] == [
        ("sc01_master_layerA_sh030_temp.mov", 956, 24), (version.name, 980, 120),
        ("sc01_master_layerA_sh030_temp.mov", 1100, 64), ("sc01_sh010_anim.mov", 1164, 82)]
    (t,) = back.tracks[v4].find_children(descended_from_type=otio.schema.Transition)
    assert (t.in_offset.value, t.out_offset.value) == (12, 13)
    middle_clip = back.tracks[v4].find_clips()[1]
    assert middle_clip.active_media_reference_key == "retake_v001"
    assert middle_clip.media_references()["DEFAULT_MEDIA"].target_url.endswith("sc01_master_layerA_sh030_temp.mov")
    assert middle_clip.media_references()["retake_v001"].target_url == str(version.path)


def test_a_retake_inside_a_nested_sequence_edits_the_nest_once(corpus, tmp_path):
    source = corpus / XML / "premiere_example.xml"
    doc = read_document(source)
    tl = doc.timeline
    (sel,) = select_range(tl, "650", "710", "V2")             # in clip item 6, inside the nested sequence on V2
    assert origin_of(sel.clip)["xml_id"] == "clipitem-6"
    # its sound lies in the same nest, used by A3 and A4: a retake there would change both, so it is refused first
    trial = tl.deepcopy()
    splice_in_memory(trial, select_range(trial, "650", "710", "V2")[0], RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    refusals = fcp7_file.cannot_hold(trial)
    assert refusals and all("nested sequence the file uses 2 times" in r for r in refusals)
    plan, version, _ = splice_in_memory(tl, sel)
    out = save(tl, tmp_path / "nest.xml", document=doc)
    before, after = source.read_bytes(), out.read_bytes()
    assert check_xmeml(after) == []
    assert_only_the_retake_changed(before, after, {"clipitem:clipitem-5", "clipitem:clipitem-18", "clipitem:clipitem-20"},
                                   {"sc01_sh010_anim.mov", version.name})
    nest = ET.fromstring(after).find(".//clipitem[@id='clipitem-5']/sequence")
    assert [c.findtext("name") for c in nest.find("media/video/track").findall("clipitem")][:3] == [
        "sc01_sh010_anim.mov", version.name, "sc01_sh010_anim.mov"]
    back = read_timeline(out)
    assert back.duration() == read_timeline(source).duration()
    assert any(c.name == version.name for c, _ in clips_on_track(back.tracks[find_track(back, "V2")]))


def test_a_whole_clip_retaken_keeps_its_media_in_the_record_and_use_original_gives_the_element_back(corpus, tmp_path):
    """sc01_sh020 is the only clip item that defines and uses file-2: retaken whole, no clip item refers to that media,
    so the original `<file>` lives on in the record; `use original` writes it back."""
    source = corpus / XML / "premiere_example.xml"
    doc = read_document(source)
    plan, version, _ = splice_in_memory(doc.timeline, select_clip(doc.timeline, "sc01_sh020_anim.mov", "V2"))
    out = save(doc.timeline, tmp_path / "whole.xml", document=doc)
    after = out.read_bytes()
    assert check_xmeml(after) == [] and b'<file id="file-2">' not in after.split(b"<!-- ltx-retake")[0]
    back = read_document(out)
    (clip,) = [c for c in back.timeline.find_clips() if c.name == version.name]
    assert clip.media_references()["DEFAULT_MEDIA"].target_url == "file://localhost/D%3a/media/sc01_sh020_anim.mov"
    use_version(back.timeline, "sc01_sh020_anim.mov", "original")
    restored = save(back.timeline, tmp_path / "restored.xml", document=back).read_bytes()
    assert check_xmeml(restored) == []
    changed, added, removed = changed_units(source.read_bytes(), restored)
    assert not (changed or added or removed)                   # every element as it was (the record is a comment)
    assert b"<!-- ltx-retake" in restored
    with pytest.raises(InputError, match="not in this file"):
        fcp7_file.write((corpus / XML / "premiere_disabled_clips.xml").read_bytes(), back.timeline, Path("other.xml"))


def test_a_retake_placed_above_takes_the_first_free_track(corpus, tmp_path):
    source = corpus / XML / "premiere_example.xml"
    doc = read_document(source)
    tl = doc.timeline
    sel = select_clip(tl, "sc01_sh010_anim.mov", "V1")          # 536-636: V2 and V3 are busy there, V4 is free
    rate = exact_rate(sel.clip.source_range.start_time.rate)
    info = MediaInfo(path="/media/x.mov", frame_rate=rate, frame_count=100_000, width=1280, height=720,
                     display_width=1280, display_height=720, has_audio=True)
    (plan,) = plan_retake(tl, source_clip(tl, sel, None, media=Path("/media/x.mov")), info, limits_for("local"),
                          prompt="x", mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, provider="local", model="m")
    version = Version(1, plan.clip_name, Path("/renders/sc01_sh010_anim_retake_v001.mov"), {})
    placed = place_above(tl, plan, version)                     # the new sound goes above the clip's own (A1, A2)
    assert placed.parent() is tl.tracks[find_track(tl, "V4")]
    (sound,) = [c for c in tl.tracks[find_track(tl, "A3")].find_clips() if c.name == version.name]
    out = save(tl, tmp_path / "above.xml", document=doc)
    before, after = source.read_bytes(), out.read_bytes()
    assert check_xmeml(after) == []
    changed, added, removed = changed_units(before, after)
    assert changed == {"xmeml/sequence[1]/media[1]/video[1]/track[4]", "xmeml/sequence[1]/media[1]/audio[1]/track[3]"}
    assert added == clip_ids(after, {version.name}) and len(added) == 2 and not removed
    a3 = ET.fromstring(after).findall("sequence/media/audio/track")[2].findall("clipitem")
    assert [(c.findtext("name"), c.findtext("start"), c.findtext("rate/timebase"), c.findtext("sourcetrack/trackindex"))
            for c in a3] == [("sc01_placeholder.wav", "335", "30", "1"), (version.name, "536", "30", "1"),
                             ("sc01_sh010_anim", "636", "30", None)]
    v4 = ET.fromstring(after).findall("sequence/media/video/track")[3]
    first = v4.find("clipitem")
    assert first.findtext("name") == version.name and first.findtext("rate/timebase") == "15"
    assert [first.findtext(t) for t in ("start", "end")] == ["536", "636"] and first.find("link") is None
    back = read_timeline(out)
    picture, sound = [c for c in back.find_clips() if c.name == version.name]
    assert picture.metadata["ltx_retake"]["placement"] == "above" and picture.parent() is back.tracks[find_track(back, "V4")]
    assert sound.metadata["ltx_retake"]["placement"] == "above" and sound.parent() is back.tracks[find_track(back, "A3")]


def test_a_generator_item_is_read_as_a_generator(tmp_path):
    data = premiere_xml(Fraction(25), [Shot("A.mov", 0, 50, media_frames=60)])
    generator = (b"\t\t\t\t\t<generatoritem id=\"generator-1\">\n\t\t\t\t\t\t<name>Slug</name>\n\t\t\t\t\t\t<duration>3000</duration>\n"
                 b"\t\t\t\t\t\t<start>60</start>\n\t\t\t\t\t\t<end>85</end>\n\t\t\t\t\t\t<in>0</in>\n\t\t\t\t\t\t<out>25</out>\n"
                 b"\t\t\t\t\t\t<effect>\n\t\t\t\t\t\t\t<name>Slug</name>\n\t\t\t\t\t\t\t<effectid>Slug</effectid>\n"
                 b"\t\t\t\t\t\t\t<effecttype>generator</effecttype>\n\t\t\t\t\t\t</effect>\n\t\t\t\t\t</generatoritem>\n")
    at = data.index(b"\n\t\t\t\t\t<enabled>TRUE</enabled>") + 1     # the end of V1's items
    path = tmp_path / "slug.xml"
    path.write_bytes(data[:at] + generator + data[at:])
    tl = read_timeline(path)
    slug = tl.tracks[0].find_clips()[1]
    assert isinstance(slug.media_reference, otio.schema.GeneratorReference) and slug.media_reference.generator_kind == "Slug"
    assert tl.tracks[0].range_of_child(slug).start_time.value == 60
    with pytest.raises(SelectionError, match="generator"):
        Relinker().written(slug.media_reference)


def test_a_final_cut_pro_file_whose_files_have_no_ids(tmp_path):
    """Final Cut Pro 7 may write every clip item's `<file>` in full, with no id: the version and `use original` work."""
    import re

    data = premiere_xml(Fraction(24), [Shot("A.mov", 12, 96, media_tc=86400, media_frames=200)])
    definition = re.search(rb'<file id="file-1">.*?</file>', data, re.S).group(0)
    plain = definition.replace(b' id="file-1"', b"")
    data = data.replace(definition, plain).replace(b'<file id="file-1"/>', plain)
    path = tmp_path / "fcp7.xml"
    path.write_bytes(data)
    doc = read_document(path)
    (sel,) = select_range(doc.timeline, "20", "70", "V1")
    plan, version, sound = splice_in_memory(doc.timeline, sel, RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    out = save(doc.timeline, tmp_path / "out.xml", document=doc)
    assert check_xmeml(out.read_bytes()) == []
    back = read_document(out)
    use_version(back.timeline, "A.mov", "original")
    restored = save(back.timeline, tmp_path / "restored.xml", document=back).read_bytes()
    assert check_xmeml(restored) == []
    assert _items(restored, version.name) == []
    assert all(c.find("file/pathurl").text.endswith("/A.mov") for c in ET.fromstring(restored).iter("clipitem"))
    tl = read_timeline(tmp_path / "restored.xml")
    assert [len(t.find_clips()) for t in tl.tracks] == [3, 3, 3]
    assert {c.source_range.start_time.value for c in tl.tracks[0].find_clips()} == {86400 + 12, 86400 + 12 + 20, 86400 + 12 + 70}


def test_sequences_in_a_project_and_the_choice_between_them(tmp_path):
    def sequence(data: bytes, tag: bytes) -> bytes:
        body = data[data.index(b"\t<sequence"):data.index(b"</sequence>") + len(b"</sequence>")]
        for prefix in (b"sequence-", b"clipitem-", b"file-", b"masterclip-"):
            body = body.replace(prefix, prefix + tag)
        return body

    one = premiere_xml(Fraction(25), [Shot("A.mov", 0, 50)], name="first")
    two = premiere_xml(Fraction(25), [Shot("B.mov", 0, 60)], name="second")
    data = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n<xmeml version="5">\n<project>\n<name>p</name>\n'
            b"<children>\n<bin>\n<name>cuts</name>\n<children>\n" + sequence(one, b"a") + b"\n" + sequence(two, b"b") +
            b"\n</children>\n</bin>\n</children>\n</project>\n</xmeml>\n")
    path = tmp_path / "project.xml"
    path.write_bytes(data)
    with pytest.raises(TimelineReadError, match="holds 2 timelines.*choose one with --timeline"):
        read_timeline(path)
    tl = read_timeline(path, name="second")
    assert [c.name for c in tl.find_clips()] == ["B.mov"] * 3
    doc = read_document(path, ReadOptions(timeline_name="second"))
    assert save(doc.timeline, tmp_path / "same.xml", document=doc).read_bytes() == data


def test_a_second_retake_over_a_retaken_clip_splits_each_piece_and_keeps_every_version(tmp_path):
    """A new window over original | v001 | original (one shot): each piece is split and shows v002, the middle one
    keeps v001 beside it; written back, read again, put back to the original."""
    shots = [Shot("A.mov", 20, 50, media_tc=90000, media_frames=100), Shot("B.mov", 5, 100, media_tc=180000, media_frames=120)]
    source = tmp_path / "cut.xml"
    source.write_bytes(premiere_xml(Fraction(25), shots, start_frame=90000))
    doc = read_document(source)
    (sel,) = select_range(doc.timeline, "80", "120", "V1")
    _, first, _ = splice_in_memory(doc.timeline, sel, RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    out1 = save(doc.timeline, tmp_path / "v1.xml", document=doc)
    doc1 = read_document(out1)
    second = select_clip(doc1.timeline, "B.mov", "V1")            # the whole shot, its three pieces as one clip
    assert (second.record_range.start_time.value, second.record_range.duration.value) == (50, 100)
    _, again, _ = splice_in_memory(doc1.timeline, second, RetakeMode.REPLACE_VIDEO, number=2)
    out2 = save(doc1.timeline, tmp_path / "v2.xml", document=doc1)
    before, after = out1.read_bytes(), out2.read_bytes()
    assert check_xmeml(after) == []
    picture = {f"clipitem:{c.get('id')}" for c in ET.fromstring(before).find("sequence/media/video/track").iter("clipitem")
               if c.findtext("name") in ("B.mov", first.name)}
    assert len(picture) == 3
    assert_only_the_retake_changed(before, after, picture, {"B.mov", first.name, again.name})
    back = read_timeline(out2)
    on_v1 = [(c.name, sorted(k for k in c.media_references() if k != "DEFAULT_MEDIA")) for c in back.tracks[0].find_clips()]
    assert on_v1 == [("A.mov", []), (again.name, ["retake_v002"]), (again.name, ["retake_v001", "retake_v002"]),
                     (again.name, ["retake_v002"])]
    doc2 = read_document(out2)
    use_version(doc2.timeline, "B.mov", "original")
    restored = save(doc2.timeline, tmp_path / "restored.xml", document=doc2).read_bytes()
    assert check_xmeml(restored) == []
    assert {c.findtext("name") for c in ET.fromstring(restored).iter("clipitem")} == {"A.mov", "B.mov"}
    assert {c.active_media_reference_key for c in read_timeline(tmp_path / "restored.xml").find_clips()} == {"DEFAULT_MEDIA"}
    assert_only_the_retake_changed(source.read_bytes(), restored, {"clipitem:clipitem-2", "clipitem:clipitem-4",
                                                                   "clipitem:clipitem-6"}, {"B.mov"})
