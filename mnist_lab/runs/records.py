"""A run's run.json and history.json checked against the types the lab writes: a damaged run is told
apart from a good one, with a problem that says what is wrong."""

from __future__ import annotations

import math

from mnist_lab.errors import shown_value
from mnist_lab.runs.statuses import STORED, RunStatus


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _or_none(check):
    return lambda value: value is None or check(value)


_TEXT = (lambda value: isinstance(value, str), "text")
_TEXT_OR_NONE = (_or_none(_TEXT[0]), "text or null")
_WHOLE = (_is_whole, "a whole number")
_WHOLE_OR_NONE = (_or_none(_is_whole), "a whole number or null")
_NUMBER_OR_NONE = (_or_none(_is_number), "a number or null")
_FLAG = (lambda value: isinstance(value, bool), "true or false")
_OBJECT_OR_NONE = (_or_none(lambda value: isinstance(value, dict)), "an object or null")
_NUMBERS = (lambda value: isinstance(value, list) and all(_or_none(_is_number)(v) for v in value),
            "a list of numbers")
_LAYERS = (lambda value: isinstance(value, list) and all(isinstance(layer, dict) for layer in value),
           "a list of layer objects")

# Top-level fields: their type and the value a missing or damaged one is read as.
META_FIELDS = {
    "name": (_TEXT, None), "message": (_TEXT, ""), "created": (_TEXT, ""),
    "started": (_TEXT_OR_NONE, None), "finished": (_TEXT_OR_NONE, None), "pid": (_WHOLE_OR_NONE, None),
    "epochs_done": (_WHOLE, 0), "epoch_seconds": (_NUMBERS, []),
    "test_loss": (_NUMBER_OR_NONE, None), "test_accuracy": (_NUMBER_OR_NONE, None),
    "parameters": (_WHOLE_OR_NONE, None), "multiply_adds": (_WHOLE_OR_NONE, None),
    "device": (_TEXT_OR_NONE, None), "backend": (_TEXT_OR_NONE, None), "executor": (_TEXT_OR_NONE, None),
    "architecture": ((lambda value: isinstance(value, dict), "an object"), {}),
    "settings": ((lambda value: isinstance(value, dict), "an object"), {}),
    "batch_normalization": (_OBJECT_OR_NONE, None), "versions": (_OBJECT_OR_NONE, None),
    "experiment": (_OBJECT_OR_NONE, None),
}
# Fields inside the objects above (a damaged one is read as null).
NESTED_FIELDS = {
    "architecture": {"name": _TEXT_OR_NONE, "label": _TEXT_OR_NONE, "source": _TEXT_OR_NONE,
                     "layers": (_or_none(_LAYERS[0]), _LAYERS[1])},
    "settings": {"epochs": _WHOLE, "batch_size": _WHOLE, "optimizer": _TEXT, "learning_rate": _NUMBER_OR_NONE,
                 "train_size": _WHOLE_OR_NONE, "validation": _TEXT, "validation_size": _WHOLE_OR_NONE,
                 "seed": _WHOLE_OR_NONE, "augment": _FLAG, "schedule": _TEXT},
    "batch_normalization": {"batches": _WHOLE, "caught_up": _NUMBER_OR_NONE, "images": _WHOLE,
                            "validation_accuracy_before": _NUMBER_OR_NONE, "validation_loss_before": _NUMBER_OR_NONE,
                            "test_accuracy_before": _NUMBER_OR_NONE, "test_loss_before": _NUMBER_OR_NONE},
    "experiment": {"id": _TEXT_OR_NONE, "index": _WHOLE_OR_NONE, "value": _TEXT_OR_NONE},
}


def accuracy_before_correction(record: dict) -> float | None:
    """A corrected run's accuracy on held-out images with its lagging BatchNormalization statistics: the
    last epoch's validation score (runs stored before that change kept a test score instead)."""
    for field in ("validation_accuracy_before", "test_accuracy_before"):
        value = record.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _wrong(field: str, value, expected: str) -> str:
    return f"{field} is {shown_value(value)}, not {expected}"


def check_meta(raw, run_id: str) -> dict:
    """run.json's content as the pages may use it: every known field of the right type (missing ones
    filled in), and status DAMAGED with a `problem` when anything is wrong or the file is unreadable."""
    problems = []
    meta = dict(raw) if isinstance(raw, dict) else {}
    if not isinstance(raw, dict):
        problems.append("run.json does not hold an object")
    elif "id" not in raw:
        problems.append("run.json has no id")
    elif raw["id"] != run_id:
        problems.append(f"run.json names run {shown_value(raw['id'])}, but its folder is {run_id}")
    meta["id"] = run_id
    status = meta.get("status")
    if isinstance(raw, dict):
        if "status" not in raw:
            problems.append("run.json has no status")
        elif status not in STORED:
            problems.append(_wrong("its status", status, "one of " + ", ".join(STORED)))
    for field, ((check, expected), default) in META_FIELDS.items():
        if field in meta and not check(meta[field]):
            problems.append(_wrong(field, meta[field], expected))
            meta[field] = default
        meta.setdefault(field, default)
    for field, known in NESTED_FIELDS.items():
        if isinstance(meta[field], dict):
            meta[field] = inner = dict(meta[field])
            for key, (check, expected) in known.items():
                if key in inner and not check(inner[key]):
                    problems.append(_wrong(f"{field}.{key}", inner[key], expected))
                    inner[key] = None
    if meta["name"] is None:
        meta["name"] = run_id
    meta["status"] = RunStatus(status) if status in STORED and not problems else RunStatus.DAMAGED
    if problems:
        meta["problem"] = damage_sentence(problems)
    return meta


def damaged_meta(run_id: str, problem: str) -> dict:
    """The listing of a run whose run.json cannot be read at all."""
    meta = check_meta({"id": run_id, "status": RunStatus.DAMAGED}, run_id)
    meta["problem"] = damage_sentence([problem])
    return meta


def damage_sentence(problems: list[str]) -> str:
    text = "; ".join(problems)
    return f"Damaged: {text}."


def check_history(raw) -> tuple[list[dict], str | None]:
    """(rows, None) for a readable history: dicts with a whole `epoch` from 1 and every other value a
    float or None (a non-finite number is read as None, as training writes it); ([], problem) otherwise."""
    if not isinstance(raw, list):
        return [], "history.json does not hold a list of epochs"
    rows = []
    for number, row in enumerate(raw, start=1):
        if not isinstance(row, dict):
            return [], f"epoch {number} of history.json is {shown_value(row)}, not an object"
        epoch = row.get("epoch")
        if not _is_whole(epoch) or epoch < 1:
            return [], f"epoch {number} of history.json has the epoch number {shown_value(epoch)}"
        clean = {"epoch": epoch}
        for key, value in row.items():
            if key == "epoch":
                continue
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
                return [], f"{key} in epoch {number} of history.json is {shown_value(value)}, not a number"
            clean[str(key)] = float(value) if value is not None and math.isfinite(value) else None
        rows.append(clean)
    return rows, None
