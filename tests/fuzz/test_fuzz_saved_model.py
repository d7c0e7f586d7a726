"""Fuzzing ks.saved_model.load: the graph JSON (saved_model.json) and the variables checkpoint.

Mutations: raw bytes of either file; the JSON document (wrong types in every field, unknown op types and
attribute tags, deep nests, ops reading tensors defined later or nowhere); HDF5 structure of the variables.
"""
import json
import os
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import seeds
from .harness import Inputs, Seed, budget_spent, ci_share, contract, write
from .mutators import apply_byte_ops, apply_h5_ops, apply_json_ops, byte_ops, dump_json, h5_ops, json_ops

SLOW = settings.get_profile("slow")
_OP_TYPES = ["PyFunc", "Assign", "ApplyOptimizer", "Initializer", "os.system", "", "MatMul", "Const", "Placeholder",
             "VariableV2", "NoOp", "Identity", "Fill", "Reshape"]
_ATTRS = [{"dtype": {"dtype": "float32"}}, {"shape": {"shape": [1 << 40, 1 << 40]}}, {"value": {"array": "nope"}},
          {"x": {"pickle": "gASV"}}, {"x": {"np": ["object", 1]}}, {"x": {"np": ["float32", "1e999"]}},
          {"x": {"bytes": "zz"}}, {"x": {"dict": [[[1], 2]]}}, {"x": {"slice": [1, 2]}}, {"x": [1, 2]},
          {"shape": {"shape": [-1]}}, {"x": {"float": "1e5"}}]


def _graph_op(doc, op):
    """Graph-level mutations: op types outside the allow-list, bad attributes, inputs out of order."""
    kind, a, b = op
    doc = json.loads(json.dumps(doc))
    ops = doc.get("ops") or []
    if not ops:
        return doc
    target = ops[a % len(ops)]
    if kind == "type":
        target["type"] = _OP_TYPES[b % len(_OP_TYPES)]
    elif kind == "attr":
        target["attrs"] = _ATTRS[b % len(_ATTRS)]
    elif kind == "input":
        target["inputs"] = [f"{ops[b % len(ops)]['name']}:{b % 3}"]
    elif kind == "signature":
        doc["signatures"] = {"serving_default": {"inputs": {"x": f"{ops[b % len(ops)]['name']}:0"},
                                                 "outputs": {"y": target["name"] + ":7"}}}
    elif kind == "format":
        doc["format"] = ["kestimator.saved_model/2", "kestimator.saved_model/0", "other/1", 1, None][b % 5]
    return doc


graph_op = st.tuples(st.sampled_from(["type", "attr", "input", "signature", "format"]), st.integers(0, 1 << 20),
                     st.integers(0, 1 << 20))


def _load(path):
    import kestimator as ks
    loaded = ks.saved_model.load(path)
    sig = loaded.signatures.get("serving_default")
    if sig is not None and set(sig.inputs) == {"x"}:   # the unmutated graph still serves
        try:
            sig(x=np.ones((1, 2), np.float32))
        except Exception as exc:   # noqa: BLE001 - only a KestimatorError may come out of serving a loaded model
            from kestimator.errors import KestimatorError
            if not isinstance(exc, KestimatorError):
                raise
    return loaded


@pytest.fixture(scope="module")
def export_seed(tmp_path_factory):
    path = seeds.saved_model(str(tmp_path_factory.mktemp("export_seed")))
    loaded = _load(path)
    np.testing.assert_allclose(loaded.predict(np.array([[1.0, 1.0]], np.float32))["y"], [[3.5]])   # 1 + 2 + 0.5
    with open(os.path.join(path, "saved_model.json")) as f:
        return Seed(path, doc=json.load(f))


@pytest.fixture(scope="module")
def export_contract():
    return contract("SavedModel (ks.saved_model.load)")


def _run(c, seed, base, item):
    kind, ops = item
    with Inputs(base) as folder:
        path = os.path.join(folder, "export")
        shutil.copytree(seed.path, path)
        graph = os.path.join(path, "saved_model.json")
        variables = os.path.join(path, "variables", "variables.h5")
        if kind == "json":
            write(path, "saved_model.json", dump_json(apply_json_ops(seed.doc, ops)).encode())
        elif kind == "graph":
            write(path, "saved_model.json", dump_json(_graph_op(seed.doc, ops)).encode())
        elif kind == "json_bytes":
            with open(graph, "rb") as f:
                write(path, "saved_model.json", apply_byte_ops(f.read(), ops))
        elif kind == "var_bytes":
            with open(variables, "rb") as f:
                write(os.path.dirname(variables), "variables.h5", apply_byte_ops(f.read(), ops))
        elif kind == "var_h5":
            apply_h5_ops(variables, ops, folder)
        c.run(lambda: _load(path), path, watch=[folder])


_inputs = st.one_of(json_ops.map(lambda o: ("json", o)), graph_op.map(lambda o: ("graph", o)),
                    byte_ops.map(lambda o: ("json_bytes", o)), byte_ops.map(lambda o: ("var_bytes", o)),
                    h5_ops.map(lambda o: ("var_h5", o)))


@settings(ci_share(2))
@given(item=st.one_of(json_ops.map(lambda o: ("json", o)), graph_op.map(lambda o: ("graph", o))))
def test_saved_model_graph_json(export_seed, export_contract, tmp_path, item):
    _run(export_contract, export_seed, tmp_path, item)


@settings(ci_share(2))
@given(item=st.one_of(byte_ops.map(lambda o: ("json_bytes", o)), byte_ops.map(lambda o: ("var_bytes", o)),
                      h5_ops.map(lambda o: ("var_h5", o))))
def test_saved_model_files(export_seed, export_contract, tmp_path, item):
    _run(export_contract, export_seed, tmp_path, item)


@pytest.mark.slow
@settings(SLOW)
@given(item=_inputs)
def test_saved_model_slow(export_seed, export_contract, tmp_path, item):
    if budget_spent(export_contract):
        return
    _run(export_contract, export_seed, tmp_path, item)
