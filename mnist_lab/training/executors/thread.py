"""The thread executor: each run trains in a thread of this process (tests, and the command line's
--executor thread)."""

from __future__ import annotations

import threading

from mnist_lab import data
from mnist_lab.runs import RunStatus, RunStore
from mnist_lab.training.executors.base import RunHandle
from mnist_lab.training.fitting import train_run
from mnist_lab.training.packed_runs import train_pack
from mnist_lab.training.progress import LivePublisher, LiveState
from mnist_lab.training.settings import TrainSettings


class ThreadHandle(RunHandle):
    def stop(self) -> None:
        self.progress.request_stop()

    def shut_down(self) -> None:
        self.progress.request_stop(shutting_down=True)


class ThreadExecutor:
    """Trains each run in a thread of this process: no start-up cost, but a crash of TensorFlow is the
    process's crash. `load_data` lets tests train on arrays they make."""

    name = "thread"

    def __init__(self, load_data=data.load_mnist):
        self._load_data = load_data

    def submit(self, store: RunStore, run_id: str, architecture: dict, settings: TrainSettings) -> RunHandle:
        live = LiveState(run_id, settings, stop_file=store.path(run_id) / "STOP")
        handle = ThreadHandle(run_id, live)

        def work():
            status, message = RunStatus.FAILED, "The training thread stopped unexpectedly."
            try:
                status, message = train_run(store, run_id, architecture, settings, live, self._load_data,
                                            LivePublisher(store, run_id, live))
            finally:
                handle._finish(status, message)

        threading.Thread(target=work, name=f"train-{run_id}", daemon=True).start()
        return handle

    def submit_pack(self, store: RunStore, run_ids: list[str], architecture: dict,
                    settings_list: list[TrainSettings]) -> list[RunHandle]:
        """Runs that train as one pack, in one thread (training.packed_runs)."""
        lives = [LiveState(run_id, settings, stop_file=store.path(run_id) / "STOP")
                 for run_id, settings in zip(run_ids, settings_list, strict=True)]
        handles = {live.run_id: ThreadHandle(live.run_id, live) for live in lives}

        def work():
            try:
                train_pack(store, run_ids, architecture, settings_list, lives, self._load_data,
                           [LivePublisher(store, live.run_id, live) for live in lives],
                           on_end=lambda run_id, status, message: handles[run_id]._finish(status, message))
            finally:
                for handle in handles.values():  # an end train_pack could not report
                    handle._finish(RunStatus.FAILED, "The training thread stopped unexpectedly.")

        threading.Thread(target=work, name=f"train-pack-{run_ids[0]}", daemon=True).start()
        return list(handles.values())

    def close(self) -> None:
        """Nothing to release: the threads end with their runs."""
