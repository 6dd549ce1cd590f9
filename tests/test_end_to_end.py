"""The whole pipeline over real HTTP on loopback, checked by content: every frame the new timeline shows.

Sources carry their frame index in the picture and sync marks in the sound. After a retake through the
local service (fal or RunComfy protocol, with the real model's quirks on), the test decodes what the new
timeline shows at every frame of the window and around it and reads each frame's index.
"""

from __future__ import annotations

import math
import threading
import re
from fractions import Fraction

import numpy as np
import opentimelineio as otio
import pytest

from ltx_retake.adapters.local_service import LocalServiceConfig
from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.testcard import audio_marks, mark_frequency, read_index
from ltx_retake.adapters.timeline_files import read_timeline, write_timeline
from ltx_retake.compose import wiring_for
from ltx_retake.errors import InputError, SelectionError
from ltx_retake.ports import RetakeMode
from ltx_retake.progress import EventLog, Step
from ltx_retake.adapters.services import open_service
from ltx_retake.adapters.timeline_files import OtioFiles
from ltx_retake.jobs import Wiring
from ltx_retake.orders import RetakeOrder
from ltx_retake.runner import run
from ltx_retake.selection import clip_at
from ltx_retake.settings import Settings
from ltx_retake.timing import exact_rate, to_frames

from media_fixtures import make_project

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange
QUIRKS = LocalServiceConfig(int_fps=True, snap_8k1=True, audio_24k=True)
MEDIA = FfmpegMediaTool()


def shown(tl: otio.schema.Timeline, t: int) -> tuple[str, int]:
    """The file and file frame the timeline shows at record frame `t` of V1 (active media reference)."""
    rate = exact_rate(tl.tracks[0][0].source_range.duration.rate)
    clip, rng = clip_at(tl, 0, RT(t, float(rate)))
    ref = clip.media_reference
    scalar = Fraction(1)
    for effect in clip.effects:
        scalar *= Fraction(effect.time_scalar)
    offset = to_frames(RT(t, float(rate)) - rng.start_time, rate) * scalar
    start = to_frames(clip.source_range.start_time, rate)
    origin = to_frames(ref.available_range.start_time, rate) if ref.available_range else MEDIA.probe(ref.target_url).start_frame
    frame = start + offset - origin
    assert frame.denominator == 1, "a frame boundary must map to a whole file frame"
    return ref.target_url, int(frame)


def read_shown(tl, frames: range) -> dict[int, tuple[str, int | None, np.ndarray]]:
    wanted: dict[str, dict[int, int]] = {}
    for t in frames:
        path, f = shown(tl, t)
        wanted.setdefault(path, {})[t] = f
    out = {}
    for path, by_t in wanted.items():
        pics = MEDIA.read_frames(path, set(by_t.values()))
        for t, f in by_t.items():
            out[t] = (path, read_index(pics[f]), pics[f])
    return out


CASES = [
    (Fraction(24), "01:00:00:00", "fal"),
    (Fraction(24000, 1001), "00:59:59:00", "runcomfy"),
    (Fraction(25), "10:00:00:00", "fal"),
    (Fraction(30000, 1001), "01:00:00;00", "runcomfy"),
    (Fraction(60000, 1001), "00:59:58;00", "fal"),
]


@pytest.mark.slow
@pytest.mark.parametrize("rate,tc,protocol", CASES, ids=["24", "23.976", "25", "29.97DF", "59.94DF"])
def test_every_frame_of_the_window_and_around_it_is_the_right_one(tmp_path, rate, tc, protocol):
    cut, start = make_project(tmp_path, rate, tc)
    original = read_timeline(cut)
    one = round(rate)
    rs = one + round(rate / 2)                     # half a second into B
    re_ = rs + math.ceil(Fraction(5, 2) * rate)    # 2.5 s window
    order = RetakeOrder(timeline=cut, output=tmp_path / "out.otio", prompt="a stormy sky", mode=RetakeMode.REPLACE_VIDEO,
                        provider="local", model="fal-ai/ltx-2/retake-video", range=(str(rs), str(re_)))
    log = EventLog()
    with wiring_for("local", Settings(), local_protocol=protocol, local_config=QUIRKS) as wiring:
        outcome = run(order, wiring, log)
    assert outcome.exit_code == 0, [j.error for j in outcome.jobs]
    (job,) = outcome.jobs
    assert log.steps(job.id) == [Step.PLANNED, Step.CUTTING, Step.UPLOADING, Step.SUBMITTING, Step.QUEUED, Step.GENERATING,
                                 Step.DOWNLOADING, Step.CONFORMING, Step.READY, Step.SPLICING, Step.SAVING, Step.SPLICED]
    new = read_timeline(outcome.output)
    assert new.duration() == original.duration()
    around = range(rs - 8, re_ + 8)
    before, after = read_shown(original, around), read_shown(new, around)
    for t in around:
        expected = shown(original, t)[1]
        assert before[t][1] == expected, f"the source itself misreads at {t}"
        path, index, pic = after[t]
        assert index == expected, f"record frame {t}: the new timeline shows frame {index}, expected {expected}"
        inside = rs <= t < re_
        assert (path == str(job.version.path)) == inside, f"record frame {t} comes from {path}"
        if inside:  # the preview engine's mark shows: the border differs from the source's
            border_now, border_was = pic[:4].astype(int).mean(axis=(0, 1)), before[t][2][:4].astype(int).mean(axis=(0, 1))
            assert np.abs(border_now - border_was).max() > 30

    # sound against picture: replace_video keeps the source's sound, mark for mark, in sync with the frames
    info = MEDIA.probe(job.version.path)
    assert info.frame_count == re_ - rs and info.frame_rate == rate and (info.width, info.height) == (320, 180)
    assert info.audio_rate == 48000
    assert info.start_timecode == _tc(start + job.plan.window_start_frame, rate)
    heard = audio_marks(job.version.path)
    every = max(1, round(rate / 2))
    expected_marks = [i for i in range(job.plan.window_start_frame, job.plan.window_start_frame + job.plan.window_frames) if i % every == 0]
    assert len(heard) == len(expected_marks)
    for mark, i in zip(heard, expected_marks):
        assert abs(mark.time - (i - job.plan.window_start_frame) / rate) < 0.004
        assert mark.frequency == pytest.approx(mark_frequency(i, every), abs=30)


def _tc(frame: int, rate: Fraction) -> str:
    from ltx_retake.timing import format_timecode

    return format_timecode(frame, rate)


@pytest.mark.slow
def test_replace_audio_keeps_the_picture_and_takes_the_new_sound_in_sync(tmp_path):
    rate = Fraction(30000, 1001)
    cut, _ = make_project(tmp_path, rate, "01:00:00;00")
    order = RetakeOrder(timeline=cut, output=tmp_path / "out.otio", prompt="a church bell", mode=RetakeMode.REPLACE_AUDIO,
                        provider="local", model="m", clip="B")
    with wiring_for("local", Settings(), local_config=QUIRKS) as wiring:
        outcome = run(order, wiring)
    (job,) = outcome.jobs
    assert outcome.exit_code == 0, job.error
    version = job.version.path
    info = MEDIA.probe(version)
    assert info.frame_count == job.plan.window_frames and info.audio_rate == 48000
    frames = MEDIA.read_frames(version, range(0, info.frame_count, 7))
    for i, pic in frames.items():  # the original picture, untinted
        assert read_index(pic) == job.plan.window_start_frame + i
    # the new sound: the prompt's tone fills the window, and lasts exactly as long as the picture
    from ltx_retake.adapters.local_service import tone_frequency
    import av

    with av.open(str(version)) as c:
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
    assert abs(len(samples) / 48000 - info.frame_count / float(rate)) < 0.03
    spectrum = np.abs(np.fft.rfft(samples[: 48000]))
    assert abs(np.argmax(spectrum) * 48000 / len(samples[:48000]) - tone_frequency("a church bell")) < 5


@pytest.mark.slow
def test_placement_above_over_real_http_and_versions_switch(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(25), "01:00:00:00", suffix=".otio")
    with wiring_for("local", Settings(), local_protocol="runcomfy") as wiring:
        first = run(RetakeOrder(timeline=cut, output=tmp_path / "v1.otio", prompt="fog", mode=RetakeMode.REPLACE_AUDIO_AND_VIDEO,
                                provider="local", model="m", range=("50", "110"), placement="above"), wiring)
        assert first.exit_code == 0, first.jobs[0].error
        second = run(RetakeOrder(timeline=tmp_path / "v1.otio", output=tmp_path / "v2.otio", prompt="fog", mode=RetakeMode.REPLACE_VIDEO,
                                 provider="local", model="m", range=("50", "110")), wiring)
        assert second.exit_code == 0, second.jobs[0].error
    tl = read_timeline(tmp_path / "v2.otio")
    assert [t.name for t in tl.tracks] == ["V1", "LTX Retakes", "LTX Retakes (sound)"]   # the first one changed the sound
    assert second.jobs[0].version.name == "B_retake_v002"  # numbering continues across placements
    assert sorted(p.name for p in first.media_dir.iterdir()) == ["B_retake_v001.mov", "B_retake_v002.mov"]


def check_window_by_content(original, new, job, rs: int, re_: int, margin: int = 4) -> None:
    around = range(rs - margin, re_ + margin)
    before, after = read_shown(original, around), read_shown(new, around)
    for t in around:
        assert before[t][1] == shown(original, t)[1]
        assert after[t][1] == before[t][1], f"record frame {t}: shows {after[t][1]}, expected {before[t][1]}"
        assert (after[t][0] == str(job.version.path)) == (rs <= t < re_)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".edl", ".xml"])
def test_edl_and_fcp7_xml_inputs(tmp_path, suffix):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=5)
    exported = write_timeline(read_timeline(cut), tmp_path / f"cut{suffix}")
    original = read_timeline(exported, rate=24 if suffix == ".edl" else None)  # an EDL does not say its rate; the run reads it from the media
    order = RetakeOrder(timeline=exported, output=tmp_path / "out.otio", prompt="snow", mode=RetakeMode.REPLACE_VIDEO,
                        provider="local", model="m", clip="B")
    with wiring_for("local", Settings(), local_config=QUIRKS) as wiring:
        outcome = run(order, wiring)
    (job,) = outcome.jobs
    assert outcome.exit_code == 0, job.error
    rng = job.plan.record_range
    check_window_by_content(original, read_timeline(outcome.output), job, int(rng.start_time.value), int(rng.end_time_exclusive().value))


@pytest.mark.slow
def test_a_clip_at_double_speed_is_retaken_in_media_time(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(25), "01:00:00:00", seconds=8)
    tl = read_timeline(cut)
    b = tl.tracks[0][1]
    b.source_range = TR(b.source_range.start_time, RT(60, 25))  # 60 record frames showing 120 media frames
    b.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    tl.tracks[0][2].source_range = TR(tl.tracks[0][2].source_range.start_time, RT(25, 25))
    fast = write_timeline(tl, tmp_path / "fast.otio")
    order = RetakeOrder(timeline=fast, output=tmp_path / "out.otio", prompt="wind", mode=RetakeMode.REPLACE_VIDEO,
                        provider="local", model="m", range=("35", "70"))
    with wiring_for("local", Settings()) as wiring:
        outcome = run(order, wiring)
    (job,) = outcome.jobs
    assert outcome.exit_code == 0, job.error
    assert job.plan.window_frames == 70 and job.plan.scalar == 2
    check_window_by_content(tl, read_timeline(outcome.output), job, 35, 70)


def test_bad_inputs_leave_nothing_behind(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    cases = [
        (dict(range=("20", "30")), SelectionError, "crosses a cut"),
        (dict(range=("30", "40"), mode=RetakeMode.REPLACE_VIDEO, prompt=""), InputError, "prompt is empty"),
        (dict(range=("0", "200")), SelectionError, "outside track"),
        (dict(clip="nope"), SelectionError, "No clip named 'nope'"),
        (dict(clip="B", output=cut), InputError, "is the input timeline"),
    ]
    with wiring_for("local", Settings()) as wiring:
        for kw, error, message in cases:
            args = dict(timeline=cut, output=tmp_path / "out.otio", prompt="x", mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m")
            args.update(kw)
            with pytest.raises(error, match=message):
                run(RetakeOrder(**args), wiring)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.slow
@pytest.mark.parametrize("fault,prompt,exit_code,message", [
    ("corrupt", "rain", 3, "conform|decod|invalid|not a"),
    (None, "rain [fail]", 4, "failed"),
    (None, "rain [refuse]", 4, "refused|policy|content"),
])
def test_a_bad_result_is_an_error_never_a_version(tmp_path, fault, prompt, exit_code, message):
    from ltx_retake.adapters.local_service import Fault

    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4)
    config = LocalServiceConfig(faults=[Fault(route="download", kind=fault)] if fault else [])
    order = RetakeOrder(timeline=cut, output=tmp_path / "out.otio", prompt=prompt, mode=RetakeMode.REPLACE_VIDEO,
                        provider="local", model="m", clip="B")
    with wiring_for("local", Settings(), local_config=config) as wiring:
        outcome = run(order, wiring)
    (job,) = outcome.jobs
    assert job.step == Step.FAILED and outcome.exit_code == exit_code
    assert re.search(message, job.error, re.IGNORECASE), job.error
    assert job.request_id  # kept for recovery
    assert outcome.output is None and not (tmp_path / "out.otio").exists()
    assert not list(outcome.media_dir.glob("*_retake_v*"))


def test_offline_media_is_named_before_anything_is_sent(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4)
    tl = read_timeline(cut)
    tl.tracks[0][1].media_reference.target_url = str(tmp_path / "gone.mov")
    moved = write_timeline(tl, tmp_path / "moved.otio")
    with open_service("local", Settings()) as opened:
        wiring = Wiring(MEDIA, OtioFiles(), opened.service, opened.host)
        with pytest.raises(SelectionError, match="gone.mov is not on this machine"):
            run(RetakeOrder(timeline=moved, output=tmp_path / "out.otio", prompt="x", mode=RetakeMode.REPLACE_VIDEO,
                            provider="local", model="m", clip="B"), wiring)
        assert opened.local.submits == {"fal": 0, "runcomfy": 0} and not opened.local.requests
    assert not (tmp_path / "out.otio").exists() and not (tmp_path / "moved_retakes").exists()


def test_the_input_is_protected_through_dots_links_and_force_and_the_format_is_checked_first(tmp_path):
    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4)
    link = tmp_path / "link.otio"
    link.symlink_to(cut)
    before = cut.read_bytes()
    base = dict(timeline=cut, prompt="x", mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m", clip="B")
    with open_service("local", Settings()) as opened:
        wiring = Wiring(MEDIA, OtioFiles(), opened.service, opened.host)
        for output in (tmp_path / "x" / ".." / "cut.otio", link):
            with pytest.raises(InputError, match="is the input timeline"):
                run(RetakeOrder(output=output, overwrite=True, **base), wiring)
        with pytest.raises(InputError, match="Cannot tell which timeline format"):
            run(RetakeOrder(output=tmp_path / "cut.mov", **base), wiring)
        assert opened.local.submits == {"fal": 0, "runcomfy": 0}
    with pytest.raises(InputError, match="Refusing to overwrite the input"):
        write_timeline(read_timeline(cut), link, overwrite=True, protect=(cut,))
    assert cut.read_bytes() == before


@pytest.mark.parametrize("protocol", ["fal", "runcomfy"])
def test_cancel_during_a_long_quiet_generation_is_seen_and_cancels_on_the_service(tmp_path, protocol):
    import threading
    import time

    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", seconds=4)
    cancel = threading.Event()
    log = EventLog()
    generating = threading.Event()
    log.subscribe(lambda e: generating.set() if e.step == Step.GENERATING else None)
    with open_service("local", Settings(), local_protocol=protocol,
                      local_config=LocalServiceConfig(queue_delay=0.0, processing_delay=60.0)) as opened:
        wiring = Wiring(MEDIA, OtioFiles(), opened.service, opened.host)
        box = {}
        worker = threading.Thread(target=lambda: box.setdefault("outcome", run(RetakeOrder(
            timeline=cut, output=tmp_path / "out.otio", prompt="x", mode=RetakeMode.REPLACE_VIDEO, provider="local",
            model="m", clip="B"), wiring, log, cancel)))
        worker.start()
        assert generating.wait(30), "the job never started generating"
        asked = time.monotonic()
        cancel.set()
        worker.join(30)
        assert not worker.is_alive()
        assert time.monotonic() - asked < 12  # within one poll interval, though nothing changed on the service
        (job,) = box["outcome"].jobs
        assert job.request_id and opened.local.requests_to("cancel", protocol)
        if protocol == "fal":
            assert job.step == Step.CANCELLED
        else:  # RunComfy cancels only queued jobs: this one runs on and is billed, so it is kept for `resume`
            assert job.step == Step.FAILED and job.recoverable and "paid for and kept" in job.error
    assert not (tmp_path / "out.otio").exists()


@pytest.mark.slow
def test_two_runs_at_once_on_one_clip_never_share_a_version_number(tmp_path):
    """Both plan before either writes a file: the journal's versions in flight keep their numbers apart."""
    from ltx_retake.journal import Journal
    from ltx_retake.progress import Cancel

    cut, _ = make_project(tmp_path, Fraction(24), "01:00:00:00", suffix=".otio")
    outcomes = {}
    with Journal(tmp_path / "journal.sqlite") as journal, \
            wiring_for("local", Settings(), local_config=LocalServiceConfig(processing_delay=0.5)) as wiring:
        def one(name: str, rng: tuple[str, str]) -> None:
            outcomes[name] = run(RetakeOrder(timeline=cut, output=tmp_path / f"{name}.otio", prompt=name, mode=RetakeMode.REPLACE_VIDEO,
                                             provider="local", model="m", range=rng), wiring, journal=journal)
        threads = [threading.Thread(target=one, args=(n, r)) for n, r in (("a", ("30", "80")), ("b", ("60", "110")))]
        [t.start() for t in threads]
        [t.join() for t in threads]
        stopped = Cancel()
        stopped.stop_job("job1")  # a per-job cancel stops that job before it sends anything
        cancelled = run(RetakeOrder(timeline=cut, output=tmp_path / "c.otio", prompt="c", mode=RetakeMode.REPLACE_VIDEO,
                                    provider="local", model="m", clip=("#1", "#3")), wiring, cancel=stopped, journal=journal)
    names = sorted(o.jobs[0].version.path.name for o in outcomes.values())
    assert names == ["B_retake_v001.mov", "B_retake_v002.mov"], names
    assert all(o.exit_code == 0 for o in outcomes.values())
    assert [j.step.value for j in cancelled.jobs] == ["cancelled", "spliced"]
    assert [j.plan.clip_name for j in cancelled.jobs] == ["A", "C"]


@pytest.mark.slow
def test_variable_frame_rate_phone_footage_is_retaken_by_time(tmp_path):
    """A clip of a VFR file (avg 16.7 fps) on a 24 fps timeline: its frames are counted by time at the clip's rate;
    the cut and the version are constant-rate at 24 and the version shows what the clip showed there."""
    import av

    from media_fixtures import corpus_video

    path = corpus_video("awesome_movie_vfr.mov")
    frames = 170                                                          # 7.08 s of its 7.35 s
    tl = otio.schema.Timeline(name="phone")
    track = otio.schema.Track(name="V1")
    track.append(otio.schema.Clip(name="walk", media_reference=otio.schema.ExternalReference(target_url=str(path)),
                                  source_range=TR(RT(0, 24), RT(frames, 24))))
    tl.tracks.append(track)
    cut = write_timeline(tl, tmp_path / "phone.otio")
    order = RetakeOrder(timeline=cut, output=tmp_path / "out.otio", prompt="birdsong", mode=RetakeMode.REPLACE_AUDIO,
                        provider="local", model="m", range=("60", "120"))   # the picture kept: compared with the source's
    with wiring_for("local", Settings()) as wiring:
        outcome = run(order, wiring)
    (job,) = outcome.jobs
    assert outcome.exit_code == 0, job.error
    version = MEDIA.probe(job.version.path)
    assert (version.frame_count, version.frame_rate, version.variable_frame_rate) == (60, 24, False)
    available = read_timeline(outcome.output).tracks[0][1].media_references()["retake_v001"].available_range
    assert available.start_time.value == 60 and available.duration.value == 60     # whole frames of the clip's time
    with av.open(str(path)) as container:                                 # what the clip shows at 24 fps, by time
        stream = container.streams.video[0]
        shots = [(f.pts * stream.time_base, f.to_ndarray(format="rgb24")[::8, ::8].astype(np.int16))
                 for f in container.decode(stream)]
    got = MEDIA.read_frames(job.version.path, range(0, 60, 7))
    for i, pic in got.items():                     # slot 60 + i shows the latest source frame that rounds to it
        small = pic[::8, ::8].astype(np.int16)
        expect = [img for t, img in shots if round(t * 24) <= 60 + i][-1]
        best = min(np.abs(small - img).mean() for _, img in shots)
        assert np.abs(small - expect).mean() <= best + 0.5, f"version frame {i}"
