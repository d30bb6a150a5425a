"""What the Train page shows that is not Streamlit: the form (the recipe a chosen net fills in, the plans,
the sliders' choices, the settings they make) and the sentences and charts of the runs being watched.
Kept here so that the page is a description of its UI and each answer is tested without a browser."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_lab import data, training
from mnist_lab.architecture import sources
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import ArchitectureReport, analyze
from mnist_lab.errors import LabError
from mnist_lab.presentation import (chart_spec, describe_settings, format_duration, plural, progress_line,
                                    result_notes, time_left)
from mnist_lab.runs import ACTIVE, RunStatus
from mnist_lab.training import plans
from mnist_lab.training.phases import Phase
from mnist_lab.views.markdown import plain
from mnist_lab.views.runs import status_badge

LONG_EPOCH_SECONDS = 60  # past this, an epoch is long for a lesson and the page offers faster ways
LISTED_RUNS = 8  # rows of each list of runs


class TrainForm:
    """The Train page's form, kept in a session mapping (st.session_state) under the keys of its widgets,
    "train_<setting>". Choosing a preset fills in its recipe once; what the learner changes after that stays,
    and a saved or edited net keeps what the form holds."""

    def __init__(self, state, train_available: int, test_available: int, current: str | None, edited: bool):
        """`current` and `edited`: the net open on the Architecture page, and whether it is being edited."""
        self.state = state
        self.current = current
        self.train_available = train_available
        self.test_available = test_available
        self.holdout = training.default_holdout(train_available)
        self.options, default = sources.choices(current, edited=edited)
        if state.get("train_architecture") not in self.options:
            state["train_architecture"] = default
        if state.get("train_defaults_for") != state["train_architecture"]:
            self.fill_recipe()
        for setting, value in plans.form_defaults().items():
            state.setdefault(f"train_{setting}", value)

    def fill_recipe(self) -> None:
        """Fill in the chosen net's recipe (nothing for a saved or edited net)."""
        source, _, name = self.state["train_architecture"].partition(":")
        for setting, value in plans.recipe(source, name).items():
            self.state[f"train_{setting}"] = value
        self.state["train_defaults_for"] = self.state["train_architecture"]

    def preset(self) -> str | None:
        """The preset being trained (None for a saved or edited net): a plan may differ for it."""
        source, _, name = self.state["train_architecture"].partition(":")
        return name if source == "preset" else None

    def images_to_train_on(self) -> int:
        """All the training images, less the held-out ones when validating on those."""
        held_out = self.holdout if self.state.get("train_validation") == "holdout" else 0
        return self.train_available - held_out

    def apply_plan(self, plan: plans.Plan) -> None:
        for setting, value in plan.values(self.images_to_train_on(), self.preset()).items():
            self.state[f"train_{setting}"] = value

    def reset_learning_rate(self) -> None:
        """A new optimizer starts from its own default rate: Adadelta's 1.0 would make Adam diverge."""
        self.state["train_learning_rate"] = training.OPTIMIZERS[self.state["train_optimizer"]].default_learning_rate

    def plans_caption(self) -> str:
        """Each plan in a few words, and why a plan differs for this preset."""
        preset = self.preset()
        described = [plans.describe(plan, self.images_to_train_on(), preset) for plan in plans.PLANS.values()]
        notes = [note for plan in plans.PLANS.values() if (note := plan.note(preset))]
        return " · ".join(described + notes)

    def with_current(self, choices: tuple, setting: str) -> list:
        """A slider's round values plus the current one (a preset may recommend, say, a rate of 0.004)."""
        key = f"train_{setting}"
        return sorted(set(choices) | ({self.state[key]} if key in self.state else set()))

    def training_sizes(self) -> list[int]:
        """The training-image slider's choices. A value it no longer offers (validation moved the ceiling)
        moves to the nearest one that it does."""
        most = self.images_to_train_on()
        sizes = training.training_size_choices(most)
        current = self.state.get("train_train_size")
        if current not in sizes:
            self.state["train_train_size"] = min(sizes, key=lambda size: abs(size - (current or most)))
        return sizes

    def training_size_label(self, size: int) -> str:
        return f"{size:,}" + (" (all)" if size == self.images_to_train_on() else "")

    def validation_labels(self) -> dict[str, str]:
        """The registry's labels, with the number of test images there are."""
        return {**training.VALIDATION_CHOICES,
                "test": f"The {self.test_available:,} test images (as the notebook did)"}

    def validation_note(self) -> str:
        if self.state["train_validation"] == "test":
            return f":material/warning: {training.TEST_VALIDATION_NOTE}"
        return f"{self.holdout:,} training images are set aside for validation (never trained on)."

    def settings(self) -> training.TrainSettings:
        """The settings the form holds, as the widgets left them (checked when the run is prepared); all the
        images until the training-image slider has been drawn."""
        state = self.state
        return training.TrainSettings(
            epochs=int(state["train_epochs"]), batch_size=int(state["train_batch_size"]),
            optimizer=state["train_optimizer"], learning_rate=float(state["train_learning_rate"]),
            train_size=int(state.get("train_train_size", self.images_to_train_on())),
            validation=state["train_validation"], seed=int(state["train_seed"]), augment=bool(state["train_augment"]),
            schedule=state["train_schedule"])

    def architecture(self, prepare, layers: list | None) -> tuple[dict, ArchitectureReport]:
        """The chosen net as `prepare` (the manager's) checks it for one epoch on every image: (architecture,
        report). `layers`: the net open on the Architecture page, when it is edited there. Raises LabError or
        OSError when the net cannot be trained."""
        architecture = sources.from_choice(self.state["train_architecture"], layers, self.current)
        architecture, report, _, _ = prepare(architecture, training.TrainSettings(epochs=1, train_size=None))
        return architecture, report

    def submission(self, prepare, architecture: dict, name: str | None):
        """What Train would submit, checked by `prepare`: ((architecture, report, settings, run name), None),
        or (None, why it cannot be submitted)."""
        try:
            return prepare(architecture, self.settings(), name), None
        except LabError as error:
            return None, str(error)

    def long_run_advice(self, calibration, report, estimate) -> str | None:
        """For epochs too long for a lesson: what the quick demo would take, and a net that is cheaper."""
        if estimate.epoch_seconds <= LONG_EPOCH_SECONDS:
            return None
        quick = training.TrainSettings(**plans.PLANS["quick"].values(self.images_to_train_on(), self.preset()),
                                       validation=self.state["train_validation"])
        quick = quick.resolve(self.train_available, self.test_available)
        quick_estimate = training.estimate_epoch(calibration, report, quick)
        return (f"That is long for a lesson. The quick demo ({quick.train_size:,} images, "
                f"{plural(quick.epochs, 'epoch')}) takes ≈ {format_duration(quick_estimate.run_seconds)}, and a net "
                f"with fewer multiply-adds per image, such as {cheapest_preset()}, is far faster.")


def cheapest_preset() -> str:
    """The preset with the fewest multiply-adds per image: the fastest to train."""
    return min(PRESETS,
               key=lambda preset: analyze(preset_layers(preset)).multiply_adds)


def augmentation_preview():
    """Ten training digits and two augmented versions of each, as one picture."""
    from mnist_lab.images import augmentation
    from mnist_lab.images.gallery import digit_grid

    originals = data.to_model_input(data.overview(per_class=1).images)
    with training.KERAS_SETUP_LOCK:  # Keras must not build in two threads at once
        rows = [originals] + [augmentation.preview(originals, seed=seed) for seed in (1, 2)]
    return digit_grid(np.concatenate(rows), None, columns=10, scale=2)


# --- the net and its estimate ---------------------------------------------------------------------------

def architecture_caption(report: ArchitectureReport) -> str:
    return (f"{report.total_parameters:,} parameters · {report.multiply_adds / 1e6:,.1f} million multiply-adds "
            "per image · " + " → ".join(layer.label for layer in report.layers))


def estimate_headline(estimate, calibration) -> str:
    return (f":material/timer: **≈ {format_duration(estimate.run_seconds)}** from Train to the test score "
            f"on {calibration.device}")


def estimate_basis(calibration, report: ArchitectureReport) -> str:
    """Where the estimate comes from, for its help."""
    return (f"Measured on this machine ({calibration.measured[:10]}) with three small nets, then worked out for "
            f"this one from its {report.multiply_adds:,} multiply-adds per image and the values its layers write, "
            "for the images and batch size chosen.")


def estimate_pending(speed_error: str | None, training_now: bool) -> str:
    """Why there is no estimate yet."""
    if speed_error:
        return speed_error
    if training_now:
        return "The time estimate is measured when no run is training on this server."
    return ":material/speed: Measuring this machine's speed (a few seconds, once)…"


def started_message(run_name: str, queued: bool) -> str:
    return f"{'Queued' if queued else 'Started'} {plain(run_name)}"


def capacity_caption(counts: dict) -> str:
    return (f"This server trains {plural(counts['max_concurrent'], 'run')} at a time; others wait in a queue "
            f"(at most {counts['max_queued']}).")


# --- the run being watched ------------------------------------------------------------------------------

def watched_run(requested: str | None, runs: list[dict], actor) -> str | None:
    """The run asked for (by the address or earlier in the session) while it is listed; else the actor's
    own latest run: the one training, else the newest; else none."""
    if requested in {meta["id"] for meta in runs}:
        return requested
    mine = [meta for meta in runs if actor.owns(meta)]
    active = [meta["id"] for meta in mine if meta["status"] in ACTIVE]
    return active[0] if active else (mine[0]["id"] if mine else None)


def starting(meta: dict, snapshot: dict, queue_position: int | None) -> bool:
    """Handed to a training process, which has not yet said so in the run's record."""
    return (meta["status"] == RunStatus.QUEUED and snapshot.get("status") == RunStatus.RUNNING
            and queue_position is None)


def run_estimate(calibration, meta: dict):
    """The estimate for this run's net and settings (None until this machine's speed is known, or for a
    record whose net or settings no longer read)."""
    layers = (meta.get("architecture") or {}).get("layers")
    if calibration is None or not layers:
        return None
    try:
        return training.estimate_epoch(calibration, analyze(layers),
                                       training.TrainSettings.from_dict(meta["settings"]))
    except (LabError, ValueError, TypeError, KeyError):
        return None


def queue_message(position: int | None, start_seconds: float | None) -> str:
    """A queued run's place and expected start; without a place in this server's queue it has been handed
    to a training process (or waits in another process's), and no slot need free up for it."""
    if position is None:
        return "About to start: it begins by itself in a moment; you can leave this page meanwhile."
    when = f", expected to start in about {format_duration(start_seconds)}" if start_seconds is not None else ""
    return (f"Waiting in the queue: number {position}{when}. It starts by itself when a training slot frees up; "
            "you can leave this page meanwhile.")


@dataclass(frozen=True)
class Progress:
    fraction: float  # of the whole run, 0 to 1
    text: str  # on the bar
    caption: str  # under it: elapsed, left, speed


def progress(meta: dict, snapshot: dict, estimate=None) -> Progress:
    """A training run's progress bar; a queued run that a process has taken shows its first step."""
    epoch, epochs = snapshot.get("epoch") or 1, snapshot.get("epochs") or meta["settings"]["epochs"]
    batch, batches = snapshot.get("batch") or 0, snapshot.get("batches") or 1
    fraction = min(1.0, ((epoch - 1) + batch / batches) / epochs)
    shown = snapshot if meta["status"] == RunStatus.RUNNING else dict(snapshot, phase=Phase.QUEUED)
    left, estimated = time_left(snapshot, estimate)
    speed = snapshot.get("images_per_second")
    caption = (f"Elapsed **{format_duration(snapshot.get('elapsed'), compact=True)}** · Time left "
               f"**{'≈ ' if estimated else ''}{format_duration(left, compact=True)}**"
               f"{' (estimated before the start)' if estimated else ''} · "
               f"**{f'{speed:,.0f}' if speed else '–'}** images / second")
    return Progress(fraction, progress_line(shown, epochs), caption)


@dataclass(frozen=True)
class Outcome:
    """How a run ended, in one message of a kind ("success", "warning", "error"), and what it means."""

    kind: str
    text: str
    icon: str
    notes: tuple[str, ...] = ()


def outcome(meta: dict, history: list[dict], test_available: int) -> Outcome | None:
    """None while the run is queued or training."""
    status, accuracy = meta["status"], meta.get("test_accuracy")
    if status == RunStatus.DAMAGED:
        return Outcome("error", plain(meta.get("problem") or "This run's files are damaged."),
                       ":material/error:")
    if status == RunStatus.COMPLETED and accuracy is not None:
        loss = f" (test loss {meta['test_loss']:.4f})" if meta.get("test_loss") is not None else ""
        message = ("success", f"Done: **{100 * accuracy:.2f} %** of the {test_available:,} test images right"
                              f"{loss} after {len(history)} epoch(s).", ":material/check_circle:")
    elif status == RunStatus.STOPPED:
        kept = f" Test accuracy of the kept model: {100 * accuracy:.2f} %." if accuracy is not None else ""
        message = ("warning", f"{meta.get('message') or 'Stopped.'}{kept}", ":material/stop_circle:")
    elif status == RunStatus.FAILED:
        message = ("error", meta.get("message") or "The run failed.", ":material/error:")
    elif status == RunStatus.INTERRUPTED:
        message = ("warning", meta.get("message") or "The server stopped during this run.", ":material/warning:")
    else:
        return None
    return Outcome(*message, notes=tuple(result_notes(meta, history)))


def charts(meta: dict, snapshot: dict, history: list[dict]) -> list[dict]:
    """The loss and accuracy charts' specs; none before the first batches."""
    if not snapshot.get("curve") and not history:
        return []
    epochs = (meta.get("settings") or {}).get("epochs") or 1
    return [chart_spec(snapshot, history, metric, epochs) for metric in ("loss", "accuracy")]


def chart_caption(snapshot: dict) -> str:
    return (f"Light blue: loss and accuracy of each training batch, smoothed over about 20 batches "
            f"({snapshot.get('batches_done') or 0:,} batches so far, {len(snapshot.get('curve') or [])} points). "
            "Dots: means over each whole epoch, on the training images (dark blue) and on the validation images "
            "(orange), as the notebook plotted them. Validation getting worse while training improves means "
            "overfitting.")


def watched_title(meta: dict, owned: bool) -> str:
    """"Your run: …" or "Ada's run: …", without the owner's name that a default run name begins with."""
    owner = meta.get("owner_name") or ""
    name = meta["name"].removeprefix(f"{owner} · ") if owner else meta["name"]
    whose = "Your run" if owned else f"{owner}'s run" if owner else "Watching"
    return f"{whose}: {plain(name)}"


def stop_refusal(meta: dict) -> str:
    return (f"{plain(meta.get('owner_name') or 'Another learner')}'s run: only they or the teacher can "
            "stop it.")


def select_for_comparison(state, run_id: str) -> None:
    """Add the run to the runs the Compare page shows (the session's "selected_run_ids"), once."""
    selected = state.setdefault("selected_run_ids", [])
    if run_id not in selected:
        selected.append(run_id)


def run_details(meta: dict) -> str:
    """The net, its size, the settings and the device, in one line."""
    architecture = meta.get("architecture") or {}
    device = f" · {meta['device']}" if meta.get("device") else ""
    return (f"{plain(architecture.get('label') or architecture.get('name'))} · "
            f"{meta.get('parameters') or 0:,} parameters · {describe_settings(meta.get('settings') or {})}{device}")


# --- the lists of runs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunRow:
    """One run in a list, as Markdown: who and what, its status and where it is, its test score."""

    name: str
    status: str
    accuracy: str


def run_row(meta: dict, show_owner: bool, queue_position: int | None) -> RunRow:
    whose = f"{plain(meta.get('owner_name') or 'command line')} · " if show_owner else ""
    name = (f"**{plain(meta['name'])}**  \n:gray[{whose}"
            f"{plain((meta.get('architecture') or {}).get('name'))} · "
            f"{(meta.get('created') or '')[:16].replace('T', ' ')} UTC]")
    where = f" · epoch {meta.get('epochs_done', 0)}/{(meta.get('settings') or {}).get('epochs')}"
    if meta["status"] == RunStatus.QUEUED and queue_position:
        where = f" · number {queue_position} in the queue"
    accuracy = (f"{100 * meta['test_accuracy']:.2f} % test" if meta.get("test_accuracy") is not None
                else ":gray[–]")
    return RunRow(name, status_badge(meta["status"]) + where, accuracy)


def class_caption(counts: dict) -> str:
    return (f"On this server now: {counts[RunStatus.RUNNING]} training, {counts[RunStatus.QUEUED]} waiting. "
            "Watch any run and compare it on the Compare page; only its learner or the teacher can stop it.")
