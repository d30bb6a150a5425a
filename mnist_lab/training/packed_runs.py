"""Several stored runs trained as one pack (packing.py), each kept in the store exactly as a lone run is.

A learner cannot tell a packed run from a lone one but that it came sooner: its own live curve and phases,
its own stop (it ends at once, with the model of its last finished epoch, while the others go on), its own
history, epoch weights and model file (its net alone), its own test scores. The test pass of the nets that
train to the end is one pass of the pack.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Callable, Sequence

import numpy as np

from mnist_lab import data, system
from mnist_lab.evaluation.batch_normalization import BATCH_NORMALIZATION_LAG_LIMIT
from mnist_lab.runs import RunNotFound, RunStatus, RunStore, now_iso
from mnist_lab.training import packing
from mnist_lab.training.fitting import (BATCH_NORMALIZATION_IMAGES, KERAS_SETUP_LOCK, SetupHold, batch_normalization_lag,
                                        correct_batch_normalization, device_details, epoch_weights_bytes, model_bytes,
                                        readable_error, save_model_atomic, test_scores)
from mnist_lab.training.packed_fit import PackedFit
from mnist_lab.training.phases import HoldPoint, Phase, PhaseHold
from mnist_lab.training.progress import DIVERGED_MESSAGE, LiveState, StopRequested, TrainingDiverged
from mnist_lab.training.settings import TrainSettings

logger = logging.getLogger(__name__)

PACK_SIZE_VARIABLE = "MNIST_LAB_PACK_SIZE"
# The largest pack the manager forms while its training slots leave CPU cores idle. Measured on a 2-core CPU
# (docs/performance.md, eight 10,000-image quick demos): one slot, packs of up to 4 ended at 1.28x the
# compute floor against 1.52x alone; but two slots without packing ended at 0.94x, and packs in two slots at
# 1.25x (a pack takes a slot's core for longer, and the slots' work grows uneven). So by default a server
# packs only while it trains fewer runs at once than it has cores.
DEFAULT_PACK_SIZE = 4


def pack_size(slots: int) -> int:
    """The largest pack for a manager of `slots` training slots: MNIST_LAB_PACK_SIZE, else the measured
    default (1, no packing, once the slots fill the cores)."""
    text = os.environ.get(PACK_SIZE_VARIABLE, "").strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    if text:
        logger.error("%s must be a whole number of at least 1, not %r: using the default", PACK_SIZE_VARIABLE,
                     text)
    return DEFAULT_PACK_SIZE if slots < system.cpu_cores() else 1


def packing_key(architecture: dict, settings: TrainSettings) -> tuple | None:
    """What a run shares with the runs it may pack with; None for a run that trains alone."""
    try:
        return packing.pack_key(architecture["layers"], settings)
    except (packing.PackingError, ValueError):
        return None


class _PackedRun:
    """One run of a pack, as it goes."""

    def __init__(self, store: RunStore, run_id: str, settings: TrainSettings, live: LiveState, publisher):
        self.store, self.run_id, self.settings, self.live, self.publisher = store, run_id, settings, live, publisher
        self.phase_hold = PhaseHold.from_environment(store.path(run_id), live)
        self.history: list[dict] = []
        self.ended: tuple[str, str] | None = None
        self.diverged = False
        self.model = None  # its net as a lone model (packing.split_pack), synced at each finished epoch


def train_pack(store: RunStore, run_ids: Sequence[str], architecture: dict, settings_list: Sequence[TrainSettings],
               lives: Sequence[LiveState], load_data=data.load_mnist, publishers: Sequence | None = None,
               on_end: Callable[[str, str, str], None] | None = None) -> dict[str, tuple[str, str]]:
    """Train stored runs of one architecture and packing key as one pack, keeping the store up to date.

    `on_end(run_id, status, message)` is called as each run ends (a stopped run ends before the others);
    returns every run's (status, message). Every executor that packs calls this in the process that trains.
    """
    publishers = list(publishers) if publishers is not None else [None] * len(run_ids)
    runs = [_PackedRun(store, run_id, settings, live, publisher)
            for run_id, settings, live, publisher in zip(run_ids, settings_list, lives, publishers, strict=True)]

    def end(run: _PackedRun, status: str, message: str) -> None:
        if run.ended is not None:
            return
        run.ended = (status, message)
        if run.live.shutting_down:
            status = RunStatus.INTERRUPTED
            message = f"The server shut down during this run; {len(run.history)} finished epoch(s) kept."
            run.ended = (status, message)
        try:
            store.settle_epochs(run.run_id)
        except (OSError, RunNotFound):
            logger.exception("Could not settle the files of run %s", run.run_id)
        run.phase_hold.reached(HoldPoint.FINISHING)
        try:
            store.update(run.run_id, status=status, message=message, finished=now_iso())
        except (OSError, RunNotFound):
            logger.exception("Could not record the end of run %s", run.run_id)
        finally:
            run.live.finish(status, message)
            if run.publisher is not None:
                run.publisher.close()
            if on_end is not None:
                on_end(run.run_id, status, message)

    training = []
    for run in runs:
        if run.live.stop_event.is_set() or store.stop_requested(run.run_id):
            end(run, RunStatus.STOPPED, "Stopped before it started.")
        else:
            training.append(run)
    hold = SetupHold(training[0].live) if training else None
    try:
        if training:
            _train(store, training, architecture, load_data, end, hold)
    except StopRequested:  # asked while waiting for the set-up lock
        for run in training:
            end(run, RunStatus.STOPPED, "Stopped before it started training.")
    except Exception as error:
        logger.exception("The pack of runs %s failed", ", ".join(run.run_id for run in training))
        for run in training:
            end(run, RunStatus.FAILED, readable_error(error))
    finally:
        if hold is not None:
            hold.release()
    return {run.run_id: run.ended for run in runs}


def _train(store: RunStore, runs: list[_PackedRun], architecture: dict, load_data, end, hold: SetupHold) -> None:
    import keras

    device = device_details()
    for run in runs:
        run.live.start()
        store.update(run.run_id, status=RunStatus.RUNNING, started=now_iso(), pid=os.getpid(), packed_with=[
            other.run_id for other in runs if other is not run], **device)
    reach(runs, HoldPoint.STARTING)
    hold.acquire()  # building and the first epoch's tracing, as a lone run holds it
    reach(runs, HoldPoint.LOADING_DATA)
    mnist = load_data()
    nets = packing.pack_data(mnist, [run.settings for run in runs])
    reach(runs, HoldPoint.BUILDING)
    pack = packing.build_pack(architecture["layers"], [run.settings.seed for run in runs], runs[0].settings)
    for run, model in zip(runs, packing.split_pack(pack)):
        run.model = model
    test = (data.to_model_input(mnist.x_test), mnist.y_test.astype("int32"))
    fit = PackedFit(pack, nets, on_epoch=lambda index, row: epoch_done(runs[index], index, row))

    def epoch_done(run: _PackedRun, index: int, row: dict) -> None:
        row = run.live.end_epoch(row["epoch"] - 1, row, row["seconds"])
        if row["loss"] is None:
            run.diverged = True
            fit.stop(index)
            return
        run.phase_hold.reached(HoldPoint.EPOCH_END)
        packing.copy_net(pack, index, run.model)
        run.phase_hold.reached(HoldPoint.SAVING)
        store.stage_epoch(run.run_id, row["epoch"], model_bytes(run.model),
                          epoch_weights_bytes(run.model, row["epoch"], {"x_train": _training_images(nets[index])},
                                              run.settings))
        run.phase_hold.reached(HoldPoint.HISTORY)
        store.commit_epoch(run.run_id, row)
        run.history.append(row)
        run.live.epoch_saved(len(run.history))
        hold.release()

    def stopped(run: _PackedRun) -> None:
        """A run that stopped (or diverged) while the others go on: it ends now, as a lone run would."""
        if run.diverged:
            end(run, RunStatus.FAILED, DIVERGED_MESSAGE)
            return
        if not run.history:
            end(run, RunStatus.STOPPED, "Stopped before the first epoch ended: there is no model to keep.")
            return
        scores = _finish_alone(store, run, nets[runs.index(run)], test)
        store.update(run.run_id, **scores)
        end(run, RunStatus.STOPPED, f"Stopped by request during epoch {len(run.history) + 1}; the model after "
                                    f"epoch {len(run.history)} is kept.")

    callback = _pack_live_class()(runs, fit, stopped)
    fit.callbacks.append(callback)
    for run in runs:
        run.live.set_phase(Phase.TRAINING)
    fit.fit()
    for index, run in enumerate(runs):  # stops taken after the last batch
        if run.ended is None and fit.is_stopped(index) and (run.diverged or len(run.history) < run.settings.epochs):
            stopped(run)
    finishing = [(index, run) for index, run in enumerate(runs) if run.ended is None]
    if not finishing:
        return
    reach([run for _, run in finishing], HoldPoint.TESTING)
    corrections = {}
    with KERAS_SETUP_LOCK:
        for index, run in finishing:
            run.live.set_phase(Phase.TESTING)
            lag = batch_normalization_lag(pack.nets[index], len(run.history) * run.settings.steps_per_epoch())
            if lag is not None and lag >= BATCH_NORMALIZATION_LAG_LIMIT:
                run.phase_hold.reached(HoldPoint.NORMALIZING)
                run.live.set_phase(Phase.NORMALIZING)
                corrections[index] = correct_batch_normalization(
                    pack.nets[index], _Outcome(run.history), {"x_train": _training_images(nets[index])},
                    len(run.history) * run.settings.steps_per_epoch(), lag)
        scores = packing.evaluate_pack(pack, *test)  # one test pass for every net
    for index, run in finishing:
        fields = {"test_loss": float(scores[index][0]), "test_accuracy": float(scores[index][1])}
        if index in corrections:
            packing.copy_net(pack, index, run.model)
            save_model_atomic(run.model, store.model_path(run.run_id))
            fields["batch_normalization"] = corrections[index]
        elif run.settings.validation == "test":  # the last epoch measured the test images, as a lone run says
            fields = test_scores(_Outcome(run.history), None, {}, run.settings)
        store.update(run.run_id, **fields)
        end(run, RunStatus.COMPLETED, "")
    keras.backend.clear_session()


def reach(runs: Sequence[_PackedRun], point: HoldPoint) -> None:
    for run in runs:
        run.phase_hold.reached(point)


class _Outcome:
    """The part of fitting.FitOutcome that correct_batch_normalization reads."""

    def __init__(self, history: list[dict]):
        self.history = history


def _training_images(net: packing.NetData) -> np.ndarray:
    """The images a lone run re-estimates BatchNormalization's averages on: the first of its training images."""
    return net.batch(np.arange(min(net.count, BATCH_NORMALIZATION_IMAGES)))[0]


def _finish_alone(store: RunStore, run: _PackedRun, net: packing.NetData, test) -> dict:
    """A stopped run's model (its last finished epoch, with BatchNormalization's averages re-estimated when
    they lag, as a lone run's) saved and scored on the test images; returns run.json's new fields."""
    run.live.set_phase(Phase.TESTING)
    fields = {}
    batches = len(run.history) * run.settings.steps_per_epoch()
    lag = batch_normalization_lag(run.model, batches)
    with KERAS_SETUP_LOCK:
        if lag is not None and lag >= BATCH_NORMALIZATION_LAG_LIMIT:
            run.live.set_phase(Phase.NORMALIZING)
            fields["batch_normalization"] = correct_batch_normalization(
                run.model, _Outcome(run.history), {"x_train": _training_images(net)}, batches, lag)
            save_model_atomic(run.model, store.model_path(run.run_id))
        arrays = {"x_test": test[0], "y_test": test[1]}
        return {**fields, **test_scores(_Outcome(run.history), run.model, arrays, run.settings,
                                        "batch_normalization" in fields)}


@functools.cache
def _pack_live_class():
    """The Keras callback that feeds each run's live state from the pack's logs and asks for its stops."""
    import keras

    class PackLive(keras.callbacks.Callback):
        """Runs before PackedFit's own monitor: a stop asked for before a batch is taken before it."""

        def __init__(self, runs: list[_PackedRun], fit: PackedFit, stopped: Callable):
            super().__init__()
            self.runs, self.fit, self.stopped = runs, fit, stopped

        def _training(self):
            return [(index, run) for index, run in enumerate(self.runs) if run.ended is None]

        def on_epoch_begin(self, epoch, logs=None):
            for index, run in self._training():
                if not self.fit.is_stopped(index):
                    run.phase_hold.reached(HoldPoint.EPOCH_START)
                    run.live.begin_epoch(epoch)

        def on_train_batch_begin(self, batch, logs=None):
            for index, run in self._training():
                if self.fit.is_stopped(index):
                    self.stopped(run)
                    continue
                run.phase_hold.reached(HoldPoint.BATCH)
                try:
                    run.live.check_stop()
                except TrainingDiverged:
                    run.diverged = True
                    self.fit.stop(index)
                except StopRequested:
                    self.fit.stop(index)

        def on_train_batch_end(self, batch, logs=None):
            for index, run in self._training():
                if self.fit.is_stopped(index):
                    self.stopped(run)
                else:
                    run.live.record_batch(batch, self.fit.pack.net_logs(logs, index))

        def on_test_begin(self, logs=None):
            for index, run in self._training():
                if not self.fit.is_stopped(index):
                    run.phase_hold.reached(HoldPoint.VALIDATING)
                    run.live.set_phase(Phase.VALIDATING)

    return PackLive
