"""Relink: find a clip's media on this machine, as written, through path maps, or by name in search folders.

Timelines carry paths from the machine they were cut on: `C:\\Users\\...` or `file://localhost/D%3a/...` from
Windows, `/Volumes/...` from a Mac, no path at all in an EDL. `Relinker.locate` takes the path a clip's media
reference names and tries, in order: the path itself (relative paths start at the timeline's folder), each
`--map-path FROM=TO` whose FROM starts it, then a file of the same name (or the clip's name, its reel, its
source file) in the `--media-search` folders. Two files that fit equally are refused by name, never guessed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from .errors import InputError, SelectionError, UnsupportedEditError
from .metadata import NS
from .paths import MEDIA_SUFFIXES

__all__ = ["Relinker", "Located", "written_path", "parse_path_map", "media_hints", "HINTS"]

HINTS = "media_hints"          # metadata[NS][HINTS]: names a reader knows the media by (source file, clip name, reel)
_DRIVE = re.compile(r"^[A-Za-z]:(/|$)")


def written_path(url: str) -> str:
    """The path a media reference's URL names, as written, with `/` separators: file:// URLs decoded, Windows
    drives (`C:/...`) and shares (`//server/...`) kept as they are, so they are never glued onto a local folder."""
    text = url.strip()
    parsed = urlparse(text)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
        if len(path) > 2 and path[0] == "/" and _DRIVE.match(path[1:]):   # file:///D:/... and file://localhost/D%3a/...
            path = path[1:]
        elif parsed.netloc and parsed.netloc.lower() != "localhost":        # file://server/share/...
            path = f"//{parsed.netloc}{path}"
        return path.replace("\\", "/")
    if len(parsed.scheme) == 1 or "\\" in text:                          # C:\... or a relative Windows path
        return text.replace("\\", "/")
    return unquote(text) if "%" in text and not os.path.exists(text) else text


def _is_windows(path: str) -> bool:
    return bool(_DRIVE.match(path)) or path.startswith("//")


def _comparable(path: str) -> str:
    """A written path in one spelling for comparing prefixes: `/` separators, no doubled ones, a Windows path
    (drive or share) in lower case, since Windows compares names without case."""
    text = written_path(path) if path.lower().startswith("file:") else path.replace("\\", "/")
    lead = "//" if text.startswith("//") else ""
    text = lead + re.sub(r"/+", "/", text[len(lead):])
    if len(text) > 1:
        text = text.rstrip("/")
    return text.lower() if _is_windows(text) else text


def parse_path_map(text: str) -> tuple[str, str]:
    """`FROM=TO` (the last `=` that leaves a path on both sides splits it) as a pair; refused when it is not one."""
    if "=" in text:
        src, _, dst = text.rpartition("=")
        if src.strip() and dst.strip():
            return src.strip(), dst.strip()
    raise InputError(f"--map-path {text!r} is not FROM=TO; write the folder as the timeline names it, '=', and where it "
                     "is on this machine, e.g. --map-path 'C:/Users/edit/Media=/mnt/media'.")


def media_hints(clip: otio.schema.Clip) -> list[str]:
    """Names the clip's media may go by: what the reader noted (source file, clip name, reel), then the clip's name."""
    meta = clip.metadata.get(NS) or {}
    hints = [str(h) for h in (meta.get(HINTS) or ()) if h]
    ref = clip.media_reference
    if isinstance(ref, otio.schema.MissingReference) and ref.name:
        hints.append(ref.name)
    hints.append(clip.name)
    seen: list[str] = []
    for h in hints:
        if h.strip() and h.strip() not in seen:
            seen.append(h.strip())
    return seen


@dataclass(frozen=True)
class Located:
    """Where a clip's media is on this machine, and how it was found (`how` is empty when the path was right)."""

    path: Path
    written: str                # the path as the timeline names it ("" when it names none)
    how: str = ""               # "mapped by --map-path ...", "found by name in ..."

    @property
    def relinked(self) -> bool:
        return bool(self.how)


class Relinker:
    """Finds media for clips: as written, through path maps, then by name in search folders (indexed once)."""

    def __init__(self, base_dir: Path | None = None, path_maps: tuple[tuple[str, str], ...] | list = (),
                 media_search: tuple[Path, ...] | list = ()):
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.path_maps = [(src, dst) for src, dst in path_maps]
        self.media_search = [Path(d).expanduser() for d in media_search]
        for folder in self.media_search:
            if not folder.is_dir():
                raise InputError(f"--media-search {folder} is not a folder here; give a folder that holds the media.")
        self._index: dict[str, list[Path]] | None = None

    def written(self, ref) -> str:
        """The path a reference names, refusing what is not footage on a disk (with what to do)."""
        if ref is None or isinstance(ref, otio.schema.MissingReference):
            return ""
        if isinstance(ref, otio.schema.GeneratorReference):
            raise SelectionError(f"is a generator ({ref.generator_kind or 'generated'}), not footage; there is nothing to retake.")
        if isinstance(ref, otio.schema.ImageSequenceReference):
            raise UnsupportedEditError("has an image sequence as its media; render it to a movie file and relink, then retake.")
        url = getattr(ref, "target_url", "") or ""
        scheme = urlparse(url).scheme
        if scheme in ("http", "https"):
            raise UnsupportedEditError(f"has a web address as its media ({urlparse(url).netloc}); download it and relink "
                                       "to the local file.")
        return written_path(url) if url else ""

    def as_written(self, written: str) -> Path | None:
        """The written path as a path on this machine (relative ones from the timeline's folder); None for another
        system's absolute path (a Windows drive on Linux or macOS)."""
        if not written:
            return None
        if _is_windows(written) and os.name != "nt":
            return None
        p = Path(written)
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return Path(os.path.normpath(p))

    def mapped(self, written: str) -> list[tuple[Path, str]]:
        """Each path map's translation of the written path, in the order the maps were given."""
        out = []
        have = _comparable(written)
        for src, dst in self.path_maps:
            prefix = _comparable(src)
            if have == prefix or have.startswith(prefix.rstrip("/") + "/"):
                rest = written_path(written).replace("\\", "/")
                rest = re.sub(r"/+", "/", rest[2:] if rest.startswith("//") else rest)
                depth = len([p for p in prefix.split("/") if p])
                tail = [p for p in rest.split("/") if p][depth:]
                out.append((Path(dst).expanduser().joinpath(*tail), f"{src}={dst}"))
        return out

    def _files(self) -> dict[str, list[Path]]:
        """Every file under the search folders by lower-case name and by lower-case stem (media files only)."""
        if self._index is None:
            index: dict[str, list[Path]] = {}
            for folder in self.media_search:
                for root, dirs, files in os.walk(folder):
                    dirs[:] = [d for d in dirs if not d.startswith(".")]
                    for name in files:
                        if name.startswith("."):
                            continue
                        path = Path(root) / name
                        index.setdefault(name.lower(), []).append(path)
                        stem, dot, ext = name.rpartition(".")
                        if dot and f".{ext.lower()}" in MEDIA_SUFFIXES:
                            index.setdefault(f"stem:{stem.lower()}", []).append(path)
            self._index = index
        return self._index

    def by_name(self, names: list[str]) -> list[Path]:
        """Files in the search folders for the first of `names` that matches any: a file name, a clip name
        without its extension, or a camera reel that starts a file's name (A036C010_191203 -> A036C010_191203_x.mov)."""
        if not self.media_search:
            return []
        files = self._files()
        for name in names:
            base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
            if not base:
                continue
            found = files.get(base.lower()) or files.get(f"stem:{base.lower()}")
            if not found and len(base) >= 3:
                reel = base.lower()
                found = [p for key, paths in files.items() if key.startswith("stem:")
                         and key[5:].startswith(reel) and len(key) > 5 + len(reel) and not key[5 + len(reel)].isalnum()
                         for p in paths]
            if found:
                return sorted(set(found))
        return []

    def locate(self, clip: otio.schema.Clip, label: str = "", ref=None) -> Located:
        """The media of `clip` (or of `ref`, one of its references) on this machine, or a sentence saying what to do."""
        label = label or repr(clip.name)
        ref = clip.media_reference if ref is None else ref
        try:
            written = self.written(ref)
        except (SelectionError, UnsupportedEditError) as exc:
            raise type(exc)(f"{label} {exc}") from None
        here = self.as_written(written)
        if here is not None and here.is_file():
            return Located(here, written)
        tried = []
        for path, rule in self.mapped(written) if written else []:
            if path.is_file():
                return Located(path, written, f"mapped by --map-path {rule}")
            tried.append(str(path))
        names = ([written.rsplit("/", 1)[-1]] if written else []) + media_hints(clip)
        found = self.by_name(names)
        if len(found) > 1:
            listed = " and ".join(str(p) for p in found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
            raise SelectionError(f"{label}: its media {written or names[0]!r} matches {listed} in the search folders; "
                                 "keep one of them there, or name the file with --map-path.")
        if found:
            return Located(found[0], written, f"found by name in {found[0].parent}")
        raise SelectionError(self._missing(label, written, names, tried))

    def _missing(self, label: str, written: str, names: list[str], tried: list[str]) -> str:
        what = f"its media {written} is not on this machine" if written else \
            f"its media is offline (the timeline names no file; it goes by {', '.join(repr(n) for n in names[:3])})"
        also = f" (tried {', '.join(tried)})" if tried else ""
        searched = f"; no file of that name in {', '.join(str(d) for d in self.media_search)}" if self.media_search else ""
        return (f"{label}: {what}{also}{searched}. Relink it: --map-path FROM=TO for a moved drive or another "
                "system's paths, --media-search DIR to find it by name (settings path_maps and media_search; in the "
                "panel, File > Relink Media).")
