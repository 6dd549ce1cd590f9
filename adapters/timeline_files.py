"""Timeline files: read any format into a document; write it back by editing the editor's own file, or convert.

Reading: EDL, FCP7 XML and FCPXML go through readers of our own where OTIO's get them wrong (each a module
named in `FAITHFUL`); every other format through OTIO's adapters, with their known quirks fixed.

Writing (`save`): when the target has the document's own format and that format has a faithful writer, the
editor's file is edited in place: only the items a retake changed are rewritten, every other byte stays.
Anything else goes through OTIO's writers, which drop what their format cannot hold: `losses` lists that
first, and the write is refused unless the caller accepts the list (`--yes`). `.otio` keeps everything.

A faithful format module has three functions:

    read(data: bytes, path: Path, options: ReadOptions, media_rate) -> (list[Timeline], list[str])
        every timeline in the file, each item stamped with its element (`origin.stamp`), and notes for the
        editor; `media_rate(clip)` is the rate of the clip's media when it can be found here, else None
    write(data: bytes, timeline: Timeline, path: Path) -> bytes
        the file's bytes with the changed items edited (never touches disk; versions' media need not exist)
    cannot_hold(timeline: Timeline) -> list[str]
        sentences for what an edit of this file cannot express (refused before anything is paid for)
"""

from __future__ import annotations

import hashlib
import importlib
from fractions import Fraction
from pathlib import Path
from typing import Callable

import opentimelineio as otio

from ..atomic import check_writable, write_atomic
from ..document import Document, ReadOptions
from ..errors import InputError, RetakeError, TimelineReadError
from ..metadata import has_versions
from ..paths import same_file
from ..relink import Relinker
from ..selection import require_lengths
from ..timing import exact_rate

__all__ = ["OtioFiles", "read_timeline", "write_timeline", "read_document", "save", "losses", "readable_suffixes",
           "format_of", "FAITHFUL", "BUNDLES", "bundle_document"]

# OTIO adapter name -> the module (in this package) that reads it right and edits it in place
FAITHFUL: dict[str, str] = {"cmx_3600": "edl_file", "fcpx_xml": "fcpx_file", "fcp_xml": "fcp7_file"}
_NAMES = {"cmx_3600": "a CMX 3600 EDL", "fcp_xml": "FCP7 XML", "fcpx_xml": "FCPXML", "AAF": "AAF", "otio_json": "OTIO JSON"}

# timeline bundles: a folder whose one file is the document (Final Cut Pro's .fcpxmld holds Info.fcpxml)
BUNDLES: dict[str, str] = {".fcpxmld": "Info.fcpxml"}


def bundle_document(path: str | Path) -> Path | None:
    """The document inside a timeline bundle (X.fcpxmld/Info.fcpxml); None for any other path."""
    inner = BUNDLES.get(Path(path).suffix.lower())
    return Path(path) / inner if inner else None


def readable_suffixes() -> dict[str, str]:
    """File suffix -> OTIO adapter name, for every adapter installed here that can read."""
    out: dict[str, str] = {}
    for adapter in otio.plugins.ActiveManifest().adapters:
        try:
            features = adapter.module().__dict__
        except Exception:  # an adapter whose module does not import is simply not offered
            continue
        if "read_from_file" in features or "read_from_string" in features:
            for suffix in adapter.suffixes:
                out.setdefault(suffix.lower(), adapter.name)
    for bundle, inner in BUNDLES.items():  # read as the document they hold
        if Path(inner).suffix.lower().lstrip(".") in out:
            out[bundle.lstrip(".")] = out[Path(inner).suffix.lower().lstrip(".")]
    return out


def format_of(path: str | Path) -> str:
    """The OTIO adapter name for a timeline file's suffix, or a sentence listing the ones that exist."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    suffixes = readable_suffixes()
    if suffix not in suffixes:
        raise InputError(f"Cannot tell which timeline format {path.name} is from its name; use .otio (keeps every "
                         "version), .edl, .xml (FCP7/Premiere), .fcpxml or .aaf.")
    return suffixes[suffix]


def _module(adapter: str):
    name = FAITHFUL.get(adapter)
    return importlib.import_module(f"{__package__}.{name}") if name else None


# --- reading ---------------------------------------------------------------------------------------------------

def _normalise(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """Fix quirks on read: an EDL's negative record start becomes the timeline's global start."""
    starts = [t.source_range.start_time for t in timeline.tracks if t.source_range is not None]
    if starts and all(s.value < 0 for s in starts) and timeline.global_start_time is None:
        first = starts[0]
        if all(s.almost_equal(first) for s in starts):
            timeline.global_start_time = -first
            for track in timeline.tracks:
                if track.source_range is not None and track.source_range.start_time.value < 0:
                    track.source_range = None
    return timeline


def _read_with_otio(path: Path, adapter: str, options: ReadOptions) -> list[otio.schema.Timeline]:
    return _timelines_in(otio.adapters.read_from_file(str(path)))


def _timelines_in(obj) -> list[otio.schema.Timeline]:
    if isinstance(obj, otio.schema.Timeline):
        return [obj]
    if isinstance(obj, otio.schema.SerializableCollection):
        return list(obj.find_children(descended_from_type=otio.schema.Timeline))
    return []


def _media_rate(relinker: Relinker, probe: Callable | None) -> Callable[[otio.schema.Clip], Fraction | None]:
    """The rate of a clip's media when it can be found here and probed (readers use it to decide an EDL's rate)."""
    seen: dict[Path, Fraction | None] = {}

    def rate(clip: otio.schema.Clip) -> Fraction | None:
        if probe is None:
            return None
        try:
            path = relinker.locate(clip).path
        except RetakeError:
            return None
        if path not in seen:
            try:
                seen[path] = exact_rate(probe(path).frame_rate)
            except RetakeError:
                seen[path] = None
        return seen[path]

    return rate


def read_document(path: str | Path, options: ReadOptions = ReadOptions(), *, probe: Callable | None = None) -> Document:
    """Read a timeline file into a document. `probe(path) -> MediaInfo` lets an EDL's rate be taken from its media."""
    path = Path(path).absolute()
    if not path.exists():
        raise TimelineReadError(f"The timeline {path} does not exist; check the path.")
    if path.is_dir() and path.suffix.lower() != ".otiod" and bundle_document(path) is None:
        raise TimelineReadError(f"{path} is a folder, not a timeline file.")
    try:
        adapter = format_of(path)
    except InputError:
        known = ", ".join(f".{s}" for s in sorted(readable_suffixes()))
        raise TimelineReadError(f"No installed OTIO adapter reads {path.suffix or 'suffix-less'} files ({path.name}); "
                                f"readable: {known}.") from None
    module = _module(adapter)
    inner = bundle_document(path)
    if inner is not None and not inner.is_file():
        raise TimelineReadError(f"{path.name} is a bundle without its {inner.name}; export it again from the NLE "
                                "(File > Export XML in Final Cut Pro).")
    data = inner.read_bytes() if inner is not None else None if path.is_dir() else path.read_bytes()
    notes: list[str] = []
    try:
        if module is not None:
            relinker = Relinker(path.parent, options.path_maps, options.media_search)
            timelines, notes = module.read(data, path, options, _media_rate(relinker, probe))
            notes = list(notes)
        else:
            timelines = _read_with_otio(path, adapter, options)
    except RetakeError:
        raise
    except RecursionError:
        raise TimelineReadError(f"{path.name} nests too deeply to read; export it again flattened, or as .otio.") from None
    except Exception:  # a library's own words are no help to an editor: say what to do instead
        raise TimelineReadError(
            f"{path.name} could not be read as {_NAMES.get(adapter, adapter)}: the file is damaged, incomplete, or not "
            "what its name says. Export it again from the NLE, or as .otio, and check that the file is complete."
        ) from None
    if not timelines:
        raise TimelineReadError(f"{path.name} holds no timeline.")
    timeline = _pick(path, timelines, options.timeline_name)
    timeline = _normalise(timeline)
    require_lengths(timeline, error=TimelineReadError)
    keep = data if module is not None else None
    sha = hashlib.sha256(data).hexdigest() if data is not None else None
    return Document(timeline, path, adapter, sha, keep, options, tuple(notes))


def _pick(path: Path, timelines: list[otio.schema.Timeline], name: str | None) -> otio.schema.Timeline:
    if name is not None:
        picked = [t for t in timelines if t.name == name]
        if not picked:
            raise TimelineReadError(f"{path.name} has no timeline named {name!r}; it has: {', '.join(repr(t.name) for t in timelines)}.")
        return picked[0]
    if len(timelines) > 1:
        raise TimelineReadError(
            f"{path.name} holds {len(timelines)} timelines ({', '.join(repr(t.name) for t in timelines)}); "
            "choose one with --timeline NAME."
        )
    return timelines[0]


def read_timeline(path: str | Path, *, rate: float | Fraction | None = None, name: str | None = None) -> otio.schema.Timeline:
    """Read a timeline file's timeline (see `read_document`). `name` picks one from a file that holds several."""
    options = ReadOptions(rate=exact_rate(rate) if rate else None, timeline_name=name)
    return read_document(path, options).timeline


# --- writing ---------------------------------------------------------------------------------------------------

def _faithful(document: Document | None, adapter: str):
    """The module that edits the document's own file, when the target is in that format (else None)."""
    if document is None or document.source is None or document.format != adapter:
        return None
    return _module(adapter)


def losses(timeline: otio.schema.Timeline, path: str | Path, document: Document | None = None) -> list[str]:
    """What writing `timeline` to `path` would lose, one sentence each (empty when nothing is lost).

    Raises InputError when the target cannot hold the timeline at all (nothing to accept then).
    """
    adapter = format_of(path)
    module = _faithful(document, adapter)
    if module is not None:
        refused = module.cannot_hold(timeline)
        if refused:
            raise InputError(f"{Path(path).name} cannot be edited to hold this: {' '.join(refused)} Write .otio instead "
                             "(it keeps everything), or change the placement.")
        return []
    if adapter in ("otio_json", "otiod", "otioz"):
        return []
    return _conversion_losses(timeline, adapter, document)




def _conversion_losses(timeline: otio.schema.Timeline, adapter: str, document: Document | None) -> list[str]:
    """What OTIO's writer for `adapter` drops of this timeline (from what each writer is known to keep)."""
    what = _NAMES.get(adapter, adapter)
    out: list[str] = []
    if document is not None and document.format and document.format != adapter:
        out.append(f"it is written anew by OTIO as {what}, not as an edit of {document.name}: whatever OTIO did not read "
                   f"from {document.name} (effects, links, labels, comments) is not in it")
    elif document is not None and document.format == adapter and document.source is None:
        out.append(f"{what} is written anew by OTIO, not edited in place: whatever OTIO did not read from "
                   f"{document.name} is not in it (.otio, or the NLE's own XML, keeps everything)")
    clips = list(timeline.find_clips())
    several = sum(1 for c in clips if has_versions(c))
    if several:
        out.append(f"{several} clip(s) keep only the media they show: other versions and the original media of "
                   "retaken clips are not in the file, and `ltx-retake use` cannot switch them there")
    tracks = list(timeline.tracks)
    video = [t for t in tracks if t.kind == otio.schema.TrackKind.Video]
    if adapter == "cmx_3600":
        if len(video) > 1:
            raise InputError(f"A CMX 3600 EDL holds one picture track; this timeline has {len(video)}. Write .otio or "
                             "the NLE's XML instead, or write one track at a time from the NLE.")
        if timeline.global_start_time is not None and timeline.global_start_time.value:
            out.append("the timeline's start timecode (OTIO writes the record side from 00:00:00:00)")
    if adapter == "fcpx_xml" and timeline.global_start_time is not None and timeline.global_start_time.value:
        out.append("the timeline's start timecode")
    disabled = sum(1 for c in clips if not c.enabled)
    if disabled and adapter in ("cmx_3600", "fcp_xml", "fcpx_xml", "AAF"):
        fate = "are dropped" if adapter == "cmx_3600" else "come back enabled"
        out.append(f"{disabled} disabled clip(s) {fate}")
    markers = sum(len(getattr(i, "markers", ())) for i in timeline.find_children()) + len(timeline.tracks.markers)
    if markers and adapter == "AAF":
        out.append(f"{markers} marker(s)")
    elif markers and adapter in ("fcp_xml", "fcpx_xml"):
        out.append(f"the colours of {markers} marker(s)")
    effects = sum(1 for i in timeline.find_children() for e in getattr(i, "effects", [])
                  if not isinstance(e, otio.schema.TimeEffect))
    if effects:
        out.append(f"{effects} effect(s) other than speed changes")
    if adapter == "cmx_3600":
        nests = sum(1 for t in tracks for i in t if isinstance(i, otio.core.Composition))
        if nests:
            out.append(f"{nests} nested sequence(s) (an EDL has no nests)")
    return out


def _encode(timeline: otio.schema.Timeline, adapter: str) -> bytes | None:
    """OTIO's writer's bytes for formats that write to a string (None for those that only write files: AAF)."""
    if adapter == "otio_json":
        return otio.adapters.write_to_string(timeline, "otio_json", indent=2).encode("utf-8")
    if adapter in ("AAF", "otioz", "otiod"):
        return None
    return otio.adapters.write_to_string(timeline, adapter).encode("utf-8")


def save(timeline: otio.schema.Timeline, path: str | Path, *, document: Document | None = None, overwrite: bool = False,
         protect: tuple[str | Path, ...] = (), accept_losses: bool = False) -> Path:
    """Write `timeline` to `path` atomically: an edit of the document's own file when the format is the same,
    else OTIO's writer, refused while it would lose something unless `accept_losses`. Never over a protected path."""
    path = Path(path).absolute()
    for p in protect:  # holds even with overwrite: --force replaces an old output, never the input
        if same_file(Path(p), path):
            raise InputError(f"Refusing to overwrite the input timeline {path.name}; give another -o path, or --in-place.")
    target = bundle_document(path) or path  # a bundle is written as the document it holds
    if target.is_dir():
        raise InputError(f"{path} is a folder; give the timeline file to write, e.g. {path / 'retakes.otio'}.")
    if target.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another output path or pass --force to replace it.")
    adapter = format_of(path)
    check_writable(path)
    module = _faithful(document, adapter)
    lost = losses(timeline, path, document)
    if lost and not accept_losses:
        raise InputError(f"Writing {path.name} would lose: {'; '.join(lost)}. Nothing was written. Write .otio to keep "
                         "everything, or pass --yes to write it anyway.")
    try:
        if module is not None:
            data = module.write(document.source, timeline, path)
        else:
            data = _encode(timeline, adapter)
    except RetakeError:
        raise
    except Exception as exc:
        raise InputError(f"{path.name} cannot be written as {_NAMES.get(adapter, adapter)} ({_why(exc)}). Write .otio "
                         "to keep every version.") from None

    def verify(temp: Path) -> None:
        _verify(temp, adapter, module, timeline, document)

    if data is None:
        def produce(temp: Path) -> None:
            kwargs = {"use_empty_mob_ids": True} if adapter == "AAF" else {}
            try:
                otio.adapters.write_to_file(timeline, str(temp), adapter_name=adapter, **kwargs)
            except Exception as exc:
                raise InputError(f"OTIO's {adapter} writer failed ({_why(exc)}); write .otio to keep every version.") from None
        write_atomic(target, produce, verify=verify)
        return path
    write_atomic(target, data, verify=verify)
    return path


def _why(exc: Exception) -> str:
    """A library's error as a short clause: its type, and its text when that is a plain sentence."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    plain = text and len(text) <= 120 and not any(c in text for c in "'\"()<>[]{}")
    return text if plain else type(exc).__name__


def _verify(temp: Path, adapter: str, module, timeline: otio.schema.Timeline, document: Document | None) -> None:
    """Read the written file back and check it holds the timeline's tracks at its length (else nothing is replaced)."""
    try:
        if module is not None:
            options = document.options if document is not None else ReadOptions()
            back, _ = module.read(temp.read_bytes(), temp, options, lambda clip: None)
            back = _pick(temp, back, options.timeline_name or (timeline.name if len(back) > 1 else None))
        elif adapter == "otio_json":
            back = otio.adapters.read_from_file(str(temp), adapter_name="otio_json")
        else:
            return  # OTIO's other writers change the structure they write (that is what `losses` lists)
    except RetakeError as exc:
        raise InputError(f"the written file does not read back ({exc})") from None
    except Exception as exc:
        raise InputError(f"the written file does not read back ({type(exc).__name__})") from None
    if not isinstance(back, otio.schema.Timeline):
        raise InputError("the written file holds no timeline")
    try:
        want, got = timeline.duration().to_seconds(), back.duration().to_seconds()
    except otio.exceptions.OTIOError:  # a clip with no length (refused on read, later): compare what can be compared
        want = got = 0.0
    if abs(want - got) > 1e-3 or len(back.tracks) != len(timeline.tracks):
        raise InputError(f"the written file reads back as {len(back.tracks)} track(s) of {got:.3f} s, not "
                         f"{len(timeline.tracks)} of {want:.3f} s; please report this with the timeline")


def write_timeline(timeline: otio.schema.Timeline, path: str | Path, *, overwrite: bool = False,
                   protect: tuple[str | Path, ...] = ()) -> Path:
    """Write a timeline made or edited in memory (no editor's file behind it) with OTIO's writer for the suffix,
    atomically. Conversions that would lose something are accepted here: callers are tests, benchmarks and the
    demo writing timelines they built themselves."""
    return save(timeline, path, overwrite=overwrite, protect=protect, accept_losses=True)


class OtioFiles:
    """The TimelineStore port over the timeline files: documents read right, written back faithfully."""

    def __init__(self, *, rate: float | Fraction | None = None, timeline_name: str | None = None,
                 path_maps: tuple[tuple[str, str], ...] = (), media_search: tuple[Path, ...] = (),
                 probe: Callable | None = None):
        self.options = ReadOptions(rate=exact_rate(rate) if rate else None, timeline_name=timeline_name,
                                   path_maps=tuple(path_maps), media_search=tuple(Path(p) for p in media_search))
        self.probe = probe

    @property
    def rate(self):
        return self.options.rate

    def open(self, path: str | Path) -> Document:
        return read_document(path, self.options, probe=self.probe)

    def read(self, path: str | Path) -> otio.schema.Timeline:
        return self.open(path).timeline

    def losses(self, timeline, path: str | Path, document: Document | None = None) -> list[str]:
        return losses(timeline, path, document)

    def save(self, timeline, path: str | Path, *, document: Document | None = None, overwrite: bool = False,
             protect=(), accept_losses: bool = False) -> Path:
        return save(timeline, path, document=document, overwrite=overwrite, protect=protect, accept_losses=accept_losses)

    def write(self, timeline, path: str | Path, *, overwrite: bool = False, protect=()) -> Path:
        return write_timeline(timeline, path, overwrite=overwrite, protect=protect)
