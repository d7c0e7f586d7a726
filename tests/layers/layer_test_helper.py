"""`run_layer_test`: the contract every layer goes through.

For one layer class and its arguments it checks
  1. the symbolic output shape (functional API, batch None) and the concrete output shape;
  2. the maths against a NumPy reference, in float64 (the layer built with dtype="float64", same
     weights; tolerance `rtol`/`atol`, tight by default) and in float32 (tolerance 1e-5 relative);
  3. eager execution gives the graph result;
  4. a config round trip: `from_config(get_config())` (and registry serialize -> JSON -> deserialize)
     with the same weights gives the same output;
  5. a weights round trip: get_weights / set_weights, and through an HDF5 file written with h5py in
     Keras's layout (group <layer name>, datasets named by weight.name, attribute weight_names);
  6. count_params (against `expected_count_params` when given);
  7. one gradient-descent step in a graph on a scalar loss changes every trainable weight and lowers
     the loss.
"""
import json

import numpy as np

from kestimator import engine as ke
from kestimator.engine import eager
from kestimator.layers import KerasTensor, base, registry


def _run_graph(layer, x, training=False, dtype=None):
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(dtype or x.dtype, [None] + list(x.shape[1:]))
        y = layer(ph, training=training)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            return sess.run(y, {ph: x})


def _same_weights(dst, src):
    dst.set_weights(src.get_weights())


def _make(layer_cls, kwargs, dtype=None):
    kw = dict(kwargs)
    if dtype is not None:
        kw["dtype"] = dtype
    return layer_cls(**kw)


def _h5_round_trip(layer, tmp_path):
    import h5py
    path = str(tmp_path / f"{layer.name}.h5")
    with h5py.File(path, "w") as f:
        grp = f.create_group(layer.name)
        grp.attrs["weight_names"] = np.array([w.name.encode("utf8") for w in layer.weights], dtype="S")
        for w, value in zip(layer.weights, layer.get_weights()):
            grp.create_dataset(w.name, data=value)
    with h5py.File(path, "r") as f:
        grp = f[layer.name]
        names = [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in grp.attrs["weight_names"]]
        return names, [np.asarray(grp[n]) for n in names]


def run_layer_test(layer_cls, kwargs=None, input_shape=None, input_data=None, expected_output_shape=None,
                   numpy_reference=None, expected_count_params=None, rtol=1e-10, atol=1e-12,
                   tmp_path=None, train=True, float64=True, input_dtype="float32", prepare=None,
                   seed=0, custom_objects=None):
    """Run the layer contract; returns the layer built in float32 (for extra checks by the caller).

    Args:
        layer_cls, kwargs: the layer to test.
        input_shape: full input shape including the batch size (random normal data is drawn), or
        input_data: the input array.
        expected_output_shape: the output shape with None for the batch dimension.
        numpy_reference: ``ref(x_float64, weights_float64_list) -> array`` of the layer's maths.
        expected_count_params: Keras's parameter count for this configuration.
        rtol, atol: float64 comparison tolerance.
        tmp_path: pytest's tmp_path for the HDF5 round trip.
        train: run the gradient-descent step (layers with trainable weights).
        float64: the layer supports dtype="float64" (compare the reference in float64).
        prepare: ``prepare(layer)`` after building, e.g. to set non-trivial moving statistics.
        custom_objects: what deserialization needs beyond kestimator's registry (a Lambda's function).
    """
    kwargs = dict(kwargs or {})
    rng = np.random.default_rng(seed)
    if input_data is None:
        input_data = rng.standard_normal(input_shape).astype(input_dtype)
    x = np.asarray(input_data)
    base.set_random_seed(seed)

    # 1. symbolic and concrete shapes
    layer = _make(layer_cls, kwargs)
    kt = layer(KerasTensor((None,) + x.shape[1:], x.dtype if x.dtype.kind != "f" else "float32"))
    if expected_output_shape is not None:
        assert tuple(kt.shape) == tuple(expected_output_shape), (tuple(kt.shape), expected_output_shape)
    if prepare is not None:
        prepare(layer)
    y32 = _run_graph(layer, x)
    if expected_output_shape is not None:
        want = tuple(x.shape[0] if d is None else d for d in expected_output_shape)
        assert y32.shape == want, (y32.shape, want)

    # 2. the maths against NumPy, float64 then float32
    if numpy_reference is not None:
        weights64 = [np.asarray(w, np.float64) if np.asarray(w).dtype.kind == "f" else np.asarray(w)
                     for w in layer.get_weights()]
        x64 = x.astype(np.float64) if x.dtype.kind == "f" else x
        expected = np.asarray(numpy_reference(x64, weights64))
        if float64:
            layer64 = _make(layer_cls, kwargs, dtype="float64")
            layer64(KerasTensor((None,) + x.shape[1:], "float64" if x.dtype.kind == "f" else x.dtype))
            layer64.set_weights(weights64)
            y64 = _run_graph(layer64, x64)
            assert y64.dtype == np.float64
            np.testing.assert_allclose(y64, expected, rtol=rtol, atol=atol)
        # float32: rounding of inputs and weights to float32 bounds the error (1e-5 relative, 1e-5 absolute)
        np.testing.assert_allclose(y32, expected, rtol=1e-5, atol=1e-5)

    # 3. eager execution gives the same values
    eager.enable_eager_execution()
    try:
        y_eager = layer(x)
        y_eager = y_eager.numpy() if hasattr(y_eager, "numpy") else np.asarray(y_eager)
    finally:
        eager.disable_eager_execution()
    np.testing.assert_allclose(y_eager, y32, rtol=1e-6, atol=1e-6)

    # 4. config round trips
    config = layer.get_config()
    with registry.custom_object_scope(custom_objects):
        clone = layer_cls.from_config(config)
    clone(KerasTensor((None,) + x.shape[1:], x.dtype if x.dtype.kind != "f" else "float32"))
    _same_weights(clone, layer)
    np.testing.assert_array_equal(_run_graph(clone, x), y32)
    text = json.dumps(registry.serialize(layer))
    clone2 = registry.deserialize(json.loads(text), custom_objects=custom_objects)
    assert type(clone2) is layer_cls
    assert json.loads(json.dumps(clone2.get_config())) == json.loads(json.dumps(config))

    # 5. weights round trips
    weights = layer.get_weights()
    other = _make(layer_cls, kwargs)
    other(KerasTensor((None,) + x.shape[1:], x.dtype if x.dtype.kind != "f" else "float32"))
    other.set_weights(weights)
    for a, b in zip(other.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    if tmp_path is not None:
        names, arrays = _h5_round_trip(layer, tmp_path)
        assert names == [w.name for w in layer.weights]
        third = _make(layer_cls, kwargs)
        third(KerasTensor((None,) + x.shape[1:], x.dtype if x.dtype.kind != "f" else "float32"))
        third.set_weights(arrays)
        np.testing.assert_array_equal(_run_graph(third, x), y32)

    # 6. parameter count
    n = sum(int(np.prod(w.shape)) for w in layer.weights)
    assert layer.count_params() == n
    if expected_count_params is not None:
        assert n == expected_count_params, (n, expected_count_params)

    # 7. one training step
    if train and layer.trainable_weights:
        _check_training_step(layer, x, rng)
    return layer


def _check_training_step(layer, x, rng):
    from kestimator import optimizers
    before = {w.name: w.numpy() for w in layer.trainable_weights}
    g = ke.Graph()
    with g.as_default():
        ph = ke.placeholder(x.dtype, [None] + list(x.shape[1:]))
        y = layer(ph, training=True)
        y = y[0] if isinstance(y, (list, tuple)) else y
        target = rng.standard_normal([x.shape[0]] + list(y.shape[1:])).astype(np.float32)
        loss = ke.reduce_mean(ke.square(y - target))
        for extra in layer.graph_losses(g):
            loss = loss + extra
        var_list = [w.variable(g) for w in layer.trainable_weights]
        train_op = optimizers.SGD(learning_rate=1e-2).minimize(loss, var_list=var_list)
        updates = layer.graph_updates(g)
        with ke.Session(graph=g) as sess:
            sess.run(ke.global_variables_initializer())
            for w in layer.weights:
                w._attach(sess, w.variable(g))
            try:
                loss0 = sess.run(loss, {ph: x})
                sess.run([train_op] + updates, {ph: x})
                loss1 = sess.run(loss, {ph: x})
                after = {w.name: w.numpy() for w in layer.trainable_weights}
            finally:
                for w in layer.weights:
                    w._detach()
    assert loss1 < loss0, (loss0, loss1)
    for name, value in before.items():
        assert not np.array_equal(after[name], value), f"weight {name} did not change"
    # the values trained in the session are now the layer's values
    for w in layer.trainable_weights:
        np.testing.assert_array_equal(w.numpy(), after[w.name])
