"""Float64 central-difference gradient checks for engine ops (graph mode)."""
import numpy as np

from kestimator import engine as ke

EPS = 1e-6
RTOL, ATOL = 1e-5, 1e-7   # float64 central differences: truncation error ~eps^2, rounding ~1e-10/eps


def _weighted_sum(outputs, rng):
    """A scalar loss that weighs every output element differently, so each output's gradient is tested."""
    terms, weights = [], []
    for y in outputs:
        if y is None or not y.dtype.is_floating:
            continue
        w = ke.placeholder(ke.float64, name="loss_weight")
        weights.append(w)
        terms.append(ke.reduce_sum(y * w))
    return ke.add_n(terms), weights


def check_gradients(build, inputs, seed=0, order=1, rtol=RTOL, atol=ATOL):
    """Compare ke.gradients of sum(w * build(*xs)) with central differences.

    Args:
        build: function of placeholders returning a tensor or list of tensors.
        inputs: list of float64 arrays (one per placeholder).
        order: 2 checks the gradient of the gradient (exercising the gradient ops' own rules).
    Returns:
        The set of op types in the differentiated graph (for registry coverage).
    """
    rng = np.random.default_rng(seed)
    g = ke.Graph()
    with g.as_default():
        xs = [ke.placeholder(ke.float64, shape=np.shape(x), name=f"x{i}") for i, x in enumerate(inputs)]
        out = build(*xs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        loss, weights = _weighted_sum(outs, rng)
        grads = ke.gradients(loss, xs)
        extra = {}
        if order == 2:   # differentiate <w2, d loss / d x>: exercises every gradient op's own rule
            terms = []
            for i, gr in enumerate(grads):
                if gr is not None:
                    w2 = ke.placeholder(ke.float64, name="gw")
                    extra[w2] = np.shape(inputs[i])
                    terms.append(ke.reduce_sum(gr * w2))
            target = ke.add_n(terms)
            grads = ke.gradients(target, xs)
        else:
            target = loss
    with ke.Session(graph=g) as sess:
        fixed = {}
        for w, y in zip(weights, [o for o in outs if o is not None and o.dtype.is_floating]):
            shape = sess.run(y, {x: v for x, v in zip(xs, inputs)}).shape
            fixed[w] = rng.normal(size=shape)
        for w, shape in extra.items():
            fixed[w] = rng.normal(size=shape)

        def f(vals):
            feed = dict(fixed)
            feed.update({x: v for x, v in zip(xs, vals)})
            return float(sess.run(target, feed))

        def analytic(vals):
            feed = dict(fixed)
            feed.update({x: v for x, v in zip(xs, vals)})
            return sess.run([gr for gr in grads if gr is not None], feed)

        vals = [np.array(v, dtype=np.float64) for v in inputs]
        got = analytic(vals)
        gi = 0
        for i, gr in enumerate(grads):
            if gr is None:
                continue
            num = np.zeros_like(vals[i])
            it = np.nditer(vals[i], flags=["multi_index"])
            for _ in it:
                idx = it.multi_index
                orig = vals[i][idx]
                vals[i][idx] = orig + EPS
                up = f(vals)
                vals[i][idx] = orig - EPS
                down = f(vals)
                vals[i][idx] = orig
                num[idx] = (up - down) / (2 * EPS)
            np.testing.assert_allclose(got[gi], num, rtol=rtol, atol=atol,
                                       err_msg=f"gradient of input {i} (order {order})")
            gi += 1
    return {op.type for op in g.get_operations()}
