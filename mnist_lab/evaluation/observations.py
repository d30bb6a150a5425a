"""What the numbers say: a few sentences on the runs shown (most accurate, what accuracy costs, fastest,
overfitting, and whether each run tracks the notebook's net of the same architecture)."""

from __future__ import annotations

import statistics

from mnist_lab.evaluation.comparison import NOTEBOOK, RUN, Entry, is_number
from mnist_lab.views.markdown import quoted

MNIST_TRAIN_IMAGES = 60000
# Validation loss this far above its lowest value (10 %), for at least two epochs, counts as overfitting.
OVERFIT_RISE = 0.10
OVERFIT_EPOCHS = 2
# Within this many accuracy points of the notebook at the same epoch, a run "tracks" it.
TRACKING_POINTS = 0.5
# Test accuracies closer than this (points) are within the noise of one random start.
NOISE_POINTS = 0.15


def _points(value: float) -> str:
    return f"{100 * value:.2f} %"


def overfitting(history) -> dict | None:
    """Training loss falling while validation loss rises: where and by how much, or None.

    The validation loss must stay more than OVERFIT_RISE above its lowest value for at least
    OVERFIT_EPOCHS epochs after it, so that a single noisy epoch is not called overfitting.
    """
    points = [(row["epoch"], row.get("loss"), row["val_loss"]) for row in sorted(history, key=lambda r: r["epoch"])
              if is_number(row.get("val_loss"))]
    if len(points) < OVERFIT_EPOCHS + 1:
        return None
    best_index = min(range(len(points)), key=lambda index: points[index][2])
    best_epoch, _, best_val = points[best_index]
    after = points[best_index + 1:]
    if len(after) < OVERFIT_EPOCHS or best_val <= 0:
        return None
    threshold = best_val * (1 + OVERFIT_RISE)
    last_epoch, _, last_val = after[-1]
    if last_val <= threshold or statistics.mean(val for _, _, val in after) <= threshold:
        return None
    training = [(epoch, loss) for epoch, loss, _ in points[best_index:] if is_number(loss)]
    if len(training) < 2 or training[-1][1] >= training[0][1]:
        return None
    return {"best_epoch": best_epoch, "best_val_loss": best_val, "last_epoch": last_epoch, "last_val_loss": last_val,
            "loss_at_best": training[0][1], "last_loss": training[-1][1]}


def _accuracy_observation(entries):
    scored = sorted((e for e in entries if e.test_accuracy is not None), key=lambda e: -e.test_accuracy)
    if not scored:
        validated = sorted((e for e in entries if e.best_val_accuracy is not None), key=lambda e: -e.best_val_accuracy)
        if not validated:
            return None
        best = validated[0]
        return (f"**Most accurate so far:** {quoted(best.label)}, {_points(best.best_val_accuracy)} best validation "
                "accuracy (no test score yet: it is measured when training ends).")
    best = scored[0]
    text = f"**Most accurate:** {quoted(best.label)}, {_points(best.test_accuracy)} on the 10,000 test images"
    if len(scored) == 1:
        return text + "."
    runner_up = scored[1]
    gap = 100 * (best.test_accuracy - runner_up.test_accuracy)
    text += f", {gap:.2f} points ahead of {quoted(runner_up.label)} ({_points(runner_up.test_accuracy)})."
    if gap < NOISE_POINTS:
        text += (" A gap this small can come from the random start alone: train both again with another "
                 "seed before calling one better.")
    return text


def _cost_observation(entries):
    """What the most accurate net pays in parameters over the smallest one, as the notebook's nets show."""
    scored = [entry for entry in entries if entry.test_accuracy is not None and entry.parameters]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda entry: entry.test_accuracy)
    smallest = min(scored, key=lambda entry: entry.parameters)
    if best is smallest or best.parameters <= smallest.parameters:
        return None
    gain = 100 * (best.test_accuracy - smallest.test_accuracy)
    return (f"**What accuracy costs:** {quoted(best.label)} has {best.parameters / smallest.parameters:.1f}x the "
            f"parameters of {quoted(smallest.label)} ({best.parameters:,} against {smallest.parameters:,}) for "
            f"{gain:.2f} more points of test accuracy.")


def _per_thousand(entry) -> str:
    return (f"{entry.seconds_per_thousand:.2f} s per 1,000 training images ({entry.seconds_per_epoch:.1f} s per "
            f"epoch of {entry.train_size:,})")


def _speed_observations(entries):
    """The fastest and the slowest net in time per 1,000 training images: epochs of 10,000 and of 60,000
    images cannot be compared per epoch."""
    texts = []
    for kind, intro in ((RUN, "**Fastest:**"), (NOTEBOOK, "**Fastest in the notebook:**")):
        timed = sorted((entry for entry in entries if entry.kind == kind and entry.seconds_per_thousand),
                       key=lambda entry: entry.seconds_per_thousand)
        if not timed:
            continue
        fastest, slowest = timed[0], timed[-1]
        text = f"{intro} {quoted(fastest.label)}, {_per_thousand(fastest)}"
        if len(timed) > 1 and slowest.seconds_per_thousand > fastest.seconds_per_thousand:
            ratio = slowest.seconds_per_thousand / fastest.seconds_per_thousand
            text += f"; {quoted(slowest.label)} takes {ratio:.1f}x as long ({_per_thousand(slowest)})"
        texts.append(text + ".")
    if len(texts) == 2:
        texts.append("The notebook's times were measured on its own machine: compare them with each other, "
                     "not with the runs made here.")
    return texts


def _overfitting_observations(entries):
    texts = []
    checked = 0
    for entry in entries:
        if sum(1 for row in entry.history if is_number(row.get("val_loss"))) >= OVERFIT_EPOCHS + 1:
            checked += 1
        found = overfitting(entry.history)
        if found:
            texts.append(
                f"**{quoted(entry.label)} overfits:** its validation loss was lowest at epoch {found['best_epoch']} "
                f"({found['best_val_loss']:.4f}) and rose to {found['last_val_loss']:.4f} by epoch "
                f"{found['last_epoch']}, while its training loss kept falling ({found['loss_at_best']:.4f} → "
                f"{found['last_loss']:.4f}). It is memorising the training images: more epochs will not help; "
                "dropout, augmentation or stopping earlier would.")
    if not texts and checked:
        texts.append("**No clear overfitting:** in no run shown does the validation loss climb and stay more than "
                     f"{100 * OVERFIT_RISE:.0f} % above its lowest value while the training loss falls: what "
                     "the nets learn still carries over to images they have not seen.")
    return texts


def _tracking_observations(entries, references):
    notebook = {entry.architecture: entry for entry in references}
    texts = []
    for entry in entries:
        match = notebook.get(entry.architecture)
        if entry.kind != RUN or match is None:
            continue
        ours = {row["epoch"]: row.get("val_accuracy") for row in entry.history}
        theirs = {row["epoch"]: row.get("val_accuracy") for row in match.history}
        common = [epoch for epoch in ours if is_number(ours[epoch]) and is_number(theirs.get(epoch))]
        if not common:
            continue
        epoch = max(common)
        difference = 100 * (ours[epoch] - theirs[epoch])
        verdict = ("tracks the notebook" if abs(difference) <= TRACKING_POINTS
                   else "is ahead of the notebook" if difference > 0 else "is behind the notebook")
        text = (f"**{quoted(entry.label)} {verdict}:** after epoch {epoch} it has {_points(ours[epoch])} validation "
                f"accuracy; the notebook's net of the same architecture had {_points(theirs[epoch])} "
                f"({difference:+.2f} points).")
        if entry.explanation and difference < -TRACKING_POINTS:
            text += " " + entry.explanation
        elif entry.train_size and entry.train_size < MNIST_TRAIN_IMAGES and difference < -TRACKING_POINTS:
            text += (f" It trains on {entry.train_size:,} images per epoch, the notebook on "
                     f"{MNIST_TRAIN_IMAGES:,}: each of its epochs teaches less, so it needs more of them.")
        texts.append(text)
    return texts


def observations(entries: list[Entry], references: list[Entry] | None = None) -> list[str]:
    """A few sentences (markdown) on the entries shown: most accurate, fastest, overfitting, and
    whether each run tracks the notebook's net of the same architecture (`references`: the notebook
    entries to compare with, by default those among `entries`)."""
    if references is None:
        references = [entry for entry in entries if entry.kind == NOTEBOOK]
    texts = []
    accuracy = _accuracy_observation(entries)
    if accuracy:
        texts.append(accuracy)
    cost = _cost_observation(entries)
    if cost:
        texts.append(cost)
    texts += _speed_observations(entries)
    texts += _overfitting_observations(entries)
    texts += _tracking_observations(entries, references)
    return texts
