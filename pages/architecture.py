"""Architecture: pick one of the notebook's nets or build your own, and see live what Keras will build."""
import app
app.route_through_navigation()

import pandas as pd
import streamlit as st

from mnist_lab.architecture import editor, keras_code, teaching
from mnist_lab.architecture.json_format import to_json
from mnist_lab.architecture.layers import LAYER_TYPES
from mnist_lab.architecture.report import analyze_partial
from mnist_lab.architecture.saved import ArchitectureStore
from mnist_lab.views.markdown import plain
from mnist_lab.views import architecture as view

# Everything a learner typed (names, values quoted in messages, an imported file's name) goes through plain()
# wherever Streamlit reads Markdown: labels, badges, messages. Nothing here uses unsafe_allow_html.

store = ArchitectureStore()
session = editor.EditorSession(st.session_state, store, app.owner(), app.actor())
layers = session.open().layers
report, error = analyze_partial(layers)


@st.cache_data(max_entries=64, show_spinner="Keras is building the model…")
def keras_summary(layers_json: str) -> editor.KerasSummary:
    """Keras' own summary of an architecture, cached on its JSON (importing Keras takes seconds)."""
    return editor.keras_summary(layers_json)


def show_messages(place: str):
    for kind, message in session.take_messages(place):
        getattr(st, kind)(plain(message))


st.title("Architecture")
st.caption("Pick one of the notebook's three nets, change it or build your own. Shapes, parameter counts and "
           "the cost per image update as you edit; the Train page trains whatever is open here.")
show_messages("top")

# --- where to start ----------------------------------------------------------------------------------
sources = editor.source_options(store)
st.session_state.architecture_start = session.source if session.source in sources else None
start, status = st.columns([3, 2], vertical_alignment="bottom")
start.selectbox("Start from", list(sources), format_func=sources.get, key="architecture_start",
                placeholder="An imported architecture", on_change=lambda: session.start_from(
                    st.session_state.architecture_start))
with status:
    badge = view.status_badge(session)
    st.badge(badge.text, icon=badge.icon, color=badge.color)
    if back := view.back_label(session):
        st.button(back, key="architecture_reset", icon=":material/undo:", on_click=session.start_from,
                  args=(session.source,))

if note := view.preset_note(session):
    st.info(note, icon=":material/history_edu:" if session.edited else ":material/school:")

editor_column, analysis_column = st.columns([5, 6], gap="large")

# --- the layers --------------------------------------------------------------------------------------
with editor_column:
    st.subheader("Layers")
    st.markdown(view.INPUT_LINE)
    for index, layer in enumerate(layers):
        faulty = view.fails_at(error, index + 1)
        with st.expander(view.layer_heading(layer, index + 1, report, error),
                         expanded=faulty or index == session.focus, icon=":material/error:" if faulty else None,
                         key=session.widget_key(index, "open")):
            if faulty:
                st.error(plain(error))
            if (layer_type := view.layer_type(layer)) is None:
                st.warning("This layer's type is unknown: remove it and add one of the listed types.")
            else:
                st.caption(layer_type.description)
                with st.container(horizontal=True):
                    for parameter in layer_type.parameters:
                        field = view.setting_field(layer, parameter)
                        key = session.widget_key(index, parameter.name)
                        common = dict(key=key, help=parameter.help, width=150, on_change=session.edit_from_widget,
                                      args=(key, index, parameter))
                        if field.kind == "choice":
                            st.selectbox(field.label, field.choices, index=field.value,
                                         format_func=parameter.choice_label, **common)
                        elif field.kind == "pair":
                            st.text_input(field.label, field.value, placeholder="= pool size", **common)
                        elif field.kind == "float":
                            st.number_input(field.label, value=field.value, step=0.05, format="%.2f", **common)
                        else:
                            st.number_input(field.label, value=field.value, step=1, **common)
            with st.container(horizontal=True):
                st.button("Up", icon=":material/arrow_upward:", key=session.widget_key(index, "up"),
                          disabled=index == 0, on_click=session.move, args=(index, -1))
                st.button("Down", icon=":material/arrow_downward:", key=session.widget_key(index, "down"),
                          disabled=index == len(layers) - 1, on_click=session.move, args=(index, 1))
                st.button("Remove", icon=":material/delete:", key=session.widget_key(index, "remove"),
                          on_click=session.remove, args=(index,))
    st.markdown(view.output_heading(len(layers) + 1, report))
    if view.fails_at(error, len(layers) + 1):
        st.error(plain(error), icon=":material/error:")

    with st.container(border=True):
        st.markdown("**Add a layer**")
        positions = session.add_positions(layers)
        kind_column, where_column = st.columns(2)
        kind_column.selectbox("Type", list(LAYER_TYPES), key="architecture_add_type",
                              on_change=session.suggest_position)
        where_column.selectbox("Where", positions, key=session.add_position_key,
                               format_func=lambda position: view.position_label(layers, position))
        st.caption(LAYER_TYPES[st.session_state.architecture_add_type].description)
        st.button("Add layer", key="architecture_add", icon=":material/add:", on_click=session.add_chosen,
                  type="primary")

# --- what it is --------------------------------------------------------------------------------------
with analysis_column:
    st.subheader("What Keras will build")
    if error is not None:
        st.error(view.build_error(error), icon=":material/error:")
    else:
        source_report = session.source_report()
        counts = view.metrics(report, source_report)
        for row in (counts[:2], counts[2:]):
            for column, metric in zip(st.columns(2), row):
                column.metric(metric.label, metric.value, metric.delta, delta_color="off", border=True,
                              help=metric.help)
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
        for position, note in enumerate(view.notes(session, layers, report, source_report)):
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
    st.button("Save", key="architecture_save", icon=":material/save:", on_click=session.save_typed,
              disabled=error is not None, help="Fix the architecture first." if error is not None else None)
    st.caption("Saved architectures survive a restart and appear on the Train page beside the presets.")
    show_messages("save")
    if error is None:
        name = st.session_state.architecture_name
        exported = to_json(layers, name)
        st.download_button("Download as JSON", exported, file_name=f"{name}.json", mime="application/json",
                           icon=":material/download:")
        with st.expander("Show the JSON"):
            st.code(exported, language="json", height=300)
        with st.expander("Keras code", icon=":material/code:"):
            recipe = view.keras_recipe(session.source)
            script = keras_code.keras_script(layers, recipe, name)
            st.caption(view.keras_code_caption(recipe))
            st.download_button("Download the script", script, file_name=f"{name}.py", mime="text/x-python",
                               icon=":material/download:", key="architecture_code_download")
            st.code(script, language="python", height=400)
with saved_column:
    st.markdown("**Saved architectures**")
    show_messages("saved")
    entries = editor.saved_entries(store, app.actor())
    if not entries:
        st.caption("None yet.")
    for entry in entries:
        with st.container(border=True):
            st.markdown(f"**{plain(entry.name)}**")
            st.caption(view.saved_entry_caption(entry))
            with st.container(horizontal=True):
                st.button("Open", key=f"architecture_open_{entry.name}", icon=":material/folder_open:",
                          disabled=bool(entry.problem), on_click=session.start_from, args=(f"saved:{entry.name}",))
                if entry.may_change:
                    with st.popover("Delete", icon=":material/delete:"):
                        st.markdown(f"Delete **{plain(entry.name)}**? Runs trained with it keep their own copy "
                                    "of the layers.")
                        st.button("Delete for good", key=f"architecture_delete_{entry.name}", type="primary",
                                  on_click=session.delete, args=(entry.name,))
with import_column:
    st.markdown("**Import JSON**")
    st.file_uploader("A file exported from the lab", type=["json"], key="architecture_import_file")
    st.text_area("…or paste its text", key="architecture_import_text", height=100,
                 placeholder='{"name": "mine", "layers": [{"type": "Flatten"}]}')
    st.button("Import", key="architecture_import", icon=":material/upload:", on_click=session.import_given)
    show_messages("import")

# --- Keras' own summary, last: the first build imports Keras, which takes seconds ----------------------
with summary_slot.container():
    if error is not None:
        st.caption("Keras builds the model once the architecture is valid.")
    else:
        summary = keras_summary(to_json(layers, "mnist_cnn"))
        if summary.error:
            st.warning(plain(summary.error))
        else:
            st.code(summary.text, language=None, height=520 if summary.text.count("\n") > 30 else "content")
            kind, check = view.summary_check(summary, report)
            getattr(st, kind)(check)
