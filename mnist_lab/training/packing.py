"""Packed runs: several learners' runs of one architecture and batch size, trained together as one Keras model.

The pack holds one independent net per run (no weight is shared), each with its own input, its own images in
its own order and its own output; the loss is the sum of the nets' losses. A net's gradient is that of its own
loss alone, and the optimizers the lab offers (Adam, Adadelta, SGD with momentum) keep their state per weight
and clip nothing globally, so every net gets exactly the updates it would get training alone: the same seed
gives the same initial weights, the same data order and the same final weights (to float round-off). What a
pack saves is the per-batch overhead of Keras and the backend, paid once for all its nets.

Data order: a lone run that fits with shuffle=True gets an order from the global random state at fit time,
which no pack can reproduce. Here every net sees its training images in `epoch_order(seed, epoch, count)`,
fixed by its seed and the epoch alone; a lone run fitted in that order (shuffle=False) ends as its packed
twin does.

packed_fit.py trains a pack; this module says which runs can pack, builds the pack and its data, and hands
each net back as a model of its own.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from mnist_lab import data
from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.layers import INPUT_SHAPE
from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import normalize_layer
from mnist_lab.errors import LabError
from mnist_lab.evaluation.evaluation import PREDICT_BATCH
from mnist_lab.training.fitting import KERAS_SETUP_LOCK, split_indices
from mnist_lab.training.settings import OPTIMIZERS, TrainSettings, learning_rate_schedule

# The settings that must be equal for runs to train as one pack (the seed is each net's own), with the words
# a refusal names them by.
PACKED_SETTINGS = {
    "epochs": "number of epochs",
    "batch_size": "batch size",
    "optimizer": "optimizer",
    "learning_rate": "learning rate",
    "schedule": "learning-rate schedule",
    "train_size": "number of training images",
    "validation": "validation images",
    "validation_size": "number of validation images",
}
# Mixed into every epoch order's seed, so that it is unrelated to the train/validation split, which
# numpy's default_rng(seed) alone decides (fitting.split_indices).
ORDER_STREAM = 0x0DE5
# The name of the per-net loss metric: Keras' own per-output loss averages the batches of an epoch without
# weighting them by size (TensorFlow traces with an unknown batch size), so a short last batch would count
# as a full one; this metric weights every image alike, as a lone run's loss does.
LOSS_METRIC = "cross_entropy"


class PackingError(LabError):
    """Runs that cannot train as one pack, or a pack asked for something it cannot do; says what differs."""


# --- which runs can pack ------------------------------------------------------------------------------

def _normalized_layers(layers: list) -> list:
    """The layers with every default filled in, so that two spellings of one architecture compare equal."""
    analyze(layers)
    return [normalize_layer(layer, number) for number, layer in enumerate(layers, start=1)]


def _check_resolved(settings: TrainSettings) -> None:
    if settings.train_size is None or settings.learning_rate is None or settings.validation_size is None:
        raise PackingError("Pack only resolved settings (TrainSettings.resolve): the number of training "
                           "images and the learning rate must be known.")


def pack_key(layers: list, settings: TrainSettings) -> tuple:
    """What runs must share to train as one pack: runs with equal keys can pack, whatever their seeds.

    Augmentation refuses packing (PackingError): the augmentation layers draw their random transforms from
    one seed per model, so a net in a pack would not see the images its lone run would.
    """
    _check_resolved(settings)
    if settings.augment:
        raise PackingError("A run with augmentation cannot train in a pack: its random transforms would "
                           "differ from those of the same run trained alone. Train it alone.")
    shape = json.dumps(_normalized_layers(layers), sort_keys=True)
    return (shape,) + tuple(getattr(settings, name) for name in PACKED_SETTINGS)


def check_packable(runs: Sequence[tuple[list, TrainSettings]]) -> None:
    """Raise PackingError naming what differs unless every (layers, settings) run can train in one pack."""
    if not runs:
        raise PackingError("A pack needs at least one run.")
    keys = [pack_key(layers, settings) for layers, settings in runs]
    differences = []
    if any(key[0] != keys[0][0] for key in keys):
        differences.append("their architectures (layers) differ")
    for position, (name, words) in enumerate(PACKED_SETTINGS.items(), start=1):
        values = list(dict.fromkeys(key[position] for key in keys))
        if len(values) > 1:
            differences.append(f"their {words} differs ({', '.join(map(str, values))})")
    if differences:
        raise PackingError("These runs cannot train as one pack: " + "; ".join(differences) + ".")


# --- data order -----------------------------------------------------------------------------------------

def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The order in which a run of `seed` sees its `count` training images in `epoch` (0-based).

    Fixed by the seed and the epoch alone, so a lone run fitted in this order (shuffle=False) and the same
    run in a pack see the same batches.
    """
    for value, what in ((seed, "The seed"), (epoch, "The epoch"), (count, "The number of images")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{what} must be a whole number of at least 0, not {value!r}.")
    return np.random.default_rng([ORDER_STREAM, int(seed), int(epoch)]).permutation(int(count))


@dataclass(frozen=True)
class NetData:
    """One net's images: training rows of an image array that several nets may share (never copied whole,
    each batch is gathered and converted as it is needed), and the net's own validation set."""

    images: np.ndarray  # the source; `rows` says which of its rows train
    labels: np.ndarray
    rows: np.ndarray | None = None  # the training rows, in the lone run's order (None: every row)
    to_input: Callable | None = None  # makes model input of a batch of `images` (None: they already are)
    x_validation: np.ndarray | None = None
    y_validation: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.images) if self.rows is None else len(self.rows)

    def batch(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model input and int32 labels of the training images at these positions (0 to count - 1)."""
        chosen = positions if self.rows is None else self.rows[positions]
        images = self.images[chosen]
        if self.to_input is not None:
            images = self.to_input(images)
        return images, np.asarray(self.labels[chosen]).astype("int32")


def pack_data(mnist: data.Mnist, settings_list: Sequence[TrainSettings]) -> list[NetData]:
    """Each run's NetData as fitting.prepare_arrays would split and convert it, sharing MNIST's uint8 training
    images between the nets instead of one float copy each; the test images, when they validate, are
    converted once for all."""
    shared_test = None
    result = []
    for settings in settings_list:
        _check_resolved(settings)
        train, validation = split_indices(len(mnist.x_train), settings)
        if validation is None:
            if shared_test is None:
                shared_test = (data.to_model_input(mnist.x_test), mnist.y_test.astype("int32"))
            x_validation, y_validation = shared_test
        else:
            x_validation = data.to_model_input(mnist.x_train[validation])
            y_validation = mnist.y_train[validation].astype("int32")
        result.append(NetData(mnist.x_train, mnist.y_train, train, data.to_model_input, x_validation,
                              y_validation))
    return result


@functools.cache
def packed_batches_class():
    """The PyDataset class, defined on first use so that importing this module stays light."""
    import keras

    class PackedBatches(keras.utils.PyDataset):
        """Every epoch's batches of every net, one after the other: item `epoch * steps + batch` holds batch
        `batch` of `epoch` for each net, so that the batches do not depend on when Keras asks for them
        (it reads ahead, across the end of an epoch too). Fit it with steps_per_epoch=steps and
        shuffle=False."""

        def __init__(self, names: Sequence[str], seeds: Sequence[int], nets: Sequence[NetData], batch_size: int,
                     epochs: int):
            super().__init__()
            counts = {net.count for net in nets}
            if len(counts) != 1:
                raise PackingError(f"Every net of a pack trains on as many images; these have {sorted(counts)}.")
            self.names, self.seeds, self.nets = list(names), list(seeds), list(nets)
            self.batch_size, self.epochs = batch_size, epochs
            self.count = counts.pop()
            self.steps = math.ceil(self.count / batch_size)
            self._orders: dict[tuple[int, int], np.ndarray] = {}
            self._lock = threading.Lock()

        def __len__(self):
            return self.epochs * self.steps

        def _order(self, index: int, epoch: int) -> np.ndarray:
            with self._lock:
                key = (index, epoch)
                if key not in self._orders:
                    # forget orders two epochs old: Keras reads forward (an order asked for again would
                    # only be made anew, the same)
                    for old in [old for old in self._orders if old[1] < epoch - 1]:
                        del self._orders[old]
                    self._orders[key] = epoch_order(self.seeds[index], epoch, self.count)
                return self._orders[key]

        def __getitem__(self, item):
            if not 0 <= item < len(self):
                raise IndexError(f"The pack has {len(self)} batches; there is no batch {item}.")
            epoch, batch = divmod(int(item), self.steps)
            images, labels = [], {}
            for index, (name, net) in enumerate(zip(self.names, self.nets)):
                positions = self._order(index, epoch)[batch * self.batch_size:(batch + 1) * self.batch_size]
                x, y = net.batch(positions)
                images.append(x)
                labels[name] = y
            return tuple(images), labels

    return PackedBatches


# --- building ------------------------------------------------------------------------------------------

def _compile_arguments(settings: TrainSettings) -> dict:
    return {"optimizer": OPTIMIZERS[settings.optimizer].build(learning_rate_schedule(settings)),
            "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}


@dataclass
class Pack:
    """A compiled pack: `model` has one input and one output per net, named `names[index]`; `nets[index]`
    is that net's own sub-model (its weights are the pack's weights for it)."""

    model: object
    nets: list
    names: list[str]
    seeds: list[int]
    layers: list
    settings: TrainSettings

    def __len__(self):
        return len(self.nets)

    def net_logs(self, logs: dict | None, index: int) -> dict:
        """Net `index`'s part of the pack's Keras logs, under a lone run's keys (see net_logs)."""
        return net_logs(logs, self.names[self.check_index(index)], only_net=len(self) == 1)

    def check_index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self):
            raise ValueError(f"The pack has nets 0 to {len(self) - 1}; there is no net {index!r}.")
        return int(index)


def build_pack(layers: list, seeds: Sequence[int], settings: TrainSettings) -> Pack:
    """One net per seed, each built as a lone run builds it (the global seed set, then build_model), so its
    initial weights are the lone run's; joined into one model compiled with one optimizer, a loss per
    output (summed) and, per output, accuracy and a per-image cross-entropy (LOSS_METRIC).

    `settings` are the runs' shared settings (their seed is not used); raises PackingError for
    augmentation or unresolved settings.
    """
    import keras

    pack_key(layers, settings)
    seeds = list(seeds)
    if not seeds:
        raise PackingError("A pack needs at least one seed.")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= 2**31 - 1:
            raise PackingError(f"A seed must be a whole number from 0 to {2**31 - 1:,}, not {seed!r}.")
    seeds = [int(seed) for seed in seeds]
    names = [f"net_{index}" for index in range(len(seeds))]
    with KERAS_SETUP_LOCK:
        nets = []
        for seed, name in zip(seeds, names):
            keras.utils.set_random_seed(seed)
            nets.append(build_model(layers, name))
        inputs = [keras.Input(shape=INPUT_SHAPE, name=f"images_{index}")
                  for index in range(len(seeds))]
        outputs = {name: net(images) for name, net, images in zip(names, nets, inputs)}
        model = keras.Model(inputs, outputs, name="pack")
        arguments = _compile_arguments(settings)
        model.compile(
            optimizer=arguments["optimizer"],
            loss={name: "sparse_categorical_crossentropy" for name in names},
            metrics={name: ["accuracy", keras.metrics.SparseCategoricalCrossentropy(name=LOSS_METRIC)]
                     for name in names})
    return Pack(model, nets, names, seeds, layers, settings)


def net_logs(logs: dict | None, name: str, only_net: bool = False) -> dict:
    """One net's part of the pack's Keras logs (a batch's or an epoch's) under a lone run's keys: loss,
    accuracy, and val_loss and val_accuracy when the logs have them. Keras names a model's metrics after
    its outputs only when it has several: `only_net` says the pack has one (Pack.net_logs knows)."""
    logs = logs or {}
    result = {}
    for prefix in ("", "val_"):
        for key, metric in (("loss", LOSS_METRIC), ("accuracy", "accuracy")):
            value = logs.get(f"{prefix}{metric}" if only_net else f"{prefix}{name}_{metric}")
            if value is not None:
                result[prefix + key] = float(value)
    return result


# --- results ---------------------------------------------------------------------------------------------

def split_pack(pack: Pack, name: str = "mnist_cnn") -> list:
    """Each net as a model of its own, as a lone run would have it: built from the same layers, compiled
    the same way, with a copy of that net's weights and of its optimizer state (later training of the pack
    leaves it alone). It saves with model.save and loads like a lone run's model."""
    models = []
    with KERAS_SETUP_LOCK:
        for net in pack.nets:
            model = build_model(pack.layers, name)
            model.set_weights(net.get_weights())
            model.compile(**_compile_arguments(pack.settings))
            _copy_optimizer_state(pack.model.optimizer, net, model)
            models.append(model)
    return models


def copy_net(pack: Pack, index: int, model) -> None:
    """Bring `model` (one of split_pack's) up to date with net `index` of the pack: its weights and its
    optimizer state, as they are now."""
    net = pack.nets[pack.check_index(index)]
    model.set_weights(net.get_weights())
    _copy_optimizer_state(pack.model.optimizer, net, model)


def _slot_prefix(variable) -> str:
    """How Keras names an optimizer's variables for a model variable: its path, '/' made '_', then the slot."""
    return variable.path.replace("/", "_") + "_"


def _copy_optimizer_state(source, net, model) -> None:
    """Give `model`'s optimizer the pack optimizer's state for `net` (step count, Adam's averages...), so a
    saved split model holds what a lone run's file holds. Nothing is copied before the pack has trained."""
    if not source.built:
        return
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    prefixes = {_slot_prefix(mine): _slot_prefix(theirs)
                for mine, theirs in zip(model.trainable_variables, net.trainable_variables)}
    values = {variable.name: variable for variable in source.variables}
    copies = []
    for variable in optimizer.variables:
        theirs = variable.name
        for mine_prefix, their_prefix in prefixes.items():
            if theirs.startswith(mine_prefix):
                theirs = their_prefix + theirs[len(mine_prefix):]
                break
        if theirs not in values or tuple(values[theirs].shape) != tuple(variable.shape):
            raise PackingError(f"The pack's optimizer has no state {theirs!r} for its net {net.name!r}: "
                               "this version of Keras names optimizer variables differently.")
        copies.append((variable, values[theirs]))
    import keras

    for variable, value in copies:  # a copy: on JAX the pack's next step donates (frees) its state's buffers
        variable.assign(keras.ops.convert_to_numpy(value))


def evaluate_pack(pack: Pack, images: np.ndarray, labels: np.ndarray,
                  batch_size: int = PREDICT_BATCH) -> list[tuple[float, float]]:
    """(loss, accuracy) of every net on the same images, in one pass of the pack."""
    labels = np.asarray(labels).astype("int32")
    with KERAS_SETUP_LOCK:
        logs = pack.model.evaluate([images] * len(pack), {name: labels for name in pack.names},
                                   batch_size=batch_size, verbose=0, return_dict=True)
    scores = []
    for index in range(len(pack)):
        values = pack.net_logs(logs, index)
        scores.append((values["loss"], values["accuracy"]))
    return scores
