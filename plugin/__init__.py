"""ltx-retake: retake a window of a clip on a timeline with LTX-2 and splice it back as a new version."""

__version__ = "0.1.0"
