"""Projector: the class experiment on the room's screen. The question; every run's accuracy as it trains,
coloured by value; each run's test accuracy beside its value's median and spread; what each value's runs
are doing; one sentence of what the class found; the runs as CSV and the chart as PNG. Past experiments
stay readable here. Learners are numbered unless the teacher shows their names."""
import app
app.route_through_navigation()

import functools

import streamlit as st

from mnist_lab import experiments
from mnist_lab.runs import RunStore, default_runs_dir
from mnist_lab.views import projector as view
from mnist_lab.views.markdown import plain

REFRESH_SECONDS = 2

class_experiments = experiments.ExperimentStore(RunStore(default_runs_dir()))
opened = class_experiments.open_experiment()
every_experiment = {experiment["id"]: experiment for experiment in class_experiments.list()}
st.session_state.setdefault("projector_followed", opened and opened["id"])  # open when the screen came up
if view.newly_opened(opened, st.session_state["projector_followed"]):
    st.session_state["projector_followed"] = st.session_state["projector_experiment"] = opened["id"]
st.html(view.LARGE_TYPE_CSS)

if every_experiment:
    requested = st.query_params.get("experiment")
    st.session_state.setdefault("projector_experiment", requested if requested in every_experiment
                                else next(iter(every_experiment)))
    if st.session_state["projector_experiment"] not in every_experiment:  # archived away or gone since
        st.session_state["projector_experiment"] = next(iter(every_experiment))
    with st.sidebar:
        st.selectbox("Experiment", list(every_experiment), key="projector_experiment",
                     format_func=lambda key: view.experiment_label(every_experiment[key]))


def readout(chosen: str | None = None):
    """The chosen experiment as it is now (the teacher may have closed it or shown names since), its runs,
    each value's summary and the results table: what the screen and both downloads show alike."""
    chosen = chosen or st.session_state["projector_experiment"]
    listed = every_experiment[chosen]
    experiment = listed if listed.get("archive") else class_experiments.get(chosen)
    runs = class_experiments.runs_of(experiment)
    return (experiment, runs, experiments.summarize(experiment, runs),
            view.result_frame(experiment, runs, experiment.get("show_names", False)))


@st.fragment(run_every=REFRESH_SECONDS)
def live_view():
    """The chosen experiment as the class trains; one the teacher opens meanwhile takes the screen over."""
    if view.newly_opened(class_experiments.open_experiment(), st.session_state["projector_followed"]):
        st.rerun()  # a whole run lists it and chooses it: no reload
    if not every_experiment:
        st.title("Class experiment")
        st.info("No class experiment yet. The teacher poses one on the Teacher page; it appears here, live, as "
                "the class trains.", icon=":material/science:")
        return
    experiment, runs, summaries, table = readout()
    with st.container(key="projector"):
        st.title(plain(experiment["question"]))
        if experiment.get("status") != experiments.ExperimentStatus.OPEN:
            st.caption("This experiment is closed: these are its final results.")
        st.markdown(f"**{plain(experiments.findings(summaries))}**")
        curves, results = st.columns(2)
        frame = view.curve_frame(experiment, runs, class_experiments.stores_of(experiment))
        if frame.empty:
            curves.markdown("The curves appear here as soon as the first run starts training.")
        else:
            curves.altair_chart(view.curves_chart(frame, experiment), width="stretch",
                                height=view.CHART_HEIGHT)
            curves.caption(view.CURVES_CAPTION)
        results.altair_chart(view.results_chart(table, summaries, experiment), width="stretch",
                              height=view.CHART_HEIGHT)
        results.caption(view.RESULTS_CAPTION)
        st.table(view.status_table(summaries).set_index("value"))


live_view()
if not every_experiment:
    st.stop()


# The downloads are made when clicked, outside this script run: they are handed the experiment's id.
def results_csv(chosen: str) -> bytes:
    return view.csv_bytes(readout(chosen)[3])


def results_png(chosen: str) -> bytes:
    experiment, _, summaries, table = readout(chosen)
    return view.png_bytes(view.results_chart(table, summaries, experiment))


chosen = st.session_state["projector_experiment"]
csv_button, png_button = st.columns(2)
csv_button.download_button("Download the runs (CSV)", functools.partial(results_csv, chosen),
                           file_name=f"experiment-{chosen}.csv", mime="text/csv", icon=":material/table:",
                           on_click="ignore", key="projector_csv")
png_button.download_button("Download the chart (PNG)", functools.partial(results_png, chosen),
                           file_name=f"experiment-{chosen}.png", mime="image/png", icon=":material/image:",
                           on_click="ignore", key="projector_png")
