"""Saved architectures: one JSON file per name, in the export format, so they survive a restart.

Layout: `architectures/<name>.json` (or the folder in MNIST_LAB_ARCHITECTURES), each file exactly what
`architectures.to_json` writes, so a saved file can also be handed to `python -m mnist_lab train --arch`.
Only valid architectures are saved; every write is atomic.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mnist_lab import architectures
from mnist_lab.errors import LabError
from mnist_lab.runs import write_atomic

ARCHITECTURES_VARIABLE = "MNIST_LAB_ARCHITECTURES"
NAME_PATTERN = re.compile(r"[A-Za-z0-9 _.\-]{1,60}")
RESERVED_NAMES = ("custom",)


class ArchitectureNotFound(LabError):
    """No saved architecture has this name."""


def default_architectures_dir() -> Path:
    return Path(os.environ.get(ARCHITECTURES_VARIABLE) or "architectures")


def check_name(name) -> str:
    """Return the name if it can be saved under; else raise ValueError saying what to change."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("Give the architecture a name.")
    if not NAME_PATTERN.fullmatch(name):
        if len(name) > 60:
            raise ValueError(f"The name is {len(name)} characters long: use at most 60.")
        odd = "".join(sorted({c for c in name if not NAME_PATTERN.fullmatch(c)}))
        raise ValueError(f"The name contains {odd!r}: use letters, digits, spaces, '-', '_' and '.' only.")
    if name != name.strip() or name.startswith("."):
        raise ValueError("The name must not start with a dot or start or end with a space.")
    if name in architectures.PRESETS:
        raise ValueError(f"{name!r} is the name of a preset: choose another name.")
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"{name!r} stands for an unsaved edit in the lab: choose another name.")
    return name


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True


class ArchitectureStore:
    """Named architectures on disk: list, load, save, delete."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_architectures_dir()

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def list(self) -> list[str]:
        """The saved names, sorted (case-insensitively). Files whose names could not have been saved
        (hidden or temporary files, a preset's name) are left out."""
        if not self.root.is_dir():
            return []
        names = [path.stem for path in self.root.glob("*.json") if path.is_file() and _valid_name(path.stem)]
        return sorted(names, key=lambda name: (name.casefold(), name))

    def load(self, name: str) -> list:
        """The layers saved under this name; ArchitectureError if the file was damaged."""
        path = self.path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ArchitectureNotFound(f"There is no saved architecture called {name!r}.") from None
        except (OSError, UnicodeDecodeError) as error:
            raise architectures.ArchitectureError(
                f"The saved architecture {name!r} cannot be read ({error}).") from None
        try:
            return architectures.from_json(text)[1]
        except architectures.ArchitectureError as error:
            raise architectures.ArchitectureError(
                f"The saved architecture {name!r} ({path}) is damaged: {error}", error.layer_number) from None

    def save(self, name: str, layers: list) -> Path:
        """Save (or replace) an architecture; invalid ones are refused with ArchitectureError."""
        path = self.path(name)
        write_atomic(path, architectures.to_json(layers, name) + "\n")
        return path

    def delete(self, name: str) -> None:
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ArchitectureNotFound(f"There is no saved architecture called {name!r}.") from None
