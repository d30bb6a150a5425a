"""The Train page's form without Streamlit: the settings a chosen net starts from, and the one-click plans.

Choosing a preset fills in its recipe: the notebook's settings for the notebook's nets, with what the
preset itself recommends on top (Preset.training). Saved and edited nets keep what the form holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnist_lab.training.settings import OPTIMIZERS, SCHEDULES, VALIDATION_CHOICES, TrainSettings, preset_training_defaults


@dataclass(frozen=True)
class Plan:
    """A one-click plan: how many images (None: all there are), epochs and batch size."""

    key: str
    label: str
    train_size: int | None
    epochs: int
    batch_size: int
    description: str

    def values(self, most: int) -> dict:
        """The form's values for this plan, where `most` training images are available."""
        size = most if self.train_size is None else min(self.train_size, most)
        return {"train_size": size, "epochs": self.epochs, "batch_size": self.batch_size}


PLANS: dict[str, Plan] = {
    plan.key: plan
    for plan in (
        Plan("quick", "Quick demo", 10_000, 1, 32,
             "10,000 images once, in batches of 32: some 300 small steps, enough for every preset to pass 90 % "
             "test accuracy in a minute or two."),
        Plan("notebook", "The notebook's plan", None, 12, 128,
             "Every training image, 12 times over, in batches of 128, as the notebook trained."),
    )
}

_CHOICES = {"optimizer": tuple(OPTIMIZERS), "validation": tuple(VALIDATION_CHOICES), "schedule": tuple(SCHEDULES)}


def recipe(source: str, name: str) -> dict:
    """The settings choosing this net fills in (empty for a saved or edited net)."""
    if source != "preset":
        return {}
    notebook = TrainSettings()
    values = {"epochs": notebook.epochs, "batch_size": notebook.batch_size, "optimizer": notebook.optimizer,
              "learning_rate": OPTIMIZERS[notebook.optimizer].default_learning_rate, "schedule": notebook.schedule,
              **preset_training_defaults(name)}
    return {setting: value for setting, value in values.items()
            if setting not in _CHOICES or value in _CHOICES[setting]}


def form_defaults() -> dict:
    """What a new form holds before anything is chosen: the notebook's settings."""
    defaults = TrainSettings()
    return {"epochs": defaults.epochs, "batch_size": defaults.batch_size, "optimizer": defaults.optimizer,
            "learning_rate": OPTIMIZERS[defaults.optimizer].default_learning_rate, "validation": defaults.validation,
            "seed": defaults.seed, "augment": defaults.augment, "schedule": defaults.schedule, "name": ""}
