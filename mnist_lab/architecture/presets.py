"""The ready-made architectures: the notebook's three nets, as it trained them, and two fast modern ones.

They are data, in presets.toml beside this file: each preset's layers, what it is meant to show, and the
training settings it recommends.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mnist_lab.architecture.validation import ArchitectureError, normalize_layers, quoted

PRESETS_FILE = Path(__file__).with_name("presets.toml")


@dataclass(frozen=True)
class Preset:
    id: str
    title: str
    layers: list
    note: str
    from_notebook: bool = True
    training: dict = field(default_factory=dict)


def _read_presets(path: Path) -> dict[str, Preset]:
    """The presets in the file, their layers with every setting filled in and their notes as one line."""
    presets = tomllib.loads(path.read_text(encoding="utf-8"))["preset"]
    return {entry["id"]: Preset(**{**entry, "layers": normalize_layers(entry["layers"]),
                                   "note": " ".join(entry["note"].split())})
            for entry in presets}


PRESETS: dict[str, Preset] = _read_presets(PRESETS_FILE)


def preset_layers(preset_id: str) -> list:
    """A fresh copy of a preset's layers, safe to edit."""
    if preset_id not in PRESETS:
        raise ArchitectureError(f"Unknown preset {quoted(preset_id)}. Presets: {', '.join(PRESETS)}.")
    return copy.deepcopy(PRESETS[preset_id].layers)
