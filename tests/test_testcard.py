"""The indexed test media: the picture code survives what services do to it, the sound marks sit on their frames."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from ltx_retake.adapters.ffmpeg_exe import run_ffmpeg
from ltx_retake.adapters.media_probe import probe_media, read_frames
from ltx_retake.adapters.testcard import (audio_marks, encode_cells, mark_frequency, read_index, render_frame,
                                          write_indexed_clip)
from ltx_retake.errors import MediaError

from media_fixtures import RATES, clip_factory, indices  # noqa: F401  (clip_factory is a fixture)


def test_every_index_reads_back_from_a_clean_frame():
    for index in list(range(0, 300)) + [4095, 4096, 32767, 65534, 65535]:
        assert read_index(render_frame(index, 96, 54)) == index


def test_index_reads_in_any_quarter_turn_and_after_non_uniform_scaling():
    frame = render_frame(1234, 320, 180)
    for turns in range(4):
        assert read_index(np.rot90(frame, turns)) == 1234
    squeezed = frame[:, ::2]                     # half the width: an anamorphic squeeze
    assert read_index(squeezed) == 1234


def test_a_misread_is_refused_not_believed():
    frame = render_frame(777, 320, 180)
    rng = np.random.default_rng(7)
    assert read_index(np.full_like(frame, 128)) is None
    assert read_index(rng.integers(0, 256, frame.shape, dtype=np.uint8)) is None
    # flip one data cell at a time: never another index
    cells = encode_cells(777)
    for cell in range(1, 6):
        forged = frame.copy()
        h, w = frame.shape[:2]
        x0, x1 = int(w * (0.1 + cell * 0.8 / 7) + 6), int(w * (0.1 + (cell + 1) * 0.8 / 7) - 6)
        forged[int(h * 0.12):int(h * 0.28), x0:x1] = 0 if cells[cell] else 255
        assert read_index(forged) is None
    # a cross-fade of two frames reads as nothing rather than either
    blend = ((render_frame(100, 320, 180).astype(int) + render_frame(355, 320, 180).astype(int)) // 2).astype(np.uint8)
    assert read_index(blend) is None


@pytest.mark.parametrize("rate", RATES, ids=str)
def test_round_trip_through_h264_1080p_tint_and_border(rate, clip_factory, tmp_path):
    src = clip_factory(f"rt_{rate.numerator}_{rate.denominator}.mp4", frames=24, rate=rate)
    up = tmp_path / "up.mp4"
    run_ffmpeg(["-i", str(src), "-vf",
                "scale=1920:1080,drawbox=x=0:y=0:w=iw:h=ih:color=red@0.3:t=fill,"
                "drawbox=x=0:y=0:w=iw:h=ih:color=green:t=ih*0.06",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40", str(up)])
    down = tmp_path / "down.mp4"
    run_ffmpeg(["-i", str(up), "-vf", "scale=320:180", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40",
                str(down)])
    assert indices(up) == list(range(24))
    assert indices(down) == list(range(24))


def test_round_trip_when_the_picture_is_shrunk_inside_a_border(clip_factory, tmp_path):
    src = clip_factory("rt_24_1.mp4", frames=24, rate=Fraction(24))
    out = tmp_path / "padded.mp4"
    run_ffmpeg(["-i", str(src), "-vf", "scale=1690:950,pad=1920:1080:(ow-iw)/2:(oh-ih)/2:color=blue,"
                "drawbox=x=0:y=0:w=iw:h=ih:color=magenta@0.3:t=fill",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "45", str(out)])
    assert indices(out) == list(range(24))


@pytest.mark.parametrize("rate", RATES, ids=str)
def test_sound_marks_sit_on_their_frames(rate, clip_factory):
    every = max(1, round(rate / 2))
    src = clip_factory(f"rt_{rate.numerator}_{rate.denominator}.mp4", frames=24, rate=rate)
    marks = audio_marks(src)
    expected = [k for k in range(24) if k % every == 0]
    assert len(marks) == len(expected)
    for mark, k in zip(marks, expected):
        assert abs(mark.time - float(k / rate)) < 0.001
        assert abs(mark.frequency - mark_frequency(k, every)) < 30


def test_clip_options_codecs_and_rotation(clip_factory):
    prores = clip_factory("pr.mov", frames=10, rate=Fraction(25), codec="prores", timecode="10:00:00:00")
    info = probe_media(prores)
    assert (info.video_codec, info.audio_codec, info.start_timecode) == ("prores", "pcm_s16le", "10:00:00:00")
    assert indices(prores) == list(range(10))
    ntsc = probe_media(clip_factory("df.mp4", frames=4, rate=Fraction(30000, 1001), timecode="01:00:00:00",
                                    drop_frame=True))
    assert (ntsc.start_timecode, ntsc.drop_frame, ntsc.start_frame) == ("01:00:00;00", True, 107892)
    turned = clip_factory("turned.mp4", frames=6, rate=Fraction(24), rotation=90, audio=False, first_index=500)
    info = probe_media(turned)
    assert (info.rotation, info.display_width, info.display_height, info.has_audio) == (90, 180, 320, False)
    frames = read_frames(turned, range(6))
    assert frames[0].shape == (320, 180, 3)                        # upright
    assert [read_index(f) for f in frames.values()] == list(range(500, 506))


def test_audio_marks_of_a_silent_clip_is_a_media_error(clip_factory):
    with pytest.raises(MediaError, match="no audio"):
        audio_marks(clip_factory("mute.mp4", frames=4, audio=False))


def test_unknown_codec_is_refused(tmp_path):
    with pytest.raises(MediaError, match="codec"):
        write_indexed_clip(tmp_path / "x.mp4", frames=2, rate=Fraction(24), codec="vp9")
