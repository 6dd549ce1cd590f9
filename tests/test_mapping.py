"""Selections mapped to source media exactly: nesting, trims, global start, rates, drop-frame, speed effects."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.errors import PlanError, SelectionError, UnsupportedEditError
from ltx_retake.limits import limits_for
from ltx_retake.plan import plan_retake, source_clip
from ltx_retake.ports import RetakeMode
from ltx_retake.selection import select_clip, select_markers, select_range, timeline_rate
from ltx_retake.splice import Version, splice_version
from ltx_retake.versions import list_versions

from timelines import RT, TR, clip, info, timeline

LIMITS = limits_for("fal")


def plan(tl, sel, media, **kw):
    src = source_clip(tl, sel, None)
    return plan_retake(tl, src, media, LIMITS, prompt="p", mode=RetakeMode.REPLACE_VIDEO, provider="fal", model="m", **kw)


def test_range_by_record_timecode_maps_through_global_start_and_trims():
    tl = timeline(clip("a", "/m/a.mov", 86400 + 10, 100), clip("b", "/m/b.mov", 86400 + 500, 200))
    (sel,) = select_range(tl, "01:00:05:00", "01:00:08:00")  # b starts at record 100 frames = 01:00:04:04
    assert sel.clip.name == "b"
    (p,) = plan(tl, sel, info("/m/b.mov"))
    # record 120 is 20 frames into b; b's in-point is file frame 500
    assert (p.window_start_frame, p.window_frames) == (520, 72)
    assert p.source_range.start_time.value == 86400 + 520
    assert p.record_timecode == "01:00:05:00-01:00:08:00"
    assert p.cut.start_frame <= 520 and p.cut.start_frame + p.cut.frame_count >= 592
    assert (p.cut.total_frames - 1) % 8 == 0 and 73 <= p.cut.total_frames <= 480
    assert p.start_time == pytest.approx((520 - p.cut.start_frame) / 24)


def test_bare_frames_count_from_the_timeline_start():
    tl = timeline(clip("a", "/m/a.mov", 86400, 240))
    (sel,) = select_range(tl, "24", "96")
    assert sel.record_range == TR(RT(24, 24), RT(72, 24))


def test_with_context_max_handles_are_balanced_and_fill_the_limit():
    tl = timeline(clip("a", "/m/a.mov", 86400 + 1000, 120))
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=3000), context_s=None)
    assert p.cut.total_frames == 473  # largest 8k+1 within 20 s at 24 fps
    pre = p.window_start_frame - p.cut.start_frame
    post = p.cut.start_frame + p.cut.frame_count - (p.window_start_frame + p.window_frames)
    assert abs(pre - post) <= 1
    assert p.estimate_usd == pytest.approx(round(0.10 * 473 / 24, 2))


def test_with_context_max_handles_come_from_beyond_the_clip_and_shift_when_the_media_runs_out():
    tl = timeline(clip("a", "/m/a.mov", 86400 + 10, 60))  # 10 frames of media before the clip's in-point
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=400), context_s=None)
    assert p.cut.start_frame == 0
    assert p.cut.total_frames == 393  # 400 frames available -> largest 8k+1
    assert p.window_offset == 10


@pytest.mark.parametrize("context_s, frames, context", [(1.0, 161, (20, 21)), (0.5, 137, (8, 9)), (2.0, 209, (44, 45))])
def test_the_context_sent_is_what_the_editor_chose_and_paid_for(context_s, frames, context):
    tl = timeline(clip("a", "/m/a.mov", 86400 + 1000, 120))   # a 5 s window
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=3000), context_s=context_s)
    assert p.cut.total_frames == frames <= 120 + 2 * round(context_s * 24)   # the 8k+1 rule only ever trims
    assert p.context == context and p.estimate_usd == pytest.approx(round(0.10 * frames / 24, 2))
    assert f"context {context[0] / 24:.2f} s before and {context[1] / 24:.2f} s after" in p.summary()
    assert f"estimated ${p.estimate_usd:.2f}" in p.summary()


def test_the_default_context_shifts_to_the_side_that_has_media_and_grows_to_the_models_minimum():
    tl = timeline(clip("a", "/m/a.mov", 86400 + 10, 60))   # 10 frames of media before the clip's in-point
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=400))
    assert p.cut.start_frame == 0 and p.context == (10, 35) and p.cut.total_frames == 105
    slow = timeline(clip("a", "/m/a.mov", 1000, 30, rate=15), rate=15, start=None)   # 2 s at 15 fps
    (q,) = plan(slow, select_clip(slow, "a"), info(frames=3000, rate=Fraction(15), start_frame=0, tc=None))
    assert q.cut.total_frames == 73 and any("the context grew" in n for n in q.notes)


def test_a_uhd_source_is_sent_at_the_models_working_size_and_the_plan_says_so():
    tl = timeline(clip("a", "/m/a.mov", 86400 + 1000, 60))
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=3000, size=(3840, 2160)))
    assert p.cut.max_size == (1920, 1080) and any("sent at 1920x1080" in n and "3840x2160" in n for n in p.notes)
    (full,) = plan(tl, select_clip(tl, "a"), info(frames=3000, size=(3840, 2160)), max_size=None)
    assert full.cut.max_size is None and not any("sent at" in n for n in full.notes)
    (hd,) = plan(tl, select_clip(tl, "a"), info(frames=3000, size=(1920, 1080)))
    assert not any("sent at" in n for n in hd.notes)


def test_short_selection_is_widened_inside_the_shot_and_the_user_is_told():
    tl = timeline(clip("a", "/m/a.mov", 86400, 24), clip("b", "/m/a.mov", 86400 + 100, 240))
    (sel,) = select_range(tl, "01:00:01:00", "01:00:01:12")  # 12 frames at the head of b
    (p,) = plan(tl, sel, info())
    assert p.window_frames == 48
    assert p.record_range.start_time.value == 24  # never leaves b for its neighbour
    assert any("widened" in n for n in p.notes)


def test_a_clip_shorter_than_two_seconds_borrows_media_beyond_its_cut_points():
    tl = timeline(clip("a", "/m/a.mov", 86400 + 200, 30))
    (p,) = plan(tl, select_clip(tl, "a"), info())
    assert p.window_frames == 48 and p.record_range.duration.value == 30
    v0 = p.version_range.start_time.value
    assert v0 <= p.source_range.start_time.value
    assert p.source_range.end_time_exclusive().value <= v0 + p.version_range.duration.value


def test_too_long_is_refused_with_the_reason_and_split_only_when_asked():
    tl = timeline(clip("a", "/m/a.mov", 86400, 1200))
    sel = select_clip(tl, "a")
    with pytest.raises(PlanError, match=r"at most 19\.71 s.*--split"):
        plan(tl, sel, info())
    parts = plan(tl, sel, info(), split=True)
    assert len(parts) == 3
    assert sum(p.window_frames for p in parts) == 1200
    assert parts[0].record_range.end_time_exclusive() == parts[1].record_range.start_time


def test_media_too_short_for_the_model_is_refused():
    tl = timeline(clip("a", "/m/a.mov", 86400, 50))
    with pytest.raises(PlanError, match="at least 73 frames"):
        plan(tl, select_clip(tl, "a"), info(frames=50))


def test_padding_aligns_to_8k_plus_1_only_outside_the_window():
    tl = timeline(clip("a", "/m/a.mov", 86400, 76))
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=76))
    assert p.cut.total_frames == 81 and p.cut.pad_head + p.cut.pad_tail == 5
    assert p.window_offset == p.cut.pad_head and p.window_frames == 76


def test_nested_stack_and_trimmed_nested_track():
    inner = otio.schema.Track(name="inner")
    inner.append(clip("n1", "/m/a.mov", 86400 + 300, 200))
    inner.append(clip("n2", "/m/a.mov", 86400 + 900, 200))
    inner.source_range = TR(RT(50, 24), RT(250, 24))  # trimmed: shows n1 from its frame 50, then 100 frames of n2
    stack = otio.schema.Stack(name="nest")
    stack.append(inner)
    tl = timeline(clip("head", "/m/a.mov", 86400, 48), stack)
    # The trim shows n1 from its frame 50 (record 48..197) then n2 from its first frame (record 198..297).
    with pytest.raises(SelectionError, match="crosses a cut"):
        select_range(tl, "01:00:08:00", "01:00:11:00")  # record 192..263 straddles n1 | n2 inside the nest
    (sel2,) = select_range(tl, "01:00:08:06", "01:00:11:06")
    assert sel2.clip.name == "n2"
    (p2,) = plan(tl, sel2, info())
    assert p2.window_start_frame == 900 and p2.window_frames == 72


def test_nested_range_across_an_inner_cut_is_refused_or_split_per_clip():
    inner = otio.schema.Track()
    inner.append(clip("n1", "/m/a.mov", 86400 + 300, 100))
    inner.append(clip("n2", "/m/a.mov", 86400 + 900, 100))
    stack = otio.schema.Stack()
    stack.append(inner)
    tl = timeline(stack)
    with pytest.raises(SelectionError, match="crosses a cut"):
        select_range(tl, "01:00:03:00", "01:00:05:00")
    sels = select_range(tl, "01:00:03:00", "01:00:05:00", per_clip=True)
    assert [s.clip.name for s in sels] == ["n1", "n2"]
    assert [s.record_range.duration.value for s in sels] == [28, 20]


def test_linear_time_warp_is_applied():
    c = clip("fast", "/m/a.mov", 86400 + 100, 120)
    c.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    tl = timeline(c)
    (sel,) = select_range(tl, "01:00:01:00", "01:00:03:00")  # 48 record frames from record 24
    (p,) = plan(tl, sel, info())
    assert p.window_start_frame == 100 + 48 and p.window_frames == 96
    assert p.source_range.start_time.value == 86400 + 148
    assert p.scalar == 2


@pytest.mark.parametrize("effect,match", [
    (otio.schema.FreezeFrame(), "freeze frame"),
    (otio.schema.LinearTimeWarp(time_scalar=-1.0), "reverse"),
    (otio.schema.TimeEffect(name="TimeWarp", effect_name="TimeWarp"), "cannot be read"),
])
def test_speed_effects_we_cannot_map_are_refused(effect, match):
    c = clip("x", "/m/a.mov", 86400, 120)
    c.effects.append(effect)
    tl = timeline(c)
    with pytest.raises(UnsupportedEditError, match=match):
        source_clip(tl, select_clip(tl, "x"), None)


def test_media_rate_differs_from_timeline_rate_through_seconds():
    # A 15 fps clip on a 30 fps timeline (Premiere's example): record frames are twice media frames.
    c = clip("slow", "/m/a.mov", 0, 300, rate=30)
    tl = timeline(c, rate=30, start=0)
    (sel,) = select_range(tl, "60", "180")
    (p,) = plan(tl, sel, info(rate=Fraction(15), frames=600, start_frame=0, tc=None))
    assert (p.window_start_frame, p.window_frames) == (30, 60)


def test_pulldown_rates_count_frames_one_for_one():
    # An EDL at 24 over 23.976 media: timecode labels match frame for frame.
    c = clip("a", "/m/a.mov", 86400 + 240, 240, rate=24)
    tl = timeline(c, rate=24)
    (p,) = plan(tl, select_clip(tl, "a"), info(rate=Fraction(24000, 1001), frames=2400, start_frame=86400))
    assert p.window_start_frame == 240 and p.window_frames == 240


def test_drop_frame_record_timecode():
    rate = 30000 / 1001
    c = clip("df", "/m/a.mov", 107892, 3600, rate=rate)  # media starts at 01:00:00;00 DF
    tl = timeline(c, rate=rate, start=107892)
    (sel,) = select_range(tl, "01:01:00;02", "01:01:03;02")
    # 01:01:00;02 is 1800 frames after 01:00:00;00 (frames ;00 and ;01 do not exist in minute 1)
    assert sel.record_range.start_time.value == 1800
    (p,) = plan(tl, sel, info(rate=Fraction(30000, 1001), frames=3600, start_frame=107892, tc="01:00:00;00"))
    assert p.window_start_frame == 1800 and p.window_frames == 90
    assert p.record_timecode == "01:01:00;02-01:01:03;02"


def test_available_range_defines_the_media_time_even_without_file_timecode():
    c = clip("a", "/m/a.mov", 1000 + 48, 96, avail=(1000, 500))
    tl = timeline(c)
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=500, start_frame=0, tc=None))
    assert p.window_start_frame == 48


def test_source_outside_media_is_refused():
    tl = timeline(clip("a", "/m/a.mov", 86400 + 2300, 200))
    with pytest.raises(SelectionError, match="outside its media"):
        plan(tl, select_clip(tl, "a"), info(frames=2400))


def test_markers_are_a_batch_with_their_prompts():
    a = clip("a", "/m/a.mov", 86400, 240)
    a.markers.append(otio.schema.Marker(name="sky", marked_range=TR(RT(86400 + 10, 24), RT(48, 24)), comment="make the sky stormy"))
    tl = timeline(a, clip("b", "/m/b.mov", 86400, 240))
    tl.tracks[0].markers.append(otio.schema.Marker(name="add rain", marked_range=TR(RT(300, 24), RT(0, 24))))
    sels = select_markers(tl)
    assert [(s.clip.name, s.prompt) for s in sels] == [("a", "make the sky stormy"), ("b", "add rain")]
    assert sels[0].record_range == TR(RT(10, 24), RT(48, 24))
    assert sels[1].record_range.duration.value == 1


def test_clip_by_index_and_ambiguous_names():
    tl = timeline(clip("a", "/m/a.mov", 86400, 48), clip("a", "/m/a.mov", 86400, 48), clip("c", "/m/a.mov", 86400, 48))
    assert select_clip(tl, "#3").clip.name == "c"
    with pytest.raises(SelectionError, match="2 clips are named 'a'"):
        select_clip(tl, "a")
    with pytest.raises(SelectionError, match="#4 does not exist"):
        select_clip(tl, "#4")
    with pytest.raises(SelectionError, match="No clip named 'zz'.*'a', 'a', 'c'"):
        select_clip(tl, "zz")


def test_a_nest_and_a_dissolve_first_on_the_track_do_not_hide_its_rate():
    """Found by tests/test_properties.py: the rate came from the first item, and a transition has no source range."""
    inner = otio.schema.Track()
    inner.append(clip("n", "/m/a.mov", 86400, 48))
    nest = otio.schema.Stack()
    nest.append(inner)
    tl = timeline(nest, otio.schema.Transition(in_offset=RT(0, 24), out_offset=RT(0, 24)), clip("b", "/m/a.mov", 86400, 96),
                  start=None)
    assert timeline_rate(tl) == 24
    (sel,) = select_range(tl, "60", "100")
    assert sel.clip.name == "b" and sel.record_range == TR(RT(60, 24), RT(40, 24))
    assert select_clip(tl, "n").record_range == TR(RT(0, 24), RT(48, 24))


def nest_trimmed_to(start: int, dur: int, *clips) -> otio.schema.Stack:
    inner = otio.schema.Track(name="inner")
    for c in clips:
        inner.append(c)
    inner.source_range = TR(RT(start, 24), RT(dur, 24))
    nest = otio.schema.Stack(name="nest")
    nest.append(inner)
    return nest


def test_a_clip_a_nest_trims_away_is_refused_and_one_it_trims_is_cut_to_what_shows():
    """Found by tests/test_properties.py: nested clips were placed by their whole range, past the nest's trim."""
    nest = nest_trimmed_to(50, 100, clip("n1", "/m/a.mov", 86400, 100), clip("n2", "/m/a.mov", 86400 + 500, 100),
                           clip("n3", "/m/a.mov", 86400 + 900, 100))
    tl = timeline(clip("head", "/m/a.mov", 86400, 48), nest)  # the nest shows n1's frames 50-99, then n2's 0-49
    assert tl.duration().value == 148
    with pytest.raises(SelectionError, match="n3 on V1 is trimmed out of its nest: none of it shows"):
        select_clip(tl, "n3")
    sel = select_clip(tl, "n2")
    assert sel.record_range == TR(RT(98, 24), RT(50, 24))  # not 98..198, past the timeline's end
    (p,) = plan(tl, sel, info())
    assert p.record_range == TR(RT(98, 24), RT(50, 24)) and p.window_start_frame == 500
    # A short selection widens only over what shows (before n2's first frame is n1, not more of n2).
    (short,) = select_range(tl, "01:00:04:02", "01:00:04:14")  # record 98..110
    (p,) = plan(tl, short, info())
    assert p.record_range.start_time.value >= 98 and p.record_range.end_time_exclusive().value <= 148
    assert p.window_frames == 48


def stacked(low: otio.schema.Clip, top: otio.schema.Clip) -> otio.schema.Stack:
    nest = otio.schema.Stack(name="nest")
    for c in (low, top):
        layer = otio.schema.Track()
        layer.append(c)
        nest.append(layer)
    return nest


def test_a_clip_hidden_under_a_layer_above_is_refused_by_name():
    """Found by tests/test_properties.py: picking a covered clip by name retook what nobody sees."""
    tl = timeline(stacked(clip("low", "/m/a.mov", 86400, 120), clip("top", "/m/b.mov", 86400, 120)))
    with pytest.raises(SelectionError, match="low on V1 does not show .*a clip on a layer above covers it"):
        select_clip(tl, "low")
    assert select_clip(tl, "top").clip.name == "top"
    tl.tracks[0][0][1][0].enabled = False  # a disabled top layer lets the one below show
    with pytest.raises(SelectionError, match="top on V1 does not show .*it is disabled"):
        select_clip(tl, "top")
    assert select_clip(tl, "low").clip.name == "low"


def test_a_selection_from_another_timeline_is_refused_not_a_crash():
    """Found by tests/test_properties.py: OTIO crashes the interpreter mapping time to a track that is not an ancestor."""
    tl = timeline(clip("a", "/m/a.mov", 86400, 120))
    sel = select_clip(tl, "a")
    with pytest.raises(SelectionError, match="made on another timeline .*select again on the current timeline"):
        source_clip(tl.deepcopy(), sel, None)


def test_a_clip_shorter_than_a_timeline_frame_is_refused_when_planned():
    """Found by tests/test_properties.py: a 1-frame 50 fps clip on a 23.976 timeline planned an empty record range."""
    tl = timeline(clip("a", "/m/a.mov", 0, 1, rate=50), rate=24000 / 1001, start=0)
    with pytest.raises(PlanError, match=r"less than one frame of the timeline \(23\.976 fps\)"):
        plan(tl, select_clip(tl, "a"), info(rate=Fraction(50), start_frame=0, tc=None))


def test_a_clip_without_any_length_is_refused_by_name():
    """Found by tests/test_properties.py: OTIO's CannotComputeAvailableRangeError leaked out of the selections."""
    tl = timeline(clip("a", "/m/a.mov", 86400, 48), otio.schema.Clip(name="nolength", media_reference=otio.schema.ExternalReference(target_url="/m/b.mov")))
    for select in (lambda: select_clip(tl, "a"), lambda: select_range(tl, "0", "24"), lambda: select_markers(tl),
                   lambda: list_versions(tl)):
        with pytest.raises(SelectionError, match="Clip 'nolength' on track V1 has no length: .*Export the timeline again"):
            select()


def test_a_short_selection_widens_only_over_where_its_clip_shows_in_a_nest():
    """Found by tests/test_properties.py: the widening ran under the layer above, so the splice found another clip."""
    low = otio.schema.Track()
    low.append(clip("low", "/m/a.mov", 86400 + 500, 120))
    top = otio.schema.Track()
    top.append(otio.schema.Gap(source_range=TR(RT(0, 24), RT(24, 24))))
    top.append(clip("top", "/m/b.mov", 86400, 96))
    nest = otio.schema.Stack(name="nest")
    nest.append(low)
    nest.append(top)
    tl = timeline(clip("head", "/m/a.mov", 86400, 48), nest)  # low shows at record 48..71, then top covers it
    (sel,) = select_range(tl, "48", "60")
    assert sel.clip.name == "low"
    (p,) = plan(tl, sel, info())
    assert p.record_range == TR(RT(48, 24), RT(24, 24))  # not into 72.., where top shows
    assert p.window_frames == 48 and p.window_start_frame <= 500
    splice_version(tl, p, Version(1, "low", Path("/r/low_retake_v001.mp4"), {}))
    assert [c.name for c in low] == ["low_retake_v001", "low"]


def test_a_short_clip_running_past_its_media_is_refused_not_widened_away():
    """Found by tests/test_properties.py: widening a short clip's window inside the media hid that the clip's
    last frame is past the media's end, and the version then lacked it."""
    tl = timeline(clip("a", "/m/a.mov", 86400 + 954, 47))  # frames 954-1000 of a 1000-frame file
    with pytest.raises(SelectionError, match=r"frames 954-1000 of a\.mov, which has frames 0-999.*outside its media"):
        plan(tl, select_clip(tl, "a"), info(frames=1000))
    (p,) = plan(tl, select_clip(tl, "a"), info(frames=1001))  # one more frame and it fits
    assert p.window_start_frame + p.window_frames == 1001


def test_a_clip_at_a_pulldown_rate_on_the_track_is_planned_by_its_length_in_seconds():
    """Found by tests/test_properties.py: record time was counted frame for frame between 24 and 23.976, so the
    parts of a 2400-frame 23.976 clip on a 24 fps track left its last 2.4 record frames (0.1 s) unretaken."""
    tl = timeline(clip("z", "/m/z.mov", 0, 24, rate=24.0), clip("a", "/m/a.mov", 0, 2400, rate=24000 / 1001), rate=24.0, start=0)
    sel = select_clip(tl, "a")
    parts = plan(tl, sel, info(rate=Fraction(24000, 1001), frames=5000, start_frame=0, tc=None), split=True)
    covered = sum(p.record_range.duration.to_seconds() for p in parts)
    assert abs(covered - sel.record_range.duration.to_seconds()) < 1 / 24  # within the rounding to record frames
    assert parts[0].window_start_frame == 0 and parts[-1].window_start_frame + parts[-1].window_frames == 2400
