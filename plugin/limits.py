"""The services' limits and prices, kept as data (data/services.json) and looked up per service and model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources

from .errors import InputError

__all__ = ["Limits", "limits_for", "largest_input_frames", "DEFAULT_CONTEXT_S", "WORKING_SIZE", "DEFAULT_CROSSFADE_MS"]

# Seconds of the shot sent on each side of the window. The hosted model regenerates about 0.5 s beyond each edge
# (its mask covers whole latent blocks; LTX Desktop mirrors a 0.5 s gateway constant), so 1 s leaves about 0.5 s of
# untouched footage each side to condition on, and a 2 s window (the shortest) with 1 s each side is 4 s: above the
# model's minimum input of 73 frames at any rate from 18.25 fps up (below that the context grows to reach it, and
# the plan says so). Every second of context is billed like a second of the window: a 2.5 s window costs 4.5 s of
# input rather than the 9.7 s the limits would allow.
DEFAULT_CONTEXT_S = 1.0
WORKING_SIZE = (1920, 1080)   # the hosted model renders at 1920x1080 or 1080x1920 whatever it is sent
# The sound's crossfade at each edge of a window whose sound changes: 20 ms is a whole period of the lowest hum
# (50 Hz) so even a low tone never steps, is what de-click fades in audio editors use (5 to 20 ms), and stays well
# inside one frame (41.7 ms at 24 fps), so nobody hears a fade: only the click is gone.
DEFAULT_CROSSFADE_MS = 20


@dataclass(frozen=True)
class Limits:
    """What a retake service accepts, and what it costs."""

    min_window_s: float
    max_window_s: float
    max_start_s: float
    min_input_frames: int
    max_input_s: float
    frame_multiple: int                  # input frame counts must be k * frame_multiple + 1
    max_prompt_chars: int
    advised_max_input_bytes: int
    price_usd_per_s: float | None
    price_basis: str
    price_source: str

    def min_window_frames(self, rate: Fraction) -> int:
        return math.ceil(Fraction(self.min_window_s).limit_denominator(1000) * rate)

    def max_input_frames(self, rate: Fraction) -> int:
        return largest_input_frames(math.floor(Fraction(self.max_input_s).limit_denominator(1000) * rate), self.frame_multiple)

    def max_window_frames(self, rate: Fraction) -> int:
        by_window = math.floor(Fraction(self.max_window_s).limit_denominator(1000) * rate)
        return min(by_window, self.max_input_frames(rate))

    def estimate_usd(self, input_seconds: float) -> float | None:
        return None if self.price_usd_per_s is None else round(self.price_usd_per_s * input_seconds, 2)


def largest_input_frames(at_most: int, multiple: int) -> int:
    """The largest k * multiple + 1 that is <= at_most (0 when none is)."""
    if at_most < 1:
        return 0
    return ((at_most - 1) // multiple) * multiple + 1


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(resources.files("ltx_retake").joinpath("data/services.json").read_text(encoding="utf-8"))


def limits_for(provider: str, model: str | None = None) -> Limits:
    """The limits for a service and model (the service's '*' entry when the model is not listed)."""
    table = _table()
    if provider not in table or provider.startswith("_"):
        known = ", ".join(k for k in table if not k.startswith("_"))
        raise InputError(f"Unknown service {provider!r}; use one of: {known}.")
    entry = table[provider].get(model or "*", table[provider]["*"])
    return Limits(**entry)
