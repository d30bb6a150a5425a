"""Where an architecture comes from, named one way: a preset, a saved architecture, the one being edited on
the Architecture page, or an imported JSON file. Each becomes the same dict (name, source, label, layers),
the form a run stores and the trainer builds from."""

from __future__ import annotations

from pathlib import Path

from mnist_lab.architecture.json_format import from_json
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import ArchitectureReport, analyze
from mnist_lab.architecture.validation import normalize_layers
from mnist_lab.errors import LabError, shown_value


SOURCES = ("preset", "saved", "edited", "imported")
UNNAMED = "custom"  # the architecture name runs of an edited or imported net are listed under


def preset_architecture(preset_id: str) -> dict:
    return {"name": preset_id, "source": "preset", "layers": preset_layers(preset_id)}


def saved_architecture(name: str) -> dict:
    from mnist_lab.architecture.saved import ArchitectureStore

    return {"name": name, "source": "saved", "layers": ArchitectureStore().load(name)}


def custom_architecture(layers: list, label: str = UNNAMED, source: str = "edited") -> dict:
    """An architecture that is neither a preset nor saved: the one being edited, or an imported file."""
    return {"name": UNNAMED, "source": source, "layers": layers, "label": label or UNNAMED}


def choice_key(source: str, name: str = "") -> str:
    """How a picker names a choice: "preset:seed-3layer", "saved:my-net", "edited"."""
    return source if source == "edited" else f"{source}:{name}"


def choices(current: str | None, edited: bool) -> tuple[dict[str, str], str]:
    """A picker's options (key: label) and its default: the net being edited if any, else `current`
    (a preset id or saved name), else the first preset."""
    options = {}
    if edited:
        options[choice_key("edited")] = f"{current or UNNAMED} (being edited on the Architecture page)"
    for preset in PRESETS.values():
        options[choice_key("preset", preset.id)] = f"{preset.id}: {preset.title}"
    for name in saved_architecture_names():
        options[choice_key("saved", name)] = f"{name} (saved)"
    for default in (choice_key("edited") if edited else None, choice_key("preset", current or ""),
                    choice_key("saved", current or ""), next(iter(options))):
        if default in options:
            return options, default


def from_choice(key: str, edited_layers: list | None = None, edited_name: str | None = None) -> dict:
    """The architecture a picker's key names; the edited one comes from the caller (the Architecture page)."""
    source, _, name = key.partition(":")
    if source == "edited":
        return custom_architecture(edited_layers or [], label=edited_name or UNNAMED)
    if source == "preset":
        return preset_architecture(name)
    if source == "saved":
        return saved_architecture(name)
    raise LabError(f"Unknown architecture choice {key!r}.")


def saved_architecture_names() -> list[str]:
    """The saved architectures' names; none if the store is missing or unreadable."""
    try:
        from mnist_lab.architecture.saved import ArchitectureStore

        return list(ArchitectureStore().list())
    except (ImportError, OSError, ValueError):
        return []


def architecture_from_argument(text: str) -> dict:
    """A preset id, a saved architecture's name, or the path of an exported architecture JSON file."""
    if text in PRESETS:
        return preset_architecture(text)
    path = Path(text)
    if path.is_file():
        try:
            source = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise LabError(f"Cannot read the architecture file {shown_value(text)} ({error}).") from None
        name, layers = from_json(source)
        return custom_architecture(layers, label=name, source="imported")
    if text.lower().endswith(".json"):
        try:
            return saved_architecture(text[:-5])  # a saved "x" may be asked for as "x.json"
        except LabError:  # not a saved name either (or not one that could be)
            raise LabError(f"Cannot read the architecture file {shown_value(text)}: there is no such file, and no "
                           f"saved architecture {shown_value(text[:-5])}.") from None
    if text in saved_architecture_names():
        return saved_architecture(text)
    raise LabError(f"Unknown architecture {shown_value(text)}: use a preset ({', '.join(PRESETS)}), "
                   "a saved architecture's name, or the path of an architecture .json file.")


def check_architecture(architecture: dict) -> tuple[dict, ArchitectureReport]:
    """Validate an architecture dict; returns it with normalised layers, and its report."""
    if not isinstance(architecture, dict) or not isinstance(architecture.get("layers"), list):
        raise LabError("An architecture is a dict with a 'layers' list.")
    if architecture.get("source") not in SOURCES:
        raise LabError(f"An architecture's source must be one of {', '.join(SOURCES)}.")
    layers = normalize_layers(architecture["layers"])
    report = analyze(layers)
    return {**architecture, "layers": layers}, report

