"""Loading MNIST: from the file named by MNIST_LAB_DATA, else Keras' own download.

The arrays are loaded once per process and shared read-only: the app's pages, the training
threads and the command line all call `load_mnist()`. What only shows the data (`overview()`) reads
the labels and a few images instead.

A DataError's message is for a learner, who can do nothing about the server's files: it says what
happened and to ask the teacher. Its `detail` names the variable, the path and what is wrong, for
the command line and the server's log.
"""

from __future__ import annotations

import functools
import os
import threading
import zipfile
import zlib
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
        return class_counts(self.y_train, self.y_test)


def class_counts(y_train: np.ndarray, y_test: np.ndarray) -> dict[str, list[int]]:
    """Images per digit in each split: {"train": [10 counts], "test": [10 counts]}."""
    return {"train": np.bincount(y_train, minlength=10).tolist(), "test": np.bincount(y_test, minlength=10).tolist()}


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) images to float32 (n, 28, 28, 1) in [0, 1], as the notebook prepares them."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    return (images.astype("float32") / 255.0)[..., None]


def _missing(path: str) -> DataError:
    return DataError(MISSING, (
        f"{DATA_VARIABLE} is set to {path!r}, but there is no file there. Point {DATA_VARIABLE} "
        "at an mnist.npz, or unset it to use Keras' download."))


def _unreadable(path: str, error: BaseException) -> DataError:
    return DataError(DAMAGED, f"The file in {DATA_VARIABLE} ({path}) is not a readable npz file ({error}).")


_READ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error)


def _check_layout(path: str, layout: dict[str, tuple[tuple, np.dtype]]) -> None:
    """The arrays' names, shapes and types, as Keras' mnist.npz has them ({key: (shape, dtype)})."""
    missing = [key for key in EXPECTED if key not in layout]
    if missing:
        raise DataError(DAMAGED, (
            f"The file in {DATA_VARIABLE} ({path}) has no array {missing[0]!r}: it needs "
            f"{', '.join(EXPECTED)}."))
    for key, expected in EXPECTED.items():
        shape, dtype = layout[key]
        if tuple(shape[1:]) != expected[1:] or len(shape) != len(expected) or shape[0] == 0 or dtype != np.uint8:
            raise DataError(DAMAGED, (
                f"The file in {DATA_VARIABLE} ({path}) has {key} of shape {tuple(shape)} and type "
                f"{dtype}; expected uint8 of shape (n,{','.join(map(str, expected[1:]))})."))
    for split in ("train", "test"):
        images, labels = layout[f"x_{split}"][0][0], layout[f"y_{split}"][0][0]
        if images != labels:
            raise DataError(DAMAGED, (
                f"The file in {DATA_VARIABLE} ({path}) has {images} {split} images but {labels} labels."))


def _check_labels(path: str, labels: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        if labels[f"y_{split}"].max() > 9:
            raise DataError(DAMAGED, f"The file in {DATA_VARIABLE} ({path}) has {split} labels outside 0..9.")


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise _missing(path)
    if not zipfile.is_zipfile(path):  # else numpy would take it for a pickle and say so
        raise _unreadable(path, "not a zip archive")


def load_npz(path: str) -> Mnist:
    """Read and check an npz with x_train, y_train, x_test, y_test (layout of Keras' mnist.npz)."""
    _check_file(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in EXPECTED if key in stored.files}
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from None
    _check_layout(path, {key: (array.shape, array.dtype) for key, array in arrays.items()})
    _check_labels(path, arrays)
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


@dataclass(frozen=True)
class Overview:
    """The data at a glance (Home, the augmentation preview): the first training images of each digit, and
    the images per digit."""

    images: np.ndarray  # uint8 (10 * per_class, 28, 28), digits in order
    labels: np.ndarray
    counts: dict[str, list[int]]  # as class_counts()


def _first_of_each(labels: np.ndarray, per_class: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(labels == digit)[:per_class] for digit in range(10)])


def overview(per_class: int) -> Overview:
    """The data at a glance. From a file it reads the labels and only the first few hundred training
    images, not all 47 MB of them: a fresh server's first page waits on this, and a full read is most of
    that page's own time. The file gets the same checks as a full load."""
    path = os.environ.get(DATA_VARIABLE) or None
    if path is None:
        mnist = load_mnist()
        chosen = _first_of_each(mnist.y_train, per_class)
        return Overview(mnist.x_train[chosen], mnist.y_train[chosen], mnist.class_counts())
    _check_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            layout = {}
            for key in EXPECTED.keys() & members.keys():
                with archive.open(members[key]) as handle:
                    layout[key] = _npy_header(handle)
            _check_layout(path, layout)
            labels = {key: _npy_rows(archive, members[key], layout[key][0][0]) for key in ("y_train", "y_test")}
            _check_labels(path, labels)
            chosen = _first_of_each(labels["y_train"], per_class)
            images = _npy_rows(archive, members["x_train"], int(chosen.max(initial=-1)) + 1)[chosen]
    except DataError:
        raise
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from None
    return Overview(images, labels["y_train"][chosen], class_counts(labels["y_train"], labels["y_test"]))


def _npy_header(handle) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from the header of an .npy stream, which it leaves at the first byte of data."""
    version = np.lib.format.read_magic(handle)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ValueError(f"an .npy member of format version {version}")
    shape, fortran_order, dtype = read_header(handle)
    if fortran_order and len(shape) > 1:
        raise ValueError("images stored in column-major order")
    return shape, dtype


def _npy_rows(archive: zipfile.ZipFile, member: str, count: int) -> np.ndarray:
    """The first `count` rows of a uint8 .npy member, unzipping no more of it than they take."""
    with archive.open(member) as handle:
        shape, dtype = _npy_header(handle)
        row = int(np.prod(shape[1:], dtype=np.int64))
        data = handle.read(count * row)
    if len(data) != count * row:
        raise EOFError(f"{member} ends after {len(data) // max(row, 1)} of its {count} rows")
    return np.frombuffer(data, dtype).reshape((count, *shape[1:]))
