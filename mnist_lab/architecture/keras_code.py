"""An architecture and its training settings as one self-contained Keras script, in the notebook's style, for a
learner to take home: it needs Keras and numpy only, never mnist_lab.

The script reads MNIST from the npz file named in MNIST_LAB_DATA (Keras' layout) or downloads it with Keras,
takes --epochs N and --train-size N, prints model.summary(), trains and evaluates.
"""

from __future__ import annotations

import math

from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import normalize_layers
from mnist_lab.errors import LabError
from mnist_lab.evaluation.batch_normalization import BATCH_NORMALIZATION_LAG_LIMIT, MOMENTUM
from mnist_lab.training.fitting import BATCH_NORMALIZATION_IMAGES
from mnist_lab.training.settings import (ONE_CYCLE_END, ONE_CYCLE_RISE, ONE_CYCLE_START, OPTIMIZERS, SCHEDULES,
                                         WARMUP_FRACTION, TrainSettings)

SCRIPT_SETTINGS = ("epochs", "batch_size", "optimizer", "learning_rate", "train_size", "schedule")
DEFAULT_SETTINGS = {name: getattr(TrainSettings(), name) for name in SCRIPT_SETTINGS}  # the lab's own defaults
OPTIMIZER_CODE = {  # every optimizer in OPTIMIZERS, as the lab builds it (a test checks)
    "adam": "keras.optimizers.Adam(learning_rate={rate})",
    "adadelta": "keras.optimizers.Adadelta(learning_rate={rate})",
    "sgd": "keras.optimizers.SGD(learning_rate={rate}, momentum=0.9)",
}


# After a short run the lab re-estimates BatchNormalization's running averages (training.fitting); the script
# of a net with BatchNormalization does the same, so that a quick try of it scores as the lab's run did.
CATCH_UP_CODE = '''

def catch_up_batch_normalization(model, images, batch_size=256):
    """Set each BatchNormalization layer's running mean and variance to the statistics of its inputs over
    `images`. Keras moves them 1 % a batch, so after a short run they are still far from the data's, and
    the net, fine in training, scores near chance on new images. No weight is trained."""
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        probe = keras.Model(model.inputs[0], layer.input)
        total = squares = count = 0
        for start in range(0, len(images), batch_size):
            values = keras.ops.convert_to_numpy(probe(images[start:start + batch_size], training=False))
            values = np.moveaxis(values.astype("float64"), layer.axis, -1).reshape(-1, values.shape[layer.axis])
            total, squares = total + values.sum(axis=0), squares + (values ** 2).sum(axis=0)
            count += len(values)
        mean = total / count
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(np.maximum(squares / count - mean ** 2, 0.0).astype("float32"))
'''
CATCH_UP_CALL = f'''    batches = args.epochs * math.ceil(0.9 * len(x_train) / BATCH_SIZE)  # fit keeps 10 % for validation
    if {MOMENTUM!r} ** batches >= {BATCH_NORMALIZATION_LAG_LIMIT!r}:  # the running averages are not 99 % of the way there
        catch_up_batch_normalization(model, x_train[:{BATCH_NORMALIZATION_IMAGES}])
        print(f"A short run ({{batches}} batches): BatchNormalization's running averages were re-estimated "
              f"on {{min(len(x_train), {BATCH_NORMALIZATION_IMAGES}):,}} training images.")
'''


class CodeError(LabError):
    """Settings the script cannot be written for, with what to change."""


def _layer_code(layer: dict) -> str:
    """One layer as the notebook writes it, e.g. layers.Conv2D(64, kernel_size=(3, 3), activation="relu")."""
    kind = layer["type"]
    if kind == "Conv2D":
        arguments = [str(layer["filters"]), f"kernel_size={tuple(layer['kernel_size'])}"]
        if layer["strides"] != [1, 1]:
            arguments.append(f"strides={tuple(layer['strides'])}")
        if layer["padding"] != "valid":
            arguments.append(f'padding="{layer["padding"]}"')
        arguments.append(f'activation="{layer["activation"]}"')
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        arguments = [f"pool_size={tuple(layer['pool_size'])}"]
        if layer["strides"] is not None:
            arguments.append(f"strides={tuple(layer['strides'])}")
    elif kind == "BatchNormalization":
        arguments = [] if layer["axis"] == -1 else [f"axis={layer['axis']}"]
    elif kind == "Dropout":
        arguments = [repr(layer["rate"])]
    elif kind == "Dense":
        arguments = [str(layer["units"]), f'activation="{layer["activation"]}"']
    else:
        arguments = []
    return f"layers.{kind}({', '.join(arguments)})"


def _settings(settings: dict | None) -> dict:
    values = {**DEFAULT_SETTINGS, **(settings or {})}
    for key in ("epochs", "batch_size"):
        if isinstance(values[key], bool) or not isinstance(values[key], int) or values[key] < 1:
            raise CodeError(f"{key.replace('_', ' ').capitalize()} must be a whole number of at least 1.")
    if values["train_size"] is not None and (isinstance(values["train_size"], bool)
                                             or not isinstance(values["train_size"], int)
                                             or values["train_size"] < 1):
        raise CodeError("The number of training images must be a whole number of at least 1, or empty for all.")
    if values["optimizer"] not in OPTIMIZER_CODE:
        raise CodeError(f"The script can use the optimizers {', '.join(OPTIMIZER_CODE)}, "
                        f"not {values['optimizer']!r}.")
    rate = values["learning_rate"]
    if rate is None:
        rate = OPTIMIZERS[values["optimizer"]].default_learning_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        raise CodeError("The learning rate must be a number above 0.")
    if values["schedule"] not in SCHEDULES:
        raise CodeError(f"The script knows the schedules {', '.join(SCHEDULES)}, "
                        f"not {values['schedule']!r}.")
    return {**values, "learning_rate": float(rate)}


def keras_script(layers: list, settings: dict | None = None, name: str = "mnist_cnn") -> str:
    """The script for these layers (the output layer is added, as the lab builds it) and settings (epochs,
    batch_size, optimizer, learning_rate, train_size, schedule; missing ones take the lab's defaults).

    Raises ArchitectureError for an architecture the lab would refuse, CodeError for settings it cannot use.
    """
    analyze(layers)
    layers = normalize_layers(layers)
    values = _settings(settings)
    model_lines = "\n".join(f"        {_layer_code(layer)}," for layer in layers)
    rate = values["learning_rate"]
    if values["schedule"] == "warmup-cosine":
        rate_code = (f"keras.optimizers.schedules.CosineDecay(\n"
                     f"        0.0, decay_steps=max(1, total_steps - warmup_steps), warmup_target={rate!r},\n"
                     f"        warmup_steps=warmup_steps)")
        schedule_lines = (f"    total_steps = args.epochs * math.ceil(len(x_train) / BATCH_SIZE)\n"
                          f"    warmup_steps = int(total_steps * {WARMUP_FRACTION!r})\n")
    elif values["schedule"] == "one-cycle":  # as training.learning_rate_schedule (a test checks)
        start = float(f"{rate * ONE_CYCLE_START:.6g}")
        rate_code = (f"keras.optimizers.schedules.CosineDecay(\n"
                     f"        {start!r}, decay_steps=max(1, total_steps - rise_steps), alpha={ONE_CYCLE_END!r},\n"
                     f"        warmup_target={rate!r}, warmup_steps=rise_steps)")
        schedule_lines = ("    # one cycle: from a 25th of the rate up to it over 30 % of the steps, then down\n"
                          "    total_steps = args.epochs * math.ceil(len(x_train) / BATCH_SIZE)\n"
                          f"    rise_steps = int(total_steps * {ONE_CYCLE_RISE!r})\n")
    else:
        rate_code, schedule_lines = repr(rate), ""
    optimizer = OPTIMIZER_CODE[values["optimizer"]].format(rate=rate_code)
    train_size = "None" if values["train_size"] is None else str(values["train_size"])
    title = " ".join(str(name).split())[:60] or "mnist_cnn"
    normalized = any(layer["type"] == "BatchNormalization" for layer in layers)
    catch_up_code, catch_up_call = (CATCH_UP_CODE, CATCH_UP_CALL) if normalized else ("", "")
    return f'''r"""{title.replace('"', "'")}: a CNN for MNIST, written by MNIST Lab in the notebook's style.

Run it with Keras 3 and numpy installed:  python this_file.py [--epochs N] [--train-size N]
MNIST is read from the npz file named in MNIST_LAB_DATA if set, else downloaded by Keras.
"""

import argparse
import math
import os

import keras
import numpy as np
from keras import layers

EPOCHS = {values["epochs"]}
BATCH_SIZE = {values["batch_size"]}
TRAIN_SIZE = {train_size}  # None: all 60,000 training images


def load_mnist():
    path = os.environ.get("MNIST_LAB_DATA")
    if path:
        with np.load(path) as data:
            return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
    return keras.datasets.mnist.load_data()


def build_model():
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
{model_lines}
        layers.Dense(10, activation="softmax"),
    ])
{catch_up_code}

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--train-size", type=int, default=TRAIN_SIZE)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_mnist()
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    x_train = (x_train.astype("float32") / 255.0)[..., None]  # pixels to 0..1, one channel
    x_test = (x_test.astype("float32") / 255.0)[..., None]

    model = build_model()
    model.summary()  # before training: afterwards Keras adds the optimizer's own variables to the total
{schedule_lines}    model.compile(optimizer={optimizer},
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=args.epochs, validation_split=0.1)
{catch_up_call}    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test accuracy: {{accuracy:.4f}} (loss {{loss:.4f}})")


if __name__ == "__main__":
    main()
'''


def run_script(meta: dict) -> str:
    """The script of a stored run (its run.json): its architecture, trained with its settings; the same
    text as `python -m mnist_lab code --run RUN_ID`."""
    architecture, settings = meta.get("architecture") or {}, meta.get("settings") or {}
    name = architecture.get("label") or architecture.get("name") or "mnist_cnn"
    return keras_script(architecture.get("layers") or [], settings, name)


def run_script_summary(meta: dict) -> str:
    """One or two sentences on what a run's script does, and what of the run it leaves out."""
    values = _settings(meta.get("settings"))
    optimizer = OPTIMIZERS[values["optimizer"]].label
    schedule = "" if values["schedule"] == "constant" else f", schedule {values['schedule']}"
    images = "all training images" if values["train_size"] is None else f"{values['train_size']:,} training images"
    text = (f"One script that needs only Keras and numpy: it builds this run's net and trains it as the run did, "
            f"{values['epochs']} epoch{'s' if values['epochs'] != 1 else ''} on {images} in batches of "
            f"{values['batch_size']} with {optimizer} at {values['learning_rate']:g}{schedule}, then tests it.")
    if (meta.get("settings") or {}).get("augment"):
        text += " Unlike the run, it does not augment the digits."
    return text + " Try it quickly with `python this_file.py --epochs 1 --train-size 2000`."
