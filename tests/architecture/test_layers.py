"""The layer registry: what the editor shows of each setting comes from it."""

from __future__ import annotations

from mnist_lab.architecture.layers import LAYER_TYPES


def test_choice_labels_come_from_the_registry():
    axis = next(p for p in LAYER_TYPES["BatchNormalization"].parameters if p.name == "axis")
    assert axis.choice_label(1) == "1: image rows" and axis.choice_label(-1) == "-1: channels"
    padding = next(p for p in LAYER_TYPES["Conv2D"].parameters if p.name == "padding")
    assert padding.choice_label("same") == "same"
