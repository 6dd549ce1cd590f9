"""A document: the timeline an editor opened, where it came from, and what it takes to write it back faithfully."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

__all__ = ["Document", "ReadOptions"]


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need beyond the file: the rate an EDL does not state, which timeline of several,
    and how to find media whose paths do not lead to a file here."""

    rate: Fraction | None = None             # --rate: an EDL's frame rate (it has no rate of its own)
    timeline_name: str | None = None         # --timeline: which timeline, when the file holds several
    path_maps: tuple[tuple[str, str], ...] = ()   # --map-path FROM=TO, in the order given
    media_search: tuple[Path, ...] = ()      # --media-search DIR: folders where missing media is looked for by name


@dataclass
class Document:
    """The timeline as read, with its file's format and bytes, so a save in that format edits only what changed.

    `source` holds the file's bytes for the formats written back by editing the file (EDL, FCP7 XML, FCPXML):
    a save never re-reads a file that may have changed since. `notes` say what reading decided (an EDL's rate
    and how it was chosen, relinked media) so the faces can tell the editor.
    """

    timeline: otio.schema.Timeline
    path: Path | None = None                 # the file it was read from (absolute); None for a timeline made in memory
    format: str | None = None                # the OTIO adapter name of that file: otio_json, cmx_3600, fcp_xml, fcpx_xml, AAF
    sha256: str | None = None                # of the file's bytes as read
    source: bytes | None = field(default=None, repr=False)
    options: ReadOptions = field(default_factory=ReadOptions)
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name if self.path else (self.timeline.name or "timeline")

    def with_timeline(self, timeline: otio.schema.Timeline) -> "Document":
        """The same file's document holding another state of its timeline (a spliced copy)."""
        return replace(self, timeline=timeline)
