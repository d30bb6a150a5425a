"""Inference: which runs can predict, loading with readable errors, the per-process cache, single-image
prediction, scoring, and predicting image files (directly and through `python -m mnist_lab predict`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT
from draw_support import install_run, trained_model_folder
from mnist_lab import data
from mnist_lab.architecture.building import build_model
from mnist_lab.evaluation import inference
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.runs import RunStore

TINY = [{"type": "Conv2D", "filters": 2, "kernel_size": [3, 3], "activation": "relu"}, {"type": "Flatten"}]


@pytest.fixture
def store():
    return RunStore()


def stored_run(store, status="completed", with_model=True, name="tiny"):
    meta = store.create(name, {"name": "custom", "source": "custom", "layers": TINY}, {"epochs": 1})
    if with_model:
        build_model(TINY, name).save(store.model_path(meta["id"]))
    return store.update(meta["id"], status=status)


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    """seed-3layer trained on all of MNIST for one epoch (trained once per session)."""
    if not os.environ.get("MNIST_LAB_DATA"):
        pytest.skip("MNIST_LAB_DATA is not set")
    return trained_model_folder(tmp_path_factory, data.load_mnist())


def test_usable_runs_are_finished_ones_with_a_model(store):
    completed = stored_run(store, "completed")
    stopped = stored_run(store, "stopped")
    stored_run(store, "stopped", with_model=False)
    stored_run(store, "running")
    failed = stored_run(store, "failed")  # a run whose worker died after an epoch keeps that epoch's model
    stored_run(store, "failed", with_model=False)
    assert {meta["id"] for meta in inference.usable_runs(store)} == {completed["id"], stopped["id"], failed["id"]}


def test_loading_errors_are_readable(store):
    with pytest.raises(ValueError, match="No run with id 'nope'"):
        inference.load_model(store, "nope")
    with pytest.raises(ValueError, match="No run with id"):
        inference.cached_model(store, "../etc")
    empty = stored_run(store, with_model=False)
    with pytest.raises(ValueError, match="has no saved model"):
        inference.cached_model(store, empty["id"])
    damaged = stored_run(store, with_model=False)
    store.model_path(damaged["id"]).write_bytes(b"not a keras file")
    with pytest.raises(ValueError, match="damaged"):
        inference.load_model(store, damaged["id"])


def test_models_are_cached_per_file_version(store):
    meta = stored_run(store)
    first = inference.cached_model(store, meta["id"])
    assert inference.cached_model(store, meta["id"]) is first
    path = store.model_path(meta["id"])
    build_model(TINY, "again").save(path)
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
    second = inference.cached_model(store, meta["id"])
    assert second is not first and inference.cached_model(store, meta["id"]) is second


def test_single_prediction_is_the_models_own(store):
    model = inference.cached_model(store, stored_run(store)["id"])
    image = np.random.default_rng(0).uniform(0, 1, (28, 28)).astype("float32")
    probabilities = inference.predict(model, image)
    assert probabilities.shape == (10,) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probabilities, model.predict(image[None, :, :, None], verbose=0)[0], atol=1e-6)
    batch = inference.predict_batch(model, np.stack([image, image * 0]))
    np.testing.assert_allclose(batch[0], probabilities, atol=1e-6)
    assert inference.predict_batch(model, np.zeros((0, 28, 28))).shape == (0, 10)


def save_digit(path, image: np.ndarray, dark_on_light=False, size=None):
    picture = Image.fromarray(255 - image if dark_on_light else image)
    if size:
        picture = picture.resize((size, size), Image.Resampling.BICUBIC)
    picture.save(path)
    return str(path)


@pytest.fixture
def digit_files(tmp_path, real_mnist):
    """Test digits as files in several formats and polarities, plus files that are not digits."""
    images, labels = real_mnist.x_test[:6], real_mnist.y_test[:6]
    paths = [
        save_digit(tmp_path / "plain.png", images[0]),
        save_digit(tmp_path / "paper.jpg", images[1], dark_on_light=True, size=300),
        save_digit(tmp_path / "big.bmp", images[2], size=200),
        save_digit(tmp_path / "paper.webp", images[3], dark_on_light=True, size=120),
    ]
    (tmp_path / "notes.txt").write_text("not an image")
    Image.new("L", (100, 100), 255).save(tmp_path / "blank.png")
    return paths, labels[:4].tolist(), [str(tmp_path / "notes.txt"), str(tmp_path / "blank.png"),
                                        str(tmp_path / "missing.png")]


@pytest.mark.slow
def test_predict_files_reads_digits_in_any_format_and_polarity(store, trained_folder, digit_files):
    meta = install_run(trained_folder, store)
    paths, labels, bad = digit_files
    results = inference.predict_files(store, meta["id"], paths + bad)
    assert [result["image"] for result in results] == paths + bad
    good, errors = results[:len(paths)], results[len(paths):]
    assert [result["digit"] for result in good] == labels
    for result in good:
        assert len(result["probabilities"]) == 10 and sum(result["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert result["digit"] == int(np.argmax(result["probabilities"]))
    assert "not an image" in errors[0]["error"]
    assert "No digit" in errors[1]["error"]
    assert "Cannot read" in errors[2]["error"]
    assert all(set(result) == {"image", "error"} for result in errors)


def test_predict_files_refuses_an_unknown_run_or_one_without_a_model(store, tmp_path):
    with pytest.raises(ValueError, match="No run"):
        inference.predict_files(store, "missing", [tmp_path / "x.png"])
    with pytest.raises(ValueError, match="no saved model"):
        inference.predict_files(store, stored_run(store, with_model=False)["id"], [tmp_path / "x.png"])


@pytest.mark.slow
def test_predict_command_prints_one_json_line_per_image(store, trained_folder, digit_files):
    meta = install_run(trained_folder, store)
    paths, labels, bad = digit_files
    command = [sys.executable, "-m", "mnist_lab", "predict", "--run", meta["id"]]
    finished = subprocess.run(command + paths, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr
    lines = [json.loads(line) for line in finished.stdout.splitlines()]
    assert [line["image"] for line in lines] == paths
    assert [line["digit"] for line in lines] == labels
    with_bad = subprocess.run(command + paths[:1] + bad[:1], cwd=ROOT, env=dict(os.environ), capture_output=True,
                              text=True, timeout=300)
    assert with_bad.returncode == 1
    lines = [json.loads(line) for line in with_bad.stdout.splitlines()]
    assert lines[0]["digit"] == labels[0] and "not an image" in lines[1]["error"]
    unknown = subprocess.run(command[:-1] + ["no-such-run"] + paths[:1], cwd=ROOT, env=dict(os.environ),
                             capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 1 and "No run" in unknown.stderr and "Traceback" not in unknown.stderr


@pytest.mark.slow
def test_accuracy_on_a_handwriting_set(store, trained_folder, real_mnist):
    model = inference.cached_model(store, install_run(trained_folder, store)["id"])
    handwriting = HandwritingSet()
    images, labels = real_mnist.x_test[:20], real_mnist.y_test[:20]
    for image, label in zip(images, labels):
        handwriting.add(image, int(label))
    stored_images, stored_labels, _ = handwriting.load()
    expected = float(np.mean(model.predict(data.to_model_input(images), verbose=0).argmax(axis=1) == labels))
    assert inference.accuracy(model, stored_images, stored_labels) == pytest.approx(expected)
    assert inference.accuracy(model, np.zeros((0, 28, 28), np.uint8), np.zeros(0)) is None


def test_one_conversion_for_uint8_and_float_images():
    uint8 = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(inference.model_input(uint8), data.to_model_input(uint8))
    single = inference.model_input(uint8[0].astype("float32") / 255.0)
    assert single.shape == (1, 28, 28, 1) and single.dtype == np.float32
    np.testing.assert_allclose(single, data.to_model_input(uint8[:1]), atol=1e-7)


def test_not_a_digit_says_why():
    from draw_support import SEVEN, canvas_pixels, draw_strokes
    from mnist_lab.images import canvas

    seven = canvas.preprocess_canvas(canvas_pixels(draw_strokes(SEVEN, box=(0.2, 0.1, 0.8, 0.9))))
    sure, unsure = np.eye(10)[7], np.full(10, 0.1)
    assert inference.not_a_digit(seven, [sure]) == ""
    assert inference.not_a_digit(seven, []) == ""
    assert "No model is more than 50% sure (the surest is 40% sure)" in inference.not_a_digit(
        seven, [unsure, np.r_[0.4, np.full(9, 0.6 / 9)]])
    assert inference.not_a_digit(seven, [unsure, sure]) == ""  # one model is sure
    tiny = canvas.preprocess_canvas(canvas_pixels(draw_strokes(SEVEN, box=(0.05, 0.05, 0.15, 0.17))))
    assert "write the digit bigger" in inference.not_a_digit(tiny, [sure])


def test_the_page_and_the_command_line_share_one_model_cache(store):
    meta = stored_run(store)
    assert not inference.is_cached(store, meta["id"]) and not inference.is_cached(store, "missing")
    model = inference.cached_model(store, meta["id"])
    assert inference.is_cached(store, meta["id"])
    assert inference.cached_model(RunStore(store.root), meta["id"]) is model



def test_an_epoch_model_has_that_epochs_weights_and_is_built_once(store):
    import keras

    meta = store.create("epochs", {"name": "custom", "source": "custom", "layers": TINY}, {"epochs": 3})
    run_id = meta["id"]
    weights = []
    for epoch in (1, 2, 3):
        keras.utils.set_random_seed(epoch)
        model = build_model(TINY, "tiny")
        store.save_epoch_weights(run_id, epoch, model)
        weights.append(model.get_weights())
    model.save(store.model_path(run_id))
    store.update(run_id, status="completed")
    assert inference.stored_epochs(store, run_id) == [1, 2, 3]
    first = inference.epoch_model(store, run_id, 1)
    for kept, expected in zip(first.get_weights(), weights[0]):
        np.testing.assert_array_equal(kept, expected)
    assert inference.epoch_model(store, run_id, 1) is first  # built once, shared
    assert inference.epoch_is_ready(store, run_id, 1)
    assert inference.epoch_model(store, run_id, 3) is inference.cached_model(store, run_id)  # the last: the model
    image = np.random.default_rng(0).random((28, 28)).astype("float32")
    assert not np.allclose(inference.predict(first, image), inference.predict(inference.epoch_model(store, run_id, 2), image))
    with pytest.raises(inference.ModelError, match="epoch 7"):
        inference.epoch_model(store, run_id, 7)
    store.epoch_weights_path(run_id, 2).write_bytes(b"damaged")
    with pytest.raises(inference.ModelError, match="damaged"):
        inference.epoch_model(store, run_id, 2)


def test_a_guess_is_described_as_sure_or_as_unsure_between_its_two_likeliest_digits():
    sure = np.full(10, 0.01, "float32")
    sure[8] = 0.91
    assert inference.describe_guess(sure) == "8, 91 % sure"
    unsure = np.full(10, 0.05, "float32")
    unsure[3], unsure[8] = 0.35, 0.25
    assert inference.describe_guess(unsure) == "unsure between 3 and 8"
