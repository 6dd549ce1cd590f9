"""Iterating on a shot from the command line: retake it, retake it again, and again over a wider window, each time
from the original media, the earlier versions kept beside the new one; switch between them; check by frame content."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.timeline_files import read_timeline
from ltx_retake.cli import main
from ltx_retake.versions import list_versions

from media_fixtures import make_project
from showing import indices_shown

MEDIA = FfmpegMediaTool()


def retake(capsys, timeline, out, rng, prompt) -> dict:
    code = main(["retake", str(timeline), "--range", *rng, "--prompt", prompt, "--mode", "video", "--provider", "local",
                 "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return {"summary": json.loads(captured.out), "log": captured.err}


@pytest.mark.slow
def test_a_shot_retaken_three_times_in_a_row_from_its_original_media(tmp_path, capsys):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=8.0)   # B: record frames 24-168
    first = retake(capsys, cut, tmp_path / "v1.otio", ("48", "108"), "rain")
    second = retake(capsys, tmp_path / "v1.otio", tmp_path / "v2.otio", ("48", "108"), "snow")
    third = retake(capsys, tmp_path / "v2.otio", tmp_path / "v3.otio", ("36", "132"), "fog")   # wider: over three pieces
    names = [r["summary"]["jobs"][0]["version"] for r in (first, second, third)]
    assert names == ["B_retake_v001", "B_retake_v002", "B_retake_v003"]
    assert "retaken from the original media; v001 stays available" in second["log"]
    assert "retaken from the original media; v001, v002 stay available" in third["log"]
    # each input was cut from the source itself, never from a version (which holds only the window's 60 frames)
    assert "from source.mov frames" in second["log"] and "from source.mov frames" in third["log"]

    tl = read_timeline(tmp_path / "v3.otio")
    pieces = [c for c in tl.tracks[0] if c.name.startswith("B")]
    assert [sorted(k for k in c.media_references() if k != "DEFAULT_MEDIA") for c in pieces] == [
        [], ["retake_v003"], ["retake_v001", "retake_v002", "retake_v003"], ["retake_v003"], []]
    assert tl.duration().value == 8 * 24
    original = read_timeline(cut)
    shown = indices_shown(tl, 0, range(30, 140))
    before = indices_shown(original, 0, range(30, 140))
    v3 = tmp_path / "cut_retakes" / "B_retake_v003.mov"
    for t in range(30, 140):
        assert shown[t][2] == before[t][2], f"record frame {t}"
        assert (shown[t][0] == v3) == (36 <= t < 132), f"record frame {t} shows {shown[t][0].name}"

    # compare and switch: v001 shows again over its own window only; the original everywhere
    assert main(["use", str(tmp_path / "v3.otio"), "B", "v001", "-o", str(tmp_path / "back.otio")]) == 0
    capsys.readouterr()
    back = read_timeline(tmp_path / "back.otio")
    shown = indices_shown(back, 0, range(30, 140))
    v1 = tmp_path / "cut_retakes" / "B_retake_v001.mov"
    assert all((shown[t][0] == v1) == (48 <= t < 108) for t in range(30, 140))
    assert main(["versions", str(tmp_path / "back.otio"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {v for entry in listed for v in entry["versions"]} == {"retake_v001", "retake_v002", "retake_v003"}
    assert len(list_versions(back)) == 3
