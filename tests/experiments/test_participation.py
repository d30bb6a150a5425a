"""A learner's part in the open experiment: their handed value as a run of their own, one at a time."""

import threading

import pytest

from mnist_lab.architecture.sources import custom_architecture
from mnist_lab.classroom.learners import Actor
from mnist_lab.experiments import ExperimentError, ExperimentStore, take_part

TINY = custom_architecture([{"type": "Flatten"}, {"type": "Dense", "units": 8}], label="tiny")
ADA, BEN, CAT = ("ada-id", "Ada"), ("ben-id", "Ben"), ("cat-id", "Cat")


@pytest.fixture
def experiment(held_manager):
    experiments = ExperimentStore(held_manager.store)
    posed = experiments.pose("Does batch size matter?", TINY, {"epochs": 1, "train_size": 300}, "batch_size",
                             "16,32,64", by=Actor.operator(), data_sizes=held_manager.data_sizes())
    return experiments, posed


def test_each_learner_trains_their_handed_value_as_their_own_tagged_run(held_manager, experiment):
    experiments, posed = experiment
    runs = [held_manager.store.get(take_part(held_manager, experiments, posed["id"], who)) for who in (ADA, BEN, CAT)]
    assert [meta["settings"]["batch_size"] for meta in runs] == [16, 32, 64]
    assert [meta["owner"] for meta in runs] == ["ada-id", "ben-id", "cat-id"]
    assert len({meta["settings"]["seed"] for meta in runs}) == 3  # each its own weights and data order
    assert [meta["experiment"] for meta in runs] == [
        {"id": posed["id"], "index": index, "value": label} for index, label in enumerate(posed["labels"])]


def test_one_experiment_run_each_at_a_time_even_on_a_double_press(held_manager, experiment):
    experiments, posed = experiment
    outcomes = []

    def press():
        try:
            outcomes.append(take_part(held_manager, experiments, posed["id"], ADA))
        except ExperimentError as error:
            outcomes.append(error)

    presses = [threading.Thread(target=press) for _ in range(4)]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join()
    refused = [outcome for outcome in outcomes if isinstance(outcome, ExperimentError)]
    assert len(refused) == 3 and "Your batch size 16 run is still" in str(refused[0])
    held_manager.stop(next(outcome for outcome in outcomes if isinstance(outcome, str)), by=Actor("ada-id"))
    another = held_manager.store.get(take_part(held_manager, experiments, posed["id"], ADA, index=2))
    assert another["experiment"]["value"] == "batch size 64"  # a learner may run another value
    first = held_manager.store.get(next(outcome for outcome in outcomes if isinstance(outcome, str)))
    assert another["settings"]["seed"] != first["settings"]["seed"]  # a learner's second run is no repeat


def test_a_closed_experiment_takes_no_runs(held_manager, experiment):
    experiments, posed = experiment
    experiments.close(posed["id"], by=Actor.operator())
    with pytest.raises(ExperimentError, match="is closed"):
        take_part(held_manager, experiments, posed["id"], ADA)
    assert held_manager.store.list() == []
