"""Delivering versions as H.264, ProRes or DNxHR: the codec, the content frame by frame, refusals, the journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import av
import pytest

from ltx_retake.adapters.local_service import Fault, LocalServiceConfig
from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.ffmpeg_exe import run_ffmpeg
from ltx_retake.adapters.services import open_service
from ltx_retake.adapters.testcard import write_indexed_clip
from ltx_retake.adapters.timeline_files import OtioFiles, read_timeline
from ltx_retake.compose import offline_wiring, wiring_for
from ltx_retake.errors import InputError, MediaError
from ltx_retake.journal import Journal
from ltx_retake.ports import ConformSpec, CutSpec, RetakeMode
from ltx_retake.progress import Step
from ltx_retake.jobs import Wiring
from ltx_retake.orders import RetakeOrder, order_from, order_json
from ltx_retake.runner import prepare, resume, run
from ltx_retake.settings import Settings, load_settings
from ltx_retake.timing import format_timecode

from media_fixtures import clip_factory, indices, leftovers, make_project, simulate_return  # noqa: F401
from test_end_to_end import check_window_by_content, shown

MEDIA = FfmpegMediaTool()
QUIRKS = LocalServiceConfig(int_fps=True, snap_8k1=True, audio_24k=True)
CODEC_NAMES = {"dnxhr": "dnxhd", "prores": "prores", "h264": "h264"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A 4 s, 24 fps project (320x180 .mov source, clips A 1 s, B 2 s, C 1 s) made once for the module."""
    folder = tmp_path_factory.mktemp("delivery")
    cut, _ = make_project(folder, Fraction(24), "01:00:00:00", seconds=4)
    return cut


def _order(cut, out, **kw) -> RetakeOrder:
    values = dict(timeline=cut, output=out, prompt="dusk", mode=RetakeMode.REPLACE_VIDEO, provider="local", model="m",
                  clip="B", media_dir=out.parent / "media")
    values.update(kw)
    return RetakeOrder(**values)


def _check_delivered(job, cut, output, codec: str) -> None:
    """The version is a .mov in `codec` with PCM sound, frame-accurate, and the new timeline shows it."""
    info = MEDIA.probe(job.version.path)
    assert job.version.path.suffix == ".mov"
    assert (info.video_codec, info.audio_codec) == (CODEC_NAMES[codec], "pcm_s16le")
    assert (info.width, info.height, info.frame_count, info.audio_rate) == (320, 180, job.plan.window_frames, 48000)
    assert info.start_timecode == format_timecode(86400 + job.plan.window_start_frame, Fraction(24))
    rng = job.plan.record_range
    rs, re_ = int(rng.start_time.value), int(rng.end_time_exclusive().value)
    new = read_timeline(output)
    check_window_by_content(read_timeline(cut), new, job, rs, re_)
    assert shown(new, rs)[0] == str(job.version.path)


def test_a_prores_version_is_a_mov_with_pcm_frame_for_frame_and_a_dnxhr_one_reuses_it_without_paying(project, tmp_path):
    with Journal(tmp_path / "journal.sqlite") as journal, open_service("local", Settings(), local_config=QUIRKS) as opened:
        wiring = Wiring(MEDIA, OtioFiles(), opened.service, opened.host)
        first = run(_order(project, tmp_path / "one.otio", delivery="prores"), wiring, journal=journal)
        (earlier,) = first.jobs
        assert first.exit_code == 0, earlier.error
        assert earlier.version.path.name == "B_retake_v001.mov"
        _check_delivered(earlier, project, first.output, "prores")
        # the identical request in another codec: that version is delivered again as DNxHR, not paid for again
        second = run(_order(project, tmp_path / "two.otio", delivery="dnxhr"), wiring, journal=journal)
        assert opened.local.submits["fal"] == 1, "the same request was paid for again to change its codec"
    (job,) = second.jobs
    assert second.exit_code == 0, job.error
    assert job.reused_from == earlier.request_id
    # versions count per clip: two.otio's first version of B is v001 too; one.otio's file of that name is kept
    assert job.version.path.name == "B_retake_v001.mov" and job.version.path.parent == earlier.version.path.parent / "two"
    assert job.version.provenance["sha256"] == job.version_sha
    _check_delivered(job, project, second.output, "dnxhr")
    assert leftovers(job.version.path.parent) == []


def test_an_unknown_delivery_or_a_picture_too_small_for_dnxhr_is_refused_before_anything_is_sent(project, tmp_path):
    small = _small_project(tmp_path)
    with open_service("local", Settings()) as opened:
        wiring = Wiring(MEDIA, OtioFiles(), opened.service, opened.host)
        with pytest.raises(InputError, match=r"Unknown delivery 'mxf'.*auto.*h264.*prores or dnxhr.*Resolve"):
            run(_order(project, tmp_path / "out.otio", delivery="mxf"), wiring)
        with pytest.raises(InputError, match=r"DNxHR needs a picture of at least 256x120.*160x90.*prores"):
            run(_order(small, tmp_path / "out.otio", delivery="dnxhr"), wiring)
        assert opened.local.submits == {"fal": 0, "runcomfy": 0} and not opened.local.requests
    assert not (tmp_path / "out.otio").exists() and not (tmp_path / "media").exists()
    # the small source is fine in the other codecs, and each names its file by its container
    for delivery, suffix in (("auto", ".mov"), ("h264", ".mp4"), ("prores", ".mov")):
        _, (job,), _ = prepare(_order(small, tmp_path / "out.otio", delivery=delivery), offline_wiring(Settings()))
        assert job.version.path.suffix == suffix


def _small_project(folder):
    """The project's layout over a 160x90 source (smaller than DNxHR allows)."""
    cut, _ = make_project(folder, Fraction(24), "01:00:00:00", seconds=4)
    write_indexed_clip(folder / "source.mov", frames=96, rate=Fraction(24), size=(160, 90), timecode="01:00:00:00")
    return cut


def test_the_delivery_survives_the_journal_and_a_resume_delivers_the_same_codec(project, tmp_path):
    order = _order(project, tmp_path / "out.otio", delivery="dnxhr")
    assert order_from(json.loads(json.dumps(order_json(order)))) == order
    old = order_json(order)
    del old["delivery"]                                     # a record written before deliveries existed
    assert order_from(old).delivery == "auto"
    broken = LocalServiceConfig(int_fps=True, snap_8k1=True, audio_24k=True,
                                faults=[Fault(route="download", kind="corrupt")])
    with Journal(tmp_path / "journal.sqlite") as journal, \
            wiring_for("local", Settings(), local_config=broken) as wiring:
        first = run(order, wiring, journal=journal)
        (failed,) = first.jobs
        assert failed.step == Step.FAILED and failed.recoverable, failed.error
        assert journal.run(first.run_id).order["delivery"] == "dnxhr"
        again = resume(first.run_id, wiring, journal)
    (job,) = again.jobs
    assert again.exit_code == 0, job.error
    _check_delivered(job, project, again.output, "dnxhr")


# ---------------------------------------------------------------- the conform itself

@pytest.fixture(scope="module")
def odd_job(tmp_path_factory):
    """An odd-sized (321x181), anamorphic (4:3 pixels) source with 24-bit PCM sound, its cut and a service return."""
    root = tmp_path_factory.mktemp("odd_job")
    made = write_indexed_clip(root / "made.mov", frames=40, rate=Fraction(24), size=(321, 181), sar=Fraction(4, 3),
                              codec="mjpeg")
    src = root / "odd.mov"
    run_ffmpeg(["-i", str(made), "-map", "0", "-c:v", "copy", "-c:a", "pcm_s24le", str(src)], what="Making 24-bit sound")
    source = MEDIA.probe(src)
    assert (source.width, source.height, source.sample_aspect, source.audio_codec) == (321, 181, Fraction(4, 3), "pcm_s24le")
    cut = CutSpec(str(src), 0, 33, Fraction(24))
    MEDIA.cut(cut, root / "cut.mp4")
    ret = simulate_return(root / "cut.mp4", root / "ret.mp4", window_offset=8, window_frames=20, size=(640, 360))
    return source, cut, ret


def _spec(source, cut, mode: str, codec: str) -> ConformSpec:
    return ConformSpec(source, cut, 8, 20, 8, RetakeMode(mode), timecode="00:00:00:08", codec=codec)


@pytest.mark.parametrize("mode, pcm", [("replace_video", "pcm_s24le"), ("replace_audio_and_video", "pcm_s16le")])
def test_dnxhr_of_an_odd_sized_anamorphic_source_keeps_its_shape_and_a_deep_source_sound(mode, pcm, odd_job, tmp_path):
    source, cut, ret = odd_job
    info = MEDIA.conform(ret, _spec(source, cut, mode, "dnxhr"), tmp_path / "v.mov")
    assert (info.video_codec, info.audio_codec) == ("dnxhd", pcm)       # the source's 24 bits, or the service's AAC
    assert (info.width, info.height, info.sample_aspect, info.frame_count) == (322, 182, Fraction(4, 3), 20)
    with av.open(str(tmp_path / "v.mov")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv422p"
    assert indices(tmp_path / "v.mov") == list(range(8, 28))
    assert leftovers(tmp_path) == []


def test_dnxhr_refuses_a_picture_too_small_and_a_file_that_is_not_a_mov(clip_factory, odd_job, tmp_path):
    source, cut, ret = odd_job
    with pytest.raises(MediaError, match=r"dnxhr version cannot be written as v.mp4.*\.mov"):
        MEDIA.conform(ret, _spec(source, cut, "replace_video", "dnxhr"), tmp_path / "v.mp4")
    small = MEDIA.probe(clip_factory("small.mp4", frames=40, size=(160, 90), audio=False))
    with pytest.raises(MediaError, match=r"DNxHR needs a picture of at least 256x120.*160x90.*prores"):
        MEDIA.conform(ret, _spec(small, CutSpec(small.path, 0, 33, Fraction(24)), "replace_video", "dnxhr"),
                      tmp_path / "v.mov")
    with pytest.raises(MediaError, match=r"Unknown version codec 'mpeg2'.*h264, prores, dnxhr"):
        MEDIA.conform(ret, _spec(source, cut, "replace_video", "mpeg2"), tmp_path / "v.mov")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the command line

def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ltx_retake", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_the_cli_takes_deliver_and_falls_back_on_the_delivery_setting(tmp_path):
    small = _small_project(tmp_path)
    base = ["retake", small, "--clip", "B", "--prompt", "x", "-o", tmp_path / "out.otio", "--dry-run"]
    by_setting = _cli(*base, env={"LTX_RETAKE_DELIVERY": "dnxhr"})
    assert by_setting.returncode == 2 and "DNxHR needs a picture of at least 256x120" in by_setting.stderr
    by_flag = _cli(*base, "--deliver", "prores", env={"LTX_RETAKE_DELIVERY": "dnxhr"})     # the flag wins
    assert by_flag.returncode == 0, by_flag.stderr
    unknown = _cli(*base, "--deliver", "mxf")
    assert unknown.returncode == 2 and "invalid choice: 'mxf'" in unknown.stderr
    assert load_settings(env={"LTX_RETAKE_DELIVERY": "prores"}).delivery == "prores"
    assert "Resolve on Linux" in " ".join(_cli("retake", "--help").stdout.split())
    assert not (tmp_path / "out.otio").exists()
