"""The one-click plans: each preset's recipe, capped images, and the quick demos' models on real MNIST."""

from __future__ import annotations


import pytest

from mnist_lab import training
from mnist_lab.architecture.sources import preset_architecture
from mnist_lab.runs import RunStore


def test_presets_fill_in_their_recipe_and_plans_cap_the_images():
    assert training.plans.recipe("preset", "seed-3layer") == {
        "epochs": 12, "batch_size": 128, "optimizer": "adam", "learning_rate": 0.001, "schedule": "constant"}
    quick_cnn = training.plans.recipe("preset", "quick-cnn")
    assert (quick_cnn["batch_size"], quick_cnn["schedule"], quick_cnn["epochs"]) == (256, "warmup-cosine", 2)
    assert training.plans.recipe("saved", "mine") == {} and training.plans.recipe("edited", "") == {}
    quick, notebook = training.plans.PLANS["quick"], training.plans.PLANS["notebook"]
    assert quick.values(55_000) == {"train_size": 10_000, "epochs": 1, "batch_size": 32}
    assert quick.values(500)["train_size"] == 500 and notebook.values(55_000)["train_size"] == 55_000


@pytest.mark.slow
def test_the_quick_demo_of_the_notebooks_3_layer_net_gives_a_good_model(real_mnist, isolated_storage):
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")
    run_id = manager.submit(preset_architecture("seed-3layer"),
                            {**training.plans.recipe("preset", "seed-3layer"),
                             **training.plans.PLANS["quick"].values(55_000)})
    assert manager.wait(run_id, 900)
    meta = manager.store.get(run_id)
    assert meta["status"] == "completed" and meta["test_accuracy"] >= 0.90, meta


@pytest.mark.slow
def test_fast_cnn_reaches_98_5_percent_in_two_epochs_with_its_recipe(real_mnist, isolated_storage):
    """Two epochs of fast-cnn with its own recipe (seed 1). The aim is 99.0 % on every seed; measured so far
    it reaches 98.9 to 99.1 % over seeds 1 to 3 (one epoch: 98.6 to 98.9 %), so this checks the level it
    reaches with margin rather than the aim."""
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")
    recipe = training.plans.recipe("preset", "fast-cnn")
    assert recipe["epochs"] == 2 and recipe["schedule"] == "one-cycle"
    run_id = manager.submit(preset_architecture("fast-cnn"), recipe)
    assert manager.wait(run_id, 900)
    meta = manager.store.get(run_id)
    assert meta["status"] == "completed" and meta["epochs_done"] == 2 and meta["test_accuracy"] >= 0.985, meta


def test_a_plan_may_differ_for_one_preset_and_says_why():
    quick, notebook = training.plans.PLANS["quick"], training.plans.PLANS["notebook"]
    seven = quick.values(55_000, "seed-7layer")
    assert (seven["train_size"], seven["epochs"], seven["batch_size"]) == (10_000, 1, 32)
    assert (seven["schedule"], seven["learning_rate"]) == ("warmup-cosine", 0.003)
    assert "88.5 %" in quick.note("seed-7layer") and quick.note("seed-3layer") is None
    assert quick.values(55_000, "seed-3layer") == quick.values(55_000)
    assert notebook.values(55_000, "seed-7layer")["schedule"] == "constant"  # the notebook's plan undoes it
    assert training.plans.describe(quick, 500, "seed-7layer") == "Quick demo: 500 images, 1 epoch, batch 32"


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("preset", ["seed-5layer", "seed-7layer"])
def test_the_quick_demo_of_the_notebooks_deeper_nets_gives_a_good_model(preset, real_mnist, isolated_storage):
    """Minutes each on a 2-core CPU (the 3-layer net's quick demo, above, stays in the main run)."""
    manager = training.TrainingManager(RunStore(isolated_storage / "runs"), executor="thread")
    run_id = manager.submit(preset_architecture(preset),
                            {**training.plans.recipe("preset", preset),
                             **training.plans.PLANS["quick"].values(55_000, preset)})
    assert manager.wait(run_id, 1800)
    meta = manager.store.get(run_id)
    assert meta["status"] == "completed" and meta["test_accuracy"] >= 0.90, meta
