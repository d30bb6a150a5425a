"""The process executor: runs train in a pool of worker processes, so that a run that crashes TensorFlow
(out of memory, a native fault, a kill) leaves the server serving.

A worker lives across runs: it imports Keras and loads MNIST once, then trains the runs it is given one
after another, so a learner's run does not pay TensorFlow's import (seconds on two cores) or the data's
load. One worker is started ahead, while the server is idle; more start only when more runs train at
once than there are idle workers, so a spare never takes a core from a run that trains. A worker is
retired after `runs_per_worker` runs or once its memory passes `memory_limit_mb`, giving its memory back;
a worker that dies fails only the run it was training, and the next run gets another worker.

The worker speaks JSON lines. The server writes `{"run": ...}` lines to its standard input (or
`{"pack": [...]}`: runs that train together as one Keras model, training.packed_runs), and
`{"stop": run_id}` or `{"shut_down": run_id}` when asked; the end of its standard input means the server
is gone (or the worker is retired), which stops a run as interrupted and ends the worker. The worker
writes `{"ready": true}` once Keras and the data are loaded, `{"progress": snapshot}` about twice a second
and `{"finished": [status, message], "run_id": ...}` as each run ends, the job's last one with
`"memory_mb"` (the worker is free again), on its standard output; whatever else it prints
goes to standard error, the server's log. The run store, on the same machine, gets the history, the
model and each epoch's weights epoch by epoch, written by the worker as in any other executor.

This module is the server's side; process_worker.py is the worker's.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mnist_lab import system
from mnist_lab.runs import RunNotFound, RunStatus, RunStore, now_iso
from mnist_lab.training.executors.base import ProgressBoard, RunHandle
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)


def death_message(returncode: int | None, epochs_kept: int) -> str:
    """What a learner reads when the worker process ended without saying how the run ended."""
    if returncode is not None and returncode < 0:
        try:
            cause = f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            cause = f"signal {-returncode}"
    else:
        cause = f"exit status {returncode}"
    kept = (f"its {epochs_kept} finished epoch(s) and the model after epoch {epochs_kept} are kept"
            if epochs_kept else "it had finished no epoch, so there is no model to keep")
    return (f"The training process stopped unexpectedly: {cause}, often a sign that it ran out of memory; "
            f"{kept}. Try a smaller batch size or net.")


WORKER_RUNS_VARIABLE = "MNIST_LAB_WORKER_RUNS"
WORKER_MEMORY_VARIABLE = "MNIST_LAB_WORKER_MEMORY_MB"
WORKER_NICENESS_VARIABLE = "MNIST_LAB_WORKER_NICENESS"
DEFAULT_WORKER_RUNS = 50
DEFAULT_WORKER_MEMORY_MB = 4000
# Training yields the CPU to the server: thirty learners wait on its pages and on the answer to Train. At
# niceness 0 a class's Train presses took 3.97 s (median) and 6.5 s (worst) to be answered, at 10 2.31 and
# 4.21 s, with the class's runs as soon done (docs/performance.md). On a machine whose other work must not
# starve the runs (each nice-0 process then takes ten times a worker's share), the teacher sets 0.
DEFAULT_WORKER_NICENESS = 10
LOWEST_PRIORITY_NICENESS = 19


class ProcessHandle(RunHandle):
    """A run given to a pool worker; the worker's reader thread feeds its progress and its end."""

    def __init__(self, run_id: str, worker: "Worker | None", store: RunStore, snapshot: dict):
        super().__init__(run_id, ProgressBoard(snapshot))
        self.worker = worker
        self.store = store
        self.job: dict = {}  # what the worker is sent: the run's store, id, architecture and settings

    def stop(self) -> None:
        self.worker.send({"stop": self.run_id})

    def shut_down(self) -> None:
        self.worker.send({"shut_down": self.run_id})

    def record_death(self, returncode: int | None) -> tuple[str, str]:
        """The worker died mid-run: mark the run failed; its finished epochs and last model stay."""
        logger.error("The worker of run %s ended with %s", self.run_id, returncode)
        try:
            epochs = self.store.settle_epochs(self.run_id, trainer_gone=True)
        except (OSError, RunNotFound):
            logger.exception("Could not settle the files of run %s", self.run_id)
            epochs = len(self.store.history(self.run_id))
        message = death_message(returncode, epochs)
        try:
            self.store.update(self.run_id, status=RunStatus.FAILED, message=message, finished=now_iso())
        except OSError:
            logger.exception("Could not record the end of run %s", self.run_id)
        snapshot = dict(self.progress.snapshot(), status=RunStatus.FAILED, message=message, phase="finished")
        self.progress.update(snapshot)
        return RunStatus.FAILED, message


class Worker:
    """One worker process and the thread that reads it. It trains one run at a time (`handle`); when a
    run ends it goes back to its pool before the run's end is announced, so the next queued run can
    take it at once."""

    def __init__(self, pool: "ProcessExecutor"):
        self.pool = pool
        root = str(Path(__file__).resolve().parents[3])  # the folder holding mnist_lab, wherever we run
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen([sys.executable, "-m", "mnist_lab.training.executors.process_worker",
                                         str(pool.niceness)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                        env=dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1"))
        self.ready = threading.Event()
        self.exited = threading.Event()
        self.handles: dict[str, ProcessHandle] = {}  # the runs it trains now: one, or a pack
        self.began = False  # whether the worker has taken up its current job
        self.runs_done = 0
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()  # between giving it a run and seeing it end
        threading.Thread(target=self._read, name=f"worker-{self.process.pid}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return not self.exited.is_set() and self.process.poll() is None

    def send(self, message: dict) -> None:
        with self._write_lock:
            try:
                self.process.stdin.write(json.dumps(message) + "\n")
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the worker is gone; its reader thread records how its run ended

    def assign(self, handles: list[ProcessHandle], message: dict) -> bool:
        """Give the worker a run, or a pack of runs; False if it had already ended (they then need another
        worker)."""
        with self._state_lock:
            if self.exited.is_set():
                return False
            self.handles = {handle.run_id: handle for handle in handles}
            self.began = False
        self.send(message)
        return True

    def retire(self) -> None:
        """End the worker once it is idle: the end of its input is its signal to exit."""
        with self._write_lock:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "ready" in message:
                if isinstance(message.get("device"), dict):
                    self.pool.device = system.DeviceInfo.from_dict(message["device"])
                self.ready.set()
            elif "began" in message:
                self.began = True
            elif "progress" in message:
                handle = self.handles.get(message["progress"].get("run_id"))
                if handle is not None:
                    handle.progress.update(message["progress"])
            elif "finished" in message:
                with self._state_lock:
                    handle = self.handles.pop(message.get("run_id"), None)
                if "memory_mb" in message:  # the job's last run: the worker is free (for the next one first)
                    self.runs_done += 1
                    self.pool._release(self, message["memory_mb"] or 0.0)
                if handle is not None:
                    handle._finish(*message["finished"])
        returncode = self.process.wait()
        with self._state_lock:
            self.exited.set()
            handles, self.handles = list(self.handles.values()), {}
        self.pool._forget(self)
        if handles and not self.began and not self.pool.closed:
            self.pool._hand_on(handles)  # it died before it took them up: they never began
        else:
            for handle in handles:
                handle._finish(*handle.record_death(returncode))


class ProcessExecutor:
    """A pool of worker processes that live across runs; while the server is idle it starts workers ahead
    (`warm`), one per training slot the manager asks for (`keep_warm`).

    `runs_per_worker` and `memory_limit_mb` (default: MNIST_LAB_WORKER_RUNS, MNIST_LAB_WORKER_MEMORY_MB)
    say when a worker is retired after a run; `niceness` (MNIST_LAB_WORKER_NICENESS) how far below the
    server's priority the workers train.
    """

    name = "process"

    def __init__(self, warm: bool = True, runs_per_worker: int | None = None,
                 memory_limit_mb: float | None = None, niceness: int | None = None):
        self.runs_per_worker = runs_per_worker or _environment_number(WORKER_RUNS_VARIABLE, DEFAULT_WORKER_RUNS)
        self.memory_limit_mb = memory_limit_mb or _environment_number(WORKER_MEMORY_VARIABLE,
                                                                      DEFAULT_WORKER_MEMORY_MB)
        self.niceness = _environment_niceness() if niceness is None else niceness
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._keep_warm = warm
        self._warm_count = 1
        self.closed = False
        self.workers_started = 0
        self.device: system.DeviceInfo | None = None  # what the workers train on, as the first ready one said
        self.workers_retired = 0
        if warm:
            with self._lock:
                self._start_spare_if_idle()

    def _start_worker(self) -> Worker:
        """Called with the lock held."""
        self.workers_started += 1
        return Worker(self)

    def keep_warm(self, count: int) -> None:
        """Keep `count` workers ready (the manager asks for one per training slot)."""
        with self._lock:
            self._warm_count = count
            self._start_spare_if_idle()

    def _start_spare_if_idle(self) -> None:
        """Top up the ready workers, but only while no run trains: a worker importing Keras would take a core
        from it. Called with the lock held."""
        while self._keep_warm and not self.closed and not self._busy and len(self._idle) < self._warm_count:
            self._idle.append(self._start_worker())

    def wait_until_warm(self, timeout: float | None = None) -> bool:
        """Block until every idle worker has loaded Keras and the data; False if one did not in time."""
        with self._lock:
            idle = [worker for worker in self._idle if worker.alive()]
        deadline = None if timeout is None else time.monotonic() + timeout
        return bool(idle) and all(
            worker.ready.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            for worker in idle)

    def _take_worker(self) -> Worker:
        """An idle worker, a ready one first; else a new one. Called with the lock held."""
        alive = [worker for worker in self._idle if worker.alive()]
        self._idle = []
        ready = [worker for worker in alive if worker.ready.is_set()]
        worker = (ready or alive)[0] if alive else self._start_worker()
        self._idle = [other for other in alive if other is not worker]
        self._busy.add(worker)
        return worker

    def _release(self, worker: Worker, memory_mb: float) -> None:
        """A worker's run ended: back to the pool, unless it has done its share or grown too large."""
        with self._lock:
            self._busy.discard(worker)
            if (self.closed or worker.runs_done >= self.runs_per_worker
                    or memory_mb > self.memory_limit_mb):
                logger.info("Retiring worker %s after %s run(s), %.0f MB", worker.pid, worker.runs_done, memory_mb)
                self.workers_retired += 1
                worker.retire()
            else:
                self._idle.insert(0, worker)  # the most recently used first: its caches are warm
            self._start_spare_if_idle()

    def _forget(self, worker: Worker) -> None:
        """A worker ended (retired, killed or crashed): it leaves the pool."""
        with self._lock:
            self._busy.discard(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            self._start_spare_if_idle()

    def submit(self, store: RunStore, run_id: str, architecture: dict, settings: TrainSettings) -> RunHandle:
        return self.submit_pack(store, [run_id], architecture, [settings])[0]

    def submit_pack(self, store: RunStore, run_ids: list[str], architecture: dict,
                    settings_list: list[TrainSettings]) -> list[RunHandle]:
        """Runs that train as one pack in one worker (training.packed_runs); one run trains alone."""
        handles = []
        for run_id, settings in zip(run_ids, settings_list, strict=True):
            snapshot = {"run_id": run_id, "status": RunStatus.RUNNING, "phase": "starting", "epoch": 1,
                        "epochs": settings.epochs, "batch": 0, "batches": settings.steps_per_epoch(), "curve": []}
            handle = ProcessHandle(run_id, None, store, snapshot)
            handle.job = {"store": str(store.root), "run_id": run_id, "architecture": architecture,
                          "settings": settings.as_dict()}
            handles.append(handle)
        self._hand_on(handles)
        return handles

    def _hand_on(self, handles: list[ProcessHandle]) -> None:
        """Give runs to a worker; one that turns out to have died before taking them up passes them on."""
        jobs = [handle.job for handle in handles]
        message = {"run": jobs[0]} if len(jobs) == 1 else {"pack": jobs}
        while True:
            with self._lock:
                worker = self._take_worker()
            for handle in handles:
                handle.worker = worker
            if worker.assign(handles, message):
                return
            with self._lock:  # it died while idle, just before it was taken
                self._busy.discard(worker)

    def worker_pids(self) -> dict[str, list[int]]:
        """The pool's processes, idle and training: for the Teacher page and the tests."""
        with self._lock:
            return {"idle": [worker.pid for worker in self._idle if worker.alive()],
                    "busy": [worker.pid for worker in self._busy]}

    def close(self) -> None:
        """End the idle workers at once (running runs are shut down by the manager; their workers end
        after). An idle worker holds no run, so it is terminated as well as retired: one still importing
        Keras would read its closed input only seconds later, and a server stopping waited for it."""
        with self._lock:
            idle, self._idle, self.closed = self._idle, [], True
        for worker in idle:
            worker.retire()
            worker.process.terminate()
        for worker in idle:
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.process.kill()


def _environment_niceness() -> int:
    """The workers' niceness from the environment: a whole number from 0 to 19, or the default (logged)."""
    text = os.environ.get(WORKER_NICENESS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_WORKER_NICENESS
    if text.isdigit() and int(text) <= LOWEST_PRIORITY_NICENESS:
        return int(text)
    logger.error("%s must be a whole number from 0 to %d, not %r: using %d", WORKER_NICENESS_VARIABLE,
                 LOWEST_PRIORITY_NICENESS, text, DEFAULT_WORKER_NICENESS)
    return DEFAULT_WORKER_NICENESS


def _environment_number(variable: str, default: float) -> float:
    """A positive number from the environment, or the default when it is unset or not one (logged)."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        logger.error("%s must be a positive number, not %r: using %s", variable, text, default)
        return default
    return value
