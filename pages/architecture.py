"""Architecture: pick one of the notebook's nets or build your own, and see live what Keras will build."""
import app
app.route_through_navigation()

import pandas as pd
import streamlit as st

from mnist_lab import architecture_editor as editor
from mnist_lab import architectures, keras_code, teaching
from mnist_lab.architecture_store import ArchitectureStore
from mnist_lab.teaching import markdown_text as text

# Everything a learner typed (names, values quoted in messages, an imported file's name) goes through text()
# wherever Streamlit reads Markdown: labels, badges, messages. Nothing here uses unsafe_allow_html.

store = ArchitectureStore()
session = editor.EditorSession(st.session_state, store, app.owner(), app.actor())
opened = session.open()
layers = opened.layers
generation = session.generation
report, error = architectures.analyze_partial(layers)
reports = {layer.number: layer for layer in report.layers}


@st.cache_data(max_entries=64, show_spinner="Keras is building the model…")
def keras_summary(layers_json: str) -> editor.KerasSummary:
    """Keras' own summary of an architecture, cached on its JSON (importing Keras takes seconds)."""
    return editor.keras_summary(layers_json)


def widget_key(index: int, name: str) -> str:
    return f"architecture_{generation}_{index}_{name}"


def setting_changed(index: int, parameter: architectures.Parameter):
    value = st.session_state[widget_key(index, parameter.name)]
    if parameter.kind in ("pair", "optional_pair"):
        value = editor.parse_pair(value)
    session.edit_setting(index, parameter.name, value)


def add_layer():
    session.add(st.session_state.architecture_add_type, st.session_state[f"architecture_add_position_{generation}"])


def suggest_position():
    st.session_state[f"architecture_add_position_{generation}"] = editor.suggested_position(
        layers, st.session_state.architecture_add_type)


def save():
    if session.save(st.session_state.architecture_save_name.strip()):
        st.session_state.architecture_save_name = ""


def import_json():
    upload = st.session_state.get("architecture_import_file")
    content = upload.getvalue() if upload is not None else st.session_state.architecture_import_text
    name = session.import_text(content)
    if name is not None:
        st.session_state.architecture_save_name = name if name != "imported" else ""
        st.session_state.architecture_import_text = ""


st.title("Architecture")
st.caption("Pick one of the notebook's three nets, change it or build your own. Shapes, parameter counts and "
           "the cost per image update as you edit; the Train page trains whatever is open here.")


def show_messages(place: str):
    for kind, message in session.take_messages(place):
        getattr(st, kind)(text(message))


show_messages("top")

# --- where to start ----------------------------------------------------------------------------------
sources = editor.source_options(store)
st.session_state.architecture_start = session.source if session.source in sources else None
start, status = st.columns([3, 2], vertical_alignment="bottom")
start.selectbox("Start from", list(sources), format_func=sources.get, key="architecture_start",
                placeholder="An imported architecture", on_change=lambda: session.start_from(
                    st.session_state.architecture_start))
with status:
    if st.session_state.architecture_layers is None:
        st.badge(f"Unchanged: {text(st.session_state.architecture_name)}", icon=":material/check:", color="green")
    else:
        st.badge("Edited, not saved" if session.source != editor.BLANK else "Your own, not saved",
                 icon=":material/edit:", color="orange")
        if session.source:
            back = ("Start again" if session.source == editor.BLANK
                    else f"Back to {text(editor.source_name(session.source))}")
            st.button(back, key="architecture_reset", icon=":material/undo:", on_click=session.start_from,
                      args=(session.source,))

if session.source and session.source.startswith("preset:"):
    edited = st.session_state.architecture_layers is not None
    st.info(teaching.preset_note(editor.source_name(session.source), edited),
            icon=":material/history_edu:" if edited else ":material/school:")

editor_column, analysis_column = st.columns([5, 6], gap="large")

# --- the layers --------------------------------------------------------------------------------------
with editor_column:
    st.subheader("Layers")
    st.markdown(f"**Input** · a {editor.shape_text(architectures.INPUT_SHAPE)} grayscale image, "
                "pixels scaled to 0…1")
    for index, layer in enumerate(layers):
        number = index + 1
        layer_type = architectures.LAYER_TYPES.get(layer.get("type")) if isinstance(layer, dict) else None
        faulty = error is not None and error.layer_number == number
        title = f"**{number}** · {text(editor.safe_label(layer, number))}"
        if number in reports:
            title += f" → {editor.shape_text(reports[number].output_shape)} · {reports[number].parameters:,} parameters"
        if faulty:
            title = f":red[{title} · cannot be built]"
        with st.expander(title, expanded=faulty or index == session.focus, icon=":material/error:" if faulty else None,
                         key=widget_key(index, "open")):
            if faulty:
                st.error(text(error))
            if layer_type is None:
                st.warning("This layer's type is unknown: remove it and add one of the listed types.")
            else:
                st.caption(layer_type.description)
                with st.container(horizontal=True):
                    for parameter in layer_type.parameters:
                        value = layer.get(parameter.name, parameter.default)
                        common = dict(key=widget_key(index, parameter.name), help=parameter.help, width=150,
                                      on_change=setting_changed, args=(index, parameter))
                        label = parameter.name.replace("_", " ")
                        if parameter.kind == "choice":
                            choices = list(parameter.choices)
                            st.selectbox(label, choices, index=choices.index(value) if value in choices else 0,
                                         format_func=parameter.choice_label, **common)
                        elif parameter.kind in ("pair", "optional_pair"):
                            st.text_input(label, editor.pair_text(value), placeholder="= pool size", **common)
                        elif parameter.kind == "float":
                            st.number_input(label, value=float(value) if isinstance(value, (int, float)) else 0.0,
                                            step=0.05, format="%.2f", **common)
                        else:
                            st.number_input(label, value=int(value) if isinstance(value, (int, float)) else 1,
                                            step=1, **common)
            with st.container(horizontal=True):
                st.button("Up", icon=":material/arrow_upward:", key=widget_key(index, "up"), disabled=index == 0,
                          on_click=session.move, args=(index, -1))
                st.button("Down", icon=":material/arrow_downward:", key=widget_key(index, "down"),
                          disabled=index == len(layers) - 1, on_click=session.move, args=(index, 1))
                st.button("Remove", icon=":material/delete:", key=widget_key(index, "remove"),
                          on_click=session.remove, args=(index,))
    output_number = len(layers) + 1
    output_text = f"**{output_number}** · Dense 10 softmax: the output, always there"
    if output_number in reports:
        output_text += f" → 10 · {reports[output_number].parameters:,} parameters"
    st.markdown(output_text)
    if error is not None and error.layer_number == output_number:
        st.error(text(error), icon=":material/error:")

    with st.container(border=True):
        st.markdown("**Add a layer**")
        types = list(architectures.LAYER_TYPES)
        st.session_state.setdefault("architecture_add_type", types[0])
        position_key = f"architecture_add_position_{generation}"
        if st.session_state.get(position_key, -1) not in range(len(layers) + 1):
            st.session_state[position_key] = editor.suggested_position(layers, st.session_state.architecture_add_type)
        kind_column, where_column = st.columns(2)
        kind_column.selectbox("Type", types, key="architecture_add_type", on_change=suggest_position)
        where_column.selectbox(
            "Where", range(len(layers) + 1), key=position_key,
            format_func=lambda position: "first" if position == 0 else
            f"after {position} · {editor.safe_label(layers[position - 1], position)}")
        st.caption(architectures.LAYER_TYPES[st.session_state.architecture_add_type].description)
        st.button("Add layer", key="architecture_add", icon=":material/add:", on_click=add_layer, type="primary")

# --- what it is --------------------------------------------------------------------------------------
with analysis_column:
    st.subheader("What Keras will build")
    if error is not None:
        where = f" (layer {error.layer_number})" if error.layer_number else ""
        st.error(f"**This architecture cannot be built{where}.** {text(error)}", icon=":material/error:")
    else:
        source_report = session.source_report()

        def delta(value, attribute):
            change = 0 if source_report is None else value - getattr(source_report, attribute)
            return f"{change:+,}" if change else None

        first, second = st.columns(2)
        first.metric("Parameters", f"{report.total_parameters:,}", delta(report.total_parameters, "total_parameters"),
                     delta_color="off", border=True)
        second.metric("Multiply-adds / image", f"{report.multiply_adds / 1e6:,.2f} M",
                      delta(report.multiply_adds, "multiply_adds"), delta_color="off", border=True,
                      help="Multiplications (each with an addition) in the Conv2D and Dense layers to classify "
                           "one image: training time grows roughly with it.")
        third, fourth = st.columns(2)
        third.metric("Trainable", f"{report.trainable_parameters:,}", border=True,
                     help="Weights and biases that training changes.")
        fourth.metric("Non-trainable", f"{report.non_trainable_parameters:,}", border=True,
                      help="BatchNormalization's running mean and variance: updated while training, "
                           "but not by the gradient.")
    rows = pd.DataFrame(editor.table_rows(report))
    if rows.empty:
        st.caption("No layer can be worked out yet: fix the problem above.")
    else:
        # Four columns whose widths (pixels) add up to less than the column's at 1280 px and up, so none is cut
        # off; each layer's share of the parameters is the bar beside its count, not a rounded percentage.
        st.dataframe(rows, hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3, column_config={
            "layer": st.column_config.TextColumn(width=180),
            "output": st.column_config.TextColumn(width=80, help="Output shape: height×width×channels, or a flat "
                                                                 "length"),
            "parameters": st.column_config.ProgressColumn(
                format="localized", min_value=0, max_value=max(report.total_parameters, 1), width=115,
                help="The bar shows the layer's share of all the parameters."),
            "multiply-adds": st.column_config.NumberColumn(format="compact", width=95,
                                                           help="Multiply-adds per image"),
        })
        if error is not None:
            st.caption(f"Shapes up to layer {len(report.layers)}; layer {error.layer_number} cannot be built.")

    if error is None:
        st.subheader("What to notice")
        notes = teaching.edit_notes(layers, report)
        if source_report is not None:
            notes.insert(0, teaching.change_note(editor.source_name(session.source), source_report, report))
        for position, note in enumerate(notes):
            with st.container(border=True):
                st.markdown(note.text)
                if note.fix:
                    st.button(note.fix_label, key=f"architecture_fix_{position}", icon=":material/auto_fix_high:",
                              on_click=lambda fix=note.fix: session.commit(teaching.apply_fix(fix, session.layers())))


# --- Keras' own view ----------------------------------------------------------------------------------
st.subheader("Keras' own model.summary()")
summary_slot = st.empty()

# --- save and share ----------------------------------------------------------------------------------
st.subheader("Save and share")
save_column, saved_column, import_column = st.columns(3, gap="large")
with save_column:
    st.markdown("**Save what is open**")
    st.text_input("Name", key="architecture_save_name", max_chars=60, placeholder="e.g. wide-5x5",
                  help="Letters, digits, spaces, - _ and . (up to 60 characters). Saving under a name "
                       "you saved before replaces it; names others saved are theirs.")
    st.button("Save", key="architecture_save", icon=":material/save:", on_click=save, disabled=error is not None,
              help="Fix the architecture first." if error is not None else None)
    st.caption("Saved architectures survive a restart and appear on the Train page beside the presets.")
    show_messages("save")
    if error is None:
        exported = architectures.to_json(layers, st.session_state.architecture_name)
        st.download_button("Download as JSON", exported, file_name=f"{st.session_state.architecture_name}.json",
                           mime="application/json", icon=":material/download:")
        with st.expander("Show the JSON"):
            st.code(exported, language="json", height=300)
        preset = architectures.PRESETS.get(editor.source_name(session.source))
        recipe = {**keras_code.DEFAULT_SETTINGS, **(preset.training if preset else {})}
        with st.expander("Keras code", icon=":material/code:"):
            script = keras_code.keras_script(layers, recipe, st.session_state.architecture_name)
            st.caption(f"One script that needs only Keras and numpy: it builds this net, trains it for "
                       f"{recipe['epochs']} epochs in batches of {recipe['batch_size']} with {recipe['optimizer']} "
                       "and tests it. Run it with `python net.py --epochs 1 --train-size 2000` to try it quickly.")
            st.download_button("Download the script", script, file_name=f"{st.session_state.architecture_name}.py",
                               mime="text/x-python", icon=":material/download:", key="architecture_code_download")
            st.code(script, language="python", height=400)
with saved_column:
    st.markdown("**Saved architectures**")
    show_messages("saved")
    entries = editor.saved_entries(store, app.actor())
    if not entries:
        st.caption("None yet.")
    for entry in entries:
        with st.container(border=True):
            st.markdown(f"**{text(entry.name)}**")
            by = f" · by {text(entry.owner_name)}" if entry.owner_name else ""
            if entry.problem:
                st.caption(f":red[{text(entry.problem)}]{by}")
            else:
                st.caption(f"{entry.layers} layers + output · {entry.parameters:,} parameters{by}")
            with st.container(horizontal=True):
                st.button("Open", key=f"architecture_open_{entry.name}", icon=":material/folder_open:",
                          disabled=bool(entry.problem), on_click=session.start_from, args=(f"saved:{entry.name}",))
                if entry.may_change:
                    with st.popover("Delete", icon=":material/delete:"):
                        st.markdown(f"Delete **{text(entry.name)}**? Runs trained with it keep their own copy "
                                    "of the layers.")
                        st.button("Delete for good", key=f"architecture_delete_{entry.name}", type="primary",
                                  on_click=session.delete, args=(entry.name,))
with import_column:
    st.markdown("**Import JSON**")
    st.file_uploader("A file exported from the lab", type=["json"], key="architecture_import_file")
    st.text_area("…or paste its text", key="architecture_import_text", height=100,
                 placeholder='{"name": "mine", "layers": [{"type": "Flatten"}]}')
    st.button("Import", key="architecture_import", icon=":material/upload:", on_click=import_json)
    show_messages("import")

# --- Keras' own summary, last: the first build imports Keras, which takes seconds ----------------------
with summary_slot.container():
    if error is not None:
        st.caption("Keras builds the model once the architecture is valid.")
    else:
        summary = keras_summary(architectures.to_json(layers, "mnist_cnn"))
        if summary.error:
            st.warning(text(summary.error))
        else:
            st.code(summary.text, language=None, height=520 if summary.text.count("\n") > 30 else "content")
            if summary.total_parameters == report.total_parameters:
                st.caption(f"Keras counts {summary.total_parameters:,} parameters too: the table above was worked "
                           "out without Keras, from the shapes alone.")
            else:
                st.warning(f"Keras counts {summary.total_parameters:,} parameters, the table "
                           f"{report.total_parameters:,}: please report this architecture.")
