"""CMX 3600 EDLs: the rate decided or refused, read right, written back byte for byte, retaken as events in place."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.adapters import edl_file
from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.testcard import read_index
from ltx_retake.adapters.timeline_files import FAITHFUL, read_document
from ltx_retake.cli import main
from ltx_retake.document import ReadOptions
from ltx_retake.errors import InputError, TimelineReadError, UnsupportedEditError
from ltx_retake.limits import limits_for
from ltx_retake.plan import plan_retake, source_clip, time_scalar
from ltx_retake.ports import RetakeMode
from ltx_retake.relink import Relinker, media_hints
from ltx_retake.selection import clip_at, select_clip, select_markers, select_range
from ltx_retake.splice import Version, linked_sound, place_above, splice_version
from ltx_retake.timing import exact_rate, format_timecode, parse_rate, parse_timecode
from ltx_retake.versions import list_versions, use_version

from standins import standin_media
from timelines import info

RT = otio.opentime.RationalTime
MEDIA = FfmpegMediaTool()
CORPUS_RATES = {"avid_2997df_colon_tc.edl": None, "avid_cdl_loc_markers.edl": Fraction(24),
                "exr_pull_list_camera_reels.edl": Fraction(24), "premiere_25fps_effects.edl": Fraction(25)}


# --- helpers ----------------------------------------------------------------------------------------------------

def make_edl(rate: Fraction, *, df: bool = False, tc: str = "01:00:00:00", eol: str = "\r\n", fcm: bool = True,
             sep: str | None = None, width: int = 3, end_with_eol: bool = False) -> bytes:
    """An EDL as Avid writes one: shot010 on B (picture and its sound), shot020 (V, a LOC marker, a CDL), shot030
    (V), room tone on AA under the last two; each source at its own camera timecode."""
    one = round(rate)
    at = start = parse_timecode(tc, rate, df)

    def t(frame: int) -> str:
        text = format_timecode(frame, rate, df)
        return text.replace(";", sep) if sep is not None else text

    lines = ["TITLE:   gen cut"] + ([f"FCM: {'DROP FRAME' if df else 'NON-DROP FRAME'}"] if fcm else [])
    shots = [("A001C003_200101", "B", "shot010", 2), ("A002C001_200101", "V", "shot020", 3),
             ("A003C007_200101", "V", "shot030", 2)]
    for k, (reel, chan, name, seconds) in enumerate(shots):
        src = parse_timecode(f"1{k}:00:00:00", rate, df) + one * (k + 1)
        length = seconds * one + k
        lines.append(f"{k + 1:0{width}d}  {reel:<16} {chan:<5} C        {t(src)} {t(src + length)} {t(at)} {t(at + length)} ")
        lines.append(f"* FROM CLIP NAME:  {name}")
        if name == "shot020":
            lines += [f"* LOC: {t(at + one)} GREEN   make it rain", "*ASC_SOP (0.9 0.9 0.9)(0.01 0.02 0.03)(1.0 1.0 1.0)",
                      "*ASC_SAT 0.9"]
        at += length
    tone = parse_timecode("14:00:00:00", rate, df)
    lines.append(f"{4:0{width}d}  A004C002_200101  AA    C        {t(tone)} {t(tone + at - start - 2 * one)} "
                 f"{t(start + 2 * one)} {t(at)} ")
    lines.append("* FROM CLIP NAME:  room tone")
    return (eol.join(lines) + (eol if end_with_eol else "")).encode()


def read(data: bytes, rate=None, media=None, name: str = "cut.edl"):
    (tl,), notes = edl_file.read(data, Path(name), ReadOptions(rate=rate), media or (lambda clip: None))
    return tl, notes


def blocks(data: bytes) -> list[tuple[str, list[bytes]]]:
    """Each event's lines as written, its number taken out of its event lines (renumbering is not a change)."""
    edl = edl_file._parse(data, "x.edl")
    out = []
    for ev in edl.events:
        heads = {h.line.no: h for h in ev.heads}
        lines = []
        for line in [h.line for h in ev.heads] + ev.body + ev.tail:
            raw = line.raw
            if line.no in heads:
                raw = raw.replace(heads[line.no].num.encode(), b"#", 1)
            lines.append(raw.rstrip(b"\r\n"))
        out.append((ev.number, lines))
    return out


def changed_only(before: bytes, after: bytes, index: int) -> list[tuple[str, list[bytes]]]:
    """Check that `after` is `before` with event `index` (0-based) replaced by some events, every other event's lines
    identical, later events renumbered by the count added; the events that replaced it."""
    a, b = blocks(before), blocks(after)
    added = len(b) - len(a) + 1
    assert edl_file._parse(after, "x").header == edl_file._parse(before, "x").header
    assert b[:index] == a[:index]
    assert [lines for _, lines in b[index + added:]] == [lines for _, lines in a[index + 1:]]
    width = len(a[0][0])
    assert [n for n, _ in b[index + added:]] == [f"{int(n) + added - 1:0{width}d}" for n, _ in a[index + 1:]]
    assert [n for n, _ in b[index:index + added]] == [f"{int(a[index][0]) + i:0{width}d}" for i in range(added)]
    return b[index:index + added]


def retake_in_memory(tl, start: str, end: str, n: int, mode=RetakeMode.REPLACE_VIDEO, rate=Fraction(24), track=None):
    """The planner and the splicer, as a run would use them, with a version file that does not exist (no media)."""
    (sel,) = select_range(tl, start, end, track)
    src = source_clip(tl, sel, None, media=Path("/m/source.mov"))
    (plan,) = plan_retake(tl, src, info(rate=rate, frames=10 ** 7, start_frame=0, tc="00:00:00:00"), limits_for("local"),
                          prompt="rain", mode=mode, provider="local", model="m")
    version = Version(n, plan.clip_name, Path(f"/r/{plan.clip_name}_retake_v{n:03d}.mov"), {"prompt": "rain", "mode": mode.value})
    for p in [plan] + (linked_sound(tl, plan) if mode != RetakeMode.REPLACE_VIDEO else []):
        splice_version(tl, p, version)
    return plan


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- the rate ---------------------------------------------------------------------------------------------------

RATE_CASES = [("23.976", False, "01:00:00:00"), ("24", False, "01:00:00:00"), ("25", False, "10:00:00:00"),
              ("29.97", True, "01:00:00:00"), ("29.97", False, "01:00:00:00"), ("30", False, "01:00:00:00"),
              ("50", False, "00:59:59:40"), ("59.94", True, "00:59:59:40"), ("59.94", False, "00:59:59:40")]


@pytest.mark.parametrize("text,df,tc", RATE_CASES, ids=[f"{r}{'DF' if d else ''}" for r, d, _ in RATE_CASES])
def test_the_rate_comes_from_the_media_or_rate_and_timecodes_count_in_it(text, df, tc):
    rate = parse_rate(text)
    tc = tc.replace(":", ";", 3)[:8] + tc[8:] if df else tc
    data = make_edl(rate, df=df, tc=tc)
    by_media, notes = read(data, media=lambda clip: rate)
    assert exact_rate(by_media.global_start_time.rate) == rate and "the rate of its media" in notes[0]
    assert by_media.global_start_time.value == parse_timecode(tc, rate, df)
    shot020 = select_clip(by_media, "shot020")
    assert shot020.record_range.start_time.value == 2 * round(rate)
    assert [t.name for t in by_media.tracks] == ["V", "A1", "A2"]
    by_rate, notes = read(data, rate=rate)
    assert "(--rate)" in notes[0] and by_rate.duration() == by_media.duration()
    assert edl_file.write(data, by_rate, Path("cut.edl")) == data
    if df and tc[-2:] < "30" or df and rate > 30:   # drop-frame marks decide: 29.97, or 59.94 when a frame field says so
        alone, notes = read(data)
        assert exact_rate(alone.global_start_time.rate) == rate and "drop-frame" in notes[0]
    else:
        with pytest.raises(TimelineReadError, match=r"does not say its frame rate: its timecodes fit .* fps \(highest "
                           r"frame field \d+; FCM: NON-DROP FRAME\); give it with --rate, or let ltx-retake find the "
                           r"media \(--media-search DIR\) to read it from them\."):
            read(data)


def test_pulled_down_media_agree_and_other_media_are_refused_by_name():
    data = make_edl(Fraction(24))
    tl, notes = read(data, rate=Fraction(24), media=lambda clip: Fraction(24000, 1001))  # 23.976 media counted at 24
    assert exact_rate(tl.global_start_time.rate) == 24
    tl, notes = read(data, media=lambda clip: Fraction(24000, 1001))
    assert exact_rate(tl.global_start_time.rate) == Fraction(24000, 1001)
    with pytest.raises(TimelineReadError, match=r"cut\.edl: --rate says 25 fps, but its media shot010 \(event 001, "
                       r"line 3\) runs at 24 fps\. Give the media's rate with --rate"):
        read(data, rate=Fraction(25), media=lambda clip: Fraction(24))
    rates = iter([Fraction(24), Fraction(25), Fraction(24), Fraction(24)])
    with pytest.raises(TimelineReadError, match=r"its media disagree on the frame rate .* runs at 24 fps, .* at 25 fps"):
        read(data, media=lambda clip: next(rates))
    with pytest.raises(TimelineReadError, match=r"its media .* runs at 25 fps, but its timecodes do not fit that rate"):
        read(make_edl(Fraction(30), tc="01:00:00:27"), media=lambda clip: Fraction(25))


@pytest.mark.parametrize("data,rate,message", [
    (make_edl(Fraction(30), tc="01:00:00:27"), Fraction(25), r"cannot be counted at 25 fps as --rate says: its frame "
     r"fields go up to 2\d, and 25 fps stops at 24"),
    (make_edl(Fraction(30000, 1001), df=True), Fraction(30), r"counts drop-frame timecode \(.*FCM: DROP FRAME.*\), which "
     r"exists only at 29\.97 and 59\.94 fps, but --rate says 30 fps"),
    (make_edl(Fraction(30000, 1001), df=True, fcm=False), Fraction(25), r"no FCM line; ';' drop-frame separators"),
])
def test_a_rate_the_file_contradicts_is_refused(data, rate, message):
    with pytest.raises(TimelineReadError, match=message):
        read(data, rate=rate)


def test_semicolons_or_an_fcm_line_mean_drop_frame():
    rate = Fraction(30000, 1001)
    semis, _ = read(make_edl(rate, df=True, fcm=False, tc="01:00:00;00"))
    colons, _ = read(make_edl(rate, df=True, sep=":", tc="01:00:00;00"))   # Avid: FCM: DROP FRAME, written with ':'
    for tl in (semis, colons):
        assert exact_rate(tl.global_start_time.rate) == rate and tl.global_start_time.value == 107892
        assert select_clip(tl, "shot030").record_range.start_time.value == 5 * 30 + 1


# --- the corpus: read right, written back byte for byte ---------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CORPUS_RATES))
def test_every_corpus_edl_reads_and_writes_back_identical(corpus, name):
    data = (corpus / "edl" / name).read_bytes()
    tl, notes = read(data, rate=CORPUS_RATES[name], name=name)
    assert edl_file.write(data, tl, Path(name)) == data
    assert edl_file.cannot_hold(tl) == []
    for item in tl.find_children():
        if not isinstance(item, otio.schema.Gap) or item.metadata.get("ltx_retake"):
            assert item.metadata["ltx_retake"]["origin"]["id"].startswith(("event", "channel-"))


def test_corpus_facts(corpus):
    cdl, _ = read((corpus / "edl/avid_cdl_loc_markers.edl").read_bytes(), rate=Fraction(24))
    assert cdl.global_start_time.value == parse_timecode("02:13:08:12", Fraction(24))
    markers = [m for c in cdl.find_clips() for m in c.markers]
    assert len(markers) == 37 and {m.color for m in markers} == {"GREEN", "WHITE"}
    first = cdl.find_clips()[0]
    assert first.markers[0].name == "Sc 117 INTERCUT" and first.markers[0].marked_range.start_time == first.source_range.start_time
    assert first.metadata["cdl"]["asc_sat"] == 0.964
    sels = select_markers(cdl)
    assert len(sels) == 37 and sels[0].clip.name == "117C-3-B"
    assert media_hints(first)[:2] == ["117C-3-B", "B_0031C010_241010_133208_h1C2T"]

    avid, notes = read((corpus / "edl/avid_2997df_colon_tc.edl").read_bytes())
    assert exact_rate(avid.global_start_time.rate) == Fraction(30000, 1001) and avid.global_start_time.value == 107892
    clips = {c.name: c for c in avid.find_clips()}
    warp = clips["DTB RE EDIT - HD 720P VIDEO SHARING.NEW.01"].effects[0]
    assert isinstance(warp, otio.schema.LinearTimeWarp) and warp.time_scalar == pytest.approx(59.6 / 29.97)
    with pytest.raises(UnsupportedEditError, match="speed curve cannot be read"):
        time_scalar(clips["00004.NEW.01"])      # M2 024.0 over equal source and record lengths: not a speed to trust
    assert any("do not agree; it cannot be retaken" in n for n in notes)
    assert media_hints(clips["ACC112 WARBIRDS.NEW.01"])[:3] == ["ACC112 WARBIRDS", "ACC112 WARBIRDS.NEW.01", "ACC112"]
    track = avid.tracks[0]   # event 008 starts before 007 ends: the later event overwrites, as on a controller
    ranges = track.range_of_all_children()
    assert ranges[track[6]].end_time_exclusive() == ranges[track[7]].start_time

    premiere, _ = read((corpus / "edl/premiere_25fps_effects.edl").read_bytes(), rate=Fraction(25))
    assert [t.name for t in premiere.tracks] == ["V", "A1", "A2", "A3", "A4"]   # AUD 3 4
    dissolve = [i for i in premiere.tracks[0] if isinstance(i, otio.schema.Transition)]
    assert len(dissolve) == 1 and dissolve[0].out_offset.value == 70 and dissolve[0].name == "CROSS DISSOLVE"
    reverse = [c for c in premiere.find_clips() if c.effects]
    assert reverse and all(c.effects[0].time_scalar == -1 for c in reverse)

    exr, _ = read((corpus / "edl/exr_pull_list_camera_reels.edl").read_bytes(), rate=Fraction(24))
    assert media_hints(exr.find_clips()[0]) == ["A036C010_191203"]


# --- writing a retake: only that event changes -----------------------------------------------------------------

def test_a_retake_splits_only_its_event_and_reads_back_with_every_version(corpus):
    path = corpus / "edl/avid_cdl_loc_markers.edl"
    data = path.read_bytes()
    tl, _ = read(data, rate=Fraction(24))
    retake_in_memory(tl, "02:13:14:00", "02:13:16:00", 1)
    assert edl_file.cannot_hold(tl) == []
    out = edl_file.write(data, tl, path)
    left, version, right = changed_only(data, out, 2)
    assert out.count(b"\r\n") == out.count(b"\n") and out.endswith(b"\n") == data.endswith(b"\n")
    assert version[1][0].split()[1] == b"117A2A_retake_v001" and b"*FROM CLIP NAME:  117A-2-A_retake_v001 " in version[1]
    assert b"*SOURCE FILE: 117A-2-A_retake_v001.mov " in version[1]
    for _, lines in (left, version, right):   # the grade and the VFX note stay with every piece
        assert lines[-1].startswith(b"*ASC_SAT") or any(l.startswith(b"*ASC_SAT") for l in lines)
        assert any(l.startswith(b"*VFX  117_GUD_0060") for l in lines)
    assert [l for l in right[1] if l.startswith(b"*LOC")] == [b"*LOC: 02:13:17:01 White   VFX  117_GUD_0060 add Norway landscape "]
    assert all(len(l) <= 80 for l in version[1] if l.startswith(b"* LTX-RETAKE"))

    back, notes = read(out, name="out.edl")   # the rate is in our own comment: no --rate, no media needed
    assert "as ltx-retake wrote it" in notes[0]
    (rc,) = list_versions(back)
    assert rc.original_name == "117A-2-A" and rc.versions == ("retake_v001",) and rc.active == "retake_v001"
    assert rc.record_timecode == "02:13:14:00-02:13:16:00"
    default = rc.clip.media_references()["DEFAULT_MEDIA"]
    assert isinstance(default, otio.schema.MissingReference) and default.metadata["cmx_3600"]["reel"] == "A_0038C002_241010_114016_h1EHP"
    v1 = rc.clip.media_references()["retake_v001"]
    assert v1.target_url == "/r/117A-2-A_retake_v001.mov" and v1.metadata["ltx_retake"]["prompt"] == "rain"
    assert v1.available_range.start_time.value == parse_timecode("12:41:36:16", Fraction(24))
    assert edl_file.write(out, back, Path("out.edl")) == out

    use_version(back, "117A-2-A", "original")
    original = edl_file.write(out, back, Path("out.edl"))
    (event,) = changed_only(out, original, 3)
    assert event[1][0].split()[1] == b"A_0038C002_241010_114016_h1EHP" and b"*FROM CLIP NAME:  117A-2-A " in event[1]
    again, _ = read(original)
    assert list_versions(again)[0].active == "original"
    use_version(again, "117A-2-A", "v1")
    assert edl_file.write(original, again, Path("x.edl")) == out

    back, _ = read(out)
    retake_in_memory(back, "02:14:10:00", "02:14:12:00", 1)   # a second retake, of another clip, on the file we wrote
    second = edl_file.write(out, back, Path("out.edl"))
    changed_only(out, second, 20)
    assert {r.original_name for r in list_versions(read(second)[0])} == {"117A-2-A", "124-3-A"}


def test_picture_and_sound_events_keep_their_sound_unless_the_mode_changes_it():
    rate = Fraction(25)
    data = make_edl(rate, eol="\n", end_with_eol=True)
    tl, _ = read(data, rate=rate)
    retake_in_memory(tl, "01:00:00:10", "01:00:01:10", 1, rate=rate)   # replace_video in shot010 (B)
    out = edl_file.write(data, tl, Path("cut.edl"))
    events = changed_only(data, out, 0)
    assert [lines[0].split()[1:3] for _, lines in events] == [[b"LTX00001", b"V"], [b"A001C003_200101", b"A"]]
    assert events[1][1][0].split()[4:] == data.split(b"\n")[2].split()[4:]   # the original sound, whole, untouched
    (picture,) = list_versions(read(out)[0])
    assert picture.track == "V1 ('V')"

    tl, _ = read(data, rate=rate)
    retake_in_memory(tl, "01:00:00:10", "01:00:01:10", 1, mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, rate=rate)
    out = edl_file.write(data, tl, Path("cut.edl"))
    (event,) = changed_only(data, out, 0)
    assert event[1][0].split()[1:3] == [b"LTX00001", b"B"]
    assert sorted(r.track for r in list_versions(read(out)[0])) == ["A1", "V1 ('V')"]


def test_a_dissolve_stays_on_its_piece_and_what_an_edl_cannot_hold_is_said(corpus):
    path = corpus / "edl/premiere_25fps_effects.edl"
    data = path.read_bytes()
    tl, _ = read(data, rate=Fraction(25))
    retake_in_memory(tl, "00:01:58:00", "00:01:59:00", 1, rate=Fraction(25))   # the dissolve's incoming clip, after it
    out = edl_file.write(data, tl, path)
    first, version, after = changed_only(data, out, 4)
    assert first[1][1].split()[3:5] == [b"D", b"070"] and b"EFFECTS NAME IS CROSS DISSOLVE" in first[1]
    assert version[1][0].split()[3] == b"C" and after[1][1] == b"* FROM CLIP NAME: Jellyfish.jpg"
    assert first[1][-1] == b"" and version[1][-1] == b""   # Premiere's blank line after every event

    tl, _ = read(data, rate=Fraction(25))
    retake_in_memory(tl, "00:01:53:00", "00:01:54:17", 1, rate=Fraction(25))   # the dissolve's outgoing clip, up to it
    assert any("meets a transition" in s for s in edl_file.cannot_hold(tl))
    with pytest.raises(InputError, match="cannot be edited to hold this"):
        edl_file.write(data, tl, path)

    tl, _ = read(data, rate=Fraction(25))
    (sel,) = select_range(tl, "00:02:07:00", "00:02:08:00")
    (plan,) = plan_retake(tl, source_clip(tl, sel, None, media=Path("/m/x.mov")), info(rate=Fraction(25), frames=10 ** 7,
                          start_frame=0, tc=None), limits_for("local"), prompt="x", mode=RetakeMode.REPLACE_VIDEO,
                          provider="local", model="m")
    place_above(tl, plan, Version(1, plan.clip_name, Path("/r/v.mov"), {}))
    assert any("one picture track" in s and "--placement splice" in s for s in edl_file.cannot_hold(tl))


def test_broken_edls_are_refused_with_a_sentence():
    with pytest.raises(TimelineReadError, match=r"cut\.edl has no events"):
        read(b"TITLE: nothing\r\n")
    with pytest.raises(TimelineReadError, match=r"line 2 looks like an event but does not read as one"):
        read(b"TITLE: x\n001  AX  V  X  01:00:00:00 01:00:01:00 01:00:00:00 01:00:01:00\n", rate=Fraction(24))
    with pytest.raises(TimelineReadError, match=r"event 001 \(line 2\) has channels 'Q'"):
        read(b"TITLE: x\n001  AX  Q  C  01:00:00:00 01:00:01:00 01:00:00:00 01:00:01:00\n", rate=Fraction(24))


# --- through the command line, with stand-in media found by --media-search ----------------------------------------

def shown(tl, folders, frames: range) -> dict[int, tuple[str, int]]:
    """The file and the index each record frame of V shows (the frame-index media say it themselves)."""
    relinker = Relinker(None, (), folders)
    frate = tl.global_start_time.rate
    wanted: dict[str, dict[int, int]] = {}
    for t in frames:
        clip, rng = clip_at(tl, 0, RT(t, frate))
        path = relinker.locate(clip).path
        ref = clip.media_reference
        origin = ref.available_range.start_time.value if getattr(ref, "available_range", None) else MEDIA.probe(path).start_frame
        wanted.setdefault(str(path), {})[t] = round(clip.source_range.start_time.value + t - rng.start_time.value - origin)
    out = {}
    for path, by_t in wanted.items():
        pictures = MEDIA.read_frames(path, set(by_t.values()))
        out.update({t: (path, read_index(pictures[f])) for t, f in by_t.items()})
    return out


def check_by_content(before_tl, after_tl, folders, window: tuple[int, int], version: str) -> None:
    rs, re_ = window
    around = range(max(0, rs - 3), min(re_ + 3, round(after_tl.tracks[0].duration().value)))
    before, after = shown(before_tl, folders, around), shown(after_tl, folders, around)
    for t in around:
        assert after[t][1] == before[t][1], f"record frame {t}: shows {after[t][1]}, expected {before[t][1]}"
        assert (after[t][0] == version) == (rs <= t < re_), f"record frame {t} comes from {after[t][0]}"


def window_of(tl, record: str) -> tuple[int, int]:
    a, b = record.split("-")
    rate = exact_rate(tl.global_start_time.rate)
    start = round(tl.global_start_time.value)
    return parse_timecode(a, rate) - start, parse_timecode(b, rate) - start


def test_a_camera_reel_pull_list_retaken_twice_and_switched_through_the_cli(corpus, tmp_path, capsys):
    edl = corpus / "edl/exr_pull_list_camera_reels.edl"
    original = edl.read_bytes()
    media = tmp_path / "media"
    standin_media(read(original, rate=Fraction(24))[0], media, handle_s=1.0)
    (media / "A036C010_191203.mov").rename(media / "A036C010_191203_001.mov")   # found by its reel at the start of its name
    code, out, err = cli(capsys, "retake", edl, "--clip", "A036C010_191203", "--prompt", "snow", "--mode", "video",
                         "--provider", "local", "-o", tmp_path / "v1.edl", "--media-search", media, "--yes", "--json")
    assert code == 0, err
    (job,) = json.loads(out)["jobs"]
    first = (tmp_path / "v1.edl").read_bytes()
    assert "counted at 24 fps (the rate of its media" in err
    events = changed_only(original, first, 0)
    assert len(events) == 1 and events[0][1][0].split()[1] == b"LTX00001"   # the whole clip: one event, its own reel
    before_tl = read_document(edl, ReadOptions(media_search=(media,)), probe=MEDIA.probe).timeline
    after_tl = read_document(tmp_path / "v1.edl", ReadOptions(media_search=(media,)), probe=MEDIA.probe).timeline
    (rc,) = list_versions(after_tl)
    assert rc.record_timecode == job["record"] and rc.clip.media_reference.target_url == job["file"]
    check_by_content(before_tl, after_tl, (media,), window_of(after_tl, job["record"]), job["file"])

    code, out, err = cli(capsys, "versions", tmp_path / "v1.edl")
    assert code == 0 and out.strip().split("\t")[0] == "A036C010_191203" and out.rstrip().endswith("original, retake_v001*")

    code, out, err = cli(capsys, "retake", tmp_path / "v1.edl", "--clip", "A152C002_200208", "--prompt", "rain", "--mode",
                         "video", "--provider", "local", "-o", tmp_path / "v2.edl", "--media-search", media, "--yes", "--json")
    assert code == 0, err
    (job2,) = json.loads(out)["jobs"]
    second = (tmp_path / "v2.edl").read_bytes()
    changed_only(first, second, len(blocks(first)) - 1)
    twice = read_document(tmp_path / "v2.edl", ReadOptions(media_search=(media,)), probe=MEDIA.probe).timeline
    check_by_content(before_tl, twice, (media,), window_of(twice, job2["record"]), job2["file"])

    code, out, err = cli(capsys, "use", tmp_path / "v2.edl", "A036C010_191203", "original", "-o", tmp_path / "v3.edl")
    assert code == 0, err
    third = (tmp_path / "v3.edl").read_bytes()
    changed_only(second, third, [i for i, (_, lines) in enumerate(blocks(second)) if b"LTX-RETAKE" in b"".join(lines)][0])
    switched = read_document(tmp_path / "v3.edl", ReadOptions(media_search=(media,)), probe=MEDIA.probe).timeline
    assert [r.active for r in list_versions(switched)] == ["original", "retake_v001"]
    assert shown(switched, (media,), range(*window_of(after_tl, job["record"]))) == \
        shown(before_tl, (media,), range(*window_of(after_tl, job["record"])))


@pytest.mark.parametrize("text,df", [("23.976", False), ("29.97", True), ("59.94", False)], ids=["23.976", "29.97DF", "59.94"])
def test_a_generated_edl_retaken_through_the_cli_keeps_its_sound_and_its_other_events(tmp_path, capsys, text, df):
    rate = parse_rate(text)
    tc = "00:59:59;40" if df and rate > 30 else "01:00:00;00" if df else "00:59:59:40" if rate > 30 else "01:00:00:00"
    data = make_edl(rate, df=df, tc=tc)
    (tmp_path / "cut.edl").write_bytes(data)
    media = tmp_path / "media"
    standin_media(read(data, rate=rate)[0], media, handle_s=0.5)
    code, out, err = cli(capsys, "retake", tmp_path / "cut.edl", "--clip", "shot010", "--prompt", "fog", "--mode", "video",
                         "--provider", "local", "-o", tmp_path / "out.edl", "--media-search", media, "--yes", "--json")
    assert code == 0, err
    (job,) = json.loads(out)["jobs"]
    new = (tmp_path / "out.edl").read_bytes()
    events = changed_only(data, new, 0)
    assert [lines[0].split()[1:3] for _, lines in events] == [[b"LTX00001", b"V"], [b"A001C003_200101", b"A"]]
    opts = ReadOptions(media_search=(media,))
    before_tl = read_document(tmp_path / "cut.edl", opts, probe=MEDIA.probe).timeline
    after_tl = read_document(tmp_path / "out.edl", opts, probe=MEDIA.probe).timeline
    assert exact_rate(after_tl.global_start_time.rate) == rate
    check_by_content(before_tl, after_tl, (media,), window_of(after_tl, job["record"]), job["file"])


def test_registered_as_the_faithful_edl_module():
    assert FAITHFUL["cmx_3600"] == "edl_file"
