"""Train: pick a net and its settings, see how long it will take, watch it learn, stop it any time."""
import app
app.route_through_navigation()

import streamlit as st

from mnist_lab import training
from mnist_lab.architecture.sources import from_choice
from mnist_lab.errors import LabError
from mnist_lab.presentation import estimate_parts
from mnist_lab.runs import ACTIVE, RunNotFound, RunStatus
from mnist_lab.training import plans
from mnist_lab.views import train as view
from mnist_lab.views.runs import status_badge


augmentation_preview = st.cache_data(view.augmentation_preview, show_spinner="Preparing the augmentation preview…")

st.title("Train")
st.markdown("Pick a net and how to train it, then watch its loss fall and its accuracy rise, batch after batch. "
            "Runs are saved as they go: you can leave this page, refresh it, or stop a run at any time.")

try:
    manager = app.shared_manager()
    train_available, test_available = manager.data_sizes()
except LabError as error:
    st.error(str(error))
    st.stop()
form = view.TrainForm(st.session_state, train_available, test_available, st.session_state.get("architecture_name"),
                      edited=st.session_state.get("architecture_layers") is not None)

# --- choosing the net and how to train it ---------------------------------------------------------------
setup, watch_column = st.columns([1, 1], gap="large")
with setup:
    st.subheader("1. The net")
    architecture_key = st.selectbox("Architecture", list(form.options), format_func=form.options.get,
                                    key="train_architecture",
                                    help="The notebook's presets, your saved architectures, and the one open on "
                                         "the Architecture page.")
    try:
        architecture = from_choice(architecture_key, st.session_state.get("architecture_layers"),
                                                        st.session_state.get("architecture_name"))
        architecture, report, _, _ = manager.prepare(architecture, training.TrainSettings(epochs=1, train_size=None))
    except (LabError, OSError) as error:
        st.error(f"This architecture cannot be trained: {error}")
        st.page_link("pages/architecture.py", label="Fix it on the Architecture page", icon=":material/account_tree:")
        st.stop()
    st.caption(view.architecture_caption(report))

    st.subheader("2. How to train it")
    for column, plan in zip(st.columns(len(plans.PLANS)), plans.PLANS.values()):
        column.button(plan.label, on_click=form.apply_plan, args=(plan,), help=plan.description, width="stretch",
                      icon=":material/bolt:" if plan.key == "quick" else ":material/menu_book:", key=f"plan_{plan.key}")
    st.caption(form.plans_caption())

    left, right = st.columns(2)
    with left:
        st.number_input("Epochs", min_value=1, max_value=training.MAX_EPOCHS, key="train_epochs",
                        persist_state="session",
                        help="An epoch is one pass over every training image. The notebook trained 12.")
        st.selectbox("Optimizer", list(training.OPTIMIZERS), key="train_optimizer",
                     format_func=lambda key: training.OPTIMIZERS[key].label, on_change=form.reset_learning_rate,
                     persist_state="session", help=training.OPTIMIZERS[st.session_state.train_optimizer].description)
        validation_labels = form.validation_labels()
        st.radio("Validate on", list(validation_labels), key="train_validation", format_func=validation_labels.get,
                 persist_state="session",
                 help="Validation images are never trained on: they show how well the net generalises, epoch by "
                      "epoch.")
        st.caption(form.validation_note())
    with right:
        st.select_slider("Batch size", form.with_current(training.BATCH_SIZE_CHOICES, "batch_size"),
                         key="train_batch_size", persist_state="session",
                         help="Images per weight update. The notebook used 128.")
        st.select_slider("Learning rate", form.with_current(training.LEARNING_RATE_CHOICES, "learning_rate"),
                         key="train_learning_rate", format_func=lambda value: f"{value:g}", persist_state="session",
                         help="How big each update step is. Too high and the loss jumps or becomes NaN; too low and "
                              "learning crawls.")
        st.selectbox("Learning-rate schedule", list(training.SCHEDULES), key="train_schedule",
                     format_func=view.SCHEDULE_LABELS.get, persist_state="session",
                     help=training.SCHEDULES[st.session_state.train_schedule])
        st.select_slider("Training images", form.training_sizes(), key="train_train_size", persist_state="session",
                         format_func=form.training_size_label,
                         help="Fewer images train faster and reach a lower accuracy.")
        st.number_input("Random seed", min_value=0, max_value=2**31 - 1, key="train_seed", persist_state="session",
                        help="Fixes which images are held out, the initial weights and the dropout. Same seed, same "
                             "settings: nearly the same run.")
    if st.toggle("Augment the training images (small shifts, rotations, zoom, thinner or thicker strokes)",
                 key="train_augment", persist_state="session",
                 help="Each epoch sees slightly different images: slower to fit, often better on real handwriting."):
        st.image(augmentation_preview(), width="stretch",
                 caption="Top: ten training digits. Below: what two epochs of augmentation might make of them.")
    name = st.text_input("Run name", key="train_name", persist_state="session", max_chars=training.MAX_NAME_LENGTH,
                         placeholder="a name to find this run again (optional)")

try:
    architecture, report, settings, run_name = manager.prepare(architecture, form.settings(), name)
    problem = None
except LabError as error:
    problem = str(error)

with watch_column:
    st.subheader("3. Train it and watch")
    # The run being watched while it trains goes first, so that its chart is in view after Train is pressed
    # (on a 1280x720 screen too); a finished one goes below the button.
    active_slot = st.container()
    estimating = problem is None and manager.speed.calibration() is None and manager.speed.error is None

    # While the speed is measured this panel polls; once it is known it shows the estimate and polls on until
    # the next full rerun. It does not rerun the whole page itself: on a fresh server every open page would
    # do so at the same moment, crossing the learners' own clicks.
    @st.fragment(run_every=1.0 if estimating else None)
    def estimate_panel():
        if problem is not None:
            st.error(problem)
            return
        estimate = manager.estimate(report, settings)
        if estimate is None:
            st.caption(view.estimate_pending(manager.speed.error, manager.is_training()))
            return
        calibration = manager.speed.calibration()
        st.markdown(view.estimate_headline(estimate, calibration), help=view.estimate_basis(calibration, report))
        st.caption(" · ".join(estimate_parts(estimate, settings)))
        if advice := form.long_run_advice(calibration, report, estimate):
            st.caption(advice)

    estimate_slot = st.container()  # filled last: a full rerun's widgets come before the polling panel's runs
    if st.button("Train", type="primary", icon=":material/play_arrow:", disabled=problem is not None,
                 width="stretch"):
        try:
            run_id = manager.submit(architecture, settings, name, owner=app.owner())
        except LabError as error:
            st.error(str(error))
        else:
            st.session_state.train_watched_run = run_id
            st.query_params["run"] = run_id
            st.toast(view.started_message(run_name, queued=manager.queue_position(run_id) is not None))
    st.caption(view.capacity_caption(manager.counts()))
    idle_slot = st.container()
    with estimate_slot:
        estimate_panel()


# --- watching runs ----------------------------------------------------------------------------------------
runs = manager.runs(max_age=0)
me = app.actor()
watched = view.watched_run(st.query_params.get("run") or st.session_state.get("train_watched_run"), runs, me)
st.session_state.train_watched_run = watched
st.session_state.train_seen_changes = manager.change_count()


def watched_run(run_id: str):
    try:
        meta = manager.store.get(run_id)
    except RunNotFound:
        st.info("This run was deleted.")
        return
    snapshot, history = manager.live(run_id), manager.store.history(run_id)
    active = meta["status"] in ACTIVE
    queue_position = manager.queue_position(run_id)
    starting = view.starting(meta, snapshot, queue_position)
    title, stop = st.columns([5, 2], vertical_alignment="center")
    title.markdown(f"**{view.watched_title(meta, me.owns(meta))}** {status_badge(meta['status'], starting)}")
    if active and me.may_change(meta):
        if stop.button("Stop", icon=":material/stop:", key=f"stop_{run_id}", width="stretch",
                       help="Stops before the next batch. Finished epochs and their model are kept."):
            try:
                manager.stop(run_id, by=me)
            except LabError as error:
                st.error(str(error))
            else:
                st.toast("Stopping before the next batch…")
    elif active:
        stop.caption(view.stop_refusal(meta))
    if meta["status"] == RunStatus.QUEUED and not starting:
        st.info(view.queue_message(queue_position, manager.expected_start(run_id)), icon=":material/hourglass_top:")
    elif active:
        progress = view.progress(meta, snapshot, view.run_estimate(manager.speed.calibration(), meta))
        st.progress(progress.fraction, text=progress.text)
        st.caption(progress.caption)
    if outcome := view.outcome(meta, history, test_available):
        getattr(st, outcome.kind)(outcome.text, icon=outcome.icon)
        for note in outcome.notes:
            st.info(note, icon=":material/lightbulb:")
    if charts := view.charts(meta, snapshot, history):
        for chart in charts:
            st.vega_lite_chart(spec=chart, width="stretch")
        st.caption(view.chart_caption(snapshot))
    elif active:
        st.caption("The charts appear with the first batches.")
    st.caption(view.run_details(meta))
    if not active and manager.store.has_model(run_id):
        st.markdown("**What next?**")
        if st.button("Compare it with other runs and the notebook", icon=":material/compare_arrows:",
                     key=f"compare_{run_id}"):
            view.select_for_comparison(st.session_state, run_id)
            st.switch_page("pages/compare.py")
        st.page_link("pages/draw.py", label="Try it on your own handwriting", icon=":material/draw:")


def run_rows(runs: list[dict], watched: str | None, show_owner: bool):
    for meta in runs[:view.LISTED_RUNS]:
        row = view.run_row(meta, show_owner, manager.queue_position(meta["id"]))
        name, status, accuracy, action = st.columns([5, 4, 2, 2], vertical_alignment="center")
        name.markdown(row.name)
        status.markdown(row.status)
        accuracy.markdown(row.accuracy)
        if meta["id"] == watched:
            action.markdown(":blue[:material/visibility: watching]")
        elif action.button("Watch", key=f"watch_{meta['id']}", width="stretch", icon=":material/visibility:"):
            st.session_state.train_watched_run = st.query_params["run"] = meta["id"]
            st.rerun()  # the whole page: the watched run is drawn outside this fragment


def run_list(runs: list[dict], watched: str | None):
    st.subheader("Your runs")
    if yours := [meta for meta in runs if me.owns(meta)]:
        run_rows(yours, watched, show_owner=False)
    else:
        st.caption("None yet: choose a net above and press Train.")
    st.subheader("The class's runs")
    st.caption(view.class_caption(manager.counts()))
    if others := [meta for meta in runs if not me.owns(meta)]:
        run_rows(others, watched, show_owner=True)
    else:
        st.caption("No one else has trained yet.")


watching_active = any(meta["id"] == watched and meta["status"] in ACTIVE for meta in runs)


@st.fragment(run_every=1.0 if watching_active else None)
def watched_panel():
    """The watched run: progress and charts, re-drawn every second while it is queued or training."""
    run_id = st.session_state.get("train_watched_run")
    if run_id is None:
        return
    with st.container(border=True):
        watched_run(run_id)
    if watching_active and run_id not in {meta["id"] for meta in manager.runs() if meta["status"] in ACTIVE}:
        st.rerun()  # it has finished: draw the whole page once more, without the timer


@st.fragment(run_every=2.0)
def runs_panel():
    """Every learner's runs, re-drawn every 2 seconds from the manager's shared list; when a run was added
    or ended (the change count moved) the whole page is drawn again, so the watched run is current too."""
    if manager.change_count() != st.session_state.get("train_seen_changes"):
        st.rerun()
    run_list(manager.runs(), st.session_state.get("train_watched_run"))


with active_slot if watching_active else idle_slot:
    watched_panel()
st.divider()
runs_panel()
