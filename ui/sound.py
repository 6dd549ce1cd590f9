"""Sound out of the panel: 16-bit PCM played through Qt Multimedia (PySide6-Addons), or a sentence saying why not.

`sound_output()` gives a `QtSoundOutput` where Qt Multimedia imports and the machine has a sound device, else None
and the sentence the panel shows where Play would be. Anything with the same three methods (`play`, `stop`,
`elapsed`) can stand in for it (tests hand in one that keeps what it was given). `mix` lays pieces of sound
on a silent span, as a timeline plays several audio tracks at once.
"""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np

__all__ = ["SoundOutput", "QtSoundOutput", "sound_output", "mix", "multimedia_problem", "SOUND_RATE"]

SOUND_RATE = 48000
NO_MULTIMEDIA = ("Sound needs Qt Multimedia, which is not installed here: pip install PySide6-Addons "
                 "(it comes with the ui extra).")


class SoundOutput(Protocol):
    """Where PCM goes: played from its start; `elapsed` is how far it has played, in seconds."""

    def play(self, pcm: np.ndarray, rate: int) -> None: ...

    def stop(self) -> None: ...

    def elapsed(self) -> float: ...


@functools.cache
def multimedia_problem() -> str:
    """Why Qt Multimedia cannot be used here ("" when it can): not installed, or a system library it needs missing."""
    try:
        from PySide6 import QtMultimedia  # noqa: F401
    except ImportError as exc:
        text = str(exc)
        if "libpulse" in text:
            return ("Sound needs the PulseAudio client library, which this machine lacks (libpulse.so.0): on Debian or "
                    "Ubuntu, apt-get install libpulse0.")
        if "No module named" in text:
            return NO_MULTIMEDIA
        return f"Qt Multimedia does not load here ({text}); sound is off."
    return ""


class QtSoundOutput:
    """PCM to the default sound device through a QAudioSink (made on the GUI thread)."""

    def __init__(self, device=None):
        from PySide6.QtMultimedia import QMediaDevices

        self.device = device if device is not None else QMediaDevices.defaultAudioOutput()
        self._sink = None
        self._buffer = None

    def play(self, pcm: np.ndarray, rate: int) -> None:
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice
        from PySide6.QtMultimedia import QAudioFormat, QAudioSink

        self.stop()
        pcm = np.ascontiguousarray(pcm, dtype="<i2")
        fmt = QAudioFormat()
        fmt.setSampleRate(int(rate))
        fmt.setChannelCount(int(pcm.shape[1]) if pcm.ndim == 2 else 1)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        self._buffer = QBuffer()
        self._buffer.setData(QByteArray(pcm.tobytes()))
        self._buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        self._sink = QAudioSink(self.device, fmt)
        self._sink.start(self._buffer)

    def stop(self) -> None:
        if self._sink is not None:
            self._sink.stop()
            self._sink = None
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None

    def elapsed(self) -> float:
        return self._sink.processedUSecs() / 1e6 if self._sink is not None else 0.0


def sound_output() -> tuple[SoundOutput | None, str]:
    """The machine's sound output, or None and the sentence saying why there is none."""
    problem = multimedia_problem()
    if problem:
        return None, problem
    from PySide6.QtMultimedia import QMediaDevices

    if not QMediaDevices.audioOutputs():
        return None, "No sound device here (none is connected, or no sound server runs), so Play is silent."
    return QtSoundOutput(), ""


def mix(length: int, pieces, channels: int = 2) -> np.ndarray:
    """Lay `pieces` [(first sample, int16 PCM (n, channels))] on `length` samples of silence, summed and clipped."""
    acc = np.zeros((length, channels), np.int32)
    for first, pcm in pieces:
        a, b = max(0, first), min(length, first + len(pcm))
        if b > a:
            acc[a:b] += pcm[a - first:b - first]
    return np.clip(acc, -32768, 32767).astype(np.int16)
