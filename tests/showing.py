"""What a timeline shows, decoded: the file and file frame at a record frame of any track, read by its frame index.

For any timeline (nests, other rates, speed changes, stand-in media found by a relinker), independent of the
planner's own arithmetic: used to check a spliced timeline by content, frame by frame.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from ltx_retake.adapters.media import FfmpegMediaTool
from ltx_retake.adapters.testcard import read_index
from ltx_retake.relink import Relinker
from ltx_retake.selection import clip_at, timeline_rate
from ltx_retake.timing import exact_rate, to_frames

__all__ = ["frame_shown", "indices_shown", "check_version_over_window"]

RT = otio.opentime.RationalTime
MEDIA = FfmpegMediaTool()


def frame_shown(tl: otio.schema.Timeline, ti: int, t: int, relinker: Relinker | None = None) -> tuple[Path, int]:
    """The file (found as written, or by `relinker`) and the file frame track `ti` shows at record frame `t`."""
    rate = timeline_rate(tl)
    track_rate = tl.tracks[ti].duration().rate if len(tl.tracks[ti]) else float(rate)
    found = clip_at(tl, ti, RT(t, float(rate)).rescaled_to(track_rate))
    assert found is not None, f"nothing shows on track {ti} at record frame {t}"
    clip, rng = found
    ref = clip.media_reference
    path = (relinker or Relinker()).locate(clip, ref=ref).path
    clip_rate = exact_rate(clip.source_range.start_time.rate)
    scalar = Fraction(1)
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):
            scalar *= Fraction(effect.time_scalar).limit_denominator(100000)
    into = (RT(t, float(rate)) - rng.start_time.rescaled_to(float(rate)))
    offset = to_frames(into, clip_rate) * scalar
    start = to_frames(clip.source_range.start_time, clip_rate)
    if getattr(ref, "available_range", None) is not None:
        origin = to_frames(ref.available_range.start_time, clip_rate)
    else:
        probed = MEDIA.probe(path).start_frame
        origin = probed if start >= probed else 0
    frame = start + offset - origin
    return path, int(frame)  # a clip at another rate than the timeline's shows the frame that started before


def indices_shown(tl: otio.schema.Timeline, ti: int, frames, relinker: Relinker | None = None) -> dict[int, tuple[Path, int, int | None]]:
    """For every record frame in `frames`: the file, the file frame, and the index that frame carries (decoded)."""
    wanted: dict[Path, dict[int, int]] = {}
    for t in frames:
        path, f = frame_shown(tl, ti, t, relinker)
        wanted.setdefault(path, {})[t] = f
    out = {}
    for path, by_t in wanted.items():
        pics = MEDIA.read_frames(path, set(by_t.values()))
        for t, f in by_t.items():
            out[t] = (path, f, read_index(pics[f]))
    return out


def check_version_over_window(original: otio.schema.Timeline, new: otio.schema.Timeline, job, relinker: Relinker | None = None,
                              margin: int = 3) -> None:
    """The new timeline shows the version exactly over the job's window (and the original's frames, same index,
    around it), on the job's track; checked by the index each decoded frame carries."""
    rate = timeline_rate(original)
    rng = job.plan.record_range
    rs = round(rng.start_time.rescaled_to(float(rate)).value)
    re_ = round(rng.end_time_exclusive().rescaled_to(float(rate)).value)
    ti = job.plan.track_index
    end = round(original.tracks[ti].duration().rescaled_to(float(rate)).value)
    around = range(max(0, rs - margin), min(end, re_ + margin))
    before, after = indices_shown(original, ti, around, relinker), indices_shown(new, ti, around, relinker)
    version = Path(job.version.path).resolve()
    for t in around:
        assert before[t][2] is not None, f"record frame {t}: the original's frame does not read"
        assert after[t][2] == before[t][2], f"record frame {t}: shows index {after[t][2]}, expected {before[t][2]}"
        assert (after[t][0].resolve() == version) == (rs <= t < re_), f"record frame {t} comes from {after[t][0]}"
