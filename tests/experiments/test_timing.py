"""The lesson's time: the queue's order played out on the server's training slots."""

import pytest

from mnist_lab.experiments import lesson_estimate


def test_runs_share_the_slots_in_the_order_learners_join():
    # Two slots, values of 10 s and 30 s handed out in turn: 10|30 start at 0, then 10 at 10 s, 30 at 20 s.
    estimate = lesson_estimate([10.0, 30.0], learners=4, concurrent=2)
    assert estimate.class_seconds == 50.0
    assert estimate.run_seconds == (10.0, 30.0)


def test_more_slots_than_learners_take_as_long_as_the_longest_run():
    assert lesson_estimate([10.0, 30.0, 20.0], learners=3, concurrent=8).class_seconds == 30.0


def test_one_slot_takes_the_sum_of_every_run():
    assert lesson_estimate([5.0, 7.0], learners=5, concurrent=1).class_seconds == 5 + 7 + 5 + 7 + 5


def test_an_empty_experiment_or_class_is_refused_plainly():
    with pytest.raises(ValueError, match="at least one value"):
        lesson_estimate([], 30, 2)
    with pytest.raises(ValueError, match="at least one learner"):
        lesson_estimate([10.0], 0, 2)
