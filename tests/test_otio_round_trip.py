"""Real .otio timelines (Resolve, Hiero, OTIO's own samples) round-tripped: read, relinked to stand-in media,
retaken, written back. Nothing but the retaken clip changes (compared item by item after OTIO's own reading, which
is the canonical form of an .otio: its reader upgrades older schemas and fills defaults); the window shows the
version by frame content; a second retake and `use ... original` keep that."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import opentimelineio as otio
import pytest

from ltx_retake.adapters.timeline_files import read_timeline
from ltx_retake.cli import main
from ltx_retake.compose import offline_wiring, wiring_for
from ltx_retake.errors import RetakeError
from ltx_retake.ports import RetakeMode
from ltx_retake.relink import Relinker
from ltx_retake.orders import RetakeOrder
from ltx_retake.runner import prepare, run
from ltx_retake.selection import clips_on_track, track_label
from ltx_retake.settings import Settings

from showing import check_version_over_window
from standins import standin_media


def canonical_items(tl: otio.schema.Timeline) -> dict[int, list[str]]:
    """Each track's top-level items as OTIO writes them (JSON, keys sorted): what a structural diff compares."""
    return {ti: [json.dumps(json.loads(otio.adapters.write_to_string(item, "otio_json")), sort_keys=True) for item in track]
            for ti, track in enumerate(tl.tracks)}


def changed_items(before: otio.schema.Timeline, after: otio.schema.Timeline) -> dict[int, list[int]]:
    """Per track, the indices of the items of `before` that do not stand unchanged in `after`."""
    a, b = canonical_items(before), canonical_items(after)
    assert len(a) == len(b), "a track was added or removed"
    out = {}
    for ti in a:
        matcher = difflib.SequenceMatcher(a=a[ti], b=b[ti], autojunk=False)
        gone = [i for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal" for i in range(i1, i2)]
        if gone:
            out[ti] = gone
    return out


def a_retakeable_clip(path: Path, folder: Path, media: Path):
    """The first clip, by track and position, that plans with its stand-in media: (track label, '#n', clip name)."""
    tl = read_timeline(path)
    wiring = offline_wiring(Settings(), media_search=(media,))
    for ti, track in enumerate(tl.tracks):
        if track.kind != otio.schema.TrackKind.Video:
            continue
        for n, (clip, _) in enumerate(clips_on_track(track), 1):
            order = RetakeOrder(timeline=path, output=folder / "probe.otio", prompt="p", mode=RetakeMode.REPLACE_VIDEO,
                                provider="local", model="m", clip=f"#{n}", track=track_label(tl, ti).split(" ")[0],
                                media_search=(media,))
            try:
                prepare(order, wiring)
            except RetakeError:
                continue
            return track_label(tl, ti).split(" ")[0], f"#{n}", clip.name
    return None


CORPUS_OTIO = ["otio/hiero_timeline_sq001.otio", "otio/nested_example.otio", "otio/timecode_rates_mixed.otio",
               "otio/resolve_effects.otio"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPUS_OTIO)
def test_a_real_otio_timeline_changes_only_where_it_was_retaken(corpus, tmp_path, name):
    source = corpus / name
    original = read_timeline(source)
    media = tmp_path / "media"
    made = standin_media(original, media)
    store = offline_wiring(Settings()).store
    document = store.open(source)
    same = store.save(document.timeline, tmp_path / "same.otio", document=document)
    assert canonical_items(read_timeline(same)) == canonical_items(original)   # written back unchanged: the same items
    picked = a_retakeable_clip(source, tmp_path, media)
    assert picked is not None, f"no clip of {name} plans with its stand-ins {sorted(made)}"
    track, which, clip_name = picked
    relinker = Relinker(source.parent, (), (media,))
    out1 = tmp_path / "v1.otio"
    with wiring_for("local", Settings(), media_search=(media,)) as wiring:
        first = run(RetakeOrder(timeline=source, output=out1, prompt="rain", mode=RetakeMode.REPLACE_VIDEO, provider="local",
                                model="m", clip=which, track=track, media_search=(media,)), wiring)
    (job,) = first.jobs
    assert first.exit_code == 0, job.error
    new = read_timeline(out1)
    assert new.duration() == original.duration() and new.global_start_time == original.global_start_time
    changed = changed_items(original, new)
    assert list(changed) == [job.plan.track_index] and len(changed[job.plan.track_index]) == 1, changed
    check_version_over_window(original, new, job, relinker)

    # use original: only the clip's pieces differ from the file as read (it stays split, showing its own media)
    back = tmp_path / "back.otio"
    assert main(["use", str(out1), clip_name, "original", "-o", str(back)]) == 0
    restored = read_timeline(back)
    assert list(changed_items(original, restored)) == [job.plan.track_index]
    shows = [c for c, _ in clips_on_track(restored.tracks[job.plan.track_index]) if c.name == clip_name]
    assert shows and all(c.active_media_reference_key == otio.schema.Clip.DEFAULT_MEDIA_KEY for c in shows)
