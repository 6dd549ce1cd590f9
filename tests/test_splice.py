"""Splicing versions into timelines (pure OTIO): split at the window, versions, placement above, round trips."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.adapters.timeline_files import read_timeline, write_timeline
from ltx_retake.errors import InputError, SelectionError, SpliceError, TimelineReadError
from ltx_retake.limits import limits_for
from ltx_retake.plan import plan_retake, source_clip
from ltx_retake.ports import RetakeMode
from ltx_retake.selection import select_clip, select_range
from ltx_retake.splice import NS, Version, linked_sound, next_version_number, place_above, splice_version
from ltx_retake.versions import list_versions, use_version

from timelines import RT, TR, clip, info, timeline


def plan_for(tl, start, end, media=None, track=None):
    (sel,) = select_range(tl, start, end, track)
    src = source_clip(tl, sel, None)
    (p,) = plan_retake(tl, src, media or info(), limits_for("local"), prompt="rain", mode=RetakeMode.REPLACE_VIDEO,
                       provider="local", model="m")
    return p


def version(p, n, tmp=Path("/r")):
    return Version(n, p.clip_name, tmp / f"{p.clip_name}_retake_v{n:03d}.mp4", {"prompt": p.prompt, "request_id": f"r{n}"})


def ranges(track):
    spans = track.range_of_all_children()
    return [(it.name, spans[it].start_time.value, spans[it].duration.value) for it in track]


def three_clips():
    return timeline(clip("a", "/m/a.mov", 86400, 96), clip("b", "/m/a.mov", 86400 + 200, 240), clip("c", "/m/a.mov", 86400, 96))


def test_split_at_the_window_keeps_neighbours_and_duration():
    tl = three_clips()
    before = tl.duration()
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")  # record 144..216 inside b (96..335)
    middle = splice_version(tl, p, version(p, 1))
    assert tl.duration() == before
    track = tl.tracks[0]
    names = [it.name for it in track]
    assert names == ["a", "b", "b_retake_v001", "b", "c"]
    spans = {id(it): r for it, r in track.range_of_all_children().items()}
    assert [(spans[id(it)].start_time.value, spans[id(it)].duration.value) for it in track] == [
        (0, 96), (96, 48), (144, 72), (216, 120), (336, 96)]
    # media continuity: each piece starts where the last one stopped
    assert [it.source_range.start_time.value - 86400 for it in list(track)[1:4]] == [200, 248, 320]
    assert middle.active_media_reference_key == "retake_v001"
    refs = middle.media_references()
    assert refs[otio.schema.Clip.DEFAULT_MEDIA_KEY].target_url == "/m/a.mov"
    assert refs["retake_v001"].target_url == "/r/b_retake_v001.mp4"
    avail = refs["retake_v001"].available_range
    assert avail.start_time <= middle.source_range.start_time
    assert avail.end_time_exclusive() >= middle.source_range.end_time_exclusive()
    assert middle.metadata[NS]["versions"]["retake_v001"]["request_id"] == "r1"


def test_second_retake_of_the_same_window_adds_a_version_without_splitting():
    tl = three_clips()
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")
    splice_version(tl, p, version(p, 1))
    p2 = plan_for(tl, "01:00:06:00", "01:00:09:00")
    assert next_version_number(tl, "b") == 2
    mid = splice_version(tl, p2, version(p2, 2))
    assert len(tl.tracks[0]) == 5
    assert sorted(mid.media_references()) == ["DEFAULT_MEDIA", "retake_v001", "retake_v002"]
    assert mid.active_media_reference_key == "retake_v002" and mid.name == "b_retake_v002"


def test_use_switches_versions_and_back_to_the_original_in_one_call():
    tl = three_clips()
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")
    splice_version(tl, p, version(p, 1))
    splice_version(tl, plan_for(tl, "01:00:06:00", "01:00:09:00"), version(p, 2))
    (rc,) = list_versions(tl)
    assert rc.versions == ("retake_v001", "retake_v002") and rc.active == "retake_v002"
    use_version(tl, "b", "v001")
    assert list_versions(tl)[0].active == "retake_v001"
    use_version(tl, "b_retake_v001", "original")
    (rc,) = list_versions(tl)
    assert rc.active == "original" and rc.clip.name == "b"
    assert rc.clip.media_reference.target_url == "/m/a.mov"
    with pytest.raises(SelectionError, match="no version 'v009'"):
        use_version(tl, "b", "v009")
    with pytest.raises(SelectionError, match="No retaken clip 'a'"):
        use_version(tl, "a", "v001")


def test_a_retake_inside_an_earlier_retake_splits_that_version_piece():
    tl = three_clips()
    p = plan_for(tl, "01:00:06:00", "01:00:12:00")
    splice_version(tl, p, version(p, 1))
    p2 = plan_for(tl, "01:00:07:00", "01:00:10:00")
    assert p2.clip_name == "b"
    splice_version(tl, p2, version(p2, 2))
    assert [it.name for it in tl.tracks[0]] == ["a", "b", "b_retake_v001", "b_retake_v002", "b_retake_v001", "b", "c"]
    assert tl.duration().value == 96 + 240 + 96


def test_placement_above_leaves_the_original_track_untouched():
    tl = three_clips()
    original = otio.adapters.write_to_string(tl.tracks[0])
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")
    new = place_above(tl, p, version(p, 1))
    assert otio.adapters.write_to_string(tl.tracks[0]) == original
    assert len(tl.tracks) == 2 and tl.tracks[1].name == "LTX Retakes"
    assert ranges(tl.tracks[1]) == [("", 0, 144), ("b_retake_v001", 144, 72)]
    assert new.media_reference.target_url == "/r/b_retake_v001.mp4"
    p2 = plan_for(tl, "01:00:06:00", "01:00:09:00")
    place_above(tl, p2, version(p2, 2))
    assert len(tl.tracks) == 3  # the first track above is taken there: the next goes higher
    p3 = plan_for(tl, "01:00:00:00", "01:00:03:00")  # over clip a: the retake track is free there
    place_above(tl, p3, version(p3, 1))
    assert ranges(tl.tracks[1]) == [("a_retake_v001", 0, 72), ("", 72, 72), ("b_retake_v001", 144, 72)]
    use_version(tl, "b", "original")
    assert not any(c.enabled for c in tl.tracks[1].find_clips() if c.name.startswith("b_"))


def test_placement_above_with_new_sound_puts_it_on_a_free_sound_track_above_the_clips_own():
    from dataclasses import replace
    from ltx_retake.splice import describe_landing

    tl = three_clips()
    a1 = with_sound(tl, [clip("a", "/m/a.mov", 86400, 96), clip("b", "/m/a.mov", 86400 + 200, 240), clip("c", "/m/a.mov", 86400, 96)])
    sound_before = otio.adapters.write_to_string(a1)
    p = replace(plan_for(tl, "01:00:06:00", "01:00:09:00"), mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    assert "new sound goes on the first free sound track above" in describe_landing(tl, p, "above")
    place_above(tl, p, version(p, 1))
    assert otio.adapters.write_to_string(a1) == sound_before
    assert [(t.kind, t.name) for t in tl.tracks] == [("Video", "V1"), ("Audio", "A1"), ("Video", "LTX Retakes"),
                                                      ("Audio", "LTX Retakes (sound)")]
    assert ranges(tl.tracks[2]) == ranges(tl.tracks[3]) == [("", 0, 144), ("b_retake_v001", 144, 72)]
    assert tl.tracks[3][1].media_reference.target_url == "/r/b_retake_v001.mp4"
    use_version(tl, "b", "original")   # picture and sound above are switched together
    assert not any(c.enabled for t in tl.tracks[2:] for c in t.find_clips())
    silent = replace(p, media=info(audio=False))
    assert "no sound track is added" in describe_landing(tl, silent, "above")
    before = len(tl.tracks)
    place_above(tl, silent, version(silent, 2))
    assert len(tl.tracks) == before + 1 and tl.tracks[-1].kind == "Video"


def test_otio_round_trip_keeps_every_version_and_edl_keeps_the_active(tmp_path):
    tl = three_clips()
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")
    splice_version(tl, p, version(p, 1, tmp_path))
    out = write_timeline(tl, tmp_path / "new.otio")
    back = read_timeline(out)
    (rc,) = list_versions(back)
    assert rc.versions == ("retake_v001",) and rc.active == "retake_v001"
    assert back.duration() == tl.duration()
    edl = write_timeline(tl, tmp_path / "new.edl")
    text = edl.read_text()
    assert "b_retake_v001" in text


def test_write_never_overwrites_the_input_and_leaves_no_temp_files(tmp_path):
    tl = three_clips()
    src = write_timeline(tl, tmp_path / "in.otio")
    before = src.read_bytes()
    with pytest.raises(InputError, match="Refusing to overwrite the input"):
        write_timeline(tl, src, protect=(src,))
    with pytest.raises(InputError, match="already exists"):
        write_timeline(tl, src)
    with pytest.raises(InputError):
        write_timeline(tl, tmp_path / "out.nosuchformat")
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.otio"]


def test_markers_stay_with_the_piece_they_mark():
    b = clip("b", "/m/a.mov", 86400 + 200, 240)
    b.markers.append(otio.schema.Marker(name="early", marked_range=TR(RT(86400 + 210, 24), RT(1, 24))))
    b.markers.append(otio.schema.Marker(name="late", marked_range=TR(RT(86400 + 400, 24), RT(1, 24))))
    tl = timeline(clip("a", "/m/a.mov", 86400, 96), b)
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")
    splice_version(tl, p, version(p, 1))
    assert [[m.name for m in it.markers] for it in tl.tracks[0]] == [[], ["early"], [], ["late"]]


def test_a_dissolve_is_left_out_of_a_whole_clip_and_refused_inside_a_range():
    tl = three_clips()
    tl.tracks[0].insert(1, otio.schema.Transition(in_offset=RT(12, 24), out_offset=RT(12, 24)))  # a|b dissolve, record 84..108
    sel = select_clip(tl, "b")
    assert (sel.record_range.start_time.value, sel.record_range.duration.value) == (108, 228)
    assert "dissolves were left out" in sel.notes[0]
    with pytest.raises(SelectionError, match="touches the transition"):
        select_range(tl, "01:00:04:00", "01:00:07:00")
    select_range(tl, "01:00:06:00", "01:00:09:00")  # clear of it: fine


def with_sound(tl, clips):
    a1 = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for c in clips:
        a1.append(c)
    tl.tracks.append(a1)
    return a1


def test_linked_sound_takes_a_sound_changing_retake_too():
    tl = three_clips()
    a1 = with_sound(tl, [clip("a", "/m/a.mov", 86400, 96), clip("b", "/m/a.mov", 86400 + 200, 240), clip("c", "/m/a.mov", 86400, 96)])
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")
    (sound,) = linked_sound(tl, p)
    assert sound.track_index == 1
    v = version(p, 1)
    splice_version(tl, p, v)
    splice_version(tl, sound, v)
    assert [it.name for it in a1] == ["a", "b", "b_retake_v001", "b", "c"]
    assert a1[2].media_reference.target_url == "/r/b_retake_v001.mp4"
    use_version(tl, "b", "original")  # one call switches picture and sound together
    assert [r.active for r in list_versions(tl)] == ["original", "original"]


def test_a_second_retake_over_the_pieces_of_a_retaken_shot_reaches_its_split_sound_too():
    from dataclasses import replace

    tl = three_clips()
    a1 = with_sound(tl, [clip("a", "/m/a.mov", 86400, 96), clip("b", "/m/a.mov", 86400 + 200, 240), clip("c", "/m/a.mov", 86400, 96)])
    p = replace(plan_for(tl, "01:00:06:00", "01:00:09:00"), mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    for part in (p, *linked_sound(tl, p)):
        splice_version(tl, part, version(p, 1))
    wider = replace(plan_for(tl, "01:00:05:00", "01:00:11:00"), mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    (sound,) = linked_sound(tl, wider)      # the sound is in three pieces now: still the picture's own
    for part in (wider, sound):
        splice_version(tl, part, version(wider, 2))
    assert [it.name for it in tl.tracks[0]] == [it.name for it in a1] == \
        ["a", "b", "b_retake_v002", "b_retake_v002", "b_retake_v002", "b", "c"]


@pytest.mark.parametrize("sound", [
    clip("b", "/m/other.wav", 86400 + 200, 240),   # another file: not linked
    clip("b", "/m/a.mov", 86400 + 203, 240),       # slipped three frames: out of sync, not linked
])
def test_sound_that_is_not_linked_is_left_alone(sound):
    tl = three_clips()
    with_sound(tl, [otio.schema.Gap(source_range=TR(RT(0, 24), RT(96, 24))), sound])
    assert linked_sound(tl, plan_for(tl, "01:00:06:00", "01:00:09:00")) == []


@pytest.mark.parametrize("rate", [23.976, 29.97, 23.976023976, 59.9400599401, 23.976024627685547])
def test_literal_float_rates_as_files_store_them_select_plan_and_splice(rate):
    """EDL/XML exports, Hiero and raven store 23.976 or 29.97 literally, not 24000/1001."""
    def c(name, start, dur):
        return clip(name, "/m/a.mov", start, dur, rate=rate)

    tl = timeline(c("a", 86400, 100), c("b", 86400 + 300, 300), c("c", 86400, 100), rate=rate)
    with_sound(tl, [c("a", 86400, 100), c("b", 86400 + 300, 300), c("c", 86400, 100)])
    exact = Fraction(rate).limit_denominator(1001) if abs(rate - round(rate)) > 0.01 else Fraction(round(rate))
    media = info(rate=exact, frames=5000)
    (sel,) = select_range(tl, "100", "230")  # starts exactly on the a|b cut; 130 frames is over 2 s at any of these
    assert sel.clip.name == "b"
    p = plan_retake(tl, source_clip(tl, sel, None), media, limits_for("local"), prompt="x",
                    mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO, provider="local", model="m")[0]
    assert p.window_start_frame == 300 and p.window_frames == 130
    (sound,) = linked_sound(tl, p)
    v = version(p, 1)
    splice_version(tl, p, v)
    splice_version(tl, sound, v)
    assert [it.name for it in tl.tracks[0]] == ["a", "b_retake_v001", "b", "c"]
    assert [it.name for it in tl.tracks[1]] == ["a", "b_retake_v001", "b", "c"]
    again = plan_retake(tl, source_clip(tl, select_range(tl, "100", "230")[0], None), media, limits_for("local"),
                        prompt="x", mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m")[0]
    splice_version(tl, again, version(again, 2))  # the same window again: a second version, no split
    assert len(tl.tracks[0]) == 4 and tl.tracks[0][1].active_media_reference_key == "retake_v002"
    sel_b = select_clip(tl, "b")   # the pieces a retake split out of b are b, one clip: the whole shot again
    assert round(sel_b.record_range.start_time.value) == 100 and round(sel_b.record_range.duration.value) == 300


def test_a_clip_named_after_its_file_gets_hiero_style_version_names():
    tl = timeline(clip("sc01_sh010.mov", "/m/a.mov", 86400, 240))
    p = plan_for(tl, "01:00:02:00", "01:00:05:00")
    assert next_version_number(tl, p.clip_name, {"sc01_sh010_retake_v001", "sc01_sh010_retake_v004"}) == 5
    v = Version(5, p.clip_name, Path("/r/sc01_sh010_retake_v005.mov"), {})
    assert v.name == "sc01_sh010_retake_v005"
    splice_version(tl, p, v)
    assert tl.tracks[0][1].name == "sc01_sh010_retake_v005"
    use_version(tl, "sc01_sh010_retake_v005", "original")
    assert tl.tracks[0][1].name == "sc01_sh010.mov"
    use_version(tl, "sc01_sh010.mov", "v005")
    assert tl.tracks[0][1].name == "sc01_sh010_retake_v005"


def test_a_refused_version_number_leaves_the_timeline_as_it_was():
    """Found by tests/test_properties.py: the clip was split before the taken number was noticed."""
    tl = three_clips()
    p = plan_for(tl, "01:00:06:00", "01:00:12:00")
    splice_version(tl, p, version(p, 1))
    before = otio.adapters.write_to_string(tl)
    inside = plan_for(tl, "01:00:07:00", "01:00:10:00")  # inside the v001 piece, which carries retake_v001
    with pytest.raises(SpliceError, match="already has a version retake_v001; pick the next number"):
        splice_version(tl, inside, version(inside, 1))
    assert otio.adapters.write_to_string(tl) == before


@pytest.mark.parametrize("timeline_rate,clip_rate", [(30.0, 30000 / 1001), (50.0, 24.0), (50.0, 30.0)])
def test_a_clip_at_another_rate_than_the_timeline_splices_and_keeps_the_length(timeline_rate, clip_rate):
    """Found by tests/test_properties.py: the pieces' float sum missed the length by 1e-13 s and was refused."""
    tl = timeline(clip("z", "/m/a.mov", 0, 20, rate=timeline_rate), clip("a", "/m/a.mov", 0, 301, rate=clip_rate),
                  rate=timeline_rate, start=None)
    before = tl.duration()
    (sel,) = select_range(tl, "30", "100")
    media = info(rate=Fraction(clip_rate).limit_denominator(1001), frames=5000, start_frame=0, tc=None)
    (p,) = plan_retake(tl, source_clip(tl, sel, None), media, limits_for("local"), prompt="rain",
                       mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m")
    middle = splice_version(tl, p, version(p, 1))
    assert abs(tl.duration().to_seconds() - before.to_seconds()) < 1e-9
    names = [it.name for it in tl.tracks[0]]
    assert names[0] == "z" and names.count("a_retake_v001") == 1 and set(names[1:]) == {"a", "a_retake_v001"}
    assert sum(c.source_range.duration.value for c in list(tl.tracks[0])[1:]) == 301
    assert abs(middle.range_in_parent().start_time.to_seconds() - p.record_range.start_time.to_seconds()) < 1 / clip_rate


def test_a_clip_off_the_timelines_frames_is_planned_and_spliced_inside_itself():
    """Found by tests/test_properties.py: on a 29.97 timeline (global start) a 23.976 clip starts 1.6 record frames
    in; rounding put the planned range partly outside it, and the splice then said the timeline had changed."""
    tl = timeline(clip("z", "/m/a.mov", 0, 4, rate=60000 / 1001), clip("a", "/m/d.mov", 0, 120, rate=24000 / 1001),
                  rate=30000 / 1001, start=0)
    (sel,) = select_range(tl, "2", "3")
    assert sel.clip.name == "a"
    media = info("/m/d.mov", rate=Fraction(24000, 1001), frames=5000, start_frame=0, tc=None)
    (p,) = plan_retake(tl, source_clip(tl, sel, None), media, limits_for("local"), prompt="rain",
                       mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m")
    clip_range = tl.tracks[0].range_of_child_at_index(1)
    assert p.record_range.start_time >= clip_range.start_time
    assert p.record_range.end_time_exclusive() <= clip_range.end_time_exclusive()
    splice_version(tl, p, version(p, 1))
    assert tl.tracks[0][1].name == "a_retake_v001"


def test_a_short_clip_at_another_rate_never_lengthens_its_track():
    """Found by tests/test_properties.py: 3 frames at 59.94 are 1.5 frames at 29.97; the plan rounded to 2 (4 clip
    frames) and the splice lengthened V1, unseen because V2 is longer and only the timeline's length was checked."""
    tl = timeline(clip("a", "/m/a.mov", 0, 3, rate=60000 / 1001), rate=30000 / 1001, start=0)
    v2 = otio.schema.Track(name="V2")
    v2.append(clip("long", "/m/b.mov", 0, 600, rate=30000 / 1001))
    tl.tracks.append(v2)
    v1 = tl.tracks[0].duration()
    media = info(rate=Fraction(60000, 1001), frames=5000, start_frame=0, tc=None)
    (p,) = plan_retake(tl, source_clip(tl, select_clip(tl, "a"), None), media, limits_for("local"), prompt="rain",
                       mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m")
    assert p.record_range.duration.to_seconds() == pytest.approx(v1.to_seconds())
    splice_version(tl, p, version(p, 1))
    assert [(it.name, it.source_range.duration.value) for it in tl.tracks[0]] == [("a_retake_v001", 3)]
    assert tl.tracks[0].duration().to_seconds() == pytest.approx(v1.to_seconds())


def test_splicing_a_nest_retakes_the_layer_that_shows():
    """Found by tests/test_properties.py: the lower layer of a nest covers the window too, and was found first."""
    nest = otio.schema.Stack(name="nest")
    for name in ("b", "a"):  # layer 0 (under) is b, layer 1 (on top) is a
        layer = otio.schema.Track()
        layer.append(clip(name, "/m/a.mov", 86400, 240))
        nest.append(layer)
    tl = timeline(nest)
    p = plan_for(tl, "01:00:02:00", "01:00:05:00")
    assert p.clip_name == "a"
    splice_version(tl, p, version(p, 1))
    assert [[c.name for c in layer] for layer in tl.tracks[0][0]] == [["b"], ["a", "a_retake_v001", "a"]]


def test_placing_above_fills_a_run_of_gaps():
    """Found by tests/test_properties.py: two gaps in a row over the window were taken for a busy track."""
    tl = three_clips()
    above = otio.schema.Track(name="V2")
    for n in (100, 60, 200):
        above.append(otio.schema.Gap(source_range=TR(RT(0, 24), RT(n, 24))))
    tl.tracks.append(above)
    p = plan_for(tl, "01:00:06:00", "01:00:09:00")  # record 144..216 spans the second and third gaps
    place_above(tl, p, version(p, 1))
    assert len(tl.tracks) == 2
    assert ranges(tl.tracks[1]) == [("", 0, 100), ("", 100, 44), ("b_retake_v001", 144, 72), ("", 216, 144)]


def test_a_folder_that_cannot_be_made_is_a_named_error_and_nothing_is_written(tmp_path):
    """Found by tests/test_properties.py: the OSError of mkdir / mkstemp escaped unnamed."""
    (tmp_path / "renders").write_text("a file, not a folder")
    with pytest.raises(InputError, match=r"Cannot write new\.otio in .*renders: .*Choose a folder you can write to\."):
        write_timeline(three_clips(), tmp_path / "renders" / "new.otio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["renders"]


def test_a_timeline_file_with_a_clip_without_any_length_is_refused_on_read(tmp_path):
    """Found by tests/test_properties.py: the reader returned it, and every later step crashed inside OTIO."""
    tl = three_clips()
    tl.tracks[0].append(otio.schema.Clip(name="nolength", media_reference=otio.schema.ExternalReference(target_url="/m/b.mov")))
    path = write_timeline(tl, tmp_path / "cut.otio")
    with pytest.raises(TimelineReadError, match="Clip 'nolength' on track V1 has no length"):
        read_timeline(path)


def test_the_retake_of_a_clip_at_another_rate_plays_on_from_the_piece_before():
    """Found by tests/test_properties.py: 2 record frames at 59.94 into a 23.976 clip are 0.8 of its frames; the
    left piece was cut at a whole frame (1) but the retake's media started at 0.8."""
    tl = timeline(clip("z", "/m/z.mov", 0, 4, rate=60000 / 1001), clip("a", "/m/a.mov", 0, 240, rate=24000 / 1001),
                  rate=60000 / 1001, start=0)
    (sel,) = select_range(tl, "6", "126")
    media = info(rate=Fraction(24000, 1001), frames=5000, start_frame=0, tc=None)
    (p,) = plan_retake(tl, source_clip(tl, sel, None), media, limits_for("local"), prompt="rain",
                       mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m")
    splice_version(tl, p, version(p, 1))
    pieces = [(c.name, c.source_range.start_time.value, c.source_range.duration.value) for c in list(tl.tracks[0])[1:]]
    assert [name for name, _, _ in pieces] == ["a", "a_retake_v001", "a"]
    assert all(a + n == b for (_, a, n), (_, b, _) in zip(pieces, pieces[1:]))
    assert sum(n for _, _, n in pieces) == 240


def test_a_refused_linked_sound_takes_the_pictures_splice_back_too():
    """A job's splice is all or nothing across its tracks (without a copy of the timeline per job): a sound clip
    that already has the number refuses it, and the picture is not left retaken over the old sound."""
    from dataclasses import replace

    from ltx_retake.progress import Step
    from ltx_retake.jobs import Job
    from ltx_retake.landing import splice_into

    tl = three_clips()
    a1 = with_sound(tl, [clip("a", "/m/a.mov", 86400, 96), clip("b", "/m/a.mov", 86400 + 200, 240), clip("c", "/m/a.mov", 86400, 96)])
    refs = dict(a1[1].media_references())
    refs["retake_v001"] = otio.schema.ExternalReference(target_url="/r/elsewhere.wav")
    a1[1].set_media_references(refs, otio.schema.Clip.DEFAULT_MEDIA_KEY)
    p = replace(plan_for(tl, "01:00:06:00", "01:00:09:00"), mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO)
    assert len(linked_sound(tl, p)) == 1
    before = otio.adapters.write_to_string(tl)
    (problem,) = splice_into(tl, [Job("job1", p, version(p, 1), step=Step.READY)])
    assert "already has a version retake_v001" in problem
    assert otio.adapters.write_to_string(tl) == before
    assert splice_into(tl, [Job("job2", p, version(p, 2), step=Step.READY)]) == []  # the next number lands on both
    assert [it.name for it in tl.tracks[0]] == [it.name for it in tl.tracks[1]] == ["a", "b", "b_retake_v002", "b", "c"]
