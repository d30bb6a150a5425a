"""The handwriting set: samples survive on disk with their labels, can be deleted, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_lab.errors import LabError
from mnist_lab.images.handwriting import HandwritingSet


def digit_image(value: float = 1.0) -> np.ndarray:
    image = np.zeros((28, 28), "float32")
    image[6:22, 12:16] = value
    return image


def test_root_comes_from_the_environment(isolated_storage, monkeypatch):
    assert HandwritingSet().root == isolated_storage / "handwriting"
    monkeypatch.delenv("MNIST_LAB_HANDWRITING")
    assert str(HandwritingSet().root) == "handwriting"
    assert HandwritingSet("elsewhere").root.name == "elsewhere"


def test_samples_are_kept_with_labels_and_read_back_by_a_new_instance():
    writer = HandwritingSet()
    assert len(writer) == 0 and writer.samples() == []
    first = writer.add(digit_image(), 1, raw=np.ones((120, 30), "float32"))
    second = writer.add(digit_image(0.5).astype("float32"), 7)
    reader = HandwritingSet()
    assert [sample.id for sample in reader.samples()] == [first.id, second.id]
    assert [sample.label for sample in reader.samples()] == [1, 7]
    images, labels, ids = reader.load()
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [1, 7] and ids == [first.id, second.id]
    assert images[0, 10, 13] == 255 and images[1, 10, 13] == 128 and images[0, 0, 0] == 0
    assert first.raw_path is not None and first.raw_path.is_file()
    with Image.open(first.raw_path) as raw:
        assert max(raw.size) <= 280 and raw.size == (30, 120)
    assert second.raw_path is None
    assert reader.version() == (first.id, second.id)


def test_deleting_a_sample_removes_it_and_its_raw_crop():
    store = HandwritingSet()
    kept = store.add(digit_image(), 3, raw=np.ones((50, 50)))
    other = store.add(digit_image(), 4)
    store.delete(kept.id)
    assert [sample.id for sample in store.samples()] == [other.id]
    assert not kept.path.exists() and not kept.raw_path.exists()
    with pytest.raises(ValueError, match="no handwriting sample"):
        store.delete(kept.id)
    with pytest.raises(ValueError, match="not a handwriting sample id"):
        store.delete("../../runs/x")


@pytest.mark.parametrize("label", [-1, 10, "7", 2.0, True, None])
def test_labels_must_be_digits(label):
    with pytest.raises(ValueError, match="0 to 9"):
        HandwritingSet().add(digit_image(), label)


def test_images_must_be_28x28():
    with pytest.raises(ValueError, match="28x28"):
        HandwritingSet().add(np.zeros((20, 20)), 1)


def test_foreign_and_unreadable_files_are_ignored():
    store = HandwritingSet()
    good = store.add(digit_image(), 5)
    (store.root / "notes.png").write_bytes(b"not a sample")
    (store.root / "9-20240101-120000-abcdef.png").write_bytes(b"a damaged sample")
    assert len(store.samples()) == 2
    images, labels, ids = store.load()
    assert ids == [good.id] and labels.tolist() == [5]


def test_each_learner_has_a_set_of_their_own_and_the_teacher_pools_a_class_set(tmp_path):
    ada, ben = "a" * 16, "b" * 16
    image = np.zeros((28, 28), np.uint8)
    ada_set, ben_set = HandwritingSet(tmp_path, owner=ada), HandwritingSet(tmp_path, owner=ben)
    first = ada_set.add(image, 3, raw=np.full((40, 30), 200, np.uint8))
    ben_set.add(image, 4)
    assert [sample.label for sample in ada_set.samples()] == [3]
    assert [sample.label for sample in ben_set.samples()] == [4]
    with pytest.raises(LabError, match="no handwriting sample"):
        ben_set.delete(first.id)  # only reachable through its owner's set
    assert len(HandwritingSet(tmp_path)) == 0  # nor mixed into the server's own set
    everyone = HandwritingSet(tmp_path)
    assert everyone.learner_counts() == {ada: 1, ben: 1}
    assert everyone.pool_class_set() == 2 and everyone.pool_class_set() == 0
    pooled = HandwritingSet.class_set(tmp_path)
    assert sorted(sample.label for sample in pooled.samples()) == [3, 4]
    assert pooled._sample(first.id).raw_path is not None
    with pytest.raises(LabError, match="not a learner id"):
        HandwritingSet(tmp_path, owner="../../etc")
