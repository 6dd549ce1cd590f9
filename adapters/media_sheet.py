"""Contact sheets (labelled rows of thumbnails, written as PNG), a retake's before/after sheet, and a 5x7 font to label them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence, Union

import av
import numpy as np

from ..atomic import write_atomic
from ..errors import MediaError
from ..timing import exact_rate, format_timecode, frames_between_rates, parse_timecode
from .media_probe import read_frames

__all__ = ["contact_sheet", "draw_text", "retake_sheet", "retake_sheet_rows", "text_width", "write_png", "SheetItem"]

EDGE = (255, 160, 40)          # the bar a retake sheet draws at each edge of the window

# 5x7 glyphs, rows top to bottom, '#' = ink. Lower case prints as upper case; unknown characters as a box.
_GLYPHS = {
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.", "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####", "3": "####.|....#|....#|.###.|....#|....#|####.",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.", "5": "#####|#....|####.|....#|....#|#...#|.###.",
    "6": "..##.|.#...|#....|####.|#...#|#...#|.###.", "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.", "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
    "A": ".###.|#...#|#...#|#####|#...#|#...#|#...#", "B": "####.|#...#|#...#|####.|#...#|#...#|####.",
    "C": ".###.|#...#|#....|#....|#....|#...#|.###.", "D": "###..|#..#.|#...#|#...#|#...#|#..#.|###..",
    "E": "#####|#....|#....|####.|#....|#....|#####", "F": "#####|#....|#....|####.|#....|#....|#....",
    "G": ".###.|#...#|#....|#.###|#...#|#...#|.####", "H": "#...#|#...#|#...#|#####|#...#|#...#|#...#",
    "I": ".###.|..#..|..#..|..#..|..#..|..#..|.###.", "J": "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
    "K": "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#", "L": "#....|#....|#....|#....|#....|#....|#####",
    "M": "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#", "N": "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
    "O": ".###.|#...#|#...#|#...#|#...#|#...#|.###.", "P": "####.|#...#|#...#|####.|#....|#....|#....",
    "Q": ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#", "R": "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
    "S": ".####|#....|#....|.###.|....#|....#|####.", "T": "#####|..#..|..#..|..#..|..#..|..#..|..#..",
    "U": "#...#|#...#|#...#|#...#|#...#|#...#|.###.", "V": "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
    "W": "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.", "X": "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
    "Y": "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..", "Z": "#####|....#|...#.|..#..|.#...|#....|#####",
    " ": ".....|.....|.....|.....|.....|.....|.....", ".": ".....|.....|.....|.....|.....|.##..|.##..",
    ",": ".....|.....|.....|.....|.##..|..#..|.#...", ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
    ";": ".....|.##..|.##..|.....|.##..|..#..|.#...", "-": ".....|.....|.....|#####|.....|.....|.....",
    "_": ".....|.....|.....|.....|.....|.....|#####", "+": ".....|..#..|..#..|#####|..#..|..#..|.....",
    "=": ".....|.....|#####|.....|#####|.....|.....", "/": "....#|....#|...#.|..#..|.#...|#....|#....",
    "#": ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.", "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
    ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...", "%": "##...|##..#|...#.|..#..|.#...|#..##|...##",
    "'": "..#..|..#..|.#...|.....|.....|.....|.....", "!": "..#..|..#..|..#..|..#..|..#..|.....|..#..",
    "?": ".###.|#...#|....#|...#.|..#..|.....|..#..", "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.",
    ">": ".#...|..#..|...#.|....#|...#.|..#..|.#...", "[": ".###.|.#...|.#...|.#...|.#...|.#...|.###.",
    "]": ".###.|...#.|...#.|...#.|...#.|...#.|.###.", "*": ".....|#.#.#|.###.|#####|.###.|#.#.#|.....",
}
_BOX = "#####|#...#|#...#|#...#|#...#|#...#|#####"
_MASKS = {ch: np.array([[c == "#" for c in row] for row in g.split("|")], bool) for ch, g in {**_GLYPHS, "\0": _BOX}.items()}

SheetItem = Union[str, Path, tuple, np.ndarray]


def text_width(text: str, scale: int = 2) -> int:
    """Width in pixels of `text` drawn by draw_text at `scale`."""
    return len(text) * 6 * scale


def draw_text(image: np.ndarray, text: str, x: int, y: int, *, scale: int = 2,
              color=(255, 255, 255), shadow=(0, 0, 0)) -> np.ndarray:
    """Draw `text` into an RGB array (in place) with its top-left corner at (x, y); clipped at the edges."""
    h, w = image.shape[:2]
    for i, ch in enumerate(text.upper()):
        mask = np.kron(_MASKS.get(ch, _MASKS["\0"]), np.ones((scale, scale), bool))
        for dx, dy, ink in ((scale // 2 or 1, scale // 2 or 1, shadow), (0, 0, color)):
            if ink is None:
                continue
            gx, gy = x + i * 6 * scale + dx, y + dy
            x0, y0 = max(gx, 0), max(gy, 0)
            x1, y1 = min(gx + mask.shape[1], w), min(gy + mask.shape[0], h)
            if x1 <= x0 or y1 <= y0:
                continue
            region = image[y0:y1, x0:x1]
            region[mask[y0 - gy:y1 - gy, x0 - gx:x1 - gx]] = ink
    return image


def write_png(rgb: np.ndarray, dest: Path) -> Path:
    """Write an RGB array as a PNG file, atomically."""
    dest = Path(dest)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = rgb.shape[1], rgb.shape[0], "rgb24", Fraction(1, 25)
    packets = codec.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")) + codec.encode(None)
    return write_atomic(dest, b"".join(bytes(p) for p in packets), what=f"the contact sheet {dest.name}")


def _resize(rgb: np.ndarray, height: int) -> np.ndarray:
    width = max(2, round(rgb.shape[1] * height / rgb.shape[0]))
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
    return frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()


def _load(items: list[SheetItem]) -> list[tuple[np.ndarray, str]]:
    """Each item as (RGB array, caption); video frames are read once per file."""
    wanted: dict[str, set[int]] = {}
    for item in items:
        if isinstance(item, tuple):
            wanted.setdefault(str(item[0]), set()).add(int(item[1]))
        elif not isinstance(item, np.ndarray):
            wanted.setdefault(str(item), set()).add(0)
    frames = {path: read_frames(path, idx) for path, idx in wanted.items()}
    out = []
    for item in items:
        if isinstance(item, np.ndarray):
            out.append((item, ""))
        elif isinstance(item, tuple):
            caption = str(item[2]) if len(item) > 2 else f"#{int(item[1])}"
            out.append((frames[str(item[0])][int(item[1])], caption))
        else:
            out.append((frames[str(item)][0], ""))
    return out


def contact_sheet(rows: Sequence[tuple[str, Sequence[SheetItem]]], dest: Path, *, thumb_height: int = 120,
                  gap: int = 6, title: Sequence[str] = ()) -> Path:
    """Write a PNG contact sheet: `title` lines on top, then one labelled row of thumbnails per (label, items).

    An item is a video or image path (its first frame), a (path, frame_index) or (path, frame_index, caption)
    tuple (captioned '#index' unless a caption is given), or an RGB array (drawn at the row's height, keeping its
    width when it is narrower than 16 pixels: a bar). Labels use a built-in bitmap font, so no font needs to be
    installed. Returns `dest`.
    """
    if not rows:
        raise MediaError("A contact sheet needs at least one row of pictures.")
    scale = 2 if thumb_height >= 80 else 1
    line = 7 * scale + 2 * gap
    loaded = []
    for label, items in rows:
        thumbs = []
        for rgb, caption in _load(list(items)):
            if rgb.shape[1] < 16:        # a bar: as tall as the row, as narrow as it is
                thumbs.append((np.repeat(np.asarray(rgb, np.uint8)[:1], thumb_height, axis=0), caption))
            else:
                thumbs.append((_resize(rgb, thumb_height), caption))
        loaded.append((label, thumbs))
    label_w = max(text_width(label, scale) for label, _ in loaded) + 2 * gap
    row_w = [sum(t.shape[1] + gap for t, _ in thumbs) for _, thumbs in loaded]
    title_h = len(title) * (7 * scale + gap) + (gap if title else 0)
    width = max(label_w + max(row_w + [1]) + gap, max((text_width(t, scale) + 2 * gap for t in title), default=0))
    row_h = thumb_height + line
    sheet = np.full((gap + title_h + row_h * len(loaded), width, 3), 32, np.uint8)
    for n, text in enumerate(title):
        draw_text(sheet, text, gap, gap + n * (7 * scale + gap), scale=scale, color=(255, 255, 255))
    for r, (label, thumbs) in enumerate(loaded):
        top = gap + title_h + r * row_h
        draw_text(sheet, label, gap, top + thumb_height // 2 - 7 * scale // 2, scale=scale)
        x = label_w
        for thumb, caption in thumbs:
            sheet[top:top + thumb_height, x:x + thumb.shape[1]] = thumb
            if caption:
                draw_text(sheet, caption, x, top + thumb_height + gap // 2, scale=scale, color=(230, 230, 160))
            x += thumb.shape[1] + gap
    return write_png(sheet, Path(dest))


def retake_sheet_rows(plan, version, *, around: int = 2) -> tuple[list[str], list[tuple[str, list]]]:
    """What a retake's before/after sheet shows: title lines (clip and track, record span, version, prompt), two rows.

    Columns: `around` frames on both sides of each edge of the window and its middle, each captioned with its
    record timecode; an orange bar stands at each edge. "before" is the original media; "after" is what the
    timeline shows with the version (the version inside the window, the original outside it).
    """
    media_rate = exact_rate(plan.media.frame_rate)
    record_rate = exact_rate(plan.record_range.start_time.rate)
    start_text = plan.record_timecode.split("-")[0]
    drop = ";" in start_text
    record_start = parse_timecode(start_text, record_rate, drop_frame=drop)
    ws, wf = plan.window_start_frame, plan.window_frames
    last_file = plan.media.frame_count - 1 if plan.media.frame_count else ws + wf + around
    first_version = round((plan.source_range.start_time - plan.version_range.start_time).to_seconds() * float(media_rate))
    picks = sorted({*range(-around, around), wf // 2, *range(wf - around, wf + around)})
    picks = [o for o in picks if 0 <= ws + o <= last_file]

    def tc(o: int) -> str:
        step = frames_between_rates(o / float(plan.scalar or 1), media_rate, record_rate)
        return format_timecode(record_start + round(step), record_rate, drop)

    bar = np.zeros((2, 4, 3), np.uint8)
    bar[:] = EDGE
    before, after = [], []
    for o in picks:
        if o in (0, wf):
            before.append(bar)
            after.append(bar)
        inside = 0 <= o < wf
        before.append((plan.media.path, ws + o, tc(o)))
        after.append((str(version.path), max(0, first_version + o), tc(o)) if inside else (plan.media.path, ws + o, tc(o)))
    last = format_timecode(record_start + round(frames_between_rates((wf - 1) / float(plan.scalar or 1), media_rate,
                                                                     record_rate)), record_rate, drop)
    prompt = " ".join(plan.prompt.split())
    title = [f"{plan.label}  {start_text}-{last}  {version.name}",
             f"prompt: {prompt if len(prompt) <= 90 else prompt[:87] + '...'}"]
    return title, [("before", before), (f"after {version.key}", after)]


def retake_sheet(plan, version, dest: Path, *, thumb_height: int = 90, around: int = 2) -> Path:
    """Write a retake's before/after contact sheet (see `retake_sheet_rows`) as a PNG at `dest`."""
    title, rows = retake_sheet_rows(plan, version, around=around)
    return contact_sheet(rows, Path(dest), thumb_height=thumb_height, title=title)
