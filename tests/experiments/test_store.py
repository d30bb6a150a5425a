"""Experiments on disk: posed only by the teacher, one open at a time, values handed out evenly, archived by
the room's reset and still readable afterwards."""

import threading

import pytest

from mnist_lab.classroom import classroom
from mnist_lab.architecture.sources import custom_architecture, preset_architecture
from mnist_lab.experiments import ExperimentError, ExperimentStatus, ExperimentStore
from mnist_lab.classroom.learners import Actor, NotYours
from mnist_lab.runs import RunStore

TEACHER, LEARNER = Actor.operator(), Actor("ada-id")
SIZES = (600, 200)
TINY = custom_architecture([{"type": "Flatten"}, {"type": "Dense", "units": 8}], label="tiny")


@pytest.fixture
def experiments(tmp_path):
    return ExperimentStore(RunStore(tmp_path / "runs"))


def pose(experiments, values="32,64,128", variable="batch_size", architecture=None, **settings):
    return experiments.pose("Does batch size matter?", architecture or TINY, {"epochs": 1, **settings}, variable,
                            values, by=TEACHER, data_sizes=SIZES)


def test_a_posed_experiment_is_open_and_lasts_across_stores(experiments):
    experiment = pose(experiments)
    assert experiment["status"] == ExperimentStatus.OPEN and experiment["labels"][0] == "batch size 32"
    again = ExperimentStore(RunStore(experiments.runs.root))
    assert again.open_experiment()["id"] == experiment["id"]
    assert [run["id"] for run in experiments.runs.list()] == []  # never listed as a run


def test_only_the_teacher_poses_closes_reopens_or_shows_names(experiments):
    with pytest.raises(NotYours, match="Only the teacher can pose"):
        experiments.pose("Q?", TINY, {}, "batch_size", "32,64", by=LEARNER, data_sizes=SIZES)
    experiment = pose(experiments)
    for change in (lambda: experiments.close(experiment["id"], by=LEARNER),
                   lambda: experiments.reopen(experiment["id"], by=LEARNER),
                   lambda: experiments.show_names(experiment["id"], True, by=LEARNER)):
        with pytest.raises(NotYours):
            change()
    assert experiments.get(experiment["id"])["status"] == ExperimentStatus.OPEN


def test_one_experiment_is_open_at_a_time(experiments):
    first = pose(experiments)
    with pytest.raises(ExperimentError, match="is still open: close it first"):
        pose(experiments)
    experiments.close(first["id"], by=TEACHER)
    second = pose(experiments, values="16,32")
    with pytest.raises(ExperimentError, match="still open"):
        experiments.reopen(first["id"], by=TEACHER)
    experiments.close(second["id"], by=TEACHER)
    assert experiments.reopen(first["id"], by=TEACHER)["status"] == ExperimentStatus.OPEN


@pytest.mark.parametrize("variable, values, settings, architecture, named", [
    ("batch_size", "32,1000", {"train_size": 500}, None, "batch size 1000 cannot train: a batch of 1,000 is more"),
    ("filters", "8,5000", {}, preset_architecture("quick-cnn"), "'5000'"),
    ("train_size", "100,900", {"batch_size": 32}, None, "900 training images cannot train"),
    ("learning_rate", "0.001,20", {}, None, "'20'"),
    ("dropout", "0.1,0.5", {}, None, "no Dropout layer"),
])
def test_a_value_the_base_cannot_train_with_is_refused_naming_it(experiments, variable, values, settings,
                                                                 architecture, named):
    with pytest.raises(ExperimentError, match=named):
        experiments.pose("Q?", architecture or TINY, {"epochs": 1, **settings}, variable, values, by=TEACHER,
                         data_sizes=SIZES, layer=1)
    assert experiments.open_experiment() is None


def test_a_burst_of_learners_gets_every_value_early_and_a_learner_keeps_theirs(experiments):
    experiment = pose(experiments)
    handed = {}
    threads = [threading.Thread(target=lambda number=number: handed.__setitem__(
        number, experiments.assign(experiment["id"], f"learner-{number}"))) for number in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(handed.values()) == [0, 0, 0, 1, 1, 2, 2]
    assert experiments.assign(experiment["id"], "learner-3") == handed[3]
    assert len(experiments.get(experiment["id"])["assigned"]) == 7


def test_the_rooms_reset_archives_experiments_and_they_stay_readable(experiments, tmp_path):
    experiment = pose(experiments)
    run = experiments.runs.create("ada's run", TINY, {"epochs": 1}, owner="ada-id",
                                  experiment={"id": experiment["id"], "index": 0, "value": "batch size 32"})
    experiments.runs.update(run["id"], status="completed", test_accuracy=0.9)
    classroom.reset_room(experiments.runs, tmp_path / "handwriting")
    assert experiments.open_experiment() is None
    past = experiments.list()
    assert [item["id"] for item in past] == [experiment["id"]] and past[0]["status"] == ExperimentStatus.CLOSED
    assert [meta["id"] for meta in experiments.runs_of(past[0])] == [run["id"]]
    assert experiments.runs.list() == []
