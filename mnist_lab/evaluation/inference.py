"""Trained runs' models on single drawings and image files: loading, caching, predicting, scoring.

A single drawing goes through `model(x, training=False)`: `model.predict` builds a dataset and a
step function on every call, tens of milliseconds of fixed cost for one 28x28 image.
Keras is imported only when a model is loaded, so importing this module is free. Every image reaches
a model through `model_input`, and every loaded model lives in the one cache here, which the Draw
page, the command line and the explanations share.

A run that kept its weights after each epoch (RunStore.epoch_weights) can be seen as it was after any of
them: `epoch_model` builds the run's net once per epoch and process and keeps it, read-only, beside the
run's own model. One model per (run, epoch) rather than one model whose weights are swapped: thirty
learners moving their sliders at once never see a model change under them, and none waits on a lock
while another predicts. `prepare_epochs` builds them ahead, in the background, so that moving the slider
only predicts.

Models are read and cloned under training's KERAS_SETUP_LOCK, the one lock every Keras build takes: TensorFlow's
building is not thread-safe, and two sessions asking for the same model build it once.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from mnist_lab import data
from mnist_lab.errors import LabError, shown_value
from mnist_lab.images import preprocessing, uploads
from mnist_lab.runs import USABLE, ModelUnavailable, RunNotFound, RunStore
from mnist_lab.training.fitting import KERAS_SETUP_LOCK

BATCH = 256
MIN_CONFIDENCE = 0.5  # below this, no guess is worth showing as the answer


class ModelError(LabError):
    """A run that cannot predict (unknown, no model, damaged file); the message says what to do."""

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, float], object] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 8
# Models of earlier epochs: the 3-layer net's take about 0.1 MB of weights each, the 5-layer net's 3 MB.
_epoch_cache: OrderedDict[tuple, object] = OrderedDict()
_EPOCH_CACHE_SIZE = 48
_preparing: set[tuple] = set()


def usable_runs(store: RunStore) -> list[dict]:
    """Runs that can predict: completed, or stopped with a saved model; newest first."""
    return [meta for meta in store.list()
            if meta.get("status") in USABLE and store.has_model(meta["id"])]


def model_version(store: RunStore, run_id: str) -> float:
    """The model file's modification time: part of every cache key, so a retrained file is reloaded."""
    try:
        return store.model_path(run_id).stat().st_mtime
    except (OSError, RunNotFound):
        return 0.0


def _check_run(store: RunStore, run_id: str) -> dict:
    try:
        return store.get(run_id)
    except RunNotFound:
        raise ModelError(f"No run with id {shown_value(run_id)} (see `python -m mnist_lab runs`).") from None


def load_model(store: RunStore, run_id: str):
    """A run's model, read from disk. Raises ModelError with a readable message."""
    meta = _check_run(store, run_id)
    try:
        return store.load_model(meta["id"])
    except ModelUnavailable as error:
        raise ModelError(str(error)) from None


def is_cached(store: RunStore, run_id: str) -> bool:
    """Whether `cached_model` would answer without reading the file (the page shows a spinner otherwise)."""
    try:
        key = _cache_key(store, run_id)
    except (RunNotFound, OSError):
        return False
    with _cache_lock:
        return key in _cache


def _cache_key(store: RunStore, run_id: str) -> tuple[str, float]:
    return str(Path(store.model_path(run_id)).resolve()), model_version(store, run_id)


def cached_model(store: RunStore, run_id: str):
    """A run's model, loaded once per process and model file (keyed by path and modification time)."""
    _check_run(store, run_id)
    key = _cache_key(store, run_id)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    with KERAS_SETUP_LOCK:
        with _cache_lock:
            if key in _cache:  # another session loaded it meanwhile
                return _cache[key]
        model = load_model(store, run_id)
        with _cache_lock:
            _cache[key] = model
            while len(_cache) > _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
    return model


def stored_epochs(store: RunStore, run_id: str) -> list[int]:
    """The epochs a run can be seen after (the Draw page's slider); [] for an unknown or damaged run."""
    try:
        return store.epoch_weights(run_id)
    except RunNotFound:
        return []


def _epoch_key(store: RunStore, run_id: str, epoch: int) -> tuple:
    path = store.epoch_weights_path(run_id, epoch)
    try:
        version = path.stat().st_mtime
    except OSError:
        version = 0.0
    return (*_cache_key(store, run_id), int(epoch), version)


def epoch_model(store: RunStore, run_id: str, epoch: int):
    """The run's model with the weights it had after `epoch` (one of `stored_epochs`); the last stored epoch
    is the run's own model. Built once per process and epoch, then shared: never change its weights.
    Raises ModelError with a readable message."""
    epochs = stored_epochs(store, run_id)
    if epochs and epoch == epochs[-1]:
        return cached_model(store, run_id)
    if epoch not in epochs:
        raise ModelError(f"Run {shown_value(run_id)} has kept no weights for epoch {shown_value(epoch)}.")
    key = _epoch_key(store, run_id, epoch)
    with _cache_lock:
        if key in _epoch_cache:
            _epoch_cache.move_to_end(key)
            return _epoch_cache[key]
    template = cached_model(store, run_id)
    with KERAS_SETUP_LOCK:
        with _cache_lock:
            if key in _epoch_cache:
                return _epoch_cache[key]
        import keras

        try:
            model = keras.models.clone_model(template)
            model.load_weights(store.epoch_weights_path(run_id, epoch))
        except Exception as error:  # a damaged or foreign file can fail in many ways inside Keras and h5py
            logger.warning("Epoch %s of run %s cannot be loaded: %r", epoch, run_id, error)
            raise ModelError(f"The weights kept after epoch {epoch} of run {run_id} are damaged and cannot be "
                             f"loaded ({type(error).__name__}).") from None
        with _cache_lock:
            _epoch_cache[key] = model
            while len(_epoch_cache) > _EPOCH_CACHE_SIZE:
                _epoch_cache.popitem(last=False)
    return model


def epoch_is_ready(store: RunStore, run_id: str, epoch: int) -> bool:
    """Whether `epoch_model` would answer without building (the page shows a spinner otherwise)."""
    epochs = stored_epochs(store, run_id)
    if epochs and epoch == epochs[-1]:
        return is_cached(store, run_id)
    try:
        key = _epoch_key(store, run_id, epoch)
    except (RunNotFound, OSError):
        return False
    with _cache_lock:
        return key in _epoch_cache


def prepare_epochs(store: RunStore, run_id: str) -> None:
    """Build every stored epoch's model of a run in a background thread, once per process, so that a
    learner's first move of the slider does not wait for one. Failures are left for `epoch_model` to report."""
    epochs = stored_epochs(store, run_id)
    if len(epochs) < 2:
        return
    marker = (*_cache_key(store, run_id), tuple(epochs))
    with _cache_lock:
        if marker in _preparing:
            return
        _preparing.add(marker)

    def build_all():
        for epoch in reversed(epochs[:-1]):  # from the end: the slider starts there
            try:
                epoch_model(store, run_id, epoch)
            except (LabError, OSError):
                pass

    threading.Thread(target=build_all, name=f"epochs-{run_id}", daemon=True).start()


def model_input(images: np.ndarray) -> np.ndarray:
    """One 28x28 image or a batch, as MNIST's uint8 or as ink in [0, 1], to the models' float32
    (n, 28, 28, 1) in [0, 1]: `data.to_model_input` for uint8, the same layout for floats."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return data.to_model_input(images)
    return images.astype("float32").reshape(-1, 28, 28, 1)


def predict(model, image: np.ndarray) -> np.ndarray:
    """The ten probabilities for one 28x28 image."""
    return np.asarray(model(model_input(image), training=False), dtype="float64")[0]


def predict_batch(model, images: np.ndarray) -> np.ndarray:
    """(n, 10) probabilities for n 28x28 images (uint8 or [0, 1] floats), a few hundred at a time."""
    images = model_input(images)
    if len(images) == 0:
        return np.zeros((0, 10))
    return np.concatenate([np.asarray(model(images[start:start + BATCH], training=False), dtype="float64")
                           for start in range(0, len(images), BATCH)])


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of images whose top guess is their label; None for no images."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return None
    return float(np.mean(predict_batch(model, images).argmax(axis=1) == labels))


def describe_guess(probabilities: np.ndarray) -> str:
    """'8, 99 % sure', or 'unsure between 3 and 8' when no digit gets MIN_CONFIDENCE: the words for one
    epoch's guess on the Draw page's epoch slider."""
    order = np.argsort(probabilities)[::-1]
    top = int(order[0])
    if probabilities[top] >= MIN_CONFIDENCE:
        return f"{top}, {100 * probabilities[top]:.0f} % sure"
    return f"unsure between {top} and {int(order[1])}"


def not_a_digit(result: preprocessing.Result, probabilities: list[np.ndarray],
                min_confidence: float = MIN_CONFIDENCE) -> str:
    """Why the ink does not look like a digit, for the learner; "" when it may be one.

    A stray dot or a scribble still gets ten probabilities that add up to 1, often one of them
    high: the ink's size and shape (`Result.doubt`) and the models' confidence say more.
    """
    if result.doubt:
        return result.doubt
    if probabilities:
        surest = max(float(np.max(values)) for values in probabilities)
        if surest <= min_confidence:
            return (f"No model is more than {min_confidence:.0%} sure (the surest is {surest:.0%} sure): "
                    "write one digit, clearly, in the middle of the box.")
    return ""


def predict_files(store: RunStore, run_id: str, paths) -> list[dict]:
    """Predict the digit in each image file with a run's model, through the Draw page's preprocessing.

    Returns one dict per path: {"image", "digit", "probabilities"} or {"image", "error"}. Raises
    ModelError for an unknown run or one without a usable model.
    """
    model = cached_model(store, run_id)
    results = []
    for path in paths:
        path = str(path)
        try:
            prepared = uploads.preprocess_upload(path)
        except uploads.ImageError as error:
            results.append({"image": path, "error": str(error)})
            continue
        if prepared.empty:
            results.append({"image": path, "error": prepared.message})
            continue
        probabilities = predict(model, prepared.image)
        results.append({"image": path, "digit": int(probabilities.argmax()),
                        "probabilities": [round(float(value), 6) for value in probabilities]})
    return results
