"""`python -m mnist_lab experiment ...`: a teacher prepares a lesson's experiment, and a script reads its outcome.

    experiment create --question "Does batch size matter?" --arch quick-cnn --vary batch_size=32,128,512
    experiment list
    experiment close ID
    experiment results ID [--csv]

The command line acts as the server's operator, so it may pose and close experiments as the teacher does.
"""

from __future__ import annotations

import csv
import json
import sys

from mnist_lab.classroom.learners import Actor
from mnist_lab.experiments.results import findings, result_rows, summarize
from mnist_lab.experiments.store import ExperimentStore
from mnist_lab.experiments.variables import VARIABLES, ExperimentError
from mnist_lab.runs import RunStore


def add_commands(commands, add_settings_arguments) -> None:
    """The `experiment` command and its actions, on the command line's subparsers."""
    experiment = commands.add_parser("experiment", help="pose, list, close and read class experiments",
                                     description="A class experiment: one question, one variable, the class's runs.")
    actions = experiment.add_subparsers(dest="action", required=True, parser_class=type(experiment))
    create = actions.add_parser("create", help="pose and open an experiment; prints it as JSON")
    create.add_argument("--question", required=True, help="the question, in words, as the class reads it")
    create.add_argument("--arch", required=True, metavar="ID|NAME|PATH.json", help="the base net")
    create.add_argument("--vary", required=True, metavar="VARIABLE=V1,V2,...",
                        help=f"the variable and 2 to 6 values; variables: {', '.join(VARIABLES)}")
    create.add_argument("--layer", type=int, help="with --vary filters=...: which convolution (1 = the first)")
    add_settings_arguments(create)
    actions.add_parser("list", help="every experiment, newest first, as JSON lines")
    close = actions.add_parser("close", help="close an experiment: learners can no longer take part")
    close.add_argument("id")
    results = actions.add_parser("results", help="one row a run: its value and test accuracy")
    results.add_argument("id")
    results.add_argument("--csv", action="store_true", help="CSV with a header instead of JSON lines")


def run(arguments, settings_from) -> int:
    experiments = ExperimentStore(RunStore())
    if arguments.action == "create":
        from mnist_lab.architecture.sources import architecture_from_argument
        from mnist_lab.data import load_mnist

        variable, separator, values = arguments.vary.partition("=")
        if not separator:
            raise ExperimentError(f"--vary takes VARIABLE=V1,V2,..., for example batch_size=32,128,512; "
                                  f"not {arguments.vary!r}.")
        architecture = architecture_from_argument(arguments.arch)
        mnist = load_mnist()
        experiment = experiments.pose(arguments.question, architecture, settings_from(arguments, architecture).as_dict(),
                                      variable.strip(), values, by=Actor.operator(),
                                      data_sizes=(len(mnist.x_train), len(mnist.x_test)), layer=arguments.layer)
        print(json.dumps(experiment))
    elif arguments.action == "list":
        for experiment in experiments.list():
            summaries = summarize(experiment, experiments.runs_of(experiment))
            print(json.dumps({key: experiment.get(key) for key in ("id", "question", "status", "variable", "labels",
                                                                    "created", "closed", "archive")}
                             | {"runs_done": [summary.done for summary in summaries]}))
    elif arguments.action == "close":
        print(json.dumps(experiments.close(arguments.id, by=Actor.operator())))
    else:
        experiment = next((item for item in experiments.list() if item["id"] == arguments.id), None)
        if experiment is None:
            raise ExperimentError(f"There is no experiment {arguments.id!r}: see `python -m mnist_lab experiment list`.")
        runs = experiments.runs_of(experiment)
        rows = result_rows(experiment, runs, show_names=True)
        if arguments.csv:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["experiment", "value"])
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                print(json.dumps(row))
        print(findings(summarize(experiment, runs)), file=sys.stderr)
    return 0
