"""The one exception tree of ltx-retake: what callers catch, and the exit code each maps to.

    RetakeError                       exit 1   anything the project raises on purpose
    ├── InputError                    exit 2   the timeline, selection or arguments are not usable
    │   ├── TimelineReadError                  the file cannot be read as a timeline
    │   │   └── RateUndecidedError             an EDL that does not say its rate (`.fits`: the rates its timecodes allow)
    │   ├── SelectionError                     the clip / range / markers do not select retakeable media
    │   ├── UnsupportedEditError               a speed effect, transition or nesting we refuse rather than get wrong
    │   └── PlanError                          the selection breaks the service's limits (too long, too little media)
    ├── MediaError                    exit 3   ffmpeg / decoding / conforming / verifying failed
    ├── ServiceError                  exit 4   the retake service said no, or could not be reached
    │   ├── AuthError                          missing or rejected key
    │   ├── BalanceError                       the account has no credit
    │   ├── ServiceValidationError             the service rejected the request's inputs
    │   ├── ContentRefusedError                the safety filter refused the prompt or the footage
    │   ├── JobFailedError                     the job ran and failed on the service's side
    │   ├── TransientServiceError              429 / 5xx / network trouble that outlasted the retries
    │   └── SubmitUncertainError               the submit may have reached the server; not resent (no second bill)
    ├── SpliceError                   exit 5   the result cannot be put back on the timeline
    └── CancelledError                exit 130 the user cancelled

Every message says what is wrong and what to do. None carries a key: `redact` strips secrets
from any text that may have come from outside before it is shown. Text a service sends (its error words,
log lines, fields of its answers) goes through `scrub` (or `scrub_data` for JSON) before it reaches a
message, a log, the journal or a timeline's provenance: that is the one place for the rule.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

__all__ = [
    "RetakeError",
    "InputError",
    "TimelineReadError",
    "RateUndecidedError",
    "SelectionError",
    "UnsupportedEditError",
    "PlanError",
    "MediaError",
    "ServiceError",
    "AuthError",
    "BalanceError",
    "ServiceValidationError",
    "ContentRefusedError",
    "JobFailedError",
    "TransientServiceError",
    "SubmitUncertainError",
    "SpliceError",
    "CancelledError",
    "redact",
    "register_secret",
    "has_secret",
    "scrub",
    "scrub_data",
]


class RetakeError(Exception):
    """Base of everything ltx-retake raises on purpose."""

    exit_code = 1


class InputError(RetakeError):
    exit_code = 2


class TimelineReadError(InputError):
    pass


class RateUndecidedError(TimelineReadError):
    """A timeline file that does not say its frame rate; `fits` lists the rates its timecodes allow (exact)."""

    def __init__(self, message: str, fits=()):
        super().__init__(message)
        self.fits = tuple(fits)


class SelectionError(InputError):
    pass


class UnsupportedEditError(SelectionError):
    pass


class PlanError(InputError):
    pass


class MediaError(RetakeError):
    exit_code = 3


class ServiceError(RetakeError):
    """A service said no. `request_id` is kept whenever one exists, so the job can be recovered."""

    exit_code = 4

    def __init__(self, message: str, *, request_id: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.status_code = status_code


class AuthError(ServiceError):
    pass


class BalanceError(ServiceError):
    pass


class ServiceValidationError(ServiceError):
    pass


class ContentRefusedError(ServiceError):
    pass


class JobFailedError(ServiceError):
    pass


class TransientServiceError(ServiceError):
    pass


class SubmitUncertainError(ServiceError):
    pass


class SpliceError(RetakeError):
    exit_code = 5


class CancelledError(RetakeError):
    exit_code = 130


_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so `redact` can strip it from any text shown to the user (as typed, and URL-encoded)."""
    if value and len(value) >= 6:
        _SECRETS.add(value)
        for form in (quote(value, safe=""), quote(value)):
            if form != value:
                _SECRETS.add(form)


def redact(text: str) -> str:
    """Return `text` with every registered secret replaced by `***` (the longest first, so no half is left)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def has_secret(text: str) -> bool:
    """Does `text` hold a registered secret?"""
    return any(secret in text for secret in _SECRETS)


# A URL's query and fragment (signatures, tokens, keys echoed back) are never kept from a service's text.
_URL_TAIL = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#\"'<>]*)[?#][^\s\"'<>]*")
# `token=abc`, `"api_key": "abc"`: the value after a word that names a credential; `Key abc1234567`,
# `Bearer abc1234567`: a token-like word (8 characters or more, a digit among them) after the scheme.
_NAMES = (r"authorization|bearer|key|api[_-]?key|access[_-]?key|token|access[_-]?token|secret|password|passwd|"
          r"signature|sig|credentials?")
_CREDENTIAL = re.compile(rf"(?i)\b({_NAMES})\b(\"?\s*[:=]\s*\"?)([^\s\"',;&]{{4,}})")
_SCHEME_TOKEN = re.compile(r"(?i)\b(key|bearer|token)\b(\s+)((?=[^\s\"',;&]*\d)[^\s\"',;&]{8,})")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
TEXT_LIMIT = 300


def scrub(value: Any, limit: int = TEXT_LIMIT) -> str:
    """Service text made safe to show or keep: secrets, credential values and URL query strings removed,
    control characters dropped, whitespace collapsed to one line, at most `limit` characters (then `...`)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > 64 * limit:                      # never scan megabytes for a line of a few hundred characters
        text = text[: 64 * limit]
    text = redact(text)
    text = _URL_TAIL.sub(lambda m: m.group(1) + "?...", text)
    text = _CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    text = _SCHEME_TOKEN.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: max(limit - 3, 0)].rstrip() + "..."


def scrub_data(value: Any, *, depth: int = 4, items: int = 32, limit: int = TEXT_LIMIT) -> Any:
    """JSON a service sent, made safe to keep: every text scrubbed (keys too), at most `items` entries per
    object or list and `depth` levels (deeper parts become their scrubbed text); numbers, booleans, None kept."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return scrub(value, limit)
    if depth <= 0:
        return scrub(value, limit)
    if isinstance(value, dict):
        out = {}
        for key, item in list(value.items())[:items]:
            out[scrub(key, 64)] = scrub_data(item, depth=depth - 1, items=items, limit=limit)
        return out
    if isinstance(value, (list, tuple)):
        return [scrub_data(item, depth=depth - 1, items=items, limit=limit) for item in list(value)[:items]]
    return scrub(value, limit)
