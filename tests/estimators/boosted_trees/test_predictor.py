import numpy as np
import pytest

from kestimator.errors import DataLossError, FailedPreconditionError
from kestimator.estimators.boosted_trees.binning import CATEGORICAL, NUMERIC
from kestimator.estimators.boosted_trees.gbdt import GradientBoostedTrees
from kestimator.estimators.boosted_trees.predictor import Tree, TreeEnsemble

NAN = np.nan


def _tree(feature, threshold, default_left, is_categorical, left, right, value, gain):
    n = len(value)
    return Tree(feature=np.array(feature, np.int32), bin=np.zeros(n, np.int32),
                threshold=np.array(threshold, float), default_left=np.array(default_left),
                is_categorical=np.array(is_categorical), left=np.array(left, np.int32),
                right=np.array(right, np.int32), value=np.array(value, float),
                gain=np.array(gain, float), count=np.ones(n, np.int64), hessian=np.ones(n))


def _hand_ensemble():
    # Tree A: x0 <= 0.5 (missing left) ? 1.0 : (x1 == 2 (missing right) ? -2.0 : 3.0)
    a = _tree(feature=[0, -1, 1, -1, -1], threshold=[0.5, 0, 2, 0, 0],
              default_left=[True, False, False, False, False],
              is_categorical=[False, False, True, False, False],
              left=[1, -1, 3, -1, -1], right=[2, -1, 4, -1, -1],
              value=[0.1, 1.0, 0.5, -2.0, 3.0], gain=[5.0, 0, 2.0, 0, 0])
    # Tree B: x0 <= -1 ? 0.25 : -0.25 (missing right)
    b = _tree(feature=[0, -1, -1], threshold=[-1, 0, 0], default_left=[False] * 3,
              is_categorical=[False] * 3, left=[1, -1, -1], right=[2, -1, -1],
              value=[0.0, 0.25, -0.25], gain=[1.0, 0, 0])
    ensemble = TreeEnsemble([0.5], [NUMERIC, CATEGORICAL])
    ensemble.add_tree(a)
    ensemble.add_tree(b)
    return ensemble


def _naive_predict(ensemble, X):
    """Row by row, node by node: the reference the vectorised traversal must reproduce."""
    out = np.tile(ensemble.baseline, (X.shape[0], 1))
    for r in range(X.shape[0]):
        for tree, k in zip(ensemble.trees, ensemble.tree_output):
            node = 0
            while tree.left[node] >= 0:
                f = tree.feature[node]
                x = X[r, f]
                if ensemble.feature_kinds[f] != NUMERIC and x < 0:
                    x = NAN  # a negative id is missing
                if np.isnan(x):
                    go_left = tree.default_left[node]
                elif tree.is_categorical[node]:
                    go_left = x == tree.threshold[node]
                else:
                    go_left = x <= tree.threshold[node]
                node = tree.left[node] if go_left else tree.right[node]
            out[r, k] += tree.value[node]
    return out


HAND_X = np.array([[0.2, 2], [0.7, 2], [0.7, 1], [NAN, 5], [0.9, NAN], [0.9, -1], [-3, 2]])


def test_hand_built_ensemble_golden_predictions():
    # Row by row: A gives 1, -2, 3, 1 (x0 missing -> left), 3 (x1 missing -> right), 3 (id -1 is
    # missing), 1; B gives -0.25 except x0 = -3 (0.25) and x0 missing (-> right, -0.25).
    expected = 0.5 + np.array([1, -2, 3, 1, 3, 3, 1]) + np.array([-.25, -.25, -.25, -.25, -.25, -.25, .25])
    np.testing.assert_allclose(_hand_ensemble().predict_raw(HAND_X)[:, 0], expected, rtol=1e-15)


def test_vectorised_traversal_equals_naive_traversal_on_trained_trees():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=600), rng.integers(0, 6, 600), rng.normal(size=600)])
    X[rng.random(X.shape) < 0.1] = NAN
    y = ((np.nan_to_num(X[:, 0]) > 0) ^ (X[:, 1] == 3)).astype(float)
    model = GradientBoostedTrees(n_trees=15, max_depth=4, categorical_features=[1],
                                 kernels="numpy").fit(X, y)
    X_test = np.column_stack([rng.normal(size=300), rng.integers(-1, 9, 300), rng.normal(size=300)])
    X_test[rng.random(X_test.shape) < 0.1] = NAN
    ensemble = model.ensemble_
    # Same additions in the same order (baseline, then tree by tree): equal to the last bit.
    np.testing.assert_array_equal(ensemble.predict_raw(X_test), _naive_predict(ensemble, X_test))


def test_multiclass_trees_add_to_their_own_column():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = np.digitize(X[:, 0] + 0.3 * X[:, 1], [-0.5, 0.5]).astype(float)
    model = GradientBoostedTrees(n_trees=5, max_depth=3, n_classes=3, kernels="numpy").fit(X, y)
    assert model.ensemble_.tree_output == [0, 1, 2] * 5
    np.testing.assert_array_equal(model.ensemble_.predict_raw(X), _naive_predict(model.ensemble_, X))


def test_explanations_golden_and_sum_to_logit_minus_bias():
    ensemble = _hand_ensemble()
    explanation = ensemble.predict_with_explanations(HAND_X)
    # bias = baseline + root values = 0.5 + 0.1 + 0.0 = 0.6
    np.testing.assert_allclose(explanation.bias, [0.6])
    # Row [0.7, 2]: A goes root(0.1) -> node2 (0.5) on x0 -> node3 (-2.0) on x1; B root(0) -> -0.25 on x0.
    # x0: (0.5 - 0.1) + (-0.25 - 0) = 0.15;  x1: -2.0 - 0.5 = -2.5.
    np.testing.assert_allclose(explanation.contributions[1, 0], [0.15, -2.5], rtol=1e-14)
    np.testing.assert_allclose(explanation.logits, ensemble.predict_raw(HAND_X))
    np.testing.assert_allclose(explanation.contributions.sum(-1),
                               explanation.logits - explanation.bias, rtol=0, atol=1e-14)


def test_explanations_sum_on_a_trained_multiclass_model():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 4))
    X[rng.random(X.shape) < 0.05] = NAN
    y = np.digitize(np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 2]), [-0.7, 0.7]).astype(float)
    model = GradientBoostedTrees(n_trees=10, max_depth=3, n_classes=3, kernels="numpy").fit(X, y)
    exp = model.predict_with_explanations(X)
    assert exp.contributions.shape == (500, 3, 4)
    np.testing.assert_allclose(exp.logits, model.predict_raw(X))
    np.testing.assert_allclose(exp.contributions.sum(-1), exp.logits - exp.bias, atol=1e-12)
    # Features the trees never split on get no credit.
    unused = np.setdiff1d(np.arange(4), np.concatenate([t.feature[t.left >= 0] for t in model.ensemble_.trees]))
    assert np.all(exp.contributions[:, :, unused] == 0)


def test_feature_importances_sum_split_gains():
    ensemble = _hand_ensemble()
    # x0: 5 (tree A root) + 1 (tree B root) = 6; x1: 2.
    np.testing.assert_allclose(ensemble.feature_importances(normalize=False), [6.0, 2.0])
    np.testing.assert_allclose(ensemble.feature_importances(), [0.75, 0.25])
    stump = TreeEnsemble([0.0], [NUMERIC])
    stump.add_tree(_tree([-1], [0], [False], [False], [-1], [-1], [0.3], [0]))
    np.testing.assert_allclose(stump.feature_importances(normalize=False), [0.0])
    with pytest.raises(FailedPreconditionError, match="no split with positive gain"):
        stump.feature_importances()


def test_state_round_trip_and_structural_checks():
    ensemble = _hand_ensemble()
    state = ensemble.get_state()
    again = TreeEnsemble.from_state(state, ensemble.feature_kinds)
    np.testing.assert_array_equal(again.predict_raw(HAND_X), ensemble.predict_raw(HAND_X))

    def corrupt(key, index, value):
        broken = {k: v.copy() for k, v in state.items()}
        broken[key][index] = value
        return broken

    cases = [
        (corrupt("node_left", 0, 0), "not after its parent"),         # a self loop
        (corrupt("node_right", 2, 9), "out of range"),                # child outside its tree
        (corrupt("node_right", 0, 3), "two parents"),                 # node 3 shared
        (corrupt("node_feature", 0, 7), "split feature out of range"),
        (corrupt("node_is_categorical", 0, True), "kind does not match"),
        (corrupt("node_value", 1, np.inf), "non-finite"),
        (corrupt("node_left", 1, 2), "exactly one child"),
        (corrupt("tree_output", 1, 4), "tree_output out of range"),
        ({k: v for k, v in state.items() if k != "node_gain"}, "'node_gain'"),
        (dict(state, node_value=state["node_value"][:-1]), "node_value has 7 entries"),
    ]
    for broken, message in cases:
        with pytest.raises(DataLossError, match=message):
            TreeEnsemble.from_state(broken, ensemble.feature_kinds)


def test_chunked_traversal_gives_the_same_predictions(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 3))
    X[rng.random(X.shape) < 0.1] = NAN
    y = (np.nan_to_num(X[:, 0]) > 0.2).astype(float)
    model = GradientBoostedTrees(n_trees=6, max_depth=3, kernels="numpy").fit(X, y)
    whole = model.predict_with_explanations(X)
    # 64 cells / 6 trees -> 10 rows a chunk: 70 chunks, the last one short.
    monkeypatch.setattr("kestimator.estimators.boosted_trees.predictor._CHUNK_CELLS", 64)
    chunked = model.predict_with_explanations(X)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
