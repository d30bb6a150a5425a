"""The run store: every training run on disk, so that no stop, crash or refresh loses one.

statuses.py: the one status type; files.py: atomic, locked writes and checked reads; records.py: what a
run.json and a history must hold; store.py: the RunStore.

Layout, one folder per run under `runs/` (or MNIST_LAB_RUNS):

    runs/<run_id>/run.json      metadata: name, architecture, settings, status, timings, test scores
    runs/<run_id>/history.json  one dict per finished epoch (loss, accuracy, val_loss, val_accuracy, seconds)
    runs/<run_id>/live.json     the running epoch's smoothed per-batch curve and progress, rewritten ~1/s
    runs/<run_id>/model.keras   the trained model (written when training ends, stopped runs too)
    runs/<run_id>/epochs/epoch-NNN.weights.h5
                                the weights after each finished epoch (Keras' weights-only format), for
                                the Draw page's epoch slider; at most EPOCH_WEIGHTS_LIMIT bytes a run
    runs/<run_id>/STOP          present when a stop was asked for (works across processes)
    runs/<run_id>/.staged/      the model and weights of the epoch being saved, until its history row
                                commits them (see commit_epoch)

Every file is written atomically (temporary file, then rename), so a reader never sees half a file,
with the mode the umask gives, so a server running as another user than the command line reads it;
every read-change-write of a run's files holds the run's lock (locked_folder), so no writer loses another's.
Everything read is checked against the types the lab writes: a run whose files are damaged (edited
by hand, copied half-way, unreadable) is listed with the status `damaged` and a `problem` that says
what is wrong, and every other run is shown as before.
"""

from mnist_lab.runs.files import locked_folder, now_iso, pid_alive, read_json, write_atomic, write_json
from mnist_lab.runs.records import accuracy_before_correction, check_history, check_meta, damaged_meta
from mnist_lab.runs.statuses import ACTIVE, STORED, USABLE, RunStatus
from mnist_lab.runs.store import (EPOCH_FILE, EPOCH_WEIGHTS_LIMIT, EPOCHS_FOLDER, MODEL_FILE, RUN_ID_PATTERN,
                                  RUNS_VARIABLE, STAGED_FOLDER, ModelUnavailable, RunDamaged, RunNotFound, RunStore,
                                  default_runs_dir)

__all__ = [
    "ACTIVE", "EPOCH_FILE", "EPOCH_WEIGHTS_LIMIT", "EPOCHS_FOLDER", "MODEL_FILE", "RUN_ID_PATTERN", "RUNS_VARIABLE",
    "STAGED_FOLDER", "STORED", "USABLE", "ModelUnavailable", "RunDamaged", "RunNotFound", "RunStatus", "RunStore",
    "accuracy_before_correction", "check_history", "check_meta", "damaged_meta", "default_runs_dir", "locked_folder",
    "now_iso", "pid_alive", "read_json", "write_atomic", "write_json",
]
