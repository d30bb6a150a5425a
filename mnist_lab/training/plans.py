"""The Train page's form without Streamlit: the settings a chosen net starts from, and the one-click plans.

Choosing a preset fills in its recipe: the notebook's settings for the notebook's nets, with what the
preset itself recommends on top (Preset.training). Saved and edited nets keep what the form holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mnist_lab.training.settings import OPTIMIZERS, SCHEDULES, VALIDATION_CHOICES, TrainSettings, preset_training_defaults


@dataclass(frozen=True)
class Plan:
    """A one-click plan: how many images (None: all there are), epochs and batch size.

    `adjustments` change the plan for one preset, with the reason in `notes`: a net that the general plan
    leaves short of what the plan promises gets what it needs, and the page says so.
    """

    key: str
    label: str
    train_size: int | None
    epochs: int
    batch_size: int
    description: str
    adjustments: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def values(self, most: int, preset: str | None = None) -> dict:
        """The form's values for this plan (for this preset, if given), where `most` training images are
        available."""
        values = {"train_size": self.train_size, "epochs": self.epochs, "batch_size": self.batch_size,
                  **self.adjustments.get(preset, {})}
        values["train_size"] = most if values["train_size"] is None else min(values["train_size"], most)
        return values

    def note(self, preset: str | None) -> str | None:
        """Why this preset's plan differs from the general one (None: it does not)."""
        return self.notes.get(preset)


PLANS: dict[str, Plan] = {
    plan.key: plan
    for plan in (
        Plan("quick", "Quick demo", 10_000, 1, 32,
             "10,000 images once, in batches of 32: some 300 small steps, enough for every preset to pass 90 % "
             "test accuracy in a minute or two.",
             adjustments={"seed-7layer": {"schedule": "warmup-cosine", "learning_rate": 0.003}},
             notes={"seed-7layer": "seed-7layer's quick demo warms its learning rate up to 0.003, then lets it "
                                   "fall along a cosine: at the notebook's constant 0.001 its 313 steps left it at "
                                   "88.5 % test accuracy, short of the 90 % the quick demo is for."}),
        Plan("notebook", "The notebook's plan", None, 12, 128,
             "Every training image, 12 times over, in batches of 128, as the notebook trained.",
             adjustments={"seed-7layer": {"schedule": "constant", "learning_rate": 0.001}}),  # undoes the quick demo's
    )
}

def describe(plan: Plan, most: int, preset: str | None = None) -> str:
    """One line for the page: "Quick demo: 10,000 images, 1 epoch, batch 32"."""
    values = plan.values(most, preset)
    return (f"{plan.label}: {values['train_size']:,} images, {values['epochs']} "
            f"epoch{'s' if values['epochs'] != 1 else ''}, batch {values['batch_size']}")


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
