"""FfmpegMediaTool on real media: probe, frame-exact cuts, conforms in every mode, verification, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ltx_retake.adapters.ffmpeg_exe import run_ffmpeg
from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.media_cut import even_size
from ltx_retake.adapters.media_probe import decode_count, timecode_frame
from ltx_retake.timing import exact_rate, format_timecode
from ltx_retake.adapters.testcard import audio_marks, mark_frequency, read_index
from ltx_retake.errors import MediaError
from ltx_retake.ports import ConformSpec, CutSpec, MediaTool, RetakeMode

from media_fixtures import (RATES, SERVICE_MARK_HZ, clip_factory, corpus_video,  # noqa: F401
                            indices, leftovers, simulate_return)

TOOL = FfmpegMediaTool()
NTSC = Fraction(30000, 1001)


def tc24(clip_factory) -> Path:
    """The 24 fps, 30-frame clip with timecode 01:00:00:00 and 44.1 kHz mono sound."""
    return clip_factory("tc_24.mp4", frames=30, rate=Fraction(24), timecode="01:00:00:00", audio_rate=44100,
                        audio_channels=1)


def marks_at(path: Path, hz: float | None = None, tolerance: float = 60) -> list[float]:
    return [m.time for m in audio_marks(path) if hz is None or abs(m.frequency - hz) < tolerance]


# ---------------------------------------------------------------- probe

def test_it_is_a_media_tool():
    assert isinstance(TOOL, MediaTool)


@pytest.mark.parametrize("rate, tc, frame, drop", [
    (Fraction(24), "01:00:00:00", 86400, False),
    (Fraction(24000, 1001), "01:00:00:00", 86400, False),
    (Fraction(25), "10:00:00:00", 900000, False),
    (NTSC, "01:00:00;00", 107892, True),
    (Fraction(60000, 1001), "00:10:00;00", 35964, True),
], ids=str)
def test_probe_reads_exact_rate_count_and_timecode(rate, tc, frame, drop, clip_factory):
    path = clip_factory(f"tc_{rate.numerator}.mp4", frames=30, rate=rate, timecode=tc, audio_rate=44100,
                        audio_channels=1)
    info = TOOL.probe(path)
    assert info.frame_rate == rate and isinstance(info.frame_rate, Fraction)
    assert info.frame_count == 30 == decode_count(path)
    assert (info.start_timecode, info.start_frame, info.drop_frame) == (tc, frame, drop)
    assert (info.width, info.height, info.display_width, info.display_height) == (320, 180, 320, 180)
    assert (info.has_audio, info.audio_rate, info.audio_channels) == (True, 44100, 1)
    assert (info.video_codec, info.audio_codec, info.variable_frame_rate) == ("h264", "aac", False)
    assert info.duration_s == pytest.approx(float(30 / rate))


def test_timecode_arithmetic_round_trips_drop_frame():
    for rate in (NTSC, Fraction(60000, 1001)):
        for frame in list(range(0, 40000, 397)) + [1799, 1800, 17981, 17982, 107892]:
            tc = format_timecode(frame, rate, True)
            assert timecode_frame(tc, rate) == (frame, True)
    assert format_timecode(1800, NTSC, True) == "00:01:00;02"     # frames ;00 and ;01 do not exist
    assert format_timecode(17982, NTSC, True) == "00:10:00;00"
    assert timecode_frame("01:00:00:00", Fraction(25)) == (90000, False)


def test_exact_rate_snaps_only_what_stands_for_a_standard_rate():
    assert exact_rate(Fraction(2997, 100)) == NTSC
    assert exact_rate(Fraction(23976, 1000)) == Fraction(24000, 1001)
    assert exact_rate(Fraction(24)) == 24
    assert exact_rate(Fraction(625, 26)) == Fraction(625, 26)       # an iPhone's 24.04 stays what it is


def test_probe_of_the_avid_mov_reads_its_tmcd_timecode():
    info = TOOL.probe(corpus_video("avid_linear_speed_effects_h264_tc.mov"))
    assert (info.start_timecode, info.start_frame, info.frame_rate, info.frame_count) == ("01:00:00:00", 86400, 24, 50)
    assert (info.audio_codec, info.audio_rate, info.audio_channels) == ("pcm_s16be", 44100, 2)


def test_probe_of_real_phone_and_anamorphic_media():
    phone = TOOL.probe(corpus_video("iphone4s_rotated90.mov"))
    assert (phone.rotation, phone.width, phone.height, phone.display_width, phone.display_height) == (90, 640, 480, 480, 640)
    assert phone.frame_count == 25 and phone.audio_channels == 1
    wide = TOOL.probe(corpus_video("h264_640x480_sar16x9_anamorphic.mp4"))
    assert (wide.sample_aspect, wide.display_width, wide.display_height, wide.frame_count) == (Fraction(16, 9), 1138, 480, 1)


def test_probe_flags_a_variable_frame_rate():
    path = corpus_video("awesome_movie_vfr.mov")
    info = TOOL.probe(path)
    assert info.variable_frame_rate and info.frame_count == 123 == decode_count(path)
    assert not TOOL.probe(corpus_video("iphone4s_rotated90.mov")).variable_frame_rate   # one-tick jitter is not VFR


@pytest.mark.parametrize("how", ["fragmented", "trimmed", "cut short"])
def test_probe_of_fragmented_and_trimmed_mp4_counts_the_frames_that_decode(how, clip_factory, tmp_path):
    """A fragmented MP4 (screen recorders) and a lossless trim (an edit list starting mid-GOP, its frames before
    the in point marked discard) are counted from the index, not by demuxing the file; a fragmented file cut short
    is not trusted to its index."""
    from ltx_retake.adapters.media_probe import _frame_times

    src = clip_factory("bframes_96.mp4", frames=96)                      # veryfast: B-frames, one GOP
    out = tmp_path / f"{how.replace(' ', '_')}.mp4"
    seek = ["-ss", "1.3"] if how == "trimmed" else []
    frag = ["-movflags", "frag_keyframe+empty_moov", "-frag_duration", "500000"] if how != "trimmed" else []
    run_ffmpeg([*seek, "-i", str(src), "-map", "0", "-c", "copy", *frag, str(out)])
    if how == "cut short":                  # its last fragment's header lists frames the file no longer holds
        out.write_bytes(out.read_bytes()[: out.stat().st_size * 6 // 10])
        with av.open(str(out)) as container:
            _, count, from_index = _frame_times(container, container.streams.video[0], out)
        assert not from_index and count < 96
        return
    info = TOOL.probe(out)
    with av.open(str(out)) as container:
        _, count, from_index = _frame_times(container, container.streams.video[0], out)
    assert from_index and count == info.frame_count == decode_count(out)
    assert not info.variable_frame_rate and info.frame_rate == 24
    if how == "trimmed":                    # the first frame that decodes is the in point, and the count ends there
        assert 0 < info.frame_count < 96 and indices(out) == list(range(96 - info.frame_count, 96))


def test_probe_refuses_what_is_not_a_video(tmp_path, clip_factory):
    with pytest.raises(MediaError, match="no media file"):
        TOOL.probe(tmp_path / "missing.mov")
    text = tmp_path / "notes.mov"
    text.write_text("not a movie\n" * 50)
    with pytest.raises(MediaError, match="not a media file"):
        TOOL.probe(text)
    wav = tmp_path / "sound.wav"
    run_ffmpeg(["-i", str(tc24(clip_factory)), "-vn", str(wav)])
    with pytest.raises(MediaError, match="no video stream"):
        TOOL.probe(wav)
    png = tmp_path / "still.png"
    run_ffmpeg(["-i", str(tc24(clip_factory)), "-frames:v", "1", str(png)])
    with pytest.raises(MediaError, match="still image"):
        TOOL.probe(png)


# ---------------------------------------------------------------- cut

@pytest.mark.parametrize("rate", RATES, ids=str)
def test_cut_is_frame_exact_padded_and_in_sync(rate, clip_factory, tmp_path):
    every = max(1, round(rate / 2))
    src = clip_factory(f"cut_{rate.numerator}.mp4", frames=150, rate=rate)
    spec = CutSpec(str(src), start_frame=53, frame_count=61, frame_rate=rate, pad_head=2, pad_tail=3)
    info = TOOL.cut(spec, tmp_path / "cut.mp4")
    assert (info.frame_count, info.frame_rate, info.audio_rate, info.audio_channels) == (66, rate, 48000, 2)
    assert (info.video_codec, info.audio_codec, info.start_timecode) == ("h264", "aac", None)
    assert indices(tmp_path / "cut.mp4") == [53] * 2 + list(range(53, 114)) + [113] * 3
    marks = audio_marks(tmp_path / "cut.mp4")
    expected = [k for k in range(53, 114) if k % every == 0]
    assert [round(m.time, 3) for m in marks] == [round(float((k - 53 + 2) / rate), 3) for k in expected]
    assert all(abs(m.frequency - mark_frequency(k, every)) < 30 for m, k in zip(marks, expected))
    # faststart: the index comes first, so a service can start reading before the upload ends
    assert (tmp_path / "cut.mp4").read_bytes()[4:8] == b"ftyp" and b"moov" in (tmp_path / "cut.mp4").read_bytes()[:4096]
    assert leftovers(tmp_path) == []


def test_cut_near_the_end_of_a_long_source_seeks_and_stays_exact(clip_factory, tmp_path):
    src = clip_factory("long.mp4", frames=1500, rate=Fraction(24), size=(128, 72), mark_every=24)
    info = TOOL.cut(CutSpec(str(src), 1390, 97, Fraction(24)), tmp_path / "late.mp4")
    assert info.frame_count == 97
    assert indices(tmp_path / "late.mp4") == list(range(1390, 1487))
    assert [round(t, 3) for t in marks_at(tmp_path / "late.mp4")] == [round((k - 1390) / 24, 3) for k in (1392, 1416, 1440, 1464)]


def test_cut_at_another_rate_maps_frames_by_index_and_stretches_the_sound(clip_factory, tmp_path):
    src = clip_factory("cut_24000.mp4", frames=150, rate=Fraction(24000, 1001))
    info = TOOL.cut(CutSpec(str(src), 24, 96, Fraction(24)), tmp_path / "c.mp4")
    assert (info.frame_count, info.frame_rate) == (96, 24)
    assert indices(tmp_path / "c.mp4") == list(range(24, 120))
    assert [round(t, 3) for t in marks_at(tmp_path / "c.mp4")] == [round((k - 24) / 24, 3) for k in range(24, 120, 12)]


def test_cut_of_a_silent_source_has_a_silent_48k_track(clip_factory, tmp_path):
    src = clip_factory("mute24.mp4", frames=40, audio=False)
    info = TOOL.cut(CutSpec(str(src), 5, 30, Fraction(24), pad_tail=1), tmp_path / "c.mp4")
    assert (info.has_audio, info.audio_rate, info.audio_channels, info.frame_count) == (True, 48000, 2, 31)
    assert audio_marks(tmp_path / "c.mp4") == []


def test_cut_keeps_sync_when_the_sound_starts_after_the_picture(clip_factory, tmp_path):
    src = clip_factory("sync24.mp4", frames=96, mark_every=6)
    late = tmp_path / "late_audio.mp4"
    run_ffmpeg(["-i", str(src), "-itsoffset", "0.25", "-i", str(src), "-map", "0:v", "-map", "1:a", "-c", "copy", str(late)])
    TOOL.cut(CutSpec(str(late), 0, 24, Fraction(24)), tmp_path / "head.mp4")
    assert [round(t, 3) for t in marks_at(tmp_path / "head.mp4")] == [0.25, 0.5, 0.75]
    TOOL.cut(CutSpec(str(late), 30, 24, Fraction(24)), tmp_path / "mid.mp4")
    # each mark sounds 0.25 s after its frame, so frame 24's mark lands on the cut's first frame (30)
    assert [round(t, 3) for t in marks_at(tmp_path / "mid.mp4")] == [0.0, 0.25, 0.5, 0.75]


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_cut_of_a_rotated_source_is_upright(rotation, clip_factory, tmp_path):
    src = clip_factory(f"rot{rotation}.mp4", frames=30, rotation=rotation, audio=False)
    info = TOOL.cut(CutSpec(str(src), 4, 20, Fraction(24)), tmp_path / "up.mp4")
    portrait = rotation in (90, 270)
    assert (info.width, info.height, info.rotation) == ((180, 320, 0) if portrait else (320, 180, 0))
    cut = TOOL.read_frames(tmp_path / "up.mp4", [0])[0]
    original = TOOL.read_frames(src, [4])[4]                 # read upright from the display matrix
    assert np.abs(cut.astype(int) - original.astype(int)).mean() < 3
    assert indices(tmp_path / "up.mp4") == list(range(4, 24))


def test_cut_of_an_anamorphic_source_has_square_pixels(clip_factory, tmp_path):
    src = clip_factory("ana.mp4", frames=30, sar=Fraction(4, 3))
    assert TOOL.probe(src).sample_aspect == Fraction(4, 3)
    info = TOOL.cut(CutSpec(str(src), 0, 25, Fraction(24)), tmp_path / "sq.mp4")
    assert (info.width, info.height, info.sample_aspect) == (428, 180, 1)
    assert indices(tmp_path / "sq.mp4") == list(range(25))


def test_sizes_are_even_and_never_above_uhd():
    assert even_size(1138, 480) == (1138, 480)
    assert even_size(427, 181) == (428, 182)
    assert even_size(5120, 2880) == (3840, 2160)
    assert even_size(2160, 4096) == (2026, 3840)
    assert max(even_size(8000, 1000)) == 3840


def test_cut_of_a_variable_rate_source_is_constant_rate_by_time(tmp_path):
    path = corpus_video("awesome_movie_vfr.mov")
    rate = Fraction(24)
    info = TOOL.cut(CutSpec(str(path), 40, 60, rate, pad_tail=5), tmp_path / "cfr.mp4")
    assert (info.frame_count, info.frame_rate, info.variable_frame_rate) == (65, rate, False)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        shots = [(f.pts * stream.time_base, f.to_ndarray(format="rgb24")[::4, ::4].astype(np.int16))
                 for f in container.decode(stream)]
    got = TOOL.read_frames(tmp_path / "cfr.mp4", range(60))
    for i in range(0, 60, 7):                           # slot i shows the latest frame that rounds to it
        slot = 40 + i
        frame = got[i][::4, ::4].astype(np.int16)
        expect = [img for t, img in shots if round(t * rate) <= slot][-1]
        best = min(np.abs(frame - img).mean() for _, img in shots)
        assert np.abs(frame - expect).mean() <= best + 0.5


def test_cut_of_real_phone_and_avid_media(tmp_path):
    phone = corpus_video("iphone4s_rotated90.mov")
    info = TOOL.cut(CutSpec(str(phone), 0, 25, TOOL.probe(phone).frame_rate, pad_tail=8), tmp_path / "p.mp4")
    assert (info.frame_count, info.width, info.height, info.audio_rate) == (33, 480, 640, 48000)
    avid = corpus_video("avid_linear_speed_effects_h264_tc.mov")
    info = TOOL.cut(CutSpec(str(avid), 9, 41, Fraction(24)), tmp_path / "a.mp4")
    assert (info.frame_count, info.frame_rate, info.start_timecode) == (41, 24, None)


def test_cut_outside_the_media_is_refused_and_leaves_nothing(clip_factory, tmp_path):
    src = clip_factory("mute24.mp4", frames=40, audio=False)
    with pytest.raises(MediaError, match="has 40 frames"):
        TOOL.cut(CutSpec(str(src), 30, 20, Fraction(24)), tmp_path / "no.mp4")
    with pytest.raises(MediaError, match="no media file"):
        TOOL.cut(CutSpec(str(tmp_path / "gone.mp4"), 0, 20, Fraction(24)), tmp_path / "no.mp4")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- conform

@pytest.fixture(scope="module")
def ntsc_job(clip_factory, tmp_path_factory):
    """A 29.97 source with drop-frame timecode, its cut, and a service return at 29 fps, 8k+1, 24 kHz, tinted."""
    root = tmp_path_factory.mktemp("ntsc_job")
    src = clip_factory("ntsc_src.mp4", frames=160, rate=NTSC, timecode="01:00:00;00", mark_every=6)
    source = TOOL.probe(src)
    cut = CutSpec(str(src), 30, 100, NTSC, pad_tail=4)            # 104 frames: the service keeps 97
    TOOL.cut(cut, root / "cut.mp4")
    ret = simulate_return(root / "cut.mp4", root / "returned.mp4", window_offset=24, window_frames=60,
                          fps=Fraction(29), snap_8k1=True, audio_rate=24000)
    assert TOOL.probe(ret).frame_count == 97
    return source, cut, ret, root


def _spec(source, cut, mode, offset=24, frames=60, codec="h264"):
    start = cut.start_frame + offset - cut.pad_head
    tc = format_timecode(source.start_frame + start, source.frame_rate, source.drop_frame)
    return ConformSpec(source, cut, offset, frames, start, RetakeMode(mode), timecode=tc, codec=codec)


@pytest.mark.parametrize("mode", [m.value for m in RetakeMode])
def test_conform_takes_the_window_by_index_in_every_mode(mode, ntsc_job, tmp_path):
    source, cut, ret, _ = ntsc_job
    spec = _spec(source, cut, mode)
    out = tmp_path / "v001.mp4"
    info = TOOL.conform(ret, spec, out)
    assert (info.frame_count, info.frame_rate, info.width, info.height) == (60, NTSC, 320, 180)
    assert (info.audio_rate, info.audio_channels, info.start_timecode) == (48000, 2, "01:00:01;24")
    assert spec.timecode == "01:00:01;24" and info.start_frame == source.start_frame + 54
    assert indices(out) == list(range(54, 114))
    frames = TOOL.read_frames(out, [0, 30, 59])
    redness = np.mean([f[..., 0].mean() - f[..., 2].mean() for f in frames.values()])
    from_service = mode != "replace_audio"
    assert (redness > 30) == from_service                 # the service tinted its window; the source is not
    if not from_service:
        original = TOOL.read_frames(source.path, [54])[54]
        assert np.abs(frames[0].astype(int) - original.astype(int)).mean() < 3
    marks = audio_marks(out)
    if mode == "replace_video":                           # the source's own sound, on its own frames
        expected = [(k - 54) / NTSC for k in range(54, 114) if k % 6 == 0]
        assert all(abs(m.frequency - mark_frequency(k, 6)) < 30 for m, k in zip(marks, range(54, 114, 6)))
    else:                                                 # the service's sound, re-timed from 29 to 29.97 fps, pitch kept
        expected = [Fraction(j) / NTSC for j in range(0, 60, 6)]
        assert all(abs(m.frequency - SERVICE_MARK_HZ) < 30 for m in marks), [m.frequency for m in marks]
    assert len(marks) == len(expected)
    assert all(abs(m.time - float(t)) < 0.004 for m, t in zip(marks, expected)), [m.time for m in marks]
    assert leftovers(tmp_path) == []


def test_conform_replace_video_of_a_silent_source_has_no_sound(clip_factory, tmp_path):
    src = clip_factory("mute24.mp4", frames=40, audio=False)
    source = TOOL.probe(src)
    cut = CutSpec(str(src), 0, 33, Fraction(24))
    TOOL.cut(cut, tmp_path / "cut.mp4")
    ret = simulate_return(tmp_path / "cut.mp4", tmp_path / "ret.mp4", window_offset=8, window_frames=20,
                          size=(640, 360))
    info = TOOL.conform(ret, _spec(source, cut, "replace_video", 8, 20), tmp_path / "v.mov")
    assert (info.has_audio, info.frame_count) == (False, 20)
    assert indices(tmp_path / "v.mov") == list(range(8, 28))
    info = TOOL.conform(ret, _spec(source, cut, "replace_audio", 8, 20), tmp_path / "a.mp4")
    assert (info.has_audio, info.audio_rate, info.audio_channels) == (True, 48000, 2)


def test_conform_to_prores_mov_with_pcm_and_timecode(ntsc_job, tmp_path):
    source, cut, ret, _ = ntsc_job
    info = TOOL.conform(ret, _spec(source, cut, "replace_video", codec="prores"), tmp_path / "v.mov")
    assert (info.video_codec, info.audio_codec, info.start_timecode, info.frame_count) == ("prores", "pcm_s16le", "01:00:01;24", 60)
    assert indices(tmp_path / "v.mov") == list(range(54, 114))
    with pytest.raises(MediaError, match=".mov"):
        TOOL.conform(ret, _spec(source, cut, "replace_video", codec="prores"), tmp_path / "v.mp4")


def test_conform_of_an_anamorphic_source_is_anamorphic_again(clip_factory, tmp_path):
    src = clip_factory("ana.mp4", frames=30, sar=Fraction(4, 3))
    source = TOOL.probe(src)
    cut = CutSpec(str(src), 0, 25, Fraction(24))
    TOOL.cut(cut, tmp_path / "cut.mp4")
    ret = simulate_return(tmp_path / "cut.mp4", tmp_path / "ret.mp4", window_offset=4, window_frames=17,
                          size=(960, 404))
    info = TOOL.conform(ret, _spec(source, cut, "replace_audio_and_video", 4, 17), tmp_path / "v.mp4")
    assert (info.width, info.height, info.sample_aspect, info.display_width) == (320, 180, Fraction(4, 3), 427)
    assert indices(tmp_path / "v.mp4") == list(range(4, 21))


def test_conform_of_a_rotated_source_is_upright(clip_factory, tmp_path):
    src = clip_factory("rot90.mp4", frames=30, rotation=90, audio=False)
    source = TOOL.probe(src)
    cut = CutSpec(str(src), 0, 25, Fraction(24))
    TOOL.cut(cut, tmp_path / "cut.mp4")
    ret = simulate_return(tmp_path / "cut.mp4", tmp_path / "ret.mp4", window_offset=4, window_frames=17,
                          size=(540, 960), audio=False)
    info = TOOL.conform(ret, _spec(source, cut, "replace_video", 4, 17), tmp_path / "v.mp4")
    assert (info.width, info.height, info.rotation, info.has_audio) == (180, 320, 0, False)
    assert indices(tmp_path / "v.mp4") == list(range(4, 21))
    with pytest.raises(MediaError, match="no sound"):
        TOOL.conform(ret, _spec(source, cut, "replace_audio", 4, 17), tmp_path / "a.mp4")


def test_conform_refuses_a_return_too_short_for_the_window(ntsc_job, tmp_path):
    source, cut, ret, _ = ntsc_job
    with pytest.raises(MediaError, match="returned 97 frames, but the window needs frames up to 100"):
        TOOL.conform(ret, _spec(source, cut, "replace_video", offset=40, frames=60), tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_conform_refuses_a_return_resampled_to_another_rate(clip_factory, tmp_path):
    """241 frames at 25 fps come back as 231 at 24 fps: taken by index, the window would drift by frames."""
    src = clip_factory("pal241.mp4", frames=241, rate=Fraction(25), audio_rate=48000)
    source = TOOL.probe(src)
    cut = CutSpec(str(src), 0, 241, Fraction(25))
    TOOL.cut(cut, tmp_path / "cut.mp4")
    ret = simulate_return(tmp_path / "cut.mp4", tmp_path / "ret.mp4", window_offset=100, window_frames=60,
                          fps=Fraction(24), resample=True, size=(640, 360))
    assert decode_count(ret) == 231                # long enough for the window: only the count gives it away
    out = tmp_path / "out" / "v.mp4"
    with pytest.raises(MediaError, match=r"returned 231 frames for an input of 241 frames \(a usable return has "
                                         r"241\); the window cannot be located frame-accurately, so the result "
                                         r"was not used\. .*retake again"):
        TOOL.conform(ret, _spec(source, cut, "replace_video", 100, 60), out)
    assert not out.exists() and (not out.parent.exists() or list(out.parent.iterdir()) == [])


def test_conform_accepts_only_the_whole_cut_or_its_8k1_snap(ntsc_job, tmp_path):
    """The 104-frame cut may come back with 104 or 97 frames (both tested above), never with, say, 100."""
    source, cut, _, root = ntsc_job
    ret = simulate_return(root / "cut.mp4", tmp_path / "ret100.mp4", window_offset=24, window_frames=60,
                          fps=Fraction(29), keep_frames=100, size=(640, 360))
    with pytest.raises(MediaError, match=r"returned 100 frames for an input of 104 frames \(a usable return has "
                                         r"104, or 97 after the model's snap to 8k\+1\)"):
        TOOL.conform(ret, _spec(source, cut, "replace_audio_and_video"), tmp_path / "v.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ret100.mp4", "ret100.wav"]
    whole = simulate_return(root / "cut.mp4", tmp_path / "ret104.mp4", window_offset=24, window_frames=60,
                            size=(640, 360))
    TOOL.conform(whole, _spec(source, cut, "replace_video"), tmp_path / "v.mp4")
    assert indices(tmp_path / "v.mp4") == list(range(54, 114))


@pytest.mark.parametrize("faststart", [True, False], ids=["index-first", "index-last"])
def test_conform_refuses_a_truncated_return_and_writes_nothing(faststart, ntsc_job, tmp_path):
    source, cut, _, root = ntsc_job
    ret = simulate_return(root / "cut.mp4", tmp_path / "full.mp4", window_offset=24, window_frames=60,
                          size=(640, 360), faststart=faststart)
    data = ret.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "out" / "v.mp4"
    with pytest.raises(MediaError, match="(damaged|incomplete|cannot be used)"):
        TOOL.conform(broken, _spec(source, cut, "replace_video"), out)
    assert not out.exists() and (not out.parent.exists() or list(out.parent.iterdir()) == [])


def test_conform_refuses_a_return_that_is_not_a_video(ntsc_job, tmp_path):
    source, cut, _, _ = ntsc_job
    junk = tmp_path / "result.mp4"
    junk.write_bytes(b"<html>502 Bad Gateway</html>")
    with pytest.raises(MediaError, match="cannot be used"):
        TOOL.conform(junk, _spec(source, cut, "replace_video"), tmp_path / "v.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.mp4"]


@pytest.mark.parametrize("name, mode", [("awesome_movie_vfr.mov", "replace_audio"),
                                        ("iphone4s_rotated90.mov", "replace_video")])
def test_conform_of_real_phone_media(name, mode, tmp_path):
    path = corpus_video(name)
    source = TOOL.probe(path)
    cut = CutSpec(str(path), 0, 25, source.frame_rate)
    TOOL.cut(cut, tmp_path / "cut.mp4")
    ret = simulate_return(tmp_path / "cut.mp4", tmp_path / "ret.mp4", window_offset=3, window_frames=17,
                          fps=Fraction(int(source.frame_rate)), snap_8k1=True, size=(960, 540))
    info = TOOL.conform(ret, _spec(source, cut, mode, 3, 17), tmp_path / "v.mp4")
    assert (info.frame_count, info.frame_rate) == (17, source.frame_rate)
    assert (info.display_width, info.display_height, info.rotation) == (source.display_width, source.display_height, 0)
    assert (info.audio_rate, info.audio_channels) == (source.audio_rate, source.audio_channels)


# ---------------------------------------------------------------- verify, frames, sheet

def test_verify_decodes_and_checks_count_and_rate(clip_factory):
    src = tc24(clip_factory)
    assert TOOL.verify(src, 30, Fraction(24)).frame_count == 30
    with pytest.raises(MediaError, match="has 30 frames, not the 31"):
        TOOL.verify(src, 31, Fraction(24))
    with pytest.raises(MediaError, match="runs at 24 fps"):
        TOOL.verify(src, 30, Fraction(25))


def test_read_frames_is_exact_and_says_when_a_frame_does_not_exist(clip_factory):
    src = tc24(clip_factory)
    frames = TOOL.read_frames(src, [29, 0, 17])
    assert {i: read_index(f) for i, f in frames.items()} == {0: 0, 17: 17, 29: 29}
    with pytest.raises(MediaError, match="only 30 frames"):
        TOOL.read_frames(src, [30])


def test_contact_sheet_writes_a_labelled_png(clip_factory, tmp_path):
    src = tc24(clip_factory)
    dest = TOOL.contact_sheet([("before", [(src, 3), (src, 4)]), ("after", [(src, 5, "v001"), src])],
                              tmp_path / "sheet.png", thumb_height=90)
    with av.open(str(dest)) as container:
        frame = next(container.decode(video=0))
    assert frame.height == 6 + 2 * (90 + 14 + 12) and frame.width > 2 * 160
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- Ctrl-C in the terminal

_CTRL_C_CHILD = """
import signal, sys
from fractions import Fraction
from pathlib import Path
from ltx_retake.adapters.ffmpeg_exe import ffmpeg_path, run_ffmpeg
from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.errors import MediaError

heard = []
signal.signal(signal.SIGINT, lambda *_: heard.append(1))      # like the CLI: Ctrl-C asks for a clean cancel
which, dest = sys.argv[1], Path(sys.argv[2])
ffmpeg_path()                                                   # imageio-ffmpeg checks its binary by running it
print("ready", flush=True)
try:
    if which == "run_ffmpeg":                                   # -re: reads its 1.5 s input in real time
        run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1.5", "-c:v", "mpeg4",
                    str(dest)], what="The long job")
    else:                                                       # frames piped to ffmpeg's stdin
        write_indexed_clip(dest, frames=1000, rate=Fraction(24), audio=False)
except MediaError as exc:
    print("MediaError:", exc)
    sys.exit(3)
print("finished", len(heard))
"""


def _ffmpeg_child(parent: int, timeout: float) -> int:
    """The pid of the ffmpeg `parent` started (once it runs ffmpeg itself, not the forked Python)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            if int(rest[1]) == parent and "ffmpeg" in comm:
                return int(entry.name)
        time.sleep(0.005)
    raise AssertionError("ffmpeg never started")


@pytest.mark.skipif(not hasattr(os, "killpg") or not Path("/proc/self/stat").exists(),
                    reason="needs POSIX process groups and /proc")
@pytest.mark.parametrize("which", ["run_ffmpeg", "testcard"])
def test_ctrl_c_in_the_terminal_does_not_kill_ffmpeg(which, tmp_path):
    """Ctrl-C is SIGINT to the terminal's whole foreground group; ffmpeg must not be in it, or a cancel mid-cut
    turns into a MediaError (exit 3) instead of a clean cancellation."""
    script = tmp_path / "child.py"
    script.write_text(_CTRL_C_CHILD)
    # The child leads its own process group, as a shell's foreground job does.
    proc = subprocess.Popen([sys.executable, str(script), which, str(tmp_path / "out.mp4")], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        _ffmpeg_child(proc.pid, timeout=30)
        os.killpg(proc.pid, signal.SIGINT)                     # what the terminal does on Ctrl-C
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out.split()) == (0, ["finished", "1"]), out + err    # heard by us, not by ffmpeg
    assert decode_count(tmp_path / "out.mp4") == (1000 if which == "testcard" else 38)
