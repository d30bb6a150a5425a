"""Saved architectures: one JSON file per name, in the export format, so they survive a restart.

Layout: `architectures/<name>.json` (or the folder in MNIST_LAB_ARCHITECTURES), each file exactly what
`json_format.to_json` writes, so a saved file can also be handed to `python -m mnist_lab train --arch`.
Only valid architectures are saved; every write is atomic. A name typed with the file's ending ("wide.json")
means the same architecture as without it ("wide"): the ending is left out of the name, and the file is
`wide.json`, never `wide.json.json`. A saved file also records its owner, the learner who saved it
(`owner`, `owner_name`: keys the import ignores); only they or the teacher may replace or delete it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mnist_lab.architecture.json_format import from_json, to_json
from mnist_lab.architecture.presets import PRESETS
from mnist_lab.architecture.validation import ArchitectureError
from mnist_lab.errors import LabError, shown_value
from mnist_lab.classroom.learners import Actor
from mnist_lab.runs import write_atomic

ARCHITECTURES_VARIABLE = "MNIST_LAB_ARCHITECTURES"
NAME_PATTERN = re.compile(r"[A-Za-z0-9 _.\-]{1,60}")
RESERVED_NAMES = ("custom",)
SUFFIX = ".json"


class ArchitectureNotFound(LabError):
    """No saved architecture has this name."""


class ArchitectureNameError(ArchitectureError):
    """A name an architecture cannot be saved under, with what to change."""


def default_architectures_dir() -> Path:
    return Path(os.environ.get(ARCHITECTURES_VARIABLE) or "architectures")


def check_name(name) -> str:
    """The name an architecture is saved under: as typed, less a ".json" ending (any case) that names the file.

    Raises ArchitectureNameError (a ValueError) saying what to change.
    """
    if isinstance(name, str) and name.lower().endswith(SUFFIX):
        name = name[: -len(SUFFIX)]
    if not isinstance(name, str) or not name.strip():
        raise ArchitectureNameError("Give the architecture a name.")
    if not NAME_PATTERN.fullmatch(name):
        if len(name) > 60:
            raise ArchitectureNameError(f"The name is {len(name):,} characters long: use at most 60.")
        odd = "".join(sorted({c for c in name if not NAME_PATTERN.fullmatch(c)}))
        raise ArchitectureNameError(
            f"The name contains {shown_value(odd)}: use letters, digits, spaces, '-', '_' and '.' only.")
    if name != name.strip() or name.startswith("."):
        raise ArchitectureNameError("The name must not start with a dot or start or end with a space.")
    if name.lower().endswith(SUFFIX):
        raise ArchitectureNameError(f"The name {name!r} ends in {SUFFIX} twice: leave the ending out.")
    if name in PRESETS:
        raise ArchitectureNameError(f"{name!r} is the name of a preset: choose another name.")
    if name.lower() in RESERVED_NAMES:
        raise ArchitectureNameError(f"{name!r} stands for an unsaved edit in the lab: choose another name.")
    return name


def _saved_name(stem: str) -> bool:
    """Whether a file's stem is a name save() could have written (not hidden or temporary, not a preset's)."""
    try:
        return check_name(stem) == stem
    except ValueError:
        return False


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
        names = [path.stem for path in self.root.glob("*.json") if path.is_file() and _saved_name(path.stem)]
        return sorted(names, key=lambda name: (name.casefold(), name))

    def load(self, name: str) -> list:
        """The layers saved under this name (with or without ".json"); ArchitectureNotFound if there are none,
        ArchitectureError if the file was damaged."""
        path = self.path(name)
        name = path.stem
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ArchitectureNotFound(f"There is no saved architecture called {name!r}.") from None
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise ArchitectureError(
                f"The saved architecture {name!r} cannot be read ({reason}).") from None
        try:
            return from_json(text)[1]
        except ArchitectureError as error:
            raise ArchitectureError(
                f"The saved architecture {name!r} is damaged: {error}", error.layer_number) from None

    def record(self, name: str) -> dict:
        """Who owns a saved architecture ({"owner", "owner_name"}, empty for none or an unreadable file)."""
        try:
            data = json.loads(self.path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {key: data[key] for key in ("owner", "owner_name") if isinstance(data.get(key), str)}

    def save(self, name: str, layers: list, owner: tuple[str, str] | None = None, by: Actor | None = None) -> Path:
        """Save (or replace) an architecture under check_name(name), the path's stem; invalid ones are refused
        with ArchitectureError. `owner` (public id, name) is recorded; replacing one saved by someone else
        is refused with NotYours unless `by` may change it (None: the command line, which may)."""
        path = self.path(name)
        if by is not None and path.is_file():
            by.check_may_change(self.record(path.stem), "replace", "architecture")
        exported = json.loads(to_json(layers, path.stem))
        if owner is not None:
            exported.update(owner=owner[0], owner_name=owner[1])
        write_atomic(path, json.dumps(exported, indent=2) + "\n")
        return path

    def delete(self, name: str, by: Actor | None = None) -> None:
        """Delete a saved architecture; NotYours when `by` may not (None: the command line, which may)."""
        path = self.path(name)
        if by is not None and path.is_file():
            by.check_may_change(self.record(path.stem), "delete", "architecture")
        try:
            path.unlink()
        except FileNotFoundError:
            raise ArchitectureNotFound(f"There is no saved architecture called {path.stem!r}.") from None
