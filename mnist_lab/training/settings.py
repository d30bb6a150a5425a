"""How a run trains: the settings with their checks and defaults, and the one registry of optimizers and
learning-rate schedules that the pages, the command line and the fit loop all read."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from mnist_lab.architecture.presets import PRESETS
from mnist_lab.errors import LabError, shown_value


class SettingsError(LabError):
    """A training setting that cannot be used; the message says what to change."""


MAX_EPOCHS = 200
MAX_BATCH_SIZE = 4096
MIN_IMAGES = 10
DEFAULT_HOLDOUT = 5000
MAX_NAME_LENGTH = 80
VALIDATION_CHOICES = {
    "holdout": "Held-out training images (recommended)",
    "test": "The 10,000 test images (as the notebook did)",
}
TEST_VALIDATION_NOTE = ("Choosing epochs or settings by their test score and then reporting that score "
                        "flatters it: the test images are no longer unseen.")


# --- optimizers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptimizerChoice:
    """One optimizer the lab offers: the registry below is the only place optimizers are defined."""

    key: str
    label: str
    default_learning_rate: float
    description: str

    def build(self, learning_rate: float):
        import keras

        if self.key == "adam":
            return keras.optimizers.Adam(learning_rate=learning_rate)
        if self.key == "adadelta":
            return keras.optimizers.Adadelta(learning_rate=learning_rate)
        if self.key == "sgd":
            return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
        raise SettingsError(f"No builder for optimizer {self.key!r}.")


OPTIMIZERS: dict[str, OptimizerChoice] = {
    choice.key: choice
    for choice in (
        OptimizerChoice("adam", "Adam", 0.001,
                        "The notebook's choice: adapts each weight's step size; works well untuned."),
        OptimizerChoice("adadelta", "Adadelta", 1.0,
                        "Adapts step sizes from recent updates; Keras' classic MNIST example used it "
                        "with learning rate 1.0."),
        OptimizerChoice("sgd", "SGD with momentum 0.9", 0.01,
                        "Plain gradient descent that keeps 90 % of its last step: simple, needs a "
                        "well-chosen learning rate."),
    )
}


@dataclass(frozen=True)
class ScheduleChoice:
    """One learning-rate schedule the lab offers: its short name on the Train page and what it does."""

    key: str
    label: str
    description: str


SCHEDULES: dict[str, ScheduleChoice] = {
    choice.key: choice
    for choice in (
        ScheduleChoice("constant", "Constant (as the notebook)",
                       "The same learning rate from the first step to the last, as the notebook trains."),
        ScheduleChoice("warmup-cosine", "Warm up, then cosine decay",
                       "Rises from 0 to the learning rate over the first tenth of the steps, then falls back to "
                       "0 along a cosine: careful first steps, big steps while the loss is high, fine ones at the "
                       "end."),
        ScheduleChoice("one-cycle", "One cycle: up, then cosine decay",
                       "Starts at a 25th of the learning rate, rises to it over the first 30 % of the steps, then "
                       "falls along a cosine to almost 0: one cycle made for a single epoch (Smith's one-cycle "
                       "policy, as PyTorch's OneCycleLR)."),
    )
}
WARMUP_FRACTION = 0.1
ONE_CYCLE_RISE = 0.3  # the share of the steps spent rising
ONE_CYCLE_START = 1 / 25  # the first rate, as a share of the learning rate
ONE_CYCLE_END = 1 / 25 / 10_000  # the last rate, as a share of the learning rate


def learning_rate_schedule(settings: "TrainSettings"):
    """What the optimizer gets as its learning rate: a number, or a Keras schedule over all the steps."""
    if settings.schedule == "constant":
        return settings.learning_rate
    import keras

    total = settings.epochs * settings.steps_per_epoch()
    if settings.schedule == "one-cycle":
        rise = int(total * ONE_CYCLE_RISE)
        return keras.optimizers.schedules.CosineDecay(
            settings.learning_rate * ONE_CYCLE_START, decay_steps=max(1, total - rise), alpha=ONE_CYCLE_END,
            warmup_target=settings.learning_rate, warmup_steps=rise)
    warmup = int(total * WARMUP_FRACTION)
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, total - warmup),
                                                  warmup_target=settings.learning_rate, warmup_steps=warmup)


# --- settings -------------------------------------------------------------------------------------

def _whole(value, what, minimum, maximum):
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer))
            or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
        raise SettingsError(f"{what} must be a whole number, not {shown_value(value)}.")
    value = int(value)
    if not minimum <= value <= maximum:
        shown = f"{value:,}" if abs(value) < 10**15 else f"a number of {len(str(abs(value)))} digits"
        raise SettingsError(f"{what} must be from {minimum:,} to {maximum:,}, not {shown}.")
    return value


@dataclass(frozen=True)
class TrainSettings:
    """How to train. None means: the optimizer's default rate, all images, the default hold-out."""

    epochs: int = 12
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None
    train_size: int | None = None
    validation: str = "holdout"
    validation_size: int | None = None
    seed: int = 1
    augment: bool = False
    schedule: str = "constant"

    @classmethod
    def from_dict(cls, values: dict) -> "TrainSettings":
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"Unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)

    def resolve(self, train_available: int, test_available: int = 10_000) -> "TrainSettings":
        """Check every setting and fill in the defaults; raises ValueError saying what to change."""
        epochs = _whole(self.epochs, "Epochs", 1, MAX_EPOCHS)
        batch_size = _whole(self.batch_size, "Batch size", 1, MAX_BATCH_SIZE)
        if self.optimizer not in OPTIMIZERS:
            raise SettingsError(f"Unknown optimizer {shown_value(self.optimizer)}; use one of: {', '.join(OPTIMIZERS)}.")
        learning_rate = self.learning_rate
        if learning_rate is None:
            learning_rate = OPTIMIZERS[self.optimizer].default_learning_rate
        if (isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float))
                or not math.isfinite(learning_rate) or not 0 < learning_rate <= 10):
            raise SettingsError(f"The learning rate must be a number above 0 and at most 10, not {shown_value(learning_rate)}.")
        if self.schedule not in SCHEDULES:
            raise SettingsError(f"Unknown learning-rate schedule {shown_value(self.schedule)}; use one of: {', '.join(SCHEDULES)}.")
        if self.validation not in VALIDATION_CHOICES:
            raise SettingsError(f"Validation must be one of: {', '.join(VALIDATION_CHOICES)}; not {shown_value(self.validation)}.")
        seed = _whole(self.seed, "The seed", 0, 2**31 - 1)
        if self.validation == "test":
            validation_size = test_available
            most = train_available
        else:
            validation_size = self.validation_size
            if validation_size is None:
                validation_size = default_holdout(train_available)
            validation_size = _whole(validation_size, "Held-out validation images", MIN_IMAGES,
                                     max(MIN_IMAGES, train_available - MIN_IMAGES))
            most = train_available - validation_size
        train_size = most if self.train_size is None else _whole(self.train_size, "Training images", MIN_IMAGES,
                                                                 train_available)
        if train_size > most:
            raise SettingsError(
                f"{train_size:,} training images plus {validation_size:,} held out for validation is more than "
                f"the {train_available:,} training images there are: train on at most {most:,}, hold out "
                "fewer, or validate on the test images.")
        return replace(self, epochs=epochs, batch_size=batch_size, learning_rate=float(learning_rate),
                       train_size=train_size, validation_size=validation_size, seed=seed,
                       augment=bool(self.augment))

    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_size / self.batch_size)


def default_holdout(train_available: int) -> int:
    """5,000 held-out images for MNIST's 60,000 (as Keras' classic 55,000/5,000 split); a sixth of fewer."""
    return max(MIN_IMAGES, min(DEFAULT_HOLDOUT, train_available // 6))


def settings_fields() -> tuple[str, ...]:
    return tuple(item.name for item in fields(TrainSettings))


def clean_run_name(name: str | None, architecture: dict, settings: TrainSettings) -> str:
    """The learner's name for a run (trimmed), or a descriptive default."""
    name = (name or "").strip()
    if not name:
        label = architecture.get("label") or architecture["name"]
        images = f"{settings.train_size // 1000}k" if settings.train_size >= 1000 else str(settings.train_size)
        return f"{label} · {settings.epochs} epoch{'s' if settings.epochs != 1 else ''} · {images} images"
    if len(name) > MAX_NAME_LENGTH:
        raise SettingsError(f"The run name is {len(name)} characters long; use at most {MAX_NAME_LENGTH}.")
    if any(not character.isprintable() for character in name):
        raise SettingsError("The run name contains a control character (such as a line break): use plain text.")
    return name


def preset_training_defaults(preset_id: str) -> dict:
    """The settings a preset recommends (Preset.training), limited to the settings the lab knows."""
    preset = PRESETS.get(preset_id)
    known = set(settings_fields())
    return {key: value for key, value in (preset.training if preset else {}).items() if key in known}


TRAINING_SIZE_CHOICES = (1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000)
LEARNING_RATE_CHOICES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
BATCH_SIZE_CHOICES = (16, 32, 64, 128, 256, 512, 1024)


def training_size_choices(most: int) -> list[int]:
    """Round numbers of training images up to `most`, then `most` itself (all there are)."""
    return [size for size in TRAINING_SIZE_CHOICES if size < most] + [most]


