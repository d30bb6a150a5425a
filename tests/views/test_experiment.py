"""Sentences about a class experiment: the answer a learner gets to Train it, and the teacher's estimate."""

from mnist_lab.experiments import LessonEstimate
from mnist_lab.views.experiment import lesson_text, part_accepted


def test_train_it_says_whether_the_run_trains_now_or_where_it_waits_and_for_how_long():
    assert "training" in part_accepted(None, None)
    waiting = part_accepted(7, 95.0)
    assert "number 7 in the queue" in waiting and "about 1 min 35 s" in waiting
    assert "number 2 in the queue." in part_accepted(2, None)  # no speed measured yet: no time promised


def test_the_lesson_estimate_names_each_value_and_the_whole_class():
    text = lesson_text(LessonEstimate(run_seconds=(40.0, 20.0), class_seconds=600.0, learners=30, concurrent=2),
                       ["batch size 32", "batch size 128"])
    assert "batch size 32 40 s" in text and "whole class of 30, 2 training at once: about 10 min 00 s" in text
    assert "still measuring" in lesson_text(None, ["batch size 32"])
