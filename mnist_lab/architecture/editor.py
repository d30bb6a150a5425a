"""The Architecture page's logic, kept out of the page: where an edit starts from, what is handed to the Train
page, what the page lists, and the session state that holds the architecture being edited.

A source key names where an edit started: "preset:<id>", "saved:<name>" or "blank".
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from mnist_lab.architecture.building import build_model, model_summary
from mnist_lab.architecture.edits import (PAIR_KINDS, insert_layer, move_layer, parse_pair, remove_layer, set_setting,
                                          suggested_position)
from mnist_lab.architecture.json_format import from_json
from mnist_lab.architecture.layers import LAYER_TYPES, Parameter
from mnist_lab.architecture.presets import PRESETS, preset_layers
from mnist_lab.architecture.report import ArchitectureReport, analyze, layer_label
from mnist_lab.architecture.saved import ArchitectureStore, check_name
from mnist_lab.architecture.validation import ArchitectureError, normalize_layer, normalize_layers
from mnist_lab.classroom.learners import Actor

BLANK = "blank"
BLANK_LAYERS = [{"type": "Flatten"}]
CUSTOM_NAME = "custom"


def source_options(store: ArchitectureStore) -> dict[str, str]:
    """Source keys with their labels: the presets, the saved architectures, a blank start."""
    options = {f"preset:{preset.id}": f"{preset.id}: {preset.title}" for preset in PRESETS.values()}
    options.update({f"saved:{name}": f"{name} (saved)" for name in store.list()})
    options[BLANK] = "Blank: only the output layer (build your own)"
    return options


def source_name(source: str | None) -> str:
    """The preset id or saved name in a source key; "custom" for a blank start or none."""
    if source and ":" in source:
        return source.partition(":")[2]
    return CUSTOM_NAME


def source_layers(source: str, store: ArchitectureStore) -> list:
    """The layers a source key stands for (a fresh copy); ValueError if it no longer exists."""
    kind, _, name = source.partition(":")
    if kind == "preset":
        return preset_layers(name)
    if kind == "saved":
        return store.load(name)
    if source == BLANK:
        return copy.deepcopy(BLANK_LAYERS)
    raise ValueError(f"Unknown architecture source {source!r}.")


@dataclass(frozen=True)
class Opened:
    """What the page edits: the source it started from (None: imported or unknown) and the layers."""

    source: str | None
    layers: list
    message: str = ""  # set when the architecture named in the session could not be opened


def open_current(name: str | None, layers: list | None, source: str | None, store: ArchitectureStore) -> Opened:
    """The architecture the session points at (architecture_name, architecture_layers) with its source.

    layers None means "the named preset or saved architecture as is". A saved architecture deleted
    meanwhile falls back to the first preset, with a message.
    """
    if layers is not None:
        return Opened(source, copy.deepcopy(layers))
    for candidate in (f"preset:{name}", f"saved:{name}"):
        if candidate.startswith("preset:") and name not in PRESETS:
            continue
        try:
            return Opened(candidate, source_layers(candidate, store))
        except ValueError as error:
            fallback = f"preset:{next(iter(PRESETS))}"
            return Opened(fallback, source_layers(fallback, store),
                          f"{error} Showing {source_name(fallback)} instead.")
    fallback = f"preset:{next(iter(PRESETS))}"
    return Opened(fallback, source_layers(fallback, store))


def handoff(source: str | None, layers: list, store: ArchitectureStore) -> tuple[str, list | None]:
    """The (architecture_name, architecture_layers) pair the Train page reads.

    Unchanged preset or saved architecture: (its name, None). Anything else: ("custom", the layers).
    """
    if source and source != BLANK:
        try:
            unchanged = _normalized(source_layers(source, store)) == _normalized(layers)
        except ValueError:
            unchanged = False
        if unchanged:
            return source_name(source), None
    return CUSTOM_NAME, copy.deepcopy(layers)


def _normalized(layers):
    try:
        return normalize_layers(layers)
    except ArchitectureError:
        return layers


# --- showing it ----------------------------------------------------------------------------------

def shape_text(shape) -> str:
    """(26, 26, 64) -> "26×26×64"; (21632,) -> "21,632"."""
    return "×".join(f"{side:,}" for side in shape)


def safe_label(layer, number: int) -> str:
    """layer_label for any layer, even one with a setting the learner has just broken."""
    try:
        return layer_label(normalize_layer(layer, number))
    except (ArchitectureError, KeyError, TypeError):
        return str(layer.get("type")) if isinstance(layer, dict) else "?"


def table_rows(report: ArchitectureReport) -> list[dict]:
    """One row per analysed layer for the page's table, the output layer last."""
    return [{
        "layer": f"{layer.number} · {layer.label}",
        "output": shape_text(layer.output_shape),
        "parameters": layer.parameters,
        "multiply-adds": layer.multiply_adds,
    } for layer in report.layers]


@dataclass(frozen=True)
class SavedEntry:
    name: str
    layers: int = 0
    parameters: int = 0
    problem: str = ""  # why it cannot be opened (a damaged file)
    owner_name: str = ""  # who saved it; empty when saved from the command line or before nets had owners
    may_change: bool = True  # whether the asking learner may replace or delete it


def saved_entries(store: ArchitectureStore, actor: Actor | None = None) -> list[SavedEntry]:
    """The saved architectures with their size and owner, for a list; damaged files are listed with the
    reason. `may_change` says what `actor` may do (None: everything)."""
    entries = []
    for name in store.list():
        record = store.record(name)
        who = {"owner_name": record.get("owner_name", ""),
               "may_change": actor is None or actor.may_change(record)}
        try:
            layers = store.load(name)
            entries.append(SavedEntry(name, len(layers), analyze(layers).total_parameters, **who))
        except (ValueError, OSError) as error:
            entries.append(SavedEntry(name, problem=str(error), **who))
    return entries


# --- Keras' own view ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KerasSummary:
    text: str
    total_parameters: int
    trainable_parameters: int
    error: str = ""


def keras_summary(layers_json: str) -> KerasSummary:
    """Build the model in Keras (slow the first time: imports Keras) and return model.summary()'s text.

    Takes the architecture as JSON text (to_json's or a bare list) so that callers can cache on it. Never raises: a model Keras refuses
    comes back with `error` set.
    """
    try:
        _, layers = from_json(layers_json)
        model = build_model(layers, "mnist_cnn")
        trainable = sum(math.prod(weight.shape) for weight in model.trainable_weights)
        return KerasSummary(model_summary(model), int(model.count_params()), trainable)
    except Exception as error:  # Keras raises many kinds of errors; the page shows them as text
        return KerasSummary("", 0, 0, f"Keras could not build this architecture: {error}")


# --- the page's state -----------------------------------------------------------------------------

_KEEP = object()


class EditorSession:
    """The architecture being edited, kept in a session mapping (st.session_state) under plain keys.

    architecture_name / architecture_layers are what the Train page reads; architecture_source is where
    the edit started; architecture_generation changes on every edit that adds, removes or reorders
    layers, so that the page's widgets (keyed by it) start again from the layers.
    """

    def __init__(self, state, store: ArchitectureStore, owner: tuple[str, str] | None = None,
                 actor: Actor | None = None):
        self.state = state
        self.store = store
        self.owner = owner  # (public id, name) that a save records
        self.actor = actor  # who replaces or deletes a saved architecture
        state.setdefault("architecture_name", next(iter(PRESETS)))
        state.setdefault("architecture_layers", None)
        state.setdefault("architecture_source", None)
        state.setdefault("architecture_generation", 0)
        state.setdefault("architecture_messages", [])
        state.setdefault("architecture_focus", None)

    def open(self) -> Opened:
        opened = open_current(self.state["architecture_name"], self.state["architecture_layers"],
                              self.state["architecture_source"], self.store)
        if opened.message:
            self.tell("warning", opened.message)
            self.commit(opened.layers, opened.source)
        self.state["architecture_source"] = opened.source
        return opened

    @property
    def source(self) -> str | None:
        return self.state["architecture_source"]

    def source_report(self) -> ArchitectureReport | None:
        """The analysis of the architecture the edit started from; None if unchanged, new or invalid."""
        if not self.source or self.source == BLANK or self.state["architecture_layers"] is None:
            return None
        try:
            return analyze(source_layers(self.source, self.store))
        except ValueError:
            return None

    @property
    def generation(self) -> int:
        return self.state["architecture_generation"]

    @property
    def edited(self) -> bool:
        """Whether the open architecture differs from the preset or saved one it is named after."""
        return self.state["architecture_layers"] is not None

    def widget_key(self, index: int, name: str) -> str:
        """The key of a layer's widget: with the generation in it, so that an edit that adds, removes or
        reorders layers gives every widget a fresh start from the layers."""
        return f"architecture_{self.generation}_{index}_{name}"

    def layers(self) -> list:
        return self.open().layers

    def commit(self, layers: list, source=_KEEP, structural: bool = True) -> None:
        """Make these layers the current architecture and hand them to the Train page."""
        if source is not _KEEP:
            self.state["architecture_source"] = source
        name, handed = handoff(self.state["architecture_source"], layers, self.store)
        self.state["architecture_name"] = name
        self.state["architecture_layers"] = handed
        if structural:
            self.state["architecture_generation"] += 1
            self.state["architecture_focus"] = None

    def tell(self, kind: str, text: str, place: str = "top") -> None:
        """A message for the next render: kind "success", "info", "warning" or "error"; place says
        where the page shows it ("top", or next to the control that caused it: "save", "saved", "import")."""
        self.state["architecture_messages"] = [*self.state["architecture_messages"], (place, kind, text)]

    def take_messages(self, place: str = "top") -> list[tuple[str, str]]:
        """The (kind, text) messages for one place, which are then forgotten."""
        messages = self.state["architecture_messages"]
        self.state["architecture_messages"] = [message for message in messages if message[0] != place]
        return [(kind, text) for where, kind, text in messages if where == place]

    # edits, each handing the result on

    def start_from(self, source: str) -> None:
        try:
            self.commit(source_layers(source, self.store), source)
        except ValueError as error:
            self.tell("error", str(error))

    def edit_setting(self, index: int, name: str, value) -> None:
        self.commit(set_setting(self.layers(), index, name, value), structural=False)

    def edit_from_widget(self, key: str, index: int, parameter: Parameter) -> None:
        """Take a setting from its widget (`key`, as it was drawn: a button's edit in the same rerun may have
        moved the generation on); a size pair is typed as text ("3x5")."""
        value = self.state[key]
        if parameter.kind in PAIR_KINDS:
            value = parse_pair(value)
        self.edit_setting(index, parameter.name, value)

    # the "Add a layer" widgets: architecture_add_type, and a position keyed by the generation

    @property
    def add_position_key(self) -> str:
        return f"architecture_add_position_{self.generation}"

    def add_positions(self, layers: list) -> range:
        """Where a new layer can go among the open `layers` (0 = first). Until the learner picks one, or
        once the picked one is gone, the position is where the chosen type most likely belongs."""
        self.state.setdefault("architecture_add_type", next(iter(LAYER_TYPES)))
        positions = range(len(layers) + 1)
        if self.state.get(self.add_position_key, -1) not in positions:
            self.state[self.add_position_key] = suggested_position(layers, self.state["architecture_add_type"])
        return positions

    def suggest_position(self) -> None:
        """A newly chosen type moves the position to where that type most likely belongs."""
        self.state[self.add_position_key] = suggested_position(self.layers(), self.state["architecture_add_type"])

    def add_chosen(self) -> None:
        self.add(self.state["architecture_add_type"], self.state[self.add_position_key])

    @property
    def focus(self) -> int | None:
        """The index of the layer just added or moved: the page opens it."""
        return self.state["architecture_focus"]

    def add(self, type_name: str, position: int) -> None:
        self.commit(insert_layer(self.layers(), type_name, position))
        self.state["architecture_focus"] = position

    def move(self, index: int, offset: int) -> None:
        layers = self.layers()
        self.commit(move_layer(layers, index, offset))
        self.state["architecture_focus"] = min(max(index + offset, 0), len(layers) - 1)

    def remove(self, index: int) -> None:
        self.commit(remove_layer(self.layers(), index))

    def save(self, name: str) -> bool:
        """Save what is open under check_name(name) ("wide.json" saves "wide") and open it from there."""
        try:
            name = check_name(name)
            self.store.save(name, self.layers(), self.owner, self.actor)
        except (ValueError, OSError) as error:
            self.tell("error", f"Not saved: {error}", "save")
            return False
        self.commit(self.layers(), f"saved:{name}", structural=False)
        self.tell("success", f"Saved as {name!r}. The Train page now offers it beside the presets.", "save")
        return True

    def save_typed(self) -> None:
        """Save under the name typed in architecture_save_name, which is cleared once saved."""
        if self.save(self.state["architecture_save_name"].strip()):
            self.state["architecture_save_name"] = ""

    def delete(self, name: str) -> None:
        """Delete a saved architecture; if it is the one open, it stays open as an unsaved edit."""
        still_open = self.layers() if self.source == f"saved:{name}" else None
        try:
            self.store.delete(name, self.actor)
        except (ValueError, OSError) as error:
            self.tell("error", f"Not deleted: {error}", "saved")
            return
        if still_open is not None:
            self.commit(still_open, None, structural=False)
        self.tell("success", f"Deleted {name!r}.", "saved")

    def import_text(self, text: str | bytes) -> str | None:
        """Open an exported architecture; returns its name, or None (with a message) if it is refused."""
        try:
            name, layers = from_json(text)
        except ArchitectureError as error:
            self.tell("error", f"Not imported: {error}", "import")
            return None
        self.commit(layers, None)
        count = f"{len(layers)} layer{'' if len(layers) == 1 else 's'}"
        self.tell("success", f"Imported {name!r} ({count}). Save it to keep it.", "import")
        return name

    def import_given(self) -> None:
        """Import the uploaded file (architecture_import_file), else the pasted text; once imported, its
        name is offered for saving and the pasted text is cleared."""
        upload = self.state.get("architecture_import_file")
        name = self.import_text(upload.getvalue() if upload is not None else self.state["architecture_import_text"])
        if name is not None:
            self.state["architecture_save_name"] = name if name != "imported" else ""
            self.state["architecture_import_text"] = ""
