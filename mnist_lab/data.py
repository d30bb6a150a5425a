"""Loading MNIST: from the file named by MNIST_LAB_DATA, else Keras' own download.

The arrays are loaded once per process and shared read-only: the app's pages, the training
threads and the command line all call `load_mnist()`.

A DataError's message is for a learner, who can do nothing about the server's files: it says what
happened and to ask the teacher. Its `detail` names the variable, the path and what is wrong, for
the command line and the server's log.
"""

from __future__ import annotations

import functools
import os
import threading
import zipfile
from dataclasses import dataclass

import numpy as np

from mnist_lab.errors import LabError

DATA_VARIABLE = "MNIST_LAB_DATA"
EXPECTED = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}


MISSING = "This server's MNIST file is missing: ask your teacher to check the lab's set-up."
DAMAGED = "The MNIST file on this server is damaged: ask your teacher to replace it."
NO_DOWNLOAD = ("This server could not download MNIST: ask your teacher to connect it to the internet "
               "or to give the lab a copy of MNIST.")


class DataError(LabError):
    """MNIST could not be loaded. The message is the learner's; `detail` says what to fix, for whoever
    runs the server (it names MNIST_LAB_DATA and the file)."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # uint8 (n, 28, 28)
    y_train: np.ndarray  # uint8 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def class_counts(self) -> dict[str, list[int]]:
        return {
            "train": np.bincount(self.y_train, minlength=10).tolist(),
            "test": np.bincount(self.y_test, minlength=10).tolist(),
        }


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) images to float32 (n, 28, 28, 1) in [0, 1], as the notebook prepares them."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    return (images.astype("float32") / 255.0)[..., None]


def load_npz(path: str) -> Mnist:
    """Read and check an npz with x_train, y_train, x_test, y_test (layout of Keras' mnist.npz)."""
    if not os.path.isfile(path):
        raise DataError(MISSING, (
            f"{DATA_VARIABLE} is set to {path!r}, but there is no file there. Point {DATA_VARIABLE} "
            "at an mnist.npz, or unset it to use Keras' download."))
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in EXPECTED if key not in data.files]
            arrays = {key: data[key] for key in EXPECTED if key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(DAMAGED, (
            f"The file in {DATA_VARIABLE} ({path}) is not a readable npz file ({error}).")) from None
    if missing:
        raise DataError(DAMAGED, (
            f"The file in {DATA_VARIABLE} ({path}) has no array {missing[0]!r}: it needs "
            f"{', '.join(EXPECTED)}."))
    for key, shape in EXPECTED.items():
        array = arrays[key]
        if array.shape[1:] != shape[1:] or array.shape[0] == 0 or array.dtype != np.uint8:
            raise DataError(DAMAGED, (
                f"The file in {DATA_VARIABLE} ({path}) has {key} of shape {array.shape} and type "
                f"{array.dtype}; expected uint8 of shape (n,{','.join(map(str, shape[1:]))})."))
    for split in ("train", "test"):
        if arrays[f"x_{split}"].shape[0] != arrays[f"y_{split}"].shape[0]:
            raise DataError(DAMAGED, (
                f"The file in {DATA_VARIABLE} ({path}) has {arrays[f'x_{split}'].shape[0]} {split} images "
                f"but {arrays[f'y_{split}'].shape[0]} labels."))
        if arrays[f"y_{split}"].max() > 9:
            raise DataError(DAMAGED, f"The file in {DATA_VARIABLE} ({path}) has {split} labels outside 0..9.")
    for array in arrays.values():
        array.setflags(write=False)
    return Mnist(source=path, **arrays)


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> Mnist:
    if path:
        return load_npz(path)
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # the download can fail in many ways; all mean the same to a user
        raise DataError(NO_DOWNLOAD, (
            f"Could not download MNIST through Keras ({error}). Set {DATA_VARIABLE} to the path of an "
            "mnist.npz file.")) from None
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for array in arrays.values():
        array.setflags(write=False)
    return Mnist(source="keras.datasets.mnist", **arrays)


_LOADING = threading.Lock()


def load_mnist() -> Mnist:
    """MNIST, read once per process from MNIST_LAB_DATA (or Keras' download) and shared read-only.

    The cache alone lets every thread that misses it read the file: a class opening the Train page on a
    fresh server made thirty script threads unzip it at once (55 MB each), and the server's event loop,
    starved of the interpreter lock, left its health check unanswered for seconds. One reads; the
    others wait on the lock, which costs them nothing."""
    with _LOADING:
        return _load(os.environ.get(DATA_VARIABLE) or None)


def sample_digits(mnist: Mnist, per_class: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A few training images of each digit, for a gallery: (images, labels), digits in order."""
    rng = np.random.default_rng(seed)
    indices = np.concatenate([
        rng.choice(np.flatnonzero(mnist.y_train == digit), size=per_class, replace=False)
        for digit in range(10)
    ])
    return mnist.x_train[indices], mnist.y_train[indices]
