"""The Resolve bridge against a fake Resolve with the real one's quirks, as 18.5, 19.1 and 21.0.4, through real retakes."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from fake_resolve import FakeResolve
from ltx_retake.adapters.resolve_bridge import NEWEST_COLOUR, OLDER_COLOUR, ResolveBridge
from ltx_retake.adapters.resolve_broker import serve_in_thread
from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.cli import main as cli
from ltx_retake.compose import wiring_for
from ltx_retake.errors import SelectionError, UnsupportedEditError
from ltx_retake.live import retake_live
from ltx_retake.selection import item_path
from ltx_retake.plan import time_scalar
from ltx_retake.ports import RetakeMode
from ltx_retake.settings import Settings
from media_fixtures import indices

V18, V19, V21 = (18, 5, 1, 6, ""), (19, 1, 3, 7, ""), (21, 0, 4, 2, "")
START = 86400                      # 01:00:00:00 at 24 fps
A_IN, A_LEN, B_LEN = 24, 120, 96   # shot A shows source frames 24..143 at the timeline's start; B follows


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("resolve_media")
    return {
        "A": write_indexed_clip(folder / "A001_C002.mov", frames=240, rate=Fraction(24), timecode="10:00:00:00"),
        "B": write_indexed_clip(folder / "B007_C001.mp4", frames=240, rate=Fraction(24)),
    }


def make_resolve(media, version=V21, *, product="DaVinci Resolve Studio", platform="darwin"):
    """A project with timeline "Cut 1" at 24 fps from 01:00:00:00: shot A then shot B on V1, V2 empty."""
    fake = FakeResolve(version=version, product=product, platform=platform)
    a = fake.add_media(media["A"], frames=240, fps="24", start_tc="10:00:00:00")
    b = fake.add_media(media["B"], frames=240, fps="24")
    tl = fake.new_timeline("Cut 1", rate="24", video_tracks=2, audio_tracks=1)
    item_a = tl.place(1, a, START, A_IN, A_IN + A_LEN)
    item_b = tl.place(1, b, START + A_LEN, 0, B_LEN)
    return fake, tl, item_a, item_b


def retake(bridge, tmp_path, **kw):
    with wiring_for("local", Settings()) as wiring:
        return retake_live(bridge, wiring, tmp_path / "LTX Retakes", prompt=kw.pop("prompt", "a crow lands"),
                           mode=kw.pop("mode", RetakeMode.REPLACE_VIDEO), provider="local", model="local-preview",
                           media_dir=tmp_path / "media", **kw)


def provenance(item) -> dict:
    (marker,) = item.GetMarkers().values()
    return json.loads(marker["customData"])


def bin_clips(fake) -> dict[str, list[str]]:
    pool = fake.GetProjectManager().GetCurrentProject().GetMediaPool()
    (top,) = [f for f in pool.GetRootFolder().GetSubFolderList() if f.GetName() == "LTX Retakes"]
    return {f.GetName(): [c.GetClipProperty("File Path") for c in f.GetClipList()] for f in top.GetSubFolderList()}


# -- reading --------------------------------------------------------------------------------------------------------

def test_the_timeline_reads_as_otio_with_source_ranges_and_the_items_behind_them(media):
    fake, tl, item_a, item_b = make_resolve(media, V19)
    read = ResolveBridge(fake).read()
    assert (read.name, read.rate, read.drop_frame, read.start_frame) == ("Cut 1", Fraction(24), False, START)
    assert read.timeline.global_start_time == otio.opentime.RationalTime(START, 24)
    v1 = read.timeline.tracks[0]
    clip_a, clip_b = v1[0], v1[1]
    assert clip_a.name == "A001_C002" and clip_a.media_reference.target_url == str(media["A"])
    assert clip_a.source_range.start_time.to_frames() == 10 * 3600 * 24 + A_IN  # the file's timecode plus the offset
    assert clip_a.source_range.duration.to_frames() == A_LEN
    assert clip_b.source_range.start_time.to_frames() == 0 and clip_b.source_range.duration.to_frames() == B_LEN
    meta = clip_b.metadata["ltx_retake"]["resolve"]
    assert (meta["item"], meta["start"], meta["end"], meta["track"]) == (item_b.GetUniqueId(), START + A_LEN, START + A_LEN + B_LEN, 1)
    assert [t.kind for t in read.timeline.tracks] == ["Video", "Video", "Audio"]


@pytest.mark.parametrize("version, expect", [
    (V21, ("picks", [(0, 1)])),                          # GetSelectedClips: the read's clip at track 0, item 1
    (V19, ("range", (0, "01:00:01:06", "01:00:03:06"))), # in/out marks (relative, out inclusive)
    (V18, ("picks", [(0, 0)])),                          # only the clip under the playhead
])
def test_the_pick_follows_what_the_version_can_report(media, version, expect):
    fake, tl, item_a, item_b = make_resolve(media, version)
    fake.select([item_b])
    if version >= (19, 1):
        tl.set_marks(30, 77)
    tl.set_playhead(START + 10)
    read = ResolveBridge(fake).read()
    if expect[0] == "picks":   # the picked clips themselves, as objects of the read (where they sit, to compare)
        assert [(ti, item_path(read.timeline, clip)[1]) for ti, clip in read.picks] == expect[1]
    else:
        assert getattr(read, expect[0]) == expect[1]
    assert read.how


def test_on_21_0_4_an_empty_selection_falls_back_to_marks_then_the_playhead(media):
    fake, tl, item_a, item_b = make_resolve(media, V21)
    tl.set_playhead(START + A_LEN + 5)
    read = ResolveBridge(fake).read()
    assert [(ti, clip.metadata["ltx_retake"]["resolve"]["item"]) for ti, clip in read.picks] == [(0, item_b.GetUniqueId())]
    assert "playhead" in read.how
    assert read.picks[0][1] is read.timeline.tracks[0][1]      # the clip of the read itself, not a number to count
    tl.set_marks(0, 47)
    assert ResolveBridge(fake).read().range == (0, "01:00:00:00", "01:00:02:00")


def test_nothing_picked_says_what_to_do(media, tmp_path):
    fake, tl, *_ = make_resolve(media, V18)
    tl.set_playhead(START + 2000)
    bridge = ResolveBridge(fake)
    read = bridge.read()                    # the timeline still reads (the panel shows it)
    assert read.picks == [] and read.range is None and len(read.timeline.tracks[0]) == 2
    with pytest.raises(SelectionError, match="park the playhead on a clip .*cannot report selected clips"):
        retake(bridge, tmp_path)


def test_a_retimed_item_is_refused_with_its_speed(media):
    fake, tl, item_a, item_b = make_resolve(media, V19)
    c = fake.add_media(media["B"], frames=240, fps="24", name="slow")
    tl.place(2, c, START + 300, 0, 48, retime=50)
    read = ResolveBridge(fake).read()
    (slow,) = [c for c in read.timeline.tracks[1] if isinstance(c, otio.schema.Clip)]
    with pytest.raises(UnsupportedEditError, match="about 50%"):
        time_scalar(slow)


def test_a_generator_is_not_footage(media, tmp_path):
    fake, tl, *_ = make_resolve(media, V21)
    gen = tl.place_effect(2, START, 48, name="Solid Color")
    fake.select([gen])
    with pytest.raises(SelectionError, match="generator"):
        retake(ResolveBridge(fake), tmp_path)


# -- putting back ------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("version", [V18, V21])
def test_a_whole_clip_retake_becomes_the_selected_take(media, tmp_path, version):
    fake, tl, item_a, item_b = make_resolve(media, version)
    tl.set_playhead(START + 10)
    done = retake(ResolveBridge(fake), tmp_path)
    assert done.exit_code == 0, [j.error for j in done.jobs]
    (job,) = done.jobs
    assert item_a.GetTakesCount() == 2 and item_a.GetSelectedTakeIndex() == 2
    shown = item_a.GetMediaPoolItem().GetClipProperty("File Path")
    assert shown == str(job.version.path) and bin_clips(fake) == {"Cut 1": [shown]}
    assert (item_a.GetStart(), item_a.GetDuration()) == (START, A_LEN)   # the edit did not move
    assert indices(job.version.path) == list(range(A_IN, A_IN + A_LEN))  # the take holds the shot's own frames
    info = provenance(item_a)
    assert (info["version"], info["prompt"], info["path"]) == (1, "a crow lands", str(job.version.path))
    assert item_a.GetClipColor() == NEWEST_COLOUR
    assert "take 2 of 2" in done.landed[0]
    assert info["mode"] == "replace_video" and info["request_id"] == job.request_id


@pytest.mark.slow
@pytest.mark.parametrize("version", [V19, V21])
def test_a_partial_retake_goes_on_the_track_above_at_its_record_frames(media, tmp_path, version):
    fake, tl, item_a, item_b = make_resolve(media, version)
    tl.set_marks(30, 89)                           # 60 frames inside shot A
    bridge = ResolveBridge(fake)
    done = retake(bridge, tmp_path)
    assert done.exit_code == 0, [j.error for j in done.jobs]
    (job,) = done.jobs
    (placed,) = tl.GetItemListInTrack("video", 2)
    assert (placed.GetStart(), placed.GetEnd(), placed.GetDuration()) == (START + 30, START + 90, 60)
    assert indices(job.version.path) == list(range(A_IN + 30, A_IN + 90))
    assert provenance(placed)["source_item"] == item_a.GetUniqueId() and placed.GetClipColor() == NEWEST_COLOUR
    assert item_a.GetTakesCount() == 0 and len(tl.GetItemListInTrack("video", 1)) == 2  # V1 untouched

    again = retake(bridge, tmp_path, prompt="two crows")
    (newer,) = tl.GetItemListInTrack("video", 3)    # V2 is taken there: a new track
    assert tl.GetTrackCount("video") == 3 and (newer.GetStart(), newer.GetDuration()) == (START + 30, 60)
    assert provenance(newer)["version"] == 2 and again.jobs[0].version.number == 2
    assert (newer.GetClipColor(), placed.GetClipColor()) == (NEWEST_COLOUR, OLDER_COLOUR)

    # putting back again is harmless: nothing doubles
    lines = bridge.put_back(_landings(again))
    assert "already" in lines[0] and tl.GetTrackCount("video") == 3 and len(bin_clips(fake)["Cut 1"]) == 2


def _landings(run):
    from ltx_retake.live import landings_for

    return landings_for(run.read, run.jobs)


@pytest.mark.slow
def test_a_placement_a_frame_off_is_read_back_and_corrected(media, tmp_path):
    fake, tl, item_a, item_b = make_resolve(media, V19)   # inclusive end frames here
    tl.set_marks(30, 89)
    bridge = ResolveBridge(fake)
    bridge.features = dataclasses.replace(bridge.features, end_exclusive=True)  # believe the other convention
    done = retake(bridge, tmp_path)
    (placed,) = tl.GetItemListInTrack("video", 2)
    assert done.exit_code == 0 and (placed.GetStart(), placed.GetDuration()) == (START + 30, 60)


@pytest.mark.slow
def test_the_free_edition_on_linux_gets_dnxhr(media, tmp_path):
    fake, tl, item_a, item_b = make_resolve(media, V19, product="DaVinci Resolve", platform="linux")
    tl.set_marks(30, 89)
    bridge = ResolveBridge(fake)
    assert not bridge.features.decodes_h264
    refused = retake(bridge, tmp_path)                     # H.264 is what a plain run delivers
    assert "not put back" in refused.landed[0] and "DNxHR" in refused.landed[0]
    assert tl.GetItemListInTrack("video", 2) in ([], None)
    done = retake(bridge, tmp_path, delivery="dnxhr")
    (placed,) = tl.GetItemListInTrack("video", 2)
    assert done.jobs[0].version.path.suffix == ".mov" and placed.GetDuration() == 60


def test_resolve_going_away_is_noticed(media):
    fake, *_ = make_resolve(media, V21)
    bridge = ResolveBridge(fake)
    assert bridge.alive()
    fake.quit()
    assert not bridge.alive()


# -- the command line, through the menu entry's broker ---------------------------------------------------------

def test_status_says_what_this_resolve_supports(media, monkeypatch, capsys):
    fake, tl, *_ = make_resolve(media, V19, product="DaVinci Resolve", platform="linux")
    tl.set_marks(30, 89)
    monkeypatch.setenv("LTX_RETAKE_RESOLVE_BROKER", serve_in_thread(fake))
    assert cli(["resolve", "status"]) == 0
    out = capsys.readouterr().out
    assert "DaVinci Resolve 19.1.3" in out and "in/out marks (selected clips need 21.0.4)" in out
    assert "DNxHR" in out and "Cut 1\t24 fps\tstarts 01:00:00:00" in out and "01:00:01:06" in out


@pytest.mark.slow
def test_cli_retake_live_and_the_otio_route(media, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    fake, tl, item_a, item_b = make_resolve(media, V21)
    fake.select([item_b])
    monkeypatch.setenv("LTX_RETAKE_RESOLVE_BROKER", serve_in_thread(fake))
    assert cli(["resolve", "retake", "--prompt", "rain", "--mode", "video", "--media-dir", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "take 2 of 2" in out and item_b.GetSelectedTakeIndex() == 2
    assert list((tmp_path / "LTX Retakes" / "Cut_1" / "snapshots").glob("*_retakes.otio"))

    fake.GetProjectManager().GetCurrentProject().GetMediaPool().CreateEmptyTimeline("Cut 1 LTX retakes")
    fake.GetProjectManager().GetCurrentProject().SetCurrentTimeline(tl)
    monkeypatch.setenv("LTX_RETAKE_RESOLVE_BROKER", serve_in_thread(fake))
    assert cli(["resolve", "retake", "--route", "otio", "--prompt", "snow", "--mode", "video",
                "--media-dir", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "imported the retaken timeline as 'Cut 1 LTX retakes 2'" in out
    project = fake.GetProjectManager().GetCurrentProject()
    names = [project.GetTimelineByIndex(i).GetName() for i in range(1, project.GetTimelineCount() + 1)]
    assert names.count("Cut 1") == 1 and "Cut 1 LTX retakes 2" in names


def test_a_track_label_finds_its_track_again_when_the_track_has_a_name(media):
    from ltx_retake.selection import find_track, track_label

    fake, *_ = make_resolve(media, V21)
    timeline = ResolveBridge(fake).read().timeline
    assert track_label(timeline, 1) == "V2 ('Video 2')"
    assert [find_track(timeline, track_label(timeline, i), t.kind) for i, t in enumerate(timeline.tracks)] == [0, 1, 2]
