"""The GPU seam, run on a fake CuPy (tests/gpu/fake_device.py) that keeps "device" arrays apart from host ones.

The fake raises where CuPy raises (a host array in a device op, an array of another device), counts the
host <-> device copies and enforces memory limits, so these tests show where values live and move. The
kernels' CUDA sources are checked separately (test_cuda_kernels.py); real-GPU runs are in test_real_gpu.py.
"""
import logging
import re

import numpy as np
import pytest

import kestimator as ks
from kestimator import engine as ke
from kestimator.engine import devices
from kestimator.errors import InvalidArgumentError, ResourceExhaustedError

GPU0 = "/job:localhost/replica:0/task:0/device:GPU:0"
CPU0 = "/job:localhost/replica:0/task:0/device:CPU:0"
R = np.random.default_rng(3)
X = R.normal(size=(16, 6)).astype(np.float32)
Y = R.integers(0, 3, size=16).astype(np.int32)


def _plan(sess):
    return list(sess._plans.values())[-1]


def _mlp(device, optimizer=None, seed=0):
    """A 6 -> 5 relu -> 3 softmax classifier; returns (graph, x, y, train, loss, init, weights)."""
    g = ke.Graph()
    with g.as_default():
        ke.set_random_seed(seed)
        x = ke.placeholder(ke.float32, [None, 6], name="x")
        y = ke.placeholder(ke.int32, [None], name="y")
        with ke.device(device):
            w1 = ke.get_variable("w1", [6, 5])
            b1 = ke.get_variable("b1", [5], initializer=ke.constant_initializer(0.1))
            w2 = ke.get_variable("w2", [5, 3])
            h = ke.nn.relu(ke.matmul(x, w1) + b1)
            loss = ke.reduce_mean(ke.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=ke.matmul(h, w2)))
            train = (optimizer or ks.optimizers.Adam(0.05)).minimize(loss)
        init = ke.global_variables_initializer()
    return g, x, y, train, loss, init, [w1, b1, w2]


def _train(device, steps=5, optimizer=None):
    g, x, y, train, loss, init, weights = _mlp(device, optimizer)
    sess = ke.Session(graph=g)
    sess.run(init)
    step = sess.make_callable([train, loss], [x, y])
    losses = [float(step(X, Y)[1]) for _ in range(steps)]
    return sess, losses, [sess.run(w) for w in weights], weights


def test_without_a_backend_there_is_no_gpu():
    devices.register_backend("GPU", None)
    try:
        assert devices.gpu_count() == 0 and ks.config.list_physical_devices("GPU") == []
    finally:
        devices.reset_backend()


def test_the_backend_reports_its_devices(fake_gpu):
    assert devices.gpu_count() == 2
    assert [d.name for d in ks.config.list_physical_devices("GPU")] == ["/physical_device:GPU:0",
                                                                         "/physical_device:GPU:1"]
    assert devices.array_module(GPU0) is devices.gpu_backend().xp
    with pytest.raises(InvalidArgumentError, match="only the GPU"):
        devices.register_backend("TPU", fake_gpu)


def test_feeds_move_once_per_step_and_fetches_come_back_as_numpy(fake_gpu):
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 6])
        with ke.device("/gpu:0"):
            a = ke.exp(x)          # three GPU readers of the same feed
            b = x * 2.0
            c = ke.reduce_sum(x, axis=1)
        d = x + 1.0                # and one CPU reader, which gets the host feed itself
    sess = ke.Session(graph=g)
    step = sess.make_callable([a, b, c, d], [x])
    step(X)   # compile
    fake_gpu.stats.reset()
    for _ in range(3):
        out = step(X)
    assert fake_gpu.stats.h2d == 3          # one copy of the feed per step, not one per reader
    assert fake_gpu.stats.d2h == 3 * 3      # only the three fetched device values come back
    for got, want in zip(out, [np.exp(X), X * 2, X.sum(1), X + 1]):
        assert type(got) is np.ndarray      # never a device array
        np.testing.assert_allclose(got, want, rtol=1e-6)
    plan = _plan(sess)
    assert plan.source.count("_h2d") == 1 and plan.transfers == 1


def test_kernels_buffers_and_constants_live_on_the_device(fake_gpu):
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [4, 6])
        with ke.device("/gpu:0"):
            y = ke.matmul(ke.nn.relu(x * ke.constant(np.full((4, 6), 3.0, np.float32))), ke.constant(X[:6]))
            z = ke.reduce_sum(y)
    sess = ke.Session(graph=g)
    got = sess.run(z, {x: X[:4]})
    np.testing.assert_allclose(got, (np.maximum(X[:4] * 3, 0) @ X[:6]).sum(), rtol=1e-5)
    plan = _plan(sess)
    ns = plan._fn.__globals__
    assert plan.buffer_names and all(isinstance(ns[b], fake_gpu.ndarray) for b in plan.buffer_names)
    used = set(re.findall(r"\bc\d+\b", plan.source))   # the constants the kernels are called with
    assert used and all(isinstance(ns[c], fake_gpu.ndarray) for c in used)   # copied once, at compile time
    assert all(plan.devices[op] == GPU0 for op in plan.ops if op.type in ("MatMul", "Relu", "Sum"))


def test_variables_live_on_the_device_in_one_slab(fake_gpu):
    sess, _, _, weights = _train("/gpu:0", steps=1)
    arrays = [sess._values[w.op] for w in weights]
    assert all(isinstance(a, fake_gpu.ndarray) and a.device.id == 0 for a in arrays)
    roots = {id(a.base if a.base is not None and isinstance(a.base, fake_gpu.ndarray) else a) for a in arrays}
    assert len(roots) == 1   # views of one device slab, as on the CPU
    assert type(sess._read_variable(weights[0])) is np.ndarray   # Session reads give NumPy copies
    weights[0].load(np.zeros((6, 5), np.float32), sess)
    assert isinstance(sess._values[weights[0].op], fake_gpu.ndarray)
    np.testing.assert_array_equal(sess.run(weights[0]), np.zeros((6, 5)))


def test_training_on_the_device_matches_the_cpu(fake_gpu):
    _, cpu_losses, cpu_weights, _ = _train("")
    _, gpu_losses, gpu_weights, _ = _train("/gpu:0")
    # float32 throughout; the CPU's Adam is the numba loop, the fake device's the NumPy array code (another
    # order of the same operations), so the trajectories agree to a few float32 ulps, not bit for bit
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-5)
    for a, b in zip(gpu_weights, cpu_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert cpu_losses[-1] < cpu_losses[0]


@pytest.mark.parametrize("make", [
    lambda: ks.optimizers.SGD(0.1), lambda: ks.optimizers.SGD(0.1, momentum=0.9),
    lambda: ks.optimizers.SGD(0.1, momentum=0.9, nesterov=True), lambda: ks.optimizers.Adagrad(0.1),
    lambda: ks.optimizers.RMSprop(0.01), lambda: ks.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    lambda: ks.optimizers.Adam(0.05, amsgrad=True), lambda: ks.optimizers.AdamW(0.05),
    lambda: ks.optimizers.Ftrl(0.1), lambda: ks.optimizers.Adam(0.05, clipnorm=0.5)],
    ids=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_centered", "amsgrad", "adamw", "ftrl",
         "adam_clipnorm"])
def test_every_optimizer_updates_device_slabs_like_the_cpu(fake_gpu, make):
    # without compiled kernels the optimizers run their array code on the device arrays
    _, cpu_losses, cpu_weights, _ = _train("", steps=4, optimizer=make())
    sess, gpu_losses, gpu_weights, weights = _train("/gpu:0", steps=4, optimizer=make())
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-5)
    for a, b in zip(gpu_weights, cpu_weights):   # float32; numba on the CPU vs array code: see above
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert all(isinstance(sess._values[w.op], fake_gpu.ndarray) for w in weights)


def test_checkpoints_are_identical_whichever_device_wrote_them(fake_gpu, tmp_path):
    files = []
    for device in ("", "/gpu:0"):
        sess, _, _, _ = _train(device, steps=3, optimizer=ks.optimizers.SGD(0.1, momentum=0.9))
        with sess.graph.as_default():
            saver = ke.train.Saver()
        files.append(saver.save(sess, str(tmp_path / f"model{'_gpu' if device else ''}.ckpt"), write_state=False))
    with open(files[0], "rb") as a, open(files[1], "rb") as b:
        assert a.read() == b.read()
    # and a checkpoint restores onto the device
    sess, _, _, weights = _train("/gpu:0", steps=1, optimizer=ks.optimizers.SGD(0.1, momentum=0.9))
    with sess.graph.as_default():
        ke.train.Saver().restore(sess, files[0])
    assert isinstance(sess._values[weights[0].op], fake_gpu.ndarray)
    _, _, cpu_weights, _ = _train("", steps=3, optimizer=ks.optimizers.SGD(0.1, momentum=0.9))
    np.testing.assert_array_equal(sess.run(weights[0]), cpu_weights[0])


def test_cross_device_edges_get_one_copy_each(fake_gpu):
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [4, 6])
        with ke.device("/gpu:0"):
            a = ke.exp(x)
        with ke.device("/gpu:1"):
            b = a * 3.0 + a       # two readers of `a` on GPU:1: one peer copy
        with ke.device("/cpu:0"):
            c = ke.tanh(b) - b    # two readers of `b` on the CPU: one copy back
    sess = ke.Session(graph=g)
    got = sess.run(c, {x: X[:4]})
    e = np.exp(X[:4]) * 4
    np.testing.assert_allclose(got, np.tanh(e) - e, rtol=1e-6)
    plan = _plan(sess)
    assert plan.source.count("_d2d") == 1 and plan.source.count("_d2h") == 1 and plan.source.count("_h2d") == 1
    assert {plan.devices[op] for op in plan.ops if op.type == "Mul"} == {GPU0.replace("GPU:0", "GPU:1")}
    ns = plan._fn.__globals__
    gpu1_buffers = [ns[n] for n in plan.buffer_names if isinstance(ns[n], fake_gpu.ndarray) and ns[n].device.id == 1]
    assert gpu1_buffers   # GPU:1's ops got buffers on GPU:1


def test_log_device_placement_shows_the_gpu(fake_gpu, capsys):
    g = ke.Graph()
    with g.as_default():
        a = ke.constant([[1.0, 2.0]])
        with ke.device("/device:GPU:0"):
            d = ke.matmul(a, a, transpose_b=True, name="gpu_product")
    with ke.Session(graph=g, config=ke.ConfigProto(log_device_placement=True)) as sess:
        assert sess.run(d).tolist() == [[5.0]]
    assert f"gpu_product: (MatMul): {GPU0}" in capsys.readouterr().err.splitlines()


def test_ops_without_a_gpu_kernel_fall_back_softly_and_fail_strictly(fake_gpu, caplog):
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [3, 2])
        with ke.device("/gpu:0"):
            s = ke.shape(x, name="the_shape")      # host-only: returns host metadata
            y = ke.cast(s, ke.float32) * 2.0
    with caplog.at_level(logging.WARNING, logger="kestimator.engine.placement"):
        with ke.Session(graph=g, config=ke.ConfigProto(allow_soft_placement=True)) as sess:
            np.testing.assert_array_equal(sess.run(y, {x: X[:3, :2]}), [6.0, 4.0])
            plan = _plan(sess)
    assert plan.devices[s.op] == CPU0 and plan.devices[y.op] == GPU0
    assert any("the_shape (Shape)" in r.getMessage() and "runs on the CPU" in r.getMessage() for r in caplog.records)
    with ke.Session(graph=g, config=ke.ConfigProto(allow_soft_placement=False)) as sess:
        with pytest.raises(InvalidArgumentError, match=r"the_shape \(Shape\).*no GPU kernel"):
            sess.run(y, {x: X[:3, :2]})


def test_a_missing_gpu_is_still_a_placement_error(fake_gpu):
    g = ke.Graph()
    with g.as_default():
        with ke.device("/gpu:5"):
            d = ke.constant([1.0]) * 2.0
    with ke.Session(graph=g, config=ke.ConfigProto(allow_soft_placement=True)) as sess:
        assert sess.run(d).tolist() == [2.0]
    with ke.Session(graph=g) as sess:
        with pytest.raises(InvalidArgumentError, match="GPU:5.*2 GPUs"):
            sess.run(d)


def test_device_count_zero_keeps_a_session_on_the_cpu(fake_gpu):
    g, x, y, train, loss, init, weights = _mlp("/gpu:0")
    sess = ke.Session(graph=g, config=ke.ConfigProto(device_count={"GPU": 0}, allow_soft_placement=True))
    sess.run(init)
    sess.run(train, {x: X, y: Y})
    assert type(sess._values[weights[0].op]) is np.ndarray


def test_variables_written_together_are_placed_together(fake_gpu):
    # the weights are pinned to GPU:1; the optimizer's slots, step and learning rate are not, and follow them
    sess, _, _, weights = _train("/gpu:1", steps=1)
    for op, arr in sess._values.items():
        assert isinstance(arr, fake_gpu.ndarray) and arr.device.id == 1, op.name
    g = ke.Graph()
    with g.as_default():
        with ke.device("/gpu:0"):
            a = ke.Variable([1.0], name="a")
        with ke.device("/gpu:1"):
            b = ke.Variable([2.0], name="b")
        loss = ke.reduce_sum(a * b)
        train = ks.optimizers.SGD(0.1).minimize(loss)
        init = ke.global_variables_initializer()
    with ke.Session(graph=g) as sess:
        sess.run(init)
        with pytest.raises(InvalidArgumentError, match=r"different devices \(GPU:0, GPU:1\): .*\ba, b\b"):
            sess.run(train)


def test_memory_fraction_caps_the_pool_and_overflow_names_the_op(fake_gpu):
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 1024])
        with ke.device("/gpu:0"):
            y = ke.matmul(x, ke.constant(np.ones((1024, 1024), np.float32)), name="big_product")
    config = ke.ConfigProto(gpu_options=ke.GPUOptions(per_process_gpu_memory_fraction=0.004))   # ~4.3 MB
    with ke.Session(graph=g, config=config) as sess:
        assert fake_gpu.get_default_memory_pool().get_limit() == int((1 << 30) * 0.004)
        assert sess.run(y, {x: np.ones((2, 1024), np.float32)}).shape == (2, 1024)   # fits
        with pytest.raises(ResourceExhaustedError, match=r"big_product \(MatMul\).*\(2048, 1024\)"):
            sess.run(y, {x: np.ones((2048, 1024), np.float32)})   # the 8 MB output buffer does not
    fake_gpu.get_default_memory_pool().set_limit(fraction=1.0)
    with pytest.raises(InvalidArgumentError, match="fraction"):
        devices.set_memory_fraction(1.5)


def test_out_of_memory_inside_a_kernel_names_the_op_and_shapes(fake_gpu):
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [None, 256])
        with ke.device("/gpu:0"):
            y = ke.reduce_sum(ke.nn.softmax(x, name="wide_softmax") * 2.0)
    with ke.Session(graph=g) as sess:
        sess.run(y, {x: np.ones((4, 256), np.float32)})
        fake_gpu.get_default_memory_pool().set_limit(size=fake_gpu.get_default_memory_pool().used_bytes() + 1024)
        with pytest.raises(ResourceExhaustedError, match=r"out of memory.*\((\d+|None), 256\) float32"):
            sess.run(y, {x: np.ones((4096, 256), np.float32)})


def test_default_device_puts_unpinned_ops_on_the_gpu(fake_gpu):
    devices.set_default_device("/gpu:0")
    sess, losses, _, weights = _train("", steps=2)
    assert isinstance(sess._values[weights[0].op], fake_gpu.ndarray)
    assert all(name == GPU0 for op, name in _plan(sess).devices.items() if op.type in ("MatMul", "ApplyOptimizer"))
    devices.set_default_device("")
    _, cpu_losses, _, _ = _train("", steps=2)
    np.testing.assert_allclose(losses, cpu_losses, rtol=1e-6)


def test_the_debugger_and_feeds_of_device_arrays_see_numpy(fake_gpu):
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [2, 6])
        with ke.device("/gpu:0"):
            y = ke.tanh(x) * 2.0
    with ke.Session(graph=g) as sess:
        dev_feed = fake_gpu.asarray(X[:2])
        np.testing.assert_allclose(sess.run(y, {x: dev_feed}), np.tanh(X[:2]) * 2, rtol=1e-6)
        plan = sess._plan_for([y], [], [x], [X[:2]], trace=True)
        plan.run([X[:2]])
        assert all(type(v) is np.ndarray for v in plan.traced.values())


def test_eager_execution_stays_on_the_cpu(fake_gpu):
    ke.enable_eager_execution()
    with ke.device("/gpu:0"):
        v = ke.exp(ke.constant([0.0, 1.0]))
    assert type(v.numpy()) is np.ndarray
    np.testing.assert_allclose(v.numpy(), [1.0, np.e], rtol=1e-6)


def _host_only_ops():
    """Two test ops registered with gpu=False (once per process): a pure one and one writing a variable."""
    from kestimator.engine.registry import register, registered_ops

    def double(xp, attrs):
        def run(x):
            assert type(x) is np.ndarray, "a gpu=False kernel must get host arrays"
            return np.asarray(x) * 2
        return run

    def accumulate(xp, attrs):
        def run(ref, value):
            ref += np.asarray(value)
            return ref
        return run
    ops = registered_ops()
    if "TestHostDouble" not in ops:
        register("TestHostDouble", infer=lambda i, a: [(i[0].shape, i[0].dtype)], kernel=double, gpu=False)
        register("TestHostAccumulate", infer=lambda i, a: [(i[0].shape, i[0].dtype)], kernel=accumulate, gpu=False,
                 stateful=True, writes_input=0)


def test_an_op_registered_with_gpu_false_runs_on_the_host_between_device_ops(fake_gpu):
    from kestimator.engine.registry import apply_op
    _host_only_ops()
    g = ke.Graph()
    with g.as_default():
        x = ke.placeholder(ke.float32, [2, 6])
        with ke.device("/gpu:0"):
            y = ke.exp(apply_op("TestHostDouble", [ke.tanh(x)], name="host_double"))
    with ke.Session(graph=g, config=ke.ConfigProto(allow_soft_placement=True)) as sess:
        np.testing.assert_allclose(sess.run(y, {x: X[:2]}), np.exp(2 * np.tanh(X[:2])), rtol=1e-6)
        plan = _plan(sess)
    assert plan.devices[y.op.inputs[0].op] == CPU0 and plan.devices[y.op] == GPU0
    assert plan.source.count("_d2h") == 1 and plan.source.count("_h2d") == 2   # feed in, tanh out, back in
    with ke.Session(graph=g) as sess:
        with pytest.raises(InvalidArgumentError, match=r"host_double \(TestHostDouble\).*gpu=False"):
            sess.run(y, {x: X[:2]})


def test_variables_written_by_host_only_ops_stay_on_the_host(fake_gpu):
    from kestimator.engine.registry import apply_op
    _host_only_ops()
    devices.set_default_device("/gpu:0")
    g = ke.Graph()
    with g.as_default():
        total = ke.Variable(np.zeros(3, np.float32), name="total", trainable=False)
        update = apply_op("TestHostAccumulate", [total._as_tensor(), ke.constant(np.ones(3, np.float32))])
        init = ke.global_variables_initializer()
    with ke.Session(graph=g) as sess:
        sess.run(init)
        sess.run(update)
        assert type(sess._values[total.op]) is np.ndarray   # it follows the op that writes it
        np.testing.assert_array_equal(sess.run(total), [1, 1, 1])
    g = ke.Graph()
    with g.as_default():
        with ke.device("/gpu:0"):   # pinned explicitly: the pin wins, and the host-only writer cannot follow
            pinned = ke.Variable(np.zeros(3, np.float32), name="pinned", trainable=False)
        update = apply_op("TestHostAccumulate", [pinned._as_tensor(), ke.constant(np.ones(3, np.float32))],
                          name="accumulate")
        init = ke.global_variables_initializer()
    with ke.Session(graph=g) as sess:
        sess.run(init)
        with pytest.raises(InvalidArgumentError, match=r"accumulate \(TestHostAccumulate\) writes variables on "
                                                       r".*GPU:0 but cannot run on a GPU"):
            sess.run(update)
