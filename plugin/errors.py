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
from any text that may have come from outside before it is shown.
"""

from __future__ import annotations

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
    """Remember a secret so `redact` can strip it from any text shown to the user."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """Return `text` with every registered secret replaced by `***`."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text
