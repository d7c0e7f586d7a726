"""DistributedOptimizer and GradientReducer in one process, and the reducer's bucket exchange against a
simulated communicator (every rank contributing the same gradients, so the sum is size * g)."""
import numpy as np
import pytest

import kestimator.distributed as kd
from kestimator import engine as ke
from kestimator import optimizers
from kestimator.distributed import _fp16, _runtime
from kestimator.distributed.reducer import GradientReducer, flat_span
from kestimator.errors import InvalidArgumentError


def _train(optimizer, steps=5):
    g = ke.Graph()
    with g.as_default():
        ke.set_random_seed(3)
        x = ke.placeholder(ke.float32, [None, 4])
        y = ke.placeholder(ke.float32, [None, 2])
        w = ke.Variable(ke.random_normal([4, 2], seed=1), name="w")
        b = ke.Variable(ke.zeros([2]), name="b")
        loss = ke.reduce_mean(ke.square(ke.matmul(x, w) + b - y))
        train = optimizer.minimize(loss)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            rng = np.random.default_rng(0)
            step = sess.make_callable([train], feed_list=[x, y])
            for _ in range(steps):
                step(rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32))
            return sess.run([w, b])


@pytest.mark.parametrize("make", [lambda: optimizers.Adam(0.05), lambda: optimizers.SGD(0.1, momentum=0.9),
                                  lambda: optimizers.RMSprop(0.01, clipnorm=0.5)])
def test_one_process_distributed_optimizer_equals_the_plain_one(make):
    """With one rank the wrapper's update is the wrapped kernel on the same gradients: identical bits."""
    plain, dist = _train(make()), _train(kd.DistributedOptimizer(make()))
    for a, b in zip(plain, dist):
        assert a.tobytes() == b.tobytes()


def test_wrapper_keeps_the_wrapped_class_for_saving():
    opt = kd.DistributedOptimizer(optimizers.Adam(0.002, beta_1=0.8), compression="fp16")
    assert type(opt).__name__ == "Adam" and isinstance(opt, optimizers.Adam)
    assert isinstance(opt, kd.DistributedOptimizer) and opt.compression == "fp16"
    cfg = optimizers.serialize(opt)
    assert cfg["class_name"] == "Adam" and cfg["config"]["beta_1"] == 0.8 and cfg["config"]["learning_rate"] == 0.002
    again = optimizers.get(cfg)
    assert type(again) is optimizers.Adam
    assert type(type(opt).from_config(cfg["config"])) is optimizers.Adam
    plain = kd.unwrap(opt)
    assert type(plain) is optimizers.Adam and plain.beta_1 == 0.8 and kd.unwrap(plain) is plain
    assert type(kd.DistributedOptimizer("sgd")).__name__ == "SGD"
    with pytest.raises(InvalidArgumentError, match="already a DistributedOptimizer"):
        kd.DistributedOptimizer(opt)


@pytest.mark.parametrize("kwargs, match", [({"compression": "int8"}, "compression must be one of"),
                                           ({"backward_passes_per_step": 0}, "backward_passes_per_step"),
                                           ({"op": "max"}, "'average' or 'sum'"),
                                           ({"bucket_bytes": 4}, "bucket_bytes")])
def test_invalid_settings_fail_at_construction(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        kd.DistributedOptimizer(optimizers.SGD(0.1), **kwargs)


def test_the_plan_hands_the_gradient_slab_without_a_copy():
    """The update op asks for its gradients in one contiguous buffer: the reducer finds one flat span per
    dtype (nothing to pack) and its size is all parameters (4*2 + 2)."""
    opt = kd.DistributedOptimizer(optimizers.SGD(0.1))
    _train(opt, steps=2)
    (red,) = opt._reducers.values()
    assert red.names == ["w:0", "b:0"]
    assert len(red._sources) == 1 and red._sources[0] is not None and red._sources[0].size == 10


def test_backward_passes_accumulate_then_apply_the_mean():
    """loss = sum(w * c): the gradient is c. SGD(lr=1), two passes with c = [1, 2] then [3, 4]: after the
    first call nothing moves; after the second w = w0 - mean = [10, 10] - [2, 3] = [8, 7]."""
    g = ke.Graph()
    with g.as_default():
        c = ke.placeholder(ke.float32, [2])
        w = ke.Variable(np.array([10.0, 10.0], np.float32), name="w")
        opt = kd.DistributedOptimizer(optimizers.SGD(1.0), backward_passes_per_step=2)
        train = opt.minimize(ke.reduce_sum(w * c))
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            sess.run(train, {c: [1.0, 2.0]})
            assert sess.run(w).tolist() == [10.0, 10.0] and int(sess.run(opt.iterations)) == 0
            sess.run(train, {c: [3.0, 4.0]})
            assert sess.run(w).tolist() == [8.0, 7.0] and int(sess.run(opt.iterations)) == 1


def test_flat_span():
    slab = np.arange(10, dtype=np.float32)
    a, b = slab[:6].reshape(2, 3), slab[6:].reshape(4)
    span = flat_span([a, b])
    assert span is not None and np.shares_memory(span, slab) and span.size == 10
    assert flat_span([b, a]) is None                                   # not in memory order
    assert flat_span([a, np.zeros(4, np.float32)]) is None             # another buffer
    assert flat_span([slab[:4].astype(np.float64)]) is not None        # one array alone is its own span


# -- the exchange against a simulated communicator ------------------------------------------------------------
class _FakeComm:
    """Every one of `size` ranks contributes the same data: allreduce(sum) = size * data."""

    def __init__(self, size):
        self.size, self.messages = size, []

    def Iallreduce(self, send, recv, op=None):
        if isinstance(send, list):          # [uint16 float16 bits, UINT16_T]: the fp16 wire format
            (send, _), (recv, _) = send, recv
            self.messages.append(("float16 bits", send.size))
            values = np.empty(send.size, np.float32)
            _fp16.decode(send, values)
            _fp16.encode(values * np.float32(self.size), 1.0, np.empty_like(values), recv)
            return None
        self.messages.append((send.dtype.name, send.size))
        np.multiply(send, send.dtype.type(self.size), out=recv)
        return None

    def Iallgather(self, send, recv):
        recv[...] = send          # identical metadata digests on every rank
        return None


class _FakeMPI:
    SUM = "sum"
    UINT16_T = "uint16"

    class Op:
        @staticmethod
        def Create(fn, commute):
            return fn

    class Request:
        @staticmethod
        def Waitall(requests):
            pass


@pytest.fixture
def three_ranks(monkeypatch):
    kd.init()
    comm = _FakeComm(3)
    st = _runtime.STATE
    for name, value in (("MPI", _FakeMPI), ("comm", comm), ("size", 3), ("inspector", None), ("checked", set())):
        monkeypatch.setattr(st, name, value)
    return comm


def _grads():
    rng = np.random.default_rng(1)
    return [rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=7), rng.normal(size=3).astype(np.float32)]


def test_buckets_split_each_dtype_in_a_fixed_order(three_ranks):
    """float32 tensors (20 + 3 elements) and a float64 one (7) with 64-byte buckets: float32 goes in
    16 + 7 elements, float64 in 7 (8 fit); the result is the average, shaped like the inputs."""
    grads = _grads()
    red = GradientReducer(["a:0", "b:0", "c:0"], bucket_bytes=64)
    out = red.reduce(grads)
    assert three_ranks.messages == [("float32", 16), ("float32", 7), ("float64", 7)]
    assert [o.shape for o in out] == [(5, 4), (7,), (3,)] and [o.dtype for o in out] == [g.dtype for g in grads]
    for o, g in zip(out, grads):
        np.testing.assert_allclose(o, g, rtol=1e-6)     # (3 * g) * (1/3)
    assert red.calls == 1 and red.messages == 3
    grads[0][0, 0] = 100.0                              # the packed copy is refreshed every call
    assert red.reduce(grads)[0][0, 0] == pytest.approx(100.0)


def test_sum_op_and_fp16_wire(three_ranks):
    grads = _grads()
    summed = GradientReducer(["a:0", "b:0", "c:0"], op="sum").reduce(grads)
    np.testing.assert_allclose(summed[1], 3 * grads[1])
    three_ranks.messages.clear()
    half = GradientReducer(["a:0", "b:0", "c:0"], compression="fp16").reduce(grads)
    wire = "float16 bits" if _fp16.kernels() is not None else "float16"
    assert three_ranks.messages == [(wire, 23), (wire, 7)]
    for o, g in zip(half, grads):
        assert o.dtype == g.dtype
        np.testing.assert_allclose(o, g, rtol=2e-3, atol=2e-3)   # float16: 11 significant bits


def test_passes_and_shape_changes(three_ranks):
    red = GradientReducer(["a:0"], backward_passes_per_step=2)
    assert red.reduce([np.array([1.0, 2.0])]) is None
    np.testing.assert_allclose(red.reduce([np.array([3.0, 6.0])])[0], [2.0, 4.0])   # mean of the two passes
    with pytest.raises(InvalidArgumentError, match=r"gradient of a:0 changed from float64 \(2,\) to float64 \(3,\)"):
        red.reduce([np.ones(3)])
    with pytest.raises(InvalidArgumentError, match="changed from float64 .2,. to float32 .2,."):
        red.reduce([np.ones(2, np.float32)])
    with pytest.raises(InvalidArgumentError, match="got 2 gradients for 1 variables"):
        GradientReducer(["a:0"]).reduce([np.ones(2), np.ones(2)])


# -- the float16 wire kernels ----------------------------------------------------------------------------------
def _every_half_and_its_neighbours():
    halves = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    halves = halves[np.isfinite(halves)]
    with np.errstate(invalid="ignore"):
        around = [np.nextafter(halves, np.float32(np.inf)), np.nextafter(halves, np.float32(-np.inf))]
    rng = np.random.default_rng(0)
    wide = rng.normal(size=20000).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 6, 20000).astype(np.float32)
    # exact ties between float16 neighbours (65520 rounds to inf), the smallest subnormals, specials
    specials = np.array([65504, 65519.996, 65520, 2.98e-8, 2.9802322e-8, 5.96e-8, 6.1035156e-5, np.inf, -np.inf,
                         0.0, -0.0], np.float32)
    return np.concatenate([halves, *around, wide, specials])


def test_fp16_encode_decode_match_numpy_bit_for_bit():
    if _fp16.kernels() is None:
        pytest.skip("numba is not installed: the fp16 wire uses NumPy's casts directly")
    values = _every_half_and_its_neighbours()
    bits = np.empty(values.size, np.uint16)
    _fp16.encode(values, 1.0, np.empty_like(values), bits)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    mismatch = np.nonzero(bits != expected)[0]
    assert mismatch.size == 0, (values[mismatch[:5]], bits[mismatch[:5]], expected[mismatch[:5]])
    nan_bits = np.empty(1, np.uint16)
    _fp16.encode(np.array([np.nan], np.float32), 1.0, np.empty(1, np.float32), nan_bits)
    assert np.isnan(nan_bits.view(np.float16)[0])
    every = np.arange(65536, dtype=np.uint16)
    decoded = np.empty(65536, np.float64)
    _fp16.decode(every, decoded)
    reference = every.view(np.float16).astype(np.float64)
    finite = ~np.isnan(reference)
    np.testing.assert_array_equal(decoded[finite], reference[finite])
    assert np.all(np.isnan(decoded[~finite]))


def test_fp16_sum_op_adds_in_float32_and_rounds_once():
    if _fp16.kernels() is None:
        pytest.skip("numba is not installed: MPI's own float16 SUM is used")
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 0x7C00, 5000).astype(np.uint16), rng.integers(0x8000, 0xFC00, 5000).astype(np.uint16)
    k = _fp16.kernels()
    out, scratch = b.copy(), np.empty(a.size, np.float32)
    k["add_bits"](a, out, k["table"], scratch, scratch.view(np.uint32))
    with np.errstate(over="ignore"):
        expected = (a.view(np.float16).astype(np.float32) + b.view(np.float16).astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(out, expected.view(np.uint16))
