"""The distribution hooks in one process (rank 0 of 1): what they change and what they leave alone."""
import numpy as np
import pytest

import kestimator.distributed as kd
from kestimator import engine as ke
from kestimator import estimators, optimizers
from kestimator.distributed import estimator_training
from kestimator.distributed.sharding import InputContext
from kestimator.errors import InvalidArgumentError, UnimplementedError
from kestimator.optimizers.base import Optimizer


def _update_op_types(optimizer, scope=None):
    g = ke.Graph()
    with g.as_default():
        w = ke.Variable(np.ones(3, np.float32), name="w")
        loss = ke.reduce_sum(w * w)
        if scope is not None:
            with scope.scope():
                optimizer.minimize(loss)
        else:
            optimizer.minimize(loss)
    return sorted(op.type for op in g.get_operations() if op.type.endswith("ApplyOptimizer"))


def test_distributed_optimizer_uses_the_optimizer_hook_instead_of_its_own_apply_gradients():
    """DistributedOptimizer overrides only `_aggregate_gradients`; apply_gradients is the base class's and
    builds the distributed update op; a plain optimizer in a one-rank strategy scope keeps ApplyOptimizer."""
    assert "apply_gradients" not in kd.DistributedOptimizer.__dict__
    assert _update_op_types(kd.DistributedOptimizer(optimizers.SGD(0.1))) == ["DistributedApplyOptimizer"]
    assert _update_op_types(optimizers.SGD(0.1)) == ["ApplyOptimizer"]
    assert _update_op_types(optimizers.Adam(0.1), kd.MultiWorkerMirroredStrategy()) == ["ApplyOptimizer"]
    assert Optimizer._aggregate_gradients(optimizers.SGD(0.1), []) == ("ApplyOptimizer", {})


def test_compile_in_a_one_rank_scope_keeps_the_plain_optimizer_and_trains_like_without():
    """One rank: the same model compiled inside and outside the scope ends with identical weights."""
    from kestimator import initializers, keras
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    weights = []
    for use_scope in (False, True):
        strategy = kd.MultiWorkerMirroredStrategy()
        ctx = strategy.scope() if use_scope else __import__("contextlib").nullcontext()
        with ctx:
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax",
                                      kernel_initializer=initializers.GlorotUniform(seed=1))])
            model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        assert type(model.optimizer) is optimizers.SGD
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_run_config_refuses_parameter_server_tf_config_and_non_strategies(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"ps": ["h:2222"], "worker": ["h:2223"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    with pytest.raises(UnimplementedError, match="parameter-server.*mpiexec -n N"):
        estimators.RunConfig()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["h:2223"]}}')   # no ps: the launcher decides
    config = estimators.RunConfig(train_distribute=kd.MultiWorkerMirroredStrategy())
    assert (config.is_chief, config.num_worker_replicas, config.task_id) == (True, 1, 0)
    with pytest.raises(InvalidArgumentError, match="train_distribute must be a ks.distributed strategy"):
        estimators.RunConfig(train_distribute="mirrored")


def test_estimator_input_fn_gets_the_input_context_under_train_distribute(tmp_path):
    """train() hands input_fn(input_context) this process's context (1 pipeline, id 0)."""
    seen = []

    def input_fn(input_context):
        seen.append((input_context.num_input_pipelines, input_context.input_pipeline_id))
        x = np.ones((4, 2), np.float32)
        return {"x": x}, np.zeros(4, np.float32)

    def model_fn(features, labels, mode):
        w = ke.get_variable("w", [2, 1], initializer=ke.zeros_initializer())
        loss = ke.reduce_mean(ke.square(ke.matmul(features["x"], w)[:, 0] - labels))
        return estimators.EstimatorSpec(mode, loss=loss, train_op=optimizers.SGD(0.1).minimize(
            loss, global_step=ke.train.get_global_step()))

    config = estimators.RunConfig(model_dir=str(tmp_path), train_distribute=kd.MultiWorkerMirroredStrategy())
    estimators.Estimator(model_fn, config=config).train(input_fn, steps=2)
    assert seen == [(1, 0)]


def test_auto_shard_shards_datasets_keeps_fixed_batches_and_refuses_other_iterables():
    from kestimator.data import Dataset
    ctx = InputContext(3, 1, 3)
    shard = estimator_training.auto_shard(Dataset.range(10), ctx)
    assert [int(v) for v in shard] == [1, 4, 7]                       # elements 1, 1+3, 1+6
    fixed = ({"x": np.ones(2)}, np.zeros(2))
    assert estimator_training.auto_shard(fixed, ctx) is fixed
    with pytest.raises(InvalidArgumentError, match="input_context.input_pipeline_id"):
        estimator_training.auto_shard(iter([fixed]), ctx)
    assert estimator_training.auto_shard(iter([fixed]), InputContext(1, 0, 1)) is not None


def test_strided_batches_give_each_rank_every_nth_row_of_the_global_batch():
    """Global batches of 5 rows over 2 ranks: rank 0 gets rows 0, 2, 4 and rank 1 rows 1, 3 of each; the
    last global batch (1 row) is skipped by both in training (rank 1 would have none) and only by rank 1
    in evaluation."""
    from kestimator.models.data_adapter import ArrayBatches
    from kestimator.models.distributed_fit import _StridedBatches
    rows = np.arange(11)[:, None] * np.ones((1, 2))
    source = ArrayBatches([rows, np.arange(11)], 5)
    got = {(r, train): [[int(v) for v in feeds[1]] for _, feeds in _StridedBatches(source, r, 2, train).epoch(0)]
           for r in (0, 1) for train in (True, False)}
    assert got[(0, True)] == [[0, 2, 4], [5, 7, 9]] and got[(1, True)] == [[1, 3], [6, 8]]
    assert got[(0, False)] == [[0, 2, 4], [5, 7, 9], [10]] and got[(1, False)] == [[1, 3], [6, 8]]
    feeds = next(_StridedBatches(source, 1, 2, True).epoch(0))[1]
    assert feeds[0].flags.c_contiguous and feeds[0].tolist() == [[1.0, 1.0], [3.0, 3.0]]


def test_global_batch_must_split_evenly_and_compile_refuses_a_non_strategy():
    from kestimator import keras
    from kestimator.models import distributed_fit
    dist = distributed_fit.FitDistribution.__new__(distributed_fit.FitDistribution)
    dist.rank, dist.size = 0, 4
    dist.check_global_batch(32)
    with pytest.raises(InvalidArgumentError, match="batch_size=30 is the global batch and must be divisible by the 4"):
        dist.check_global_batch(30)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(InvalidArgumentError, match="expects a ks.distributed strategy, got str"):
        model.compile(optimizer="sgd", loss="mse", distribute="mirrored")
