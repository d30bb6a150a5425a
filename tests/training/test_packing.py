"""Packed runs: a net trained in a pack ends as the same run trained alone (same seed, same data order);
stopping one net leaves the others training; per-net histories, split models and scores; refusals."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_lab import data
from mnist_lab.training import packing
from mnist_lab.training.packed_fit import PackedFit
from mnist_lab.training.fitting import build_for_training, prepare_arrays
from mnist_lab.training.settings import TrainSettings

# Small, but with what a pack must keep apart: a convolution, BatchNormalization (averages that are
# weights too), pooling and two Dense layers.
LAYERS = [
    {"type": "Conv2D", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2], "activation": "relu"},
    {"type": "BatchNormalization", "axis": -1},
    {"type": "MaxPooling2D", "pool_size": [2, 2]},
    {"type": "Flatten"},
    {"type": "Dense", "units": 16, "activation": "relu"},
    {"type": "Dropout", "rate": 0.3},
]
SEEDS = [3, 11, 42]
TRAIN_IMAGES = 100  # 4 batches of 32: the last one is short, as most epochs' last batch is
POOL_IMAGES = 150
STOPPED, STOP_EPOCH, STOP_BATCH = 1, 1, 1  # net 1 stops after batch 2 of epoch 2 (0-based 1, 1)
WEIGHTS_TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}
SCORE_TOLERANCE = {"abs": 1e-5, "rel": 1e-4}


def settings_for(seed: int, **changes) -> TrainSettings:
    values = dict(epochs=2, batch_size=32, optimizer="adam", learning_rate=0.01, train_size=TRAIN_IMAGES,
                  validation_size=20, seed=seed)
    values.update(changes)
    return TrainSettings(**values).resolve(POOL_IMAGES)


@pytest.fixture(scope="module")
def pool():
    """Random images; each net trains on its own 100 of them and validates on its own 20."""
    rng = np.random.default_rng(0)
    images = rng.random((POOL_IMAGES, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, POOL_IMAGES).astype("int32")
    rows = [np.random.default_rng(seed).permutation(POOL_IMAGES) for seed in SEEDS]
    nets = [packing.NetData(images, labels, order[:TRAIN_IMAGES], x_validation=images[order[-20:]],
                            y_validation=labels[order[-20:]]) for order in rows]
    return {"images": images, "labels": labels, "nets": nets}


def lone_run(net: packing.NetData, seed: int, stop_after: tuple[int, int] | None = None):
    """The reference: one run built as the app builds it, fitted epoch by epoch in epoch_order with
    shuffle=False; `stop_after` (epoch, batches) ends it there. Returns (model, history)."""
    settings = settings_for(seed)
    model, fit_model = build_for_training(LAYERS, settings)
    x_train, y_train = net.images[net.rows], net.labels[net.rows]
    history = []
    for epoch in range(settings.epochs):
        order = packing.epoch_order(seed, epoch, len(x_train))
        if stop_after is not None and epoch == stop_after[0]:
            order = order[:stop_after[1] * settings.batch_size]
        fitted = fit_model.fit(x_train[order], y_train[order], batch_size=settings.batch_size, epochs=1,
                               shuffle=False, validation_data=(net.x_validation, net.y_validation), verbose=0)
        if stop_after is not None and epoch == stop_after[0]:
            break
        history.append({key: values[0] for key, values in fitted.history.items()})
    return model, history


@pytest.fixture(scope="module")
def lone(pool):
    return [lone_run(net, seed) for net, seed in zip(pool["nets"], SEEDS)]


def trained_pack(pool, callbacks=()):
    pack = packing.build_pack(LAYERS, SEEDS, settings_for(SEEDS[0]))
    packed = PackedFit(pack, pool["nets"], callbacks=callbacks)
    return pack, packed


@pytest.fixture(scope="module")
def full_pack(pool):
    pack, packed = trained_pack(pool)
    initial = [net.get_weights() for net in pack.nets]
    packed.fit()
    return pack, packed, initial


@pytest.fixture(scope="module")
def stopped_pack(pool):
    """A pack whose net 1 is asked to stop after batch STOP_BATCH + 1 of epoch STOP_EPOCH + 1; records every
    net's weights at that moment."""
    import keras

    at_stop = {}
    holder = {}

    class StopOne(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (STOP_EPOCH, STOP_BATCH):
                holder["packed"].stop(STOPPED)
                model = self.model  # on JAX this brings the variables up to date
                at_stop.update({index: model.get_layer(name).get_weights()
                                for index, name in enumerate(holder["pack"].names)})

    pack, packed = trained_pack(pool, callbacks=[StopOne()])
    holder.update(pack=pack, packed=packed)
    packed.fit()
    return pack, packed, at_stop


def assert_weights_close(actual, expected):
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(got, want, **WEIGHTS_TOLERANCE)


def differ(first, second) -> bool:
    return any(not np.allclose(a, b, atol=1e-4) for a, b in zip(first, second))


# --- equivalence ----------------------------------------------------------------------------------

def test_each_packed_net_starts_and_ends_as_its_lone_run(full_pack, lone):
    pack, packed, initial = full_pack
    for index, seed in enumerate(SEEDS):
        settings = settings_for(seed)
        fresh, _ = build_for_training(LAYERS, settings)
        assert_weights_close(initial[index], fresh.get_weights())  # same initial weights
        assert differ(initial[index], pack.nets[index].get_weights())  # and it trained
        assert_weights_close(pack.nets[index].get_weights(), lone[index][0].get_weights())
    assert differ(pack.nets[0].get_weights(), pack.nets[1].get_weights())
    assert differ(pack.nets[1].get_weights(), pack.nets[2].get_weights())


def test_per_net_history_is_the_lone_runs_history(full_pack, lone):
    pack, packed, _ = full_pack
    for index in range(len(SEEDS)):
        rows = packed.history(index)
        assert [row["epoch"] for row in rows] == [1, 2]
        assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
        for row, lone_row in zip(rows, lone[index][1]):
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                assert row[key] == pytest.approx(lone_row[key], **SCORE_TOLERANCE), (index, key)
    # per net, not the pack's sum: the nets' losses differ and none is the total
    assert len({packed.history(index)[-1]["loss"] for index in range(len(SEEDS))}) == len(SEEDS)


def test_pack_scores_and_split_models_score_alike(full_pack, pool, lone, tmp_path):
    import keras

    pack, _, _ = full_pack
    images, labels = pool["images"][:40], pool["labels"][:40]
    scores = packing.evaluate_pack(pack, images, labels, batch_size=16)
    models = packing.split_pack(pack)
    assert len(models) == len(scores) == len(SEEDS)
    for index, (model, (loss, accuracy)) in enumerate(zip(models, scores)):
        alone_loss, alone_accuracy = model.evaluate(images, labels, batch_size=16, verbose=0)
        assert loss == pytest.approx(alone_loss, **SCORE_TOLERANCE)
        assert accuracy == pytest.approx(alone_accuracy, **SCORE_TOLERANCE)
        reference_loss, _ = lone[index][0].evaluate(images, labels, verbose=0)
        assert loss == pytest.approx(reference_loss, **SCORE_TOLERANCE)
        assert len(model.get_weights()) == len(lone[index][0].get_weights())  # its own weights only
    path = tmp_path / "net.keras"
    models[2].save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), lone[2][0].predict(images, verbose=0),
                               **WEIGHTS_TOLERANCE)
    # the file holds the net's optimizer state too (Adam's step count and averages), as a lone run's does
    lone_state = lone[2][0].optimizer.variables
    assert len(loaded.optimizer.variables) == len(lone_state) > 2
    for got, want in zip(loaded.optimizer.variables, lone_state):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want),
                                   **WEIGHTS_TOLERANCE)


# --- stopping one net -----------------------------------------------------------------------------

def test_a_stopped_net_keeps_its_weights_from_the_stop_while_the_others_train_on(stopped_pack, pool, lone,
                                                                                  tmp_path):
    import keras

    pack, packed, at_stop = stopped_pack
    assert packed.is_stopped(STOPPED) and packed.stopped_at(STOPPED) == (STOP_EPOCH, STOP_BATCH + 1)
    assert not packed.is_stopped(0) and packed.stopped_at(0) is None
    kept = packed.kept_weights(STOPPED)
    for got, want in zip(kept, at_stop[STOPPED]):
        np.testing.assert_array_equal(got, want)
    # the pack holds the kept weights again, which are the lone run's after the same batches
    assert_weights_close(pack.nets[STOPPED].get_weights(), kept)
    stopped_alone, stopped_history = lone_run(pool["nets"][STOPPED], SEEDS[STOPPED],
                                              stop_after=(STOP_EPOCH, STOP_BATCH + 1))
    assert_weights_close(kept, stopped_alone.get_weights())
    # only the epochs it finished are in its history
    assert [row["epoch"] for row in packed.history(STOPPED)] == [1]
    assert packed.history(STOPPED)[0]["val_loss"] == pytest.approx(stopped_history[0]["val_loss"],
                                                                   **SCORE_TOLERANCE)
    for index in (0, 2):
        assert differ(at_stop[index], pack.nets[index].get_weights())  # kept on training
        assert_weights_close(pack.nets[index].get_weights(), lone[index][0].get_weights())
        assert [row["epoch"] for row in packed.history(index)] == [1, 2]
    model = packing.split_pack(pack)[STOPPED]
    path = tmp_path / "stopped.keras"
    model.save(path)
    images = pool["images"][:20]
    np.testing.assert_allclose(keras.models.load_model(path).predict(images, verbose=0),
                               stopped_alone.predict(images, verbose=0), **WEIGHTS_TOLERANCE)


def test_a_pack_whose_nets_are_all_stopped_ends_and_keeps_the_start(pool):
    pack, packed = trained_pack(pool)
    initial = [net.get_weights() for net in pack.nets]
    for index in range(len(SEEDS)):
        packed.stop(index)
    packed.fit()
    for index in range(len(SEEDS)):
        assert packed.stopped_at(index) == (0, 0)
        assert packed.history(index) == []
        assert_weights_close(pack.nets[index].get_weights(), initial[index])
    with pytest.raises(ValueError, match="no net 3"):
        packed.stop(3)
    with pytest.raises(ValueError, match="trains once"):
        packed.fit()


# --- data order -----------------------------------------------------------------------------------

def test_epoch_order_is_fixed_by_seed_and_epoch():
    first = packing.epoch_order(7, 0, 50)
    assert sorted(first) == list(range(50))
    np.testing.assert_array_equal(first, packing.epoch_order(7, 0, 50))
    assert not np.array_equal(first, packing.epoch_order(7, 1, 50))
    assert not np.array_equal(first, packing.epoch_order(8, 0, 50))
    with pytest.raises(ValueError, match="seed"):
        packing.epoch_order(-1, 0, 50)


def test_pack_data_gives_each_net_the_batches_of_its_lone_run(synthetic_npz):
    mnist = data.load_npz(str(synthetic_npz))
    settings = [TrainSettings(epochs=2, batch_size=64, train_size=300, seed=seed).resolve(len(mnist.x_train))
                for seed in (1, 2)]
    nets = packing.pack_data(mnist, settings)
    batches = packing.packed_batches_class()(["net_0", "net_1"], [1, 2], nets, 64, 2)
    assert len(batches) == 2 * 5
    images, labels = batches[5 + 4]  # epoch 2's last, short batch
    for index, run_settings in enumerate(settings):
        arrays = prepare_arrays(mnist, run_settings)
        order = packing.epoch_order(run_settings.seed, 1, 300)[256:]
        np.testing.assert_array_equal(images[index], arrays["x_train"][order])
        np.testing.assert_array_equal(labels[f"net_{index}"], arrays["y_train"][order])
        np.testing.assert_array_equal(nets[index].x_validation, arrays["x_validation"])
    assert nets[0].images is nets[1].images  # one copy of the training images for the pack


# --- refusals -------------------------------------------------------------------------------------

def test_runs_that_differ_are_refused_naming_the_difference():
    base = settings_for(1)
    packing.check_packable([(LAYERS, base), (LAYERS, settings_for(2))])
    spelled_out = [dict(LAYERS[0]), *LAYERS[1:]]
    spelled_out[0].pop("strides")
    spelled_out[0]["strides"] = 2  # a square stride written as one number is the same layer
    packing.check_packable([(LAYERS, base), (spelled_out, settings_for(2))])
    with pytest.raises(ValueError, match=r"batch size differs \(32, 64\)"):
        packing.check_packable([(LAYERS, base), (LAYERS, settings_for(2, batch_size=64))])
    wider = [dict(LAYERS[0], filters=8), *LAYERS[1:]]
    with pytest.raises(ValueError, match="architectures") as refused:
        packing.check_packable([(LAYERS, base), (wider, settings_for(2))])
    assert "batch size" not in str(refused.value)
    with pytest.raises(ValueError, match="architectures.*learning rate differs"):
        packing.check_packable([(LAYERS, base), (wider, settings_for(2, learning_rate=0.001))])
    with pytest.raises(ValueError, match="augmentation"):
        packing.check_packable([(LAYERS, base), (LAYERS, settings_for(2, augment=True))])
    with pytest.raises(ValueError, match="augmentation"):
        packing.build_pack(LAYERS, [1, 2], settings_for(1, augment=True))
    with pytest.raises(ValueError, match="resolved"):
        packing.pack_key(LAYERS, TrainSettings())
