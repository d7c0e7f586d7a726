"""Fuzzing the Keras .h5 readers: ks.models.load_model (config JSON, weights, training config, optimizer
state) and model.load_weights (weights-only files and whole-model files).

Mutations: raw bytes; HDF5 structure (links, dtypes, shapes, attributes of the wrong type); the model_config
and training_config JSON (wrong types in every field, deep nests, unknown classes, module paths, Lambda
bytecode, huge sizes, functional graphs whose layers feed themselves).
"""
import json
import os

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import seeds
from .harness import Inputs, Seed, budget_spent, ci_share, contract, write
from .mutators import apply_byte_ops, apply_h5_ops, apply_json_ops, byte_ops, dump_json, h5_ops, json_ops

SLOW = settings.get_profile("slow")

_CLASS_NAMES = ["Lambda", "os.system", "builtins.eval", "keras.layers.Dense", "Functional", "Sequential", "Model",
                "Dense", "Conv2D", "LSTM", "InputLayer", "TFOpLambda", "", "__class__", "Custom>Foo", "Embedding",
                "BatchNormalization", "QuantizedDense", "Concatenate"]
_BIG = [0, -1, 1 << 20, 1 << 40, 10 ** 30, 2.5, "4", None]


def _keras_op(config, op):
    """Model-config mutations JSON-generic ops do not reach: class names, Lambda bytecode, huge sizes, cycles."""
    kind, a, b = op
    config = json.loads(json.dumps(config))
    nodes = []
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                nodes.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    layers = (config.get("config") or {}).get("layers") or []
    if kind == "class" and nodes:
        nodes[a % len(nodes)]["class_name"] = _CLASS_NAMES[b % len(_CLASS_NAMES)]
    elif kind == "lambda" and layers:
        layers[a % len(layers)].update({"class_name": "Lambda", "config": {
            "name": "evil", "function": ["4wAAAAAAAAAAAAAAAAEAAAADAAAA", None, None], "function_type": "lambda",
            "module": "os", "output_shape": None, "arguments": {}}})
    elif kind == "size" and nodes:
        cfg = nodes[a % len(nodes)].get("config")
        if isinstance(cfg, dict):
            for key in ("units", "filters", "input_dim", "output_dim", "kernel_size", "batch_input_shape"):
                if key in cfg:
                    cfg[key] = _BIG[b % len(_BIG)] if key != "batch_input_shape" else [None, _BIG[b % len(_BIG)]]
    elif kind == "cycle" and layers:
        i, j = a % len(layers), b % len(layers)
        target = layers[max(i, j)].get("name", "x")
        layers[min(i, j)]["inbound_nodes"] = [[[target, 0, 0, {}]]]
    return config


keras_op = st.tuples(st.sampled_from(["class", "lambda", "size", "cycle"]), st.integers(0, 1 << 20),
                     st.integers(0, 1 << 20))


# -- targeted cases: each of these runs every time (hypothesis might not draw them in a few hundred inputs) ----------
def _targeted_h5():
    from .mutators import ATTR_VALUES
    cases = [[("soft_replace", a, b, 0)] for a in range(2) for b in range(4)]            # elsewhere/dangling/self/root
    cases += [[("external_replace", a, b, 0)] for a in range(2) for b in (0, 1)]         # /etc/passwd, other.h5
    cases += [[("soft_link", 0, 0, 0)], [("external_link", 0, 0, 0)], [("hard_cycle", 1, 0, 0)]]
    cases += [[("huge_chunked", a, 0, 1 << 40)] for a in range(2)]                       # huge declared shapes
    cases += [[("huge_compressed", 0, 0, 1 << 31)], [("dataset_shape", 0, 0, 3)], [("dataset_dtype", 0, 3, 0)]]
    cases += [[("attr_type", b % 3, b, 0)] for b in range(len(ATTR_VALUES))]   # every attr value of a wrong type
    return cases


_TARGETED_H5 = _targeted_h5()
_TARGETED_CONFIG = ([("model_config", [("deep", i, 0, 3000)]) for i in (0, 5, 17)] +
                    [("model_config", [("ancestor", i, 0, 0)]) for i in (3, 11, 40)] +       # self-similar copies
                    [("model_config", [("wide", 2, 0, 1000)]), ("training_config", [("deep", 1, 0, 3000)])] +
                    # layers that feed themselves or each other
                    [("keras", ("cycle", a, b)) for a, b in ((0, 1), (1, 0), (2, 2), (0, 3))] +
                    [("keras", ("size", i, j)) for i, j in ((0, 1), (1, 2), (2, 3), (1, 4), (0, 6), (2, 7))])


def _mutate_attr(path, attr, fn):
    with h5py.File(path, "r+") as f:
        raw = f.attrs.get(attr)
        if raw is None:
            return
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            f.attrs[attr] = dump_json(fn(json.loads(text))).encode("utf-8", "surrogatepass")
        except (ValueError, TypeError, OSError, RuntimeError):
            pass   # h5py cannot store it (e.g. over 64 KiB in a compact attribute): the op does not apply


# -- seeds and readers --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras_seed(tmp_path_factory):
    import kestimator as ks
    folder = tmp_path_factory.mktemp("keras_seed")
    paths, weights = seeds.keras_files(str(folder))
    for kind in ("sequential", "functional"):   # warm-up and the seeds load to what was written
        loaded = ks.models.load_model(paths[kind])
        for got, want in zip(loaded.weights, weights[kind]):
            np.testing.assert_array_equal(got.numpy(), want)
    target = seeds.keras_sequential()
    target.load_weights(paths["weights"])
    for got, want in zip(target.weights, weights["sequential"]):
        np.testing.assert_array_equal(got.numpy(), want)
    return {kind: Seed(p) for kind, p in paths.items()}


def _load_model(path):
    import kestimator as ks
    model = ks.models.load_model(path)
    for w in model.weights:   # a loaded model has concrete weights of its declared shapes
        assert w.numpy().shape == tuple(w.shape)
    return model


def _load_weights(path):
    model = seeds.keras_sequential()
    before = [w.numpy().shape for w in model.weights]
    model.load_weights(path)
    assert [w.numpy().shape for w in model.weights] == before
    return model


@pytest.fixture(scope="module")
def model_contract():
    return contract("Keras .h5 model (load_model)")


@pytest.fixture(scope="module")
def weights_contract():
    return contract("Keras .h5 weights (load_weights)")


def _run(c, reader, seed, base, item):
    kind, ops = item
    with Inputs(base) as folder:
        data = apply_byte_ops(seed.data, ops) if kind == "bytes" else seed.data
        path = write(folder, "m.h5", data)
        if kind == "h5":
            apply_h5_ops(path, ops, folder)
        elif kind == "model_config":
            _mutate_attr(path, "model_config", lambda doc: apply_json_ops(doc, ops))
        elif kind == "training_config":
            _mutate_attr(path, "training_config", lambda doc: apply_json_ops(doc, ops))
        elif kind == "keras":
            _mutate_attr(path, "model_config", lambda doc: _keras_op(doc, ops))
        c.run(lambda: reader(path), path, watch=[folder])


_model_inputs = st.one_of(
    byte_ops.map(lambda o: ("bytes", o)), h5_ops.map(lambda o: ("h5", o)),
    json_ops.map(lambda o: ("model_config", o)), json_ops.map(lambda o: ("training_config", o)),
    keras_op.map(lambda o: ("keras", o)))
_weights_inputs = st.one_of(byte_ops.map(lambda o: ("bytes", o)), h5_ops.map(lambda o: ("h5", o)))


@settings(ci_share(3, targeted=len(_TARGETED_H5) + len(_TARGETED_CONFIG)))
@given(item=byte_ops.map(lambda o: ("bytes", o)), which=st.sampled_from(["sequential", "functional"]))
def test_load_model_bytes(keras_seed, model_contract, tmp_path, item, which):
    _run(model_contract, _load_model, keras_seed[which], tmp_path, item)


@settings(ci_share(3, targeted=len(_TARGETED_H5) + len(_TARGETED_CONFIG)))
@given(item=h5_ops.map(lambda o: ("h5", o)), which=st.sampled_from(["sequential", "functional"]))
def test_load_model_hdf5_structure(keras_seed, model_contract, tmp_path, item, which):
    _run(model_contract, _load_model, keras_seed[which], tmp_path, item)


@settings(ci_share(3, targeted=len(_TARGETED_H5) + len(_TARGETED_CONFIG)))
@given(item=st.one_of(json_ops.map(lambda o: ("model_config", o)), json_ops.map(lambda o: ("training_config", o)),
                      keras_op.map(lambda o: ("keras", o))),
       which=st.sampled_from(["sequential", "functional"]))
def test_load_model_config_json(keras_seed, model_contract, tmp_path, item, which):
    _run(model_contract, _load_model, keras_seed[which], tmp_path, item)


@settings(ci_share(1, targeted=len(_TARGETED_H5)))
@given(item=_weights_inputs, which=st.sampled_from(["weights", "sequential"]))
def test_load_weights(keras_seed, weights_contract, tmp_path, item, which):
    _run(weights_contract, _load_weights, keras_seed[which], tmp_path, item)


@pytest.mark.slow
@settings(SLOW)
@given(item=_model_inputs, which=st.sampled_from(["sequential", "functional"]))
def test_load_model_slow(keras_seed, model_contract, tmp_path, item, which):
    if budget_spent(model_contract):
        return
    _run(model_contract, _load_model, keras_seed[which], tmp_path, item)


@pytest.mark.slow
@settings(SLOW)
@given(item=_weights_inputs, which=st.sampled_from(["weights", "sequential"]))
def test_load_weights_slow(keras_seed, weights_contract, tmp_path, item, which):
    if budget_spent(weights_contract):
        return
    _run(weights_contract, _load_weights, keras_seed[which], tmp_path, item)


def test_load_model_targeted(keras_seed, model_contract, tmp_path):
    items = [("h5", ops) for ops in _TARGETED_H5] + _TARGETED_CONFIG
    for i, item in enumerate(items):   # alternate the seeds: each case on one of them
        _run(model_contract, _load_model, keras_seed[("sequential", "functional")[i % 2]], tmp_path, item)


def test_load_weights_targeted(keras_seed, weights_contract, tmp_path):
    for i, ops in enumerate(_TARGETED_H5):   # a weights-only file and a whole-model file, alternately
        _run(weights_contract, _load_weights, keras_seed[("weights", "sequential")[i % 2]], tmp_path, ("h5", ops))


def test_damaged_attribute_table_is_data_loss(keras_seed, weights_contract, tmp_path):
    """Regression (slow-tier fuzzing): in a truncated and bit-flipped weights file, h5py's attribute lookup in
    load_weights' format sniffing raised RuntimeError ("attribute name has different length than stored
    length"), which escaped instead of a DataLossError."""
    ops = [("truncate", 1.0, 0, b"\x00", 0, False), ("duplicate", 0.5, 200, b"\x00", 0, False),
           ("flip", 0.046875, 0, b"\x00", 0, False)]
    before = weights_contract.error_types.get("DataLossError", 0)
    _run(weights_contract, _load_weights, keras_seed["weights"], tmp_path, ("bytes", ops))
    assert weights_contract.error_types.get("DataLossError", 0) == before + 1
