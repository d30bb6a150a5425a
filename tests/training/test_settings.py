"""Training settings: the notebook's defaults, refusals that say what to change, run names, optimizers, the
architecture argument, and the learning-rate schedules."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mnist_lab import training
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.sources import architecture_from_argument

from helpers import TINY, tiny


def test_settings_fill_in_the_notebooks_defaults_and_a_holdout():
    settings = training.TrainSettings().resolve(60_000, 10_000)
    assert (settings.epochs, settings.batch_size, settings.optimizer) == (12, 128, "adam")
    assert settings.learning_rate == pytest.approx(0.001)
    assert (settings.validation_size, settings.train_size) == (5_000, 55_000)
    on_test = training.TrainSettings(validation="test").resolve(60_000, 10_000)
    assert (on_test.train_size, on_test.validation_size) == (60_000, 10_000)
    assert training.TrainSettings(optimizer="adadelta").resolve(60_000).learning_rate == pytest.approx(1.0)


@pytest.mark.parametrize("changes, words", [
    ({"epochs": 0}, "Epochs must be from 1"),
    ({"epochs": 2.5}, "Epochs must be a whole number"),
    ({"batch_size": 0}, "Batch size"),
    ({"optimizer": "rmsprop"}, "Unknown optimizer 'rmsprop'; use one of: adam, adadelta, sgd"),
    ({"learning_rate": float("nan")}, "learning rate must be a number above 0"),
    ({"learning_rate": -1.0}, "learning rate must be a number above 0"),
    ({"validation": "train"}, "Validation must be one of: holdout, test"),
    ({"train_size": 58_000}, "train on at most 55,000"),
    ({"train_size": 70_000}, "Training images must be from 10 to 60,000"),
    ({"seed": -1}, "The seed must be from 0"),
])
def test_bad_settings_say_what_to_change(changes, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        training.TrainSettings(**changes).resolve(60_000, 10_000)


def test_unknown_setting_names_are_refused():
    with pytest.raises(ValueError, match="Unknown training setting"):
        training.TrainSettings.from_dict({"epochs": 1, "momentum": 0.9})


def test_run_names_are_checked_and_defaulted():
    settings = training.TrainSettings(epochs=3, train_size=10_000).resolve(60_000)
    assert training.clean_run_name("  mine  ", tiny(), settings) == "mine"
    assert training.clean_run_name("", tiny(), settings) == "tiny · 3 epochs · 10k images"
    with pytest.raises(ValueError, match="at most 80"):
        training.clean_run_name("x" * 81, tiny(), settings)
    with pytest.raises(ValueError, match="control character"):
        training.clean_run_name("a\nb", tiny(), settings)


def test_every_optimizer_builds_with_its_learning_rate():
    pytest.importorskip("keras")
    for key, choice in training.OPTIMIZERS.items():
        optimizer = choice.build(0.05)
        assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.05), key
    assert float(np.asarray(training.OPTIMIZERS["sgd"].build(0.1).momentum)) == pytest.approx(0.9)


def test_architecture_arguments(tmp_path):
    assert architecture_from_argument("seed-5layer")["source"] == "preset"
    path = tmp_path / "mine.json"
    path.write_text(to_json(TINY, "mine"))
    from_file = architecture_from_argument(str(path))
    assert (from_file["name"], from_file["source"], from_file["label"]) == ("custom", "imported", "mine")
    with pytest.raises(ValueError, match="Unknown architecture 'nope'"):
        architecture_from_argument("nope")
    with pytest.raises(ValueError, match="Cannot read"):
        architecture_from_argument(str(tmp_path / "missing.json"))


def test_learning_rate_schedules():
    constant = training.TrainSettings(epochs=2, batch_size=100, train_size=1000, learning_rate=0.01).resolve(2000)
    assert training.learning_rate_schedule(constant) == 0.01
    cosine = replace(constant, schedule="warmup-cosine")
    schedule = training.learning_rate_schedule(cosine)
    total = cosine.epochs * cosine.steps_per_epoch()
    rates = [float(schedule(step)) for step in (0, total // 20, total // 10, total // 2, total)]
    assert rates[0] == 0.0 and 0 < rates[1] < rates[2]
    assert rates[2] == pytest.approx(0.01)
    assert rates[2] > rates[3] > rates[4] and rates[4] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="Unknown learning-rate schedule 'wavy'"):
        replace(constant, schedule="wavy").resolve(2000)


def test_quick_cnn_comes_with_its_schedule():
    defaults = training.preset_training_defaults("quick-cnn")
    assert defaults["schedule"] == "warmup-cosine" and defaults["batch_size"] == 256


def test_the_one_cycle_schedule_rises_for_30_percent_then_decays_to_almost_nothing():
    settings = training.TrainSettings(epochs=1, batch_size=100, train_size=1000, learning_rate=0.01,
                                      schedule="one-cycle").resolve(2000)
    schedule = training.learning_rate_schedule(settings)
    total = settings.steps_per_epoch()
    rise = int(total * 0.3)
    rates = [float(schedule(step)) for step in (0, rise // 2, rise, (rise + total) // 2, total)]
    assert rates[0] == pytest.approx(0.01 / 25) and rates[0] < rates[1] < rates[2]
    assert rates[2] == pytest.approx(0.01)
    assert rates[2] > rates[3] > rates[4] and rates[4] == pytest.approx(0.01 / 25 / 10_000, rel=1e-3)


def test_a_saved_architecture_may_be_named_with_json_on_the_command_line(isolated_storage):
    from mnist_lab.architecture.saved import ArchitectureStore

    ArchitectureStore().save("x.json", TINY)
    architecture = architecture_from_argument("x.json")
    assert (architecture["source"], architecture["name"]) == ("saved", "x")
    with pytest.raises(ValueError, match="no such file, and no saved architecture 'y'"):
        architecture_from_argument("y.json")
