"""Fuzzing the checkpoint readers: engine.checkpoint (load_tensors, read_metadata, list_tensors), Saver.restore
and the estimators' model_dir (checkpoint_index.json + CheckpointManager.load).

Seeds are checkpoints kestimator wrote; every mutated input must load correctly or raise a KestimatorError
naming the file (see contract.py).
"""
import json
import os
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import seeds
from .harness import Inputs, Seed, budget_spent, ci_share, contract, quiet, write
from .mutators import apply_byte_ops, apply_h5_ops, apply_json_ops, byte_ops, dump_json, h5_ops, json_ops

SLOW = settings.get_profile("slow")


def _read_everything(path):
    """What a user of a checkpoint does with it; checks the pieces agree with each other."""
    from kestimator.engine import checkpoint as ckpt
    listing = ckpt.list_tensors(path)
    meta = ckpt.read_metadata(path)
    values = ckpt.load_tensors(path)
    assert isinstance(meta, dict)
    assert sorted(values) == [name for name, _, _ in listing]
    for name, shape, _ in listing:
        assert values[name].shape == shape, name
    return values


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt_seed")
    path = seeds.checkpoint(str(folder))
    values = _read_everything(path)          # warm-up: the reader's lazy imports happen here
    for name, want in seeds.CHECKPOINT_TENSORS.items():
        np.testing.assert_array_equal(values[name], np.asarray(want, dtype=values[name].dtype))
    return Seed(path)


@pytest.fixture(scope="module")
def checkpoint_contract():
    return contract("checkpoint (engine.checkpoint)")


def _check_checkpoint(c, data, base, h5=None):
    with Inputs(base) as folder:
        path = write(folder, "model.ckpt", data)
        if h5 is not None:
            apply_h5_ops(path, h5, folder)
        c.run(lambda: _read_everything(path), path, watch=[folder])


@settings(ci_share(2))
@given(ops=byte_ops)
def test_checkpoint_bytes(seed, checkpoint_contract, tmp_path, ops):
    _check_checkpoint(checkpoint_contract, apply_byte_ops(seed.data, ops), tmp_path)


@settings(ci_share(2))
@given(ops=h5_ops)
def test_checkpoint_hdf5_structure(seed, checkpoint_contract, tmp_path, ops):
    _check_checkpoint(checkpoint_contract, seed.data, tmp_path, h5=ops)


# -- Saver.restore -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saver_session(seed):
    from kestimator import engine as ke
    g = ke.Graph()
    with g.as_default():
        variables = {name: ke.Variable(np.zeros_like(seeds.CHECKPOINT_TENSORS[name]), name=name.replace("/", "_"))
                     for name in ("dense/kernel", "dense/bias", "global_step")}
        saver = ke.train.Saver(variables)
        init = ke.global_variables_initializer()
    sess = ke.Session(graph=g)
    sess.run(init)
    saver.restore(sess, seed.path)          # warm-up, and the seed restores exactly
    np.testing.assert_array_equal(sess.run(variables["dense/kernel"]), seeds.CHECKPOINT_TENSORS["dense/kernel"])
    yield saver, sess
    sess.close()


@pytest.fixture(scope="module")
def saver_contract():
    return contract("Saver.restore")


def _run_saver(seed, saver_session, c, base, item):
    saver, sess = saver_session
    kind, ops = item
    with Inputs(base) as folder:
        path = write(folder, "model.ckpt", apply_byte_ops(seed.data, ops) if kind == "bytes" else seed.data)
        if kind == "h5":
            apply_h5_ops(path, ops, folder)
        c.run(lambda: saver.restore(sess, path), path, watch=[folder])


_saver_inputs = st.one_of(byte_ops.map(lambda o: ("bytes", o)), h5_ops.map(lambda o: ("h5", o)))


@settings(ci_share(1))
@given(item=_saver_inputs)
def test_saver_restore(seed, saver_session, saver_contract, tmp_path, item):
    _run_saver(seed, saver_session, saver_contract, tmp_path, item)


# -- the estimators' model_dir ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir_seed(tmp_path_factory):
    from kestimator.estimators.checkpoint_manager import CheckpointManager
    model_dir = seeds.estimator_dir(str(tmp_path_factory.mktemp("est_seed")))
    path, tensors, meta = CheckpointManager(model_dir).load()
    assert meta["global_step"] == 2 and np.all(tensors["w"] == 2.0)
    with open(os.path.join(model_dir, "checkpoint_index.json")) as f:
        return Seed(model_dir, index=json.load(f))


@pytest.fixture(scope="module")
def index_contract():
    return contract("estimator model_dir (CheckpointManager)")


def _load_model_dir(model_dir):
    from kestimator.estimators.checkpoint_manager import CheckpointManager
    manager = CheckpointManager(model_dir)
    manager.checkpoints()
    found = manager.load()
    if found is not None:
        path, tensors, meta = found
        assert isinstance(meta["global_step"], int) and isinstance(tensors, dict)
    return found


def _check_model_dir(c, seed_dir, base, index_text=None, newest=None):
    with Inputs(base) as folder:
        model_dir = os.path.join(folder, "model_dir")
        shutil.copytree(seed_dir, model_dir)
        if index_text is not None:
            write(model_dir, "checkpoint_index.json", index_text)
        if newest is not None:
            kind, ops = newest
            target = os.path.join(model_dir, "model.ckpt-2.h5")
            if kind == "bytes":
                with open(target, "rb") as f:
                    write(model_dir, "model.ckpt-2.h5", apply_byte_ops(f.read(), ops))
            else:
                apply_h5_ops(target, ops, folder)
        c.run(quiet(lambda: _load_model_dir(model_dir)), model_dir, watch=[model_dir])


_index_inputs = st.one_of(
    json_ops.map(lambda o: ("json", o)),
    byte_ops.map(lambda o: ("index_bytes", o)),
    byte_ops.map(lambda o: ("newest", ("bytes", o))),
    h5_ops.map(lambda o: ("newest", ("h5", o))))


def _run_index_input(seed, c, base, item):
    model_dir, index = seed.path, seed.index
    kind, ops = item
    if kind == "json":
        _check_model_dir(c, model_dir, base, index_text=dump_json(apply_json_ops(index, ops)).encode())
    elif kind == "index_bytes":
        _check_model_dir(c, model_dir, base, index_text=apply_byte_ops(json.dumps(index).encode(), ops))
    else:
        _check_model_dir(c, model_dir, base, newest=ops)


# Deep (up to 3000 levels) and self-similar checkpoint indexes, huge numbers, and a newest checkpoint whose
# datasets are links or huge: each runs every time (see test_estimator_model_dir_targeted).
_TARGETED_INDEX = ([("json", [("deep", i, 0, d)]) for i in (0, 3, 9) for d in (1000, 3000)] +
                   [("json", [("ancestor", i, 0, 0)]) for i in (2, 5, 8, 13)] +
                   [("json", [("wide", i, 0, 1000)]) for i in (0, 4)] +
                   [("index_bytes", [("int64", f, 0, b"x", 1 << 63, False)]) for f in (0.1, 0.5, 0.9)] +
                   [("newest", ("h5", [(k, 0, b, 1 << 40)])) for k in ("soft_replace", "external_replace",
                                                                       "huge_chunked", "attr_type")
                    for b in (0, 1)])


@settings(ci_share(1, targeted=len(_TARGETED_INDEX)))
@given(item=_index_inputs)
def test_estimator_model_dir(model_dir_seed, index_contract, tmp_path, item):
    _run_index_input(model_dir_seed, index_contract, tmp_path, item)


# -- slow tier ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
@settings(SLOW)
@given(item=st.one_of(byte_ops.map(lambda o: ("bytes", o)), h5_ops.map(lambda o: ("h5", o))))
def test_checkpoint_slow(seed, checkpoint_contract, tmp_path, item):
    if budget_spent(checkpoint_contract):
        return
    kind, ops = item
    if kind == "bytes":
        _check_checkpoint(checkpoint_contract, apply_byte_ops(seed.data, ops), tmp_path)
    else:
        _check_checkpoint(checkpoint_contract, seed.data, tmp_path, h5=ops)


@pytest.mark.slow
@settings(SLOW)
@given(item=_index_inputs)
def test_estimator_model_dir_slow(model_dir_seed, index_contract, tmp_path, item):
    if budget_spent(index_contract):
        return
    _run_index_input(model_dir_seed, index_contract, tmp_path, item)


@pytest.mark.slow
@settings(SLOW)
@given(item=_saver_inputs)
def test_saver_restore_slow(seed, saver_session, saver_contract, tmp_path, item):
    if budget_spent(saver_contract):
        return
    _run_saver(seed, saver_session, saver_contract, tmp_path, item)


def test_estimator_model_dir_targeted(model_dir_seed, index_contract, tmp_path):
    """Every _TARGETED_INDEX input loads (falling back to an older checkpoint) or is refused."""
    for item in _TARGETED_INDEX:
        _run_index_input(model_dir_seed, index_contract, tmp_path, item)


def test_member_name_that_is_not_utf8_is_data_loss(seed, checkpoint_contract, tmp_path):
    """Regression (slow-tier fuzzing): a bit flip in a member's name made h5py list it as bytes, and the
    checkpoint walk (io/h5_safety.walk) raised TypeError joining it to the group path."""
    ops = [("flip", 1.0, 0, b"\x00", 0, False), ("overwrite", 0.06640625, 0, b"\x80", 0, False)]
    before = dict(checkpoint_contract.error_types)
    _check_checkpoint(checkpoint_contract, apply_byte_ops(seed.data, ops), tmp_path)
    assert checkpoint_contract.error_types != before   # refused with a KestimatorError, not loaded
