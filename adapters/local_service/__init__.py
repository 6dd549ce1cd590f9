"""The embedded local retake service: fal and RunComfy protocols over loopback, with an offline preview engine."""

from .config import Fault, LocalServiceConfig
from .engine import PREVIEW_NOTE, tone_frequency, window_frames
from .server import LocalService, serve

__all__ = ["LocalService", "LocalServiceConfig", "Fault", "serve", "PREVIEW_NOTE", "tone_frequency", "window_frames"]
