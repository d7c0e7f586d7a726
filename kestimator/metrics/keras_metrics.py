"""Keras metrics: stateful objects with `update_state` / `result` / `reset_state`.

A metric declares its state (named accumulators with initial values) and, with engine ops, how one
batch changes it (`_deltas`: every update is an addition) and how the state gives the result
(`_compute`). The same code serves three uses:

* inside a model's training graph: `update_state` on graph tensors returns one op that adds the deltas
  to metric variables of that graph, so the metric runs in the training step's compiled Plan;
* eagerly on NumPy arrays: `m.update_state(y_true, y_pred); m.result()` -> a NumPy value;
* TF1 style for estimators: `value, update_op = m.as_tf1(labels, predictions)`.

The TF1 functions `accuracy`, `auc`, `precision`, `recall`, `mean`, ... live in `tf_metrics`; here the
Keras names are classes and strings ("accuracy", "auc"). The confusion-matrix metrics (AUC, Precision, Recall,
TruePositives, ...) are in `keras_confusion`, on the Metric class defined here.
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.graph import GraphKeys, Tensor
from ..engine.ops import array_ops as _a
from ..engine.ops import core as _core
from ..engine.ops import math_ops as _m
from ..engine.ops import reduce_ops as _r
from ..engine.registry import apply_op, register
from ..engine.variables import Variable
from ..errors import InvalidArgumentError
from ..losses import keras_losses as _losses

__all__ = [
    "Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "AUC",
    "Precision", "Recall", "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives",
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
    "RootMeanSquaredError", "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "Hinge", "SquaredHinge", "KLDivergence", "Poisson", "CosineSimilarity", "LogCoshError",
    "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "get", "serialize", "deserialize",
]


# -- helper ops ------------------------------------------------------------------------------------------
def _top_k_mask_kernel(xp, a):
    k = a["k"]

    def run(x):
        out = np.full_like(x, -np.inf)
        if k >= x.shape[-1]:
            return x.copy()
        idx = np.argpartition(-x, k - 1, axis=-1)[..., :k]
        np.put_along_axis(out, idx, np.take_along_axis(x, idx, axis=-1), axis=-1)
        return out
    return run


register("KerasTopKMask", infer=lambda i, a: [(i[0].shape, i[0].dtype)], kernel=_top_k_mask_kernel,
         differentiable=False)


def _div_no_nan(a, b):
    safe = _m.where(_m.equal(b, 0.0), _core.ones_like(b), b)
    return _m.where(_m.equal(b, 0.0), _core.zeros_like(a), _m.divide(a, safe))


def _argmax_input(y_pred):
    """argmax of softmax(x) is argmax of x: read the logits and skip the softmax in the plan."""
    if isinstance(y_pred, Tensor) and y_pred.op.type == "Softmax":
        return y_pred.op.inputs[0]
    return y_pred


# -- per-sample metric functions -------------------------------------------------------------------------
def binary_accuracy(y_true, y_pred, threshold=0.5):
    """mean(y_true == (y_pred > threshold), -1) per sample."""
    y_true, y_pred = _losses._prepare(y_true, y_pred)
    hit = _m.equal(y_true, _core.cast(_m.greater(y_pred, threshold), y_pred.dtype))
    return _r.reduce_mean(_core.cast(hit, _dt.float32), axis=-1)


def categorical_accuracy(y_true, y_pred):
    """1.0 where argmax(y_true) == argmax(y_pred), per sample."""
    y_true, y_pred = _losses._prepare(y_true, y_pred)
    return _core.cast(_m.equal(_r.argmax(y_true, -1), _r.argmax(_argmax_input(y_pred), -1)), _dt.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label equals argmax(y_pred), per sample."""
    y_pred = _core.convert_to_tensor(y_pred)
    y_true = _core.convert_to_tensor(y_true)
    rt, rp = y_true.shape.ndims, y_pred.shape.ndims
    if rt is not None and rp is not None and rt == rp and y_true.shape[-1] in (1, None):
        y_true = _a.squeeze(y_true, [-1])
    pred = _r.argmax(_argmax_input(y_pred), -1)
    pred = _core.cast(pred, y_true.dtype)
    return _core.cast(_m.equal(y_true, pred), _dt.float32)


def _in_top_k(y_pred, labels, k):
    """1.0 where fewer than k classes score strictly higher than the label's class (ties count in)."""
    depth = y_pred.shape[-1]
    if depth is None:
        raise InvalidArgumentError("top-k accuracy needs a known number of classes (last dim of y_pred)")
    onehot = _a.one_hot(_core.cast(labels, _dt.int64), depth, dtype=y_pred.dtype)
    target = _r.reduce_sum(_m.multiply(y_pred, onehot), axis=-1, keepdims=True)
    higher = _r.reduce_sum(_core.cast(_m.greater(y_pred, target), _dt.float32), axis=-1)
    return _core.cast(_m.less(higher, float(k)), _dt.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot label's class is among the k highest predictions."""
    y_true, y_pred = _losses._prepare(y_true, y_pred)
    return _in_top_k(y_pred, _r.argmax(y_true, -1), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the integer label is among the k highest predictions."""
    y_pred = _losses._float(y_pred)
    labels = _losses._sparse_labels(y_true, y_pred)
    return _in_top_k(y_pred, labels, k)


def _accuracy(y_true, y_pred):
    y_true, y_pred = _losses._prepare(y_true, y_pred)
    return _core.cast(_m.equal(y_true, y_pred), _dt.float32)


def _squared_error(y_true, y_pred):
    y_true, y_pred = _losses._prepare(y_true, y_pred)
    return _m.squared_difference(y_true, y_pred)


# -- the base class --------------------------------------------------------------------------------------
class Metric:
    """Base class. Subclasses define `_state_specs()` -> [(name, shape, initial value)], `_deltas(...)`
    -> {name: tensor added to that state} and `_compute(state)` -> the result tensor.

    Args:
        name: the key of this metric in training logs.
        dtype: accepted for Keras compatibility; state and results are float32.
    """

    def __init__(self, name=None, dtype=None):
        self.name = name or _losses._snake(type(self).__name__)
        self.dtype = "float32"
        self._numpy_state = None
        self._graph_vars = {}        # graph -> {state name: Variable}
        self._graph_results = {}     # graph -> result tensor
        self._bound = None           # (session, graph): where result() reads the state

    # -- what subclasses define ----------------------------------------------------------------------
    def _state_specs(self):
        return [("total", (), 0.0), ("count", (), 0.0)]

    def _deltas(self, *args, **kwargs):
        raise NotImplementedError

    def _compute(self, state):
        return _div_no_nan(state["total"], state["count"])

    # -- state ---------------------------------------------------------------------------------------------
    def _initial_numpy_state(self):
        return {n: np.full(shape, init, dtype=np.float32) for n, shape, init in self._state_specs()}

    def variables_in(self, graph):
        """This metric's state variables in `graph`, created on first use (local, non-trainable)."""
        vs = self._graph_vars.get(graph)
        if vs is None:
            vs = {}
            with graph.as_default(), graph.name_scope(None), graph.control_dependencies(None):
                with graph.name_scope(self.name + "/"):
                    for n, shape, init in self._state_specs():
                        vs[n] = Variable(np.full(shape, init, dtype=np.float32), trainable=False, name=n,
                                         collections=[GraphKeys.LOCAL_VARIABLES, GraphKeys.METRIC_VARIABLES])
            self._graph_vars[graph] = vs
        return vs

    def _update_op(self, graph, args, kwargs):
        vs = self.variables_in(graph)
        with graph.as_default(), graph.name_scope(self.name + "_update/"):
            deltas = self._deltas(*args, **kwargs)
            ops = [vs[n].assign_add(_core.cast(d, _dt.float32)) for n, d in deltas.items()]
        return _core.group(*ops) if len(ops) != 1 else ops[0].op

    def result_tensor(self, graph):
        """The result computed from this metric's variables in `graph` (a graph tensor)."""
        t = self._graph_results.get(graph)
        if t is None:
            vs = self.variables_in(graph)
            with graph.as_default(), graph.name_scope(None), graph.name_scope(self.name + "_result/"):
                t = self._compute({n: v._as_tensor() for n, v in vs.items()})
            self._graph_results[graph] = t
        return t

    def _bind(self, session, graph):
        """Make `session`'s copy of the state (in `graph`) the one result() and reset_state() use."""
        self._bound = (session, graph)

    # -- public API ----------------------------------------------------------------------------------------
    def update_state(self, *args, **kwargs):
        """Accumulate one batch. On graph tensors returns the update op; on arrays updates at once.

        Args (most metrics): y_true, y_pred, sample_weight=None.
        """
        if any(_losses._is_symbolic(a) for a in list(args) + list(kwargs.values()) if a is not None):
            graph = next(a for a in list(args) + list(kwargs.values()) if _losses._is_symbolic(a))
            graph = getattr(graph, "graph", None) or graph._as_tensor().graph
            return self._update_op(graph, args, kwargs)
        if self._bound is not None:
            sess, graph = self._bound
            self._load_numpy_into_session()
            self._bound = None
        if self._numpy_state is None:
            self._numpy_state = self._initial_numpy_state()
        with _losses.execution_mode(True):
            deltas = self._deltas(*args, **kwargs)
            for n, d in deltas.items():
                self._numpy_state[n] += np.asarray(d.numpy() if hasattr(d, "numpy") else d, np.float32)
        return None

    def _load_numpy_into_session(self):
        """Keep the state that result() reads when switching from a session to eager updates."""
        sess, graph = self._bound
        vs = self.variables_in(graph)
        self._numpy_state = {n: np.array(sess.run(v), dtype=np.float32) for n, v in vs.items()}

    def result(self):
        """The metric's current value as NumPy (a float32 scalar or array)."""
        if self._bound is not None:
            sess, graph = self._bound
            return sess.run(self.result_tensor(graph))
        state = self._numpy_state if self._numpy_state is not None else self._initial_numpy_state()
        with _losses.execution_mode(True):
            from ..engine.eager import EagerTensor
            out = self._compute({n: EagerTensor(v) for n, v in state.items()})
        return out.numpy() if hasattr(out, "numpy") else np.asarray(out)

    def reset_state(self):
        """Back to the initial state (in the bound session too)."""
        self._numpy_state = None
        if self._bound is not None:
            sess, graph = self._bound
            for n, shape, init in self._state_specs():
                self.variables_in(graph)[n].load(np.full(shape, init, np.float32), sess)

    reset_states = reset_state

    def __call__(self, *args, **kwargs):
        """update_state, then result (eagerly) or the result tensor (graph tensors)."""
        op = self.update_state(*args, **kwargs)
        if op is not None:
            graph = op.graph
            with graph.control_dependencies([op]):
                return _core.identity(self.result_tensor(graph))
        return self.result()

    def as_tf1(self, *args, **kwargs):
        """(value_tensor, update_op) on graph tensors, the pair TF1 eval_metric_ops expect."""
        op = self.update_state(*args, **kwargs)
        return self.result_tensor(op.graph), op

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def _weighted_sums(values, sample_weight):
    values = _losses._float(values)
    if sample_weight is None:
        return {"total": _r.reduce_sum(values), "count": _core.cast(_core.size(values), _dt.float32)}
    sw = _losses._match_weight(sample_weight, values)
    sw = _m.multiply(_core.ones_like(values), sw)
    return {"total": _r.reduce_sum(_m.multiply(values, sw)), "count": _r.reduce_sum(sw)}


def _mean_accumulate_kernel(xp, a):
    mode = a["mode"]

    def run(state, values, extra=None):
        # state = [total, count]; one kernel instead of sum / size / cast / two assign_adds
        if mode == "batch":       # values is a scalar per batch, weighted by the batch size of `extra`
            n = extra.shape[0] if extra.ndim else 1
            state[0] += float(values) * n
            state[1] += n
        elif mode == "weighted":
            w = xp.broadcast_to(extra, values.shape)
            state[0] += float((values * w).sum(dtype=xp.float64))
            state[1] += float(w.sum(dtype=xp.float64))
        else:
            state[0] += float(values.sum(dtype=xp.float64))
            state[1] += values.size
        return state
    return run


register("KerasMeanAccumulate", infer=lambda i, a: [(i[0].shape, i[0].dtype)], kernel=_mean_accumulate_kernel,
         stateful=True, differentiable=False, writes_input=0)


class Mean(Metric):
    """The (weighted) mean of the values given: `update_state(values, sample_weight=None)`.

    Its state is one variable [total, count]; in a graph, one fused op updates it per batch.
    """

    def _state_specs(self):
        return [("state", (2,), 0.0)]

    def _values(self, values, sample_weight=None):
        """(per-element values, sample weight or None) of one update."""
        return values, sample_weight

    def _deltas(self, *args, **kwargs):
        values, sw = self._values(*args, **kwargs)
        d = _weighted_sums(values, sw)
        return {"state": _a.stack([_core.cast(d["total"], _dt.float32), _core.cast(d["count"], _dt.float32)])}

    def _update_op(self, graph, args, kwargs):
        vs = self.variables_in(graph)
        with graph.as_default(), graph.name_scope(self.name + "_update/"):
            values, sw = self._values(*args, **kwargs)
            values = _losses._float(values)
            inputs = [vs["state"]._as_tensor(), values]
            if sw is not None:
                inputs.append(_losses._match_weight(_core.cast(_core.convert_to_tensor(sw), values.dtype), values))
            out = apply_op("KerasMeanAccumulate", inputs, {"mode": "weighted" if sw is not None else "values"})
        return out.op

    def _update_batch_mean(self, value, like):
        """Graph op adding a per-batch scalar `value` weighted by the batch size of tensor `like` (how fit
        tracks the epoch's mean loss)."""
        graph = value.graph
        vs = self.variables_in(graph)
        with graph.as_default(), graph.name_scope(self.name + "_update/"):
            out = apply_op("KerasMeanAccumulate", [vs["state"]._as_tensor(), _losses._float(value), like],
                           {"mode": "batch"})
        return out.op

    def _compute(self, state):
        s = state["state"]
        return _div_no_nan(s[0], s[1])


class Sum(Metric):
    """The (weighted) sum of the values given."""

    def _state_specs(self):
        return [("total", (), 0.0)]

    def _deltas(self, values, sample_weight=None):
        return {"total": _weighted_sums(values, sample_weight)["total"]}

    def _compute(self, state):
        return _core.identity(state["total"])


class MeanMetricWrapper(Mean):
    """The mean of a per-sample function `fn(y_true, y_pred, **kwargs)` over all samples seen."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "metric").lstrip("_"), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def _values(self, y_true, y_pred, sample_weight=None):
        return self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight

    def get_config(self):
        return dict(super().get_config(), **self._fn_kwargs)


def _wrapper(cls_name, fn, default_name, params=()):
    names = [p for p, _ in params]
    defaults = dict(params)

    def __init__(self, *args, name=default_name, dtype=None, **kwargs):
        given = dict(zip(names, args))
        given.update(kwargs)
        unknown = set(given) - set(names)
        if unknown:
            raise InvalidArgumentError(f"{cls_name} got unexpected arguments {sorted(unknown)}")
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **{p: given.get(p, defaults[p]) for p in names})

    return type(cls_name, (MeanMetricWrapper,), {"__init__": __init__,
                                                 "__doc__": f"Mean of `{default_name}` over all samples."})


Accuracy = _wrapper("Accuracy", _accuracy, "accuracy")
BinaryAccuracy = _wrapper("BinaryAccuracy", binary_accuracy, "binary_accuracy", [("threshold", 0.5)])
CategoricalAccuracy = _wrapper("CategoricalAccuracy", categorical_accuracy, "categorical_accuracy")
SparseCategoricalAccuracy = _wrapper("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                     "sparse_categorical_accuracy")
TopKCategoricalAccuracy = _wrapper("TopKCategoricalAccuracy", top_k_categorical_accuracy,
                                   "top_k_categorical_accuracy", [("k", 5)])
SparseTopKCategoricalAccuracy = _wrapper("SparseTopKCategoricalAccuracy", sparse_top_k_categorical_accuracy,
                                         "sparse_top_k_categorical_accuracy", [("k", 5)])
MeanSquaredError = _wrapper("MeanSquaredError", _losses._mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _wrapper("MeanAbsoluteError", _losses.mae, "mean_absolute_error")
MeanAbsolutePercentageError = _wrapper("MeanAbsolutePercentageError", _losses.mape,
                                       "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _wrapper("MeanSquaredLogarithmicError", _losses.msle,
                                       "mean_squared_logarithmic_error")
BinaryCrossentropy = _wrapper("BinaryCrossentropy", _losses.binary_crossentropy, "binary_crossentropy",
                              [("from_logits", False), ("label_smoothing", 0.0)])
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", _losses.categorical_crossentropy,
                                   "categorical_crossentropy", [("from_logits", False), ("label_smoothing", 0.0)])
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy", _losses.sparse_categorical_crossentropy,
                                         "sparse_categorical_crossentropy", [("from_logits", False)])
Hinge = _wrapper("Hinge", _losses.hinge, "hinge")
SquaredHinge = _wrapper("SquaredHinge", _losses.squared_hinge, "squared_hinge")
KLDivergence = _wrapper("KLDivergence", _losses.kl_divergence, "kl_divergence")
Poisson = _wrapper("Poisson", _losses.poisson, "poisson")
LogCoshError = _wrapper("LogCoshError", _losses.log_cosh, "logcosh")


def _cosine(y_true, y_pred, axis=-1):
    return _m.negative(_losses.cosine_similarity(y_true, y_pred, axis=axis))


CosineSimilarity = _wrapper("CosineSimilarity", _cosine, "cosine_similarity", [("axis", -1)])


class RootMeanSquaredError(Mean):
    """sqrt of the (weighted) mean of squared errors over all elements seen."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def _values(self, y_true, y_pred, sample_weight=None):
        return _squared_error(y_true, y_pred), sample_weight

    def _compute(self, state):
        return _m.sqrt(super()._compute(state))


# the confusion-matrix metrics (AUC, Precision, Recall, counts) are built on Metric above
from .keras_confusion import (AUC, FalseNegatives, FalsePositives, Precision, Recall,  # noqa: E402
                              TrueNegatives, TruePositives)


# -- lookup ----------------------------------------------------------------------------------------------
_FUNCTION_NAMES = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "kld": KLDivergence, "kl_divergence": KLDivergence,
    "kullback_leibler_divergence": KLDivergence, "poisson": Poisson, "logcosh": LogCoshError,
    "log_cosh": LogCoshError, "cosine_similarity": CosineSimilarity, "accuracy": Accuracy, "acc": Accuracy,
    "auc": AUC, "precision": Precision, "recall": Recall,
}
_CLASSES = {c.__name__: c for c in (
    Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, AUC, Precision, Recall, TruePositives, FalsePositives, TrueNegatives,
    FalseNegatives, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    RootMeanSquaredError, BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Hinge,
    SquaredHinge, KLDivergence, Poisson, CosineSimilarity, LogCoshError)}

# per-sample functions by name (for MeanMetricWrapper configs written by Keras: {"fn": "..."})
_FUNCTIONS = {
    "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy, "accuracy": _accuracy,
}


def get(identifier, custom_objects=None):
    """A Metric from a name ("auc", "sparse_categorical_accuracy"), a class, a config dict, a Metric, or a
    per-sample function (wrapped in MeanMetricWrapper). A name keeps the spelling it was given as the
    metric's name, as Keras does for its logs ("mse" logs as "mse").

    Raises:
        InvalidArgumentError: the name or class is unknown.
    """
    custom_objects = custom_objects or {}
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        obj = custom_objects.get(identifier)
        if obj is not None:
            return get(obj)
        cls = _FUNCTION_NAMES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise InvalidArgumentError(f"unknown metric {identifier!r}; known: "
                                       f"{sorted(set(_FUNCTION_NAMES) | set(_CLASSES))}")
        return cls(name=identifier) if identifier in _FUNCTION_NAMES else cls()
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", "metric"))
    raise InvalidArgumentError(f"cannot interpret {identifier!r} as a metric")


def serialize(metric):
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config, custom_objects=None):
    """A Metric from `{"class_name": ..., "config": ...}`; classes only from this module or custom_objects.

    Raises:
        InvalidArgumentError: unknown class name.
    """
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        return get(config, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidArgumentError(f"a metric config must be a name or a dict with 'class_name', got {config!r}")
    name = config["class_name"]
    cfg = dict(config.get("config") or {})
    cfg.pop("dtype", None)
    if name == "MeanMetricWrapper":
        fn_name = cfg.pop("fn", None)
        fn = custom_objects.get(fn_name) or _FUNCTIONS.get(fn_name)
        if fn is None:
            cls = _FUNCTION_NAMES.get(fn_name)
            if cls is None:
                raise InvalidArgumentError(f"unknown metric function {fn_name!r} (pass it in custom_objects)")
            return cls(name=cfg.get("name", fn_name))
        return MeanMetricWrapper(fn, **cfg)
    cls = custom_objects.get(name) or _CLASSES.get(name)
    if cls is None:
        raise InvalidArgumentError(f"unknown metric class {name!r} (pass it in custom_objects)")
    return cls.from_config(cfg)
