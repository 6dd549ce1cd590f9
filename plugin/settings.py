"""Settings: service base URLs, model ids, keys, ffmpeg, output folders; from defaults, a file and the environment."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import InputError, register_secret

__all__ = ["Settings", "Secret", "load_settings", "settings_path", "journal_path"]


class Secret:
    """A key that never shows itself: its repr and str are `***`; `.reveal()` is for the HTTP header only."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        register_secret(value)

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
}
_NUMBERS = {"cost_threshold_usd": float, "max_download_mb": int}


def load_settings(path: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults, overlaid by the settings file (if any), overlaid by the environment."""
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
    for name, kind in _NUMBERS.items():
        if name in values:
            try:
                values[name] = kind(values[name])
            except (TypeError, ValueError):
                raise InputError(f"The setting {name} must be a number, not {values[name]!r}; fix the settings file or "
                                 "the environment variable.") from None
    fal = env.get("FAL_KEY") or (
        f"{env['FAL_KEY_ID']}:{env['FAL_KEY_SECRET']}" if env.get("FAL_KEY_ID") and env.get("FAL_KEY_SECRET") else None
    ) or values.get("fal_key")
    for part in ("FAL_KEY_ID", "FAL_KEY_SECRET"):  # an error may echo one half of a split key
        register_secret(env.get(part))
    runcomfy = env.get("RUNCOMFY_TOKEN") or values.get("runcomfy_token")
    values["fal_key"] = Secret(fal) if fal else None
    values["runcomfy_token"] = Secret(runcomfy) if runcomfy else None
    return replace(Settings(), **values)
