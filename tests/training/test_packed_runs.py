"""Runs that wait together and share a net train as one pack, each kept as a lone run is (training/packed_runs.py)."""

import contextlib
import os
import signal

import numpy as np
import pytest

from mnist_lab import training
from mnist_lab.architecture.sources import custom_architecture
from mnist_lab.classroom.learners import Actor, NotYours
from mnist_lab.runs import RunStatus, RunStore
from mnist_lab.training import packed_runs, phases

LAYERS = [{"type": "Flatten"}, {"type": "Dense", "units": 16, "activation": "relu"},
          {"type": "BatchNormalization", "axis": -1}]
EPOCHS, STEPS = 2, 2


def settings(seed: int) -> dict:
    return {"epochs": EPOCHS, "batch_size": 32, "train_size": 32 * STEPS, "validation_size": 32, "seed": seed}


def architecture() -> dict:
    return custom_architecture(LAYERS, label="tiny-bn")


@pytest.fixture(autouse=True)
def packs_of_four(monkeypatch):
    """Packs whatever the machine's cores (by default a server packs only while its slots leave cores idle)."""
    monkeypatch.setenv(packed_runs.PACK_SIZE_VARIABLE, "4")


def held(store: RunStore, run_id: str, point: str):
    return phases.held_marker(store.path(run_id), point).exists()


def release(store: RunStore, run_id: str, point: str) -> None:
    phases.release_marker(store.path(run_id), point).write_text("")


def wait_held(manager, run_id: str, point: str) -> None:
    """Wait on the run's own state: its hold marker, or its end (which fails the test)."""
    live = manager.live_state(run_id)
    version = -1
    while not held(manager.store, run_id, point):
        assert not manager.wait(run_id, 0), f"run {run_id} ended before {point}"
        version = live.wait_for_change(version, timeout=0.2)


def queue_three_behind_a_held_run(manager, point="starting", owners=None):
    """A first run held at `point` (every run holds there: MNIST_LAB_HOLD_AT), and three runs queued behind
    it: they start together, as one pack."""
    first = manager.submit(architecture(), settings(9), name="first")
    wait_held(manager, first, point)
    owners = owners or [None] * 3
    waiting = [manager.submit(architecture(), settings(seed), owner=owner) for seed, owner in zip((1, 2, 3), owners)]
    assert manager.queued_run_ids() == waiting
    return first, waiting


@contextlib.contextmanager
def held_manager(monkeypatch, isolated_storage, hold: str, executor: str):
    """A manager with one training slot whose runs hold at `hold` (phases.HOLD_VARIABLE), so that runs queued
    behind the first one wait together; shut down after the test."""
    monkeypatch.setenv(phases.HOLD_VARIABLE, hold)
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), max_concurrent=1, executor=executor)
    try:
        yield manager
    finally:
        manager.shut_down(timeout=60)


def check_kept_alone(store: RunStore, run_id: str, epochs: int, images: np.ndarray):
    """The run's files hold its own net: a model of its last finished epoch that predicts, that epoch's weights."""
    import keras

    assert store.epoch_weights(run_id) == list(range(1, epochs + 1))
    assert [row["epoch"] for row in store.history(run_id)] == list(range(1, epochs + 1))
    model = store.load_model(run_id)
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (len(images), 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    last = keras.models.clone_model(model)
    last.load_weights(store.epoch_weights_path(run_id, epochs))
    for saved, epoch in zip(model.trainable_weights, last.trainable_weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(epoch))
    return model


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_waiting_runs_of_one_net_train_as_one_pack_and_each_is_kept_as_its_own(executor, synthetic_data,
                                                                              isolated_storage, monkeypatch):
    with held_manager(monkeypatch, isolated_storage, "starting", executor) as manager:
        first, waiting = queue_three_behind_a_held_run(manager)
        for run_id in waiting:
            release(manager.store, run_id, "starting")
        release(manager.store, first, "starting")
        for run_id in [first, *waiting]:
            assert manager.wait(run_id, 300)
        images = np.random.default_rng(0).random((5, 28, 28, 1)).astype("float32")
        weights = []
        for run_id in waiting:
            meta = manager.store.get(run_id)
            assert meta["status"] == RunStatus.COMPLETED and meta["epochs_done"] == EPOCHS, meta["message"]
            assert sorted(meta["packed_with"]) == sorted(set(waiting) - {run_id})
            assert meta["test_accuracy"] is not None and meta["batch_normalization"]["batches"] == EPOCHS * STEPS
            weights.append(check_kept_alone(manager.store, run_id, EPOCHS, images).get_weights()[0])
        assert "packed_with" not in manager.store.get(first)  # it trained alone
        assert not np.allclose(weights[0], weights[1])  # each net has its own seed
        assert manager.counts()["running"] == 0


def test_stopping_one_packed_run_stops_it_alone_and_keeps_its_last_epoch(synthetic_data, isolated_storage,
                                                                         monkeypatch):
    owners = [(f"learner-{number}", f"Learner {number}") for number in range(3)]
    with held_manager(monkeypatch, isolated_storage, "starting", "thread") as manager:
        first, waiting = queue_three_behind_a_held_run(manager, owners=owners)
        monkeypatch.setenv(phases.HOLD_VARIABLE, f"batch:{STEPS + 1}")  # the pack reads it as it starts
        for run_id in [*waiting, first]:
            release(manager.store, run_id, "starting")
        assert manager.wait(first, 300)
        wait_held(manager, waiting[0], "batch")  # the pack holds between epoch 1 and epoch 2's first batch
        assert manager.packs() == [waiting]
        with pytest.raises(NotYours):
            manager.stop(waiting[1], by=Actor(owners[0][0]))  # a packmate is not its owner
        manager.stop(waiting[1], by=Actor(owners[1][0]))
        for run_id in waiting:
            release(manager.store, run_id, "batch")
        for run_id in waiting:
            assert manager.wait(run_id, 300)
        stopped = manager.store.get(waiting[1])
        assert stopped["status"] == RunStatus.STOPPED and stopped["epochs_done"] == 1
        assert "the model after epoch 1 is kept" in stopped["message"] and stopped["test_accuracy"] is not None
        assert stopped["owner"] == owners[1][0]
        images = np.random.default_rng(1).random((3, 28, 28, 1)).astype("float32")
        check_kept_alone(manager.store, waiting[1], 1, images)
        for run_id, owner in ((waiting[0], owners[0]), (waiting[2], owners[2])):
            meta = manager.store.get(run_id)
            assert meta["status"] == RunStatus.COMPLETED and meta["epochs_done"] == EPOCHS and meta["owner"] == owner[0]
            check_kept_alone(manager.store, run_id, EPOCHS, images)


def test_killing_the_worker_of_a_pack_fails_each_of_its_runs_and_keeps_their_epochs(synthetic_data, isolated_storage,
                                                                                   monkeypatch):
    with held_manager(monkeypatch, isolated_storage, "epoch-start:2", "process") as manager:
        first, waiting = queue_three_behind_a_held_run(manager, "epoch-start")
        release(manager.store, first, "epoch-start")
        assert manager.wait(first, 300)
        wait_held(manager, waiting[0], "epoch-start")  # every net of the pack has finished epoch 1
        [worker] = manager.executor.worker_pids()["busy"]
        os.kill(worker, signal.SIGKILL)
        images = np.random.default_rng(2).random((3, 28, 28, 1)).astype("float32")
        for run_id in waiting:
            assert manager.wait(run_id, 300)
            meta = manager.store.get(run_id)
            assert meta["status"] == RunStatus.FAILED and "signal 9 (SIGKILL)" in meta["message"]
            assert "its 1 finished epoch(s) and the model after epoch 1 are kept" in meta["message"]
            check_kept_alone(manager.store, run_id, 1, images)
        after = manager.submit(architecture(), settings(4))
        release(manager.store, after, "epoch-start")
        assert manager.wait(after, 300) and manager.store.get(after)["status"] == RunStatus.COMPLETED


def test_runs_that_differ_in_what_a_pack_shares_train_apart(synthetic_data, isolated_storage, monkeypatch):
    with held_manager(monkeypatch, isolated_storage, "starting", "thread") as manager:
        first = manager.submit(architecture(), settings(9))
        wait_held(manager, first, "starting")
        other_batch = manager.submit(architecture(), dict(settings(1), batch_size=16))
        augmented = manager.submit(architecture(), dict(settings(2), augment=True))
        same = manager.submit(architecture(), settings(3))
        for run_id in (other_batch, augmented, same, first):
            release(manager.store, run_id, "starting")
        for run_id in (first, other_batch, augmented, same):
            assert manager.wait(run_id, 300)
            meta = manager.store.get(run_id)
            assert meta["status"] == RunStatus.COMPLETED and "packed_with" not in meta, meta


def test_by_default_a_server_packs_only_while_its_slots_leave_cores_idle(monkeypatch):
    monkeypatch.delenv(packed_runs.PACK_SIZE_VARIABLE)
    monkeypatch.setattr(packed_runs.system, "cpu_cores", lambda: 4)
    assert packed_runs.pack_size(1) == packed_runs.pack_size(3) == packed_runs.DEFAULT_PACK_SIZE > 1
    assert packed_runs.pack_size(4) == packed_runs.pack_size(8) == 1
    monkeypatch.setenv(packed_runs.PACK_SIZE_VARIABLE, "2")
    assert packed_runs.pack_size(8) == 2
