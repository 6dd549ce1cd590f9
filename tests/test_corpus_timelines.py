"""Real timelines from Avid, Premiere, Resolve, Hiero and FCP X: read, select and trace, or refuse by name."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest

from ltx_retake.adapters.timeline_files import read_timeline
from ltx_retake.errors import RetakeError, SelectionError, TimelineReadError, UnsupportedEditError
from ltx_retake.plan import media_path_of, source_clip, time_scalar
from ltx_retake.selection import clips_on_track, find_track, select_clip, select_markers, select_range, timeline_rate

TIMELINES = [
    "aaf/transitions.aaf",
    "edl/avid_2997df_colon_tc.edl",
    "edl/avid_cdl_loc_markers.edl",
    "edl/premiere_25fps_effects.edl",
    "fcpxml/fcp111_5994_mixed_rates.fcpxml",
    "fcpxml/fcp113_audition_conform.fcpxml",
    "fcp7xml/premiere_disabled_clips.xml",
    "fcp7xml/premiere_example.xml",
    "otio/hiero_timeline_sq001.otio",
    "otio/nested_example.otio",
    "otio/resolve_effects.otio",
    "otio/timecode_rates_mixed.otio",
]


# EDLs do not say their rate: these are the rates the corpus README gives (the Avid 29.97 one says drop-frame itself)
EDL_RATES = {"edl/avid_cdl_loc_markers.edl": 24, "edl/premiere_25fps_effects.edl": 25}


@pytest.mark.parametrize("name", TIMELINES)
def test_every_clip_is_traced_or_refused_with_a_named_error(corpus, name):
    tl = read_timeline(corpus / name, rate=EDL_RATES.get(name))
    traced = refused = 0
    for ti, track in enumerate(tl.tracks):
        if track.kind != otio.schema.TrackKind.Video:
            continue
        label = f"V{sum(1 for t in list(tl.tracks)[: ti + 1] if t.kind == track.kind)}"
        for n in range(1, len(list(track.find_clips())) + 1):
            try:
                source_clip(tl, select_clip(tl, f"#{n}", label), (corpus / name).parent)
                traced += 1
            except RetakeError as exc:
                assert str(exc) and "Traceback" not in str(exc)
                refused += 1
    assert traced + refused > 0


def test_edl_rates_are_decided_or_refused(corpus):
    assert timeline_rate(read_timeline(corpus / "edl/avid_2997df_colon_tc.edl")) == Fraction(30000, 1001)  # FCM: DROP FRAME
    for name, fits in (("premiere_25fps_effects.edl", "25, 29.97"), ("avid_cdl_loc_markers.edl", "23.976, 24, 25")):
        with pytest.raises(TimelineReadError, match=f"does not say its frame rate: its timecodes fit {fits}.*--rate"):
            read_timeline(corpus / "edl" / name)
    assert timeline_rate(read_timeline(corpus / "edl/premiere_25fps_effects.edl", rate=25)) == 25


def test_edl_record_start_becomes_global_start_and_loc_markers_are_a_batch(corpus):
    tl = read_timeline(corpus / "edl/avid_cdl_loc_markers.edl", rate=24)
    assert tl.global_start_time.value == 191724  # 02:13:08:12 at 24
    assert all(t.source_range is None for t in tl.tracks)
    sels = select_markers(tl)
    assert len(sels) == 37
    assert sels[0].clip.name == "117C-3-B" and sels[0].prompt == "Sc 117 INTERCUT"
    assert any("Norway" in s.prompt for s in sels)
    with pytest.raises(SelectionError, match="offline"):
        source_clip(tl, sels[0], None)


def test_edl_speed_effects_read_as_time_warps(corpus):
    tl = read_timeline(corpus / "edl/avid_2997df_colon_tc.edl")
    assert timeline_rate(tl) == Fraction(30000, 1001)
    warps = [e.time_scalar for c in tl.find_clips() for e in c.effects if isinstance(e, otio.schema.LinearTimeWarp)]
    assert warps and all(w > 0 for w in warps)


def test_hiero_float_rate_and_timewarp_effect(corpus):
    tl = read_timeline(corpus / "otio/hiero_timeline_sq001.otio")
    assert timeline_rate(tl) == Fraction(24000, 1001)
    refusals = []
    for ti, track in enumerate(tl.tracks):
        for clip in track.find_clips():
            if any(isinstance(e, otio.schema.TimeEffect) for e in clip.effects):
                with pytest.raises(UnsupportedEditError) as info:
                    time_scalar(clip)
                refusals.append(str(info.value))
    assert refusals and all("speed" in r or "freeze" in r or "reverse" in r for r in refusals)


def test_premiere_windows_paths_and_generators(corpus):
    tl = read_timeline(corpus / "fcp7xml/premiere_example.xml")
    urls = {c.name: c.media_reference for c in tl.find_clips()}
    paths = [str(media_path_of(r, None)) for r in urls.values() if isinstance(r, otio.schema.ExternalReference) and r.target_url]
    assert any(p.startswith("D:/media/") for p in paths)
    gens = [c for c in tl.find_clips() if isinstance(c.media_reference, otio.schema.GeneratorReference)]
    assert gens
    with pytest.raises(SelectionError, match="generator"):
        media_path_of(gens[0].media_reference, None)


def test_transitions_in_real_files_are_refused_inside_a_range(corpus):
    tl = read_timeline(corpus / "otio/resolve_effects.otio")
    track = tl.tracks[find_track(tl, "V1")]
    transition = next(iter(track.find_children(descended_from_type=otio.schema.Transition)))
    covered = track.range_of_child(transition)
    with pytest.raises(UnsupportedEditError, match="transition"):
        select_range(tl, str(int(covered.start_time.value)), str(int(covered.start_time.value + 2)))


def test_fcpxml_library_needs_a_timeline_name(corpus):
    with pytest.raises(TimelineReadError, match="choose one with --timeline"):
        read_timeline(corpus / "fcpxml/fcpx_example.fcpxml")
    tl = read_timeline(corpus / "fcpxml/fcpx_example.fcpxml", name="OpenTimeline_Project")
    sels = select_markers(tl)
    assert sels[0].prompt == "Marker 1"
    # compound clips show their top layer; every clip on V1 that shows traces to its media. The compound clips
    # are trimmed (frames 109-1008, then 57-356): the clips they trim away, and those a layer above covers,
    # do not show and are refused by name.
    hidden = []
    for n in range(1, len(clips_on_track(tl.tracks[find_track(tl, None)])) + 1):
        try:
            sel = select_clip(tl, f"#{n}")
        except SelectionError as exc:
            assert "trimmed out of its nest" in str(exc) or "a clip on a layer above covers it" in str(exc)
            hidden.append(n)
            continue
        assert sel.record_range.end_time_exclusive() <= tl.tracks[0].duration()
        source_clip(tl, sel, None)
    assert hidden == [2, 3, 5, 6, 11, 12, 14, 15, 16]


def test_nested_example_clips_are_found_inside_stacks(corpus):
    tl = read_timeline(corpus / "otio/nested_example.otio")
    sel = select_clip(tl, "Clip Inside A Stack 2")
    assert sel.record_range.start_time.value == 302
    with pytest.raises(SelectionError, match="offline"):
        source_clip(tl, sel, None)
