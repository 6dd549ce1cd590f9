"""Seams nobody hears or sees: a changed sound crossfades from the source's at each edge of the window, a changed
picture can dissolve; measured on the samples and frames an NLE plays across each edge."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ltx_retake.adapters.ffmpeg_exe import run_ffmpeg
from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.ports import ConformSpec, CutSpec, RetakeMode

MEDIA = FfmpegMediaTool()
RATE = Fraction(24)
WINDOW = (24, 72)            # source frames [24, 72): seconds 1 to 3
CUT = CutSpec("", 0, 97, RATE)


def sound(path: Path) -> tuple[np.ndarray, int]:
    """The first channel of `path`'s sound as floats, and its sample rate."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate = stream.rate
        channels = stream.channels
        samples = np.concatenate([f.to_ndarray()[0] if f.format.is_planar else f.to_ndarray()[0][::channels]
                                  for f in c.decode(stream)])
    if np.issubdtype(samples.dtype, np.integer):   # PCM: as a share of full scale
        return samples.astype(np.float64) / float(np.iinfo(samples.dtype).max + 1), rate
    return samples.astype(np.float64), rate


def lavfi_clip(dest: Path, audio: str, seconds: float = 97 / 24, codec: str = "pcm_s16le") -> Path:
    """A small clip with `audio` (an ffmpeg lavfi source) as its sound."""
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c=gray:size=96x54:rate=24:duration={seconds}",
                "-f", "lavfi", "-i", audio, "-map", "0:v", "-map", "1:a",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", codec, "-ar", "48000",
                "-t", str(seconds), str(dest)], what="test clip")
    return dest


TONE_33 = "aevalsrc=exprs=0.0224*sin(2*PI*440*t):s=48000"          # -33 dBFS, at 0 where the window starts
TONE_OTHER = "aevalsrc=exprs=0.0224*cos(2*PI*1013*t):s=48000"      # at its peak there: a hard cut steps by 0.0224
NOISE_A = "anoisesrc=color=pink:seed=1:amplitude=0.05:sample_rate=48000"
NOISE_B = "anoisesrc=color=white:seed=7:amplitude=0.05:sample_rate=48000"


def edge_steps(source: np.ndarray, version: np.ndarray, start: int) -> tuple[float, float, float]:
    """What an NLE plays across the window: the source up to `start`, the version, the source again. The largest
    sample-to-sample step at each edge, and the largest step of the signals themselves away from the edges."""
    end = start + len(version)
    played = np.concatenate([source[:start], version, source[end:]])
    steps = np.abs(np.diff(played))
    edge_in, edge_out = steps[start - 1], steps[end - 1]
    own = np.concatenate([np.abs(np.diff(source[: start - 64])), np.abs(np.diff(version[64:-64])),
                          np.abs(np.diff(source[end + 64:]))])
    return float(edge_in), float(edge_out), float(own.max())


@pytest.mark.parametrize("before, after, codec", [(TONE_33, TONE_OTHER, "prores"), (NOISE_A, NOISE_B, "prores"),
                                                  (TONE_33, TONE_OTHER, "h264")], ids=["tones", "noise", "tones-aac"])
def test_a_changed_sound_crossfades_at_both_edges_with_no_step_beyond_its_own(tmp_path, before, after, codec):
    source = lavfi_clip(tmp_path / "source.mov", before)
    returned = lavfi_clip(tmp_path / "returned.mov", after, codec="aac")
    info = MEDIA.probe(source)
    start = WINDOW[0] * 48000 // 24
    results = {}
    for fade_ms in (0, 20):
        spec = ConformSpec(info, CUT, WINDOW[0], WINDOW[1] - WINDOW[0], WINDOW[0], RetakeMode.REPLACE_AUDIO,
                           codec=codec, crossfade_s=Fraction(fade_ms, 1000))
        version = MEDIA.conform(returned, spec, tmp_path / f"v{fade_ms}.mov")
        got, rate = sound(Path(version.path))
        src, _ = sound(source)
        played = (WINDOW[1] - WINDOW[0]) * 2000   # an NLE plays the clip's sound as long as its picture (AAC pads)
        assert rate == 48000 and len(got) >= played
        results[fade_ms] = edge_steps(src, got[:played], start)
    edge_in, edge_out, own = results[20]
    assert edge_in <= own * 1.02 and edge_out <= own * 1.02, results
    if before == TONE_33:  # without the crossfade the cut between two tones is a step far beyond either tone's own
        hard_in, hard_out, own_hard = results[0]
        assert max(hard_in, hard_out) > 3 * own_hard, results[0]


def test_the_middle_of_the_window_is_all_new_sound_and_the_edges_start_and_end_on_the_source(tmp_path):
    source = lavfi_clip(tmp_path / "source.mov", TONE_33)
    returned = lavfi_clip(tmp_path / "returned.mov", TONE_OTHER)
    spec = ConformSpec(MEDIA.probe(source), CUT, WINDOW[0], 48, WINDOW[0], RetakeMode.REPLACE_AUDIO_AND_VIDEO,
                       codec="prores", crossfade_s=Fraction(20, 1000))
    got, _ = sound(Path(MEDIA.conform(returned, spec, tmp_path / "v.mov").path))
    src, _ = sound(source)
    new, _ = sound(returned)
    start = 48000
    fade = 960
    assert np.allclose(got[0], src[start], atol=2e-4) and np.allclose(got[-1], src[start + len(got) - 1], atol=2e-4)
    middle = slice(fade, len(got) - fade)
    assert np.allclose(got[middle], new[start + fade: start + len(got) - fade], atol=2e-4)


def test_a_dissolve_blends_the_source_picture_into_the_new_one_over_n_frames(tmp_path):
    source = tmp_path / "black.mov"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=black:size=96x54:rate=24:duration=4.1", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", str(source)], what="test clip")
    returned = tmp_path / "white.mov"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=white:size=96x54:rate=24:duration=4.1", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p", "-frames:v", "97", str(returned)], what="test clip")
    spec = ConformSpec(MEDIA.probe(source), CUT, WINDOW[0], 48, WINDOW[0], RetakeMode.REPLACE_VIDEO, codec="prores",
                       dissolve_frames=4)
    version = MEDIA.conform(returned, spec, tmp_path / "v.mov")
    frames = MEDIA.read_frames(version.path, range(48))
    level = [float(frames[i].mean()) / 255 for i in range(48)]
    expected_in = [(i + 1) / 5 for i in range(4)]
    assert np.allclose(level[:4], expected_in, atol=0.04), level[:6]
    assert np.allclose(level[4:44], 1.0, atol=0.04) and np.allclose(level[44:], expected_in[::-1], atol=0.04), level[40:]


def test_the_local_preview_marks_the_sound_on_the_windows_exact_samples(tmp_path):
    """The offline engine's tone starts and stops on the window's first and last sample; none of the old sound is left
    inside (it used to switch on blocks of 256 samples, leaving 168 samples of the old sound and then a hard stop)."""
    from ltx_retake.adapters.local_service.engine import render_preview

    source = lavfi_clip(tmp_path / "source.mov", "aevalsrc=exprs=0.25|0.25:s=48000")   # a constant: any leak shows
    out = render_preview(source, tmp_path / "preview.mov", prompt="rain", start_time=1.0, duration=2.0,
                         mode="replace_audio", audio_codec="pcm_s16le")
    got, rate = sound(out.path)
    assert rate == 48000 and out.window == (24, 72)
    tone = 0.3 * np.sin(2 * np.pi * out.tone_hz * np.arange(len(got)) / 48000)
    inside = slice(48000, 144000)
    assert np.allclose(got[:48000], 0.25, atol=1e-3) and np.allclose(got[144000:], 0.25, atol=1e-3)
    assert np.allclose(got[inside], tone[inside], atol=1e-3)
