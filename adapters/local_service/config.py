"""Settings of the embedded local service: delays, the hosted service's quirks to imitate, and injected faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["LocalServiceConfig", "Fault", "ROUTES", "FAULT_KINDS", "DEFAULT_MODELS"]

# The retake model ids the service answers to (fal's and RunComfy's); a submit to any other id is a 404, like
# the hosted services. `ltx-retake serve` and `open_service` add the fal_model / runcomfy_model settings.
DEFAULT_MODELS = ("fal-ai/ltx-2/retake-video", "fal-ai/ltx-2.3/retake-video", "ltx/ltx-2/retake-video")

ROUTES = ("submit", "status", "stream", "result", "cancel", "download", "upload", "token")
FAULT_KINDS = ("drop", "slow", "expired", "corrupt", "drip")   # or an HTTP status as text: "429", "500", "502", ...


@dataclass
class Fault:
    """One injected failure: for the next `times` matching requests, or for a random `rate` of them; rules in order.

    route:    submit | status | stream | result | cancel | download | upload | token
              (`upload` covers fal storage uploads, multipart parts and the plain upload endpoint;
              `download` covers every file the service serves: results and stored uploads)
    kind:     an HTTP status ("429", "500", "502", "503", "404", ...) answered with a body shaped like the
              protocol's errors, and a Retry-After header when `retry_after` is set;
              "drop"    closes the connection: before any answer, or for `download` after `after_bytes` of the
                        body (default: half), for `upload` after `after_bytes` of the request's body were read
                        (default: half of its Content-Length), for `stream` after the first event;
              "slow"    the request is handled, but its answer starts `delay` seconds late;
              "expired" the result answers 404 (unknown request), a download answers 410 Gone;
              "corrupt" a download serves bytes that do not decode; a result answers with invalid JSON;
              "drip"    the answer's head goes out at once, then its body one byte every `delay` seconds (a
                        stalled proxy, a hostile server: what a client's deadlines and Ctrl-C must survive);
    protocol: "fal" or "runcomfy" to match only that protocol's routes; None matches both
    times:    how many requests the rule faults before it is used up. Without `rate`, None means 1: the
              next `times` matching requests are faulted.
    rate:     when set (0..1), each matching request is faulted with this probability instead, drawn from the
              service's own random generator (seeded by `LocalServiceConfig.fault_seed`, so a run repeats);
              `times` then caps how many it faults (None: no cap). One draw per request serves every rate
              rule that matches it: their rates add up in rule order (a request meets rules of 0.1 and 0.05
              as 0.1 for the first, 0.05 for the second, 0.85 for neither), so they should sum to at most 1.

    Rules are tried in order: a rule without `rate` that is not used up takes the request; a rate rule takes
    it when the draw falls in its share; otherwise the next rule is tried.
    """

    route: str
    kind: str
    times: int | None = None
    retry_after: float | None = None
    delay: float = 1.0
    after_bytes: int | None = None
    protocol: str | None = None
    rate: float | None = None

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"unknown fault route {self.route!r}; use one of {ROUTES}")
        if self.kind not in FAULT_KINDS and not (self.kind.isdigit() and 400 <= int(self.kind) <= 599):
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS} or an HTTP status")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"a fault rate is a probability between 0 and 1, not {self.rate!r}")
        if self.times is None and self.rate is None:
            self.times = 1

    @property
    def used_up(self) -> bool:
        """True when the rule will fault no more requests."""
        return self.times is not None and self.times <= 0


@dataclass
class LocalServiceConfig:
    """How the local service behaves. The defaults answer at once and behave like a well-mannered fal."""

    storage_dir: Path | None = None        # uploads and results; default: a temp folder removed on stop
    public_url: str | None = None          # base of the URLs it hands out; default: the address it listens on
    queue_delay: float = 0.0               # seconds a job waits IN_QUEUE
    processing_delay: float = 0.0          # least seconds a job stays IN_PROGRESS
    # quirks the hosted service may show (see the reference notes)
    int_fps: bool = False                  # output written at int(fps): 29.97 -> 29, same frames
    snap_8k1: bool = False                 # drop trailing frames down to a count of the form 8k+1
    audio_24k: bool = False                # output audio at 24000 Hz
    # accounts
    require_key: str | None = field(default=None, repr=False)   # None: any key (or none) is accepted
    no_balance: bool = False               # answer every submit "no credit"
    # triggers in the prompt that make a job fail, like the real thing can
    refuse_word: str = "[refuse]"          # the job completes with a content-policy error
    fail_word: str = "[fail]"              # the job completes with a generic error
    runcomfy_videos_list: bool = False     # RunComfy output as {"videos": [url]} instead of {"video": url}
    models: tuple[str, ...] = DEFAULT_MODELS   # the model ids a submit may name (others: 404)
    faults: list[Fault] = field(default_factory=list)
    fault_seed: int | None = None          # seeds the draws of faults with a `rate` (None: a fresh seed each start)
    keepalive: float = 15.0                # seconds between keep-alive comments on the status stream
    max_upload_bytes: int = 2 * 1024**3
    crf: int = 30                          # the lossy re-encode outside the window
    preset: str = "ultrafast"
    fetch_timeout: float = 60.0            # for video_url that is not one of the service's own files
    # memory bounds for a long-running `serve`
    request_log_limit: int = 10_000        # the request log keeps the latest this many requests
    finished_job_ttl: float = 3600.0       # seconds a finished job is remembered; then its id answers "not found"
    # a seam for tests: how a multipart part's ETag is computed (default: its MD5, like the hosted storage)
    part_digest: Callable[[Path], str] | None = field(default=None, repr=False, compare=False)
