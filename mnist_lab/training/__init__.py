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

import importlib

# Each module of this package and the public names it defines. A name's module is imported when the
# name is first used (PEP 562): the manager and the fit loop import pandas and, in time, Keras, which a
# page that only reads the settings or shows the class experiment must not wait for (Home's first render
# on a fresh server took 0.5-0.8 s longer when this file imported them all).
_MODULE_NAMES = {
    "executors.base": "ExecutorUnavailable RunHandle",
    "executors.choice": "EXECUTOR_NAMES EXECUTOR_VARIABLE executor_name make_executor",
    "executors.thread": "ThreadExecutor",
    "plans": "plans",
    "fitting": "KERAS_SETUP_LOCK FitOutcome batch_normalization_lag build_for_training device_details fit_epochs "
               "prepare_arrays readable_error reestimate_batch_normalization save_model_atomic split_indices "
               "test_scores train_run",
    "background": "wait_for_background wait_for_run",
    "limits": "MAX_CONCURRENT_VARIABLE MAX_QUEUED_VARIABLE",
    "manager": "QueueFull TrainingManager",
    "progress": "DIVERGED_MESSAGE PUBLISH_SECONDS SMOOTHING LivePublisher LiveState StopRequested TrainingDiverged "
                "live_metrics_class",
    "settings": "BATCH_SIZE_CHOICES LEARNING_RATE_CHOICES MAX_EPOCHS MAX_NAME_LENGTH OPTIMIZERS SCHEDULES "
                "TEST_VALIDATION_NOTE VALIDATION_CHOICES SettingsError TrainSettings clean_run_name default_holdout "
                "learning_rate_schedule preset_training_defaults settings_fields training_size_choices",
    "speed": "CALIBRATION_FILE EpochEstimate SpeedCalibration SpeedEstimator calibrate estimate_epoch",
}
_HOMES = {name: module for module, names in _MODULE_NAMES.items() for name in names.split()}
__all__ = sorted(_HOMES, key=str.lower)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_HOMES[name]}")
    value = module if _HOMES[name] == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
