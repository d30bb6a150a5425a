"""What several benchmarks share: the images their runs train on (MNIST, else random ones), shared with the
worker processes through a temporary copy, and how a result is printed and written as JSON. Imported with
the repository's root on sys.path, as each benchmark puts it there first."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from mnist_lab import data


def load_images(train_size: int, validation_size: int) -> tuple[data.Mnist, str]:
    """MNIST, or random images of its shape where it is not installed (the timings hold; the accuracies not)."""
    try:
        return data.load_mnist(), "MNIST"
    except data.DataError:
        import numpy as np

        rng = np.random.default_rng(0)
        count = train_size + validation_size
        mnist = data.Mnist(rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
                           rng.integers(0, 10, count, dtype=np.uint8),
                           rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8),
                           rng.integers(0, 10, 1000, dtype=np.uint8), "random")
        return mnist, "random images"


@contextlib.contextmanager
def images_for_workers(train_size: int):
    """(mnist, source, validation size, a temporary folder): the images load_images gives, saved in the
    folder with MNIST_LAB_DATA pointing at them, so that worker processes read the same images."""
    import numpy as np

    validation_size = max(128, train_size // 5)
    mnist, source = load_images(train_size, validation_size)
    with tempfile.TemporaryDirectory(prefix="mnist-lab-benchmark-") as folder:
        data_file = Path(folder) / "mnist.npz"
        np.savez(data_file, x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test, y_test=mnist.y_test)
        os.environ[data.DATA_VARIABLE] = str(data_file)  # the workers read the same images
        yield mnist, source, validation_size, Path(folder)


def report(lines: list[str], result: dict, json_path=None, indent: int = 1) -> None:
    """Print a benchmark's summary lines and, when a path is given, write its result there as JSON."""
    print("\n".join(lines))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=indent))
