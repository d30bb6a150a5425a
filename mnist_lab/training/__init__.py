"""Training runs, one module per concept; pages and the command line import the names below.

    settings          TrainSettings, the optimizer and schedule registries, limits and choices
    progress          LiveState (a run's progress), the Keras callback, the live.json publisher
    fitting           the fit loop of one run: data split, build, fit, save each epoch, test scores
    speed             this machine's measured speed, and epoch-time estimates from it
    executors         where runs train (thread, process, ray) behind one RunHandle interface: a package,
                      with the worker processes (one kept warm) and Ray tasks
    plans             the Train page's form: a net's recipe, the one-click plans
    manager           the queue that hands runs to an executor, stops them and reports on them
    limits            how many runs train at once and wait, by default and as the environment sets
    background        every manager's runs in this process: waiting for them, stopping them at exit
"""

from mnist_lab.training.executors.base import ExecutorUnavailable, RunHandle
from mnist_lab.training.executors.choice import EXECUTOR_NAMES, EXECUTOR_VARIABLE, executor_name, make_executor
from mnist_lab.training.executors.thread import ThreadExecutor
from mnist_lab.training import plans
from mnist_lab.training.fitting import (KERAS_SETUP_LOCK, FitOutcome, batch_normalization_lag, build_for_training,
                                        device_details, fit_epochs, prepare_arrays, readable_error,
                                        reestimate_batch_normalization, save_model_atomic, split_indices,
                                        test_scores, train_run)
from mnist_lab.training.background import wait_for_background, wait_for_run
from mnist_lab.training.limits import MAX_CONCURRENT_VARIABLE, MAX_QUEUED_VARIABLE
from mnist_lab.training.manager import QueueFull, TrainingManager
from mnist_lab.training.progress import (DIVERGED_MESSAGE, PUBLISH_SECONDS, SMOOTHING, LivePublisher, LiveState,
                                         StopRequested, TrainingDiverged, live_metrics_class)
from mnist_lab.training.settings import (BATCH_SIZE_CHOICES, LEARNING_RATE_CHOICES, MAX_EPOCHS, MAX_NAME_LENGTH,
                                         OPTIMIZERS, SCHEDULES, TEST_VALIDATION_NOTE, VALIDATION_CHOICES,
                                         SettingsError, TrainSettings, clean_run_name, default_holdout,
                                         learning_rate_schedule, preset_training_defaults, settings_fields,
                                         training_size_choices)
from mnist_lab.training.speed import (CALIBRATION_FILE, EpochEstimate, SpeedCalibration, SpeedEstimator, calibrate,
                                      estimate_epoch)

__all__ = [
    "batch_normalization_lag",
    "BATCH_SIZE_CHOICES",
    "build_for_training",
    "calibrate",
    "CALIBRATION_FILE",
    "clean_run_name",
    "default_holdout",
    "device_details",
    "DIVERGED_MESSAGE",
    "EpochEstimate",
    "estimate_epoch",
    "executor_name",
    "EXECUTOR_NAMES",
    "EXECUTOR_VARIABLE",
    "ExecutorUnavailable",
    "fit_epochs",
    "FitOutcome",
    "KERAS_SETUP_LOCK",
    "LEARNING_RATE_CHOICES",
    "learning_rate_schedule",
    "live_metrics_class",
    "LivePublisher",
    "LiveState",
    "make_executor",
    "MAX_CONCURRENT_VARIABLE",
    "MAX_EPOCHS",
    "MAX_NAME_LENGTH",
    "MAX_QUEUED_VARIABLE",
    "OPTIMIZERS",
    "plans",
    "prepare_arrays",
    "preset_training_defaults",
    "PUBLISH_SECONDS",
    "QueueFull",
    "readable_error",
    "reestimate_batch_normalization",
    "RunHandle",
    "save_model_atomic",
    "SCHEDULES",
    "settings_fields",
    "SettingsError",
    "SMOOTHING",
    "SpeedCalibration",
    "SpeedEstimator",
    "split_indices",
    "StopRequested",
    "test_scores",
    "TEST_VALIDATION_NOTE",
    "ThreadExecutor",
    "train_run",
    "training_size_choices",
    "TrainingDiverged",
    "TrainingManager",
    "TrainSettings",
    "VALIDATION_CHOICES",
    "wait_for_background",
    "wait_for_run",
]
