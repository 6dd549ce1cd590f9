"""Settings: service base URLs, model ids, keys, ffmpeg, output folders; from defaults, a file and the environment.

Keys are looked for in this order: the environment (FAL_KEY, or FAL_KEY_ID + FAL_KEY_SECRET; RUNCOMFY_TOKEN),
then the OS keyring (service "ltx-retake", usernames "fal" and "runcomfy"), then the settings file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import InputError, register_secret
from .limits import DEFAULT_CONTEXT_S, DEFAULT_CROSSFADE_MS

__all__ = ["KEYRING_SERVICE", "Secret", "Settings", "journal_path", "keyring_keys", "load_settings", "save_key",
           "save_settings", "settings_path", "parse_size", "order_options"]

log = logging.getLogger(__name__)

KEYRING_SERVICE = "ltx-retake"
KEYRING_TIMEOUT = 3.0                  # seconds: a keyring that waits on an unlock prompt is treated as empty
_KEY_VARS = {"fal": "FAL_KEY", "runcomfy": "RUNCOMFY_TOKEN"}       # keyring username -> its environment variable
_KEY_NAMES = {"fal": "fal key", "runcomfy": "RunComfy token"}


class Secret:
    """A key that never shows itself: its repr and str are `***`; `.reveal()` is for the HTTP header only."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        register_secret(value)
        if ":" in value:                    # a fal key given as <id>:<secret>: an error may echo one half
            for part in value.split(":"):
                register_secret(part)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything that is a setting rather than a constant. Keys are never read from a timeline."""

    fal_queue_url: str = "https://queue.fal.run"
    fal_rest_url: str = "https://rest.fal.ai"
    fal_model: str = "fal-ai/ltx-2/retake-video"
    runcomfy_url: str = "https://model-api.runcomfy.net"
    runcomfy_model: str = "ltx/ltx-2/retake-video"
    fal_key: Secret | None = field(default=None, repr=False)
    runcomfy_token: Secret | None = field(default=None, repr=False)
    file_host_url: str | None = None     # a user-supplied upload endpoint for RunComfy inputs without a fal key
    ffmpeg: str | None = None            # path to an ffmpeg binary; default: the one imageio-ffmpeg ships
    output_dir: str | None = None        # where retake media goes; default: `<timeline>_retakes/` beside the output
    journal: str | None = None           # the job journal (SQLite); default: journal.sqlite in the user's data folder
    cost_threshold_usd: float = 5.0      # a run estimated above this asks before sending (--yes skips the question)
    max_download_mb: int = 4096          # a result larger than this is refused, not written
    # A job still queued or running after this many minutes is left on the service (`ltx-retake resume` follows
    # it later): a 20 s retake renders in a few minutes on fal, so half an hour is many times a normal job and
    # a long busy queue, yet a stuck job no longer holds the terminal (or a panel's job row) for ever.
    max_wait_min: float = 30.0
    allow_private_hosts: bool = False    # may a service's URLs point at private network addresses (10/8, 192.168/16)?
    delivery: str = "auto"               # the codec versions are delivered in (auto, h264, prores, dnxhr); --deliver wins
    context_s: float | None = DEFAULT_CONTEXT_S   # seconds of the shot sent each side of the window ("max": all allowed)
    input_max_size: str = "1920x1080"    # larger pictures are sent at this size (the model's); "" sends the original
    audio_crossfade_ms: float = DEFAULT_CROSSFADE_MS   # a changed sound crossfades this long at each edge (0: none)
    dissolve_frames: int = 0             # a changed picture dissolves over this many frames at each edge (0: a cut)
    path_maps: tuple[str, ...] = ()      # "FROM=TO" each: where another system's media paths are on this machine
    media_search: tuple[str, ...] = ()   # folders where media a timeline cannot lead to is found by name


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`1920x1080` as (1920, 1080); empty, "none" or "full" as None (the source's own size)."""
    t = (text or "").strip().lower()
    if t in ("", "none", "full", "original"):
        return None
    w, sep, h = t.partition("x")
    if sep and w.isdigit() and h.isdigit() and int(w) >= 16 and int(h) >= 16:
        return int(w), int(h)
    raise InputError(f"The size {text!r} is not WIDTHxHEIGHT (like 1920x1080); fix input_max_size in the settings.")


def order_options(settings: Settings, *, context: str | None = None, full_res: bool = False, dissolve: int | None = None,
                 crossfade: float | None = None) -> dict:
    """The order's context, picture size and seams: what the command line says, else the settings'."""
    if context is None:
        context_s = settings.context_s
    elif context.strip().lower() == "max":
        context_s = None
    else:
        try:
            context_s = float(context)
        except ValueError:
            raise InputError(f"--context {context} is not a number of seconds or max; e.g. --context 1.5.") from None
    if context_s is not None and not 0 <= context_s <= 20:
        raise InputError(f"--context {context_s:g} is outside 0 to 20 seconds; the input can hold at most 20 s in all.")
    crossfade_ms = settings.audio_crossfade_ms if crossfade is None else crossfade
    dissolve_frames = settings.dissolve_frames if dissolve is None else dissolve
    if crossfade_ms < 0 or dissolve_frames < 0:
        raise InputError("--crossfade and --dissolve take 0 or more (0 makes a plain cut).")
    return dict(context_s=context_s, max_size=None if full_res else parse_size(settings.input_max_size),
                crossfade_ms=crossfade_ms, dissolve_frames=dissolve_frames)


def settings_path() -> Path:
    """The user's settings file (JSON), under the OS's config folder."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("ltx-retake")) / "settings.json"


def journal_path(settings: Settings) -> Path:
    """The job journal: the `journal` setting, else journal.sqlite under the OS's per-user data folder."""
    if settings.journal:
        return Path(settings.journal)
    from platformdirs import user_data_dir

    return Path(user_data_dir("ltx-retake")) / "journal.sqlite"


_ENV = {
    "LTX_RETAKE_FAL_QUEUE_URL": "fal_queue_url",
    "LTX_RETAKE_FAL_REST_URL": "fal_rest_url",
    "LTX_RETAKE_FAL_MODEL": "fal_model",
    "LTX_RETAKE_RUNCOMFY_URL": "runcomfy_url",
    "LTX_RETAKE_RUNCOMFY_MODEL": "runcomfy_model",
    "LTX_RETAKE_FILE_HOST_URL": "file_host_url",
    "LTX_RETAKE_FFMPEG": "ffmpeg",
    "LTX_RETAKE_OUTPUT_DIR": "output_dir",
    "LTX_RETAKE_JOURNAL": "journal",
    "LTX_RETAKE_COST_THRESHOLD": "cost_threshold_usd",
    "LTX_RETAKE_MAX_DOWNLOAD_MB": "max_download_mb",
    "LTX_RETAKE_DELIVERY": "delivery",
    "LTX_RETAKE_CONTEXT_S": "context_s",
    "LTX_RETAKE_MAX_WAIT_MIN": "max_wait_min",
    "LTX_RETAKE_ALLOW_PRIVATE_HOSTS": "allow_private_hosts",
}
_NUMBERS = {"cost_threshold_usd": float, "max_download_mb": int, "audio_crossfade_ms": float, "dissolve_frames": int,
            "context_s": float, "max_wait_min": float}
_BOOLS = ("allow_private_hosts",)


def _yes_no(name: str, value) -> bool:
    """A true/false setting: JSON true/false, or 1/0, yes/no, true/false, on/off as text."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise InputError(f"The setting {name} must be true or false (1/0, yes/no), not {value!r}.")
_LISTS = ("path_maps", "media_search")     # lists of text in the settings file


def _text_list(name: str, value, where: str) -> tuple[str, ...]:
    """A settings list (of text) as a tuple, or a sentence saying how to write it."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        example = '["C:/Media=/mnt/media"]' if name == "path_maps" else '["/mnt/media"]'
        raise InputError(f"The setting {name} must be a list of text ({where}), e.g. {example}.")
    return tuple(v for v in value if v.strip())


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults, overlaid by the settings file (if any), overlaid by the environment.

    Keys: the environment first, then the OS keyring, then the settings file (see the module docstring)."""
    env = dict(os.environ) if env is None else env
    values: dict = {}
    file = path if path is not None else Path(env["LTX_RETAKE_SETTINGS"]) if env.get("LTX_RETAKE_SETTINGS") else settings_path()
    if file.exists():
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"The settings file {file} is not valid JSON ({exc.__class__.__name__}); fix or delete it.") from None
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"The settings file {file} has unknown keys {unknown}; known keys: {sorted(known)}.")
        values.update(data)
    for var, name in _ENV.items():
        if env.get(var):
            values[name] = env[var]
    if env.get("LTX_RETAKE_MEDIA_SEARCH"):
        values["media_search"] = tuple(p for p in env["LTX_RETAKE_MEDIA_SEARCH"].split(os.pathsep) if p)
    for name in _LISTS:
        if name in values:
            values[name] = _text_list(name, values[name], f"fix {file}")
    if str(values.get("context_s", "")).strip().lower() == "max":
        values["context_s"] = None
    for name, kind in _NUMBERS.items():
        if name in values and values[name] is not None:
            try:
                values[name] = kind(values[name])
            except (TypeError, ValueError):
                raise InputError(f"The setting {name} must be a number, not {values[name]!r}; fix the settings file or "
                                 "the environment variable.") from None
    for name in _BOOLS:
        if name in values:
            values[name] = _yes_no(name, values[name])
    fal = env.get("FAL_KEY") or (
        f"{env['FAL_KEY_ID']}:{env['FAL_KEY_SECRET']}" if env.get("FAL_KEY_ID") and env.get("FAL_KEY_SECRET") else None
    )
    for part in ("FAL_KEY_ID", "FAL_KEY_SECRET"):  # an error may echo one half of a split key
        register_secret(env.get(part))
    runcomfy = env.get("RUNCOMFY_TOKEN")
    stored = keyring_keys([user for user, have in (("fal", fal), ("runcomfy", runcomfy)) if not have])
    fal = fal or stored.get("fal") or values.get("fal_key")                      # the settings file comes last
    runcomfy = runcomfy or stored.get("runcomfy") or values.get("runcomfy_token")
    values["fal_key"] = Secret(fal) if fal else None
    values["runcomfy_token"] = Secret(runcomfy) if runcomfy else None
    return replace(Settings(), **values)


def keyring_keys(users: list[str], *, timeout: float = KEYRING_TIMEOUT) -> dict[str, str]:
    """The keys the OS keyring holds for `users` ("fal", "runcomfy") under the service "ltx-retake".

    Absent means absent, never an error: keyring not installed, no usable backend (NoKeyringError, the
    fail or null backend), any error from the backend, or no answer within `timeout` seconds (a locked
    keyring waiting on an unlock prompt) all give no key. The lookup runs in a helper thread for that reason.
    """
    if not users:
        return {}
    found: dict[str, str] = {}

    def look() -> None:
        try:
            import keyring
        except Exception:  # noqa: BLE001 - not installed, or broken: no keyring
            return
        for user in users:
            try:
                value = keyring.get_password(KEYRING_SERVICE, user)
            except Exception as exc:  # noqa: BLE001 - NoKeyringError, KeyringError, a D-Bus failure ...
                log.debug("no key from the OS keyring for %s (%s)", user, type(exc).__name__)
                continue
            if isinstance(value, str) and value.strip():
                found[user] = value.strip()

    thread = threading.Thread(target=look, name="ltx-retake-keyring", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.info("the OS keyring did not answer within %g s; going on without it", timeout)
        return {}
    return dict(found)


def save_key(service: str, value: str) -> None:
    """Store a key in the OS keyring (service "ltx-retake", username "fal" or "runcomfy"), where settings find it.

    InputError, saying what to do instead, when the service is unknown, the key is empty, keyring is not
    installed or the system has no keyring to keep it in. The key is never part of a message.
    """
    if service not in _KEY_VARS:
        raise InputError(f"Cannot store a key for {service!r}: keys are kept for {' and '.join(_KEY_VARS)} only.")
    value = (value or "").strip()
    if not value:
        raise InputError(f"The {_KEY_NAMES[service]} to store is empty; paste the whole key and try again.")
    register_secret(value)
    what = f"Cannot store the {_KEY_NAMES[service]} in the OS keyring"
    instead = f"set {_KEY_VARS[service]} in the environment instead"
    try:
        import keyring
        from keyring.backends import fail, null
    except Exception:  # noqa: BLE001 - not installed, or broken
        raise InputError(f"{what}: the keyring package is not installed (pip install keyring); {instead}.") from None
    try:
        backend = keyring.get_keyring()
        if isinstance(backend, (fail.Keyring, null.Keyring)):
            raise InputError(f"{what}: this system has no keyring to keep it in; {instead}.")
        keyring.set_password(KEYRING_SERVICE, service, value)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a locked or refusing keyring; its text might quote the value
        raise InputError(f"{what} ({type(exc).__name__}); unlock the keyring and try again, or {instead}.") from None


def save_settings(changes: dict, path: Path | None = None) -> Path:
    """Merge `changes` into the user's settings file and write it atomically; returns the file written.

    The file is the one `load_settings` reads: `path`, else LTX_RETAKE_SETTINGS, else `settings_path()`.
    A value of None removes the setting (its default applies again). InputError, as a sentence, for an
    unknown setting, for a key (keys go to the OS keyring or the environment, never here), for a number that
    is not one, for a settings file that is not a JSON object, and when the file cannot be written. Nothing
    is written unless everything is valid; a crash mid-write leaves the old file whole (`atomic.write_atomic`).
    """
    import math

    from .atomic import write_atomic

    if not isinstance(changes, dict):
        raise InputError(f"Settings to save must be a mapping of names to values, not {type(changes).__name__}.")
    file = path if path is not None else Path(os.environ["LTX_RETAKE_SETTINGS"]) if os.environ.get("LTX_RETAKE_SETTINGS") else settings_path()
    secret = sorted(set(changes) & {"fal_key", "runcomfy_token"})
    if secret:
        raise InputError(f"Cannot save {', '.join(secret)}: keys are not written to the settings file; they go to the "
                         "OS keyring or the environment.")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(str(k) for k in set(changes) - known)
    if unknown:
        raise InputError(f"Cannot save unknown settings {unknown}; known settings: {sorted(known - {'fal_key', 'runcomfy_token'})}.")
    clean: dict = {}
    for name, value in changes.items():
        if value is None:
            clean[name] = None
        elif name == "context_s" and str(value).strip().lower() == "max":
            clean[name] = "max"
        elif name in _NUMBERS:
            kind = _NUMBERS[name]
            try:
                if isinstance(value, bool):
                    raise TypeError
                number = kind(value)
                if not math.isfinite(number):
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                raise InputError(f"The setting {name} must be a number, not {value!r}.") from None
            clean[name] = number
        elif name in _LISTS:
            clean[name] = list(_text_list(name, value, "in what was saved"))
        elif name in _BOOLS:
            clean[name] = _yes_no(name, value)
        elif isinstance(value, str):
            clean[name] = value
        else:
            raise InputError(f"The setting {name} must be text, not {type(value).__name__}.")
    data: dict = {}
    if file.exists():
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"The settings file {file} is not valid JSON ({exc.__class__.__name__}); fix or delete it, "
                             "then save again.") from None
        if not isinstance(data, dict):
            raise InputError(f"The settings file {file} does not hold a JSON object; fix or delete it, then save again.")
    for name, value in clean.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(file, text.encode("utf-8"), what=f"the settings file {file.name}")   # WriteFailed is a sentence
    return file
