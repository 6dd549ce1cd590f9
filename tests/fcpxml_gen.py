"""Small FCPXML projects for tests: a spine of asset clips at any rate, a connected clip, markers, a gap."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ltx_retake.timing import format_timecode, is_drop_frame_rate, parse_timecode

__all__ = ["GeneratedProject", "make_fcpxml", "seconds"]


def seconds(frames: int | Fraction, rate: Fraction) -> str:
    """Frames at `rate` as an FCPXML time value."""
    t = Fraction(frames) / Fraction(rate)
    return f"{t.numerator}s" if t.denominator == 1 else f"{t.numerator}/{t.denominator}s"


@dataclass(frozen=True)
class GeneratedProject:
    text: str
    rate: Fraction
    start: int                  # the sequence's first record frame (its tcStart in frames)
    fps: int                    # frames in a nominal second


def make_fcpxml(rate: Fraction, *, version: str = "1.10", tc: str = "01:00:00:00", name: str = "Gen") -> GeneratedProject:
    """A project at `rate`: A (2 s), B (3 s, with two markers and a connected clip C on lane 1), a 1 s gap, D (1 s).

    Media timecodes: A starts at 10:00:00:00 (5 s long), B at 11:00:00:00 (4 s), C at 12:00:00:00 (2 s); the sequence
    starts at `tc` (drop-frame at 29.97 and 59.94)."""
    rate = Fraction(rate)
    fps = round(rate)
    df = is_drop_frame_rate(rate)
    if df and ";" not in tc:
        tc = tc[:8] + ";" + tc[9:]
    start = parse_timecode(tc, rate)
    media = {key: parse_timecode(format_timecode(h * 3600 * fps if not df else parse_timecode(f"{h:02d}:00:00;00", rate), rate), rate)
             for key, h in (("A", 10), ("B", 11), ("C", 12))}
    frame = seconds(1, rate)
    src = lambda n: f"file:///Volumes/Shoot/Day%201/{n}.mov"  # noqa: E731
    if int(version.split(".")[1]) >= 9:
        rep = lambda n: f'>\n            <media-rep kind="original-media" sig="0" src="{src(n)}"/>\n        </asset>'  # noqa: E731
        plain = lambda n: ""  # noqa: E731
    else:
        rep = lambda n: "/>"  # noqa: E731
        plain = lambda n: f' src="{src(n)}"'  # noqa: E731
    fmt = "DF" if df else "NDF"

    def asset(rid: str, key: str, file: str, length: int) -> str:
        return (f'        <asset id="{rid}" name="{file}" uid="{rid.upper()}00"{plain(file)} start="{seconds(media[key], rate)}" '
                f'duration="{seconds(length * fps, rate)}" hasVideo="1" format="r1" hasAudio="1" audioSources="1" '
                f'audioChannels="2" audioRate="48000"{rep(file)}')

    at = lambda f: seconds(start + f, rate)  # noqa: E731
    b_in = media["B"] + fps // 2
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>

<fcpxml version="{version}">
    <resources>
        <format id="r1" name="FFVideoFormat1080p" frameDuration="{frame}" width="1920" height="1080" colorSpace="1-1-1 (Rec. 709)"/>
{asset("r2", "A", "A001C001", 5)}
{asset("r3", "B", "A001C002", 4)}
{asset("r4", "C", "B001C001", 2)}
        <effect id="r5" name="Basic Title" uid=".../Titles.localized/Bumper:Opener.localized/Basic Title.localized/Basic Title.moti"/>
    </resources>
    <library location="file:///Volumes/Shoot/{name}.fcpbundle/">
        <event name="Day 1" uid="E1">
            <project name="{name}" uid="P1" modDate="2024-01-01 10:00:00 +0000">
                <sequence format="r1" duration="{seconds(7 * fps, rate)}" tcStart="{seconds(start, rate)}" tcFormat="{fmt}" audioLayout="stereo" audioRate="48k">
                    <spine>
                        <asset-clip ref="r2" offset="{at(0)}" name="A" start="{seconds(media['A'] + fps, rate)}" duration="{seconds(2 * fps, rate)}" tcFormat="{fmt}" audioRole="dialogue">
                            <marker start="{seconds(media['A'] + fps + 5, rate)}" duration="{frame}" value="Marker A"/>
                        </asset-clip>
                        <asset-clip ref="r3" offset="{at(2 * fps)}" name="B" start="{seconds(b_in, rate)}" duration="{seconds(3 * fps, rate)}" tcFormat="{fmt}" audioRole="dialogue">
                            <asset-clip ref="r4" lane="1" offset="{seconds(b_in + fps // 4, rate)}" name="C" start="{seconds(media['C'] + 2, rate)}" duration="{seconds(fps, rate)}" audioRole="dialogue"/>
                            <marker start="{seconds(b_in + fps, rate)}" duration="{frame}" value="Marker B1" completed="0"/>
                            <keyword start="{seconds(b_in, rate)}" duration="{seconds(3 * fps, rate)}" value="hero"/>
                            <marker start="{seconds(b_in + 2 * fps + fps // 2, rate)}" duration="{frame}" value="Marker B2"/>
                            <metadata>
                                <md key="com.apple.proapps.studio.reel" value="A001"/>
                            </metadata>
                        </asset-clip>
                        <gap name="Gap" offset="{at(5 * fps)}" start="3600s" duration="{seconds(fps, rate)}">
                            <title ref="r5" lane="1" offset="3600s" name="Opener" duration="{seconds(fps, rate)}"/>
                        </gap>
                        <asset-clip ref="r2" offset="{at(6 * fps)}" name="D" start="{seconds(media['A'] + 4 * fps, rate)}" duration="{seconds(fps, rate)}" tcFormat="{fmt}" audioRole="dialogue"/>
                    </spine>
                </sequence>
            </project>
        </event>
    </library>
</fcpxml>
"""
    return GeneratedProject(text, rate, start, fps)
