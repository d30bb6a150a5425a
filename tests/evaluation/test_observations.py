"""What the numbers say: the observations under the comparison, overfitting, the notebook's own conclusion."""

import dataclasses

import pytest

from helpers import entries_of, epochs, stored_run
from mnist_lab.evaluation import comparison, observations, reference
from mnist_lab.runs import RunStore


@pytest.fixture
def store():
    return RunStore()


# ---- Observations -------------------------------------------------------------------------------

def test_overfitting_is_training_loss_falling_while_validation_loss_rises():
    found = observations.overfitting(epochs([0.5, 0.3, 0.2, 0.1, 0.05], [0.40, 0.30, 0.36, 0.40, 0.45]))
    assert found == {"best_epoch": 2, "best_val_loss": 0.30, "last_epoch": 5, "last_val_loss": 0.45,
                     "loss_at_best": 0.3, "last_loss": 0.05}
    # Still improving: no overfitting.
    assert observations.overfitting(epochs([0.5, 0.3, 0.2], [0.4, 0.3, 0.25])) is None
    # One noisy epoch at the end is not enough.
    assert observations.overfitting(epochs([0.5, 0.3, 0.2, 0.1], [0.4, 0.3, 0.29, 0.5])) is None
    # Both losses rising: training has gone wrong, it is not overfitting.
    assert observations.overfitting(epochs([0.3, 0.2, 0.4, 0.6], [0.4, 0.3, 0.5, 0.6])) is None
    # Unreadable values are skipped, not treated as zeros.
    assert observations.overfitting(epochs([0.5, None, 0.2, 0.1, 0.05], [0.4, 0.3, None, 0.4, 0.45]))["best_epoch"] == 2


def test_observations_name_the_most_accurate_the_fastest_and_the_overfitting_run(store):
    stored_run(store, "steady", epochs([0.5, 0.3, 0.2, 0.15], [0.4, 0.3, 0.25, 0.22], seconds=8.0),
               test_accuracy=0.985)
    stored_run(store, "memoriser", epochs([0.5, 0.3, 0.1, 0.05], [0.40, 0.30, 0.38, 0.45], seconds=2.0),
               test_accuracy=0.97, architecture="mine")
    text = "\n".join(observations.observations(entries_of(store)))
    assert "**Most accurate:** “steady”, 98.50 %" in text
    assert "1.50 points ahead of “memoriser” (97.00 %)" in text
    assert ("**Fastest:** “memoriser”, 3.33 s per 1,000 training images (2.0 s per epoch of 600); “steady” takes "
            "4.0x as long (13.33 s per 1,000 training images (8.0 s per epoch of 600))") in text
    assert "**“memoriser” overfits:** its validation loss was lowest at epoch 2 (0.3000) and rose to 0.4500 " \
           "by epoch 4" in text
    assert "“steady” overfits" not in text and "No clear overfitting" not in text
    assert "What accuracy costs" not in text  # the more accurate net is not the bigger one


def test_a_tiny_accuracy_gap_is_called_noise(store):
    stored_run(store, "a", epochs([0.5], [0.4]), test_accuracy=0.9861)
    stored_run(store, "b", epochs([0.5], [0.4]), test_accuracy=0.9855)
    text = " ".join(observations.observations(entries_of(store)))
    assert "0.06 points ahead" in text and "random start alone" in text


def test_observations_say_whether_a_run_tracks_the_notebook(store):
    notebook = comparison.reference_entry(reference.reference("seed-3layer"))
    close = stored_run(store, "close", epochs([0.4, 0.12, 0.09], [0.12, 0.08, 0.07],
                                              val_accuracies=[0.962, 0.975, 0.980]), settings={"train_size": 60000})
    small = stored_run(store, "small", epochs([0.9, 0.6], [0.8, 0.5], val_accuracies=[0.80, 0.90]),
                       settings={"train_size": 6000, "batch_size": 128}, architecture="dense",
                       layers=[{"type": "Flatten"}, {"type": "Dense", "units": 10}])
    notebook_dense = dataclasses.replace(notebook, key="notebook:dense", architecture="dense")
    entries = [entry for entry in entries_of(store) if entry.key in (close["id"], small["id"])] + [
        notebook, notebook_dense]
    text = "\n".join(observations.observations(entries))
    assert "**“close” tracks the notebook:** after epoch 3 it has 98.00 % validation accuracy; the notebook's " \
           "net of the same architecture had 97.92 % (+0.08 points)." in text
    assert "**“small” is behind the notebook:** after epoch 2 it has 90.00 %" in text
    assert "It trains on 6,000 images per epoch, the notebook on 60,000" in text
    assert text.count("images per epoch") == 1  # not said of the run that trained on all of them
    assert "BatchNormalization" not in text  # neither of these short runs has a lagging one


def test_a_short_run_with_batch_normalization_is_explained_by_its_running_averages(store):
    """The quick demo's 37.8 %: 79 batches of the 3-layer net; not blamed on its 10,000 images per epoch."""
    notebook = comparison.reference_entry(reference.reference("seed-3layer"))
    demo = stored_run(store, "quick demo", epochs([0.4], [2.1], val_accuracies=[0.378]), test_accuracy=0.378,
                      settings={"train_size": 10000, "batch_size": 128})
    meta = store.get(demo["id"])
    explanation = comparison.short_run_explanation(meta)
    assert "After only 79 batches" in explanation and "55 % of the way" in explanation
    text = "\n".join(observations.observations(entries_of(store) + [notebook]))
    assert "**“quick demo” is behind the notebook:**" in text and explanation in text
    assert "images per epoch" not in text
    corrected = dict(meta, test_accuracy=0.93, batch_normalization={
        "batches": 79, "caught_up": 0.5479, "images": 2048, "validation_accuracy_before": 0.378})
    assert "37.8 % on held-out images before (the last validation score), 93.0 % test accuracy after" \
        in comparison.short_run_explanation(corrected)
    stored_before_the_change = dict(corrected, batch_normalization={
        "batches": 79, "caught_up": 0.5479, "images": 2048, "test_accuracy_before": 0.401})
    assert "40.1 % on held-out images before" in comparison.short_run_explanation(stored_before_the_change)
    long_run = dict(meta, epochs_done=12, settings=dict(meta["settings"], train_size=60000))
    assert comparison.short_run_explanation(long_run) is None  # 12 x 469 batches: the averages have caught up
    assert comparison.short_run_explanation(dict(meta, architecture={"layers": [{"type": "Flatten"}]})) is None


def test_notebook_observations_match_its_own_conclusion():
    entries = [comparison.reference_entry(result) for result in reference.load_references()]
    text = "\n".join(observations.observations(entries))
    assert "**Most accurate:** “Notebook\\: 5 layer CNN, kernel size 5x5”, 99.32 %" in text
    assert ("**Fastest in the notebook:** “Notebook\\: 3 layer CNN, kernel size 3x3”, 1.15 s per 1,000 training "
            "images (69.0 s per epoch of 60,000)") in text
    assert "13.9x as long" in text
    assert "**What accuracy costs:** “Notebook\\: 5 layer CNN, kernel size 5x5” has 24.7x the parameters of " \
           "“Notebook\\: 3 layer CNN, kernel size 3x3” (759,390 against 30,706) for 0.72 more points" in text
    assert "**Fastest:**" not in text  # no runs of this machine to time


def test_observations_without_test_scores_use_validation_accuracy(store):
    stored_run(store, "running", epochs([0.5], [0.4], val_accuracies=[0.91]), status="running")
    text = " ".join(observations.observations(entries_of(store)))
    assert "**Most accurate so far:** “running”, 91.00 % best validation accuracy" in text
