"""Edits of an architecture's layer list: add, move, remove, change a setting, and size pairs typed as text.

Every edit returns a new list, so the list held in the session is never changed behind the page's back.
"""

from __future__ import annotations

import copy
import re

from mnist_lab.architecture.validation import default_layer

IMAGE_TYPES = ("Conv2D", "MaxPooling2D", "AveragePooling2D")
FLATTENING_TYPES = ("Flatten", "GlobalAveragePooling2D")
PAIR_KINDS = ("pair", "optional_pair")  # settings typed as "3x5"
_PAIR = re.compile(r"\s*\(?\s*(-?\d+)\s*(?:[x×X,*]\s*(-?\d+)\s*)?\)?\s*")


def insert_layer(layers: list, type_name: str, position: int) -> list:
    """A copy with a new layer of this type (default settings) at position (0 = first)."""
    if not 0 <= position <= len(layers):
        raise ValueError(f"Position {position} is outside 0..{len(layers)}.")
    edited = copy.deepcopy(layers)
    edited.insert(position, default_layer(type_name))
    return edited


def suggested_position(layers: list, type_name: str) -> int:
    """Where a new layer most likely belongs: image layers (and BatchNormalization) before the first
    Flatten, GlobalAveragePooling2D or Dense; a Flatten before the first Dense; the rest at the end."""
    if type_name in IMAGE_TYPES + ("BatchNormalization",):
        stops = FLATTENING_TYPES + ("Dense",)
    elif type_name in FLATTENING_TYPES:
        stops = ("Dense",)
    else:
        return len(layers)
    for index, layer in enumerate(layers):
        if isinstance(layer, dict) and layer.get("type") in stops:
            return index
    return len(layers)


def move_layer(layers: list, index: int, offset: int) -> list:
    """A copy with the layer at index moved up (offset -1) or down (+1); unchanged at the ends."""
    edited = copy.deepcopy(layers)
    target = index + offset
    if 0 <= index < len(edited) and 0 <= target < len(edited):
        edited[index], edited[target] = edited[target], edited[index]
    return edited


def remove_layer(layers: list, index: int) -> list:
    edited = copy.deepcopy(layers)
    if 0 <= index < len(edited):
        del edited[index]
    return edited


def set_setting(layers: list, index: int, name: str, value) -> list:
    """A copy with one setting changed. The value is stored as given: analyze() judges it."""
    edited = copy.deepcopy(layers)
    edited[index][name] = value
    return edited


def pair_text(value) -> str:
    """How a size pair is shown for editing: [3, 5] -> "3x5", 2 -> "2x2", None -> ""."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]}x{value[1]}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}x{value}"
    return str(value)


def parse_pair(text: str):
    """"3" -> [3, 3], "3x5" (or "3,5", "3×5", "(3, 5)") -> [3, 5], "" -> None. Anything else is returned as
    typed, so that validation names the layer and the setting."""
    text = (text or "").strip()
    if not text:
        return None
    match = _PAIR.fullmatch(text)
    if not match:
        return text
    first = int(match.group(1))
    second = int(match.group(2)) if match.group(2) is not None else first
    return [first, second]
