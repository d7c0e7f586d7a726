"""Devices: device strings, placement (logging, soft and strict), and ks.config (devices, threads, seeds)."""
import numpy as np
import pytest

from kestimator import config
from kestimator import engine as ke
from kestimator.engine import devices
from kestimator.errors import InvalidArgumentError

CPU0 = "/job:localhost/replica:0/task:0/device:CPU:0"


@pytest.mark.parametrize("spec,canonical", [
    ("/cpu:0", CPU0), ("/device:CPU:0", CPU0), ("/CPU:0", CPU0), ("/gpu:1", CPU0.replace("CPU:0", "GPU:1")),
    ("/job:worker/replica:2/task:3/device:GPU:0", "/job:worker/replica:2/task:3/device:GPU:0"),
    ("/device:GPU:*", CPU0.replace("CPU:0", "GPU:0")), ("", "")])
def test_canonical_device(spec, canonical):
    assert devices.canonical_device(spec) == canonical


@pytest.mark.parametrize("spec", ["/tpu:0", "gpu0", "/device:GPU", "/job:x/foo"])
def test_bad_device_strings(spec):
    with pytest.raises(InvalidArgumentError, match="unknown device"):
        devices.canonical_device(spec)


def test_log_device_placement(fresh_graph, capsys):
    a = ke.constant(np.ones((2, 3), np.float32), name="a")
    b = ke.constant(np.ones((3, 2), np.float32), name="b")
    x = ke.placeholder(ke.float32, [2, 3], name="x")
    c = ke.matmul(a, b)
    d = ke.matmul(x, b, name="fed_product")
    with ke.Session(config=ke.ConfigProto(log_device_placement=True)) as sess:
        sess.run([c, d], {x: np.ones((2, 3))})
    err = capsys.readouterr().err.splitlines()
    # every op the fetch needs is placed and logged, also one that constant folding then removes
    assert f"MatMul: (MatMul): {CPU0}" in err
    assert f"fed_product: (MatMul): {CPU0}" in err


def test_gpu_placement_soft_and_strict(fresh_graph):
    a = ke.constant([[1.0, 2.0]])
    with ke.device("/device:GPU:0"):
        d = ke.matmul(a, a, transpose_b=True)
    soft = ke.ConfigProto(allow_soft_placement=True)
    with ke.Session(config=soft) as sess:
        assert sess.run(d).tolist() == [[5.0]]
    if devices.gpu_count() == 0:
        with ke.Session(config=ke.ConfigProto(allow_soft_placement=False)) as sess:
            with pytest.raises(InvalidArgumentError, match="GPU:0"):
                sess.run(d)
    else:   # with a GPU the strict placement is satisfiable and runs
        with ke.Session(config=ke.ConfigProto(allow_soft_placement=False)) as sess:
            assert sess.run(d).tolist() == [[5.0]]


def test_physical_and_logical_devices():
    cpus = config.list_physical_devices("CPU")
    assert cpus == [config.PhysicalDevice("/physical_device:CPU:0", "CPU")]
    gpus = config.list_physical_devices("GPU")
    assert len(gpus) == devices.gpu_count()
    assert config.list_physical_devices() == cpus + gpus
    assert config.list_physical_devices("cpu") == cpus   # case-insensitive, as TF
    logical = config.list_logical_devices()
    assert logical[0] == config.LogicalDevice(CPU0, "CPU") and len(logical) == 1 + len(gpus)
    with pytest.raises(InvalidArgumentError, match="TPU"):
        config.list_physical_devices("TPU")
    assert ke.Session().list_devices() == logical


def test_set_visible_devices_cpu_only_hides_gpus():
    try:
        config.set_visible_devices([], "GPU")
        assert config.get_visible_devices("GPU") == [] and config.list_logical_devices("GPU") == []
        assert devices.gpu_count() == 0
        assert config.get_visible_devices("CPU") == config.list_physical_devices("CPU")
        with pytest.raises(InvalidArgumentError, match="not a physical device"):
            config.set_visible_devices([config.PhysicalDevice("/physical_device:GPU:7", "GPU")])
    finally:
        config.set_visible_devices(config.list_physical_devices("GPU"), "GPU")
    assert config.get_visible_devices() == config.list_physical_devices()


def test_memory_growth_only_on_gpus():
    cpu = config.list_physical_devices("CPU")[0]
    with pytest.raises(InvalidArgumentError, match="not a GPU"):
        config.experimental.set_memory_growth(cpu, True)
    for gpu in config.list_physical_devices("GPU"):
        config.experimental.set_memory_growth(gpu, True)
        assert config.experimental.get_memory_growth(gpu) is True


def test_intra_op_threads_limit_blas():
    threadpoolctl = pytest.importorskip("threadpoolctl")   # an optional extra ("fast")

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    before = blas_threads()
    assert before, "NumPy links a BLAS that threadpoolctl sees"
    try:
        config.threading.set_intra_op_parallelism_threads(1)
        assert config.threading.get_intra_op_parallelism_threads() == 1
        assert blas_threads() == [1] * len(before)
    finally:
        config.threading.set_intra_op_parallelism_threads(0)
    assert blas_threads() == before and config.threading.get_intra_op_parallelism_threads() == 0
    config.threading.set_inter_op_parallelism_threads(3)
    assert config.threading.get_inter_op_parallelism_threads() == 3
    config.threading.set_inter_op_parallelism_threads(0)
    with pytest.raises(InvalidArgumentError):
        config.threading.set_intra_op_parallelism_threads(-1)


def test_set_seed_makes_graphs_numpy_and_eager_repeatable():
    def sample():
        g = ke.Graph()   # created after set_seed: starts with the seed
        with g.as_default():
            r = ke.random_normal([4])
            u = ke.random_uniform([2])
        with ke.Session(graph=g) as sess:
            return np.concatenate([sess.run(r), sess.run(u)])
    config.set_seed(11)
    first, np_first = sample(), np.random.rand(3)
    config.set_seed(11)
    second, np_second = sample(), np.random.rand(3)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(np_first, np_second)
    config.set_seed(12)
    assert not np.array_equal(sample(), first)
    ke.enable_eager_execution()
    config.set_seed(5)
    e1 = ke.random_uniform([3]).numpy()
    config.set_seed(5)
    e2 = ke.random_uniform([3]).numpy()
    np.testing.assert_array_equal(e1, e2)
