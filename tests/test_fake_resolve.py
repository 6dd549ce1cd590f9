"""The fake Resolve keeps every measured quirk of the real one, so the bridge is never tested against a kinder Resolve."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest
from fake_resolve import (
    CLIP_COLORS,
    FakeMediaPoolItem,
    FakeResolve,
    FakeTimeline,
    FakeTimelineItem,
    frames_to_timecode,
    scriptapp,
    timecode_to_frames,
)
from ltx_retake.adapters.testcard import write_indexed_clip

START = 86400  # 01:00:00:00 at 24 fps


def setup(version=(19, 1, 0, 3, ""), **kw) -> tuple[FakeResolve, FakeTimeline, FakeMediaPoolItem]:
    fake = FakeResolve(version=version, **kw)
    timeline = fake.new_timeline("Edit", rate="24")
    mpi = fake.add_media("/media/A001.mov", frames=240, fps="24", start_tc="01:00:00:00")
    return fake, timeline, mpi


def pool(fake: FakeResolve):
    return fake.GetProjectManager().GetCurrentProject().GetMediaPool()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two tiny real clips: H.264/AAC .mp4, and ProRes/PCM .mov stamped 01:00:00:00."""
    root = tmp_path_factory.mktemp("resolve_media")
    return {
        "h264": write_indexed_clip(root / "h264_aac.mp4", frames=12, rate=Fraction(24), size=(64, 36)),
        "prores": write_indexed_clip(root / "prores_pcm.mov", frames=12, rate=Fraction(24), size=(64, 36),
                                     codec="prores", timecode="01:00:00:00"),
    }


# ---------------------------------------------------------------- 1. version gates: dir() tells, hasattr never does

GATES = [  # (object, name, first version that has it, the last version before it)
    ("timeline", "GetSelectedClips", (21, 0, 4), (21, 0, 3)),
    ("timeline", "GetMarkInOut", (19, 1, 0), (19, 0, 3)),
    ("timeline", "SetMarkInOut", (19, 1, 0), (19, 0, 3)),
    ("timeline", "ClearMarkInOut", (19, 1, 0), (19, 0, 3)),
    ("item", "GetSourceStartFrame", (19, 0, 2), (19, 0, 1)),
    ("item", "GetSourceEndFrame", (19, 0, 2), (19, 0, 1)),
    ("item", "GetTrackTypeAndIndex", (19, 0, 0), (18, 6, 6)),
    ("timeline", "AddTrack", (18, 5, 0), (18, 1, 0)),
    ("resolve", "EXPORT_OTIO", (18, 5, 0), (18, 1, 0)),
    ("item", "GetUniqueId", (18, 0, 0), (17, 4, 6)),
    ("timeline", "GetUniqueId", (18, 0, 0), (17, 4, 6)),
]


def _objects(version):
    fake, timeline, mpi = setup(version=(*version, 1, ""))
    item = timeline.place(1, mpi, START, 0, 48)
    return {"resolve": fake, "timeline": timeline, "item": item}


@pytest.mark.parametrize("owner,name,since,before", GATES, ids=[g[1] + "@" + ".".join(map(str, g[2])) for g in GATES])
def test_version_gates_follow_the_reference(owner, name, since, before):
    old, new = _objects(before)[owner], _objects(since)[owner]
    assert name not in dir(old)
    assert hasattr(old, name) and getattr(old, name) is None       # like Resolve: the name reads None, hasattr lies
    assert name in dir(new)
    assert getattr(new, name) is not None


@pytest.mark.parametrize("version,present,absent", [
    ((18, 5, 0), {"AddTrack", "Export"}, {"GetMarkInOut", "GetSelectedClips", "GetTrackTypeAndIndex"}),
    ((19, 1, 0), {"AddTrack", "GetMarkInOut", "SetMarkInOut"}, {"GetSelectedClips"}),
    ((21, 0, 4), {"AddTrack", "GetMarkInOut", "GetSelectedClips"}, set()),
])
def test_version_gates_at_the_versions_that_matter(version, present, absent):
    timeline = _objects(version)["timeline"]
    names = set(dir(timeline))
    assert present <= names and not (absent & names)
    item = _objects(version)["item"]
    assert ("GetSourceStartFrame" in dir(item)) == (version >= (19, 0, 2))
    assert ("EXPORT_OTIO" in dir(_objects(version)["resolve"])) == (version >= (18, 5, 0))


def test_hasattr_is_always_true_and_calling_an_absent_method_fails_like_resolve():
    fake, timeline, _ = setup(version=(19, 1, 0, 3, ""))
    project = fake.GetProjectManager().GetCurrentProject()
    for obj in (fake, project, timeline, pool(fake)):
        assert hasattr(obj, "NoSuchCall") and obj.NoSuchCall is None
    assert project.delete_all_render_jobs is None                   # a snake_case guess reads None too
    assert hasattr(timeline, "GetSelectedClips") and "GetSelectedClips" not in dir(timeline)
    with pytest.raises(TypeError):                                   # 'NoneType' object is not callable
        timeline.GetSelectedClips()
    assert not hasattr(timeline, "_no_such_private")                 # Python's own protocols are left alone
    assert "place" not in dir(timeline) and "GetName" in dir(timeline)   # builders are not Resolve API


def test_add_track_index_option_came_with_19():
    _fake, timeline, mpi = setup(version=(18, 5, 0, 1, ""))
    assert timeline.AddTrack("video", {"index": 1}) is False
    assert timeline.AddTrack("video") is True and timeline.GetTrackCount("video") == 3
    assert timeline.AddTrack("audio", "stereo") is True and timeline.AddTrack("nope") is False

    _fake, timeline, mpi = setup(version=(19, 0, 0, 1, ""))
    item = timeline.place(1, mpi, START, 0, 48)
    assert timeline.AddTrack("video", {"index": 1}) is True           # inserted below: the clip moves up to V2
    assert item.GetTrackTypeAndIndex() == ["video", 2]
    assert timeline.GetItemListInTrack("video", 1) == []
    assert timeline.AddTrack("video", {"index": 99}) is True          # out of bounds: appended
    assert timeline.GetTrackCount("video") == 4 and item.GetTrackTypeAndIndex() == ["video", 2]


def test_otio_import_needs_18_6_6_though_the_method_is_older(tmp_path):
    fake, timeline, mpi = setup(version=(18, 5, 0, 1, ""))
    timeline.place(1, mpi, START, 0, 48)
    path = tmp_path / "edit.otio"
    assert timeline.Export(str(path), fake.EXPORT_OTIO) is True
    assert "ImportTimelineFromFile" in dir(pool(fake))                 # listed: dir() cannot tell, the version must
    assert pool(fake).ImportTimelineFromFile(str(path), {"timelineName": "Back"}) is None

    fake = FakeResolve(version=(18, 6, 6, 7, ""))
    assert isinstance(pool(fake).ImportTimelineFromFile(str(path), {"timelineName": "Back"}), FakeTimeline)


def test_before_18_5_track_and_record_frame_are_ignored():
    fake, timeline, mpi = setup(version=(18, 1, 0, 4, ""))
    timeline.place(1, mpi, START, 0, 24)
    placed = pool(fake).AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 0, "endFrame": 23,
                                           "trackIndex": 2, "recordFrame": START + 100, "mediaType": 1}])
    assert [(i.GetTrackTypeAndIndex() if "GetTrackTypeAndIndex" in dir(i) else None, i.GetStart()) for i in placed] \
        == [(None, START + 24)]                                      # at the end of V1
    assert timeline.GetItemListInTrack("video", 2) == []
    assert "EXPORT_OTIO" not in dir(fake) and fake.EXPORT_OTIO is None
    assert timeline.Export("/tmp/never.otio", fake.EXPORT_OTIO) is False

    fake, timeline, mpi = setup(version=(18, 5, 0, 1, ""))
    placed = pool(fake).AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 0, "endFrame": 23,
                                           "trackIndex": 2, "recordFrame": START + 100, "mediaType": 1}])
    assert [(i.GetStart(), timeline.GetItemListInTrack("video", 2)[0] is i) for i in placed] == [(START + 100, True)]


# ---------------------------------------------------------------- 2, 3. absolute record frames, relative markers, GetEnd exclusive

def test_record_frames_absolute_markers_relative():
    _fake, timeline, mpi = setup()
    assert timeline.GetStartFrame() == START and timeline.GetStartTimecode() == "01:00:00:00"
    item = timeline.place(1, mpi, START + 48, 0, 48)
    assert (item.GetStart(), item.GetEnd(), item.GetDuration()) == (START + 48, START + 96, 48)   # GetEnd exclusive
    assert timeline.GetEndFrame() == START + 96
    assert timeline.AddMarker(START + 48, "Blue", "abs", "", 1) is False    # an absolute frame is out of range
    assert timeline.AddMarker(48, "Blue", "at the clip", "note", 1, "job-1") is True
    assert timeline.AddMarker(48, "Red", "again", "", 1) is False           # one marker per frame
    assert list(timeline.GetMarkers()) == [48]
    assert item.AddMarker(0, "Green", "clip start", "", 1) is True          # item markers: from the item's start
    assert item.AddMarker(48, "Green", "past the end", "", 1) is False
    assert list(item.GetMarkers()) == [0]


@pytest.mark.parametrize("version,frames", [((18, 5, 0), 25), ((19, 1, 0), 25), ((20, 3, 2), 25), ((21, 0, 0), 24),
                                            ((21, 0, 4), 24)])
def test_append_end_frame_inclusive_before_21(version, frames):
    fake, _timeline, mpi = setup(version=(*version, 1, ""))
    placed = pool(fake).AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 0, "endFrame": 24, "trackIndex": 1,
                                           "recordFrame": START, "mediaType": 1}])
    (item,) = placed
    assert item.GetDuration() == frames and item.GetEnd() - item.GetStart() == frames
    if "GetSourceStartFrame" in dir(item):
        assert (item.GetSourceStartFrame(), item.GetSourceEndFrame()) == (0, frames)


# ---------------------------------------------------------------- 4, 5, 6. AppendToTimeline's batch rules

def _clip(mpi, record, first=0, last=23, track=1):
    return {"mediaPoolItem": mpi, "startFrame": first, "endFrame": last, "trackIndex": track, "recordFrame": record,
            "mediaType": 1}


def test_fractional_frame_fails_whole_batch():
    fake, timeline, mpi = setup()
    batch = [_clip(mpi, START), _clip(mpi, START + 100, first=10.5, last=30)]
    assert pool(fake).AppendToTimeline(batch) == []
    assert timeline.GetItemListInTrack("video", 1) == []             # not even the good clip
    placed = pool(fake).AppendToTimeline([_clip(mpi, START + 200.0, first=10.0, last=33.0)])
    assert [i.GetStart() for i in placed] == [START + 200]           # integral floats are fine


def test_overlap_drops_later_clip_silently():
    fake, timeline, mpi = setup()
    batch = [_clip(mpi, START), _clip(mpi, START + 10), _clip(mpi, START + 100)]
    placed = pool(fake).AppendToTimeline(batch)
    assert [i.GetStart() for i in placed] == [START, START + 100]    # the overlapping one: gone, no error
    assert [i.GetStart() for i in timeline.GetItemListInTrack("video", 1)] == [START, START + 100]
    again = pool(fake).AppendToTimeline([_clip(mpi, START + 5, track=2)])   # a free track takes it
    assert [i.GetTrackTypeAndIndex() for i in again] == [["video", 2]]
    assert pool(fake).AppendToTimeline([_clip(mpi, START + 5, track=3)]) == []   # no V3: dropped


def test_record_frame_before_timeline_start(tmp_path):
    fake, timeline, mpi = setup()
    (item,) = pool(fake).AppendToTimeline([_clip(mpi, 48)])           # a relative frame passed as recordFrame
    assert item.GetStart() == 48 < timeline.GetStartFrame()          # accepted; lands before the timeline
    assert timeline.GetEndFrame() == START
    path = tmp_path / "out.otio"
    assert timeline.Export(str(path), fake.EXPORT_OTIO) is True
    assert list(otio.adapters.read_from_file(str(path)).find_clips()) == []   # it renders nothing


def test_append_a_clip_with_sound_gives_video_and_audio_items():
    fake, timeline, mpi = setup()
    both = pool(fake).AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 0, "endFrame": 23, "recordFrame": START}])
    assert [i.GetTrackTypeAndIndex() for i in both] == [["video", 1], ["audio", 1]]
    assert pool(fake).AppendToTimeline([{**_clip(mpi, START + 48), "mediaType": 2}])[0].GetTrackTypeAndIndex() == ["audio", 1]
    # on V2 with the sound: A2 does not exist, so only the picture lands; A1 is not used
    (v2,) = pool(fake).AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 0, "endFrame": 23, "trackIndex": 2,
                                          "recordFrame": START}])
    assert v2.GetTrackTypeAndIndex() == ["video", 2]
    # the sound collides with A1's item at START + 48: the whole clip is dropped
    assert pool(fake).AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 0, "endFrame": 23,
                                         "recordFrame": START + 48}]) == []
    assert timeline.GetItemListInTrack("video", 1)[-1].GetStart() == START   # V1 was free there; nothing landed
    # whole clips without frames go after the last item of their track
    fake, timeline, mpi = setup()
    timeline.place(1, mpi, START, 0, 24)
    placed = pool(fake).AppendToTimeline([mpi])
    assert [(i.GetStart(), i.GetDuration()) for i in placed] == [(START + 24, 240), (START + 24, 240)]
    assert pool(fake).AppendToTimeline([{"mediaPoolItem": None}]) == []


def test_mixed_rate_media_plays_in_real_time():
    fake, _timeline, _ = setup()
    mpi30 = fake.add_media("/media/B.mov", frames=300, fps=30)
    (item,) = pool(fake).AppendToTimeline([_clip(mpi30, START, 0, 29)])
    assert item.GetDuration() == 24 and (item.GetSourceStartFrame(), item.GetSourceEndFrame()) == (0, 30)


def test_no_current_timeline():
    fake = FakeResolve()
    mpi = fake.add_media("/media/A.mov")
    project = fake.GetProjectManager().GetCurrentProject()
    assert project.GetCurrentTimeline() is None and pool(fake).AppendToTimeline([mpi]) == []
    assert FakeResolve(project=None).GetProjectManager().GetCurrentProject() is None


# ---------------------------------------------------------------- 7. failures are bare None / False

def test_failures_are_bare_none_or_false():
    fake, timeline, mpi = setup()
    project = fake.GetProjectManager().GetCurrentProject()
    mp = pool(fake)
    item = timeline.place(1, mpi, START, 0, 48)
    other = FakeResolve().GetProjectManager().GetCurrentProject().GetMediaPool().GetRootFolder()
    checks = {
        "GetTimelineByIndex(0)": project.GetTimelineByIndex(0),
        "GetTimelineByIndex(2)": project.GetTimelineByIndex(2),
        "SetCurrentTimeline(foreign)": project.SetCurrentTimeline("Edit"),
        "GetItemListInTrack(video, 3)": timeline.GetItemListInTrack("video", 3),
        "GetItemListInTrack(bad kind)": timeline.GetItemListInTrack("picture", 1),
        "GetTrackName(audio, 2)": timeline.GetTrackName("audio", 2),
        "SetCurrentFolder(foreign)": mp.SetCurrentFolder(other),
        "AddSubFolder(root, '')": mp.AddSubFolder(mp.GetRootFolder(), ""),
        "AddSubFolder(foreign, x)": mp.AddSubFolder(other, "x"),
        "ImportMedia(str)": mp.ImportMedia("/media/A001.mov"),
        "CreateEmptyTimeline(taken)": mp.CreateEmptyTimeline("Edit"),
        "SetClipColor(Red)": item.SetClipColor("Red"),
        "SetClipColor(orange)": item.SetClipColor("orange"),
        "SelectTakeByIndex(1) no takes": item.SelectTakeByIndex(1),
        "GetTakeByIndex(1) no takes": item.GetTakeByIndex(1),
        "FinalizeTake() no takes": item.FinalizeTake(),
        "AddTake(not an item)": item.AddTake("A001.mov"),
        "AddTake(past the media)": item.AddTake(mpi, 0, 500),
        "AddMarker(bad colour)": timeline.AddMarker(0, "Orange", "x", "", 1),
        "AddMarker(fractional)": timeline.AddMarker(1.5, "Blue", "x", "", 1),
        "DeleteMarkerAtFrame(none)": timeline.DeleteMarkerAtFrame(3),
        "SetProperty(unknown)": item.SetProperty("Speed", 50),
        "GetProperty(unknown)": item.GetProperty("Speed"),
        "SetMarkInOut(out < in)": timeline.SetMarkInOut(20, 10),
        "SetCurrentTimecode(junk)": timeline.SetCurrentTimecode("1 hour"),
        "Export(unsupported type)": timeline.Export("/tmp/x.edl", fake.EXPORT_EDL),
        "DeleteClips([])": timeline.DeleteClips([]),
    }
    wrong = {call: got for call, got in checks.items() if got not in (None, False)}
    assert not wrong, wrong
    assert all(type(got) in (type(None), bool) for got in checks.values())
    assert mp.ImportMedia(["/no/such/file.mov"]) == []              # a missing file: an empty list, not an error
    assert timeline.GetTrackCount("picture") == 0
    assert mpi.GetClipProperty("No Such Property") == ""


def test_clip_colour_names_are_resolves():
    _, timeline, mpi = setup()
    item = timeline.place(1, mpi, START, 0, 48)
    assert item.GetClipColor() == ""
    assert all(item.SetClipColor(name) is True and item.GetClipColor() == name for name in CLIP_COLORS)
    assert item.ClearClipColor() is True and item.GetClipColor() == ""
    assert len(CLIP_COLORS) == 16 and "Red" not in CLIP_COLORS


# ---------------------------------------------------------------- 8. properties are strings

def test_clip_properties_are_strings():
    _, _, mpi = setup()
    props = mpi.GetClipProperty()
    assert all(isinstance(v, str) for v in props.values())
    assert {k: props[k] for k in ("File Path", "FPS", "Frames", "Start TC", "Duration", "Resolution", "Video Codec",
                                  "Audio Codec")} == {
        "File Path": "/media/A001.mov", "FPS": "24.000", "Frames": "240", "Start TC": "01:00:00:00",
        "Duration": "00:00:10:00", "Resolution": "1920x1080", "Video Codec": "H.264", "Audio Codec": "Linear PCM"}
    assert mpi.GetClipProperty("Frames") == "240"


def test_fps_strings_and_the_number_knob():
    fake = FakeResolve()
    assert fake.add_media("/m/a.mov", fps="23.976").GetClipProperty("FPS") == "23.976"
    assert fake.add_media("/m/b.mov", fps=Fraction(30000, 1001)).GetClipProperty("FPS") == "29.970"
    assert fake.add_media("/m/c.mov", fps=25).GetClipProperty("FPS") == "25.000"
    assert FakeResolve(fps_as_number=True).add_media("/m/d.mov", fps="23.976").GetClipProperty("FPS") == 23.976


def test_import_fills_properties_from_the_real_file(media):
    fake = FakeResolve()
    (item,) = pool(fake).ImportMedia([str(media["prores"])])
    props = item.GetClipProperty()
    assert all(isinstance(v, str) for v in props.values())
    assert (props["File Path"], props["Frames"], props["FPS"], props["Start TC"], props["Resolution"]) == (
        str(media["prores"]), "12", "24.000", "01:00:00:00", "64x36")
    assert props["Video Codec"].startswith("Apple ProRes") and props["Audio Codec"] == "Linear PCM"


# ---------------------------------------------------------------- 10, 11. import rules

@pytest.mark.parametrize("product,platform,decodes", [
    ("DaVinci Resolve", "linux", False), ("DaVinci Resolve Studio", "linux", True),
    ("DaVinci Resolve", "darwin", True), ("DaVinci Resolve", "win32", True)])
def test_free_linux_refuses_h264_aac(media, product, platform, decodes):
    fake = FakeResolve(product=product, platform=platform)
    assert fake.decodes_h264 is decodes
    got = pool(fake).ImportMedia([str(media["h264"]), str(media["prores"])])
    names = [i.GetName() for i in got]
    assert names == (["h264_aac.mp4", "prores_pcm.mov"] if decodes else ["prores_pcm.mov"])


def test_decodes_h264_can_be_forced(media):
    assert pool(FakeResolve(decodes_h264=False)).ImportMedia([str(media["h264"])]) == []


def test_import_into_current_folder_only(media):
    fake = FakeResolve()
    mp = pool(fake)
    root = mp.GetRootFolder()
    retakes = mp.AddSubFolder(root, "LTX Retakes")
    assert retakes.GetName() == "LTX Retakes" and root.GetSubFolderList() == [retakes]
    (first,) = mp.ImportMedia([str(media["prores"])])
    assert root.GetClipList() == [first]                             # current folder is still the root
    assert mp.SetCurrentFolder(retakes) is True and mp.GetCurrentFolder() is retakes
    (second,) = mp.ImportMedia([str(media["prores"])])
    assert second is not first and retakes.GetClipList() == [second] and root.GetClipList() == [first]
    (again,) = mp.ImportMedia([str(media["prores"])])
    assert again is second and retakes.GetClipList() == [second]     # a second import in the same bin: the same clip


# ---------------------------------------------------------------- 9. Resolve went away

def test_quit_makes_every_call_return_none():
    fake, timeline, mpi = setup(version=(21, 0, 4, 5, ""))
    item = timeline.place(1, mpi, START, 0, 48)
    project = fake.GetProjectManager().GetCurrentProject()
    mp = pool(fake)
    fake.quit()
    calls = [fake.GetVersion(), fake.GetProjectManager(), project.GetCurrentTimeline(), project.GetName(),
             mp.ImportMedia(["/media/A001.mov"]), mp.AppendToTimeline([mpi]), mp.GetRootFolder(),
             timeline.GetStartFrame(), timeline.GetItemListInTrack("video", 1), timeline.GetSelectedClips(),
             timeline.GetMarkInOut(), timeline.AddMarker(0, "Blue", "x", "", 1), item.GetStart(),
             item.GetMediaPoolItem(), item.SetClipColor("Orange"), item.AddTake(mpi), mpi.GetClipProperty("Frames")]
    assert calls == [None] * len(calls)
    assert scriptapp(fake) is None


# ---------------------------------------------------------------- takes

def test_takes_count_the_original_as_take_one():
    fake, timeline, mpi = setup()
    retake = fake.add_media("/media/A001_retake.mov", frames=48, fps="24")
    item = timeline.place(1, mpi, START, 24, 72)
    assert (item.GetTakesCount(), item.GetSelectedTakeIndex()) == (0, 0)
    assert item.AddTake(retake) is True
    assert (item.GetTakesCount(), item.GetSelectedTakeIndex()) == (2, 1)
    assert item.GetTakeByIndex(1) == {"startFrame": 24, "endFrame": 71, "mediaPoolItem": mpi}   # 19.1: inclusive end
    assert item.GetTakeByIndex(2) == {"startFrame": 0, "endFrame": 47, "mediaPoolItem": retake}
    assert item.GetMediaPoolItem() is mpi
    assert item.SelectTakeByIndex(3) is False and item.SelectTakeByIndex(0) is False
    assert item.SelectTakeByIndex(2) is True
    assert item.GetMediaPoolItem() is retake and item.GetName() == "A001_retake.mov"
    assert (item.GetStart(), item.GetDuration(), item.GetSourceStartFrame(), item.GetSourceEndFrame()) == (START, 48, 0, 48)
    assert item.FinalizeTake() is True
    assert (item.GetTakesCount(), item.GetSelectedTakeIndex(), item.GetMediaPoolItem()) == (0, 0, retake)
    assert item.FinalizeTake() is False


def test_take_frames_follow_the_versions_end_convention_and_delete():
    fake, timeline, mpi = setup(version=(21, 0, 4, 5, ""))
    retake = fake.add_media("/media/R.mov", frames=100, fps="24")
    item = timeline.place(1, mpi, START, 0, 48)
    assert item.AddTake(retake, 10, 58) is True and item.AddTake(retake, 0, 48) is True
    assert item.GetTakeByIndex(2) == {"startFrame": 10, "endFrame": 58, "mediaPoolItem": retake}   # exclusive on 21
    assert item.SelectTakeByIndex(3) is True
    assert item.DeleteTakeByIndex(2) is True and item.GetSelectedTakeIndex() == 2 and item.GetTakesCount() == 2
    assert item.DeleteTakeByIndex(5) is False
    assert item.DeleteTakeByIndex(1) is True and item.DeleteTakeByIndex(1) is False   # the last take stays


def test_effect_items_have_no_media_pool_item():
    _, timeline, mpi = setup()
    title = timeline.place_effect(2, START, 48, name="Text+", kind="title")
    assert title.GetMediaPoolItem() is None and title.GetName() == "Text+" and title.GetDuration() == 48
    assert title.AddTake(mpi) is False


# ---------------------------------------------------------------- 12. retimed items: no call reads speed

def test_retimed_item_shows_only_in_spans():
    _, timeline, mpi = setup()
    slow = timeline.place(1, mpi, START, 24, 72, retime=50)          # 48 source frames over 96 record frames
    assert slow.GetDuration() == 96
    assert (slow.GetSourceStartFrame(), slow.GetSourceEndFrame()) == (24, 72)
    assert slow.GetLeftOffset() == 48                                # 24 source frames in at half speed
    assert slow.GetRightOffset() == (240 - 72) * 2
    assert not any("speed" in k.lower() for k in slow.GetProperty())
    assert not any("speed" in name.lower() for name in dir(slow))
    plain = timeline.place(2, mpi, START, 24, 72)
    assert (plain.GetDuration(), plain.GetLeftOffset(), plain.GetRightOffset()) == (48, 24, 168)
    fast = timeline.place(1, mpi, START + 200, 0, 100, duration=50)
    assert fast.GetSourceEndFrame() - fast.GetSourceStartFrame() == 2 * fast.GetDuration()


def test_source_end_inclusive_knob():
    _fake, timeline, mpi = setup(source_end_inclusive=True)
    item = timeline.place(1, mpi, START, 24, 72)
    assert (item.GetSourceStartFrame(), item.GetSourceEndFrame()) == (24, 71)


# ---------------------------------------------------------------- 13. playhead, marks, selection, markers

def test_current_video_item_highest_enabled_track():
    _fake, timeline, mpi = setup()
    low = timeline.place(1, mpi, START, 0, 96)
    high = timeline.place(2, mpi, START + 24, 0, 24)
    timeline.set_playhead(START + 30)
    assert timeline.GetCurrentVideoItem() is high
    assert timeline.SetTrackEnable("video", 2, False) is True and timeline.GetIsTrackEnabled("video", 2) is False
    assert timeline.GetCurrentVideoItem() is low
    timeline.set_playhead(START + 96)                                # GetEnd is exclusive: nothing there
    assert timeline.GetCurrentVideoItem() is None


def test_current_video_item_only_on_the_current_timeline():
    fake, timeline, mpi = setup()
    timeline.place(1, mpi, START, 0, 96)
    other = fake.new_timeline("Other", current=True)
    assert timeline.GetCurrentVideoItem() is None
    project = fake.GetProjectManager().GetCurrentProject()
    assert project.GetCurrentTimeline() is other and project.SetCurrentTimeline(timeline) is True
    assert timeline.GetCurrentVideoItem() is not None


def test_playhead_timecode():
    _, timeline, _ = setup()
    assert timeline.GetCurrentTimecode() == "01:00:00:00"
    assert timeline.SetCurrentTimecode("01:00:02:12") is True
    assert timeline.GetCurrentTimecode() == "01:00:02:12" and timeline._playhead == START + 60


def test_mark_in_out_relative_with_inclusive_out():
    _, timeline, _ = setup()
    assert timeline.GetMarkInOut() == {}
    assert timeline.SetMarkInOut(10, 20, "video") is True
    assert timeline.GetMarkInOut() == {"video": {"in": 10, "out": 20}}
    assert timeline.SetMarkInOut(0, 134) is True
    assert timeline.GetMarkInOut() == {"video": {"in": 0, "out": 134}, "audio": {"in": 0, "out": 134}}
    assert timeline.ClearMarkInOut("audio") is True and list(timeline.GetMarkInOut()) == ["video"]
    assert timeline.SetMarkInOut(1, 2, "subtitle") is False


def test_selected_clips_is_a_list_in_track_order():
    fake, timeline, mpi = setup(version=(21, 0, 4, 5, ""))
    a = timeline.place(1, mpi, START + 48, 0, 24)
    b = timeline.place(1, mpi, START, 0, 24)
    c = timeline.place(2, mpi, START, 0, 24)
    d = timeline.place(1, mpi, START, 0, 24, kind="audio")
    assert timeline.GetSelectedClips() == []
    fake.select([d, c, a, b])
    assert timeline.GetSelectedClips() == [b, a, c, d]
    assert isinstance(timeline.GetSelectedClips(), list)


def test_markers_have_float_keys_and_custom_data():
    _, timeline, mpi = setup()
    timeline.place(1, mpi, START, 0, 240)
    assert timeline.AddMarker(96, "Green", "Marker 1", "", 1, "ltx:1") is True
    markers = timeline.GetMarkers()
    (key,) = markers
    assert isinstance(key, float) and key == 96
    assert markers[96] == {"color": "Green", "duration": 1.0, "note": "", "name": "Marker 1", "customData": "ltx:1"}
    assert timeline.GetMarkerByCustomData("ltx:1")["name"] == "Marker 1"
    assert timeline.GetMarkerByCustomData("nope") == {}
    assert timeline.DeleteMarkerAtFrame(96) is True and timeline.GetMarkers() == {}


def test_item_list_is_ordered_by_start():
    _, timeline, mpi = setup()
    later = timeline.place(1, mpi, START + 100, 0, 10)
    earlier = timeline.place(1, mpi, START, 0, 10)
    assert timeline.GetItemListInTrack("video", 1) == [earlier, later]
    assert timeline.DeleteClips([earlier], True) is True
    assert timeline.GetItemListInTrack("video", 1) == [later] and later.GetStart() == START + 90


# ---------------------------------------------------------------- OTIO export and import

def test_export_otio_writes_a_real_file(tmp_path):
    fake, timeline, mpi = setup()
    timeline.place(1, mpi, START + 24, 10, 58)
    timeline.place(2, mpi, START, 0, 24, retime=50)
    timeline.AddMarker(30, "Red", "check", "a note", 2, "ltx:9")
    path = tmp_path / "edit.otio"
    assert timeline.Export(str(path), fake.EXPORT_OTIO) is True
    read = otio.adapters.read_from_file(str(path))
    assert read.global_start_time == otio.opentime.RationalTime(START, 24)
    v1 = read.video_tracks()[0]
    gap, clip = v1[0], v1[1]
    assert isinstance(gap, otio.schema.Gap) and gap.duration().value == 24
    assert clip.media_reference.target_url == "/media/A001.mov"
    assert clip.source_range == otio.opentime.TimeRange(otio.opentime.RationalTime(START + 10, 24),
                                                        otio.opentime.RationalTime(48, 24))
    slow = read.video_tracks()[1][0]
    assert [type(e) for e in slow.effects] == [otio.schema.LinearTimeWarp] and slow.effects[0].time_scalar == 0.5
    assert [m.name for m in read.tracks.markers] == ["check"]


def test_import_timeline_round_trip(tmp_path):
    fake, timeline, mpi = setup()
    timeline.place(1, mpi, START + 24, 10, 58)
    timeline.place(2, mpi, START, 0, 24, retime=50)
    path = tmp_path / "edit.otio"
    timeline.Export(str(path), fake.EXPORT_OTIO)
    back = pool(fake).ImportTimelineFromFile(str(path), {"timelineName": "Edit (retake)"})
    assert back.GetName() == "Edit (retake)" and back.GetStartFrame() == START and back.GetSetting("timelineFrameRate") == "24"

    def shape(tl):
        return [(i.GetTrackTypeAndIndex(), i.GetStart(), i.GetEnd(), i.GetSourceStartFrame(), i.GetSourceEndFrame(),
                 i.GetMediaPoolItem()) for k in ("video", "audio") for n in range(1, tl.GetTrackCount(k) + 1)
                for i in tl.GetItemListInTrack(k, n)]

    assert shape(back) == shape(timeline)                            # the pool's clip is reused, not re-imported
    assert fake.GetProjectManager().GetCurrentProject().GetCurrentTimeline() is timeline
    assert pool(fake).ImportTimelineFromFile(str(path), {"timelineName": "Edit (retake)"}) is None   # name taken
    assert pool(fake).ImportTimelineFromFile(str(path)).GetName() == "edit"                       # file stem


# ---------------------------------------------------------------- rates, versions, editions

@pytest.mark.parametrize("rate,start,tc,setting", [
    ("24", 86400, "01:00:00:00", "24"), ("23.976", 86400, "01:00:00:00", "23.976"), ("25", 90000, "01:00:00:00", "25"),
    ("29.97", 108000, "01:00:00:00", "29.97"), ("29.97 DF", 107892, "01:00:00;00", "29.97 DF"),
    (Fraction(60000, 1001), 216000, "01:00:00:00", "59.94")])
def test_timeline_rates_and_start_timecodes(rate, start, tc, setting):
    fake = FakeResolve()
    timeline = fake.new_timeline("T", rate=rate)
    assert (timeline.GetStartFrame(), timeline.GetStartTimecode(), timeline.GetSetting("timelineFrameRate")) == (
        start, tc, setting)


def test_drop_frame_timecode_round_trips():
    rate = Fraction(30000, 1001)
    for frame in (0, 1799, 1800, 17982, 107892, 107893):
        assert timecode_to_frames(frames_to_timecode(frame, rate, True), rate, True) == frame
    assert frames_to_timecode(1800, rate, True) == "00:01:00;02"


def test_version_and_product():
    fake = FakeResolve(version=(21, 0, 4, 5, "b"), product="DaVinci Resolve")
    assert fake.GetVersion() == [21, 0, 4, 5, "b"] and fake.GetVersionString() == "21.0.4b.5"
    assert fake.GetProductName() == "DaVinci Resolve"
    assert FakeResolve(version="18.6.6").GetVersion() == [18, 6, 6, 0, ""]


def test_scriptapp_edition_rules():
    assert scriptapp(FakeResolve(product="DaVinci Resolve Studio")) is not None
    assert scriptapp(FakeResolve(product="DaVinci Resolve")) is None                     # external: Studio only
    assert scriptapp(FakeResolve(version=(21, 0, 4, 5, ""), product="DaVinci Resolve"), external=False) is not None
    assert scriptapp(FakeResolve(version=(21, 1, 0, 2, ""), product="DaVinci Resolve"), external=False) is None


def test_create_empty_timeline_becomes_current():
    fake = FakeResolve()
    project = fake.GetProjectManager().GetCurrentProject()
    timeline = pool(fake).CreateEmptyTimeline("Empty")
    assert project.GetCurrentTimeline() is timeline and project.GetTimelineCount() == 1
    assert project.GetTimelineByIndex(1) is timeline
    assert (timeline.GetStartFrame(), timeline.GetTrackCount("video"), timeline.GetTrackCount("audio")) == (START, 1, 1)
    assert isinstance(timeline.GetUniqueId(), str) and timeline.GetUniqueId() != project.GetUniqueId()
    assert timeline.GetItemListInTrack("video", 1) == [] and isinstance(timeline, FakeTimeline)
    assert isinstance(timeline.place(1, fake.add_media("/m/x.mov"), START, 0, 2), FakeTimelineItem)
    with pytest.raises(ValueError):                                  # builders are loud about a test's own mistake
        timeline.place(1, fake.add_media("/m/y.mov"), START, 0, 2)
