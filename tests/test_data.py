"""The MNIST loader: a good file loads read-only; a missing or malformed one gives a DataError whose
message a learner can read (no variable, no path) and whose detail names MNIST_LAB_DATA, the file and
what is wrong."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from mnist_lab import data
from mnist_lab.data import DATA_VARIABLE, DataError, load_mnist, load_npz, to_model_input


@pytest.fixture
def fresh_cache():
    """load_mnist caches per path; each test starts without that cache."""
    data._load.cache_clear()
    yield
    data._load.cache_clear()


def arrays_of(path) -> dict:
    with np.load(path) as stored:
        return {key: stored[key] for key in stored.files}


def write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def load_fails(path, learner_message: str = data.DAMAGED) -> str:
    """Load `path`, fully and as Home's overview, expecting from each a DataError with that learner
    message and the same detail; return the detail."""
    details = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATA_VARIABLE, str(path))
        for read in (lambda: load_npz(str(path)), lambda: data.overview(per_class=3)):
            with pytest.raises(DataError) as caught:
                read()
            assert str(caught.value) == learner_message
            assert DATA_VARIABLE not in str(caught.value) and str(path) not in str(caught.value)
            assert DATA_VARIABLE in caught.value.detail and str(path) in caught.value.detail
            details.append(caught.value.detail)
    assert details[0] == details[1]
    return details[0]


def test_good_file_loads_through_the_variable(synthetic_npz, monkeypatch, fresh_cache):
    monkeypatch.setenv(DATA_VARIABLE, str(synthetic_npz))
    mnist = load_mnist()
    stored = arrays_of(synthetic_npz)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(mnist, key), stored[key])
    assert mnist.source == str(synthetic_npz)
    assert load_mnist() is mnist  # read once per process
    with pytest.raises(ValueError):
        mnist.x_train[0, 0, 0] = 1  # shared read-only
    counts = mnist.class_counts()
    assert counts["train"] == np.bincount(stored["y_train"], minlength=10).tolist()
    assert sum(counts["test"]) == len(stored["y_test"])


def test_missing_file(tmp_path):
    assert "is set to" in load_fails(tmp_path / "nowhere.npz", data.MISSING)


def test_missing_file_through_load_mnist(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv(DATA_VARIABLE, str(tmp_path / "gone.npz"))
    with pytest.raises(DataError) as caught:
        load_mnist()
    assert str(caught.value) == data.MISSING and DATA_VARIABLE in caught.value.detail


def test_failed_download_asks_the_teacher(monkeypatch, fresh_cache):
    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    keras = pytest.importorskip("keras")

    def offline():
        raise OSError("no route to host")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError) as caught:
        load_mnist()
    assert str(caught.value) == data.NO_DOWNLOAD and DATA_VARIABLE not in str(caught.value)
    assert "no route to host" in caught.value.detail and DATA_VARIABLE in caught.value.detail


def test_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("this is not an npz file")
    assert "not a readable npz file" in load_fails(path)


def test_truncated_zip(synthetic_npz, tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(synthetic_npz.read_bytes()[:500])
    assert "not a readable npz file" in load_fails(path)


def test_missing_key_is_named_cleanly(synthetic_npz, tmp_path):
    arrays = arrays_of(synthetic_npz)
    del arrays["y_test"]
    detail = load_fails(write(tmp_path / "no_labels.npz", **arrays))
    assert "has no array 'y_test': it needs x_train, y_train, x_test, y_test" in detail


@pytest.mark.parametrize("key, array, expected", [
    ("x_train", np.zeros((600, 32, 32), np.uint8), "x_train of shape (600, 32, 32)"),
    ("x_test", np.zeros((200, 28, 28), np.float32), "type float32"),
    ("y_train", np.zeros((600, 1), np.uint8), "y_train of shape (600, 1)"),
    ("x_train", np.zeros((0, 28, 28), np.uint8), "x_train of shape (0, 28, 28)"),
])
def test_wrong_shape_or_type(synthetic_npz, tmp_path, key, array, expected):
    arrays = {**arrays_of(synthetic_npz), key: array}
    assert expected in load_fails(write(tmp_path / "bad.npz", **arrays))


def test_images_and_labels_of_different_lengths(synthetic_npz, tmp_path):
    arrays = arrays_of(synthetic_npz)
    arrays["y_test"] = arrays["y_test"][:-1]
    assert "200 test images but 199 labels" in load_fails(write(tmp_path / "short.npz", **arrays))


def test_labels_outside_zero_to_nine(synthetic_npz, tmp_path):
    arrays = arrays_of(synthetic_npz)
    arrays["y_train"] = arrays["y_train"].copy()
    arrays["y_train"][3] = 10
    assert "train labels outside 0..9" in load_fails(write(tmp_path / "labels.npz", **arrays))


def test_model_input_is_scaled_channels_last():
    images = np.array([[[0, 255], [51, 102]]], np.uint8)
    prepared = to_model_input(images)
    assert prepared.shape == (1, 2, 2, 1) and prepared.dtype == np.float32
    np.testing.assert_allclose(prepared[0, :, :, 0], [[0, 1], [0.2, 0.4]])
    assert to_model_input(images[0]).shape == (1, 2, 2, 1)  # one image alone gets a batch axis


def test_threads_that_ask_for_mnist_at_once_read_the_file_once(synthetic_npz, monkeypatch, fresh_cache):
    """A class opening the Train page on a fresh server: one thread reads, the others get its arrays."""
    import threading

    monkeypatch.setenv("MNIST_LAB_DATA", str(synthetic_npz))
    reads, start = [], threading.Barrier(8)
    real_load = data.load_npz

    def counted(path):
        reads.append(path)
        return real_load(path)

    monkeypatch.setattr(data, "load_npz", counted)
    results = []

    def ask():
        start.wait()
        results.append(data.load_mnist())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1 and len(results) == 8 and all(result is results[0] for result in results)


def test_the_overview_reads_the_first_images_of_each_digit_and_all_the_counts(synthetic_npz, monkeypatch, fresh_cache):
    monkeypatch.setenv(DATA_VARIABLE, str(synthetic_npz))
    seen = data.overview(per_class=3)
    mnist = load_npz(str(synthetic_npz))
    first = np.concatenate([np.flatnonzero(mnist.y_train == digit)[:3] for digit in range(10)])
    np.testing.assert_array_equal(seen.images, mnist.x_train[first])
    assert seen.labels.tolist() == [digit for digit in range(10) for _ in range(3)]
    assert seen.counts == mnist.class_counts()
    assert data._load.cache_info().currsize == 0  # the full arrays were not loaded


def test_the_overview_of_keras_download_is_read_from_the_full_arrays(synthetic_npz, monkeypatch, fresh_cache):
    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    monkeypatch.setattr(data, "load_mnist", lambda: load_npz(str(synthetic_npz)))
    seen = data.overview(per_class=2)
    assert seen.labels.tolist() == [digit for digit in range(10) for _ in range(2)]
    assert seen.counts == load_npz(str(synthetic_npz)).class_counts()


def test_the_overview_of_a_file_cut_short_inside_the_images_is_damaged(synthetic_npz, tmp_path, monkeypatch):
    arrays = arrays_of(synthetic_npz)
    path = write(tmp_path / "cut.npz", **arrays)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:  # x_train's header still says 600 images; 5 are left
        for name, content in members.items():
            archive.writestr(name, content[:128 + 5 * 784] if name == "x_train.npy" else content)
    monkeypatch.setenv(DATA_VARIABLE, path)
    with pytest.raises(DataError) as caught:
        data.overview(per_class=3)
    assert str(caught.value) == data.DAMAGED and "x_train.npy ends after 5" in caught.value.detail
