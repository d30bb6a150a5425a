"""MNIST Lab: entry point and router. Shared state and shared UI live here; each page is a file in pages/.

Every page starts with `import app` and `app.route_through_navigation()`. With a pages/ folder beside
this file, Streamlit 1.67 serves a session in its old folder mode until some session has called
st.navigation: a deep link such as /train, as a fresh server's first request, would run pages/train.py
alone, without this file's title, layout, navigation and state defaults. The call routes such a run
through `main()` instead, so a deep link gives exactly the app that / gives.
"""

from pathlib import Path

import streamlit as st

from mnist_lab import system
from mnist_lab.classroom import learners
from mnist_lab.errors import LabError
from mnist_lab.runs import default_runs_dir
from mnist_lab.views.markdown import plain

HERE = Path(__file__).resolve()


def keep_keras_between_reruns():
    """After every script run, fragments included, Streamlit 1.67 calls keras.backend.clear_session():
    a full garbage collection with TensorFlow loaded (0.4 s of CPU per rerun, measured), and a reset of
    Keras' state under the models that train in background threads. The lab keeps its models alive on
    purpose, so that clean-up is switched off (its gc.collect too: runner.postScriptGC in config.toml).
    Installed when this module is imported, which every page does first; repeating it changes nothing."""
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = lambda: None


system.configure_gpu_memory()
keep_keras_between_reruns()


@st.cache_resource(show_spinner=False)
def training_manager(runs_root: str):
    """One manager per process and run folder, shared by every session: it owns the queue and the workers."""
    from mnist_lab import training
    from mnist_lab.runs import RunStore

    return training.TrainingManager(RunStore(runs_root))


def shared_manager():
    """The manager of this server's run store (every page shares it)."""
    return training_manager(str(default_runs_dir().resolve()))


def secrets_teacher_key():
    """The key in Streamlit's secrets (.streamlit/secrets.toml: teacher_key = "..."), if there is one."""
    try:
        return st.secrets.get("teacher_key")
    except Exception:  # no secrets file at all is the usual case
        return None


def teacher_key() -> str | None:
    return learners.configured_teacher_key(secrets_teacher_key())


def actor() -> learners.Actor:
    """Who this session acts as when it stops, deletes or reorders runs. On a server without a teacher
    key (a learner's own laptop) runs of no learner are everybody's."""
    state = st.session_state
    return learners.Actor(state.get("learner_id"), teacher=bool(state.get("teacher_unlocked")),
                          unowned=teacher_key() is None)


def owner() -> tuple[str, str]:
    """(public id, name) that this session's runs, nets and handwriting record."""
    return st.session_state["learner_id"], st.session_state["learner_name"]


@st.cache_resource(show_spinner=False)
def learner_book(folder: str) -> learners.LearnerBook:
    return learners.LearnerBook(Path(folder) / learners.BOOK_FILE)


def identify_learner():
    """Who is at this browser, settled before any page runs (a deep link too): the key its cookie keeps,
    or a new one written to the cookie, so that a refresh or a new tab is the same learner."""
    state = st.session_state
    if "learner_key" not in state:
        cookie = st.context.cookies.get(learners.COOKIE)
        state["learner_key"] = cookie if learners.is_key(cookie) else learners.new_key()
        state["learner_cookie_saved"] = state["learner_key"] == cookie
    state.setdefault("learner_cookie_saved", True)  # a key given another way (a test) needs no cookie
    state["learner_id"] = learners.learner_id(state["learner_key"])
    state["learner_name"] = learner_book(str(default_runs_dir())).name(state["learner_id"])


def rename_learner():
    state = st.session_state
    try:
        state["learner_name"] = learner_book(str(default_runs_dir())).rename(state["learner_id"],
                                                                             state["learner_new_name"])
        state["learner_rename_problem"] = None
    except LabError as error:
        state["learner_rename_problem"] = str(error)


def show_learner():
    """The sidebar's line on who you are, with a way to change your name."""
    state = st.session_state
    with st.sidebar:
        st.markdown(f"You are **{plain(state['learner_name'])}**", help=(
            "Your runs, saved nets and handwriting are kept under this name; everyone can watch and compare "
            "runs, but only you (or the teacher) can stop or delete yours."))
        with st.popover("Change your name", icon=":material/badge:"):
            st.text_input("Your name", value=state["learner_name"], max_chars=learners.MAX_NAME_LENGTH,
                          key="learner_new_name")
            st.button("Use this name", on_click=rename_learner, key="learner_rename")
            if state.get("learner_rename_problem"):
                st.error(state["learner_rename_problem"])
        if not state["learner_cookie_saved"]:
            st.html(f"<script>document.cookie = '{learners.COOKIE}={state['learner_key']}; path=/; "
                    "max-age=31536000; SameSite=Strict';</script>", unsafe_allow_javascript=True)
            state["learner_cookie_saved"] = True


def nothing_trained_yet(text: str, command: str | None = None) -> None:
    """The box a page shows while no run gives it anything to show: what to do, the way to the Train page and,
    when given, the command that trains from a terminal."""
    with st.container(border=True):
        st.markdown(text)
        st.page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")
        if command:
            st.caption(f"From a terminal: `{command}`")


def take_part_in_experiment(experiment_id: str):
    from mnist_lab import experiments
    from mnist_lab.views.experiment import part_accepted

    state = st.session_state
    try:
        manager = shared_manager()
        run_id = experiments.take_part(manager, experiments.ExperimentStore(manager.store), experiment_id, owner())
        state["experiment_notice"] = ("success", part_accepted(manager.queue_position(run_id),
                                                               manager.expected_start(run_id)))
        state["train_watched_run"] = run_id  # the Train page shows the learner this run next
        if "run" in st.query_params:
            st.query_params["run"] = run_id
    except LabError as error:
        state["experiment_notice"] = ("error", str(error))


def show_experiment_banner():
    """While the teacher has an experiment open, every page names its question and this learner's part."""
    from mnist_lab import experiments
    from mnist_lab.runs import RunStore

    class_experiments = experiments.ExperimentStore(RunStore(default_runs_dir()))
    current = class_experiments.open_experiment()
    if current is None or st.session_state.get("teacher_unlocked"):  # the teacher poses; learners take part
        return
    handed = st.session_state.setdefault("experiment_parts", {})  # asked of the store once per experiment
    if current["id"] not in handed:
        handed[current["id"]] = class_experiments.assign(current["id"], st.session_state["learner_id"])
    part = current["labels"][handed[current["id"]]]
    with st.container(border=True, key="experiment_banner"):
        text, button = st.columns([5, 1], vertical_alignment="center")
        text.markdown(f":material/science: **Class experiment: {plain(current['question'])}** · your part: "
                      f"**{plain(part)}**")
        button.button("Train it", key="experiment_train_it", type="primary", on_click=take_part_in_experiment,
                      args=(current["id"],))
        kind, message = st.session_state.get("experiment_notice") or (None, None)
        if kind == "success":
            st.success(message, icon=":material/check:")
        elif kind == "error":
            st.error(message)


def main():
    """The app every request gets: page config, state defaults, navigation, then the chosen page."""
    st.set_page_config(page_title="MNIST Lab", page_icon=":material/draw:", layout="wide")

    st.session_state.setdefault("architecture_name", "seed-3layer")
    st.session_state.setdefault("architecture_layers", None)
    st.session_state.setdefault("selected_run_ids", [])
    identify_learner()
    show_learner()

    pages = [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
        st.Page("pages/teacher.py", title="Teacher", icon=":material/school:"),
        st.Page("pages/projector.py", title="Projector", icon=":material/co_present:", url_path="projector"),
    ]
    page = st.navigation(pages)
    if page.url_path != "projector":  # the room's screen shows the experiment itself, not a learner's part
        show_experiment_banner()
    page.run()


def run_by_folder_mode() -> bool:
    """True when Streamlit's folder mode, not `main()`, chose the page being run.

    Folder mode registers this file itself as a page (its default page); the lab's navigation never
    does. The registry is per session and set before a page runs, so this holds for this run even
    while another session switches the server out of folder mode.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return False
    return any(Path(info["script_path"]).resolve() == HERE
               for info in ctx.pages_manager.get_pages().values() if info.get("script_path"))


def route_through_navigation():
    """Run the whole app instead of a page that folder mode runs alone, then end this run.

    `main()` runs the same page again, through the lab's navigation (which also ends folder mode for
    the server); st.stop() keeps the outer, unrouted copy of the page from running on.
    """
    if run_by_folder_mode():
        main()
        st.stop()


if __name__ == "__main__":
    # Streamlit runs this file as __main__, and every page imports it as `app`: two modules, and a resource
    # cached in both would exist twice (two training managers on one run folder: two queues, each with its
    # slots). The app runs from the one module the pages import.
    import app

    app.main()
