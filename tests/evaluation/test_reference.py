"""The notebook's published results: read as printed, nulls kept as gaps, bad files refused clearly."""

import json

import pytest

from mnist_lab.evaluation import reference
from mnist_lab.architecture.presets import PRESETS
from mnist_lab.architecture.report import analyze


def test_three_notebook_nets_with_their_published_scores():
    results = reference.load_references()
    assert [result.preset for result in results] == ["seed-3layer", "seed-5layer", "seed-7layer"]
    document = json.loads(reference.REFERENCE_FILE.read_text())
    for result in results:
        published = document["models"][result.preset]
        assert result.test_accuracy == published["test_accuracy"]
        assert result.seconds_per_epoch == published["seconds_per_epoch"]
        assert [row["epoch"] for row in result.history] == list(range(1, 13))
        assert result.key == f"notebook:{result.preset}" and reference.is_reference_key(result.key)


def test_reference_parameter_counts_match_the_presets():
    """The reference rows describe the same nets the presets build."""
    for result in reference.load_references():
        assert analyze(PRESETS[result.preset].layers).total_parameters == result.total_parameters


def test_unreadable_values_stay_none():
    three = reference.reference("seed-3layer")
    epoch_ten = three.history[9]
    assert epoch_ten["loss"] is None and epoch_ten["accuracy"] is None
    assert epoch_ten["val_accuracy"] == pytest.approx(0.9828)
    seven = reference.reference("notebook:seed-7layer")
    assert all(seven.history[0][column] is None for column in ("loss", "accuracy", "val_loss", "val_accuracy"))


def test_unknown_reference_names_the_known_ones():
    with pytest.raises(reference.ReferenceResultsError, match="seed-3layer, seed-5layer, seed-7layer"):
        reference.reference("seed-9layer")


@pytest.mark.parametrize("document, message", [
    ({"columns": ["epoch", "loss"], "models": {}}, "history columns"),
    ({"models": []}, "'models' object"),
    ({"models": {"x": {"history": [[1, 0.1, 0.9, 0.2]]}}}, "must have 5 values"),
    ({"models": {"x": {"history": [[0, 0.1, 0.9, 0.2, 0.8]]}}}, "whole number from 1"),
    ({"models": {"x": {"history": [[1, "low", 0.9, 0.2, 0.8]]}}}, "must be a number or null"),
])
def test_malformed_reference_files_are_refused_with_a_reason(document, message):
    with pytest.raises(reference.ReferenceResultsError, match=message):
        reference.parse_references(document)


def test_missing_or_invalid_file(tmp_path):
    with pytest.raises(reference.ReferenceResultsError, match="missing"):
        reference.load_references(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(reference.ReferenceResultsError, match="not valid JSON"):
        reference.load_references(broken)
