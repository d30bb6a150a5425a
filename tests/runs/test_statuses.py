"""Run statuses are one type (runs/statuses.py): no code outside the run store spells one out as a string."""

import ast

from mnist_lab.runs import RunStatus

from helpers import ROOT


def test_no_run_status_is_spelled_out_as_a_string_outside_the_run_store():
    """One status type: code elsewhere names RunStatus members, so a renamed or added status is found by
    every reader at once."""
    spelled = []
    for path in [*sorted((ROOT / "mnist_lab").rglob("*.py")), *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]:
        if path.is_relative_to(ROOT / "mnist_lab" / "runs"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in set(RunStatus):
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert spelled == []
