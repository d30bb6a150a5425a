"""Fuzzing the architecture functions: whatever a learner imports or types, the only error is the lab's own
(ArchitectureError, a LabError) with a short message; and random valid nets get exactly Keras' shapes and counts.

The default run tries 1,000+ inputs and a few dozen nets; `-m long` tries many more of each.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_lab.architecture import editor, edits, teaching
from mnist_lab.architecture.building import build_model
from mnist_lab.architecture.json_format import MAX_NAME_LENGTH, from_json, to_json
from mnist_lab.architecture.layers import ACTIVATIONS, LAYER_TYPES, PADDINGS
from mnist_lab.architecture.report import analyze, analyze_partial
from mnist_lab.architecture.saved import ArchitectureStore
from mnist_lab.architecture.validation import ArchitectureError, normalize_layer
from mnist_lab.errors import LabError

MAX_MESSAGE = 1000  # characters: a message quotes values cut short, whatever their size
FUZZ = settings(max_examples=1200, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_SLOW = settings(FUZZ, max_examples=8000, derandomize=False)  # about 20 a second on a loaded 2-core CPU
NETS = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
NETS_SLOW = settings(NETS, max_examples=300, derandomize=False)

LONG = "x" * 1_000_000


def one_of_values(*choices):
    """sampled_from for values too big to describe: hypothesis reprs a strategy's values, and Python will not
    write an int of 5,000 digits (nor should a report show 1 MB strings)."""
    return st.sampled_from(range(len(choices))).map(choices.__getitem__)


def nested(depth: int):
    value = []
    for _ in range(depth):
        value = [value]
    return value


numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-40, max_value=70_000),
    one_of_values(10 ** 308, 10 ** 309, 10 ** 400, -10 ** 400, 10 ** 5000, -10 ** 5000, 2 ** 64, -1, 0, 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 1e-300, 0.5, 0.999999, 1.0, 3.0]),
    st.booleans(),
)
texts = st.one_of(
    st.text(max_size=30),
    one_of_values("NaN", "nan", "inf", "-Infinity", "1e400", "3x3", "relu", "same", "-1", LONG, "é" * 5000,
                  "[link](http://x)", "<b>bold</b>", "\x00", "\ud800"),
)
scalars = st.one_of(st.none(), numbers, texts)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
deep = st.integers(min_value=50, max_value=3000).map(nested)


@st.composite
def layer_dicts(draw):
    """A layer of a known type whose settings are mostly its own names with any values, sometimes unknown ones."""
    layer_type = LAYER_TYPES[draw(st.sampled_from(sorted(LAYER_TYPES)))]
    layer = {"type": layer_type.name}
    for parameter in layer_type.parameters:
        if draw(st.booleans()):
            layer[parameter.name] = draw(st.one_of(values, deep, st.just(parameter.default)))
    if draw(st.integers(0, 9)) == 0:
        layer[draw(st.one_of(texts, st.integers()))] = draw(scalars)
    return layer


layers_lists = st.one_of(
    st.lists(st.one_of(layer_dicts(), layer_dicts(), values, deep), max_size=8),
    st.lists(st.just({"type": "Flatten"}), min_size=60, max_size=70),
    values,
    deep,
)


def check_error(error):
    """Only the lab's error, with a message a learner can read."""
    assert isinstance(error, ArchitectureError) and isinstance(error, LabError), repr(error)
    assert len(str(error)) <= MAX_MESSAGE, str(error)[:200]


def expect_lab_error(call, *args):
    try:
        return call(*args)
    except ArchitectureError as error:
        check_error(error)
        return None


def exercise(layers, store):
    report, error = analyze_partial(layers)  # documented never to raise
    if error is not None:
        check_error(error)
    full = expect_lab_error(analyze, layers)
    assert (full is None) == (error is not None)
    if full is not None:
        assert full.total_parameters == report.total_parameters
        teaching.edit_notes(layers, full)
        editor.table_rows(full)
    if isinstance(layers, list):
        for number, layer in enumerate(layers, start=1):
            expect_lab_error(normalize_layer, layer, number)
            editor.safe_label(layer, number)
    exported = expect_lab_error(to_json, layers, "fuzz")
    if exported is not None:
        assert from_json(exported)[1] == json.loads(exported)["layers"]
    try:
        text = json.dumps({"name": "fuzz", "layers": layers}, allow_nan=True)
    except (ValueError, TypeError, RecursionError):  # not JSON (ints past Python's limit, non-text keys, depth)
        text = None
    if text is not None:
        imported = expect_lab_error(from_json, text)
        assert (imported is None) == (full is None)
        if store is not None:
            (store.root / "fuzzed.json").write_text(text)
            assert store.list() == ["fuzzed"]
            expect_lab_error(store.load, "fuzzed")
            editor.saved_entries(store)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ArchitectureStore(tmp_path_factory.mktemp("fuzzed"))


@FUZZ
@given(layers=layers_lists)
def test_any_architecture_gives_a_report_or_the_labs_own_error(layers, store):
    exercise(layers, store)


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.timeout(1800)  # past pytest.ini's 600 s, which would stop hypothesis mid-example
@FUZZ_SLOW
@given(layers=layers_lists)
def test_any_architecture_gives_a_report_or_the_labs_own_error_long_run(layers, store):
    exercise(layers, store)


def as_json_text(layers) -> str:
    """The layers as JSON text, cut at 100,000 characters (so often broken); "[]" where JSON cannot hold them."""
    try:
        return json.dumps(layers, default=str)[:100_000]
    except (ValueError, RecursionError):
        return "[]"


json_texts = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    one_of_values("[" * 100_000 + "]" * 100_000, '{"layers": ' + "[" * 5000 + "]" * 5000 + "}",
                  '[{"type": "Dense", "units": 1' + "0" * 5000 + "}]", '[{"type": "Dropout", "rate": NaN}]',
                  '{"name": "' + LONG + '", "layers": [{"type": "Flatten"}]}', '{"layers": {"type": "Flatten"}}',
                  "\ufeff[]", b"\xff\xfe[]", '[{"type": "Flatten"}]' * 2),
    layers_lists.map(lambda layers: as_json_text(layers)),
)


@FUZZ
@given(text=json_texts, name=st.one_of(texts, st.integers(), st.none()))
def test_any_text_imports_or_gives_the_labs_own_error(text, name, store):
    imported = expect_lab_error(from_json, text)
    if imported is not None:
        assert isinstance(imported[0], str) and len(imported[0]) <= MAX_NAME_LENGTH
        analyze(imported[1])
    for call in (store.load, store.delete):
        try:
            call(name)
        except LabError as error:
            assert len(str(error)) <= MAX_MESSAGE
    edits.parse_pair(text if isinstance(text, str) else "")


# --- random valid nets against Keras -----------------------------------------------------------------

def pair(draw, low, high):
    return [draw(st.integers(low, high)), draw(st.integers(low, high))]


@st.composite
def valid_nets(draw):
    """A random net that the lab accepts: each layer is kept only if the analysis still accepts the net up
    to it, so every kind of layer and setting appears, on images and on flat vectors."""
    layers = []
    flat = False
    for _ in range(draw(st.integers(1, 9))):
        if not flat and draw(st.integers(0, 3)) == 0:
            layer = {"type": draw(st.sampled_from(["Flatten", "GlobalAveragePooling2D"]))}
        else:
            kind = draw(st.sampled_from(["Dense", "Dropout", "BatchNormalization"] if flat else
                                        ["Conv2D", "Conv2D", "MaxPooling2D", "AveragePooling2D",
                                         "BatchNormalization", "Dropout"]))
            layer = {"type": kind}
            if kind == "Conv2D":
                layer.update(filters=draw(st.integers(1, 12)), kernel_size=pair(draw, 1, 7),
                             strides=pair(draw, 1, 3), padding=draw(st.sampled_from(PADDINGS)),
                             activation=draw(st.sampled_from(ACTIVATIONS)))
            elif kind in ("MaxPooling2D", "AveragePooling2D"):
                layer.update(pool_size=pair(draw, 1, 4), strides=draw(st.one_of(st.none(), st.just(pair(draw, 1, 3)))))
            elif kind == "BatchNormalization":
                layer["axis"] = draw(st.sampled_from([-1, 1] if flat else [-1, 1, 2, 3]))
            elif kind == "Dropout":
                layer["rate"] = draw(st.floats(0, 0.9))
            else:
                layer.update(units=draw(st.integers(1, 40)), activation=draw(st.sampled_from(ACTIVATIONS)))
        _, error = analyze_partial(layers + [layer])
        if error is None or error.layer_number == len(layers) + 2:  # only the output layer wants a flat input
            layers.append(layer)
            flat = flat or layer["type"] in edits.FLATTENING_TYPES
    if not flat:
        layers.append({"type": draw(st.sampled_from(["Flatten", "GlobalAveragePooling2D"]))})
    return layers


def weight_count(weights) -> int:
    return sum(math.prod(weight.shape) for weight in weights)


def compare_with_keras(layers):
    report = analyze(layers)
    model = build_model(layers)
    assert len(model.layers) == len(report.layers)
    for built, inferred in zip(model.layers, report.layers):
        where = f"layer {inferred.number} ({inferred.label}) of {layers}"
        assert tuple(built.output.shape[1:]) == inferred.output_shape, where
        assert built.count_params() == inferred.parameters, where
        assert weight_count(built.trainable_weights) == inferred.trainable, where
    assert model.count_params() == report.total_parameters
    assert weight_count(model.trainable_weights) == report.trainable_parameters
    assert weight_count(model.non_trainable_weights) == report.non_trainable_parameters


@NETS
@given(layers=valid_nets())
def test_random_valid_nets_match_keras_shapes_and_counts(layers):
    compare_with_keras(layers)


@pytest.mark.long
@pytest.mark.slow
@NETS_SLOW
@given(layers=valid_nets())
def test_random_valid_nets_match_keras_shapes_and_counts_long_run(layers):
    compare_with_keras(layers)
