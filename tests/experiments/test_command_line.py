"""`python -m mnist_lab experiment ...`: a lesson prepared and its outcome read by a script."""

import csv
import io
import json

from mnist_lab import cli
from mnist_lab.runs import RunStatus, RunStore

CREATE = ["experiment", "create", "--question", "Does batch size matter?", "--arch", "quick-cnn",
          "--vary", "batch_size=16,32", "--epochs", "1", "--train-size", "200"]


def test_a_teacher_creates_lists_reads_and_closes_an_experiment(synthetic_data, isolated_storage, capsys):
    assert cli.main(CREATE) == 0
    experiment = json.loads(capsys.readouterr().out)
    assert experiment["labels"] == ["batch size 16", "batch size 32"] and experiment["status"] == "open"
    store = RunStore(isolated_storage / "runs")
    for index, accuracy in ((0, 0.91), (1, 0.87)):
        run = store.create(f"run {index}", experiment["base"]["architecture"], experiment["base"]["settings"],
                           owner=f"learner-{index}", owner_name=f"Learner {index}",
                           experiment={"id": experiment["id"], "index": index, "value": experiment["labels"][index]})
        store.update(run["id"], status=RunStatus.COMPLETED, test_accuracy=accuracy)
    assert cli.main(["experiment", "list"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(item["id"], item["runs_done"]) for item in listed] == [(experiment["id"], [1, 1])]
    assert cli.main(["experiment", "results", experiment["id"], "--csv"]) == 0
    printed = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(printed.out)))
    assert [(row["value"], float(row["test_accuracy"])) for row in rows] == [("batch size 16", 0.91),
                                                                              ("batch size 32", 0.87)]
    assert "batch size 16: median 91.0 %, 4.0 points above batch size 32" in printed.err
    assert cli.main(["experiment", "close", experiment["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "closed"


def test_bad_requests_get_one_line_that_says_what_to_change(synthetic_data, capsys):
    assert cli.main([*CREATE[:-6], "--vary", "batch_size=16,1000", "--train-size", "200"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err.strip() == ("error: batch size 1000 cannot train: a batch of 1,000 is more than "
                                               "the 200 training images; use a smaller batch or more images.")
    assert cli.main([*CREATE[:6], "--vary", "batch_size"]) == cli.EXIT_ERROR
    assert "--vary takes VARIABLE=V1,V2" in capsys.readouterr().err
    assert cli.main(["experiment", "results", "nope"]) == cli.EXIT_ERROR
    assert "There is no experiment 'nope'" in capsys.readouterr().err
