"""The serving op BoostedTreesEnsemblePredict on a hand-built ensemble (golden values), and its shape rule."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.estimators.boosted_trees import graph_ops
from kestimator.estimators.boosted_trees.binning import CATEGORICAL, NUMERIC
from kestimator.estimators.boosted_trees.predictor import Tree, TreeEnsemble


def _tree(feature, threshold, default_left, is_categorical, left, right, value):
    n = len(value)
    return Tree(feature=np.array(feature, np.int32), bin=np.zeros(n, np.int32), threshold=np.array(threshold, float),
                default_left=np.array(default_left), is_categorical=np.array(is_categorical),
                left=np.array(left, np.int32), right=np.array(right, np.int32), value=np.array(value, float),
                gain=np.zeros(n), count=np.ones(n, np.int64), hessian=np.ones(n))


def _ensemble():
    """Tree 0: x0 <= 0.5 (NaN left) -> leaf 1.0; else x1 == 2 (NaN right) -> 2.0 / 3.0.
    Tree 1: a single leaf -0.25. Baseline 0.5."""
    ens = TreeEnsemble([0.5], np.array([NUMERIC, CATEGORICAL], np.uint8))
    ens.add_tree(_tree([0, -1, 1, -1, -1], [0.5, 0, 2, 0, 0], [True, False, False, False, False],
                       [False, False, True, False, False], [1, -1, 3, -1, -1], [2, -1, 4, -1, -1],
                       [0.0, 1.0, 0.0, 2.0, 3.0]))
    ens.add_tree(_tree([-1], [0], [False], [False], [-1], [-1], [-0.25]))
    return ens


def _serve(arrays, max_depth, x):
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(ke.float64, [None, 2])
        tensors = {k: ke.constant(v) for k, v in arrays.items()}
        out = graph_ops.ensemble_predict(ph, tensors, max_depth)
        with ke.Session(graph=g) as sess:
            return sess.run(out, {ph: x})


def test_golden_values_and_the_numpy_predictor():
    x = np.array([[0.2, 2], [np.nan, 1], [0.9, 2], [0.9, np.nan], [0.9, 5]])
    # 0.5 + tree0 + (-0.25): rows 0,1 -> leaf 1.0 (row 1 by NaN default left) = 1.25; row 2 -> x1 == 2 -> 2.0
    # = 2.25; rows 3,4 -> NaN goes right / 5 != 2 -> 3.0 = 3.25
    want = np.array([[1.25], [1.25], [2.25], [3.25], [3.25]])
    ens = _ensemble()
    arrays, depth = graph_ops.packed_ensemble_arrays(ens)
    assert depth == 2
    got = _serve(arrays, depth, x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, ens.predict_raw(x))


def test_shape_rule_refuses_inconsistent_arrays():
    arrays, depth = graph_ops.packed_ensemble_arrays(_ensemble())
    arrays["right"] = arrays["right"][:-1]
    with pytest.raises(InvalidArgumentError, match="'right' has 5 entries, 'value' has 6"):
        _serve(arrays, depth, np.zeros((1, 2)))
    arrays, _ = graph_ops.packed_ensemble_arrays(_ensemble())
    with pytest.raises(InvalidArgumentError, match="max_depth must be an int in"):
        _serve(arrays, 10 ** 9, np.zeros((1, 2)))
    arrays["left"] = arrays["left"].astype(np.float64)
    with pytest.raises(InvalidArgumentError, match="'left' must be int64"):
        _serve(arrays, 2, np.zeros((1, 2)))
