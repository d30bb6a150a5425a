"""The Train page's form and what it shows of runs, without Streamlit: a TrainForm on a plain dict stands in
for st.session_state, and each new TrainForm for one run of the page."""

from __future__ import annotations

import pytest

from mnist_lab import training
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import analyze
from mnist_lab.classroom import learners
from mnist_lab.runs import RunStatus
from mnist_lab.training import plans
from mnist_lab.views import train as view

TRAIN, TEST = 60_000, 10_000
SLOW = training.SpeedCalibration(batch_seconds=0.01, seconds_per_multiply_add=1e-9, evaluation_batch_seconds=0.01,
                                 evaluation_seconds_per_multiply_add=1e-10, device="CPU", measured="2026-12-07")
FAST = training.SpeedCalibration(batch_seconds=1e-4, seconds_per_multiply_add=1e-13, evaluation_batch_seconds=1e-4,
                                 evaluation_seconds_per_multiply_add=1e-14, device="CPU", measured="2026-12-07")


def form(state: dict, current: str | None = "seed-3layer", edited: bool = False) -> view.TrainForm:
    """The form as one run of the page builds it."""
    return view.TrainForm(state, TRAIN, TEST, current, edited)


def values(state: dict) -> dict:
    return {key.removeprefix("train_"): value for key, value in state.items() if key.startswith("train_")}


def test_a_new_form_holds_the_notebooks_settings_and_they_resolve():
    state = {}
    settings = form(state).settings().resolve(TRAIN, TEST)
    assert state["train_architecture"] == "preset:seed-3layer"
    assert (settings.epochs, settings.batch_size, settings.optimizer) == (12, 128, "adam")
    assert settings.learning_rate == training.OPTIMIZERS["adam"].default_learning_rate
    assert (settings.train_size, settings.validation_size) == (TRAIN - 5000, 5000)  # Keras' classic split


def test_choosing_a_preset_fills_its_recipe_once_and_another_preset_puts_the_notebooks_back():
    state = {}
    form(state)
    state["train_architecture"] = "preset:fast-cnn"
    form(state)
    assert {key: values(state)[key] for key in PRESETS["fast-cnn"].training} == (
        PRESETS["fast-cnn"].training)
    state["train_epochs"] = 5  # the learner's own change, after the recipe
    form(state)
    assert state["train_epochs"] == 5
    state["train_architecture"] = "preset:seed-5layer"
    form(state)
    assert (state["train_epochs"], state["train_batch_size"], state["train_schedule"]) == (12, 128, "constant")


def test_the_net_being_edited_is_offered_first_and_keeps_what_the_form_holds():
    state = {}
    edited = form(state, current="mine", edited=True)
    assert state["train_architecture"] == "edited" and edited.preset() is None
    assert edited.options["edited"].startswith("mine")
    state["train_architecture"] = "preset:fast-cnn"
    form(state, current="mine", edited=True)
    state["train_architecture"] = "edited"
    form(state, current="mine", edited=True)
    assert state["train_epochs"] == PRESETS["fast-cnn"].training["epochs"]  # not the notebook's 12


def test_a_plan_fills_in_what_fits_the_images_there_are():
    state = {}
    current = form(state)
    current.apply_plan(plans.PLANS["notebook"])
    assert state["train_train_size"] == TRAIN - current.holdout
    state["train_validation"] = "test"
    current.apply_plan(plans.PLANS["notebook"])
    assert state["train_train_size"] == TRAIN  # no images held out
    current.apply_plan(plans.PLANS["quick"])
    assert (state["train_train_size"], state["train_epochs"], state["train_batch_size"]) == (10_000, 1, 32)
    small = view.TrainForm({}, 3_000, 500, "seed-3layer", False)
    small.apply_plan(plans.PLANS["quick"])
    assert small.state["train_train_size"] == 3_000 - small.holdout  # a quick demo never asks for more than there is


def test_the_plans_caption_says_why_a_preset_gets_its_own_plan():
    state = {}
    current = form(state)
    assert "Quick demo: 10,000 images, 1 epoch, batch 32" in current.plans_caption()
    state["train_architecture"] = "preset:seed-7layer"
    current = form(state)
    assert plans.PLANS["quick"].note("seed-7layer") in current.plans_caption()
    current.apply_plan(plans.PLANS["quick"])
    assert state["train_schedule"] == "warmup-cosine"


def test_a_slider_offers_a_recommended_value_that_is_not_a_round_one():
    state = {}
    current = form(state)
    state["train_learning_rate"] = 0.004
    choices = current.with_current(training.LEARNING_RATE_CHOICES, "learning_rate")
    assert 0.004 in choices and choices == sorted(choices)
    assert current.with_current(training.BATCH_SIZE_CHOICES, "missing") == list(training.BATCH_SIZE_CHOICES)


def test_a_new_optimizer_starts_from_its_own_learning_rate():
    state = {}
    current = form(state)
    for key, optimizer in training.OPTIMIZERS.items():
        state["train_optimizer"] = key
        current.reset_learning_rate()
        assert state["train_learning_rate"] == optimizer.default_learning_rate


def test_training_images_the_slider_no_longer_offers_move_to_the_nearest_it_does():
    state = {}
    current = form(state)
    state["train_validation"] = "test"
    state["train_train_size"] = 23_000
    sizes = current.training_sizes()
    assert sizes[-1] == TRAIN and state["train_train_size"] == 20_000
    assert current.training_size_label(TRAIN) == "60,000 (all)" and current.training_size_label(20_000) == "20,000"
    state["train_validation"] = "holdout"
    state["train_train_size"] = TRAIN  # more than there is once 5,000 are held out
    assert current.training_sizes()[-1] == TRAIN - 5000 and state["train_train_size"] == TRAIN - 5000


def test_validation_choices_and_their_note():
    state = {}
    current = form(state)
    assert list(current.validation_labels()) == list(training.VALIDATION_CHOICES)
    assert "10,000 test images" in current.validation_labels()["test"]
    assert "5,000 training images are set aside" in current.validation_note()
    state["train_validation"] = "test"
    assert training.TEST_VALIDATION_NOTE in current.validation_note()


def test_every_schedule_has_a_short_name():
    assert all(choice.key == key and choice.label and choice.description for key, choice in training.SCHEDULES.items())


def test_a_long_epoch_points_to_the_quick_demo_and_the_cheapest_preset():
    state = {}
    current = form(state)
    report = analyze(preset_layers("seed-3layer"))
    settings = current.settings().resolve(TRAIN, TEST)
    assert current.long_run_advice(FAST, report, training.estimate_epoch(FAST, report, settings)) is None
    advice = current.long_run_advice(SLOW, report, training.estimate_epoch(SLOW, report, settings))
    by_cost = sorted(PRESETS,
                     key=lambda preset: analyze(preset_layers(preset)).multiply_adds)
    assert "(10,000 images, 1 epoch)" in advice and f"such as {by_cost[0]}," in advice


def test_the_estimate_waits_for_the_speed_and_says_why():
    assert view.estimate_pending("The speed could not be measured.", training_now=False).startswith("The speed")
    assert "no run is training" in view.estimate_pending(None, training_now=True)
    assert "Measuring" in view.estimate_pending(None, training_now=False)


def test_the_capacity_caption_counts_runs():
    assert "trains 1 run at a time" in view.capacity_caption({"max_concurrent": 1, "max_queued": 4})
    assert "trains 2 runs at a time" in view.capacity_caption({"max_concurrent": 2, "max_queued": 4})


# --- the runs -----------------------------------------------------------------------------------------

def run(run_id: str, status=RunStatus.COMPLETED, owner: str | None = None, **fields) -> dict:
    return {"id": run_id, "status": status, "owner": owner, "name": run_id, "settings": {"epochs": 2}, **fields}


def test_the_watched_run_is_the_one_asked_for_else_your_own_training_one_else_your_newest():
    ada = learners.Actor("ada")
    runs = [run("newest", owner="ada"), run("training", RunStatus.RUNNING, owner="ada"),
            run("bobs", RunStatus.RUNNING, owner="bob")]
    assert view.watched_run("bobs", runs, ada) == "bobs"
    assert view.watched_run("deleted", runs, ada) == "training"
    assert view.watched_run(None, runs[:1] + runs[2:], ada) == "newest"
    assert view.watched_run(None, runs[2:], ada) is None  # never someone else's by default


def test_a_queued_run_a_process_has_taken_is_starting():
    queued = run("a", RunStatus.QUEUED)
    assert view.starting(queued, {"status": RunStatus.RUNNING}, queue_position=None)
    assert not view.starting(queued, {"status": RunStatus.RUNNING}, queue_position=1)
    assert not view.starting(queued, {}, queue_position=None)


def test_a_runs_estimate_needs_the_speed_and_a_record_that_reads():
    layers = preset_layers("seed-3layer")
    settings = training.TrainSettings(epochs=1, train_size=1000).resolve(TRAIN, TEST).as_dict()
    good = run("a", architecture={"layers": layers}, settings=settings)
    assert view.run_estimate(SLOW, good).epochs == 1
    assert view.run_estimate(None, good) is None
    assert view.run_estimate(SLOW, dict(good, settings={**settings, "colour": "red"})) is None
    assert view.run_estimate(SLOW, dict(good, architecture={"layers": [{"type": "Nonsense"}]})) is None


def test_progress_is_the_share_of_all_epochs_done():
    running = run("a", RunStatus.RUNNING, settings={"epochs": 4})
    snapshot = {"epoch": 2, "batch": 50, "batches": 100, "phase": "training", "elapsed": 30, "remaining": 90,
                "images_per_second": 1234.5}
    shown = view.progress(running, snapshot)
    assert shown.fraction == pytest.approx(1.5 / 4)
    assert shown.text.startswith("Epoch 2 of 4 · batch 50 of 100")
    assert "Time left **1m 30s**" in shown.caption and "**1,234** images / second" in shown.caption
    handed = view.progress(run("b", RunStatus.QUEUED), {"status": RunStatus.RUNNING})
    assert handed.text == "Starting: handing the run to a training process…"
    assert view.progress(running, {"epoch": 9, "batch": 9, "batches": 9}).fraction == 1.0


def test_the_queue_message_says_where_and_when():
    expected = "Waiting in the queue: number 2, expected to start in about 1 min 35 s."
    assert view.queue_message(2, 95).startswith(expected)
    assert view.queue_message(None, None).startswith("About to start")  # handed over: no slot to wait for


def test_each_ending_has_its_message_and_a_damaged_run_no_notes():
    done = view.outcome(run("a", test_accuracy=0.98765, test_loss=0.05), [{"epoch": 1}, {"epoch": 2}], TEST)
    assert done.kind == "success" and "**98.77 %** of the 10,000 test images right (test loss 0.0500)" in done.text
    stopped = view.outcome(run("b", RunStatus.STOPPED, message="Stopped by request.", test_accuracy=0.5), [], TEST)
    assert stopped.kind == "warning" and stopped.text.endswith("kept model: 50.00 %.")
    assert view.outcome(run("c", RunStatus.FAILED), [], TEST).text == "The run failed."
    damaged = view.outcome(run("d", RunStatus.DAMAGED, problem="run.json: *broken*"), [], TEST)
    assert damaged.kind == "error" and "\\*broken\\*" in damaged.text and damaged.notes == ()
    assert view.outcome(run("e", RunStatus.RUNNING), [], TEST) is None
    assert view.outcome(run("f", RunStatus.QUEUED), [], TEST) is None


def test_charts_appear_with_the_first_points():
    assert view.charts(run("a"), {}, []) == []
    specs = view.charts(run("a"), {"curve": [[0.1, 2.3, 0.1]]}, [])
    assert len(specs) == 2 and [row["value"] for row in specs[0]["data"]["values"]] == [2.3]
    assert "(0 batches so far, 1 points)" in view.chart_caption({"curve": [[0.1, 2.3, 0.1]]})


def test_the_title_says_whose_run_without_repeating_the_owner():
    meta = run("a", name="Ada · seed-3layer · 1 epoch", owner_name="Ada")
    assert view.watched_title(meta, owned=True) == "Your run: seed-3layer · 1 epoch"
    assert view.watched_title(meta, owned=False) == "Ada's run: seed-3layer · 1 epoch"
    assert view.watched_title(run("b", name="*mine*"), owned=False) == "Watching: \\*mine\\*"
    assert view.stop_refusal({"owner_name": "[Bob](x)"}).startswith("\\[Bob\\]\\(x\\)'s run")


def test_a_row_shows_a_queued_runs_place_and_learner_text_as_text():
    meta = run("a", RunStatus.QUEUED, name="_x_", owner_name="Ada", architecture={"name": "seed-3layer"},
               created="2026-12-07T10:11:12")
    row = view.run_row(meta, show_owner=True, queue_position=3)
    assert row.name == "**\\_x\\_**  \n:gray[Ada · seed-3layer · 2026-12-07 10:11 UTC]"
    assert row.status.endswith(" · number 3 in the queue") and row.accuracy == ":gray[–]"
    finished = view.run_row(run("b", epochs_done=2, test_accuracy=0.9), show_owner=False, queue_position=None)
    assert finished.status.endswith(" · epoch 2/2") and finished.accuracy == "90.00 % test"


def test_a_run_is_selected_for_comparison_once():
    state = {}
    view.select_for_comparison(state, "a")
    view.select_for_comparison(state, "a")
    assert state["selected_run_ids"] == ["a"]


def test_the_chosen_net_is_checked_for_one_epoch_on_every_image_and_an_edited_one_is_the_edited_layers():
    asked = []

    def prepare(architecture, settings):
        asked.append(settings)
        return architecture, analyze(architecture["layers"]), settings, "name"

    state = {}
    architecture, report = form(state).architecture(prepare, None)
    assert architecture["name"] == "seed-3layer" and report.total_parameters > 0
    assert (asked[0].epochs, asked[0].train_size) == (1, None)
    edited = [{"type": "Flatten"}, {"type": "Dense", "units": 16, "activation": "relu"}]
    state = {}
    architecture, _ = form(state, current="seed-3layer", edited=True).architecture(prepare, edited)
    assert architecture["layers"] == edited


def test_a_submission_is_what_train_would_send_or_why_it_cannot():
    state = {}
    current = form(state)

    def refuse(architecture, settings, name):
        raise training.SettingsError("Too few images.")

    assert current.submission(refuse, {"layers": []}, None) == (None, "Too few images.")
    submission, problem = current.submission(lambda *request: request, {"layers": []}, "mine")
    assert problem is None and submission == ({"layers": []}, current.settings(), "mine")
