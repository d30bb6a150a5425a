"""The training manager: one per server process and run folder, shared by every session. It checks a request,
stores the run, queues it, and hands it to its executor when a training slot frees up; it stops runs and
tells pages how each one is doing. Every run records its owner: only the owner or the teacher may stop,
delete or move it (learners.Actor)."""

from __future__ import annotations

import collections
import heapq
import threading
import time
from dataclasses import dataclass, field

from mnist_lab import data, system
from mnist_lab.architecture.sources import check_architecture
from mnist_lab.errors import LabError
from mnist_lab.classroom.learners import Actor
from mnist_lab.runs import ACTIVE, USABLE, RunNotFound, RunStatus, RunStore, now_iso
from mnist_lab.training import background
from mnist_lab.training.executors.base import ProgressBoard, RunHandle
from mnist_lab.training.executors.choice import make_executor
from mnist_lab.training.limits import (DEFAULT_MAX_QUEUED, MAX_CONCURRENT_VARIABLE, MAX_QUEUED_VARIABLE,
                                       default_max_concurrent, environment_limit)
from mnist_lab.training.packed_runs import pack_size, packing_key
from mnist_lab.training.phases import Phase
from mnist_lab.training.progress import PUBLISH_SECONDS
from mnist_lab.training.settings import TrainSettings, clean_run_name
from mnist_lab.training.speed import EpochEstimate, SpeedEstimator, estimate_epoch

class QueueFull(LabError):
    """Too many runs are waiting; the message says what to do."""


@dataclass
class _Job:
    run_id: str
    architecture: dict
    settings: TrainSettings
    queued: ProgressBoard
    net: object = 0  # its architecture report, for the estimates
    handle: RunHandle | None = None
    done: threading.Event = field(default_factory=threading.Event)
    pack_key: tuple | None = None  # runs of one key may train as one pack (None: it trains alone)
    slot: str = ""  # the run id of the first run of its pack: the runs of one slot share a worker


class TrainingManager:
    """Queues runs and trains at most `max_concurrent` at once through an executor. Thread-safe.

    Creating it marks runs whose trainer died as interrupted. A queued run holds no model and no copy
    of the data. `executor` is an executor object or a name (default: MNIST_LAB_EXECUTOR, else process).
    """

    def __init__(self, store: RunStore | None = None, max_concurrent: int | None = None,
                 max_queued: int | None = None, load_data=data.load_mnist, executor=None):
        self.store = store or RunStore()
        self.max_concurrent = max_concurrent or environment_limit(MAX_CONCURRENT_VARIABLE, default_max_concurrent(), 1)
        self.max_queued = (max_queued if max_queued is not None
                           else environment_limit(MAX_QUEUED_VARIABLE, DEFAULT_MAX_QUEUED, 0))
        self._load_data = load_data
        self.executor = executor if executor is not None and not isinstance(executor, str) else make_executor(executor)
        self._keep_warm()
        self._lock = threading.RLock()  # re-entered when a run ends the moment it starts
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: dict[str, _Job] = {}
        self._jobs: dict[str, _Job] = {}
        self.peak_running = 0
        self.speed = SpeedEstimator(self.store.root)
        self.recovered = self.store.recover_interrupted(alive_run_ids=background.training_run_ids())
        background.register(self)
        self._list_cache: tuple[float, list[dict]] = (0.0, [])
        self._changes = 0
        self._unrecorded: dict[str, dict] = {}  # run id: the end its trainer could not write (see _record_end)
        self._packs = hasattr(self.executor, "submit_pack")  # the Ray executor trains each run alone

    # submitting ------------------------------------------------------------------
    def data_sizes(self) -> tuple[int, int]:
        mnist = self._load_data()
        return len(mnist.x_train), len(mnist.x_test)

    def prepare(self, architecture: dict, settings: TrainSettings | dict, name: str | None = None):
        """Validate a request without starting it: (architecture, report, resolved settings, name)."""
        if isinstance(settings, dict):
            settings = TrainSettings.from_dict(settings)
        architecture, report = check_architecture(architecture)
        settings = settings.resolve(*self.data_sizes())
        return architecture, report, settings, clean_run_name(name, architecture, settings)

    def submit(self, architecture: dict, settings: TrainSettings | dict, name: str | None = None,
               owner: tuple[str, str] | None = None, experiment: dict | None = None) -> str:
        """Store a new run and train it now or queue it; returns its id. `owner` is the learner's
        (public id, name): a run without a name of its own is named after them, and unlike any other.
        `experiment`: the class experiment and value the run is part of ({"id", "index", "value"}).
        Raises LabError (bad settings or architecture, QueueFull, data.DataError)."""
        named = bool((name or "").strip())
        architecture, report, settings, name = self.prepare(architecture, settings, name)
        owner_id, owner_name = owner if owner is not None else (None, None)
        if not named and owner_name:
            name = f"{owner_name} · {name}"
        with self._lock:
            if self._slots_used() >= self.max_concurrent and len(self._queue) >= self.max_queued:
                raise QueueFull(
                    f"The training queue is full: {len(self._running)} run(s) training and {len(self._queue)} "
                    "waiting. Try again when one has finished.")
            if not named:
                name = self._unique_name(name)
            meta = self.store.create(name, architecture, settings.as_dict(), parameters=report.total_parameters,
                                     multiply_adds=report.multiply_adds, device="", backend="", versions={},
                                     executor=self.executor.name, owner=owner_id, owner_name=owner_name,
                                     experiment=experiment)
            run_id = meta["id"]
            queued = ProgressBoard({"run_id": run_id, "status": RunStatus.QUEUED, "phase": Phase.QUEUED,
                                    "epochs": settings.epochs, "curve": []})
            job = _Job(run_id, architecture, settings, queued, report,
                       pack_key=packing_key(architecture, settings) if self._packs else None)
            self._jobs[run_id] = job
            if self._slots_used() < self.max_concurrent:
                self._start(job)
            else:
                self._queue.append(job)
            self._changed()
        return run_id

    def _unique_name(self, name: str) -> str:
        """`name`, or `name (2)`, `name (3)`...: the first that no stored or waiting run has."""
        taken = {meta["name"] for meta in self.runs(max_age=0.0)}
        if name not in taken:
            return name
        number = 2
        while f"{name} ({number})" in taken:
            number += 1
        return f"{name} ({number})"

    def _changed(self) -> None:
        """Count a change that lists of runs show; called with the lock held."""
        self._changes += 1
        self._list_cache = (0.0, [])

    def _slots_used(self) -> int:
        """Training slots taken: a pack of runs takes one. Called with the lock held."""
        return len({job.slot for job in self._running.values()})

    def _start(self, job: _Job) -> None:
        """Start `job`, packed with the queued runs that can train with it. Called with the lock held."""
        jobs = [job]
        if job.pack_key is not None:  # the pack size follows the slots, which the teacher may change
            packmates = [other for other in self._queue if other.pack_key == job.pack_key]
            jobs += packmates[:pack_size(self.max_concurrent) - 1]
            for other in jobs[1:]:
                self._queue.remove(other)
        for member in jobs:
            member.slot = job.run_id
            self._running[member.run_id] = member
        self.peak_running = max(self.peak_running, self._slots_used())  # slots: a pack takes one
        if len(jobs) == 1:
            handles = [self.executor.submit(self.store, job.run_id, job.architecture, job.settings)]
        else:
            handles = self.executor.submit_pack(self.store, [member.run_id for member in jobs], job.architecture,
                                                [member.settings for member in jobs])
        for member, handle in zip(jobs, handles, strict=True):
            member.handle = handle
            handle.when_done(lambda _, member=member: self._finished(member))

    def packs(self) -> list[list[str]]:
        """The runs training together now, one list per pack of two or more (for the Teacher page)."""
        with self._lock:
            slots: dict[str, list[str]] = {}
            for job in self._running.values():
                slots.setdefault(job.slot, []).append(job.run_id)
        return [run_ids for run_ids in slots.values() if len(run_ids) > 1]

    def _finished(self, job: _Job) -> None:
        self._record_end(job)
        with self._lock:
            self._running.pop(job.run_id, None)
            job.done.set()
            self._changed()
            while self._queue and self._slots_used() < self.max_concurrent:
                self._start(self._queue.popleft())

    def _record_end(self, job: _Job) -> None:
        """A run that ended while its store took no writes (a full or read-only disk) still says it runs
        there: keep its end here, show it in its place, and write it once the store takes writes again."""
        try:
            if self.store.get(job.run_id)["status"] not in ACTIVE:
                return
        except (OSError, RunNotFound):
            return
        status, message = job.handle.result
        snapshot = job.handle.progress.snapshot()
        if snapshot.get("status") in USABLE:  # the trainer's own words, where it got to say them
            status, message = snapshot["status"], snapshot.get("message") or message
        with self._lock:
            self._unrecorded[job.run_id] = {"status": status, "message": message, "finished": now_iso()}
        self._write_unrecorded()

    def _write_unrecorded(self) -> None:
        with self._lock:
            waiting = list(self._unrecorded.items())
        for run_id, end in waiting:
            try:
                self.store.update(run_id, **end)
            except (OSError, RunNotFound):
                continue
            with self._lock:
                self._unrecorded.pop(run_id, None)
                self._changed()

    def record(self, run_id: str) -> dict:
        """The run's metadata, with its end where the store could not take it yet."""
        self._write_unrecorded()
        return {**self.store.get(run_id), **self._unrecorded.get(run_id, {})}

    # controlling -----------------------------------------------------------------
    def stop(self, run_id: str, by: Actor | None = None) -> None:
        """Stop a run before its next batch (or take it out of the queue). Finished epochs are kept.
        `by` is who asks (learners.NotYours unless they own the run or teach); None: the operator."""
        (by or Actor.operator()).check_may_change(self.store.get(run_id), "stop")
        with self._lock:
            queued = next((job for job in self._queue if job.run_id == run_id), None)
            if queued is not None:
                self._queue.remove(queued)
            running = self._running.get(run_id)
        if queued is not None:
            message = "Stopped while waiting in the queue: it never started."
            self.store.update(run_id, status=RunStatus.STOPPED, finished=now_iso(), message=message)
            self.store.write_live(run_id, dict(queued.queued.snapshot(), status=RunStatus.STOPPED, message=message))
            queued.done.set()
            with self._lock:
                self._changed()
            return
        if running is not None and running.handle is not None:
            running.handle.stop()
        meta = self.store.get(run_id)
        if meta["status"] in ACTIVE:
            self.store.request_stop(run_id)  # also reaches a run trained by another process (the CLI)

    def delete(self, run_id: str, by: Actor | None = None) -> None:
        """Remove a run for good (refused while it trains); only its owner or the teacher may."""
        (by or Actor.operator()).check_may_change(self.store.get(run_id), "delete")
        self.store.delete(run_id)
        with self._lock:
            self._jobs.pop(run_id, None)
            self._changed()

    def move(self, run_id: str, position: int, by: Actor | None = None) -> None:
        """Put a waiting run at `position` (1: next to start) in the queue: the teacher's call."""
        if not (by or Actor.operator()).teacher:
            raise LabError("Only the teacher can change the order of the queue.")
        with self._lock:
            job = next((job for job in self._queue if job.run_id == run_id), None)
            if job is None:
                raise LabError("That run is not waiting in the queue any more.")
            self._queue.remove(job)
            self._queue.insert(max(0, min(int(position) - 1, len(self._queue))), job)
            self._changed()

    def set_max_concurrent(self, count: int, by: Actor | None = None) -> None:
        """How many runs train at once, from now on (the teacher's call); waiting runs start if slots free up."""
        if not (by or Actor.operator()).teacher:
            raise LabError("Only the teacher can change how many runs train at once.")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise LabError(f"At least one run must be able to train: {count!r} cannot be the limit.")
        with self._lock:
            self.max_concurrent = count
            self._keep_warm()
            while self._queue and self._slots_used() < self.max_concurrent:
                self._start(self._queue.popleft())
            self._changed()

    def device_info(self) -> system.DeviceInfo | None:
        """What runs train on, without importing Keras in the server where it can: certain at once on a
        machine without NVIDIA cards, else as the executor's workers report it; None until known.
        An executor that trains here (or cannot say) leaves it to Keras in this process (system.device_info,
        which raises RuntimeError when Keras could not start)."""
        known = system.device_without_keras()
        if known is not None:
            return known
        if hasattr(self.executor, "device"):
            return self.executor.device
        system.start_warm_up()
        return system.device_info(timeout=0)

    def _keep_warm(self) -> None:
        """An executor with workers that start slowly keeps one ready per training slot."""
        keep_warm = getattr(self.executor, "keep_warm", None)
        if keep_warm is not None:
            keep_warm(self.max_concurrent)

    def queued_run_ids(self) -> list[str]:
        """The waiting runs, next to start first."""
        with self._lock:
            return [job.run_id for job in self._queue]

    def change_count(self) -> tuple[int, int]:
        """Changes to any list of runs: it differs whenever a run was added, started, ended, stopped,
        deleted or moved here, or the store's folder changed (a run of the command line). Cheap enough
        for every page to poll every second."""
        try:
            folder = self.store.root.stat().st_mtime_ns
        except OSError:
            folder = 0
        with self._lock:
            return self._changes, folder

    def expected_start(self, run_id: str) -> float | None:
        """Seconds until a waiting run should start, from the time left of the runs training and the
        estimates of those ahead of it; None when it is not waiting or the speed is not known yet."""
        calibration = self.speed.calibration()
        with self._lock:
            queue = list(self._queue)
            running = list(self._running.values())
        if calibration is None or all(job.run_id != run_id for job in queue):
            return None

        def duration(job: _Job) -> float:
            return estimate_epoch(calibration, job.net, job.settings).run_seconds

        free_at = []
        for job in running:
            left = self.live(job.run_id).get("remaining")
            free_at.append(float(left) if isinstance(left, (int, float)) else duration(job))
        free_at += [0.0] * max(0, self.max_concurrent - len({job.slot for job in running}))
        heapq.heapify(free_at)
        for job in queue:
            start = heapq.heappop(free_at)
            if job.run_id == run_id:
                return start
            heapq.heappush(free_at, start + duration(job))
        return None

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run has ended (True) or the timeout passed (False)."""
        return background.wait_for_run(run_id, timeout)

    def shut_down(self, timeout: float = 15.0) -> None:
        """Stop every run this manager trains, as interrupted, and release the executor."""
        with self._lock:
            running = [job for job in self._running.values() if job.handle is not None]
            self._queue.clear()
        for job in running:
            job.handle.shut_down()
        for job in running:
            job.handle.wait(timeout)
        self.executor.close()

    # reading ---------------------------------------------------------------------
    def live_state(self, run_id: str):
        """The run's progress reader (snapshot, version, wait_for_change) while this process runs it."""
        job = self._jobs.get(run_id)
        if job is None:
            return None
        return job.handle.progress if job.handle is not None else job.queued

    def live(self, run_id: str) -> dict:
        """The run's live progress: from memory if this process runs it, else its live.json."""
        job = self._jobs.get(run_id)
        if job is not None and not job.done.is_set():
            return self.live_state(run_id).snapshot(max_age=PUBLISH_SECONDS)
        return {**self.store.live(run_id), **self._unrecorded.get(run_id, {})}

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None if the run is not waiting here."""
        with self._lock:
            for position, job in enumerate(self._queue, start=1):
                if job.run_id == run_id:
                    return position
        return None

    def counts(self) -> dict:
        with self._lock:
            return {RunStatus.RUNNING: len(self._running), RunStatus.QUEUED: len(self._queue),
                    "max_concurrent": self.max_concurrent, "max_queued": self.max_queued,
                    "executor": self.executor.name}

    def is_training(self) -> bool:
        with self._lock:
            return bool(self._running)

    def runs(self, max_age: float = 1.0) -> list[dict]:
        """The store's runs, newest first; shared by all sessions and re-read at most every `max_age` s."""
        with self._lock:
            stamp, runs = self._list_cache
            if time.monotonic() - stamp < max_age:
                return [dict(meta) for meta in runs]
        if self._unrecorded:
            self._write_unrecorded()
        runs = [{**meta, **self._unrecorded.get(meta["id"], {})} for meta in self.store.list()]
        with self._lock:
            self._list_cache = (time.monotonic(), runs)
        return [dict(meta) for meta in runs]

    def estimate(self, net, settings: TrainSettings) -> EpochEstimate | None:
        """How long a net (its architecture report, or its multiply-adds per image) takes here; None until
        the speed is known (measuring starts here)."""
        self.speed.start(allowed=not self.is_training())
        calibration = self.speed.calibration()
        return None if calibration is None else estimate_epoch(calibration, net, settings)
