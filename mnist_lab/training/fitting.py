"""The fit loop of one run, wherever it trains (a worker process, a Ray task, a test): the data split, building
the model under the set-up lock, fitting with the live-metrics callback, saving each finished epoch, and
the test scores."""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_lab import data, system
from mnist_lab.architecture.building import build_model
from mnist_lab.errors import LabError
from mnist_lab.evaluation import batch_normalization
from mnist_lab.evaluation.batch_normalization import BATCH_NORMALIZATION_LAG_LIMIT
from mnist_lab.evaluation.evaluation import PREDICT_BATCH
from mnist_lab.runs import RunNotFound, RunStatus, RunStore, now_iso, write_atomic
from mnist_lab.training.phases import NO_HOLD, HoldPoint, Phase, PhaseHold
from mnist_lab.training.progress import (DIVERGED_MESSAGE, LiveState, StopRequested, TrainingDiverged,
                                         live_metrics_class)
from mnist_lab.training.settings import OPTIMIZERS, TrainSettings, learning_rate_schedule

logger = logging.getLogger(__name__)


def split_indices(train_available: int, settings: TrainSettings) -> tuple[np.ndarray, np.ndarray | None]:
    """Which training images train and which validate (None: the test images validate); fixed by the seed."""
    order = np.random.default_rng(settings.seed).permutation(train_available)
    train = order[:settings.train_size]
    if settings.validation == "test":
        return train, None
    return train, order[settings.train_size:settings.train_size + settings.validation_size]


def prepare_arrays(mnist: data.Mnist, settings: TrainSettings) -> dict[str, np.ndarray]:
    """Float model inputs for one run; made when the run starts, never for a queued run."""
    train, validation = split_indices(len(mnist.x_train), settings)
    arrays = {
        "x_train": data.to_model_input(mnist.x_train[train]),
        "y_train": mnist.y_train[train].astype("int32"),
        "x_test": data.to_model_input(mnist.x_test),
        "y_test": mnist.y_test.astype("int32"),
    }
    if validation is None:
        arrays["x_validation"], arrays["y_validation"] = arrays["x_test"], arrays["y_test"]
    else:
        arrays["x_validation"] = data.to_model_input(mnist.x_train[validation])
        arrays["y_validation"] = mnist.y_train[validation].astype("int32")
    return arrays



# Building a model and tracing its functions is not thread-safe with TensorFlow (keras-team/keras#20382,
# tensorflow/tensorflow#78338): a run holds this lock from building its model to the end of its first
# epoch (by then every step function is traced), the speed calibration holds it throughout, and the
# final test evaluation takes it again. Steady training, the bulk of the time, runs in parallel.
KERAS_SETUP_LOCK = threading.RLock()


class SetupHold:
    """The set-up lock as one run holds it: taken before building, given back after the first epoch."""

    def __init__(self, live: LiveState):
        self.live = live
        self.held = False

    def acquire(self):
        """Wait for the lock; a stop asked for meanwhile is honoured (StopRequested)."""
        while not KERAS_SETUP_LOCK.acquire(timeout=0.2):
            self.live.check_stop(count_batch=False)
        self.held = True

    def release(self):
        if self.held:
            self.held = False
            KERAS_SETUP_LOCK.release()


def build_for_training(layers: list, settings: TrainSettings, name: str = "mnist_cnn"):
    """(model to save, model to fit): the same weights; the second adds augmentation when asked for.

    Seeding and building happen under the set-up lock: Keras' global seed decides initial weights and
    dropout, and building in two threads at once is unsafe.
    """
    import keras

    with KERAS_SETUP_LOCK:
        keras.utils.set_random_seed(settings.seed)
        model = build_model(layers, name)
        fit_model = model
        if settings.augment:
            from mnist_lab.images import augmentation

            fit_model = augmentation.with_augmentation(model, seed=settings.seed)
        fit_model.compile(optimizer=OPTIMIZERS[settings.optimizer].build(learning_rate_schedule(settings)),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, fit_model


def model_bytes(model) -> bytes:
    """The model as a .keras file's bytes (Keras saves only to a path)."""
    with tempfile.TemporaryDirectory(prefix=".saving-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def weights_bytes(model) -> bytes:
    """The model's weights as a Keras weights file's bytes (no optimizer state)."""
    with tempfile.TemporaryDirectory(prefix=".saving-") as folder:
        path = Path(folder) / "model.weights.h5"
        model.save_weights(path)
        return path.read_bytes()


def save_model_atomic(model, path: Path) -> None:
    """Save a .keras file so that a reader (or a crash) never sees half of it."""
    write_atomic(path, model_bytes(model))


def readable_error(error: BaseException) -> str:
    """A failure as a learner can act on it; details go to the server log."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    name = type(error).__name__
    if isinstance(error, MemoryError) or "ResourceExhausted" in name or "out of memory" in str(error).lower():
        return ("Out of memory while training: use a smaller batch size, fewer training images or a smaller "
                f"net, or wait until other runs finish. ({name}: {text})")
    if isinstance(error, LabError):
        if error.detail:
            logger.error("%s", error.detail)
        return str(error)
    return f"Training failed: {name}: {text}"


def device_details() -> dict:
    """run.json's device fields for this process: device, backend, versions."""
    info = system.device_info()
    return {
        "device": info.description,
        "backend": info.backend,
        "versions": {"keras": info.keras_version, "backend": f"{info.backend} {info.framework_version}".strip(),
                     "python": platform.python_version()},
    }



@dataclass
class FitOutcome:
    status: str  # completed, stopped or failed
    message: str
    history: list[dict]
    epoch_weights: list | None  # the weights saved with the last finished epoch


def fit_epochs(store: RunStore, run_id: str, live: LiveState, model, fit_model, arrays: dict,
               settings: TrainSettings, callback_class=None, setup_hold: SetupHold | None = None,
               phase_hold: PhaseHold = NO_HOLD) -> FitOutcome:
    """The app's training path: fit with the live-metrics callback; after each epoch save the model
    (atomically) and append the epoch to the history. A stop or a NaN loss ends it cleanly.
    `setup_hold` is given back once the first epoch (and so all tracing) is done; `phase_hold` is told
    each point reached (a test's hold)."""
    history: list[dict] = []
    saved: list = [None]

    def on_epoch(row):
        phase_hold.reached(HoldPoint.SAVING)
        store.stage_epoch(run_id, row["epoch"], model_bytes(model),
                          epoch_weights_bytes(model, row["epoch"], arrays, settings))
        phase_hold.reached(HoldPoint.HISTORY)
        store.commit_epoch(run_id, row)
        history.append(row)
        saved[0] = model.get_weights()
        live.epoch_saved(len(history))
        if setup_hold is not None:
            setup_hold.release()

    callback = (callback_class or live_metrics_class())(live, on_epoch, phase_hold)
    live.set_phase(Phase.TRAINING)
    try:
        fit_model.fit(arrays["x_train"], arrays["y_train"], batch_size=settings.batch_size, epochs=settings.epochs,
                      validation_data=(arrays["x_validation"], arrays["y_validation"]), callbacks=[callback],
                      verbose=0, shuffle=True)
        return FitOutcome(RunStatus.COMPLETED, "", history, saved[0])
    except StopRequested:
        if history:
            model.set_weights(saved[0])  # back to the last finished epoch: the saved model
            message = (f"Stopped by request during epoch {len(history) + 1}; the model after epoch "
                       f"{len(history)} is kept.")
        else:
            message = "Stopped before the first epoch ended: there is no model to keep."
        return FitOutcome(RunStatus.STOPPED, message, history, saved[0])
    except TrainingDiverged:
        return FitOutcome(RunStatus.FAILED, DIVERGED_MESSAGE, history, saved[0])


def epoch_weights_bytes(model, epoch: int, arrays: dict, settings: TrainSettings) -> bytes:
    """The weights after `epoch`, for the Draw page's epoch slider, as the learner would have got them
    had the run ended there: when BatchNormalization's running averages still lag (the test the run's end
    applies), the kept copy has them re-estimated on the same training images as at the end, so the last
    kept epoch is the saved model and an early one is not judged by averages that had not caught up.
    The model being trained keeps its own averages: they are put back before the next batch."""
    import keras

    lag = batch_normalization_lag(model, epoch * settings.steps_per_epoch())
    if lag is None or lag < BATCH_NORMALIZATION_LAG_LIMIT:
        return weights_bytes(model)
    averages = [variable for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
                for variable in (layer.moving_mean, layer.moving_variance)]
    kept = [keras.ops.convert_to_numpy(variable) for variable in averages]
    reestimate_batch_normalization(model, arrays["x_train"][:BATCH_NORMALIZATION_IMAGES])
    try:
        return weights_bytes(model)
    finally:
        for variable, value in zip(averages, kept):
            variable.assign(value)


def test_scores(outcome: FitOutcome, fit_model, arrays: dict, settings: TrainSettings,
                corrected: bool = False) -> dict:
    """test_loss and test_accuracy of the kept model on the test images, in large batches (scoring trains
    nothing, so the batch size changes only the speed).

    When the test images were the validation set, the last epoch already measured them, unless the
    BatchNormalization statistics were re-estimated since (`corrected`).
    """
    if settings.validation == "test" and not corrected:
        last = outcome.history[-1]
        return {"test_loss": last["val_loss"], "test_accuracy": last["val_accuracy"]}
    loss, accuracy = fit_model.evaluate(arrays["x_test"], arrays["y_test"], batch_size=PREDICT_BATCH, verbose=0)
    return {"test_loss": float(loss), "test_accuracy": float(accuracy)}



# The images BatchNormalization's averages are re-estimated on, once training ends, when they lag by
# BATCH_NORMALIZATION_LAG_LIMIT or more (evaluation.batch_normalization).
BATCH_NORMALIZATION_IMAGES = 2048


def batch_normalization_lag(model, batches: int) -> float | None:
    """The share of the way the running averages still have to go after `batches` updates (None: no
    BatchNormalization layer)."""
    import keras

    momenta = [layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    return max(batch_normalization.lag(batches, momentum) for momentum in momenta) if momenta else None


def reestimate_batch_normalization(model, images: np.ndarray, batch_size: int = 256) -> None:
    """Set each BatchNormalization layer's running mean and variance to the statistics of its inputs over
    `images`, layer after layer, with the layers before it in inference mode. No weight is trained."""
    import keras

    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        probe = keras.Model(model.inputs[0], layer.input)
        axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
        total = squares = None
        count = 0
        for start in range(0, len(images), batch_size):
            values = keras.ops.convert_to_numpy(probe(images[start:start + batch_size], training=False))
            values = np.moveaxis(values.astype("float64"), axis, -1).reshape(-1, values.shape[axis])
            total = values.sum(axis=0) if total is None else total + values.sum(axis=0)
            squares = (values ** 2).sum(axis=0) if squares is None else squares + (values ** 2).sum(axis=0)
            count += len(values)
        mean = total / count
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(np.maximum(squares / count - mean ** 2, 0.0).astype("float32"))


def correct_batch_normalization(model, outcome: FitOutcome, arrays: dict, batches: int, lag: float) -> dict:
    """After a short run, re-estimate BatchNormalization's statistics; returns run.json's record of it.
    The accuracy before is the last epoch's validation score, measured with the lagging statistics (the
    curve the learner saw), so correcting costs no extra pass over the test images."""
    images = arrays["x_train"][:BATCH_NORMALIZATION_IMAGES]
    reestimate_batch_normalization(model, images)
    last = outcome.history[-1]
    return {"batches": batches, "caught_up": round(1 - lag, 4), "images": len(images),
            "validation_accuracy_before": last["val_accuracy"], "validation_loss_before": last["val_loss"]}


def train_run(store: RunStore, run_id: str, architecture: dict, settings: TrainSettings, live: LiveState,
              load_data=data.load_mnist, publisher=None) -> tuple[str, str]:
    """Train one stored run to its end, keeping the store up to date; returns (status, message).

    Every executor calls this in the process that trains. A stop, a NaN loss or an error ends the run
    cleanly with its finished epochs; `live.shutting_down` (the server is going away) makes it interrupted.
    `publisher` is closed when the run has ended, after the final status is in the store.
    """
    if live.stop_event.is_set() or store.stop_requested(run_id):
        message = "Stopped before it started."
        store.update(run_id, status=RunStatus.STOPPED, finished=now_iso(), message=message)
        live.finish(RunStatus.STOPPED, message)
        return RunStatus.STOPPED, message
    live.start()
    hold = SetupHold(live)
    phase_hold = NO_HOLD
    status, message = RunStatus.FAILED, ""
    try:
        phase_hold = PhaseHold.from_environment(store.path(run_id), live)  # a wrong value fails the run
        store.update(run_id, status=RunStatus.RUNNING, started=now_iso(), pid=os.getpid(), **device_details())
        phase_hold.reached(HoldPoint.STARTING)
        hold.acquire()
        phase_hold.reached(HoldPoint.LOADING_DATA)
        arrays = prepare_arrays(load_data(), settings)
        phase_hold.reached(HoldPoint.BUILDING)
        model, fit_model = build_for_training(architecture["layers"], settings, "mnist_cnn")
        outcome = fit_epochs(store, run_id, live, model, fit_model, arrays, settings, setup_hold=hold,
                             phase_hold=phase_hold)
        status, message = outcome.status, outcome.message
        if outcome.history and status != RunStatus.FAILED:
            phase_hold.reached(HoldPoint.TESTING)
            live.set_phase(Phase.TESTING)
            with KERAS_SETUP_LOCK:
                batches = len(outcome.history) * settings.steps_per_epoch()
                lag = batch_normalization_lag(model, batches)
                correction = {}
                if lag is not None and lag >= BATCH_NORMALIZATION_LAG_LIMIT:
                    phase_hold.reached(HoldPoint.NORMALIZING)
                    live.set_phase(Phase.NORMALIZING)
                    correction = {"batch_normalization": correct_batch_normalization(model, outcome, arrays,
                                                                                     batches, lag)}
                    save_model_atomic(model, store.model_path(run_id))
                store.update(run_id, **test_scores(outcome, fit_model, arrays, settings, bool(correction)),
                             **correction)
    except StopRequested:
        status, message = RunStatus.STOPPED, "Stopped before it started training."
    except Exception as error:
        logger.exception("Run %s failed", run_id)
        status, message = RunStatus.FAILED, readable_error(error)
    finally:
        hold.release()
        try:
            store.settle_epochs(run_id)  # an epoch a failure cut short of its commit
        except (OSError, RunNotFound):
            logger.exception("Could not settle the files of run %s", run_id)
        phase_hold.reached(HoldPoint.FINISHING)
        if live.shutting_down:
            status = RunStatus.INTERRUPTED
            message = (f"The server shut down during this run; {len(store.history(run_id))} finished "
                       "epoch(s) kept.")
        try:
            store.update(run_id, status=status, message=message, finished=now_iso())
        except (OSError, RunNotFound):  # the manager shows the end, and writes it once it can
            logger.exception("Could not record the end of run %s", run_id)
        finally:
            live.finish(status, message)
            if publisher is not None:
                publisher.close()
    return status, message
