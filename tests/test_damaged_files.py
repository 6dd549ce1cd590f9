"""Damaged or foreign files in every timeline format: a sentence naming the file and what to do, never a library's
exception text or a traceback, and nothing written."""

from __future__ import annotations

import re

import pytest

from ltx_retake.cli import main

# what a library's own words look like: Python exception names and reprs, pybind signatures, adapter internals
LIBRARY_WORDS = re.compile(r"Traceback|NoneType|object has no attribute|DescribedSlots|Invoked with|incompatible function "
                           r"arguments|Unknown event type|KeyError|AttributeError|TypeError|line \d+, in ")

DAMAGED = {
    "empty.edl": b"",
    "garbage.edl": b"TITLE: x\n001  AX  V  Q  01:00:00:00 nonsense\n",
    "half.xml": b'<?xml version="1.0"?>\n<xmeml version="4"><sequence><media><video><track><clipitem>',
    "foreign.xml": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n',
    "noresources.fcpxml": b'<?xml version="1.0"?>\n<fcpxml version="1.10"><library><event><project name="p"><sequence '
                          b'format="r1"><spine><asset-clip ref="r2" offset="0s" duration="10s"/></spine></sequence>'
                          b'</project></event></library></fcpxml>\n',
    "random.aaf": bytes(range(256)) * 64,
    "text.otio": b"this is not json\n",
    "wrong.otio": b'{"OTIO_SCHEMA": "Timeline.1", "tracks": 5}',
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_file_gets_a_sentence_naming_it(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_bytes(DAMAGED[name])
    code = main(["retake", str(path), "--clip", "#1", "--prompt", "x", "--rate", "24", "-o", str(tmp_path / "out.otio")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert name in err and not LIBRARY_WORDS.search(err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_truncated_real_aaf_gets_a_sentence(corpus, tmp_path, capsys):
    path = tmp_path / "cut.aaf"
    path.write_bytes((corpus / "aaf" / "transitions.aaf").read_bytes()[:40_000])
    assert main(["versions", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cut.aaf" in err and "Export it again" in err and not LIBRARY_WORDS.search(err), err
