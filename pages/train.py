"""Train: pick a net and its settings, see how long it will take, watch it learn, stop it any time."""
import app
app.route_through_navigation()

import streamlit as st

from mnist_lab import architecture_sources, architectures, data, training
from mnist_lab.errors import LabError
from mnist_lab.training import plans
from mnist_lab import presentation
from mnist_lab.presentation import chart_spec, describe_settings, format_duration, result_notes
from mnist_lab.runs import ACTIVE_STATUSES as ACTIVE
from mnist_lab.teaching import markdown_text
from mnist_lab.runs import RunNotFound, RunStatus
from mnist_lab.training.phases import Phase
from mnist_lab.views.runs import status_badge

SCHEDULE_LABELS = {"constant": "Constant (as the notebook)", "warmup-cosine": "Warm up, then cosine decay",
                   "one-cycle": "One cycle: up, then cosine decay"}


@st.cache_data(show_spinner="Preparing the augmentation preview…")
def augmentation_preview():
    """Ten training digits and two augmented versions of each, as one picture."""
    import numpy as np

    from mnist_lab import augmentation
    from mnist_lab.gallery import digit_grid

    mnist = data.load_mnist()
    images, labels = data.sample_digits(mnist, per_class=1)
    originals = data.to_model_input(images)
    with training.KERAS_SETUP_LOCK:  # Keras must not build in two threads at once
        rows = [originals] + [augmentation.preview(originals, seed=seed) for seed in (1, 2)]
    return digit_grid(np.concatenate(rows), None, columns=10, scale=2)


st.title("Train")
st.markdown("Pick a net and how to train it, then watch its loss fall and its accuracy rise, batch after batch. "
            "Runs are saved as they go: you can leave this page, refresh it, or stop a run at any time.")

try:
    manager = app.shared_manager()
    train_available, test_available = manager.data_sizes()
except LabError as error:
    st.error(str(error))
    st.stop()
store = manager.store


# --- choosing the architecture ----------------------------------------------------------------------

def apply_preset_defaults():
    """Choosing a preset fills in its recipe; saved and edited nets keep the current settings."""
    source, _, name = st.session_state["train_architecture"].partition(":")
    for setting, value in plans.recipe(source, name).items():
        st.session_state[f"train_{setting}"] = value
    st.session_state.train_defaults_for = st.session_state["train_architecture"]


def with_current(choices: tuple, key: str) -> list:
    """A slider's round values plus the current one (a preset may recommend, say, a rate of 0.004)."""
    return sorted(set(choices) | ({st.session_state[key]} if key in st.session_state else set()))


def images_to_train_on() -> int:
    """All the training images, less the held-out ones when validating on those."""
    return train_available - (holdout if st.session_state.get("train_validation") == "holdout" else 0)


def chosen_preset() -> str | None:
    """The preset being trained (None for a saved or edited net): a plan may differ for it."""
    source, _, name = st.session_state["train_architecture"].partition(":")
    return name if source == "preset" else None


def set_plan(plan: plans.Plan):
    for setting, value in plan.values(images_to_train_on(), chosen_preset()).items():
        st.session_state[f"train_{setting}"] = value


def reset_learning_rate():
    st.session_state.train_learning_rate = training.OPTIMIZERS[st.session_state.train_optimizer].default_learning_rate


options, default_option = architecture_sources.choices(st.session_state.get("architecture_name"),
                                                       edited=st.session_state.get("architecture_layers") is not None)
if st.session_state.get("train_architecture") not in options:
    st.session_state.train_architecture = default_option
if st.session_state.get("train_defaults_for") != st.session_state.train_architecture:
    apply_preset_defaults()

holdout = training.default_holdout(train_available)
for key, value in plans.form_defaults().items():
    st.session_state.setdefault(f"train_{key}", value)

setup, watch_column = st.columns([1, 1], gap="large")
with setup:
    st.subheader("1. The net")
    architecture_key = st.selectbox("Architecture", list(options), format_func=options.get, key="train_architecture",
                                    help="The notebook's presets, your saved architectures, and the one open on "
                                         "the Architecture page.")
    try:
        architecture = architecture_sources.from_choice(architecture_key, st.session_state.get("architecture_layers"),
                                                        st.session_state.get("architecture_name"))
        architecture, report, _, _ = manager.prepare(architecture, training.TrainSettings(epochs=1, train_size=None))
    except (LabError, OSError) as error:
        st.error(f"This architecture cannot be trained: {error}")
        st.page_link("pages/architecture.py", label="Fix it on the Architecture page", icon=":material/account_tree:")
        st.stop()
    st.caption(f"{report.total_parameters:,} parameters · {report.multiply_adds / 1e6:,.1f} million multiply-adds "
               f"per image · " + " → ".join(layer.label for layer in report.layers))

    st.subheader("2. How to train it")
    for column, plan in zip(st.columns(len(plans.PLANS)), plans.PLANS.values()):
        column.button(plan.label, on_click=set_plan, args=(plan,), help=plan.description, width="stretch",
                      icon=":material/bolt:" if plan.key == "quick" else ":material/menu_book:", key=f"plan_{plan.key}")
    st.caption(" · ".join(plans.describe(plan, images_to_train_on(), chosen_preset()) for plan in plans.PLANS.values())
               + "".join(f" · {note}" for plan in plans.PLANS.values() if (note := plan.note(chosen_preset()))))

    left, right = st.columns(2)
    with left:
        epochs = st.number_input("Epochs", min_value=1, max_value=training.MAX_EPOCHS, key="train_epochs",
                                 persist_state="session",
                                 help="An epoch is one pass over every training image. The notebook trained 12.")
        optimizer = st.selectbox("Optimizer", list(training.OPTIMIZERS), key="train_optimizer",
                                 format_func=lambda key: training.OPTIMIZERS[key].label, on_change=reset_learning_rate,
                                 persist_state="session",
                                 help=training.OPTIMIZERS[st.session_state.train_optimizer].description)
        validation_labels = {"holdout": "Held-out training images (recommended)",
                             "test": f"The {test_available:,} test images (as the notebook did)"}
        validation = st.radio("Validate on", list(validation_labels), key="train_validation",
                              format_func=validation_labels.get, persist_state="session",
                              help="Validation images are never trained on: they show how well the net generalises, "
                                   "epoch by epoch.")
        if validation == "test":
            st.caption(f":material/warning: {training.TEST_VALIDATION_NOTE}")
        else:
            st.caption(f"{holdout:,} training images are set aside for validation (never trained on).")
    with right:
        batch_size = st.select_slider("Batch size", with_current(training.BATCH_SIZE_CHOICES, "train_batch_size"),
                                      key="train_batch_size", persist_state="session",
                                      help="Images per weight update. The notebook used 128.")
        learning_rate = st.select_slider("Learning rate",
                                         with_current(training.LEARNING_RATE_CHOICES, "train_learning_rate"),
                                         key="train_learning_rate", format_func=lambda value: f"{value:g}",
                                         persist_state="session",
                                         help="How big each update step is. Too high and the loss jumps or "
                                              "becomes NaN; too low and learning crawls.")
        schedule = st.selectbox("Learning-rate schedule", list(training.SCHEDULES), key="train_schedule",
                                format_func=SCHEDULE_LABELS.get, persist_state="session",
                                help=training.SCHEDULES[st.session_state.train_schedule])
        most = images_to_train_on()
        sizes = training.training_size_choices(most)
        if st.session_state.get("train_train_size") not in sizes:
            st.session_state.train_train_size = min(sizes, key=lambda size: abs(size - st.session_state.get(
                "train_train_size", most)))
        train_size = st.select_slider("Training images", sizes, key="train_train_size", persist_state="session",
                                      format_func=lambda size: f"{size:,}" + (" (all)" if size == most else ""),
                                      help="Fewer images train faster and reach a lower accuracy.")
        seed = st.number_input("Random seed", min_value=0, max_value=2**31 - 1, key="train_seed",
                               persist_state="session",
                               help="Fixes which images are held out, the initial weights and the dropout. "
                                    "Same seed, same settings: nearly the same run.")
    augment = st.toggle("Augment the training images (small shifts, rotations, zoom, thinner or thicker strokes)",
                        key="train_augment", persist_state="session",
                        help="Each epoch sees slightly different images: slower to fit, often better on real "
                             "handwriting.")
    if augment:
        st.image(augmentation_preview(), width="stretch",
                 caption="Top: ten training digits. Below: what two epochs of augmentation might make of them.")
    name = st.text_input("Run name", key="train_name", persist_state="session", max_chars=training.MAX_NAME_LENGTH,
                         placeholder="a name to find this run again (optional)")

settings = training.TrainSettings(epochs=int(epochs), batch_size=int(batch_size), optimizer=optimizer,
                                  learning_rate=float(learning_rate), train_size=int(train_size),
                                  validation=validation, seed=int(seed), augment=bool(augment), schedule=schedule)
try:
    architecture, report, settings, run_name = manager.prepare(architecture, settings, name)
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
            if manager.speed.error:
                st.caption(manager.speed.error)
            elif manager.is_training():
                st.caption("The time estimate is measured when no run is training on this server.")
            else:
                st.caption(":material/speed: Measuring this machine's speed (a few seconds, once)…")
            return
        calibration = manager.speed.calibration()
        st.markdown(f":material/timer: **≈ {format_duration(estimate.run_seconds)}** from Train to the test score "
                    f"on {calibration.device}",
                    help=f"Measured on this machine ({calibration.measured[:10]}) with three small nets, then worked "
                         f"out for this one from its {report.multiply_adds:,} multiply-adds per image and the values "
                         "its layers write, for the images and batch size chosen.")
        st.caption(" · ".join(presentation.estimate_parts(estimate, settings)))
        if estimate.epoch_seconds > 60:
            quick = plans.PLANS["quick"]
            quick_settings = training.TrainSettings(**quick.values(images_to_train_on(), chosen_preset()),
                                                    validation=settings.validation).resolve(train_available,
                                                                                            test_available)
            quick_estimate = training.estimate_epoch(calibration, report, quick_settings)
            cheapest = min(architectures.PRESETS,
                           key=lambda preset: architectures.analyze(architectures.preset_layers(preset)).multiply_adds)
            st.caption(f"That is long for a lesson. The quick demo ({quick_settings.train_size:,} images, 1 epoch) "
                       f"takes ≈ {format_duration(quick_estimate.run_seconds)}, and a net with fewer "
                       f"multiply-adds per image, such as {cheapest}, is far faster.")

    estimate_panel()
    counts = manager.counts()
    if st.button("Train", type="primary", icon=":material/play_arrow:", disabled=problem is not None,
                 width="stretch"):
        try:
            run_id = manager.submit(architecture, settings, name, owner=app.owner())
        except LabError as error:
            st.error(str(error))
        else:
            st.session_state.train_watched_run = run_id
            st.query_params["run"] = run_id
            st.toast(f"{'Started' if manager.queue_position(run_id) is None else 'Queued'} {markdown_text(run_name)}")
    st.caption(f"This server trains {counts['max_concurrent']} run{'s' if counts['max_concurrent'] != 1 else ''} "
               f"at a time; others wait in a queue (at most {counts['max_queued']}).")
    idle_slot = st.container()


# --- watching runs ----------------------------------------------------------------------------------

runs = manager.runs(max_age=0)
ids = [meta["id"] for meta in runs]
me = app.actor()
mine = [meta for meta in runs if me.owns(meta)]
watched = st.query_params.get("run") or st.session_state.get("train_watched_run")
if watched not in ids:  # by default your own latest run: the one training, else the newest
    active = [meta["id"] for meta in mine if meta["status"] in ACTIVE]
    watched = active[0] if active else (mine[0]["id"] if mine else None)
st.session_state.train_watched_run = watched
polling = any(meta["status"] in ACTIVE for meta in runs)
st.session_state.train_seen_changes = manager.change_count()


def watch(run_id: str):
    st.session_state.train_watched_run = run_id
    st.query_params["run"] = run_id


def starting(meta: dict, snapshot: dict) -> bool:
    """Handed to a training process, which has not yet said so in the run's record."""
    return (meta["status"] == RunStatus.QUEUED and snapshot.get("status") == RunStatus.RUNNING
            and manager.queue_position(meta["id"]) is None)


def run_estimate(meta: dict):
    """The estimate for this run's net and settings (None until this machine's speed is known)."""
    calibration = manager.speed.calibration()
    layers = (meta.get("architecture") or {}).get("layers")
    if calibration is None or not layers:
        return None
    try:
        return training.estimate_epoch(calibration, architectures.analyze(layers),
                                       training.TrainSettings.from_dict(meta["settings"]))
    except (LabError, ValueError, TypeError, KeyError):
        return None


def progress_panel(meta: dict, snapshot: dict):
    status = meta["status"]
    if status == RunStatus.QUEUED and not starting(meta, snapshot):
        position = manager.queue_position(meta["id"])
        start = manager.expected_start(meta["id"])
        when = f", expected to start in about {format_duration(start)}" if start is not None else ""
        st.info(f"Waiting in the queue{f': number {position}' if position else ''}{when}. It starts by itself "
                "when a training slot frees up; you can leave this page meanwhile.", icon=":material/hourglass_top:")
        return
    if status not in ACTIVE:
        return
    epoch, epochs = snapshot.get("epoch") or 1, snapshot.get("epochs") or meta["settings"]["epochs"]
    batch, batches = snapshot.get("batch") or 0, snapshot.get("batches") or 1
    done = min(1.0, ((epoch - 1) + batch / batches) / epochs)
    st.progress(done, text=presentation.progress_line(snapshot if status == RunStatus.RUNNING else
                                                      dict(snapshot, phase=Phase.QUEUED), epochs))
    left, estimated = presentation.time_left(snapshot, run_estimate(meta))
    images_per_second = snapshot.get("images_per_second")
    st.caption(f"Elapsed **{format_duration(snapshot.get('elapsed'), compact=True)}** · Time left "
               f"**{'≈ ' if estimated else ''}{format_duration(left, compact=True)}**"
               f"{' (estimated before the start)' if estimated else ''} · "
               f"**{f'{images_per_second:,.0f}' if images_per_second else '–'}** images / second")


def result_panel(meta: dict, history: list[dict]):
    """The outcome in one sentence, and what it means."""
    status = meta["status"]
    if status == RunStatus.COMPLETED and meta.get("test_accuracy") is not None:
        loss = f" (test loss {meta['test_loss']:.4f})" if meta.get("test_loss") is not None else ""
        st.success(f"Done: **{100 * meta['test_accuracy']:.2f} %** of the {test_available:,} test images "
                   f"right{loss} after {len(history)} epoch(s).", icon=":material/check_circle:")
    elif status == RunStatus.STOPPED:
        accuracy = (f" Test accuracy of the kept model: {100 * meta['test_accuracy']:.2f} %."
                    if meta.get("test_accuracy") is not None else "")
        st.warning(f"{meta.get('message') or 'Stopped.'}{accuracy}", icon=":material/stop_circle:")
    elif status == RunStatus.FAILED:
        st.error(meta.get("message") or "The run failed.", icon=":material/error:")
    elif status == RunStatus.INTERRUPTED:
        st.warning(meta.get("message") or "The server stopped during this run.", icon=":material/warning:")
    elif status == RunStatus.DAMAGED:
        st.error(markdown_text(meta.get("problem") or "This run's files are damaged."), icon=":material/error:")
        return
    else:
        return
    for note in result_notes(meta, history):
        st.info(note, icon=":material/lightbulb:")


def next_steps(meta: dict):
    if meta["status"] not in ACTIVE and store.has_model(meta["id"]):
        st.markdown("**What next?**")
        if st.button("Compare it with other runs and the notebook", icon=":material/compare_arrows:",
                     key=f"compare_{meta['id']}"):
            selected = st.session_state.setdefault("selected_run_ids", [])
            if meta["id"] not in selected:
                selected.append(meta["id"])
            st.switch_page("pages/compare.py")
        st.page_link("pages/draw.py", label="Try it on your own handwriting", icon=":material/draw:")


def charts(meta: dict, snapshot: dict, history: list[dict]) -> bool:
    if not snapshot.get("curve") and not history:
        return False
    epochs = (meta.get("settings") or {}).get("epochs") or 1
    for metric in ("loss", "accuracy"):
        st.vega_lite_chart(spec=chart_spec(snapshot, history, metric, epochs), width="stretch")
    st.caption(f"Light blue: loss and accuracy of each training batch, smoothed over about 20 batches "
               f"({snapshot.get('batches_done') or 0:,} batches so far, {len(snapshot.get('curve') or [])} points). "
               "Dots: means over each whole epoch, on the training images (dark blue) and on the validation images "
               "(orange), as the notebook plotted them. Validation getting worse while training improves means "
               "overfitting.")
    return True


def watched_title(meta: dict) -> str:
    """"Your run: …" or "Ada's run: …", without the owner's name that a default run name begins with."""
    owner = meta.get("owner_name") or ""
    name = meta["name"].removeprefix(f"{owner} · ") if owner else meta["name"]
    whose = "Your run" if me.owns(meta) else f"{owner}'s run" if owner else "Watching"
    return f"{whose}: {markdown_text(name)}"


def watched_run(run_id: str):
    try:
        meta = store.get(run_id)
    except RunNotFound:
        st.info("This run was deleted.")
        return
    snapshot = manager.live(run_id)
    history = store.history(run_id)
    title, stop = st.columns([5, 2], vertical_alignment="center")
    with title:
        st.markdown(f"**{watched_title(meta)}** {status_badge(meta['status'], starting(meta, snapshot))}")
    if meta["status"] in ACTIVE and app.actor().may_change(meta):
        if stop.button("Stop", icon=":material/stop:", key=f"stop_{run_id}", width="stretch",
                       help="Stops before the next batch. Finished epochs and their model are kept."):
            try:
                manager.stop(run_id, by=app.actor())
            except LabError as error:
                st.error(str(error))
            else:
                st.toast("Stopping before the next batch…")
    elif meta["status"] in ACTIVE:
        stop.caption(f"{markdown_text(meta.get('owner_name') or 'Another learner')}'s run: only they or the "
                     "teacher can stop it.")
    architecture_ = meta.get("architecture") or {}
    progress_panel(meta, snapshot)
    result_panel(meta, history)
    if not charts(meta, snapshot, history) and meta["status"] in ACTIVE:
        st.caption("The charts appear with the first batches.")
    st.caption(f"{markdown_text(architecture_.get('label') or architecture_.get('name'))} · "
               f"{meta.get('parameters') or 0:,} "
               f"parameters · {describe_settings(meta.get('settings') or {})}"
               + (f" · {meta['device']}" if meta.get("device") else ""))
    next_steps(meta)


def run_rows(runs: list[dict], watched: str | None, show_owner: bool):
    for meta in runs[:8]:
        name, status, accuracy, action = st.columns([5, 4, 2, 2], vertical_alignment="center")
        settings_ = meta.get("settings") or {}
        whose = f"{markdown_text(meta.get('owner_name') or 'command line')} · " if show_owner else ""
        name.markdown(f"**{markdown_text(meta['name'])}**  \n:gray[{whose}"
                      f"{markdown_text((meta.get('architecture') or {}).get('name'))} · "
                      f"{(meta.get('created') or '')[:16].replace('T', ' ')} UTC]")
        progress = f" · epoch {meta.get('epochs_done', 0)}/{settings_.get('epochs')}"
        if meta["status"] == RunStatus.QUEUED and (position := manager.queue_position(meta["id"])):
            progress = f" · number {position} in the queue"
        status.markdown(f"{status_badge(meta['status'])}{progress}")
        accuracy.markdown(f"{100 * meta['test_accuracy']:.2f} % test" if meta.get("test_accuracy") is not None
                          else ":gray[–]")
        if meta["id"] == watched:
            action.markdown(":blue[:material/visibility: watching]")
        else:
            if action.button("Watch", key=f"watch_{meta['id']}", width="stretch", icon=":material/visibility:"):
                watch(meta["id"])
                st.rerun()  # the whole page: the watched run is drawn outside this fragment


def run_list(runs: list[dict], watched: str | None):
    counts = manager.counts()
    yours = [meta for meta in runs if me.owns(meta)]
    others = [meta for meta in runs if not me.owns(meta)]
    st.subheader("Your runs")
    if yours:
        run_rows(yours, watched, show_owner=False)
    else:
        st.caption("None yet: choose a net above and press Train.")
    st.subheader("The class's runs")
    st.caption(f"On this server now: {counts[RunStatus.RUNNING]} training, {counts[RunStatus.QUEUED]} waiting. "
               "Watch any run and compare it on the Compare page; only its learner or the teacher can stop it.")
    if others:
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
