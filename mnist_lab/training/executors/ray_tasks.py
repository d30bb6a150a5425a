"""The Ray executor: each run is a Ray task, on a local Ray instance, or on the cluster at RAY_ADDRESS when a
class outgrows one server. MNIST_LAB_GPUS_PER_RUN (fractional allowed) is what each task asks for.

No file system is assumed to be shared: the task trains into a run store of its own, in a temporary
folder of whichever node runs it, and streams everything back through a Ray queue: the run's metadata
when it changes, progress about twice a second, and each finished epoch with the model saved after it
and that epoch's weights (for the Draw page's epoch slider).
The server writes those into its own store as they arrive, so a task that dies loses no finished
epoch. A stop is a flag in a small actor that the task polls.

Ray is optional (requirements-ray.txt); choosing it without Ray installed is an ExecutorUnavailable.
"""

from __future__ import annotations

import logging
import os
import queue as queues
import shutil
import tempfile
import threading
from pathlib import Path

from mnist_lab.errors import LabError
from mnist_lab.runs import RunStatus, RunStore, now_iso, pid_alive, write_atomic
from mnist_lab.training.executors.base import UNAVAILABLE, ExecutorUnavailable, ProgressBoard, RunHandle
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)

GPUS_VARIABLE = "MNIST_LAB_GPUS_PER_RUN"
POLL_SECONDS = 0.5
# Fields of the task's run.json that the server's copy takes over; the rest (id, name...) stay, and the
# epoch counts are the server's own, kept by append_epoch as each epoch arrives.
MIRRORED_FIELDS = ("status", "message", "started", "finished", "device", "backend", "versions", "test_loss",
                   "test_accuracy", "batch_normalization")


def _ray():
    try:
        import ray
    except ImportError:
        raise ExecutorUnavailable(UNAVAILABLE, "MNIST_LAB_EXECUTOR is ray, but Ray is not installed: install "
                                               "requirements-ray.txt, or choose the process executor.") from None
    return ray


def gpus_per_run() -> float:
    text = os.environ.get(GPUS_VARIABLE) or "0"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 64:
        raise LabError(UNAVAILABLE, f"{GPUS_VARIABLE} must be a number of GPUs from 0 to 64 (0.25 is allowed), "
                                    f"not {text!r}.")
    return value


TASK_FOLDER_PREFIX = "mnist-lab-ray-"


def sweep_task_folders() -> None:
    """Remove this node's task stores whose task died without removing its own (killed by a signal, or
    by the node's out-of-memory killer): each folder's name holds the pid of the process that made it."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TASK_FOLDER_PREFIX}*"):
        pid = folder.name.removeprefix(TASK_FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _train_remotely(job: dict, outbox, control) -> tuple[str, str]:
    """The Ray task's body: train into a store of its own and send everything back through `outbox`."""
    import ray

    from mnist_lab import system
    from mnist_lab.runs import read_json, write_json
    from mnist_lab.training.fitting import train_run
    from mnist_lab.training.progress import LivePublisher, LiveState

    system.configure_gpu_memory()
    run_id, settings = job["run_id"], TrainSettings.from_dict(job["settings"])
    sweep_task_folders()
    with tempfile.TemporaryDirectory(prefix=f"{TASK_FOLDER_PREFIX}{os.getpid()}-") as folder:
        store = _ForwardingStore(folder, outbox)
        store.path(run_id).mkdir(parents=True)
        write_json(store.path(run_id) / "run.json", job["meta"])
        write_json(store.path(run_id) / "history.json", [])
        live = LiveState(run_id, settings)
        stopped = threading.Event()

        def poll_stop():
            while not stopped.wait(POLL_SECONDS):
                if ray.get(control.stop_requested.remote()):
                    live.request_stop()
                    return

        threading.Thread(target=poll_stop, name="stop-poll", daemon=True).start()
        publisher = LivePublisher(store, run_id, live, sink=lambda snapshot: outbox.put(("progress", snapshot)))
        try:
            result = train_run(store, run_id, job["architecture"], settings, live, publisher=publisher)
        finally:
            stopped.set()
        model = store.model_path(run_id)
        if model.is_file():  # the model as the run ended: BatchNormalization's re-estimation changes it
            outbox.put(("model", model.read_bytes()))
        outbox.put(("meta", read_json(store.path(run_id) / "run.json", default={})))
        return result


class _ForwardingStore(RunStore):
    """The task's run store: writes locally as any store does, and forwards metadata and epochs."""

    def __init__(self, root, outbox):
        super().__init__(root)
        self.outbox = outbox

    def update(self, run_id: str, **changes) -> dict:
        meta = super().update(run_id, **changes)
        self.outbox.put(("meta", meta))
        return meta

    def commit_epoch(self, run_id: str, epoch: dict) -> None:
        super().commit_epoch(run_id, epoch)
        model = self.model_path(run_id)
        weights = self.epoch_weights_path(run_id, epoch["epoch"])
        self.outbox.put(("epoch", epoch, model.read_bytes() if model.is_file() else None,
                         weights.read_bytes() if weights.is_file() else None))


class RayHandle(RunHandle):
    def __init__(self, run_id: str, store: RunStore, ray, reference, outbox, control, snapshot: dict):
        super().__init__(run_id, ProgressBoard(snapshot))
        self.store, self._ray, self._reference, self._outbox, self._control = store, ray, reference, outbox, control
        threading.Thread(target=self._receive, name=f"ray-{run_id}", daemon=True).start()

    def stop(self) -> None:
        self._control.request_stop.remote()

    def shut_down(self) -> None:
        self.stop()

    def _apply(self, message) -> None:
        kind = message[0]
        if kind == "progress":
            self.progress.update(message[1])
        elif kind == "meta":
            changes = {key: message[1][key] for key in MIRRORED_FIELDS if key in message[1]}
            self.store.update(self.run_id, **changes)
        elif kind == "model":
            write_atomic(self.store.model_path(self.run_id), message[1])
        elif kind == "epoch":
            _, row, model, weights = message
            if model is not None and weights is not None:  # this store thins its own epochs to its own limit
                self.store.stage_epoch(self.run_id, row["epoch"], model, weights)
            self.store.commit_epoch(self.run_id, row)

    def _drain(self, block: bool) -> bool:
        """Apply waiting messages; True if any arrived."""
        try:
            message = self._outbox.get(block=block, timeout=POLL_SECONDS if block else None)
        except (queues.Empty, self._ray.util.queue.Empty):
            return False
        self._apply(message)
        return True

    def _receive(self) -> None:
        result = None
        try:
            while True:
                ready, _ = self._ray.wait([self._reference], timeout=0)
                if ready:
                    while self._drain(block=False):
                        pass
                    result = tuple(self._ray.get(self._reference))
                    break
                self._drain(block=True)
        except Exception as error:
            logger.exception("The Ray task of run %s failed", self.run_id)
            message = (f"The Ray task training this run stopped unexpectedly ({type(error).__name__}); "
                       f"{self.store.settle_epochs(self.run_id, trainer_gone=True)} finished epoch(s) kept.")
            sweep_task_folders()  # the dead task's own store, where it ran on this node
            self.store.update(self.run_id, status=RunStatus.FAILED, message=message, finished=now_iso())
            result = (RunStatus.FAILED, message)
        finally:
            self._ray.kill(self._outbox.actor)
            self._ray.kill(self._control)
        self._finish(*result)


def _runtime_env() -> dict:
    """The lab's own code travels with each task (py_modules), so cluster nodes need only its requirements."""
    import mnist_lab

    variables = {key: os.environ[key] for key in ("MNIST_LAB_DATA", "KERAS_BACKEND") if key in os.environ}
    return {"py_modules": [os.path.dirname(mnist_lab.__file__)], "env_vars": variables}


class RayExecutor:
    """Submits each run as a Ray task; joins RAY_ADDRESS's cluster, or starts a local instance."""

    name = "ray"

    def __init__(self):
        self._ray = _ray()
        self.gpus = gpus_per_run()
        if not self._ray.is_initialized():
            self._ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                           log_to_driver=False, configure_logging=False,
                           runtime_env=_runtime_env())
        ray = self._ray

        @ray.remote
        class Control:
            def __init__(self):
                self.stopped = False

            def request_stop(self):
                self.stopped = True

            def stop_requested(self):
                return self.stopped

        self._control_class = Control
        self._task = ray.remote(_train_remotely)

    def submit(self, store: RunStore, run_id: str, architecture: dict, settings: TrainSettings) -> RunHandle:
        from ray.util.queue import Queue

        outbox, control = Queue(), self._control_class.remote()
        job = {"run_id": run_id, "architecture": architecture, "settings": settings.as_dict(),
               "meta": store.get(run_id)}
        # No retry: a second attempt would train from epoch 1 again into the same history, and a learner
        # is better told that the run failed, with its finished epochs, than shown it twice.
        reference = self._task.options(num_gpus=self.gpus, max_retries=0).remote(job, outbox, control)
        snapshot = {"run_id": run_id, "status": RunStatus.RUNNING, "phase": "starting", "epoch": 1,
                    "epochs": settings.epochs, "batch": 0, "batches": settings.steps_per_epoch(), "curve": []}
        return RayHandle(run_id, store, self._ray, reference, outbox, control, snapshot)

    def close(self) -> None:
        """Leave Ray running: other managers of this process may share it."""
