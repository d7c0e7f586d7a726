"""`Weight`: a Keras variable that owns a NumPy value and materialises as an engine Variable per graph.

Re-exported by `kestimator.layers.base`; import from there.
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine import eager as _eager
from ..engine.eager import EagerTensor, EagerVariable
from ..engine.graph import Tensor, TensorShape, get_default_graph
from ..engine.registry import apply_op
from ..errors import InvalidArgumentError
from ._context import _eager_mode, _graph_mode, _rng

class Weight(EagerVariable):
    """A Keras variable: owns a NumPy value and materialises as an engine Variable in each graph.

    It subclasses the eager variable so that, in eager mode, `GradientTape.gradient(loss,
    layer.trainable_weights)` finds it.

    Args:
        name: the full Keras name without ":0", e.g. "dense/kernel".
        value: the initial NumPy value (shape and dtype fixed from it).
        initializer, regularizer, constraint: kept for configs; the constraint is a function of a NumPy
            array returning the projected array (the optimizer applies it after each update).
        trainable: whether optimizers update it.
    """

    def __init__(self, name, value, initializer=None, regularizer=None, constraint=None, trainable=True):
        self._name = name + ":0"
        self._path = name
        self._value = value
        self._dtype = _dt.as_dtype(value.dtype)
        self._shape = TensorShape(value.shape)
        self.initializer = initializer
        self.regularizer = regularizer
        self.constraint = constraint
        self.trainable = bool(trainable)
        self._owner = None            # the layer that created it: its `trainable` freezes this weight
        self._session = None
        self._live_variable = None
        self._eager_handle = None

    name = property(lambda self: self._name)
    dtype = property(lambda self: self._dtype)
    shape = property(lambda self: self._shape)

    def get_shape(self):
        return self._shape

    @property
    def _handle(self):      # the eager tensor; it shares memory with the NumPy value
        h = self._eager_handle
        if h is None or h._value is not self._value:
            h = self._eager_handle = EagerTensor(self._value, self._dtype)
        return h

    def _effectively_trainable(self):
        return self.trainable and (self._owner is None or self._owner.trainable)

    # -- values ----------------------------------------------------------------------------------------
    def numpy(self):
        """A copy of the current value: the session's live array while a session is attached."""
        sess, var = self._session, self._live_variable
        if sess is not None and not sess._closed and var.op in sess._initialized:
            return np.array(sess._values[var.op])
        return self._value.copy()

    def assign(self, value, read_value=True):
        """Set the value (and the attached session's live array).

        Raises:
            InvalidArgumentError: `value` has another shape.
        """
        arr = np.asarray(getattr(value, "numpy", lambda: value)(), dtype=self._dtype.np)
        if arr.shape != tuple(self._shape):
            raise InvalidArgumentError(f"cannot assign a value of shape {arr.shape} to weight {self._name} of "
                                       f"shape {tuple(self._shape)}")
        self._value[...] = arr
        sess, var = self._session, self._live_variable
        if sess is not None and not sess._closed:
            sess._load_variable(var, arr)
        return self

    def assign_add(self, delta, read_value=True):
        return self.assign(self.numpy() + np.asarray(getattr(delta, "numpy", lambda: delta)()))

    def assign_sub(self, delta, read_value=True):
        return self.assign(self.numpy() - np.asarray(getattr(delta, "numpy", lambda: delta)()))

    def __array__(self, dtype=None, copy=None):
        v = self.numpy()
        return v if dtype is None else v.astype(dtype)

    def _attach(self, session, variable):
        """Make `session`'s array of `variable` the authoritative value (while a model trains)."""
        self._session, self._live_variable = session, variable

    def _detach(self):
        """Copy the live value back into the weight and forget the session."""
        if self._session is not None:
            self._value[...] = self.numpy()
        self._session, self._live_variable = None, None

    # -- graph use -------------------------------------------------------------------------------------
    def _sample_current(self, rng, shape, np_dtype):
        return self.numpy().astype(np_dtype, copy=False)

    def _project(self, array):
        return np.asarray(self.constraint(array), dtype=array.dtype)

    def variable(self, graph=None):
        """The engine Variable holding this weight in `graph` (default graph), created on first use.

        Its initializer reads the weight's value when the initializer runs, so values set before
        `global_variables_initializer()` runs are the ones the session starts from.
        """
        if _eager.executing_eagerly() and graph is None:
            raise InvalidArgumentError(f"weight {self._name}: graph variables do not exist in eager mode")
        g = graph or get_default_graph()
        store = g.__dict__.get("_keras_weight_variables")
        if store is None:
            store = g.__dict__["_keras_weight_variables"] = {}
        var = store.get(self)
        if var is None:
            from ..engine.variables import Variable
            trainable = self._effectively_trainable()
            with _graph_mode(), g.as_default(), g.name_scope(""), g.control_dependencies(None):
                init = apply_op("Initializer", [], {"shape": tuple(self._shape), "dtype": self._dtype,
                                                    "seeds": (0, 0), "sample": self._sample_current},
                                name=self._path + "/Initializer")
                var = Variable(init, trainable=trainable, name=self._path, dtype=self._dtype,
                               constraint=self._project if self.constraint is not None else None,
                               slab_group="trainable" if trainable else None)
            var._keras_weight = self
            store[self] = var
        return var

    def _as_tensor(self):
        if _eager.executing_eagerly():
            return EagerVariable._as_tensor(self)
        return self.variable()._as_tensor()

    def value(self):
        return self._as_tensor()

    read_value = value

    def __repr__(self):
        return f"<Weight '{self._name}' shape={tuple(self._shape)} dtype={self._dtype.name}>"

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


def _sample(init, shape, dtype):
    """A NumPy value for a new weight from a Keras initializer (or a plain callable)."""
    sample = getattr(init, "sample", None)
    if sample is not None:
        seed = getattr(init, "seed", None)
        rng = np.random.default_rng(seed) if seed is not None else _rng[0]
        value = sample(rng, shape, dtype.np)
    else:
        with _eager_mode():
            value = init(shape, dtype=dtype)
        value = getattr(value, "numpy", lambda: value)()
        if isinstance(value, Tensor):
            raise InvalidArgumentError(f"initializer {init!r} returned a graph tensor; a Keras initializer must "
                                       "return an array (implement sample(rng, shape, dtype))")
    value = np.array(value, dtype=dtype.np)
    if value.shape != shape:
        value = np.broadcast_to(value, shape).copy()
    return value
