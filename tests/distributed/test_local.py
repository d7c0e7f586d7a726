"""ks.distributed in one process (no MPI launcher): the fallback, argument checks, sharding, the JSON
codec, and the pure functions that format the metadata and stall reports."""
import sys

import numpy as np
import pytest

import kestimator.distributed as kd
from kestimator.distributed import _codec, _inspector, _runtime, collectives
from kestimator.errors import (ConfigError, DataLossError, InvalidArgumentError, MissingDependencyError,
                               UnimplementedError)


# -- launch detection and the one-process fallback --------------------------------------------------------------
def test_plain_python_is_rank_0_of_1():
    assert (kd.rank(), kd.size(), kd.local_rank(), kd.local_size()) == (0, 1, 0, 1)
    assert kd.is_chief() and not kd.is_distributed()
    assert "mpi4py.MPI" not in sys.modules or _runtime.STATE.MPI is None   # never loaded by the fallback


@pytest.mark.parametrize("env, expected", [
    ({}, False), ({"PMI_RANK": "0", "PMI_SIZE": "2"}, True), ({"OMPI_COMM_WORLD_SIZE": "4"}, True),
    ({"PMIX_RANK": "1"}, True), ({"PMI_RANK": "0", "KESTIMATOR_DISTRIBUTED": "0"}, False),
    ({"KESTIMATOR_DISTRIBUTED": "mpi"}, True)])
def test_launch_detection(env, expected):
    assert _runtime.launched_by_mpi(env) is expected


def test_bad_mode_variable_is_a_config_error():
    with pytest.raises(ConfigError, match="KESTIMATOR_DISTRIBUTED='maybe'"):
        _runtime.launched_by_mpi({"KESTIMATOR_DISTRIBUTED": "maybe"})


@pytest.mark.parametrize("raw, expected", [(None, 300.0), ("", 300.0), ("2.5", 2.5), ("0", None), ("none", None)])
def test_collective_timeout_from_env(raw, expected):
    env = {} if raw is None else {"KESTIMATOR_COLLECTIVE_TIMEOUT": raw}
    assert _runtime.collective_timeout_from_env(env) == expected


@pytest.mark.parametrize("raw", ["abc", "-1", "nan"])
def test_bad_timeout_is_a_config_error_naming_the_variable(raw):
    with pytest.raises(ConfigError, match="KESTIMATOR_COLLECTIVE_TIMEOUT"):
        _runtime.collective_timeout_from_env({"KESTIMATOR_COLLECTIVE_TIMEOUT": raw})


@pytest.fixture
def fresh_state(monkeypatch):
    """A not-yet-initialized runtime with mpi4py made unimportable; restored to the fallback afterwards."""
    _runtime.STATE.reset()
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    for var in ("PMI_RANK", "PMI_SIZE", "PMI_FD", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                "MPI_LOCALNRANKS", "KESTIMATOR_DISTRIBUTED", "KESTIMATOR_COLLECTIVE_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    yield
    _runtime.STATE.reset()


def test_several_processes_without_mpi4py_refuse_to_run_as_independent_copies(fresh_state, monkeypatch):
    """Two processes each believing they are rank 0 of 1 would both train and both write checkpoints."""
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(MissingDependencyError, match=r"kestimator\[mpi\]"):
        kd.init()


def test_one_process_launch_without_mpi4py_falls_back(fresh_state, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "1")
    monkeypatch.setenv("KESTIMATOR_COLLECTIVE_TIMEOUT", "7")
    kd.init()
    assert (kd.rank(), kd.size()) == (0, 1) and _runtime.STATE.timeout == 7.0


def test_init_argument_overrides_environment(fresh_state, monkeypatch):
    monkeypatch.setenv("KESTIMATOR_COLLECTIVE_TIMEOUT", "7")
    kd.init(collective_timeout=0)
    assert _runtime.STATE.timeout is None
    kd.set_collective_timeout(12)
    assert _runtime.STATE.timeout == 12.0
    with pytest.raises(InvalidArgumentError, match="collective_timeout"):
        kd.set_collective_timeout(-3)


# -- collectives in one process ---------------------------------------------------------------------------------
def test_allreduce_returns_a_copy_or_the_buffer():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = kd.allreduce(x, op="average")
    assert out is not x and out.dtype == np.float32
    np.testing.assert_array_equal(out, x)
    assert kd.allreduce(x, op="sum", inplace=True) is x
    assert kd.allreduce(2.5) == 2.5 and isinstance(kd.allreduce(2.5), float)
    assert kd.allreduce([1, 2], op="max").tolist() == [1, 2]


@pytest.mark.parametrize("value, kwargs, match", [
    (np.arange(3), {"op": "average"}, "needs a floating dtype"),
    (np.ones(3), {"op": "mean"}, "unknown op 'mean'"),
    (np.array([True, False]), {}, "cast bool"),
    (np.array(["a"]), {}, "numeric array"),
    (np.ones((3, 4))[:, ::2], {"inplace": True}, "writable C-contiguous"),
    ([1.0, 2.0], {"inplace": True}, "writable C-contiguous"),
])
def test_allreduce_rejects(value, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        kd.allreduce(value, **kwargs)


def test_broadcast_in_one_process_round_trips_through_json():
    x = np.arange(4, dtype=np.int16)
    assert kd.broadcast(x) is not x and kd.broadcast(x, inplace=True) is x
    got = kd.broadcast({"steps": (1, 2), "w": np.eye(2, dtype=np.float32), "name": "a", "none": None})
    assert got["steps"] == [1, 2] and got["name"] == "a" and got["none"] is None
    assert got["w"].dtype == np.float32 and got["w"].tolist() == [[1, 0], [0, 1]]
    with pytest.raises(InvalidArgumentError, match=r"broadcast <unnamed>\['s'\]: cannot send a set"):
        kd.broadcast({"s": {1, 2}})
    with pytest.raises(InvalidArgumentError, match="root rank 1 is not a rank of this job"):
        kd.broadcast(1, root=1)


def test_allgather_and_barrier_in_one_process():
    assert kd.allgather(np.float32(3)).tolist() == [3.0]
    assert kd.allgather(np.ones((2, 3))).shape == (2, 3)
    assert kd.allgather_object({"a": 1}) == [{"a": 1}]
    kd.barrier()


# -- the codec -------------------------------------------------------------------------------------------------
def test_codec_round_trip_keeps_dtype_and_shape():
    value = {"a": [np.arange(6, dtype=">i4").reshape(2, 3), np.float64(0.5), np.complex64(1 + 2j)], "b": True}
    got = _codec.decode(_codec.encode(value))
    assert got["a"][0].dtype == np.dtype(">i4") and got["a"][0].shape == (2, 3)
    assert got["a"][1] == 0.5 and got["a"][2] == np.complex64(1 + 2j) and got["b"] is True


@pytest.mark.parametrize("payload, match", [
    (b'{"__ndarray__": true, "dtype": "|O", "shape": [1], "data": "AAAAAAAAAAA="}', "refused array of dtype object"),
    (b'{"__ndarray__": true, "dtype": "<f4", "shape": [4], "data": "AAAAAA=="}', "carries 4 bytes"),
    (b'{"__ndarray__": true, "dtype": "<f4", "shape": [-1], "data": ""}', "refused array"),
    (b'{"__ndarray__": true, "dtype": "<f4"}', "malformed array"),
    (b'not json', "unreadable message"),
])
def test_codec_refuses_malformed_or_unsafe_messages(payload, match):
    with pytest.raises(DataLossError, match=match):
        _codec.decode(payload)


def test_codec_refuses_objects_and_the_reserved_key():
    with pytest.raises(InvalidArgumentError, match="cannot send a NumPy array of dtype object"):
        _codec.encode(np.array([object()]))
    with pytest.raises(InvalidArgumentError, match="reserved"):
        _codec.encode({"__ndarray__": 1})
    with pytest.raises(InvalidArgumentError, match="dict keys sent between ranks must be strings"):
        _codec.encode({1: 2})


# -- the report texts --------------------------------------------------------------------------------------------
def test_first_difference_names_the_tensor_and_every_variant():
    lists = [[["w:0", [3, 4], "<f4"], ["b:0", [4], "<f4"]],
             [["w:0", [3, 4], "<f4"], ["b:0", [4], "<f4"]],
             [["w:0", [3, 4], "<f4"], ["b:0", [5], "<f8"]]]
    assert collectives.first_difference(lists, "gradient reduction 'x'") == (
        "gradient reduction 'x': ranks pass different tensors; first difference at position 1: "
        "ranks [0, 1]: 'b:0' shape (4,) float32; rank 2: 'b:0' shape (5,) float64. Every rank must reduce the "
        "same tensors (name, shape, dtype) in the same order.")
    short = collectives.first_difference([[["w:0", [1], "<f4"]], []], "x")
    assert "position 0: rank 0: 'w:0' shape (1,) float32; rank 1: nothing (its list ended)" in short


def test_stall_report_sorts_ranks_into_arrived_missing_and_silent():
    pending = (7, "allreduce", "SGD/gradients", "1 bucket, float32, 2 tensors: w:0, b:0", 0.0, 1)
    mine = {"rank": 0, "entered": 7, "waiting": {"seq": 7, "kind": "allreduce", "name": "SGD/gradients",
                                                "detail": "", "for_s": 3.0}, "where": "train.py:40 in main"}
    replies = {
        1: {"rank": 1, "host": "h1", "pid": 11, "entered": 7, "where": "train.py:40 in main",
            "waiting": {"seq": 7, "kind": "allreduce", "name": "SGD/gradients", "for_s": 2.9}},
        2: {"rank": 2, "host": "h2", "pid": 12, "entered": 6, "where": "train.py:52 in evaluate",
            "last": {"seq": 6, "kind": "allreduce", "name": "SGD/gradients", "ago_s": 3.5}},
    }
    text = _inspector.format_report(0, 4, mine, pending, replies, timeout=3.0, window=1.0, asked=True)
    lines = text.splitlines()
    assert lines[0] == ("[rank 0] kestimator.distributed: collective #7 did not complete within 3 s on rank 0 "
                        "(KESTIMATOR_COLLECTIVE_TIMEOUT sets the deadline); aborting all 4 ranks")
    assert lines[1] == ("[rank 0]   rank 0 waits in allreduce 'SGD/gradients' (1 bucket, float32, 2 tensors: "
                        "w:0, b:0)")
    assert "[rank 0]   ranks that did not arrive: [2, 3]" in lines
    assert ("[rank 0]     rank 2 (h2, pid 12): is not in a collective; 6 collectives started, last finished #6 "
            "allreduce 'SGD/gradients' 3.5 s ago; at train.py:52 in evaluate") in lines
    assert "[rank 0]     rank 3: no answer within 1 s (hung outside Python, or exited)" in lines
    assert "[rank 0]   ranks waiting in the same collective: [0, 1]" in lines


def test_stall_report_without_thread_multiple_says_it_cannot_ask():
    pending = (2, "barrier", "end", "", 0.0, 1)
    text = _inspector.format_report(1, 2, {"rank": 1, "entered": 2}, pending, {}, 5.0, 5.0, asked=False)
    assert "ranks that did not arrive: unknown (MPI runs without MPI_THREAD_MULTIPLE" in text


# -- sharding, chief, seeds -----------------------------------------------------------------------------------------
def test_shard_range_is_strided():
    assert list(kd.shard_range(10, rank=1, size=3)) == [1, 4, 7]
    assert kd.shard_range(5) == range(0, 5, 1)
    # with a per-rank batch of B/size the ranks' i-th batches are exactly the i-th global batch
    rows = [np.array(kd.shard_range(64, rank=r, size=4))[:8] for r in range(4)]
    assert sorted(np.concatenate(rows).tolist()) == list(range(32))
    with pytest.raises(InvalidArgumentError, match="rank must be in"):
        kd.shard_range(5, rank=3, size=3)
    with pytest.raises(InvalidArgumentError, match="n must be an int"):
        kd.shard_range(-1)


def test_shard_files():
    files = [f"f{i}" for i in range(7)]
    assert kd.shard_files(files, rank=2, size=3) == ["f2", "f5"]
    assert kd.shard_files(files) == files
    with pytest.raises(InvalidArgumentError, match="2 files cannot be split over 3 ranks"):
        kd.shard_files(["a", "b"], rank=0, size=3)


def test_input_context():
    ctx = kd.InputContext(num_input_pipelines=4, input_pipeline_id=1, num_replicas_in_sync=4)
    assert ctx.get_per_replica_batch_size(128) == 32
    with pytest.raises(InvalidArgumentError, match="not divisible"):
        ctx.get_per_replica_batch_size(30)
    with pytest.raises(InvalidArgumentError, match="input_pipeline_id"):
        kd.InputContext(2, 2, 2)
    here = kd.input_context()
    assert (here.num_input_pipelines, here.input_pipeline_id, here.num_replicas_in_sync) == (1, 0, 1)


def test_equal_steps_and_seed_in_one_process():
    assert kd.equal_steps(17) == 17
    with pytest.raises(InvalidArgumentError):
        kd.equal_steps(-2)
    assert kd.shared_seed(5) == 5
    assert 0 <= kd.shared_seed() < 2 ** 63
    with pytest.raises(InvalidArgumentError):
        kd.shared_seed(-1)


def test_on_chief_and_chief_only():
    calls = []
    assert kd.on_chief(lambda a, b=0: calls.append((a, b)) or "done", 1, b=2) == "done"

    @kd.chief_only
    def save(step):
        calls.append(step)
        return step * 2

    @kd.chief_only(barrier=False, broadcast_result=True)
    def evaluate():
        return {"acc": 0.5}

    assert save(3) == 6 and evaluate() == {"acc": 0.5} and calls == [(1, 2), 3]
    assert save.__name__ == "save"


# -- strategy and the parameter-server names --------------------------------------------------------------------
def test_multi_worker_mirrored_strategy_in_one_process():
    strategy = kd.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == 1 and strategy.extended.should_checkpoint
    assert kd.get_strategy() is None
    with strategy.scope() as s:
        assert s is strategy and kd.get_strategy() is strategy
    assert kd.get_strategy() is None
    assert strategy.reduce("SUM", 3.0) == 3.0
    assert strategy.cluster_resolver.task_id == 0 and strategy.cluster_resolver.task_type == "worker"
    assert strategy.distribute_datasets_from_function(lambda ctx: ctx.input_pipeline_id) == 0
    with pytest.raises(InvalidArgumentError, match="unknown reduce_op"):
        strategy.reduce("MAX", 1.0)


@pytest.mark.parametrize("name", ["ClusterSpec", "Server", "ParameterServerStrategy", "replica_device_setter"])
def test_parameter_server_names_explain_what_to_use(name):
    with pytest.raises(UnimplementedError, match="asynchronous parameter-server.*mpiexec -n N"):
        getattr(kd, name)({"ps": ["h:2222"], "worker": ["h:2223"]})


def test_learning_rate_warmup_formula(monkeypatch):
    """size 4, initial 0.4, 5 warm-up epochs: lr = 0.4/4 * (1 + e * 3/5): 0.1 at e=0, 0.16 at e=1,
    0.25 at e=2.5, 0.4 from e=5 on."""
    from kestimator.distributed.callbacks import LearningRateWarmupCallback
    monkeypatch.setattr(_runtime.STATE, "size", 4)
    cb = LearningRateWarmupCallback(0.4, warmup_epochs=5)
    assert [round(cb.rate(e), 10) for e in (0, 1, 2.5, 5, 7)] == [0.1, 0.16, 0.25, 0.4, 0.4]

    class Model:
        def __init__(self):
            self.rates = []

        def _set_learning_rate(self, v):
            self.rates.append(round(v, 10))

    cb.set_model(Model())
    cb.set_params({"steps": 4})
    cb.on_epoch_begin(1)
    cb.on_train_batch_begin(2)          # epoch 1.5 -> 0.1 * (1 + 1.5 * 0.6) = 0.19
    cb.on_epoch_begin(5)
    cb.on_train_batch_begin(0)          # past the warm-up: untouched
    cb.on_epoch_end(4)                  # the last warm-up epoch ends: exactly initial_lr
    assert cb.model.rates == [0.19, 0.4]


def test_importing_the_package_loads_neither_mpi4py_nor_the_engine():
    """`ks.distributed.rank()` in a boosted-trees or data script must stay cheap."""
    import subprocess
    import os
    code = ("import sys, kestimator.distributed as kd; kd.rank(); print(sorted(m for m in sys.modules "
            "if m.startswith(('mpi4py', 'kestimator.engine', 'kestimator.models'))))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
