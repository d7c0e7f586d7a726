"""Keras losses: classes (`ks.losses.SparseCategoricalCrossentropy`), per-sample functions and string names.

A per-sample function maps `(y_true, y_pred)` to one loss value per sample (the mean over the last axis,
as in Keras); a `Loss` object then applies sample weights and the reduction. Everything is written with
engine ops, so the same code builds a training graph and, called on NumPy arrays, runs eagerly and
returns NumPy.

When `y_pred` is the output of a Softmax (or Sigmoid) op and `from_logits` is False, the crossentropies
read the op's input logits and use the fused, numerically stable op, as Keras does with its
"from_logits unwrapping".

The TF1 graph functions (`mean_squared_error(labels, predictions, weights)`, `huber_loss`, ...) live in
`tf_losses`; the Keras functions of the same names are reachable here only through the string names
("mse", "mean_squared_error", "huber") and the classes.
"""
import contextlib

import numpy as np

from ..engine import dtypes as _dt
from ..engine import eager as _eager
from ..engine.graph import Tensor
from ..engine.ops import core as _core
from ..engine.ops import math_ops as _m
from ..engine.ops import nn_ops as _nn
from ..engine.ops import reduce_ops as _r
from ..engine.ops import array_ops as _a
from ..errors import InvalidArgumentError

__all__ = [
    "Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "Huber", "LogCosh", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson",
    "CosineSimilarity", "mae", "mape", "msle", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "logcosh", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "hinge", "squared_hinge",
    "categorical_hinge", "kld", "kl_divergence", "kullback_leibler_divergence", "poisson",
    "cosine_similarity", "get", "serialize", "deserialize",
]

EPSILON = 1e-7   # Keras's backend.epsilon()


# -- running on NumPy ----------------------------------------------------------------------------------
@contextlib.contextmanager
def execution_mode(eager):
    """Temporarily run engine ops eagerly (True) or build graph ops (False), restoring the mode after."""
    was = _eager.executing_eagerly()
    if was == eager:
        yield
        return
    if eager:
        _eager.enable_eager_execution()
    else:
        _eager.disable_eager_execution()
    try:
        yield
    finally:
        if was:
            _eager.enable_eager_execution()
        else:
            _eager.disable_eager_execution()


def _is_symbolic(x):
    return isinstance(x, Tensor) or hasattr(x, "_as_tensor") and not hasattr(x, "numpy")


def _to_numpy(value):
    if isinstance(value, (tuple, list)):
        return type(value)(_to_numpy(v) for v in value)
    return value.numpy() if hasattr(value, "numpy") else value


def run_on_arrays(fn, *args, **kwargs):
    """Call `fn` on graph tensors as is; with concrete values (NumPy, lists, EagerTensors) run it eagerly
    and return NumPy values."""
    if any(_is_symbolic(a) for a in args if a is not None):
        return fn(*args, **kwargs)
    with execution_mode(True):
        return _to_numpy(fn(*args, **kwargs))


def _float(x, dtype=None):
    t = _core.convert_to_tensor(x)
    if dtype is not None:
        return _core.cast(t, dtype)
    if not t.dtype.is_floating:
        t = _core.cast(t, _dt.float32)
    return t


def _prepare(y_true, y_pred):
    """y_pred as a float tensor, y_true cast to its dtype and expanded to its rank when one dim short."""
    y_pred = _float(y_pred)
    y_true = _float(y_true, y_pred.dtype)
    rt, rp = y_true.shape.ndims, y_pred.shape.ndims
    if rt is not None and rp is not None:
        if rt == rp - 1 and y_pred.shape[-1] == 1:
            y_true = _a.expand_dims(y_true, -1)
        elif rp == rt - 1 and y_true.shape[-1] == 1:
            y_true = _a.squeeze(y_true, [-1])
    return y_true, y_pred


def _clip(x, lo, hi):
    return _m.minimum(_m.maximum(x, lo), hi)


def _logits_of(y_pred, op_type):
    """The input of the op that made `y_pred`, when that op is `op_type` (graph mode only)."""
    if isinstance(y_pred, Tensor) and y_pred.op.type == op_type and not getattr(y_pred, "_keras_mask", None):
        return y_pred.op.inputs[0]
    return None


def _mean_last(x):
    return _r.reduce_mean(x, axis=-1)


# -- per-sample functions ---------------------------------------------------------------------------------
def _mean_squared_error(y_true, y_pred):
    y_true, y_pred = _prepare(y_true, y_pred)
    return _mean_last(_m.squared_difference(y_pred, y_true))


def mae(y_true, y_pred):
    """Mean absolute error over the last axis: mean(|y_true - y_pred|, -1)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return _mean_last(_m.abs(_m.subtract(y_pred, y_true)))


def mape(y_true, y_pred):
    """100 * mean(|(y_true - y_pred) / max(|y_true|, eps)|, -1)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    diff = _m.abs(_m.divide(_m.subtract(y_true, y_pred), _m.maximum(_m.abs(y_true), EPSILON)))
    return _m.multiply(_mean_last(diff), 100.0)


def msle(y_true, y_pred):
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2, -1)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    a = _m.log1p(_m.maximum(y_pred, EPSILON))
    b = _m.log1p(_m.maximum(y_true, EPSILON))
    return _mean_last(_m.squared_difference(a, b))


def huber(y_true, y_pred, delta=1.0):
    """0.5 * e^2 where |e| <= delta, else delta * (|e| - 0.5 * delta); mean over the last axis."""
    y_true, y_pred = _prepare(y_true, y_pred)
    err = _m.abs(_m.subtract(y_pred, y_true))
    quad = _m.minimum(err, float(delta))
    lin = _m.subtract(err, quad)
    return _mean_last(_m.add(_m.multiply(_m.square(quad), 0.5), _m.multiply(lin, float(delta))))


def log_cosh(y_true, y_pred):
    """mean(log(cosh(y_pred - y_true)), -1), computed as x + softplus(-2x) - log 2 (no overflow)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    x = _m.subtract(y_pred, y_true)
    val = _m.subtract(_m.add(x, _m.softplus(_m.multiply(x, -2.0))), float(np.log(2.0)))
    return _mean_last(val)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary crossentropy (mean over `axis`); label smoothing pulls labels towards 0.5."""
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        y_true = _m.add(_m.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    logits = y_pred if from_logits else _logits_of(y_pred, "Sigmoid")
    if logits is not None:
        per = _nn.sigmoid_cross_entropy_with_logits(labels=y_true, logits=logits)
    else:
        p = _clip(y_pred, EPSILON, 1.0 - EPSILON)
        per = _m.negative(_m.add(_m.multiply(y_true, _m.log(_m.add(p, EPSILON))),
                                 _m.multiply(_m.subtract(1.0, y_true), _m.log(_m.add(_m.subtract(1.0, p), EPSILON)))))
    return _r.reduce_mean(per, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample crossentropy of one-hot (or soft) labels against class probabilities or logits."""
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        k = y_pred.shape[-1]
        if k is None:
            raise InvalidArgumentError("label_smoothing needs a known number of classes (last dim of y_pred)")
        y_true = _m.add(_m.multiply(y_true, 1.0 - label_smoothing), label_smoothing / k)
    logits = y_pred if from_logits else _logits_of(y_pred, "Softmax")
    if logits is not None and (axis in (-1, logits.shape.ndims - 1)):
        if logits.shape.ndims == 2:
            return _nn.softmax_cross_entropy_with_logits(labels=y_true, logits=logits)
        return _m.negative(_r.reduce_sum(_m.multiply(y_true, _nn.log_softmax(logits)), axis=-1))
    p = _m.divide(y_pred, _r.reduce_sum(y_pred, axis=axis, keepdims=True))
    p = _clip(p, EPSILON, 1.0 - EPSILON)
    return _m.negative(_r.reduce_sum(_m.multiply(y_true, _m.log(p)), axis=axis))


def _sparse_labels(y_true, y_pred):
    y_true = _core.convert_to_tensor(y_true)
    rt, rp = y_true.shape.ndims, y_pred.shape.ndims
    if rt is not None and rp is not None and rt == rp and y_true.shape[-1] in (1, None):
        y_true = _a.squeeze(y_true, [-1])
    if not y_true.dtype.is_integer:
        y_true = _core.cast(y_true, _dt.int64)
    return y_true


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1, ignore_class=None):
    """Per-sample crossentropy of integer class labels against class probabilities or logits.

    Args:
        y_true: integer labels, shape [batch] or [batch, 1] (floats holding integers are accepted).
        y_pred: probabilities (or logits when `from_logits`), shape [batch, classes].
        ignore_class: a label value whose samples get loss 0.
    """
    y_pred = _float(y_pred)
    labels = _sparse_labels(y_true, y_pred)
    logits = y_pred if from_logits else _logits_of(y_pred, "Softmax")
    if logits is None:
        logits = _m.log(_clip(y_pred, EPSILON, 1.0 - EPSILON))
    if ignore_class is None:
        return _nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    keep = _m.not_equal(labels, _core.cast(_core.constant(ignore_class), labels.dtype))
    safe = _m.where(keep, labels, _core.zeros_like(labels))
    per = _nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    return _m.multiply(per, _core.cast(keep, per.dtype))


def _signed_labels(y_true):
    """Labels in {0, 1} become {-1, 1} (as Keras's hinge losses do); others pass through."""
    is01 = _r.reduce_all(_m.logical_or(_m.equal(y_true, 0.0), _m.equal(y_true, 1.0)))
    return _m.where(is01, _m.subtract(_m.multiply(y_true, 2.0), 1.0), y_true)


def hinge(y_true, y_pred):
    """mean(max(1 - y_true * y_pred, 0), -1) with labels -1/1 (0/1 converted)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    y_true = _signed_labels(y_true)
    return _mean_last(_m.maximum(_m.subtract(1.0, _m.multiply(y_true, y_pred)), 0.0))


def squared_hinge(y_true, y_pred):
    """mean(max(1 - y_true * y_pred, 0)^2, -1) with labels -1/1 (0/1 converted)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    y_true = _signed_labels(y_true)
    return _mean_last(_m.square(_m.maximum(_m.subtract(1.0, _m.multiply(y_true, y_pred)), 0.0)))


def categorical_hinge(y_true, y_pred):
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    pos = _r.reduce_sum(_m.multiply(y_true, y_pred), axis=-1)
    neg = _r.reduce_max(_m.multiply(_m.subtract(1.0, y_true), y_pred), axis=-1)
    return _m.maximum(_m.add(_m.subtract(neg, pos), 1.0), 0.0)


def kl_divergence(y_true, y_pred):
    """sum(y_true * log(y_true / y_pred), -1) with both clipped to [eps, 1]."""
    y_true, y_pred = _prepare(y_true, y_pred)
    t = _clip(y_true, EPSILON, 1.0)
    p = _clip(y_pred, EPSILON, 1.0)
    return _r.reduce_sum(_m.multiply(t, _m.log(_m.divide(t, p))), axis=-1)


def poisson(y_true, y_pred):
    """mean(y_pred - y_true * log(y_pred + eps), -1)."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return _mean_last(_m.subtract(y_pred, _m.multiply(y_true, _m.log(_m.add(y_pred, EPSILON)))))


def cosine_similarity(y_true, y_pred, axis=-1):
    """-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis): -1 for identical directions."""
    y_true, y_pred = _prepare(y_true, y_pred)
    a = _nn.l2_normalize(y_true, axis=axis)
    b = _nn.l2_normalize(y_pred, axis=axis)
    return _m.negative(_r.reduce_sum(_m.multiply(a, b), axis=axis))


logcosh = log_cosh
kld = kullback_leibler_divergence = kl_divergence
mean_absolute_percentage_error = mape
mean_squared_logarithmic_error = msle

_FUNCTIONS = {
    "mse": _mean_squared_error, "mean_squared_error": _mean_squared_error,
    "mae": mae, "mean_absolute_error": mae,
    "mape": mape, "mean_absolute_percentage_error": mape,
    "msle": msle, "mean_squared_logarithmic_error": msle,
    "huber": huber, "huber_loss": huber, "log_cosh": log_cosh, "logcosh": log_cosh,
    "binary_crossentropy": binary_crossentropy, "bce": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy, "cce": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy, "scce": sparse_categorical_crossentropy,
    "hinge": hinge, "squared_hinge": squared_hinge, "categorical_hinge": categorical_hinge,
    "kld": kl_divergence, "kl_divergence": kl_divergence, "kullback_leibler_divergence": kl_divergence,
    "poisson": poisson, "cosine_similarity": cosine_similarity,
}


# -- reduction -------------------------------------------------------------------------------------------
_REDUCTIONS = {
    "auto": "sum_over_batch_size", "sum_over_batch_size": "sum_over_batch_size", "sum": "sum",
    "none": "none", None: "none", "mean": "mean",
    # TF1 Reduction constants (tf_losses.Reduction) accepted too
    "weighted_sum": "sum", "weighted_sum_over_batch_size": "sum_over_batch_size", "weighted_mean": "mean",
    "weighted_sum_by_nonzero_weights": "sum_over_batch_size",
}


def _normalize_reduction(reduction):
    try:
        return _REDUCTIONS[reduction if reduction is None else str(reduction).lower()]
    except KeyError:
        raise InvalidArgumentError(f"unknown loss reduction {reduction!r}; use one of 'auto', "
                                   "'sum_over_batch_size', 'sum', 'mean', 'none'") from None


def _match_weight(sample_weight, losses):
    sw = _core.cast(_core.convert_to_tensor(sample_weight), losses.dtype) \
        if not isinstance(sample_weight, (int, float)) else sample_weight
    if isinstance(sw, (int, float)):
        return sw
    rw, rl = sw.shape.ndims, losses.shape.ndims
    if rw is not None and rl is not None:
        while rw > rl and sw.shape[-1] in (1, None):
            sw = _a.squeeze(sw, [-1])
            rw -= 1
        while rw < rl:
            sw = _a.expand_dims(sw, -1)
            rw += 1
    return sw


def reduce_weighted(losses, sample_weight=None, reduction="sum_over_batch_size"):
    """Apply `sample_weight` to per-sample `losses` and reduce them as Keras does.

    'sum_over_batch_size' divides the weighted sum by the number of loss elements (not by the sum of the
    weights); 'mean' divides by the sum of the weights; 'sum' sums; 'none' returns the weighted values.
    """
    reduction = _normalize_reduction(reduction)
    if sample_weight is not None:
        sw = _match_weight(sample_weight, losses)
        weighted = _m.multiply(losses, sw)
    else:
        sw, weighted = None, losses
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return _r.reduce_sum(weighted)
    if reduction == "mean" and sw is not None:
        denom = _r.reduce_sum(_m.multiply(_core.ones_like(losses), sw))
        return _m.divide(_r.reduce_sum(weighted), _m.maximum(denom, EPSILON))
    if sw is None:
        return _r.reduce_mean(losses)
    n = _core.cast(_core.size(losses), losses.dtype)
    return _m.divide(_r.reduce_sum(weighted), _m.maximum(n, 1.0))


# -- classes ---------------------------------------------------------------------------------------------
class Loss:
    """Base class of Keras losses: `loss(y_true, y_pred, sample_weight=None)` -> a scalar (reduced).

    Subclasses implement `call(y_true, y_pred)` returning per-sample losses.

    Args:
        reduction: 'sum_over_batch_size' (default, 'auto'), 'sum', 'mean' or 'none'.
        name: the loss's name (used in logs and configs).
    """

    def __init__(self, reduction="sum_over_batch_size", name=None):
        self.reduction = _normalize_reduction(reduction)
        self.name = name or _snake(type(self).__name__)

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        def run(yt, yp, sw):
            return reduce_weighted(self.call(yt, yp), sw, self.reduction)
        return run_on_arrays(run, y_true, y_pred, sample_weight)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class LossFunctionWrapper(Loss):
    """A Loss made from a per-sample function `fn(y_true, y_pred, **kwargs)`."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(reduction=reduction, name=name or getattr(fn, "__name__", "loss").lstrip("_"))
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        return dict(super().get_config(), **self._fn_kwargs)


def _wrapper_class(cls_name, fn, default_name, doc, params=()):
    """A LossFunctionWrapper subclass whose constructor takes `params` ((name, default) pairs) by
    position or keyword and passes them to `fn`."""
    names = [p for p, _ in params]
    defaults = dict(params)

    def __init__(self, *args, reduction="sum_over_batch_size", name=default_name, **kwargs):
        if len(args) > len(names):
            raise InvalidArgumentError(f"{cls_name} takes at most {len(names)} positional arguments")
        given = dict(zip(names, args))
        given.update(kwargs)
        unknown = set(given) - set(names)
        if unknown:
            raise InvalidArgumentError(f"{cls_name} got unexpected arguments {sorted(unknown)}")
        LossFunctionWrapper.__init__(self, fn, reduction=reduction, name=name,
                                     **{p: given.get(p, defaults[p]) for p in names})

    return type(cls_name, (LossFunctionWrapper,), {"__init__": __init__, "__doc__": doc})


MeanSquaredError = _wrapper_class("MeanSquaredError", _mean_squared_error, "mean_squared_error",
                                  "mean((y_true - y_pred)^2) over the last axis, then reduced.")
MeanAbsoluteError = _wrapper_class("MeanAbsoluteError", mae, "mean_absolute_error", "mean(|y_true - y_pred|).")
MeanAbsolutePercentageError = _wrapper_class("MeanAbsolutePercentageError", mape,
                                             "mean_absolute_percentage_error", "100 * mean(|(t - p) / t|).")
MeanSquaredLogarithmicError = _wrapper_class("MeanSquaredLogarithmicError", msle,
                                             "mean_squared_logarithmic_error", "mean((log1p(p) - log1p(t))^2).")
Huber = _wrapper_class("Huber", huber, "huber_loss", "Quadratic for |error| <= delta, linear beyond.",
                       [("delta", 1.0)])
LogCosh = _wrapper_class("LogCosh", log_cosh, "log_cosh", "mean(log(cosh(y_pred - y_true))).")
BinaryCrossentropy = _wrapper_class(
    "BinaryCrossentropy", binary_crossentropy, "binary_crossentropy",
    "Binary crossentropy; `from_logits`, `label_smoothing`, `axis` as in Keras.",
    [("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)])
CategoricalCrossentropy = _wrapper_class(
    "CategoricalCrossentropy", categorical_crossentropy, "categorical_crossentropy",
    "Crossentropy of one-hot labels; `from_logits`, `label_smoothing`, `axis` as in Keras.",
    [("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)])
SparseCategoricalCrossentropy = _wrapper_class(
    "SparseCategoricalCrossentropy", sparse_categorical_crossentropy, "sparse_categorical_crossentropy",
    "Crossentropy of integer labels; `from_logits`, `ignore_class` as in Keras.",
    [("from_logits", False), ("axis", -1), ("ignore_class", None)])
Hinge = _wrapper_class("Hinge", hinge, "hinge", "mean(max(1 - t * p, 0)).")
SquaredHinge = _wrapper_class("SquaredHinge", squared_hinge, "squared_hinge", "mean(max(1 - t * p, 0)^2).")
CategoricalHinge = _wrapper_class("CategoricalHinge", categorical_hinge, "categorical_hinge",
                                  "max(max((1 - t) * p) - sum(t * p) + 1, 0).")
KLDivergence = _wrapper_class("KLDivergence", kl_divergence, "kl_divergence", "sum(t * log(t / p)).")
Poisson = _wrapper_class("Poisson", poisson, "poisson", "mean(p - t * log(p)).")
CosineSimilarity = _wrapper_class("CosineSimilarity", cosine_similarity, "cosine_similarity",
                                  "-sum(normalize(t) * normalize(p)).", [("axis", -1)])

_CLASSES = {c.__name__: c for c in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Huber,
    LogCosh, BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Hinge, SquaredHinge,
    CategoricalHinge, KLDivergence, Poisson, CosineSimilarity)}


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


# -- lookup ----------------------------------------------------------------------------------------------
def get(identifier, custom_objects=None):
    """A loss from a name ("mse", "SparseCategoricalCrossentropy"), a config dict, a Loss or a function.

    Returns:
        A Loss instance or a per-sample function; None for None.

    Raises:
        InvalidArgumentError: an unknown name or config.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    custom_objects = custom_objects or {}
    if isinstance(identifier, str):
        if identifier in custom_objects:
            obj = custom_objects[identifier]
            return obj() if isinstance(obj, type) else obj
        fn = _FUNCTIONS.get(identifier) or _FUNCTIONS.get(identifier.lower())
        if fn is not None:
            return fn
        cls = _CLASSES.get(identifier)
        if cls is not None:
            return cls()
        raise InvalidArgumentError(f"unknown loss {identifier!r}; known: {sorted(set(_FUNCTIONS) | set(_CLASSES))}")
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return identifier
    raise InvalidArgumentError(f"cannot interpret {identifier!r} as a loss")


def serialize(loss):
    """A JSON-able description: a string for a built-in function, a class config dict for a Loss."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    for name, fn in _FUNCTIONS.items():
        if fn is loss:
            return name
    name = getattr(loss, "__name__", None)
    if name is None:
        raise InvalidArgumentError(f"cannot serialize loss {loss!r}")
    return name


def deserialize(config, custom_objects=None):
    """The inverse of `serialize`; classes come only from this module or `custom_objects` (by name).

    Raises:
        InvalidArgumentError: the class name is not known.
    """
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        return get(config, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidArgumentError(f"a loss config must be a name or a dict with 'class_name', got {config!r}")
    name = config["class_name"]
    cfg = dict(config.get("config") or {})
    cls = custom_objects.get(name) or _CLASSES.get(name)
    if cls is None:
        if name in _FUNCTIONS or name.lower() in _FUNCTIONS:
            return get(name)
        raise InvalidArgumentError(f"unknown loss class {name!r} (pass it in custom_objects)")
    if not isinstance(cls, type):
        return cls
    cfg.pop("fn", None)
    return cls.from_config(cfg) if hasattr(cls, "from_config") else cls(**cfg)
