"""The notebook's three published results, as comparison rows next to the learner's own runs.

`reference_results.json` is a copy of the numbers the seed notebook printed: each net's parameter
count, test score, seconds per epoch and its 12-epoch history. Where the notebook's printed log is
unreadable the value is null; it stays None here, so that a chart shows a gap, never a zero.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.errors import LabError

REFERENCE_FILE = Path(__file__).with_name("reference_results.json")
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
KEY_PREFIX = "notebook:"

# How the notebook trained all three nets (its first cells): the same for every reference row.
NOTEBOOK_SETTINGS = {
    "epochs": 12,
    "batch_size": 128,
    "optimizer": "adam",
    "learning_rate": 0.001,  # Keras 2's default for Adam; the notebook did not set one
    "train_size": 60000,
    "validation": "test",
    "validation_size": 10000,
    "augment": False,
}
NOTEBOOK_DEVICE = "the notebook's machine (Keras 2, TensorFlow)"


class ReferenceResultsError(LabError):
    """The reference file is missing or not in the expected format."""


@dataclass(frozen=True)
class ReferenceResult:
    """One of the notebook's nets: `preset` is the id of the matching preset in architecture.presets.PRESETS."""

    preset: str
    title: str
    total_parameters: int
    test_loss: float | None
    test_accuracy: float | None
    seconds_per_epoch: float | None
    history: tuple[dict, ...]

    @property
    def key(self) -> str:
        """Its id among runs: never a valid run id, so the two cannot collide."""
        return KEY_PREFIX + self.preset

    @property
    def name(self) -> str:
        return f"Notebook: {self.title}"


def is_reference_key(key: str) -> bool:
    return isinstance(key, str) and key.startswith(KEY_PREFIX)


def _number(value, what):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReferenceResultsError(f"{what} must be a number or null, not {value!r}.")
    return float(value)


def parse_references(document: dict) -> list[ReferenceResult]:
    """Check and convert the JSON document; a clear ReferenceResultsError on anything unexpected."""
    if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
        raise ReferenceResultsError("The reference file needs a 'models' object, one entry per notebook net.")
    columns = document.get("columns", list(HISTORY_COLUMNS))
    if list(columns) != list(HISTORY_COLUMNS):
        raise ReferenceResultsError(f"The reference history columns must be {list(HISTORY_COLUMNS)}, not {columns}.")
    results = []
    for preset, model in document["models"].items():
        where = f"reference {preset!r}"
        if not isinstance(model, dict) or not isinstance(model.get("history"), list):
            raise ReferenceResultsError(f"The {where} needs a 'history' list.")
        history = []
        for number, row in enumerate(model["history"], start=1):
            if not isinstance(row, list) or len(row) != len(HISTORY_COLUMNS):
                raise ReferenceResultsError(f"Row {number} of the {where} history must have {len(HISTORY_COLUMNS)} "
                                     f"values ({', '.join(HISTORY_COLUMNS)}).")
            epoch = _number(row[0], f"The epoch in row {number} of the {where}")
            if epoch is None or epoch != int(epoch) or epoch < 1:
                raise ReferenceResultsError(f"The epoch in row {number} of the {where} must be a whole number from 1.")
            values = {column: _number(value, f"{column} in row {number} of the {where}")
                      for column, value in zip(HISTORY_COLUMNS[1:], row[1:])}
            history.append({"epoch": int(epoch), **values})
        params = model.get("params") or {}
        results.append(ReferenceResult(
            preset=str(preset),
            title=str(model.get("title") or preset),
            total_parameters=int(params.get("total") or 0),
            test_loss=_number(model.get("test_loss"), f"test_loss of the {where}"),
            test_accuracy=_number(model.get("test_accuracy"), f"test_accuracy of the {where}"),
            seconds_per_epoch=_number(model.get("seconds_per_epoch"), f"seconds_per_epoch of the {where}"),
            history=tuple(history),
        ))
    return results


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[ReferenceResult, ...]:
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReferenceResultsError(f"The notebook's reference results are missing ({path}).") from None
    except ValueError as error:
        raise ReferenceResultsError(f"The reference file {path} is not valid JSON ({error}).") from None
    return tuple(parse_references(document))


def load_references(path: str | Path | None = None) -> list[ReferenceResult]:
    """The notebook's nets in the file's order (3, 5, 7 layers); read once per process."""
    return list(_load(str(path or REFERENCE_FILE)))


def reference(preset: str, path: str | Path | None = None) -> ReferenceResult:
    """One reference by preset id ("seed-3layer") or by key ("notebook:seed-3layer")."""
    preset = preset[len(KEY_PREFIX):] if is_reference_key(preset) else preset
    for result in load_references(path):
        if result.preset == preset:
            return result
    known = ", ".join(result.preset for result in load_references(path))
    raise ReferenceResultsError(f"The notebook has no result for {preset!r}; it has {known}.")
