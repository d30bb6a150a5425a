"""The Keras script of an architecture: self-contained, in the notebook's style, it builds the lab's own model
(same layers, same counts) and trains when run."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from mnist_lab import training
from mnist_lab.architecture import keras_code
from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import ArchitectureError
from mnist_lab.evaluation.batch_normalization import BATCH_NORMALIZATION_LAG_LIMIT, MOMENTUM
from mnist_lab.training import fitting
from mnist_lab.training import settings as training_settings

VARIED = [
    {"type": "Conv2D", "filters": 6, "kernel_size": [5, 3], "strides": [2, 1], "padding": "same", "activation": "elu"},
    {"type": "AveragePooling2D", "pool_size": [2, 2], "strides": [1, 1]},
    {"type": "BatchNormalization", "axis": 2},
    {"type": "MaxPooling2D", "pool_size": [3, 3]},
    {"type": "BatchNormalization", "axis": -1},
    {"type": "GlobalAveragePooling2D"},
    {"type": "Dense", "units": 7, "activation": "tanh"},
    {"type": "Dropout", "rate": 0.3},
]


def built_model(script: str):
    """The model the script's build_model() makes, without running its main()."""
    namespace = {"__name__": "generated"}
    exec(compile(script, "generated.py", "exec"), namespace)
    return namespace["build_model"]()


def test_the_script_imports_nothing_from_the_lab():
    tree = ast.parse(keras_code.keras_script(preset_layers("seed-3layer")))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"argparse", "math", "os", "keras", "numpy"}


def test_the_script_is_in_the_notebooks_style():
    script = keras_code.keras_script(preset_layers("seed-3layer"), {"epochs": 3, "batch_size": 64})
    assert "keras.Sequential([\n        keras.Input(shape=(28, 28, 1)),\n" in script
    assert '        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),\n' in script
    assert "        layers.BatchNormalization(axis=1),\n" in script
    assert '        layers.Dense(10, activation="softmax"),\n    ])' in script
    assert "EPOCHS = 3\nBATCH_SIZE = 64\nTRAIN_SIZE = None" in script
    assert "keras.optimizers.Adam(learning_rate=0.001)" in script
    assert "model.summary()" in script and "model.evaluate(" in script


@pytest.mark.parametrize("layers", [preset_layers(preset) for preset in PRESETS] + [VARIED],
                         ids=[*PRESETS, "every layer type"])
def test_the_script_builds_the_labs_model(layers):
    model = built_model(keras_code.keras_script(layers))
    lab = build_model(layers)
    assert model.count_params() == lab.count_params() == analyze(layers).total_parameters
    assert [layer.get_config() | {"name": ""} for layer in model.layers] == \
        [layer.get_config() | {"name": ""} for layer in lab.layers]


def test_optimizers_and_schedules_match_the_lab():
    assert set(keras_code.OPTIMIZER_CODE) == set(training.OPTIMIZERS)
    assert keras_code.WARMUP_FRACTION == training_settings.WARMUP_FRACTION
    for key, choice in training.OPTIMIZERS.items():
        script = keras_code.keras_script([{"type": "Flatten"}], {"optimizer": key})
        assert f"learning_rate={choice.default_learning_rate!r}" in script
    quick = PRESETS["quick-cnn"]
    script = keras_code.keras_script(quick.layers, quick.training)
    assert "keras.optimizers.schedules.CosineDecay(" in script and "warmup_target=0.004" in script
    assert "BATCH_SIZE = 256" in script and "EPOCHS = 2" in script


def test_the_one_cycle_schedule_is_the_labs():
    assert (keras_code.ONE_CYCLE_RISE, keras_code.ONE_CYCLE_START, keras_code.ONE_CYCLE_END) == (
        training_settings.ONE_CYCLE_RISE, training_settings.ONE_CYCLE_START, training_settings.ONE_CYCLE_END)
    settings = {"epochs": 1, "batch_size": 256, "learning_rate": 0.01, "schedule": "one-cycle", "train_size": 1000}
    script = keras_code.keras_script([{"type": "Flatten"}], settings)
    lab = training.learning_rate_schedule(training.TrainSettings(**settings).resolve(60_000)).get_config()
    assert f"rise_steps = int(total_steps * {training_settings.ONE_CYCLE_RISE!r})" in script
    assert f"{lab['initial_learning_rate']:.6g}, decay_steps=max(1, total_steps - rise_steps), " \
           f"alpha={lab['alpha']!r}" in script
    assert f"warmup_target={lab['warmup_target']!r}, warmup_steps=rise_steps" in script


def test_a_runs_script_is_its_architecture_with_its_settings():
    meta = {"name": "my run", "architecture": {"name": "quick-cnn", "label": "quick-cnn", "source": "preset",
                                               "layers": preset_layers("quick-cnn")},
            "settings": {"epochs": 4, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.002,
                         "train_size": 20_000, "schedule": "warmup-cosine", "validation": "holdout", "seed": 3,
                         "augment": True}}
    script = keras_code.run_script(meta)
    assert script == keras_code.keras_script(preset_layers("quick-cnn"), meta["settings"], "quick-cnn")
    assert "EPOCHS = 4\nBATCH_SIZE = 32\nTRAIN_SIZE = 20000" in script and "warmup_target=0.002" in script
    summary = keras_code.run_script_summary(meta)
    assert "4 epochs on 20,000 training images in batches of 32 with Adam at 0.002, schedule warmup-cosine" in summary
    assert "does not augment" in summary
    assert "does not augment" not in keras_code.run_script_summary({**meta, "settings": {"epochs": 1}})


@pytest.mark.parametrize("settings, message", [
    ({"epochs": 0}, "Epochs must be a whole number"),
    ({"batch_size": "big"}, "Batch size must be a whole number"),
    ({"optimizer": "rmsprop"}, "not 'rmsprop'"),
    ({"learning_rate": float("nan")}, "learning rate must be a number above 0"),
    ({"train_size": -5}, "training images"),
    ({"schedule": "cyclic"}, "not 'cyclic'"),
])
def test_settings_it_cannot_use_are_refused_with_a_message(settings, message):
    with pytest.raises(keras_code.CodeError, match=message):
        keras_code.keras_script([{"type": "Flatten"}], settings)


def test_an_invalid_architecture_is_refused():
    with pytest.raises(ArchitectureError):
        keras_code.keras_script([{"type": "Dense", "units": 3}])


def test_after_a_short_run_the_script_re_estimates_batch_normalization_as_the_lab_does():
    import keras
    import numpy as np

    namespace = {"__name__": "generated"}
    exec(compile(keras_code.keras_script(VARIED), "generated.py", "exec"), namespace)
    script_model, lab_model = namespace["build_model"](), build_model(VARIED)
    lab_model.set_weights(script_model.get_weights())
    images = np.random.default_rng(0).random((300, 28, 28, 1), dtype="float32")
    namespace["catch_up_batch_normalization"](script_model, images)
    training.reestimate_batch_normalization(lab_model, images)
    normalizations = [[layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
                      for model in (script_model, lab_model)]
    assert len(normalizations[0]) == 2
    assert not np.allclose(keras.ops.convert_to_numpy(normalizations[1][0].moving_mean), 0)  # they did move
    for script_layer, lab_layer in zip(*normalizations):
        for ours, theirs in ((script_layer.moving_mean, lab_layer.moving_mean),
                             (script_layer.moving_variance, lab_layer.moving_variance)):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs),
                                       rtol=1e-5, atol=1e-6)


def test_only_a_net_with_batch_normalization_carries_the_catch_up():
    without = [layer for layer in VARIED if layer["type"] != "BatchNormalization"]
    assert "catch_up_batch_normalization" not in keras_code.keras_script(without)
    script = keras_code.keras_script(VARIED)
    assert f"{MOMENTUM!r} ** batches >= {BATCH_NORMALIZATION_LAG_LIMIT!r}" in script
    assert f"x_train[:{fitting.BATCH_NORMALIZATION_IMAGES}]" in script


def test_an_odd_name_cannot_break_the_script():
    script = keras_code.keras_script([{"type": "Flatten"}], name='a """ \\N{x} name\nwith "quotes"')
    ast.parse(script)


def test_the_script_trains_and_counts_the_labs_parameters(tmp_path, synthetic_npz):
    path = tmp_path / "net.py"
    path.write_text(keras_code.keras_script(preset_layers("seed-3layer"), {"epochs": 5, "batch_size": 128}))
    env = {**os.environ, "MNIST_LAB_DATA": str(synthetic_npz)}
    done = subprocess.run([sys.executable, str(path), "--epochs", "1", "--train-size", "500"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Total params: 30,706" in done.stdout
    assert "A short run (4 batches): BatchNormalization's running averages were re-estimated on 500 " in done.stdout
    assert "Test accuracy: " in done.stdout
