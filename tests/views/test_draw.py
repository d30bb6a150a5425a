"""What the Draw page shows and does, made without Streamlit: its state and buttons (on a plain dict), the
models it opens with, the guess, the probability chart, the sentences of the explanations and the handwriting
table."""

import re

import numpy as np
import pytest

from mnist_lab.images import canvas, preprocessing
from mnist_lab.errors import LabError
from mnist_lab.evaluation.explanation import MAX_CHANNELS, LayerMaps
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.views import draw as view

LEARNER = "0123456789abcdef"


@pytest.fixture
def state():
    """The page's state as the page starts it, on a plain dict, with a learner's own handwriting set."""
    drawing = view.DrawState({}, HandwritingSet(owner=LEARNER))
    drawing.start()
    return drawing


def strokes(count: int) -> dict:
    return {"version": "4.4.0", "objects": [{"type": "Path", "path": [["M", n, n]]} for n in range(count)]}


def test_the_page_starts_with_mnists_preprocessing_and_keeps_what_is_already_set():
    fresh = view.DrawState({"draw_step_deskew": True, "draw_stroke_width": 30}, HandwritingSet(owner=LEARNER))
    fresh.start()
    assert fresh.state["draw_stroke_width"] == 30 and fresh.state["draw_canvas_generation"] == 0
    assert fresh.options == preprocessing.Options(deskew=True)
    blank = view.DrawState({}, HandwritingSet(owner=LEARNER))
    blank.start()
    assert blank.options == preprocessing.Options() and blank.state["draw_initial_drawing"] is None


def test_undo_drops_the_last_stroke_as_a_new_drawing_and_does_nothing_on_an_empty_canvas(state):
    state.state["draw_last_drawing"] = strokes(3)
    state.undo_stroke()
    first = state.state["draw_initial_drawing"]
    assert first["objects"] == strokes(3)["objects"][:2] and first["version"] == "4.4.0"
    state.state["draw_last_drawing"] = first
    state.undo_stroke()
    second = state.state["draw_initial_drawing"]
    assert len(second["objects"]) == 1 and second["undo"] != first["undo"]  # the canvas sees a new drawing
    state.state["draw_last_drawing"] = strokes(0)
    state.undo_stroke()
    assert state.state["draw_initial_drawing"] is second
    state.state["draw_last_drawing"] = None
    state.undo_stroke()
    assert state.state["draw_initial_drawing"] is second


def test_clear_starts_a_new_empty_canvas(state):
    state.state["draw_last_drawing"] = state.state["draw_initial_drawing"] = strokes(2)
    state.clear_canvas()
    state.clear_canvas()
    assert state.state["draw_canvas_generation"] == 2
    assert state.state["draw_initial_drawing"] is None and state.state["draw_last_drawing"] is None


def test_a_sample_is_kept_only_with_its_digit_and_then_the_canvas_is_cleared(state):
    image = np.zeros((28, 28), "float32")
    image[8:20, 13:15] = 1.0
    state.keep_sample(image, image)
    assert state.state["draw_notice"][0] == "warning" and state.handwriting.load()[2] == []
    assert state.state["draw_canvas_generation"] == 0
    state.state["draw_sample_label"] = 1
    state.keep_sample(image, image)
    assert state.state["draw_notice"] == ("success", "Kept as a 1. Draw the next one.")
    _, labels, ids = state.handwriting.load()
    assert list(labels) == [1] and len(ids) == 1 and state.state["draw_canvas_generation"] == 1


def test_deleting_samples_empties_the_choice_and_says_what_could_not_be_deleted(state):
    image = np.ones((28, 28), "float32")
    state.state["draw_sample_label"] = 4
    state.keep_sample(image, image)
    kept = state.handwriting.load()[2]
    state.state["draw_delete_ids"] = ["not a sample id", *kept]
    state.state.pop("draw_notice")
    state.delete_samples()
    assert state.handwriting.load()[2] == [] and state.state["draw_delete_ids"] == []
    assert state.state["draw_notice"][0] == "warning" and "not a handwriting sample id" in state.state["draw_notice"][1]


def test_the_picker_keeps_the_learners_choice_else_opens_with_the_shared_or_default_models():
    usable = {"a": {}, "b": {}, "c": {}, "d": {}, "e": {}}

    def never():
        raise AssertionError("the defaults are asked for only on a first visit")

    assert view.chosen_models(usable, ["gone", "b", "a"], ["c"], never) == ["b", "a"]
    assert view.chosen_models(usable, [], ["c"], never) == []  # the learner emptied the picker
    assert view.chosen_models(usable, None, ["gone", "c"], never) == ["c"]
    assert view.chosen_models(usable, None, ["gone"], lambda: ["e", "d"]) == ["e", "d"]
    assert view.chosen_models(usable, None, list(usable), never) == list(usable)[:view.MAX_MODELS]


def test_models_are_labelled_as_plain_text_and_named_as_markdown_shows_them():
    runs = [{"id": "1", "name": "[x](http://y)", "status": "completed", "test_accuracy": 0.5},
            {"id": "2", "name": "twin", "status": "completed"}, {"id": "3", "name": "twin", "status": "completed"}]
    models = view.Models(runs, [{"id": "4", "name": "*broken*"}])
    assert models.label("1") == "[x](http://y) (50.0 %)"
    assert models.name("1") == "\\[x\\]\\(http\u2060\\://y\\) \\(50.0 %\\)"
    assert models.label("2") != models.label("3")  # two runs of one name are told apart
    assert models.damaged_caption == "1 damaged run(s) left out: \\*broken\\*"


def test_the_guess_shows_the_top_digit_and_how_sure_and_nothing_else():
    probabilities = np.full(10, 0.02)
    probabilities[6] = 0.82
    html = view.guess_html(probabilities)
    assert re.sub(r"<[^>]+>", "", html) == "6 82% sure"
    assert 'data-testid=\'draw-guess\'' in html


def chart_layers(probabilities):
    spec = view.probability_chart(np.asarray(probabilities, "float64")).to_dict()
    rows = next(iter(spec["datasets"].values()))
    return spec["layer"], rows


def test_the_chart_colours_the_guess_and_numbers_only_the_readable_bars():
    probabilities = [0.01, 0.04, 0.05, 0.6, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03]
    (bars, numbers), rows = chart_layers(probabilities)
    assert [row["probability"] for row in rows] == probabilities and [row["digit"] for row in rows] == list("0123456789")
    colour = bars["encoding"]["color"]
    assert colour["condition"]["value"] == view.GUESS_COLOUR and colour["value"] == view.OTHER_COLOUR
    assert colour["condition"]["test"] == "(datum.digit === '3')"  # the argmax, wherever it stands
    shown = [row for row in rows if row["probability"] >= view.LABELLED_PROBABILITY]
    assert len(shown) == 5 and f">= {view.LABELLED_PROBABILITY}" in numbers["transform"][0]["filter"]
    assert max(bars["encoding"]["y"]["scale"]["domain"]) > 1  # room above a sure bar for its number


def test_the_models_disagree_only_when_their_guesses_differ():
    three, eight = np.eye(10)[3], np.eye(10)[8]
    assert not view.models_disagree({"a": three})
    assert not view.models_disagree({"a": three, "b": three * 0.9})
    assert view.models_disagree({"a": three, "b": eight, "c": three})


def test_the_epoch_line_sets_an_earlier_epochs_guess_beside_the_last():
    sure, unsure = np.eye(10)[7], np.full(10, 0.1)
    assert re.sub(r"<[^>]+>", "", view.epoch_guess_html(3, sure, 3, sure)) == "Epoch 3: 7, 100 % sure"
    earlier = re.sub(r"<[^>]+>", "", view.epoch_guess_html(1, unsure, 3, sure))
    assert earlier.startswith("Epoch 1: unsure between") and earlier.endswith(" · Epoch 3: 7, 100 % sure")


def test_a_run_without_a_slider_says_whether_it_kept_one_epoch_or_none():
    assert "one epoch only" in view.no_slider_reason([1])
    assert "kept no weights of earlier epochs" in view.no_slider_reason([])


def layer(number: int, height: int, channels: int) -> LayerMaps:
    return LayerMaps(number, f"Conv2D {channels} 3x3", np.zeros((height, height, channels), "float32"))


def test_the_explanations_say_the_epoch_and_the_last_convolutions_grid():
    layers = [layer(1, 26, 32), layer(3, 3, 64)]
    assert "for the guess 5 after epoch 2:" in view.saliency_text(5, 2)
    assert "for the guess 5:" in view.saliency_text(5, None)
    assert "that layer's 3x3 grid" in view.grad_cam_text(5, None, layers)
    assert "**Grad-CAM is empty** for the guess 5 after epoch 1:" in view.empty_grad_cam_text(5, 1)
    assert view.feature_map_caption(layers[0]) == "Layer 1: Conv2D 32 3x3, 32 maps of 26x26"
    assert view.feature_map_caption(layers[1]) == f"Layer 3: Conv2D 64 3x3, 64 maps of 3x3 (first {MAX_CHANNELS} shown)"


def test_a_kept_sample_has_every_mnist_step_whatever_the_switches_say():
    ink = np.zeros((200, 200), "float32")
    ink[30:170, 60:75] = 1.0
    ink[5:8, 190:193] = 1.0  # a speck the standard steps remove
    switched_off = preprocessing.Options(remove_specks=False, crop=False)
    shown = preprocessing.preprocess(ink, switched_off)
    kept = view.standard_sample(shown, switched_off)
    assert np.allclose(kept.image, preprocessing.preprocess(ink).image)
    assert not np.allclose(kept.image, shown.image)
    standard = preprocessing.preprocess(ink)
    assert view.standard_sample(standard, preprocessing.Options()) is standard
    blank = preprocessing.preprocess(np.zeros((50, 50), "float32"), switched_off)
    assert view.standard_sample(blank, switched_off).empty


def test_the_handwriting_table_gives_each_gap_in_points_and_says_which_runs_could_not_be_scored():
    runs = [{"id": "good", "name": "good", "status": "completed", "test_accuracy": 0.99},
            {"id": "new", "name": "new", "status": "completed"},
            {"id": "bad", "name": "bad *net*", "status": "completed", "test_accuracy": 0.9}]
    models = view.Models(runs, [])

    def score(run_id):
        if run_id == "bad":
            raise LabError("Its model file is damaged.")
        return {"good": 0.75, "new": 0.5}[run_id]

    table, problems = view.handwriting_scores(models, ["good", "bad", "new"], score)
    assert list(table["run"]) == [models.label("good"), models.label("new")]
    assert table.loc[0, "gap (points)"] == pytest.approx(24.0)
    assert table["gap (points)"].isna().tolist() == [False, True]
    assert problems == [f"{models.name('bad')}: Its model file is damaged."]
    assert set(view.HANDWRITING_FORMATS) == {"MNIST test", "my handwriting", "gap (points)"}


def test_samples_are_numbered_in_the_set_with_their_digit():
    assert view.sample_captions([7, 3]) == ["1: 7", "2: 3"]
    assert view.sample_choice(["3-abc", "7-def"], "7-def") == "2: a 7"


def test_each_chosen_model_guesses_and_one_that_cannot_says_why_while_the_others_still_guess():
    runs = [{"id": "good", "name": "good", "status": "completed"}, {"id": "bad", "name": "bad", "status": "completed"}]
    models = view.Models(runs, [])
    seven = np.eye(10)[7]

    def predict(run_id):
        if run_id == "bad":
            raise LabError("Its model file is damaged.")
        return seven

    predictions, problems = view.guesses(models, ["bad", "good"], predict)
    assert list(predictions) == ["good"] and problems == [f"{models.name('bad')}: Its model file is damaged."]
    assert view.guess_captions(predictions, lambda run_id: [1]) == []
    captions = view.guess_captions({"a": seven, "b": np.eye(10)[1]}, lambda run_id: [1, 2])
    assert "disagree" in captions[0] and "slide back" in captions[1]


def test_the_prediction_area_asks_for_a_digit_then_for_a_model():
    blank = canvas.preprocess_canvas(None, preprocessing.Options())
    models = view.Models([{"id": "run", "name": "run", "status": "completed"}], [])
    assert view.guess_notice(blank, models, []) == (blank.message, ":material/draw:")
    ink = np.zeros((200, 200), "float32")
    ink[30:170, 60:75] = 1.0
    drawn = preprocessing.preprocess(ink)
    assert view.guess_notice(drawn, models, []) == ("Choose one or more models below.", None)
    assert view.guess_notice(drawn, models, ["run"]) is None
    assert view.guess_notice(drawn, view.Models([], []), []) is None  # the box to the Train page says it
