"""The recurrent cells: one time step of SimpleRNN, LSTM and GRU with Keras's weight layout (gate order
i, f, c, o for LSTM; z, r, h for GRU; GRU's bias of shape (2, 3 * units) when reset_after=True).

`project` computes x @ kernel (+ input bias) for all steps at once; `step` adds the recurrent part.
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.initializers import Initializer
from ..engine.ops import array_ops as _a
from ..engine.ops import math_ops as _m
from ..engine.ops import reduce_ops as _r
from ..errors import InvalidArgumentError
from . import _ops
from . import _serialize as S
from ._context import draw_op_seed
from .base import Layer


class _UnitForgetBias(Initializer):
    """LSTM bias with ones for the forget gate and `base` for the other gates (Keras's unit_forget_bias)."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def sample(self, rng, shape, dtype):
        from .base import _sample
        u = self.units
        parts = [_sample(self.base, (u,), _dt.as_dtype(dtype)), np.ones((u,), dtype),
                 _sample(self.base, (2 * u,), _dt.as_dtype(dtype))]
        return np.concatenate(parts).astype(dtype)


def _gates(x, n, units):
    """The n blocks of `units` columns of x (one op; its gradient is one concat)."""
    return _ops.split(x, [units] * n, axis=1)


class _Cell(Layer):
    """Shared arguments and weights of the built-in cells; `gates` blocks of `units` columns."""

    gates = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        if self.units <= 0:
            raise InvalidArgumentError(f"{type(self).__name__} {self.name!r}: units must be positive, got {units}")
        self.activation = S.get_activation(activation)
        self.recurrent_activation = S.get_activation(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = S.get_initializer(kernel_initializer)
        self.recurrent_initializer = S.get_initializer(recurrent_initializer)
        self.bias_initializer = S.get_initializer(bias_initializer)
        self.kernel_regularizer = S.get_regularizer(kernel_regularizer)
        self.recurrent_regularizer = S.get_regularizer(recurrent_regularizer)
        self.bias_regularizer = S.get_regularizer(bias_regularizer)
        self.kernel_constraint = S.get_constraint(kernel_constraint)
        self.recurrent_constraint = S.get_constraint(recurrent_constraint)
        self.bias_constraint = S.get_constraint(bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        # op seeds of the input and recurrent dropout masks, repeatable after set_random_seed (see Dropout)
        self._dropout_seeds = (draw_op_seed(), draw_op_seed())

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        f = input_shape[-1]
        if f is None:
            raise InvalidArgumentError(f"{type(self).__name__} {self.name!r}: the feature dimension of the inputs "
                                       f"must be known, got {tuple(input_shape)}")
        n = self.gates * self.units
        self.kernel = self.add_weight("kernel", (f, n), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, n),
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = self.add_weight("bias", self._bias_shape(), initializer=self._bias_initializer(),
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint) \
            if self.use_bias else None

    # -- the fast path used by the RNN layer: project all steps at once, then step --------------------------
    def project(self, x):
        """x @ kernel (+ the input bias) for x of shape (batch, features) or (batch, time, features)."""
        rank = x.shape.ndims
        if rank == 3:
            t = x.shape[1]
            y = _a.reshape(_r.matmul(_a.reshape(x, [-1, x.shape[-1]]), self.kernel), [-1, t, self.kernel.shape[1]])
        else:
            y = _r.matmul(x, self.kernel)
        b = self._input_bias()
        return y if b is None else _m.add(y, b)

    def _input_bias(self):
        return self.bias

    def call(self, inputs, states, training=None):
        """One step: (output, new_states) from inputs (batch, features) and the list of states."""
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        return self.step(self.project(inputs), states)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units, "activation": S.serialize_activation(self.activation),
            "recurrent_activation": S.serialize_activation(self.recurrent_activation),
            "use_bias": self.use_bias, **S.weights_config(self, "kernel", "recurrent", "bias"),
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout})
        return config


class SimpleRNNCell(_Cell):
    """h = activation(x @ kernel + h_prev @ recurrent_kernel + bias)."""

    gates = 1

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def step(self, xw, states):
        h = self.activation(_m.add(xw, _r.matmul(states[0], self.recurrent_kernel)))
        return h, [h]

    def get_config(self):
        config = super().get_config()
        config.pop("recurrent_activation")
        return config


class LSTMCell(_Cell):
    """Long short-term memory: gates i, f, c, o in that column order of kernel / recurrent_kernel / bias."""

    gates = 4

    def __init__(self, units, unit_forget_bias=True, implementation=2, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.implementation = int(implementation)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_initializer(self):
        if self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return self.bias_initializer

    def step(self, xw, states):
        h_prev, c_prev = states
        u = self.units
        z_i, z_f, z_g, z_o = _gates(_m.add(xw, _r.matmul(h_prev, self.recurrent_kernel)), 4, u)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_g)
        o = self.recurrent_activation(z_o)
        c = _m.add(_m.multiply(f, c_prev), _m.multiply(i, g))
        h = _m.multiply(o, self.activation(c))
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update({"unit_forget_bias": self.unit_forget_bias, "implementation": self.implementation})
        return config


class GRUCell(_Cell):
    """Gated recurrent unit: gates z, r, h. With reset_after=True (TF2 default) the reset gate multiplies
    the recurrent projection after the matrix product and the bias has shape (2, 3 * units): row 0 for the
    input projection, row 1 for the recurrent one."""

    gates = 3

    def __init__(self, units, reset_after=True, implementation=2, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)
        self.implementation = int(implementation)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _graph_cached(self, key, make):
        # slices of the weights are made once per graph (not once per time step)
        from ..engine import eager
        if eager.executing_eagerly():
            return make()
        from ..engine.graph import get_default_graph
        cache = get_default_graph().__dict__.setdefault("_keras_cell_cache", {})
        k = (id(self), key)
        if k not in cache:
            cache[k] = (self, make())
        return cache[k][1]

    def _input_bias(self):
        if self.bias is None:
            return None
        if self.reset_after:
            return self._graph_cached("bias_in", lambda: _ops.unstack(self.bias, 0)[0])
        return self.bias

    def _recurrent_bias(self):
        return self._graph_cached("bias_rec", lambda: _ops.unstack(self.bias, 0)[1])

    def _recurrent_blocks(self):
        u = self.units
        return self._graph_cached("rk", lambda: _ops.split(self.recurrent_kernel, [2 * u, u], axis=1))

    def step(self, xw, states):
        h_prev = states[0]
        u = self.units
        x_z, x_r, x_h = _gates(xw, 3, u)
        if self.reset_after:
            rec = _r.matmul(h_prev, self.recurrent_kernel)
            if self.bias is not None:
                rec = _m.add(rec, self._recurrent_bias())
            r_z, r_r, r_h = _gates(rec, 3, u)
            z = self.recurrent_activation(_m.add(x_z, r_z))
            r = self.recurrent_activation(_m.add(x_r, r_r))
            hh = self.activation(_m.add(x_h, _m.multiply(r, r_h)))
        else:
            rk_zr, rk_h = self._recurrent_blocks()
            r_z, r_r = _gates(_r.matmul(h_prev, rk_zr), 2, u)
            z = self.recurrent_activation(_m.add(x_z, r_z))
            r = self.recurrent_activation(_m.add(x_r, r_r))
            hh = self.activation(_m.add(x_h, _r.matmul(_m.multiply(r, h_prev), rk_h)))
        # h = z * h_prev + (1 - z) * hh
        h = _m.add(_m.multiply(z, h_prev), _m.multiply(_m.subtract(1.0, z), hh))
        return h, [h]

    def get_config(self):
        config = super().get_config()
        config.update({"implementation": self.implementation, "reset_after": self.reset_after})
        return config
