"""The training of a pack (packing.py): every net fitted at once, any one stopped while the others go on,
each net's history kept under a lone run's keys. Apart from packing.py, which builds the pack and hands
each net's results back."""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from mnist_lab.training.packing import NetData, Pack, PackingError, packed_batches_class


def _finite(value) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else None


@dataclass
class _Stop:
    epoch: int  # 0-based epoch during which the net stopped
    batches: int  # batches of that epoch it had trained
    weights: list = field(repr=False)


class PackedFit:
    """One training of a pack: fit every net; stop any one while the others go on; each net's history.

    `stop(index)` may be called from any thread, or from a callback. It takes effect between two batches:
    the net's weights (BatchNormalization's averages too) are kept as they are then. The net goes on
    computing inside the pack (leaving it out would mean compiling the pack anew, and a new optimizer would
    lose every net's state), but what it learns after the stop is discarded: when the fit ends, its kept
    weights are put back. The others' updates never depend on it. Once every net is stopped the fit ends.

    `on_epoch(index, row)` is called on the training thread after each epoch a net has finished (not for a
    stopped net), when the pack's weights are current (`pack.nets[index].get_weights()` are that net's);
    `callbacks` are further Keras callbacks of the pack's fit, which get the pack's logs; they run before
    the pack's own, so a stop they ask for before a batch is taken before that batch.
    """

    def __init__(self, pack: Pack, nets: Sequence[NetData], on_epoch: Callable | None = None,
                 callbacks: Sequence = ()):
        nets = list(nets)
        if len(nets) != len(pack):
            raise PackingError(f"The pack has {len(pack)} nets but data for {len(nets)} was given.")
        counts = {net.count for net in nets}
        if counts != {pack.settings.train_size}:
            raise PackingError(f"Each net must train on the settings' {pack.settings.train_size:,} images, "
                               f"not {', '.join(f'{count:,}' for count in sorted(counts))}.")
        with_validation = {net.x_validation is not None for net in nets}
        if len(with_validation) != 1:
            raise PackingError("Give every net of the pack validation images, or none.")
        self.pack = pack
        self.nets = nets
        self.on_epoch = on_epoch
        self.callbacks = list(callbacks)
        self._requested: set[int] = set()
        self._stops: dict[int, _Stop] = {}
        self._histories: list[list[dict]] = [[] for _ in nets]
        self._lock = threading.Lock()
        self._epoch = 0
        self._batches = 0  # batches trained in the current epoch
        self._fitted = False

    # controls -----------------------------------------------------------------------------------
    def stop(self, index: int) -> None:
        """Stop net `index` before the next batch: its weights then are the ones it keeps."""
        index = self.pack.check_index(index)
        with self._lock:
            self._requested.add(index)

    def is_stopped(self, index: int) -> bool:
        """Whether net `index`'s weights are kept from a stop (a stop asked for takes effect between batches)."""
        return self.pack.check_index(index) in self._stops

    def stopped_at(self, index: int) -> tuple[int, int] | None:
        """(epoch, batches): the 0-based epoch in which net `index` stopped and how many of its batches it
        had trained; None if it did not stop. (epoch, steps per epoch) means it finished that epoch."""
        stop = self._stops.get(self.pack.check_index(index))
        return None if stop is None else (stop.epoch, stop.batches)

    def kept_weights(self, index: int) -> list[np.ndarray]:
        """Net `index`'s weights as kept: from its stop, else its current ones (read them after the fit or on
        the training thread: the weights change with every batch)."""
        index = self.pack.check_index(index)
        stop = self._stops.get(index)
        return [value.copy() for value in stop.weights] if stop else self.pack.nets[index].get_weights()

    def history(self, index: int) -> list[dict]:
        """Net `index`'s history: a row per epoch it finished, with the keys of a lone run's rows (seconds:
        the pack's epoch)."""
        return [dict(row) for row in self._histories[self.pack.check_index(index)]]

    # fitting ------------------------------------------------------------------------------------
    def fit(self, verbose=0):
        """Train the pack through every epoch (or until every net is stopped), then put each stopped net's
        kept weights back. A caller that shares the process with other runs holds the set-up lock for the
        first epoch, as fitting.fit_epochs' callers do."""
        if self._fitted:
            raise PackingError("A PackedFit trains once: a second fit would not be its runs' training. "
                               "Build a new pack to train again.")
        self._fitted = True
        settings = self.pack.settings
        batches = packed_batches_class()(self.pack.names, self.pack.seeds, self.nets, settings.batch_size,
                                         settings.epochs)
        validation = None
        if self.nets[0].x_validation is not None:
            validation = ([net.x_validation for net in self.nets],
                          {name: np.asarray(net.y_validation).astype("int32")
                           for name, net in zip(self.pack.names, self.nets)})
        monitor = _monitor_class()(self, batches.steps)
        try:
            self.pack.model.fit(batches, epochs=settings.epochs, steps_per_epoch=batches.steps, shuffle=False,
                                validation_data=validation, callbacks=[*self.callbacks, monitor],
                                verbose=verbose)
        finally:
            for index, stop in self._stops.items():
                self.pack.nets[index].set_weights(stop.weights)

    # called by the monitor, on the training thread ----------------------------------------------
    def _take_stops(self, model) -> None:
        with self._lock:
            pending = sorted(self._requested - set(self._stops))
        if not pending:
            return
        model = model()  # on JAX, reading the model brings its variables up to date
        for index in pending:
            self._stops[index] = _Stop(self._epoch, self._batches, self.pack.nets[index].get_weights())
        if len(self._stops) == len(self.pack):
            model.stop_training = True

    def _begin_epoch(self, epoch: int) -> None:
        self._epoch, self._batches = epoch, 0

    def _end_epoch(self, epoch: int, logs: dict, seconds: float, steps: int, model) -> None:
        finished = [index for index in range(len(self.pack))
                    if index not in self._stops or self.stopped_at(index) == (epoch, steps)]
        if finished and self.on_epoch is not None:
            model()  # current weights for on_epoch (JAX)
        for index in finished:
            values = self.pack.net_logs(logs, index)
            row = {"epoch": epoch + 1, **{key: _finite(values.get(key))
                                          for key in ("loss", "accuracy", "val_loss", "val_accuracy")},
                   "seconds": round(seconds, 3)}
            self._histories[index].append(row)
            if self.on_epoch is not None:
                self.on_epoch(index, dict(row))


@functools.cache
def _monitor_class():
    """The Keras callback of a PackedFit, defined on first use (keeps importing this module light)."""
    import keras

    class PackMonitor(keras.callbacks.Callback):
        """Takes asked-for stops between batches and splits each epoch's logs into per-net rows. Not
        async-safe: it reads weights, so Keras must call it on the training thread, between batches."""

        def __init__(self, packed: PackedFit, steps: int):
            super().__init__()
            self.packed = packed
            self.steps = steps
            self._started = 0.0

        def current_model(self):
            return self.model

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.monotonic()
            self.packed._begin_epoch(epoch)

        def on_train_batch_begin(self, batch, logs=None):
            self.packed._take_stops(self.current_model)

        def on_train_batch_end(self, batch, logs=None):
            self.packed._batches = batch + 1
            self.packed._take_stops(self.current_model)

        def on_epoch_end(self, epoch, logs=None):
            self.packed._end_epoch(epoch, logs or {}, time.monotonic() - self._started, self.steps,
                                  self.current_model)

        def on_train_end(self, logs=None):
            self.packed._take_stops(self.current_model)

    return PackMonitor
