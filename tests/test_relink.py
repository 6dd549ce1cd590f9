"""Relinking media from other machines (path maps, search by name and reel), and tracks named like positions."""

from __future__ import annotations

import json
from fractions import Fraction

import opentimelineio as otio
import pytest

from ltx_retake.adapters.timeline_files import read_timeline, write_timeline
from ltx_retake.cli import main
from ltx_retake.errors import InputError, SelectionError, UnsupportedEditError
from ltx_retake.metadata import NS
from ltx_retake.relink import HINTS, Relinker, parse_path_map, written_path
from ltx_retake.selection import find_track, track_label

from media_fixtures import make_project
from timelines import RT, TR, clip, timeline


@pytest.mark.parametrize("url, path", [
    ("file://localhost/C%3a/Users/Patrick/It's%20(1)!.mp4", "C:/Users/Patrick/It's (1)!.mp4"),
    ("file:///D:/media/sc01.mov", "D:/media/sc01.mov"),
    ("file://localhost/D%3a/media/sc01.mov", "D:/media/sc01.mov"),
    ("C:\\Users\\edit\\a.mov", "C:/Users/edit/a.mov"),
    ("D%3a/media/a.mov", "D:/media/a.mov"),
    ("file://server/share/a.mov", "//server/share/a.mov"),
    ("file:///Volumes/RAID/a%20b.mov", "/Volumes/RAID/a b.mov"),
    ("/Volumes/RAID/a.mov", "/Volumes/RAID/a.mov"),
    ("media/a.mov", "media/a.mov"),
])
def test_written_paths_in_every_form_an_nle_writes(url, path):
    assert written_path(url) == path


def test_another_systems_absolute_path_is_never_put_under_the_timelines_folder(tmp_path):
    relinker = Relinker(tmp_path)
    assert relinker.as_written("C:/Users/x/a.mov") is None
    assert relinker.as_written("media/a.mov") == tmp_path / "media" / "a.mov"
    c = clip("a", "file://localhost/C%3a/Users/x/a.mov", 0, 48)
    with pytest.raises(SelectionError) as info:
        relinker.locate(c, "a on V1")
    text = str(info.value)
    assert "a on V1: its media C:/Users/x/a.mov is not on this machine" in text and "--map-path" in text
    assert str(tmp_path) not in text


@pytest.mark.parametrize("rule", ["C:\\Users\\x", "C:/Users/x/", "c:/users/X", "file://localhost/C%3a/Users/x"])
def test_a_path_map_matches_windows_paths_in_any_spelling(tmp_path, rule):
    (tmp_path / "media" / "day 1").mkdir(parents=True)
    target = tmp_path / "media" / "day 1" / "a.mov"
    target.write_bytes(b"x")
    relinker = Relinker(tmp_path / "elsewhere", [parse_path_map(f"{rule}={tmp_path / 'media'}")])
    found = relinker.locate(clip("a", "file://localhost/C%3a/Users/x/day%201/a.mov", 0, 48))
    assert found.path == target and found.relinked and "--map-path" in found.how


def test_a_path_map_for_a_mac_volume_is_case_sensitive_and_stops_at_folder_names(tmp_path):
    (tmp_path / "a.mov").write_bytes(b"x")
    relinker = Relinker(None, [("/Volumes/RAID", str(tmp_path))])
    assert relinker.locate(clip("a", "/Volumes/RAID/a.mov", 0, 48)).path == tmp_path / "a.mov"
    for other in ("/Volumes/RAID2/a.mov", "/volumes/raid/a.mov"):
        with pytest.raises(SelectionError, match="not on this machine"):
            relinker.locate(clip("a", other, 0, 48))
    with pytest.raises(InputError, match="not FROM=TO"):
        parse_path_map("/Volumes/RAID")


def test_media_is_found_by_name_by_reel_and_two_candidates_are_refused_by_name(tmp_path):
    (tmp_path / "day1").mkdir()
    (tmp_path / "day2").mkdir()
    (tmp_path / "day1" / "A036C010_191203_R1ZK.mov").write_bytes(b"x")
    (tmp_path / "day1" / "shot.mov").write_bytes(b"x")
    (tmp_path / "day2" / "Shot.MOV").write_bytes(b"x")
    relinker = Relinker(None, (), [tmp_path])
    reel = otio.schema.Clip(name="000001", media_reference=otio.schema.MissingReference(),
                            source_range=TR(RT(0, 24), RT(48, 24)))
    reel.metadata[NS] = {HINTS: ["A036C010_191203"]}
    found = relinker.locate(reel, "000001 on V1")
    assert found.path.name == "A036C010_191203_R1ZK.mov" and "found by name" in found.how
    with pytest.raises(SelectionError) as info:
        relinker.locate(clip("shot", "/old/drive/shot.mov", 0, 48), "shot on V1")
    assert "day1/shot.mov" in str(info.value) and "day2/Shot.MOV" in str(info.value)
    short = otio.schema.Clip(name="AX", media_reference=otio.schema.MissingReference(), source_range=TR(RT(0, 24), RT(1, 24)))
    with pytest.raises(SelectionError, match="offline .* 'AX'.*--media-search"):
        relinker.locate(short)
    with pytest.raises(InputError, match="not a folder"):
        Relinker(None, (), [tmp_path / "nowhere"])


def test_generators_sequences_and_web_media_are_refused_with_the_clip_named():
    relinker = Relinker()
    gen = otio.schema.Clip(name="Black Video", media_reference=otio.schema.GeneratorReference(generator_kind="black"))
    with pytest.raises(SelectionError, match="Black Video on V1 is a generator"):
        relinker.locate(gen, "Black Video on V1")
    web = clip("w", "https://cdn.example.com/w.mov", 0, 24)
    with pytest.raises(UnsupportedEditError, match="w on V1 has a web address"):
        relinker.locate(web, "w on V1")


def two_tracks_named_like_positions() -> otio.schema.Timeline:
    tl = timeline(clip("a", "/m/a.mov", 0, 48))
    tl.tracks[0].name = "1"                       # what OTIO's FCPXML reader calls lanes
    lane = otio.schema.Track(name="0")
    lane.append(clip("b", "/m/b.mov", 0, 48))
    tl.tracks.insert(0, lane)                     # now "0" is V1 and "1" is V2
    sound = otio.schema.Track(name="V2", kind=otio.schema.TrackKind.Audio)
    tl.tracks.append(sound)
    return tl


def test_tracks_by_position_or_name_and_an_ambiguous_one_is_refused():
    tl = two_tracks_named_like_positions()
    assert find_track(tl, "V1") == 0 and find_track(tl, "v2") == 1 and find_track(tl, "A1") == 2
    assert find_track(tl, "2") == 1                      # a bare number is a position; the track named "2" does not exist
    assert find_track(tl, "name:1") == 1 and find_track(tl, "name:0") == 0
    with pytest.raises(SelectionError, match=r"--track 1 is ambiguous: by position it is V1 \('0'\), but V2 \('1'\) is named '1'"):
        find_track(tl, "1")
    with pytest.raises(SelectionError, match="ambiguous.*A1 \\('V2'\\) is named 'V2'.*name:V2"):
        find_track(tl, "V2")
    with pytest.raises(SelectionError, match="No track is named 'x'"):
        find_track(tl, "name:x")
    assert [find_track(tl, track_label(tl, i), t.kind) for i, t in enumerate(tl.tracks)] == [0, 1, 2]


def test_a_conversion_lists_what_it_loses_before_anything_is_sent(tmp_path, capsys):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=5)
    tl = read_timeline(cut)
    tl.tracks[0][2].enabled = False
    tl.tracks[0][0].markers.append(otio.schema.Marker(name="m", marked_range=TR(RT(86401, 24), RT(0, 24))))
    source = write_timeline(tl, tmp_path / "edited.otio")
    out = tmp_path / "cut.edl"
    assert main(["retake", str(source), "--clip", "B", "--prompt", "snow", "--provider", "local", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Writing cut.edl would lose" in err and "Nothing was sent" in err and "--yes" in err
    for loss in ("1 clip(s) keep only the media they show", "1 disabled clip(s) are dropped", "start timecode"):
        assert loss in err
    assert not out.exists() and not (tmp_path / "edited_retakes").exists()
    assert main(["jobs", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
