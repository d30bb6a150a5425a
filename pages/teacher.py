"""Teacher: unlocked by the key the teacher set. The address to give learners, every run and the queue, the
models everyone opens first, how many runs train at once, the class's handwriting, and the reset between
lessons. A wrong key shows nothing of it."""
import app
app.route_through_navigation()

import pandas as pd
import streamlit as st

from mnist_lab import experiments
from mnist_lab.architecture import sources
from mnist_lab.classroom import classroom, learners
from mnist_lab.errors import LabError
from mnist_lab.images.handwriting import HandwritingSet
from mnist_lab.presentation import format_duration
from mnist_lab.runs import ACTIVE, USABLE, RunStatus
from mnist_lab.views import experiment as experiment_view
from mnist_lab.views import projector as projector_view
from mnist_lab.views.markdown import plain


def unlock():
    state = st.session_state
    state["teacher_unlocked"] = learners.is_teacher_key(state.get("teacher_key_typed"), app.teacher_key())
    state["teacher_key_wrong"] = not state["teacher_unlocked"]
    state["teacher_key_typed"] = ""


def lock():
    st.session_state["teacher_unlocked"] = False


st.title("Teacher")
st.session_state.setdefault("teacher_unlocked", False)

if app.teacher_key() is None:
    st.info("This server has no teacher key, so the teacher view is off. The README's section *For teachers* "
            "says how to set one before the lesson.", icon=":material/lock:")
    st.stop()

if not st.session_state["teacher_unlocked"]:
    st.markdown("Run the room: every learner's runs, the queue, the models everyone opens first, and the reset "
                "between lessons. Enter the teacher key to unlock it.")
    with st.form("teacher_unlock", border=False):
        st.text_input("Teacher key", type="password", key="teacher_key_typed")
        st.form_submit_button("Unlock", on_click=unlock, icon=":material/lock_open:")
    if st.session_state.get("teacher_key_wrong"):
        st.error("That is not the teacher key.")
    st.stop()

manager = app.shared_manager()
store = manager.store
room = classroom.Room(store)
teacher = app.actor()
handwriting_root = HandwritingSet().base

st.button("Lock the teacher view", on_click=lock, icon=":material/lock:")

# ---- The address -----------------------------------------------------------------------------------
st.subheader("Give learners this address")
address = classroom.learner_address(int(st.get_option("server.port")))
left, right = st.columns([2, 1])
with left:
    st.code(address, language=None)
    st.caption("Learners on the same network open it in their browser, or scan the code. Each browser gets a "
               "name of its own; learners can change it in the sidebar.")
with right:
    st.image(classroom.qr_png(address), width=200, caption="Scan to open the lab")


# ---- Runs and the queue ------------------------------------------------------------------------------
@st.fragment(run_every=2)
def runs_and_queue():
    st.subheader("Runs and the queue")
    counts = manager.counts()
    training_now, waiting, slots = st.columns(3)
    training_now.metric("Training", counts[RunStatus.RUNNING])
    waiting.metric("Waiting", f"{counts[RunStatus.QUEUED]} of at most {counts['max_queued']}")
    slots.number_input("Runs that train at once", min_value=1, max_value=32, value=counts["max_concurrent"],
                       key="teacher_slots", on_change=set_slots,
                       help="The default, one per CPU core, finishes a class's small runs soonest; more at once shares "
                            "the cores, so each run gets slower. The default is set with "
                            "MNIST_LAB_MAX_CONCURRENT_RUNS; waiting places with MNIST_LAB_MAX_QUEUED_RUNS.")
    runs = manager.runs()
    pins = set(room.pinned())
    queue = manager.queued_run_ids()
    packs = {run_id: f"pack {number}" for number, pack in enumerate(manager.packs(), start=1) for run_id in pack}
    rows = [{"learner": meta.get("owner_name") or "(command line)", "run": meta["name"],
             "status": str(meta["status"]), "trains in": packs.get(meta["id"], ""),
             "place": str(queue.index(meta["id"]) + 1) if meta["id"] in queue else "",
             "starts in": (format_duration(manager.expected_start(meta["id"])) if meta["id"] in queue else ""),
             "test accuracy": (f"{meta['test_accuracy']:.1%}" if meta.get("test_accuracy") is not None else "–"),
             "pinned": meta["id"] in pins} for meta in runs]
    if not rows:
        st.caption("No runs yet.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if packs:
        st.caption("Runs of one net and the same settings that wait together train as one pack: one model "
                   "that holds each learner's net, with its own seed and images, in one training slot.")
    labels = {meta["id"]: f"{meta.get('owner_name') or 'command line'} · {meta['name']}" for meta in runs}
    chosen = st.selectbox("A run to act on", list(labels), format_func=labels.get, key="teacher_run")
    if chosen is None:
        return
    meta = next(meta for meta in runs if meta["id"] == chosen)
    stop, front, pin, delete = st.columns(4)
    stop.button("Stop", disabled=meta["status"] not in ACTIVE, on_click=act, args=("stop", chosen),
                key="teacher_stop", icon=":material/stop:")
    front.button("Start next", disabled=chosen not in queue, on_click=act, args=("front", chosen),
                 key="teacher_front", icon=":material/vertical_align_top:")
    pin.button("Unpin" if chosen in pins else "Pin for everyone", on_click=act,
               args=("unpin" if chosen in pins else "pin", chosen), key="teacher_pin", icon=":material/push_pin:",
               disabled=chosen not in pins and (meta["status"] not in USABLE or not store.has_model(chosen)),
               help="Draw and Compare open with the pinned models, else with the most accurate ones.")
    delete.button("Delete", disabled=meta["status"] in ACTIVE, on_click=act, args=("delete", chosen),
                  key="teacher_delete", icon=":material/delete:")
    if st.session_state.get("teacher_problem"):
        st.error(st.session_state["teacher_problem"])


def set_slots():
    try:
        manager.set_max_concurrent(int(st.session_state["teacher_slots"]), by=teacher)
    except LabError as error:
        st.session_state["teacher_problem"] = str(error)


def act(action: str, run_id: str):
    st.session_state["teacher_problem"] = None
    try:
        if action == "stop":
            manager.stop(run_id, by=teacher)
        elif action == "front":
            manager.move(run_id, 1, by=teacher)
        elif action in ("pin", "unpin"):
            room.pin(run_id, pinned=action == "pin")
        elif action == "delete":
            manager.delete(run_id, by=teacher)
    except (LabError, ValueError) as error:
        st.session_state["teacher_problem"] = str(error)


runs_and_queue()

# ---- The class experiment ---------------------------------------------------------------------------
st.subheader("A class experiment")
class_experiments = experiments.ExperimentStore(store)
current = class_experiments.open_experiment()


def posed_form() -> dict:
    """The experiment the form describes, checked (ExperimentError naming what to change), not yet open."""
    state = st.session_state
    return experiments.draft(
        state["experiment_question"], sources.from_choice(state["experiment_base"]),
        {"epochs": state["experiment_epochs"], "train_size": state["experiment_train_size"]},
        state["experiment_variable"], state["experiment_values"], data_sizes=manager.data_sizes(),
        layer=state["experiment_layer"] if state["experiment_variable"] == "filters" else None)


def estimate():
    planned = posed_form()
    st.session_state["experiment_estimate"] = experiment_view.lesson_text(
        experiments.estimate_lesson(planned, manager, st.session_state["experiment_learners"]), planned["labels"])


def attempt(action, *args):
    """A change to the class experiment; a refusal is shown below the form, naming what to change."""
    st.session_state["experiment_problem"] = None
    try:
        action(*args)
    except LabError as error:
        st.session_state["experiment_problem"] = str(error)


if current is not None:
    summaries = experiments.summarize(current, class_experiments.runs_of(current))
    st.markdown(f"Open: **{plain(current['question'])}** ({', '.join(current['labels'])})")
    st.markdown(plain(experiments.findings(summaries)))
    st.page_link("pages/projector.py", label="Show it on the projector", icon=":material/co_present:")
    st.toggle("Show learners' names on the projector", value=current.get("show_names", False),
              key="experiment_show_names", on_change=lambda: attempt(
                  class_experiments.show_names, current["id"], st.session_state["experiment_show_names"], teacher))
    st.button("Close the experiment", key="experiment_close", icon=":material/done_all:",
              on_click=attempt, args=(class_experiments.close, current["id"], teacher))
else:
    bases, default_base = sources.choices(None, edited=False)
    with st.container(border=True):
        varied = experiments.VARIABLES[st.selectbox(
            "What varies", list(experiments.VARIABLES), key="experiment_variable",
            format_func=lambda key: experiments.VARIABLES[key].label.capitalize())]
        with st.form("experiment_pose", border=False):
            st.text_input("The question", placeholder=f"How does the result change with the {varied.label}?",
                          key="experiment_question")
            st.selectbox("The base net", list(bases), format_func=bases.get, index=list(bases).index(default_base),
                         key="experiment_base")
            values, layer = st.columns([3, 1]) if varied.key == "filters" else (st.container(), None)
            values.text_input(f"{experiments.MIN_VALUES} to {experiments.MAX_VALUES} values, separated by commas",
                              placeholder=varied.example, key="experiment_values", help=varied.help)
            if layer is not None:
                layer.number_input("Convolution", min_value=1, value=1, key="experiment_layer",
                                   help="Which convolution's filters vary, 1 being the first.")
            epochs, images, learners_count = st.columns(3)
            epochs.number_input("Epochs", min_value=1, max_value=50, value=1, key="experiment_epochs")
            most = manager.data_sizes()[0]
            images.number_input("Training images", min_value=100, max_value=most, value=min(10_000, most), step=1_000,
                                key="experiment_train_size")
            learners_count.number_input("Learners in the class", min_value=1, max_value=200, value=30,
                                        key="experiment_learners", help="For the time estimate only.")
            estimate_button, open_button = st.columns(2)
            estimate_button.form_submit_button("Estimate the time", on_click=attempt, args=(estimate,),
                                              icon=":material/timer:")
            open_button.form_submit_button("Open the experiment", on_click=attempt, icon=":material/science:",
                                          args=(lambda: class_experiments.open(posed_form(), by=teacher),))
    if st.session_state.get("experiment_estimate"):
        st.info(st.session_state["experiment_estimate"], icon=":material/timer:")
    past = {item["id"]: item for item in class_experiments.list(archived=False)}
    if past:
        chosen = st.selectbox("A past experiment", list(past), key="experiment_past",
                              format_func=lambda key: projector_view.experiment_label(past[key]))
        st.button("Reopen it", key="experiment_reopen", icon=":material/replay:",
                  on_click=attempt, args=(class_experiments.reopen, chosen, teacher))
if st.session_state.get("experiment_problem"):
    st.error(st.session_state["experiment_problem"])

# ---- Handwriting -------------------------------------------------------------------------------------
st.subheader("The class's handwriting")
everyone = HandwritingSet(handwriting_root)
names = app.learner_book(str(store.root)).names()
counts = everyone.learner_counts()
if counts:
    st.dataframe(pd.DataFrame([{"learner": names.get(owner, "a learner"), "samples": count}
                               for owner, count in counts.items()]), hide_index=True)
else:
    st.caption("No learner has saved handwriting yet (on the Draw page).")
pooled = len(HandwritingSet.class_set(handwriting_root))
st.markdown(f"The class set holds **{pooled}** samples, pooled from every learner's set.")
if st.button("Pool everyone's handwriting into the class set", disabled=not counts, icon=":material/group_add:"):
    added = everyone.pool_class_set()
    st.success(f"Added {added} samples to the class set.")

# ---- Reset -------------------------------------------------------------------------------------------
st.subheader("Reset the room for the next lesson")
st.markdown("Moves every learner's finished runs and all handwriting into a dated archive folder. Pinned runs, "
            "runs trained from the command line and runs still training stay. Nothing is deleted.")
confirmed = st.checkbox("Yes, archive this lesson's runs and handwriting", key="teacher_reset_confirm")
if st.button("Reset the room", type="primary", disabled=not confirmed, icon=":material/restart_alt:"):
    result = classroom.reset_room(store, handwriting_root)
    st.session_state.pop("teacher_reset_confirm", None)
    st.success(f"Archived {result['runs']} runs and {result['samples']} handwriting samples into "
               f"`{result['folder']}`; {result['kept']} runs stay.")
