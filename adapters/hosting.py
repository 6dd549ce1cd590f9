"""File hosts that make a local cut fetchable by a service: the local service's upload, or a URL the user supplies.

fal storage is `ltx_retake.adapters.fal.FalStorage`.

`UserUrlHost` speaks the simplest protocol a user can point at (a WebDAV folder, an nginx `dav` location,
a transfer.sh-style service, a bucket prefix that takes anonymous PUTs): the file is sent with one
streamed `PUT` (or `POST`) to `<endpoint>/<name>`, or to the endpoint with `{name}` replaced when it
contains that placeholder. The public URL is the first of: a URL in the answer (JSON `url`, `access_url`,
`file_url` or `public_url`, or a plain-text body that is an http(s) URL), `<public_base>/<name>` when a
public base was given, else the address the file was sent to (without its query string).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from ..errors import ServiceError
from ..paths import safe_file_name
from ..ports import ProgressFn
from ..settings import Secret
from .http_policy import FILE_HOST, RetryPolicy, ServiceProfile, call, check_http_url, streamed_file, url_rule
from .wire import DEFAULT_BOUNDS, Bounds

__all__ = ["LoopbackUpload", "UserUrlHost", "unique_name"]

LOCAL = ServiceProfile(name="the local retake service",
                       key_hint="check the local service is running, its address is right, and the key sent is the "
                                "one it requires (its require_key, or LTX_RETAKE_SERVE_KEY where `ltx-retake serve` runs)")


def unique_name(path: Path) -> str:
    """A name that will not collide on a shared host: `<stem>-<8 hex><suffix>`, URL-safe (see `safe_file_name`)."""
    stem = safe_file_name(Path(path).stem, "clip", limit=80)
    suffix = safe_file_name(Path(path).suffix.lower(), "", limit=11)
    return f"{stem}-{uuid.uuid4().hex[:8]}{'.' + suffix if suffix else ''}"


class LoopbackUpload:
    """A FileHost on the embedded local service: `POST <base_url>/upload` streams the file, the answer has `url`.

    When the service requires a key, `key` is sent as `Authorization: Bearer <key>` (the local service takes
    its key in either protocol's form).
    """

    def __init__(self, http: httpx.Client, base_url: str, *, key: Secret | None = None,
                 sleep: Callable[[float], None] = time.sleep, retry: RetryPolicy | None = None,
                 bounds: Bounds = DEFAULT_BOUNDS):
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._retry = retry or RetryPolicy(sleep=sleep)
        self._bounds = bounds
        self._rule = url_rule(self.base_url, allow_private_hosts=bounds.allow_private_hosts)

    def upload(self, path: Path, content_type: str, on_progress: ProgressFn | None = None) -> str:
        path = Path(path)
        size = path.stat().st_size
        auth = {"Authorization": f"Bearer {self._key.reveal()}"} if self._key else {}
        response = call(self._http, "POST", f"{self.base_url}/upload",
                        content=streamed_file(path, size, on_progress),
                        headers={**auth, "Content-Type": content_type, "Content-Length": str(size),
                                 "X-File-Name": quote(safe_file_name(path.name, "upload.bin"))},
                        policy=self._retry, profile=LOCAL, what=f"upload {path.name}", bounds=self._bounds,
                        rule=self._rule)
        try:
            url = response.json()["url"]
        except (ValueError, KeyError, TypeError):
            url = None
        if not isinstance(url, str):
            raise ServiceError("The local service's upload answer has no 'url'; is the address really the "
                               "ltx-retake local service?")
        if on_progress:
            on_progress(1.0)
        return self._rule.check(url, "The local service's file URL")


class UserUrlHost:
    """A FileHost on an upload endpoint the user supplies (see the module docstring for the protocol)."""

    def __init__(self, http: httpx.Client, endpoint: str, *, public_base: str | None = None, method: str = "PUT",
                 headers: dict[str, str] | None = None, sleep: Callable[[float], None] = time.sleep,
                 retry: RetryPolicy | None = None, name_for: Callable[[Path], str] = unique_name,
                 bounds: Bounds = DEFAULT_BOUNDS):
        check_http_url(endpoint, what="The file host URL")
        if public_base:
            check_http_url(public_base, what="The file host's public URL")
        if method.upper() not in ("PUT", "POST"):
            raise ValueError("method must be PUT or POST")
        self._http = http
        self.endpoint = endpoint
        self.public_base = public_base.rstrip("/") if public_base else None
        self.method = method.upper()
        self._headers = dict(headers or {})
        self._retry = retry or RetryPolicy(sleep=sleep)
        self._name_for = name_for
        self._bounds = bounds

    def target_for(self, name: str) -> str:
        """Where a file called `name` is sent."""
        if "{name}" in self.endpoint:
            return self.endpoint.replace("{name}", quote(name))
        parts = urlsplit(self.endpoint)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + quote(name)))

    def upload(self, path: Path, content_type: str, on_progress: ProgressFn | None = None) -> str:
        path = Path(path)
        size = path.stat().st_size
        name = self._name_for(path)
        target = self.target_for(name)
        response = call(self._http, self.method, target, content=streamed_file(path, size, on_progress),
                        headers={**self._headers, "Content-Type": content_type, "Content-Length": str(size)},
                        policy=self._retry, profile=FILE_HOST, what=f"upload {path.name}", bounds=self._bounds)
        url = _url_in_answer(response)
        if url is None:
            if self.public_base:
                url = f"{self.public_base}/{quote(name)}"
            else:
                url = urlunsplit(urlsplit(target)._replace(query="", fragment=""))
        if on_progress:
            on_progress(1.0)
        return check_http_url(url, what="The file host's public URL")


def _url_in_answer(response: httpx.Response) -> str | None:
    text = (response.text or "").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        for key in ("url", "access_url", "file_url", "public_url"):
            if isinstance(data.get(key), str) and data[key].startswith(("http://", "https://")):
                return data[key]
        return None
    first = text.splitlines()[0].strip()
    return first if re.match(r"^https?://\S+$", first) else None
