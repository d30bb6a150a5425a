"""Where an architecture comes from, named one way: a preset, a saved architecture, the one being edited on
the Architecture page, or an imported JSON file. Each becomes the same dict (name, source, label, layers),
the form a run stores and the trainer builds from."""

from __future__ import annotations

from pathlib import Path

from mnist_lab import architectures
from mnist_lab.errors import LabError


def preset_architecture(preset_id: str) -> dict:
    return {"name": preset_id, "source": "preset", "layers": architectures.preset_layers(preset_id)}


def saved_architecture(name: str) -> dict:
    from mnist_lab.architecture_store import ArchitectureStore

    return {"name": name, "source": "saved", "layers": ArchitectureStore().load(name)}


def custom_architecture(layers: list, label: str = "custom") -> dict:
    """An architecture that is neither a preset nor saved, e.g. the one being edited, or a file."""
    return {"name": "custom", "source": "custom", "layers": layers, "label": label or "custom"}


def saved_architecture_names() -> list[str]:
    """The saved architectures' names; none if the store is missing or unreadable."""
    try:
        from mnist_lab.architecture_store import ArchitectureStore

        return list(ArchitectureStore().list())
    except (ImportError, OSError, ValueError):
        return []


def architecture_from_argument(text: str) -> dict:
    """A preset id, a saved architecture's name, or the path of an exported architecture JSON file."""
    if text in architectures.PRESETS:
        return preset_architecture(text)
    path = Path(text)
    if text.endswith(".json") or path.is_file():
        try:
            source = path.read_text()
        except OSError as error:
            raise LabError(f"Cannot read the architecture file {text} ({error.strerror or error}).") from None
        name, layers = architectures.from_json(source)
        return custom_architecture(layers, label=name)
    if text in saved_architecture_names():
        return saved_architecture(text)
    raise LabError(f"Unknown architecture {text!r}: use a preset ({', '.join(architectures.PRESETS)}), "
                     "a saved architecture's name, or the path of an architecture .json file.")


def check_architecture(architecture: dict) -> tuple[dict, architectures.ArchitectureReport]:
    """Validate an architecture dict; returns it with normalised layers, and its report."""
    if not isinstance(architecture, dict) or not isinstance(architecture.get("layers"), list):
        raise LabError("An architecture is a dict with a 'layers' list.")
    if architecture.get("source") not in ("preset", "saved", "custom"):
        raise LabError("An architecture's source must be 'preset', 'saved' or 'custom'.")
    layers = [architectures.normalize_layer(layer, number)
              for number, layer in enumerate(architecture["layers"], start=1)]
    report = architectures.analyze(layers)
    return {**architecture, "layers": layers}, report

