"""The process executor: each run trains in a worker process of its own, so that a run that crashes
TensorFlow (out of memory, a native fault, a kill) leaves the server serving.

One worker is kept warm: started ahead, it has imported Keras before a learner presses Train, so a click
does not wait for TensorFlow to load. A worker trains one run and exits, giving all its memory back.

The worker speaks JSON lines. The server writes one `{"run": ...}` line to its standard input, then
`{"stop": true}` or `{"shut_down": true}` when asked; the end of its standard input means the server is
gone, which stops the run as interrupted. The worker writes `{"ready": true}` once Keras is loaded,
`{"progress": snapshot}` about twice a second and `{"finished": [status, message]}` on its standard
output; whatever else it prints goes to standard error, the server's log. The run store, on the same
machine, gets the history, the model and each epoch's weights epoch by epoch, written by the worker as
in any other executor.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from mnist_lab.runs import RunStore, now_iso
from mnist_lab.training.executors import ProgressBoard, RunHandle
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


class ProcessHandle(RunHandle):
    def __init__(self, run_id: str, process: subprocess.Popen, store: RunStore, snapshot: dict):
        super().__init__(run_id, ProgressBoard(snapshot))
        self.process = process
        self.store = store
        self._write_lock = threading.Lock()
        threading.Thread(target=self._read, name=f"worker-{run_id}", daemon=True).start()

    def send(self, message: dict) -> None:
        with self._write_lock:
            try:
                self.process.stdin.write(json.dumps(message) + "\n")
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the worker is gone; its reader thread records how the run ended

    def stop(self) -> None:
        self.send({"stop": True})

    def shut_down(self) -> None:
        self.send({"shut_down": True})

    def _read(self) -> None:
        result = None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "progress" in message:
                self.progress.update(message["progress"])
            elif "finished" in message:
                result = tuple(message["finished"])
        returncode = self.process.wait()
        if result is None:
            result = self._record_death(returncode)
        self._finish(*result)

    def _record_death(self, returncode: int | None) -> tuple[str, str]:
        """The worker died mid-run: mark the run failed; its finished epochs and last model stay."""
        epochs = len(self.store.history(self.run_id))
        message = death_message(returncode, epochs)
        logger.error("The worker of run %s ended with %s", self.run_id, returncode)
        try:
            self.store.update(self.run_id, status="failed", message=message, finished=now_iso())
        except OSError:
            logger.exception("Could not record the end of run %s", self.run_id)
        snapshot = dict(self.progress.snapshot(), status="failed", message=message, phase="finished")
        self.progress.update(snapshot)
        return "failed", message


class ProcessExecutor:
    """Starts a worker process per run, with one more kept warm for the next."""

    name = "process"

    def __init__(self, warm: bool = True):
        self._lock = threading.Lock()
        self._warm_worker: subprocess.Popen | None = None
        self._keep_warm = warm
        if warm:
            self._warm_up()

    def _start_worker(self) -> subprocess.Popen:
        root = str(Path(__file__).resolve().parents[2])  # the folder holding mnist_lab, wherever we run
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        return subprocess.Popen([sys.executable, "-m", "mnist_lab.training.process_executor"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                env=dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1"))

    def _warm_up(self) -> None:
        with self._lock:
            if self._warm_worker is None or self._warm_worker.poll() is not None:
                self._warm_worker = self._start_worker()

    def wait_until_warm(self) -> bool:
        """Block until the warm worker has loaded Keras (its first line); False if it died first."""
        with self._lock:
            worker = self._warm_worker
        return worker is not None and '"ready"' in worker.stdout.readline()

    def _take_worker(self) -> subprocess.Popen:
        with self._lock:
            worker, self._warm_worker = self._warm_worker, None
        if worker is None or worker.poll() is not None:
            worker = self._start_worker()
        if self._keep_warm:
            self._warm_up()
        return worker

    def submit(self, store: RunStore, run_id: str, architecture: dict, settings: TrainSettings) -> RunHandle:
        worker = self._take_worker()
        snapshot = {"run_id": run_id, "status": "running", "phase": "starting", "epoch": 1,
                    "epochs": settings.epochs, "batch": 0, "batches": settings.steps_per_epoch(), "curve": []}
        handle = ProcessHandle(run_id, worker, store, snapshot)
        handle.send({"run": {"store": str(store.root), "run_id": run_id, "architecture": architecture,
                             "settings": settings.as_dict()}})
        return handle

    def close(self) -> None:
        """End the warm worker (running runs are shut down by the manager)."""
        with self._lock:
            worker, self._warm_worker, self._keep_warm = self._warm_worker, None, False
        if worker is not None and worker.poll() is None:
            worker.stdin.close()
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


# --- the worker side ------------------------------------------------------------------------------

def _serve() -> int:
    """A worker's life: load Keras, say ready, train the one run it is given, say how it ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server decides
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints and library chatter go to the log

    def say(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")

    from mnist_lab import system

    system.configure_gpu_memory()
    import keras  # noqa: F401 - the slow import, done before a run arrives

    from mnist_lab.training.fitting import train_run
    from mnist_lab.training.progress import LivePublisher, LiveState

    say({"ready": True})
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)["run"]
    store = RunStore(job["store"])
    run_id = job["run_id"]
    settings = TrainSettings.from_dict(job["settings"])
    live = LiveState(run_id, settings, stop_file=store.path(run_id) / "STOP")

    def listen():
        for text in sys.stdin:
            live.request_stop(shutting_down=bool(json.loads(text).get("shut_down")))
        live.request_stop(shutting_down=True)  # the server is gone

    threading.Thread(target=listen, name="commands", daemon=True).start()
    publisher = LivePublisher(store, run_id, live, sink=lambda snapshot: say({"progress": snapshot}))
    status, message = train_run(store, run_id, job["architecture"], settings, live, publisher=publisher)
    say({"finished": [status, message]})
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(process)d %(levelname)s %(message)s")
    sys.exit(_serve())
