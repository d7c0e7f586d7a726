"""Format versions of SavedModel folders: saved_model.json records "kestimator.saved_model/<N>" and the
writer's version; a newer format is refused naming both, a file without the writer's version loads."""
import json
import os
import shutil

import numpy as np
import pytest

import kestimator
import kestimator as ks
from kestimator.errors import DataLossError, InvalidArgumentError

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "compat", "v1",
                       "saved_model")
X = np.array([[0.5, -0.25, 1.0]], np.float32)


def _export(tmp_path, **fields):
    """A copy of a SavedModel export with fields of saved_model.json changed (None removes one)."""
    folder = tmp_path / "export"
    shutil.copytree(FIXTURE, folder)
    path = folder / "saved_model.json"
    doc = json.loads(path.read_text())
    for k, v in fields.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    path.write_text(json.dumps(doc))
    return str(folder), str(path)


def test_the_writer_records_format_and_version(tmp_path):
    g = ks.engine.Graph()
    with g.as_default():
        x = ks.engine.placeholder(ks.engine.float32, [None, 2], name="x")
        w = ks.engine.Variable(np.array([[1.0], [2.0]], np.float32), name="w")
        y = ks.engine.matmul(x, w)
        with ks.engine.Session(graph=g) as sess:
            sess.run(w.initializer)
            from kestimator.saved_model.writer import write_saved_model
            write_saved_model(str(tmp_path / "m"), sess, {"serving_default": {"inputs": {"x": x},
                                                                              "outputs": {"y": y}}})
    doc = json.loads((tmp_path / "m" / "saved_model.json").read_text())
    assert doc["format"] == "kestimator.saved_model/1"
    assert doc["kestimator_version"] == kestimator.__version__
    out = ks.saved_model.load(str(tmp_path / "m")).signatures["serving_default"](x=np.array([[1.0, 1.0]], np.float32))
    np.testing.assert_array_equal(out["y"], [[3.0]])   # 1*1 + 1*2


def test_a_newer_format_is_refused(tmp_path):
    folder, path = _export(tmp_path, format="kestimator.saved_model/2", kestimator_version="1.4.0")
    with pytest.raises(InvalidArgumentError) as info:
        ks.saved_model.load(folder)
    assert str(info.value) == (f"{path} was written by kestimator 1.4.0 in SavedModel format 2; this kestimator "
                               f"({kestimator.__version__}) reads up to format 1: upgrade kestimator to load this "
                               "newer format")


def test_an_export_without_the_writer_version_loads(tmp_path):
    folder, _ = _export(tmp_path, kestimator_version=None)
    want = ks.saved_model.load(FIXTURE).signatures["predict"](x=X)["probabilities"]
    got = ks.saved_model.load(folder).signatures["predict"](x=X)["probabilities"]
    np.testing.assert_array_equal(got, want)
    assert got.shape == (1, 2) and abs(float(got.sum()) - 1.0) < 1e-6


@pytest.mark.parametrize("tag", ["kestimator.saved_model/0", "kestimator.saved_model/x", "other/1", None])
def test_a_foreign_or_malformed_format_is_data_loss(tmp_path, tag):
    folder, path = _export(tmp_path, format=tag)
    with pytest.raises(DataLossError, match="saved_model.json"):
        ks.saved_model.load(folder)
