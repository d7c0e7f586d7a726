"""Recurrent layers: SimpleRNN, LSTM, GRU (and their cells, and the generic RNN wrapper).

The time loop is unrolled into the graph when the layer is called, so the number of steps must be
known then (e.g. Input(shape=(28, 16))); an unknown length raises InvalidArgumentError. The input
projection x @ kernel of every step is one matrix product before the loop; each step adds one
h @ recurrent_kernel product and the gate arithmetic. Gradients come from the engine's autodiff.

Keras's weight layout is kept exactly (gate order i, f, c, o for LSTM; z, r, h for GRU; GRU's bias of
shape (2, 3 * units) when reset_after=True, TF2's default), so weights load from tf.keras .h5 files.
"""
import numpy as np

from ..engine.graph import TensorShape
from ..engine.ops import array_ops as _a
from ..engine.ops import math_ops as _m
from ..engine.ops.core import fill, ones_like, shape as _shape
from ..engine.ops.random_ops import dropout as _dropout
from ..errors import InvalidArgumentError
from . import _ops
from . import _serialize as S
from .base import InputSpec, Layer, layer_name_scope
from .rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, _Cell  # noqa: F401


def _zeros_state(x, units, dtype):
    """Zeros of shape (batch, units) with the batch size of x (known only when the graph runs)."""
    dims = _a.stack([_a.strided_slice(_shape(x), (0,)), np.int32(units)])
    z = fill(dims, np.zeros((), dtype.np))
    if hasattr(z, "set_shape"):          # graph mode: keep the static (batch, units) shape
        z.set_shape([x.shape[0], units])
    return z


class RNN(Layer):
    """Runs a cell over the time axis of (batch, time, features) inputs.

    Args:
        cell: a cell layer (SimpleRNNCell, LSTMCell, GRUCell, or any layer with `state_size` and
            `call(inputs, states) -> (output, new_states)`).
        return_sequences: return every step's output (batch, time, units) instead of the last one.
        return_state: also return the final states.
        go_backwards: process the sequence in reverse (the returned sequence is in processing order).
        stateful / unroll / time_major: as in Keras (stateful must be False; the loop is always unrolled).

    Call arguments: inputs, initial_state (a list of (batch, units) tensors), training.
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, time_major=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            raise InvalidArgumentError("RNN with a list of cells (stacked cells) is not supported; stack RNN layers")
        if stateful:
            raise InvalidArgumentError("stateful RNN layers are not supported")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)
        self.time_major = bool(time_major)
        self.input_spec = InputSpec(ndim=3)

    @property
    def states_count(self):
        s = self.cell.state_size
        return len(s) if isinstance(s, (list, tuple)) else 1

    def build(self, input_shape):
        if isinstance(input_shape, list):      # [inputs, *initial_states] when states come as inputs
            input_shape = input_shape[0]
        if not self.cell.built:
            with layer_name_scope(self.cell.name):
                self.cell.build(TensorShape((None, input_shape[-1])))
            self.cell.built = True

    def call(self, inputs, training=None, initial_state=None, mask=None):
        if mask is not None:
            raise InvalidArgumentError(f"{type(self).__name__} {self.name!r}: masking is not supported")
        if isinstance(inputs, (list, tuple)):
            inputs, initial_state = inputs[0], list(inputs[1:]) or initial_state
        x = _a.transpose(inputs, [1, 0, 2]) if self.time_major else inputs
        steps = x.shape[1]
        if steps is None:
            raise InvalidArgumentError(
                f"{type(self).__name__} {self.name!r}: the number of time steps must be known when the layer is "
                f"called (got input shape {tuple(inputs.shape)}); give Input a fixed sequence length")
        cell = self.cell
        sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        if initial_state is None:
            states = [_zeros_state(x, n, x.dtype) for n in sizes]
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(sizes):
                raise InvalidArgumentError(f"{type(self).__name__} {self.name!r} expects {len(sizes)} initial "
                                           f"states, got {len(states)}")
        fast = isinstance(cell, _Cell)
        if fast:
            if training and cell.dropout > 0:
                from .core import _noise_dropout
                x = _noise_dropout(x, cell.dropout, [True, False, True], cell._dropout_seeds[0])
            seq = cell.project(x)
        else:
            seq = x
        rec_mask = None
        if fast and training and cell.recurrent_dropout > 0:
            rec_mask = _dropout(ones_like(states[0]), rate=cell.recurrent_dropout, seed=cell._dropout_seeds[1])
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        step_inputs = _ops.unstack(seq, 1)
        outputs = []
        for t in order:
            xt = step_inputs[t]
            if fast:
                if rec_mask is not None:
                    states = [_m.multiply(states[0], rec_mask)] + states[1:]
                out, states = cell.step(xt, states)
            else:
                out, states = cell(xt, states, training=training) if _accepts_training(cell) else cell(xt, states)
                states = list(states) if isinstance(states, (list, tuple)) else [states]
            outputs.append(out)
        if self.return_sequences:
            result = _a.stack(outputs, axis=0 if self.time_major else 1)
        else:
            result = outputs[-1]
        if self.return_state:
            return [result] + list(states)
        return result

    def get_config(self):
        from . import registry
        config = self._rnn_config()
        config["cell"] = registry.serialize(self.cell)
        return config

    @classmethod
    def from_config(cls, config):
        from . import registry
        config = dict(config)
        cell = registry.deserialize(config.pop("cell"), _serialize_objects())
        return cls(cell, **config)

    def _rnn_config(self):
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype,
                **({"batch_input_shape": list(self._batch_input_shape)} if self._batch_input_shape else {}),
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                "time_major": self.time_major}


def _accepts_training(cell):
    import inspect
    try:
        return "training" in inspect.signature(cell.call).parameters
    except (TypeError, ValueError):
        return False


def _serialize_objects():
    return S.current_custom_objects()


_RNN_KEYS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "time_major")
_BASE_KEYS = ("name", "trainable", "dtype", "input_shape", "batch_input_shape", "batch_size", "input_dim",
              "activity_regularizer", "weights")


class _BuiltinRNN(RNN):
    """SimpleRNN / LSTM / GRU: the cell's arguments are the layer's arguments (flat Keras config)."""

    cell_class = None
    cell_name = None

    def __init__(self, units, **kwargs):
        rnn_args = {k: kwargs.pop(k) for k in _RNN_KEYS if k in kwargs}
        base_args = {k: kwargs.pop(k) for k in _BASE_KEYS if k in kwargs}
        cell = self.cell_class(units, name=self.cell_name, dtype=base_args.get("dtype"),
                               trainable=base_args.get("trainable", True), **kwargs)
        super().__init__(cell, **rnn_args, **base_args)

    def __getattr__(self, name):
        # units, activation, kernel_initializer ... and the weights live on the cell
        cell = self.__dict__.get("cell")
        if cell is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(cell, name)

    def get_config(self):
        config = self._rnn_config()
        cell_config = self.cell.get_config()
        for k in ("name", "trainable", "dtype"):
            cell_config.pop(k, None)
        config.update(cell_config)
        config["activity_regularizer"] = S.serialize_regularizer(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SimpleRNN(_BuiltinRNN):
    """Fully connected RNN: h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""

    cell_class, cell_name = SimpleRNNCell, "simple_rnn_cell"

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, unroll=unroll, **kwargs)


class LSTM(_BuiltinRNN):
    """Long short-term memory layer (Hochreiter & Schmidhuber 1997) with Keras's weight layout."""

    cell_class, cell_name = LSTMCell, "lstm_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, time_major=False, unroll=False,
                 implementation=2, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         unit_forget_bias=unit_forget_bias, kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards, stateful=stateful,
                         time_major=time_major, unroll=unroll, implementation=implementation, **kwargs)


class GRU(_BuiltinRNN):
    """Gated recurrent unit layer (Cho et al. 2014); reset_after=True by default as in TF2."""

    cell_class, cell_name = GRUCell, "gru_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False, time_major=False,
                 reset_after=True, implementation=2, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, unroll=unroll, time_major=time_major, reset_after=reset_after,
                         implementation=implementation, **kwargs)
