"""RunConfig rules, EstimatorSpec checks and numpy_input_fn semantics."""
import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.errors import InvalidArgumentError
from kestimator.estimators import EstimatorSpec, ModeKeys, RunConfig
from kestimator.estimators.inputs import numpy_input_fn


# -- RunConfig -----------------------------------------------------------------------------------------------
def test_run_config_defaults_follow_tensorflow():
    c = RunConfig()
    assert (c.save_checkpoints_secs, c.save_checkpoints_steps, c.keep_checkpoint_max, c.save_summary_steps,
            c.log_step_count_steps, c.keep_checkpoint_every_n_hours) == (600, None, 5, 100, 100, 10000)
    assert RunConfig(save_checkpoints_steps=100).save_checkpoints_secs is None
    assert RunConfig(save_checkpoints_secs=20 * 60).save_checkpoints_secs == 1200


def test_run_config_checkpoint_rules_are_exclusive():
    with pytest.raises(InvalidArgumentError, match="cannot both"):
        RunConfig(save_checkpoints_steps=10, save_checkpoints_secs=10)
    c = RunConfig(save_checkpoints_secs=None)
    assert c.save_checkpoints_secs is None and c.save_checkpoints_steps is None


def test_run_config_replace_and_seed_alias():
    c = RunConfig(random_seed=7, save_checkpoints_steps=5)
    assert c.tf_random_seed == 7 == c.random_seed
    d = c.replace(save_checkpoints_secs=30)
    assert (d.save_checkpoints_secs, d.save_checkpoints_steps, d.tf_random_seed) == (30, None, 7)
    assert c.save_checkpoints_steps == 5   # replace returns a copy
    with pytest.raises(InvalidArgumentError, match="'bogus' is not a RunConfig setting"):
        c.replace(bogus=1)
    with pytest.raises(InvalidArgumentError, match="keep_checkpoint_max"):
        RunConfig(keep_checkpoint_max=-1)


# -- EstimatorSpec ---------------------------------------------------------------------------------------------
def test_estimator_spec_requires_fields_per_mode():
    g = ke.Graph()
    with g.as_default():
        loss = ke.constant(1.0)
        op = ke.no_op()
        with pytest.raises(InvalidArgumentError, match="train_op is required"):
            EstimatorSpec(ModeKeys.TRAIN, loss=loss)
        with pytest.raises(InvalidArgumentError, match="loss is required in EVAL"):
            EstimatorSpec(ModeKeys.EVAL)
        with pytest.raises(InvalidArgumentError, match="predictions are required"):
            EstimatorSpec(ModeKeys.PREDICT)
        with pytest.raises(InvalidArgumentError, match="scalar"):
            EstimatorSpec(ModeKeys.EVAL, loss=ke.constant([1.0, 2.0]))
        with pytest.raises(InvalidArgumentError, match="mode must be"):
            EstimatorSpec("fit", loss=loss)
        with pytest.raises(InvalidArgumentError, match=r"eval_metric_ops\['acc'\]"):
            EstimatorSpec(ModeKeys.EVAL, loss=loss, eval_metric_ops={"acc": loss})
        spec = EstimatorSpec(ModeKeys.TRAIN, loss=loss, train_op=op)
        assert spec.train_op is op and spec.training_hooks == ()


# -- numpy_input_fn ---------------------------------------------------------------------------------------------
def _collect(fn, **kw):
    return list(fn(**kw))


def test_numpy_input_fn_batches_in_order_with_a_partial_last_batch():
    x = np.arange(10)
    batches = _collect(numpy_input_fn({"a": x}, x * 10, batch_size=4, num_epochs=1, shuffle=False))
    assert [b[0]["a"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b[1].tolist() for b in batches][-1] == [80, 90]


def test_numpy_input_fn_epochs_straddle_and_shuffle_each_epoch():
    x = np.arange(5)
    batches = _collect(numpy_input_fn({"a": x}, x, batch_size=3, num_epochs=2, shuffle=True, seed=3))
    flat = np.concatenate([b[0]["a"] for b in batches])
    assert [len(b[1]) for b in batches] == [3, 3, 3, 1]            # 10 rows in batches that cross epochs
    assert sorted(flat[:5]) == list(range(5)) and sorted(flat[5:]) == list(range(5))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), flat)   # rows stay aligned


def test_numpy_input_fn_seed_from_config_and_fast_forward():
    x = np.arange(23)
    fn = numpy_input_fn({"a": x}, x, batch_size=4, num_epochs=None, shuffle=True)
    cfg = RunConfig(tf_random_seed=11)
    it1, it2 = iter(fn(config=cfg)), iter(fn(config=cfg))
    first = [next(it1)[0]["a"] for _ in range(30)]
    np.testing.assert_array_equal(np.concatenate([next(it2)[0]["a"] for _ in range(30)]), np.concatenate(first))
    it3 = iter(fn(config=cfg))
    it3._ks_fast_forward(17)                    # skip 17 batches without reading them
    for k in range(17, 30):
        np.testing.assert_array_equal(next(it3)[0]["a"], first[k])


def test_numpy_input_fn_features_only_and_errors():
    batches = _collect(numpy_input_fn(np.ones((3, 2)), batch_size=2, shuffle=False))
    assert isinstance(batches[0], np.ndarray) and batches[0].shape == (2, 2)
    with pytest.raises(InvalidArgumentError, match="shuffle must be provided"):
        numpy_input_fn({"a": np.ones(3)}, np.ones(3))
    with pytest.raises(InvalidArgumentError, match="x has 3 rows but y has 2"):
        numpy_input_fn({"a": np.ones(3)}, np.ones(2), shuffle=False)
    with pytest.raises(InvalidArgumentError, match="different lengths"):
        numpy_input_fn({"a": np.ones(3), "b": np.ones(4)}, shuffle=False)
    with pytest.raises(InvalidArgumentError, match=r"keys \['a'\] are in both"):
        numpy_input_fn({"a": np.ones(3)}, {"a": np.ones(3)}, shuffle=False)
