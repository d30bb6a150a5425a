"""The teacher's room: pinned models, the runs Draw and Compare open with, the address with its QR code,
and the reset that archives learners' runs and handwriting without deleting anything."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from mnist_lab.classroom import classroom
from mnist_lab.errors import LabError
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.runs import MODEL_FILE, RunStore

ADA, BEN = "a" * 16, "b" * 16


def finished(store, name, accuracy, owner=None, status="completed"):
    meta = store.create(name, {"name": "tiny", "layers": []}, {"epochs": 1}, owner=owner)
    store.update(meta["id"], status=status, test_accuracy=accuracy)
    if status != "queued":
        (store.path(meta["id"]) / MODEL_FILE).write_bytes(b"model")
    return meta["id"]


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def test_draw_and_compare_open_with_the_pins_else_the_most_accurate_runs(store):
    weak = finished(store, "weak", 0.378, owner=ADA)
    strong = finished(store, "strong", 0.991, owner=BEN)
    middle = finished(store, "middle", 0.95)
    waiting = finished(store, "waiting", None, status="queued")
    room = classroom.Room(store)
    assert classroom.default_models(store.list(), room.pinned()) == [strong, middle]
    room.pin(weak)
    assert classroom.Room(store).pinned() == [weak]  # kept on disk
    assert classroom.default_models(store.list(), room.pinned(), count=3) == [weak, strong, middle]
    with pytest.raises(LabError, match="trained model"):
        room.pin(waiting)
    room.pin(weak, pinned=False)
    assert room.pinned() == []
    assert classroom.default_models(store.list(), [], has_model=lambda run_id: run_id != strong) == [middle, weak]


def test_a_deleted_pinned_run_is_no_longer_pinned(store):
    run_id = finished(store, "pinned", 0.99)
    room = classroom.Room(store)
    room.pin(run_id)
    store.delete(run_id)
    assert room.pinned() == []


def test_the_address_for_learners_and_its_qr_code():
    address = classroom.learner_address(8501)
    assert address.startswith("http://") and address.endswith(":8501/")
    picture = Image.open(io.BytesIO(classroom.qr_png(address)))
    pixels = np.asarray(picture.convert("L"))
    assert picture.size[0] == picture.size[1] >= 21 * 8  # a version-1 code or larger, 8 px a module
    assert 0.2 < (pixels < 128).mean() < 0.8  # dark modules on light


def test_the_reset_archives_learners_runs_and_handwriting_and_keeps_the_rest(store, tmp_path):
    learners_run = finished(store, "ada's", 0.9, owner=ADA)
    pinned = finished(store, "pinned", 0.99, owner=BEN)
    teachers = finished(store, "before class", 0.993)
    training = finished(store, "still waiting", None, owner=ADA, status="queued")
    classroom.Room(store).pin(pinned)
    handwriting = tmp_path / "handwriting"
    HandwritingSet(handwriting, owner=ADA).add(np.zeros((28, 28), np.uint8), 3)
    HandwritingSet(handwriting, owner=BEN).add(np.zeros((28, 28), np.uint8), 4)
    result = classroom.reset_room(store, handwriting, now=datetime(2026, 12, 3, 10, 15))
    assert result["folder"].name == "2026-12-03-101500"
    assert (result["runs"], result["samples"], result["kept"]) == (1, 2, 3)
    assert {meta["id"] for meta in store.list()} == {pinned, teachers, training}
    archived = RunStore(result["folder"] / "runs")
    assert archived.get(learners_run)["name"] == "ada's" and archived.has_model(learners_run)
    assert len(HandwritingSet(result["folder"] / "handwriting", owner=ADA)) == 1
    assert len(HandwritingSet(handwriting, owner=ADA)) == 0
