"""Property-based tests: random timelines and selections through reading, planning, splicing and writing.

Whatever the timeline and the selection, every step succeeds or raises one of the project's named errors (with
a sentence for a message); a splice changes only its window; a write is whole or leaves the destination as it
was. The runs are derandomized (the same examples every time, no example database written); for a deeper,
random search set LTX_RETAKE_PROPERTY_EXAMPLES, e.g. to 5000.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from ltx_retake.adapters.timeline_files import OtioFiles, read_timeline, write_timeline
from ltx_retake.errors import InputError, RetakeError, SpliceError
from ltx_retake.limits import limits_for
from ltx_retake.metadata import NS
from ltx_retake.plan import media_path_of, plan_retake, source_clip
from ltx_retake.ports import MediaInfo, RetakeMode
from ltx_retake.selection import clips_on_track, select_clip, select_markers, select_range, timeline_rate
from ltx_retake.splice import Version, linked_sound, next_version_number, place_above, splice_version
from ltx_retake.timing import exact_rate, format_timecode
from ltx_retake.versions import list_versions, use_version

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

BASE_DIR = Path("/proj/edit")

# (the rate as a file stores it, the rate it stands for): OTIO keeps floats, so both spellings occur.
RATES = [
    (24000 / 1001, Fraction(24000, 1001)),
    (23.976, Fraction(24000, 1001)),
    (24.0, Fraction(24)),
    (25.0, Fraction(25)),
    (30000 / 1001, Fraction(30000, 1001)),
    (29.97, Fraction(30000, 1001)),
    (30.0, Fraction(30)),
    (50.0, Fraction(50)),
    (60000 / 1001, Fraction(60000, 1001)),
    (59.94, Fraction(60000, 1001)),
]

# Media the random clips point at: local paths in every spelling the planner reads, and some it refuses.
MEDIA_URLS = ["/m/a.mov", "/m/b.mov", "file:///m/c.mov", "media/d.mov", "http://example.com/e.mov", ""]
CLIP_NAMES = ["a", "b", "sc01_sh010.mov", "a", "c d"]
PROMPTS = ["", "sky", "make it rain"]

DEEPER = os.environ.get("LTX_RETAKE_PROPERTY_EXAMPLES")
SETTINGS = dict(deadline=None, derandomize=DEEPER is None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@dataclass
class Media:
    """What a random media file is: where its first frame sits in source time, how long it is, its rate."""

    origin: int       # source frame (at the clip's rate) of the file's first frame
    frames: int
    rate: Fraction    # the file's real rate; sometimes not the timeline's
    has_video: bool = True


@dataclass
class Scenario:
    """A random timeline, the media its clips point at, and the rate it was built at."""

    timeline: otio.schema.Timeline
    media: dict[str, Media]
    native: float
    exact: Fraction

    def info(self, path: Path, *, shorter: int = 0) -> MediaInfo | None:
        for url, m in self.media.items():
            try:
                p = media_path_of(otio.schema.ExternalReference(target_url=url), BASE_DIR)
            except RetakeError:
                continue
            if p == path:
                frames = max(1, m.frames - shorter)
                nominal = round(m.rate)
                return MediaInfo(path=str(p), frame_rate=m.rate, frame_count=frames, width=320, height=180,
                                 display_width=320, display_height=180, has_video=m.has_video, has_audio=True,
                                 audio_rate=48000, audio_channels=2,
                                 start_timecode=format_timecode(m.origin, m.rate) if m.origin else None,
                                 start_frame=m.origin, duration_s=float(frames / m.rate),
                                 drop_frame=nominal in (30, 60) and m.rate.denominator == 1001)
        return None


@st.composite
def media_pool(draw, exact: Fraction) -> dict[str, Media]:
    pool = {}
    for url in MEDIA_URLS:
        nominal = round(exact)
        origin = draw(st.sampled_from([0, 0, 1000, 86400, 3600 * nominal]))
        rate = exact if draw(st.integers(0, 4)) else draw(st.sampled_from([r for _, r in RATES]))
        frames = draw(st.one_of(st.integers(30, 3000), st.just(5000)))
        pool[url] = Media(origin=origin, frames=frames, rate=rate, has_video=draw(st.integers(0, 9)) > 0)
    return pool


@st.composite
def a_clip(draw, native: float, media: dict[str, Media]) -> otio.schema.Clip:
    name = draw(st.sampled_from(CLIP_NAMES))
    rate = native if draw(st.integers(0, 9)) else draw(st.sampled_from([r for r, _ in RATES]))
    url = draw(st.sampled_from(MEDIA_URLS[:4] * 4 + MEDIA_URLS[4:]))
    m = media[url]
    offset = draw(st.one_of(st.integers(0, max(0, m.frames - 1)), st.integers(-40, m.frames + 40)))
    duration = draw(st.one_of(st.integers(1, 700), st.integers(1, 60)))
    kind = draw(st.sampled_from(["external"] * 16 + ["missing", "generator", "sequence"]))
    if kind == "external":
        ref = otio.schema.ExternalReference(target_url=url)
        if draw(st.booleans()):
            ref.available_range = TR(RT(m.origin, rate), RT(m.frames, rate))
    elif kind == "missing":
        ref = otio.schema.MissingReference()
    elif kind == "generator":
        ref = otio.schema.GeneratorReference(generator_kind="SolidColor", available_range=TR(RT(0, rate), RT(10000, rate)))
    else:
        ref = otio.schema.ImageSequenceReference(target_url_base="/m/seq/", name_prefix="f.", name_suffix=".exr",
                                                 rate=rate, available_range=TR(RT(0, rate), RT(10000, rate)))
    source = TR(RT(m.origin + offset, rate), RT(duration, rate))
    if kind == "external" and ref.available_range is not None and draw(st.integers(0, 7)) == 0:
        source = None  # the clip plays all of its media (OTIO reads the length from the reference)
    clip = otio.schema.Clip(name=name, media_reference=ref, source_range=source)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(-60, duration + 60))
        clip.markers.append(otio.schema.Marker(
            name=draw(st.sampled_from(PROMPTS)),
            marked_range=TR(RT(m.origin + offset + at, rate), RT(draw(st.sampled_from([0, 1, 24, 100])), rate)),
            comment=draw(st.sampled_from(PROMPTS)),
        ))
    effect = draw(st.sampled_from([None] * 6 + ["warp", "warp", "freeze", "curve"]))
    if effect == "warp":
        clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=draw(st.sampled_from([0.5, 2.0, 1.0, 1.5, -1.0, 0.0]))))
    elif effect == "freeze":
        clip.effects.append(otio.schema.FreezeFrame())
    elif effect == "curve":
        clip.effects.append(otio.schema.TimeEffect(name="TimeWarp", effect_name="TimeWarp"))
    clip.enabled = draw(st.integers(0, 9)) > 0
    return clip


def a_gap(native: float):
    return st.integers(1, 200).map(lambda n: otio.schema.Gap(source_range=TR(RT(0, native), RT(n, native))))


@st.composite
def a_nest(draw, native: float, media: dict[str, Media]) -> otio.schema.Stack:
    stack = otio.schema.Stack(name=draw(st.sampled_from(["nest", ""])))
    for _ in range(draw(st.integers(1, 2))):
        inner = otio.schema.Track(name="inner")
        for _ in range(draw(st.integers(1, 3))):
            inner.append(draw(st.one_of(a_clip(native, media), a_clip(native, media), a_gap(native))))
        add_transitions(draw, inner)
        if draw(st.integers(0, 3)) == 0:
            total = round(inner.duration().rescaled_to(native).value)
            start = draw(st.integers(0, max(0, total - 1)))
            inner.source_range = TR(RT(start, native), RT(draw(st.integers(1, max(1, total - start))), native))
        stack.append(inner)
    if draw(st.integers(0, 5)) == 0:
        stack.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    return stack


def add_transitions(draw, track: otio.schema.Track) -> None:
    """A dissolve at some cuts, never longer than half of either neighbour (as an NLE allows)."""
    i = 1
    while i < len(track):
        before, after = track[i - 1], track[i]
        if draw(st.integers(0, 3)) == 0 and not isinstance(before, otio.schema.Transition):
            rate = before.duration().rate
            room_in = int(before.duration().value) // 2
            room_out = int(after.duration().rescaled_to(rate).value) // 2
            if room_in and room_out:
                t = otio.schema.Transition(name=draw(st.sampled_from(["", "dissolve"])),
                                           in_offset=RT(draw(st.integers(0, room_in)), rate),
                                           out_offset=RT(draw(st.integers(0, room_out)), rate))
                track.insert(i, t)
                i += 1
        i += 1


@st.composite
def a_track(draw, native: float, media: dict[str, Media], kind: str, name: str) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=kind)
    for _ in range(draw(st.integers(1, 6))):
        which = draw(st.sampled_from(["clip"] * 6 + ["gap", "nest"]))
        if which == "clip":
            track.append(draw(a_clip(native, media)))
        elif which == "gap":
            track.append(draw(a_gap(native)))
        else:
            track.append(draw(a_nest(native, media)))
    add_transitions(draw, track)
    for _ in range(draw(st.integers(0, 2))):
        track.markers.append(otio.schema.Marker(
            name=draw(st.sampled_from(PROMPTS)),
            marked_range=TR(RT(draw(st.integers(-10, 1500)), native), RT(draw(st.sampled_from([0, 1, 48])), native))))
    return track


@st.composite
def scenarios(draw) -> Scenario:
    native, exact = draw(st.sampled_from(RATES))
    media = draw(media_pool(exact))
    tl = otio.schema.Timeline(name=draw(st.sampled_from(["cut", "reel 1"])))
    start = draw(st.sampled_from([None, 0, 86400, 107892, 3600, 215784, 12]))
    if start is not None:
        tl.global_start_time = RT(start, native)
    videos = draw(st.integers(1, 3))
    for n in range(videos):
        tl.tracks.append(draw(a_track(native, media, otio.schema.TrackKind.Video, draw(st.sampled_from([f"V{n + 1}", "", "Video"])))))
    for n in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):  # the picture's own sound: same clips on an audio track (linked sound)
            sound = copy.deepcopy(tl.tracks[0])
            sound.kind = otio.schema.TrackKind.Audio
            sound.name = f"A{n + 1}"
            tl.tracks.append(sound)
        else:
            tl.tracks.append(draw(a_track(native, media, otio.schema.TrackKind.Audio, f"A{n + 1}")))
    for _ in range(draw(st.integers(0, 1))):
        tl.tracks.markers.append(otio.schema.Marker(name="timeline note", comment=draw(st.sampled_from(PROMPTS)),
                                                    marked_range=TR(RT(draw(st.integers(0, 900)), native), RT(24, native))))
    return Scenario(tl, media, native, exact)


@dataclass(frozen=True)
class Ask:
    """How the user picks: by clip (name or #N), by range (timecode or frames) or by markers."""

    how: str
    track: str | None
    clip: str = ""
    start: str = ""
    end: str = ""
    per_clip: bool = False


def point(sc: Scenario, frame: int, form: str) -> str:
    if form == "frames":
        return str(frame)
    g = sc.timeline.global_start_time
    offset = 0 if g is None else round(g.value)
    return format_timecode(offset + frame, sc.exact)


@st.composite
def asks(draw, sc: Scenario) -> Ask:
    track = draw(st.sampled_from([None] * 12 + ["V1", "V1", "V2", "A1", "2", "9", "Video", "nope"]))
    how = draw(st.sampled_from(["clip", "range", "range", "range", "markers"]))
    if how == "clip":
        name = draw(st.one_of(st.sampled_from(CLIP_NAMES + ["zz"]), st.integers(0, 8).map(lambda n: f"#{n}")))
        return Ask("clip", track, clip=name)
    if how == "markers":
        return Ask("markers", track)
    length = round(sc.timeline.duration().rescaled_to(sc.native).value)
    inside = shown_clips(sc, track)
    if inside and draw(st.integers(0, 2)):  # mostly inside one clip, where a retake can succeed
        lo, n = draw(st.sampled_from(inside))
        a = draw(st.integers(lo, lo + n - 1))
        b = draw(st.integers(a + 1, lo + n))
    else:
        a = draw(st.integers(-30, length + 30))
        b = draw(st.one_of(st.integers(a, a + 500), st.integers(-30, length + 30), st.just(a)))
    form_a, form_b = draw(st.sampled_from(["frames", "timecode"])), draw(st.sampled_from(["frames", "timecode"]))
    start, end = point(sc, a, form_a), point(sc, b, form_b)
    if draw(st.integers(0, 15)) == 0:
        start = draw(st.sampled_from(["01:00:00:99", "garbage", "1:2:3", "00:00:00;05", "", "-0"]))
    return Ask("range", track, start=start, end=end, per_clip=draw(st.booleans()))


def shown_clips(sc: Scenario, track: str | None) -> list[tuple[int, int]]:
    """The record frames (start, length) of the clips on the track a range will be asked of, when it is V1."""
    if track not in (None, "V1"):
        return []
    videos = [t for t in sc.timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    try:
        return [(frames(r.start_time, sc.native), frames(r.duration, sc.native))
                for _, r in clips_on_track(videos[0]) if frames(r.duration, sc.native) > 0]
    except otio.exceptions.OTIOError:
        return []


def selections(tl: otio.schema.Timeline, ask: Ask):
    if ask.how == "clip":
        return [select_clip(tl, ask.clip, ask.track)]
    if ask.how == "markers":
        return select_markers(tl, ask.track)
    return select_range(tl, ask.start, ask.end, ask.track, per_clip=ask.per_clip)


def named(fn, *args, **kwargs):
    """Run `fn`: its result, or the project's named error it raised (with a sentence for a message).

    Any other exception escapes and fails the test: that is a crash, not a refusal.
    """
    try:
        return fn(*args, **kwargs)
    except RetakeError as exc:
        event(f"{fn.__name__}: {type(exc).__name__}")
        message = str(exc).strip()
        assert message and message[-1] in ".?!)'\"", f"{type(exc).__name__} is not a sentence: {message!r}"
        assert "Traceback" not in message
        return exc


def dump(obj) -> str:
    return otio.adapters.write_to_string(obj, "otio_json")


def frames(t: RT, rate: float) -> int:
    return round(t.rescaled_to(rate).value)


@dataclass(frozen=True)
class Entry:
    """What an editor sees of one clip on a track: where it sits (seconds) and what of its media it plays."""

    name: str
    start: float
    duration: float
    url: str
    source_start: float   # in the clip's own rate, as the file writes it
    source_duration: float
    active: str
    rate: float

    def same(self, other: "Entry") -> bool:
        return (self.name, self.url, self.active) == (other.name, other.url, other.active) and all(
            abs(a - b) < 1e-6 for a, b in ((self.start, other.start), (self.duration, other.duration),
                                           (self.source_start, other.source_start),
                                           (self.source_duration, other.source_duration)))


def track_entries(track: otio.schema.Track) -> list[Entry]:
    out = []
    for clip, rng in clips_on_track(track):
        src = clip.trimmed_range()
        ref = clip.media_reference
        out.append(Entry(clip.name, rng.start_time.to_seconds(), rng.duration.to_seconds(),
                         getattr(ref, "target_url", type(ref).__name__), src.start_time.value, src.duration.value,
                         clip.active_media_reference_key, src.duration.rate))
    return out


def unmatched(these: list[Entry], those: list[Entry]) -> list[Entry]:
    """The entries of `these` left over once each is paired with a same entry of `those` (a multiset difference)."""
    left = list(those)
    out = []
    for e in these:
        twin = next((f for f in left if e.same(f)), None)
        if twin is None:
            out.append(e)
        else:
            left.remove(twin)
    return out


def check_splice(before_tl: otio.schema.Timeline, after_tl: otio.schema.Timeline, plan, version: Version,
                 middle: otio.schema.Clip) -> None:
    """Only the planned window of the planned track changed: durations, other clips and other tracks are as they were."""
    ti = plan.track_index
    assert abs(after_tl.duration().to_seconds() - before_tl.duration().to_seconds()) < 1e-6
    assert abs(after_tl.tracks[ti].duration().to_seconds() - before_tl.tracks[ti].duration().to_seconds()) < 1e-6
    for i, (b, a) in enumerate(zip(before_tl.tracks, after_tl.tracks)):
        if i != ti:
            assert dump(b) == dump(a), f"track {i} changed by a splice on track {ti}"
    before, after = track_entries(before_tl.tracks[ti]), track_entries(after_tl.tracks[ti])
    gone = sorted(unmatched(before, after), key=lambda e: e.start)
    new = sorted(unmatched(after, before), key=lambda e: e.start)
    # Exactly the retaken clip is replaced: one clip, or the abutting pieces an earlier retake split out of it.
    assert gone and all(abs(x.start + x.duration - y.start) < 1e-6 for x, y in zip(gone, gone[1:])), \
        f"exactly the retaken clip should be replaced: {gone}"
    assert all(e.name.split("_retake_v")[0] == gone[0].name.split("_retake_v")[0] for e in gone), gone
    old = Entry(gone[0].name, gone[0].start, sum(e.duration for e in gone), gone[0].url, gone[0].source_start,
                sum(e.source_duration for e in gone), gone[0].active, gone[0].rate)
    # The new pieces tile the old clip's record range, in order, and play the old clip's media through.
    assert abs(new[0].start - old.start) < 1e-6 and abs(sum(e.duration for e in new) - old.duration) < 1e-6
    assert all(abs(x.start + x.duration - y.start) < 1e-6 for x, y in zip(new, new[1:]))
    assert abs(sum(e.source_duration for e in new) - old.source_duration) < 1e-6
    shown = [e for e in new if e.name == version.name]
    assert shown and middle.name == version.name and middle.active_media_reference_key == version.key
    assert all(abs(x.start + x.duration - y.start) < 1e-6 for x, y in zip(shown, shown[1:])), "the version in one run"
    assert all(any(e.name == g.name and e.url == g.url for g in gone) for e in new if e not in shown)
    mids = [Entry(version.name, shown[0].start, sum(e.duration for e in shown), shown[0].url, shown[0].source_start,
                  sum(e.source_duration for e in shown), shown[0].active, shown[0].rate)]
    if new[0] is not shown[0] and plan.scalar == 1:
        assert new[0].source_start == old.source_start
    if plan.scalar == 1:  # each piece plays on from where the one before stopped
        assert all(abs(x.source_start + x.source_duration - y.source_start) < 1e-6 for x, y in zip(new, new[1:])), \
            [(e.name, e.source_start, e.source_duration, e.rate, timeline_rate(after_tl)) for e in new]
    # The middle sits where the plan said: to the frame, or within a frame where rates mix (a cut at 23.976
    # cannot land exactly on a 30 fps record frame).
    rec = plan.record_range
    rates = {exact_rate(mids[0].rate), exact_rate(rec.start_time.rate), timeline_rate(after_tl)}
    if len(rates) == 1:
        r = rec.start_time.rate
        assert (round(mids[0].start * r), round(mids[0].duration * r)) == (frames(rec.start_time, r), frames(rec.duration, r))
    else:
        slack = 1 / float(min(rates)) + 1e-6
        assert abs(mids[0].start - rec.start_time.to_seconds()) <= slack
        assert abs(mids[0].duration - rec.duration.to_seconds()) <= slack
    assert middle.metadata[NS]["original_name"] == plan.clip_name
    src = middle.source_range
    same_rates = len({exact_rate(src.start_time.rate), exact_rate(src.duration.rate), exact_rate(plan.media.frame_rate)}) == 1
    if plan.scalar == 1 and same_rates:
        # The middle's media keeps its place in the shot, and the version holds all of it. (Where the clip's
        # own rate is not its media's, rounding to whole clip frames can reach a fraction of a frame past the
        # window, which is cut in the media's frames: not checked there.)
        r = src.start_time.rate
        assert abs(src.start_time.to_seconds() - plan.source_range.start_time.to_seconds()) <= 0.501 / r
        avail = middle.media_reference.available_range
        assert avail.start_time.to_seconds() <= middle.source_range.start_time.to_seconds() + 1e-6
        assert middle.source_range.end_time_exclusive().to_seconds() <= avail.end_time_exclusive().to_seconds() + 1e-6


def check_plan(sel, plans, info: MediaInfo, limits) -> None:
    rate = exact_rate(info.frame_rate)
    rec = sel.record_range.start_time.rate
    covered = 0
    for p in plans:
        assert 0 <= p.window_start_frame and p.window_start_frame + p.window_frames <= info.frame_count
        assert p.cut.start_frame >= 0 and p.cut.start_frame + p.cut.frame_count <= info.frame_count
        assert (p.cut.total_frames - 1) % limits.frame_multiple == 0
        assert p.cut.total_frames <= limits.max_input_frames(rate)
        assert p.window_frames >= limits.min_window_frames(rate) and p.window_frames <= limits.max_window_frames(rate)
        assert p.window_offset + p.window_frames <= p.cut.total_frames
        assert p.cut.pad_head <= p.window_offset
        assert p.record_range.duration.value > 0
        covered += frames(p.record_range.duration, rec)
    if len(plans) > 1:
        assert covered == frames(sel.record_range.duration, rec)


@settings(max_examples=int(DEEPER or 300), **SETTINGS)   # LTX_RETAKE_PROPERTY_EXAMPLES=5000 digs deeper
@given(data=st.data())
def test_select_plan_splice_refuse_by_name_and_change_only_the_window(data):
    sc = data.draw(scenarios(), label="scenario")
    note(dump(sc.timeline))
    for _ in range(data.draw(st.integers(1, 3))):
        retake(data, sc, sc.timeline.deepcopy(), data.draw(asks(sc), label="ask"))


def retake(data, sc: Scenario, tl: otio.schema.Timeline, ask: Ask) -> None:
    """Select, plan and splice as the runner does, every step a success or a named refusal."""
    sels = named(selections, tl, ask)
    if isinstance(sels, RetakeError):
        return
    assert sels
    limits = limits_for(data.draw(st.sampled_from(["fal", "local"])))
    placement = data.draw(st.sampled_from(["splice", "splice", "above"]))
    planned = []  # as the runner does: plan every selection on the timeline as read, then splice one by one
    for sel in sels:
        src = named(source_clip, tl, sel, BASE_DIR)
        if isinstance(src, RetakeError):
            continue
        info = sc.info(src.media_path, shorter=data.draw(st.sampled_from([0, 0, 0, 40, 4000])))
        assert info is not None, src.media_path
        mode = data.draw(st.sampled_from(list(RetakeMode)))
        prompt = sel.prompt or data.draw(st.sampled_from(["rain", "rain", ""]))
        plans = named(plan_retake, tl, src, info, limits, prompt=prompt, mode=mode, provider="local", model="m",
                      split=data.draw(st.booleans()))
        if isinstance(plans, RetakeError):
            continue
        check_plan(sel, plans, info, limits)
        planned.extend(plans)
    for i, p in enumerate(planned):
        tl = splice_one(data, tl, p, placement, first=i == 0)
    # What was spliced lists, switches and round-trips through the writer.
    for rc in named(list_versions, tl):
        named(use_version, tl, rc.original_name, data.draw(st.sampled_from(["original", "v001", "v002", "v9"])))
    assert_round_trip(tl)


def splice_one(data, tl: otio.schema.Timeline, p, placement: str, *, first: bool) -> otio.schema.Timeline:
    """Splice a plan as the runner does (on a copy), checking the invariants; returns the timeline to go on with.

    The first plan goes onto the very timeline it was planned on: that splice must succeed.
    """
    number = data.draw(st.sampled_from(["next", "next", "one"]))
    n = next_version_number(tl, p.clip_name) if number == "next" else 1
    version = Version(n, p.clip_name, Path(f"/r/{p.clip_name}_retake_v{n:03d}.mp4"), {"prompt": p.prompt})
    candidate = tl.deepcopy()
    sounds = named(linked_sound, candidate, p) if p.mode != RetakeMode.REPLACE_VIDEO else []
    assert not isinstance(sounds, RetakeError)
    before = dump(candidate)
    if placement == "above":
        new = named(place_above, candidate, p, version)
        if isinstance(new, RetakeError):
            assert not first, f"a plan could not be placed on the timeline it was planned on: {new}"
            assert dump(candidate) == before, "a failed placement changed the timeline"
            return tl
        event("placed above")
        assert abs(candidate.duration().to_seconds() - tl.duration().to_seconds()) < 1e-6
        assert dump(candidate.tracks[p.track_index]) == dump(tl.tracks[p.track_index])
        return candidate
    middle = named(splice_version, candidate, p, version)
    if isinstance(middle, RetakeError):
        assert isinstance(middle, SpliceError)
        assert not first, f"a plan could not be spliced into the timeline it was planned on: {middle}"
        assert dump(candidate) == before, "a failed splice changed the timeline"
        return tl
    event("spliced")
    check_splice(tl, candidate, p, version, middle)
    for sound in sounds:  # the picture's linked sound takes the same version, as the runner does
        was = candidate.deepcopy()
        done = named(splice_version, candidate, sound, version)
        assert not isinstance(done, RetakeError), f"linked sound found before the splice could not take it: {done}"
        check_splice(was, candidate, sound, version, done)
    return candidate


def same_structure(a, b, where: str = "") -> None:
    """Two parsed OTIO documents are the same, floats to 12 significant digits.

    OTIO's JSON reader can land one unit in the last place away from a double it wrote (9440.668627853265 reads
    back as 9440.668627853263); a fractional frame count off by 1e-12 frames is the same time.
    """
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), where
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            same_structure(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same_structure(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_round_trip(tl: otio.schema.Timeline) -> None:
    """Written with the project's writer and read back with its reader, the timeline is the same."""
    with tempfile.TemporaryDirectory() as folder:
        out = write_timeline(tl, Path(folder) / "cut.otio")
        back = read_timeline(out)
        same_structure(json.loads(dump(back)), json.loads(dump(tl)))
        assert abs(back.duration().to_seconds() - tl.duration().to_seconds()) < 1e-6
        assert sorted(p.name for p in Path(folder).iterdir()) == ["cut.otio"]


@settings(max_examples=100, **SETTINGS)
@given(sc=scenarios())
def test_the_writer_and_reader_round_trip_any_timeline(sc):
    assert_round_trip(sc.timeline)
    store = OtioFiles()
    with tempfile.TemporaryDirectory() as folder:
        out = store.write(sc.timeline, Path(folder) / "nested" / "cut.otio")
        back = store.read(out)
        assert back.is_equivalent_to(sc.timeline)  # integer frame counts: exact
        assert [t.kind for t in back.tracks] == [t.kind for t in sc.timeline.tracks]
        assert abs(back.duration().to_seconds() - sc.timeline.duration().to_seconds()) < 1e-6


def folder_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@settings(max_examples=60, **SETTINGS)
@given(sc=scenarios(), suffix=st.sampled_from([".otio", ".edl", ".xml", ".otioz"]))
def test_a_write_is_whole_or_leaves_the_destination_as_it_was(sc, suffix):
    """Over an existing file: refused without overwrite; with it, the new timeline or (on any failure) the old bytes."""
    earlier = b"the editor's earlier export\n"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        dest = folder / f"cut{suffix}"
        dest.write_bytes(earlier)
        with pytest.raises(InputError, match="already exists"):
            write_timeline(sc.timeline, dest)
        assert dest.read_bytes() == earlier and folder_files(folder) == [dest.name]
        result = named(write_timeline, sc.timeline, dest, overwrite=True)
        assert folder_files(folder) == [dest.name], "a temp file was left behind"
        if isinstance(result, RetakeError):
            assert isinstance(result, InputError)
            assert dest.read_bytes() == earlier
            event(f"write {suffix}: refused")
            return
        event(f"write {suffix}: written")
        assert result == dest and dest.read_bytes() != earlier
        back = named(read_timeline, dest)
        if suffix == ".otio":
            assert back.is_equivalent_to(sc.timeline)


def two_video_tracks() -> otio.schema.Timeline:
    tl = otio.schema.Timeline(name="cut")
    for n in (1, 2):
        track = otio.schema.Track(name=f"V{n}")
        track.append(otio.schema.Clip(name=f"c{n}", media_reference=otio.schema.ExternalReference(target_url="/m/a.mov"),
                                      source_range=TR(RT(0, 24), RT(48, 24))))
        tl.tracks.append(track)
    return tl


def test_an_edl_the_adapter_cannot_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    dest = tmp_path / "cut.edl"
    dest.write_text("TITLE: the editor's earlier export\n")
    with pytest.raises(InputError, match=r"EDL holds one picture track; this timeline has 2\. Write \.otio"):
        write_timeline(two_video_tracks(), dest, overwrite=True)
    assert dest.read_text() == "TITLE: the editor's earlier export\n"
    assert folder_files(tmp_path) == ["cut.edl"]


def test_an_existing_file_is_not_replaced_without_overwrite(tmp_path):
    dest = tmp_path / "cut.otio"
    dest.write_text("earlier")
    with pytest.raises(InputError, match="already exists"):
        OtioFiles().write(two_video_tracks(), dest)
    assert dest.read_text() == "earlier" and folder_files(tmp_path) == ["cut.otio"]


def test_a_folder_that_is_a_file_is_a_named_error_and_nothing_is_written(tmp_path):
    (tmp_path / "renders").write_text("a file, not a folder")
    with pytest.raises(InputError, match=r"Cannot write cut\.otio in .*renders.*Choose a folder you can write to\."):
        write_timeline(two_video_tracks(), tmp_path / "renders" / "cut.otio")
    with pytest.raises(InputError, match=r"Cannot write cut\.otio in .*renders"):
        write_timeline(two_video_tracks(), tmp_path / "renders" / "deeper" / "cut.otio")
    assert folder_files(tmp_path) == ["renders"]
    assert (tmp_path / "renders").read_text() == "a file, not a folder"


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write in: permissions, and for root (whom permissions do not stop) the immutable flag."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False

    def writable() -> bool:
        probe = folder / ".probe"
        try:
            probe.write_text("x")
        except OSError:
            return False
        probe.unlink()
        return True

    if writable() and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        if writable():
            pytest.skip("this user can write in any folder here (root without chattr): no read-only folder to test")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


def test_a_read_only_folder_is_a_named_error_and_leaves_no_file(read_only_folder):
    with pytest.raises(InputError, match=r"Cannot write cut\.otio in .*locked: .*Choose a folder you can write to\."):
        write_timeline(two_video_tracks(), read_only_folder / "cut.otio")
    with pytest.raises(InputError, match=r"Cannot write cut\.edl in"):
        OtioFiles().write(two_video_tracks(), read_only_folder / "cut.edl", overwrite=True)
    assert folder_files(read_only_folder) == []
