"""Architectures as JSON files, to export, import and save: the layers without the implied output layer."""

from __future__ import annotations

import json

from mnist_lab.architecture.report import analyze
from mnist_lab.architecture.validation import ArchitectureError, LongNumber, normalize_layers

ARCHITECTURE_FORMAT = "mnist-lab-architecture"
MAX_NAME_LENGTH = 60  # an imported architecture's name is cut to this
MAX_READ_DIGITS = 4000  # Python refuses to read ints over 4,300 digits, with a message about its own settings


def to_json(layers: list, name: str) -> str:
    """Export an architecture; the output layer is implied and not written."""
    analyze(layers)
    return json.dumps({"format": ARCHITECTURE_FORMAT, "version": 1, "name": name, "layers": normalize_layers(layers)},
                      indent=2)


def _parse_int(text: str):
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_READ_DIGITS else LongNumber(digits, text.startswith("-"))


def imported_name(name) -> str:
    """The name an imported file gives itself, as one line of at most MAX_NAME_LENGTH characters; "imported" if
    it gives none (or something that is not text)."""
    if not isinstance(name, str) or not name.strip():
        return "imported"
    return " ".join(name.split())[:MAX_NAME_LENGTH]


def from_json(text: str | bytes) -> tuple[str, list]:
    """Import an architecture exported by to_json (or a bare list of layers): returns (name, layers).

    The name is cut to MAX_NAME_LENGTH characters; it is the learner's to show as text, not Markdown.
    """
    try:
        data = json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError) as error:
        raise ArchitectureError(
            f"This is not valid JSON ({str(error)[:120]}). Export an architecture to see the format.") from None
    except TypeError:
        raise ArchitectureError("An architecture is JSON text; export one to see the format.") from None
    if isinstance(data, list):
        name, layers = "imported", data
    elif isinstance(data, dict) and isinstance(data.get("layers"), list):
        name, layers = imported_name(data.get("name")), data["layers"]
    else:
        raise ArchitectureError(
            "The JSON must be a list of layers or an object with a 'layers' list, "
            'e.g. {"name": "mine", "layers": [{"type": "Flatten"}]}.')
    layers = normalize_layers(layers)
    analyze(layers)
    return name, layers
