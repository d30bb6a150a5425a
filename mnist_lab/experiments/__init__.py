"""Class experiments: one question, one variable with a few values, the class's runs as the evidence.

    variables      the one registry of what an experiment can vary, and how each value is read and applied
    store          experiments on disk (posed, closed, reopened, archived) and the values handed to learners
    participation  a learner's run of their value, one at a time
    results        each value's summary, the sentence of what the class found, a row per run to export
    timing         how long one run of each value and the whole class take, before the experiment opens
"""

from mnist_lab.experiments.participation import active_part, take_part
from mnist_lab.experiments.results import ValueSummary, findings, result_of, result_rows, summarize, tag_of
from mnist_lab.experiments.store import (EXPERIMENTS_FOLDER, ExperimentStatus, ExperimentStore, check_values, draft,
                                         value_request)
from mnist_lab.experiments.timing import LessonEstimate, estimate_lesson, lesson_estimate, value_run_seconds
from mnist_lab.experiments.variables import MAX_VALUES, MIN_VALUES, VARIABLES, ExperimentError, parse_values, variable

__all__ = [
    "EXPERIMENTS_FOLDER", "MAX_VALUES", "MIN_VALUES", "VARIABLES", "ExperimentError", "ExperimentStatus",
    "ExperimentStore", "LessonEstimate", "ValueSummary", "active_part", "check_values", "draft", "estimate_lesson", "findings",
    "lesson_estimate", "parse_values", "result_of", "result_rows", "summarize", "tag_of", "take_part",
    "value_request", "value_run_seconds", "variable",
]
