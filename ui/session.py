"""The panel's working state: the open document, its edits with their undo, and the retake runs for it.

Everything here goes through the core exactly as the CLI does (`retake.plan`, `retake.start`, `landing.splice_into`,
`use_version`), on copies of the document in memory: the clips and frames the editor picked become `Selection`s of
that copy, the journal keeps the copy a run was planned on, a worker process generates the jobs, and the finished
versions land in the open document, awaiting review; the user decides when and where to save.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import os
import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio
from PySide6.QtCore import QObject, QTimer, Signal

from .. import retake
from ..checks import default_media_dir
from ..compose import offline_wiring, relink_settings
from ..costs import Estimate, estimate
from ..document import Document as CoreDocument
from ..errors import InputError, RetakeError, SelectionError, UnsupportedEditError, redact
from ..jobs import Job, Outcome, intact, job_from_record
from ..journal import Journal
from ..landing import splice_into, version_files
from ..limits import DEFAULT_CONTEXT_S
from ..locks import hold, release
from ..metadata import NS, version_key
from ..orders import RetakeOrder, order_from
from ..paths import safe_stem, same_file
from ..ports import RetakeMode
from ..progress import JobEvent, RunFinished, RunStarted, Step
from ..relink import Relinker, parse_path_map
from ..selection import (Selection, item_at, record_timecode, select_clip_object, select_frames, timeline_rate,
                         track_label)
from ..settings import Settings, journal_path, parse_size
from ..splice import describe_landing, lines_up
from ..versions import ORIGINAL, list_versions, use_version
from .worker import job_detail, worker_main

__all__ = ["Document", "Edit", "Request", "Planned", "RunState", "Session"]


@dataclass
class Edit:
    """One edit of the open document with its undo: `undo` and `redo` put the document (and the panel's bookkeeping
    of it) back to before and after. `dirty`: whether it changes what Save writes (a relink does not)."""

    label: str
    undo: object
    redo: object
    dirty: bool = True


class Document:
    """The timeline open in the panel: where it came from, where it was last saved, and whether it changed."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = offline_wiring(settings).store
        self.source = None                   # the core's document of the opened file: its format and bytes, for Save
        self.path: Path | None = None        # the file that was opened (never overwritten unless the user says so)
        self.saved_to: Path | None = None    # where Save writes without asking
        self.timeline: otio.schema.Timeline | None = None
        self.lock = threading.RLock()        # the window changes the timeline; a run's thread copies it
        self.modified = False
        self.revision = 0                    # bumped on every change, so a plan made before it is known stale
        self.edits: list[Edit] = []          # every recorded edit; the first `done` of them are applied
        self.done = 0
        self._clean_at: int | None = 0       # `done` when the document was last opened or saved (None: unreachable)
        self._unrecorded = False             # changed without an Edit (cannot be undone; stays modified until saved)

    def open(self, path: Path, *, rate=None, path_maps=(), media_search=()) -> None:
        """Read a timeline file (`rate`: an EDL's, when it does not say it; relink options to find its media)."""
        store = offline_wiring(self.settings, rate=rate, path_maps=path_maps, media_search=media_search).store
        source = store.open(path)            # raises a RetakeError sentence for a bad file; nothing changes then
        with self.lock:
            self.source = source
            self.path, self.saved_to, self.timeline = Path(path).absolute(), None, source.timeline
            self.modified = False
            self.revision += 1
            self.edits, self.done, self._clean_at, self._unrecorded = [], 0, 0, False

    @property
    def name(self) -> str:
        """The document's file name as the title and the close prompt say it: where it was last saved, else opened."""
        shown = self.saved_to or self.path
        return shown.name if shown else "The timeline"

    def changed(self) -> None:
        """The timeline changed in a way that carries no undo (prefer `record`)."""
        self._unrecorded = True
        self.modified = True
        self.revision += 1

    def record(self, edit: Edit) -> None:
        """An edit just made (already applied), with its undo; the redo list is dropped."""
        with self.lock:
            del self.edits[self.done:]
            if self._clean_at is not None and self._clean_at > self.done:
                self._clean_at = None        # the saved state was undone and is now out of reach
            self.edits.append(edit)
            self.done += 1
            self.revision += 1
            self._dirty()

    def can_undo(self) -> str | None:
        """The label of the edit Undo would take back, or None."""
        return self.edits[self.done - 1].label if self.done else None

    def can_redo(self) -> str | None:
        return self.edits[self.done].label if self.done < len(self.edits) else None

    def undo(self) -> str | None:
        """Take back the last edit; its label, or None when there is nothing to undo."""
        with self.lock:
            if not self.done:
                return None
            edit = self.edits[self.done - 1]
            edit.undo()
            self.done -= 1
            self.revision += 1
            self._dirty()
            return edit.label

    def redo(self) -> str | None:
        with self.lock:
            if self.done >= len(self.edits):
                return None
            edit = self.edits[self.done]
            edit.redo()
            self.done += 1
            self.revision += 1
            self._dirty()
            return edit.label

    def _dirty(self) -> None:
        clean = self._clean_at
        if clean is None:
            between = True
        else:
            a, b = sorted((clean, self.done))
            between = any(e.dirty for e in self.edits[a:b])
        self.modified = self._unrecorded or between

    def losses(self, path: Path) -> list[str]:
        """What saving to `path` would lose (a format that cannot hold everything the timeline has)."""
        return self.store.losses(self.timeline, path, self.source)

    def save(self, path: Path, *, replace_opened: bool = False, accept_losses: bool = False) -> Path:
        """Write atomically: an edit of the opened file when `path` has its format, else a conversion (refused while
        it would lose something, unless `accept_losses`). The opened file is replaced only when the user chose that."""
        protect = () if replace_opened else tuple(p for p in (self.path,) if p)
        written = self.store.save(self.timeline, path, document=self.source, overwrite=True, protect=protect,
                                  accept_losses=accept_losses)
        self.saved_to, self.modified = Path(written), False
        self._clean_at, self._unrecorded = self.done, False
        return Path(written)

    def suggested_name(self) -> Path:
        """Where Save As starts: `<name>_retakes.otio` beside the opened file (.otio keeps every version)."""
        base = self.path or Path.cwd() / "timeline.otio"
        return base.with_name(f"{safe_stem(base.stem)}_retakes.otio")

    def copy(self) -> tuple[int, CoreDocument]:
        """The document as it is now, for a plan or a run (which never see later edits): its revision, and the core's
        document of the opened file holding a copy of the timeline."""
        with self.lock:
            return self.revision, self.source.with_timeline(self.timeline.deepcopy())


@dataclass(frozen=True)
class Request:
    """What the retake form asks for, before it is turned into orders."""

    prompt: str
    mode: RetakeMode
    provider: str
    model: str
    placement: str = "splice"
    clips: tuple[tuple[int, ...], ...] = ()      # each picked clip's place in the document (selection.item_path)
    range: tuple[int, int] | None = None          # record frames from the timeline's start, out exclusive
    track: int | None = None                      # the track a range applies to
    context_s: float | None = DEFAULT_CONTEXT_S   # footage sent each side of the window (None: all the service takes)
    full_res: bool = False                        # send the picture at its own size
    dissolve_frames: int = 0                      # a changed picture dissolves over this many frames at each edge


@dataclass
class Planned:
    """A request planned by the core: its jobs, cost, and what each will do; or why it cannot be sent."""

    request: Request
    revision: int
    order: RetakeOrder | None = None
    jobs: list[Job] = field(default_factory=list)
    estimate: Estimate | None = None
    landing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and any(self.jobs)


@dataclass
class RunState:
    """One run the panel started (or resumes): its order, its cancel switch and, when finished, its outcome."""

    key: str
    order: RetakeOrder | None
    control: object | None = None       # the worker's cancel queue: a job id stops that job
    jobs: dict[str, Job] = field(default_factory=dict)
    outcome: Outcome | None = None
    error: str | None = None
    run_id: str = ""
    pending: dict[str, str] = field(default_factory=dict)   # job id -> what showed before, until Accept/Discard
    landing: tuple | None = None        # (document revision, its copy with this run's versions, pending, problems)
    landed: set[str] = field(default_factory=set)    # jobs whose versions are in the document (or never will be)
    unsaved: set[str] = field(default_factory=set)   # landed, but in no saved timeline yet (the journal says READY)
    thread: threading.Thread | None = None


def _key_missing(provider: str, settings: Settings) -> str | None:
    if provider == "fal" and not settings.fal_key:
        return "No fal key: add it in Settings (kept in the OS keyring) or set FAL_KEY, then retake."
    if provider == "runcomfy" and not settings.runcomfy_token:
        return "No RunComfy token: add it in Settings (kept in the OS keyring) or set RUNCOMFY_TOKEN, then retake."
    return None


class Session(QObject):
    """Plans and runs retakes for the open document; events reach the GUI thread in batches."""

    documentChanged = Signal()
    planned = Signal(object)                # Planned, from the planning thread
    runStarted = Signal(str, object)        # run key, the planned jobs [(job id, label, detail)]
    runFinished = Signal(str)               # run key
    events = Signal(list)                   # [(run key, JobEvent)], batched on the GUI thread
    message = Signal(str)                   # a sentence for the status line

    def __init__(self, settings: Settings, *, local_config=None, batch_ms: int = 50, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.document = Document(settings)
        self.local_config = local_config
        self.runs: dict[str, RunState] = {}
        self.decisions: dict[tuple[str, str], str] = {}   # (run key, job id) -> "accepted" / "discarded"
        self.max_parallel = 8              # jobs of one run in flight at once
        self.delivery = settings.delivery  # the codec versions are delivered in (the Resolve link may choose another)
        self.media_folder: Path | None = None   # where versions go when the output_dir setting is empty (Resolve mode)
        self.path_maps: list[tuple[str, str]] = []     # File > Relink Media, for this session (Settings keeps them)
        self.search_folders: list[Path] = []
        self._queue: collections.deque = collections.deque()
        self._finished: collections.deque = collections.deque()
        self._plan_lock = threading.Lock()
        self._plan_seq = 0
        self._timer = QTimer(self)
        self._timer.setInterval(batch_ms)
        self._timer.timeout.connect(self._drain)
        self._timer.start()

    # ---- settings ------------------------------------------------------------------------------------------

    def use_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.delivery = settings.delivery

    # ---- relinking -----------------------------------------------------------------------------------------

    def relink_options(self) -> tuple[tuple[tuple[str, str], ...], tuple[Path, ...]]:
        """The path maps and search folders plans use: the ones given in this session first, then the settings'."""
        return relink_settings(self.settings, self.path_maps, self.search_folders)

    def add_search_folder(self, folder: Path) -> None:
        """Look for missing media by name in `folder` too (File > Relink Media)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder here; choose the folder that holds the media.")
        if folder not in self.search_folders:
            self.search_folders.append(folder)
            self.document.record(Edit(f"Relink (search {folder.name})", lambda: self.search_folders.remove(folder),
                                      lambda: self.search_folders.append(folder), dirty=False))

    def add_path_map(self, text: str) -> None:
        """Media paths that start with FROM are under TO here (File > Relink Media)."""
        pair = parse_path_map(text)
        if pair not in self.path_maps:
            self.path_maps.append(pair)
            self.document.record(Edit("Relink (path map)", lambda: self.path_maps.remove(pair),
                                      lambda: self.path_maps.append(pair), dirty=False))

    def offline(self) -> list[tuple[int, otio.schema.Clip, str]]:
        """The clips whose media cannot be found here (as written, mapped or by name), each with the sentence why."""
        doc = self.document
        if doc.timeline is None:
            return []
        maps, folders = self.relink_options()
        relinker = Relinker(doc.path.parent if doc.path else None, maps, [f for f in folders if Path(f).is_dir()])
        out = []
        for ti, track in enumerate(doc.timeline.tracks):
            for clip in track.find_clips():
                try:
                    relinker.locate(clip, f"{clip.name} on {track_label(doc.timeline, ti)}")
                except (SelectionError, UnsupportedEditError) as exc:
                    if "generator" in str(exc) or "image sequence" in str(exc) or "web address" in str(exc):
                        continue  # not footage on a disk: refused as such when planned, not "offline"
                    out.append((ti, clip, str(exc)))
        return out

    # ---- the document --------------------------------------------------------------------------------------

    def open(self, path: Path, *, rate=None) -> None:
        maps, folders = self.relink_options()
        self.document.open(path, rate=rate, path_maps=maps, media_search=[f for f in folders if Path(f).is_dir()])
        self.documentChanged.emit()

    def media_dir(self) -> Path:
        """Where this document's versions go: the output_dir setting, the session's media folder (a live Resolve
        timeline's), the timeline's earlier retakes, or beside it."""
        if self.settings.output_dir:
            return Path(self.settings.output_dir).absolute()
        if self.media_folder is not None:
            return self.media_folder
        doc = self.document
        return default_media_dir(doc.timeline, doc.path or Path.cwd() / "timeline.otio", doc.path.stem if doc.path else "timeline")

    # ---- planning ------------------------------------------------------------------------------------------

    def order_for(self, request: Request) -> RetakeOrder:
        """The request as the core's order on the open document: its versions land in the document, not a file."""
        doc = self.document
        if doc.path is None:
            raise InputError("Open a timeline first (File > Open).")
        maps, folders = self.relink_options()
        return RetakeOrder(timeline=doc.path, output=None, prompt=request.prompt, mode=request.mode,
                           provider=request.provider, model=request.model, placement=request.placement,
                           per_clip=request.range is not None, media_dir=self.media_dir(), media_root=doc.path.parent,
                           max_parallel=self.max_parallel, delivery=self.delivery, path_maps=tuple(maps),
                           media_search=tuple(Path(f) for f in folders), context_s=request.context_s,
                           max_size=None if request.full_res else parse_size(self.settings.input_max_size),
                           crossfade_ms=self.settings.audio_crossfade_ms, dissolve_frames=request.dissolve_frames)

    @staticmethod
    def selections(request: Request, timeline: otio.schema.Timeline) -> list[Selection]:
        """What the editor picked, found in `timeline` (a copy of the document the picks were made on): the marked
        frames on the target track, or each clicked clip (a retaken shot's pieces are one clip)."""
        if request.range is not None:
            a, b = request.range
            return select_frames(timeline, request.track if request.track is not None else 0, a, b, per_clip=True)
        found: dict[tuple, Selection] = {}
        for path in request.clips:
            try:
                clip = item_at(timeline, path)
            except (IndexError, TypeError):
                raise SelectionError("A selected clip is no longer on the timeline; select it again.") from None
            sel = select_clip_object(timeline, path[0], clip)
            start = sel.record_range.start_time
            found.setdefault((sel.track_index, start.value, start.rate), sel)
        return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1] / k[2]))]

    def plan(self, request: Request) -> None:
        """Plan in a worker thread (probing media takes time) on a copy of the document; the result arrives as
        `planned`."""
        if self.document.timeline is None:
            return
        self._plan_seq += 1
        seq = self._plan_seq

        def work() -> None:  # the copy is made here too: on a big timeline it takes a noticeable moment
            revision, document = self.document.copy()
            result = self._plan_now(request, document, revision)
            if seq == self._plan_seq:  # a newer request supersedes this one
                self.planned.emit(result)

        threading.Thread(target=work, name="ltx-retake-plan", daemon=True).start()

    def _plan_now(self, request: Request, document: CoreDocument, revision: int) -> Planned:
        out = Planned(request, revision)
        if not request.clips and request.range is None:
            out.problems.append("Select a clip (click it) or a range (drag on the ruler, or I and O at the playhead).")
            return out
        if not request.prompt.strip():
            out.problems.append("Write a prompt: what the retake should show (or sound like).")
        missing = _key_missing(request.provider, self.settings)
        if missing:
            out.problems.append(missing)
        with self._plan_lock:
            try:
                out.order = order = self.order_for(request)
                out.jobs, _ = retake.plan(document, self.selections(request, document.timeline), order,
                                          self._planning_wiring())
                out.landing = [describe_landing(document.timeline, j.plan, order.placement) for j in out.jobs]
            except RetakeError as exc:
                out.problems.append(redact(str(exc)))
                return out
            except Exception as exc:  # noqa: BLE001 - a bug must reach the user as a sentence, not a traceback
                out.problems.append(f"Planning failed unexpectedly ({type(exc).__name__}: {redact(str(exc))}); "
                                    "please report this with the timeline.")
                return out
        out.estimate = estimate([j.plan for j in out.jobs])
        return out

    def _planning_wiring(self):
        maps, folders = self.relink_options()
        return offline_wiring(self.settings, path_maps=maps, media_search=folders)

    # ---- running -------------------------------------------------------------------------------------------

    def start(self, request: Request) -> str:
        """Send a request (already planned and, when needed, confirmed) as one run: planned again on a copy of the
        document as it is now, recorded in the journal (with that copy), then generated in a worker process."""
        if self.document.timeline is None:
            raise InputError("Open a timeline first (File > Open).")
        _, document = self.document.copy()     # the picks' places are this document's, as it is now
        state = self._new_run()
        state.thread = threading.Thread(target=self._send, args=(state, request, document),
                                        name=f"ltx-retake-{state.key}", daemon=True)
        state.thread.start()
        return state.key

    def _new_run(self, run_id: str = "") -> RunState:
        key = f"r{len(self.runs) + 1}"
        state = RunState(key, None, run_id=run_id)
        self.runs[key] = state
        return state

    def _send(self, state: RunState, request: Request, document: CoreDocument) -> None:
        """In the run's thread: plan, number and record the run here (the journal keeps the planned timeline), then
        have a worker process generate it."""
        try:
            order = self.order_for(request)
            selections = self.selections(request, document.timeline)
            wiring = self._planning_wiring()
            with self._plan_lock, Journal(journal_path(self.settings)) as journal:
                in_flight = journal.versions_in_flight()
                jobs, media_dir = retake.plan(document, selections, order, wiring, reserved=in_flight)
                started = retake.start(document, jobs, media_dir, order, wiring, journal, selections=selections,
                                       reserved=in_flight)
        except RetakeError as exc:
            state.error = redact(str(exc))
            self._finished.append(state.key)
            return
        except Exception as exc:  # noqa: BLE001 - a bug: a sentence in the panel, never a traceback
            state.error = f"The retake could not start ({type(exc).__name__}: {redact(str(exc))}); please report this."
            self._finished.append(state.key)
            return
        state.order, state.run_id = order, started.run_id
        state.jobs = {j.id: j for j in started.jobs}
        self._started(state, started.run_id, [(j.id, j.plan) for j in started.jobs])
        self._in_worker(state, resuming=False)

    def _started(self, state: RunState, run_id: str, jobs: list[tuple[str, object]]) -> None:
        """Tell the view a run's jobs, (job id, plan) each, before any of their events."""
        rows = tuple((job_id, plan.label, job_detail(plan)) for job_id, plan in jobs)
        self._queue.append((state.key, RunStarted(run_id, rows)))

    def resume(self, run_id: str) -> str:
        """Continue an interrupted run from the journal (requests are followed by id, never paid twice)."""
        state = self._new_run(run_id)
        state.thread = threading.Thread(target=self._resume, args=(state,), name=f"ltx-retake-{state.key}", daemon=True)
        state.thread.start()
        return state.key

    def _resume(self, state: RunState) -> None:
        try:
            with Journal(journal_path(self.settings)) as journal:
                record = journal.run(state.run_id)
        except RetakeError as exc:
            state.error = redact(str(exc))
            self._finished.append(state.key)
            return
        state.run_id = record.id
        state.order = dataclasses.replace(order_from(record.order), timeline=record.timeline, output=record.output)
        self._started(state, record.id, [(j.name, j.plan) for j in record.unfinished])
        self._in_worker(state, resuming=True)

    def _in_worker(self, state: RunState, *, resuming: bool) -> None:
        """Generate (or resume) the run in a worker process (the window's interpreter never shares its lock with the
        jobs), then read its jobs back from the journal and splice the finished versions into a copy of the document.
        The worker dies with the panel; the journal then holds the run, which the reopened panel lands or resumes."""
        ctx = multiprocessing.get_context("spawn")
        events, state.control = ctx.Queue(), ctx.Queue()
        worker = ctx.Process(target=worker_main, args=(state.run_id, resuming, self.local_config, self.max_parallel,
                                                       events, state.control, os.getpid()),
                             name=f"ltx-retake-{state.key}", daemon=True)
        try:
            worker.start()
            while True:
                try:
                    item = events.get(timeout=0.5)
                except queue.Empty:
                    if worker.is_alive():
                        continue
                    state.error = (f"The worker running these jobs stopped (exit {worker.exitcode}); the journal keeps the run: "
                                   "reopen the panel and Resume it.")
                    break
                if isinstance(item, RunFinished):
                    state.error = item.error
                    break
                self._queue.append((state.key, item))
            worker.join(timeout=10)
            with Journal(journal_path(self.settings)) as journal:
                record = journal.run(state.run_id)
                jobs = [job_from_record(r) for r in record.jobs]
                if not resuming:   # this process recorded the run: it lets go of it (resume did in the worker)
                    journal.finish_run(record.id, complete=not any(j.recoverable or not j.step.finished for j in jobs))
            retake.release_versions(jobs)
            state.jobs = {j.id: j for j in jobs}
            state.outcome = Outcome(jobs, record.output if record.output and record.output.exists() else None,
                                    record.media_dir, run_id=record.id)
            self._landing(state)
        except RetakeError as exc:
            state.error = redact(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug: a sentence in the panel, never a traceback
            state.error = f"The run stopped unexpectedly ({type(exc).__name__}: {redact(str(exc))}); please report this."
        self._finished.append(state.key)

    def interrupted(self):
        """Runs a crash or a closed panel left unfinished (from the journal), less the versions this panel has
        already landed in its document."""
        landed = {s.run_id for s in self.runs.values() if s.run_id and s.landed}
        with Journal(journal_path(self.settings)) as journal:
            runs = journal.interrupted()
        out = []
        for record in runs:
            if record.id in landed:
                left = [j for j in record.unfinished if j.step != Step.READY]
                if not left:
                    continue
            out.append(record)
        return out

    def cancel(self, key: str, job_id: str) -> None:
        state = self.runs.get(key)
        if state is not None and state.control is not None:
            state.control.put(job_id)

    def retry(self, key: str, job_id: str) -> str:
        """A failed job again: resumed by its request id when that can mend it, else planned anew over its window."""
        state = self.runs[key]
        job = state.jobs.get(job_id)
        if job is None or state.order is None:
            raise RetakeError("That job is not known any more; select the clip and retake it again.")
        if job.recoverable and state.run_id:
            return self.resume(state.run_id)
        p = job.plan
        rate = float(timeline_rate(self.document.timeline))
        a = round(p.record_range.start_time.rescaled_to(rate).value)
        b = round(p.record_range.end_time_exclusive().rescaled_to(rate).value)
        order = state.order
        req = Request(p.prompt, p.mode, p.provider, p.model, order.placement, range=(a, b), track=p.track_index,
                      context_s=order.context_s, full_res=order.max_size is None, dissolve_frames=order.dissolve_frames)
        return self.start(req)

    def in_flight(self) -> int:
        return sum(1 for s in self.runs.values() if s.thread is not None and s.thread.is_alive())

    # ---- results -------------------------------------------------------------------------------------------

    def _drain(self) -> None:
        batch = []
        while self._queue:
            key, item = self._queue.popleft()
            if isinstance(item, RunStarted):
                if batch:
                    self.events.emit(batch)
                    batch = []
                self.runStarted.emit(key, list(item.jobs))
            else:
                batch.append((key, item))
        if batch:
            self.events.emit(batch)
        while self._finished:
            self._land(self._finished.popleft())

    def _ready(self, state: RunState) -> list[Job]:
        """The run's finished versions this document has not taken yet: ready (a panel's run) or already written into
        the run's own timeline (a command-line run resumed here)."""
        return [j for j in state.jobs.values() if j.step in (Step.READY, Step.SPLICED) and j.id not in state.landed]

    def _landing(self, state: RunState) -> None:
        """In the run's thread: splice its versions into a copy of the document, so the window only swaps it in."""
        doc = self.document
        ready = self._ready(state)
        if not ready or not self._belongs(state):
            return
        with doc.lock:
            if doc.timeline is None:
                return
            revision, copy = doc.revision, doc.timeline.deepcopy()
        state.landing = (revision, copy, *_splice_awaiting_review(copy, ready, state.order.placement))

    def _land(self, key: str) -> None:
        """A run ended: its versions join the open document, awaiting Accept (what showed before stays showing)."""
        state = self.runs[key]
        if state.error:
            self.message.emit(state.error)
        doc = self.document
        ready = self._ready(state)
        if state.landing is not None or (ready and doc.timeline is not None and self._belongs(state)):
            with doc.lock:
                before = doc.timeline
                if state.landing is not None and state.landing[0] == doc.revision:
                    _, after, pending, problems = state.landing
                else:  # the document changed while the copy was made: splice into a copy of it here
                    after = before.deepcopy()
                    pending, problems = _splice_awaiting_review(after, ready, state.order.placement)
                state.landing = None
                self._swap_in(state, before, after, pending)
                landed = [state.jobs[j] for j in pending]
                for job in landed:
                    if job.step == Step.READY:      # in the document now; the journal says so once it is saved
                        state.unsaved.add(job.id)
                        job.step = Step.SPLICED
                    state.landed.add(job.id)
            for sentence in problems:
                self.message.emit(sentence)
            if landed:
                self.events.emit([(key, JobEvent(j.id, Step.SPLICED, f"{j.version.name} is in the timeline, awaiting "
                                                                     "review")) for j in landed])
            self.documentChanged.emit()
        elif ready and state.outcome and state.outcome.output:
            self.message.emit(f"The run wrote {state.outcome.output}; open it to see its versions.")
        elif ready and state.order is not None:   # a panel's run of another timeline, resumed here
            self.message.emit(f"{len(ready)} version(s) of {state.order.timeline.name} are ready: open that timeline "
                              "to review them.")
        self.runFinished.emit(key)

    def _belongs(self, state: RunState) -> bool:
        """Whether the run was made on the open document's file (its versions go nowhere else)."""
        doc = self.document
        return doc.path is not None and state.order is not None and same_file(state.order.timeline, doc.path)

    # ---- saving --------------------------------------------------------------------------------------------

    def save(self, path: Path, *, replace_opened: bool = False, accept_losses: bool = False) -> Path:
        """Save the document (see Document.save) under the file's lock, then record in the journal that the versions
        it holds are in a saved timeline: a reopened panel does not land them again."""
        with hold(path, "saving", on_wait=self.message.emit):
            written = self.document.save(path, replace_opened=replace_opened, accept_losses=accept_losses)
        self._saved()
        return written

    def _saved(self) -> None:
        held = version_files(self.document.timeline)
        done = [(s, s.jobs[j]) for s in self.runs.values() for j in sorted(s.unsaved)
                if s.jobs[j].version.path.name in held]
        if not done:
            return
        try:
            with Journal(journal_path(self.settings)) as journal:
                for state, job in done:
                    journal.record(job)             # SPLICED: in a timeline the editor saved
                    state.unsaved.discard(job.id)
                    release(job.version.path)
                for run_id in {s.run_id for s, _ in done}:
                    record = journal.run(run_id)
                    if not record.unfinished:        # every version is in a saved timeline: the run is over
                        shutil.rmtree(record.work_dir, ignore_errors=True)
                        journal.finish_run(run_id)
        except RetakeError as exc:   # the timeline is saved; only the journal's note of it failed
            self.message.emit(f"Saved, but the journal could not note it ({redact(str(exc))}); reopening the timeline "
                              "may offer these versions again.")

    # ---- reopening -----------------------------------------------------------------------------------------

    def land_waiting(self) -> int:
        """Versions earlier panel runs on this file finished but no saved timeline holds (the panel was closed or
        killed before Save): they land in the document again, awaiting review. Returns how many."""
        doc = self.document
        if doc.timeline is None or doc.path is None:
            return 0
        with Journal(journal_path(self.settings)) as journal:
            runs = [r for r in journal.interrupted() if r.output is None and same_file(r.timeline, doc.path)
                    and any(j.step == Step.READY for j in r.jobs)]
        count, elsewhere, gone = 0, [], []
        held = version_files(doc.timeline)
        for record in runs:
            state = self._new_run(record.id)
            state.order = dataclasses.replace(order_from(record.order), timeline=record.timeline, output=None)
            jobs = [job_from_record(r) for r in record.jobs]
            state.jobs = {j.id: j for j in jobs}
            waiting = [j for j in jobs if j.step == Step.READY and j.version.path.name not in held]
            ready = [j for j in waiting if intact(j.version.path, j.version_sha)]
            gone += [j for j in waiting if j not in ready]
            fits = [j for j in ready if lines_up(doc.timeline, j.plan)]
            elsewhere += [j for j in ready if j not in fits]
            state.landed |= {j.id for j in jobs if j not in fits}
            state.outcome = Outcome(jobs, None, record.media_dir, run_id=record.id)
            self._started(state, record.id, [(j.id, j.plan) for j in fits])
            self._finished.append(state.key)
            count += len(fits)
        for job in elsewhere:
            self.message.emit(f"{job.version.name} was made on an earlier state of {doc.name} that no longer shows "
                              f"{job.plan.clip_name!r} there; the file is kept at {job.version.path} "
                              f"(`ltx-retake resume {job.run_id} -o FILE` writes the timeline it was made on).")
        for job in gone:
            self.message.emit(f"{job.version.name} finished in an earlier session, but its file {job.version.path} is "
                              "missing or changed since; `ltx-retake jobs` lists its run.")
        if count:
            self.message.emit(f"{count} retake(s) from an earlier session were never saved: they are back in the "
                              "timeline, awaiting review.")
        return count

    def accept(self, key: str, job_id: str) -> str:
        """The finished job's version becomes the active one (undoable)."""
        state, job = self.runs[key], self.runs[key].jobs[job_id]
        before = state.pending.get(job_id)
        self._versions_edit(f"Accept {job.version.name}", lambda: _show(self.document.timeline, job, _version_key(job)),
                            key, job_id, before, "accepted")
        return f"{job.version.name} is now the active version."

    def discard(self, key: str, job_id: str) -> str:
        """The finished job's version is not used: what showed before stays (the file and the menu entry are kept)."""
        state, job = self.runs[key], self.runs[key].jobs[job_id]
        before = state.pending.get(job_id)
        shown = before or ORIGINAL
        self._versions_edit(f"Discard {job.version.name}", lambda: _show(self.document.timeline, job, shown),
                            key, job_id, before, "discarded")
        return f"{job.version.name} discarded; {shown} shows. The file stays at {job.version.path} and in the clip's versions menu."

    def switch(self, clip_name: str, version: str, at: str) -> None:
        """The versions menu: show `version` (or the original) on a retaken clip (undoable)."""
        self._versions_edit(f"Show {version} on {clip_name}",
                            lambda: use_version(self.document.timeline, clip_name, version, at=at))

    # ---- undo ------------------------------------------------------------------------------------------------

    def undo(self) -> str | None:
        """Take back the last edit of the open document (Ctrl+Z); its label, or None."""
        label = self.document.undo()
        if label is not None:
            self.documentChanged.emit()
        return label

    def redo(self) -> str | None:
        label = self.document.redo()
        if label is not None:
            self.documentChanged.emit()
        return label

    def decision(self, key: str, job_id: str) -> str:
        """What became of a finished job: "pending" (awaiting review), "accepted", "discarded" or ""."""
        state = self.runs.get(key)
        if state is not None and job_id in state.pending:
            return "pending"
        return self.decisions.get((key, job_id), "")

    def ready_to_review(self) -> list[tuple[str, str]]:
        """Finished retakes awaiting Accept or Discard, (run key, job id), the newest first."""
        return [(key, job_id) for key, state in reversed(list(self.runs.items())) for job_id in reversed(list(state.pending))]

    def _versions_edit(self, label: str, change, key: str = "", job_id: str = "", pending_before=None,
                       decided: str = "") -> None:
        """Change which versions show, recording the inverse: every retaken clip's showing state before and after
        (and, for Accept/Discard, the job's place in review)."""
        doc = self.document
        with doc.lock:
            before = _showing_state(doc.timeline)
            change()
            after = _showing_state(doc.timeline)
            state = self.runs.get(key)

            def review(pending: bool, decision: str) -> None:
                if state is None:
                    return
                if pending and pending_before is not None:
                    state.pending[job_id] = pending_before
                else:
                    state.pending.pop(job_id, None)
                if decision:
                    self.decisions[(key, job_id)] = decision
                else:
                    self.decisions.pop((key, job_id), None)

            old_decision = self.decisions.get((key, job_id), "")

            def undo() -> None:
                _restore_showing(before)
                review(pending_before is not None, old_decision)

            def redo() -> None:
                _restore_showing(after)
                review(False, decided)

            review(False, decided)
            doc.record(Edit(label, undo, redo))
        self.documentChanged.emit()

    def _swap_in(self, state: RunState, before, after, pending: dict[str, str]) -> None:
        """A run's versions land: `after` (a copy of `before` with them spliced in) becomes the document's timeline,
        undoably; they await review."""
        doc = self.document

        def undo() -> None:
            doc.timeline = before
            for job_id in pending:
                state.pending.pop(job_id, None)

        def redo() -> None:
            doc.timeline = after
            state.pending.update(pending)

        redo()
        names = [state.jobs[j].version.name for j in pending if j in state.jobs]
        label = f"Retake {names[0]}" + (f" and {len(names) - 1} more" if len(names) > 1 else "") if names else "Retake"
        doc.record(Edit(label, undo, redo))


def _showing_state(timeline) -> list[tuple]:
    """What every retaken clip shows (reference key, name, enabled, its metadata), to put back on undo."""
    if timeline is None:
        return []
    out = []
    for clip in timeline.find_clips():
        meta = clip.metadata.get(NS)
        if meta and "versions" in meta:
            out.append((clip, clip.active_media_reference_key, clip.name, clip.enabled, _plain(meta)))
    return out


def _plain(value):
    """OTIO metadata as plain Python (its nested dictionaries live only as long as their parent)."""
    if isinstance(value, (str, bytes)):
        return value
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value


def _restore_showing(state: list[tuple]) -> None:
    for clip, key, name, enabled, meta in state:
        clip.active_media_reference_key = key
        clip.name = name
        clip.enabled = enabled
        clip.metadata[NS] = meta


def _splice_awaiting_review(timeline, done: list[Job], placement: str) -> tuple[dict[str, str], list[str]]:
    """Splice finished jobs into `timeline` (mutated), each then showing what it showed before until accepted.
    Returns {job id: what showed before} and a sentence per job that could not land."""
    before = {j.id: _showing(timeline, j) for j in done}
    problems = splice_into(timeline, done, placement)
    pending = {}
    for job in done:
        if not any(job.version.name in p for p in problems):
            pending[job.id] = before[job.id]
            _show(timeline, job, before[job.id])
    return pending, problems


def _showing(timeline, job: Job) -> str:
    """What the timeline shows over the job's window now: original or a version key."""
    start = job.plan.record_range.start_time
    for r in list_versions(timeline):
        if r.track_index == job.plan.track_index and r.record_range.start_time <= start < r.record_range.end_time_exclusive():
            return r.active
    return ORIGINAL


def _show(timeline, job: Job, version: str) -> None:
    use_version(timeline, job.plan.clip_name, version, at=record_timecode(timeline, job.plan.record_range.start_time))


def _version_key(job: Job) -> str:
    return version_key(job.version.number)




