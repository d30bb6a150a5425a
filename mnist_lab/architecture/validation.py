"""A layer's settings checked against the registry and filled in with their defaults.

Nothing a learner types is executed: a bad setting gets an ArchitectureError that names the layer and the
setting to change, whatever the value (a number of any size, NaN, deep nesting, any type).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from mnist_lab.architecture.layers import LAYER_TYPES, Parameter
from mnist_lab.errors import LabError, shown_value

MAX_NAMED = 5  # unknown settings a message lists by name


class ArchitectureError(LabError):
    """An architecture that cannot be built, with the 1-based number of the layer at fault."""

    def __init__(self, message: str, layer_number: int | None = None):
        super().__init__(message)
        self.layer_number = layer_number


@dataclass(frozen=True)
class LongNumber:
    """A whole number in JSON too long for Python to read: kept as its length and sign, so that the layer's
    check names the setting and its limit."""

    digits: int
    negative: bool = False

    def __repr__(self):
        return f"a {self.digits:,}-digit {'negative ' if self.negative else ''}number"


def quoted(value) -> str:
    """A value as a message quotes it, cut short: a 1 MB string, a 400-digit number or a list nested
    10,000 deep each give a few words, never an exception."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 30:
        return f"a {math.floor(math.log10(abs(value))) + 1:,}-digit {'negative ' if value < 0 else ''}number"
    try:
        return shown_value(value)
    except (ValueError, RecursionError):  # ints over 4,300 digits inside a list; nesting deeper than repr goes
        return f"a {type(value).__name__} too large to show"


def _layer_type(type_name, number):
    if not isinstance(type_name, str) or type_name not in LAYER_TYPES:
        where = f"Layer {number}: " if number else ""
        known = ", ".join(LAYER_TYPES)
        raise ArchitectureError(f"{where}unknown layer type {quoted(type_name)}. Use one of: {known}.", number)
    return LAYER_TYPES[type_name]


def default_layer(type_name: str) -> dict:
    """A new layer of this type with every setting at its default."""
    layer_type = _layer_type(type_name, None)
    layer = {"type": type_name}
    for parameter in layer_type.parameters:
        layer[parameter.name] = copy.deepcopy(parameter.default)
    return layer


def _as_int(value):
    """Whole numbers, also written as floats (3.0); ints of any size (math.isfinite overflows on them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"must be a whole number, not {quoted(value)}")
    return int(value)


def as_pair(value):
    """A size as [height, width]; one number means a square."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"must be a whole number or a pair of whole numbers, not {quoted(value)}")
    try:
        return [_as_int(v) for v in value]
    except ValueError:
        raise ValueError(f"must be a whole number or a pair of whole numbers, not {quoted(value)}") from None


def normalize_layer(layer: dict, number: int | None = None) -> dict:
    """Check one layer's settings against the registry; return it with defaults filled in.

    Raises ArchitectureError naming the layer and the setting to change.
    """
    if not isinstance(layer, dict):
        raise ArchitectureError(f"Layer {number} must be an object with a 'type', not {quoted(layer)}.", number)
    layer_type = _layer_type(layer.get("type"), number)
    known = {parameter.name for parameter in layer_type.parameters} | {"type"}
    unknown = sorted(key if isinstance(key, str) and len(key) <= 40 else quoted(key) for key in set(layer) - known)
    if unknown:
        allowed = ", ".join(p.name for p in layer_type.parameters) or "none"
        shown = ", ".join(unknown[:MAX_NAMED]) + (f" and {len(unknown) - MAX_NAMED:,} more"
                                                  if len(unknown) > MAX_NAMED else "")
        raise ArchitectureError(
            f"Layer {number} ({layer_type.name}) has unknown setting(s) {shown}; "
            f"its settings are: {allowed}.", number)
    result = {"type": layer_type.name}
    for parameter in layer_type.parameters:
        value = layer.get(parameter.name, copy.deepcopy(parameter.default))
        where = f"Layer {number} ({layer_type.name}) {parameter.name}"
        try:
            result[parameter.name] = _check_value(parameter, value)
        except ValueError as error:
            raise ArchitectureError(f"{where}: {error}.", number) from None
    return result


def normalize_layers(layers: list) -> list:
    """Every layer normalised, numbered from 1."""
    return [normalize_layer(layer, number) for number, layer in enumerate(layers, start=1)]


def _check_value(parameter: Parameter, value):
    if isinstance(value, LongNumber) and parameter.kind in ("int", "float"):
        limit = f"at least {parameter.minimum:g}" if value.negative else f"at most {parameter.maximum:g}"
        raise ValueError(f"must be {limit}, not {value!r}")
    if parameter.kind == "choice":
        if isinstance(value, bool) or value not in parameter.choices:
            raise ValueError(f"{quoted(value)} is not one of {', '.join(map(str, parameter.choices))}")
        return parameter.choices[parameter.choices.index(value)]
    if parameter.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a number, not {quoted(value)}")
        if not parameter.minimum <= value < parameter.maximum:
            shown = f"{value:g}" if isinstance(value, float) else quoted(value)
            raise ValueError(f"must be at least {parameter.minimum:g} and below {parameter.maximum:g}, "
                             f"not {shown}")
        return float(value)
    if parameter.kind == "optional_pair" and value is None:
        return None
    try:
        values = [_as_int(value)] if parameter.kind == "int" else as_pair(value)
    except ValueError as error:
        if parameter.kind == "optional_pair":
            raise ValueError(f"{error}; leave it empty to use the pool size") from None
        raise
    for v in values:
        if v < parameter.minimum:
            raise ValueError(f"must be at least {parameter.minimum:g}, not {quoted(v)}")
        if v > parameter.maximum:
            raise ValueError(f"must be at most {parameter.maximum:g}, not {quoted(v)}")
    return values[0] if parameter.kind == "int" else values
