"""What `compile()` was given, resolved per model output: the loss object and weight of each output and
the metric objects, including Keras's reading of "accuracy" (binary, sparse or categorical depending on
the loss and the shapes of targets and predictions)."""
from ..errors import InvalidArgumentError
from ..losses import keras_losses as _losses
from ..metrics import keras_metrics as _metrics


def _per_output(spec, output_names, what, allow_list_for_all=False):
    """A list with one entry per output from a single value, a list (one per output) or a dict."""
    n = len(output_names)
    if isinstance(spec, dict):
        unknown = set(spec) - set(output_names)
        if unknown:
            raise InvalidArgumentError(f"compile: {what} given for unknown outputs {sorted(unknown)}; the model's "
                                       f"outputs are {output_names}")
        return [spec.get(name) for name in output_names]
    if isinstance(spec, (list, tuple)) and not allow_list_for_all:
        if len(spec) != n:
            raise InvalidArgumentError(f"compile: {len(spec)} {what} given for {n} outputs {output_names}")
        return list(spec)
    return [spec] * n


def _as_loss(identifier, output_name):
    obj = _losses.get(identifier)
    if obj is None or isinstance(obj, _losses.Loss):
        return obj
    if callable(obj):
        return _losses.LossFunctionWrapper(obj, name=getattr(obj, "__name__", "loss").lstrip("_"))
    raise InvalidArgumentError(f"compile: cannot use {identifier!r} as the loss of output {output_name!r}")


def _copy_metric(m):
    """A fresh metric like `m` (a metric object listed for several outputs gets one copy per output)."""
    if type(m) is _metrics.MeanMetricWrapper:
        return _metrics.MeanMetricWrapper(m._fn, name=m.name, **m._fn_kwargs)
    return type(m).from_config(m.get_config())


class CompiledSpec:
    """The resolved compile() arguments of a model.

    Args:
        output_names: the model's output names, in order.
        loss, loss_weights, metrics, weighted_metrics: as given to compile().
    """

    def __init__(self, output_names, loss, metrics=None, loss_weights=None, weighted_metrics=None):
        self.output_names = list(output_names)
        n = len(self.output_names)
        raw_losses = _per_output(loss, self.output_names, "losses")
        self.losses = [_as_loss(l, name) if l is not None else None for l, name in zip(raw_losses, self.output_names)]
        if all(l is None for l in self.losses) and loss is not None:
            raise InvalidArgumentError("compile: no loss for any output")
        if loss_weights is None:
            self.loss_weights = [1.0] * n
        else:
            lw = _per_output(loss_weights, self.output_names, "loss_weights")
            self.loss_weights = [1.0 if w is None else float(w) for w in lw]
        self._metric_specs = self._metric_lists(metrics, "metrics")
        self._weighted_specs = self._metric_lists(weighted_metrics, "weighted_metrics")
        self.metrics = None   # [(output index, Metric, weighted)] once built

    def _metric_lists(self, spec, what):
        n = len(self.output_names)
        if spec is None:
            return [[] for _ in range(n)]
        if isinstance(spec, dict):
            out = _per_output(spec, self.output_names, what)
            return [[] if s is None else (list(s) if isinstance(s, (list, tuple)) else [s]) for s in out]
        if isinstance(spec, (list, tuple)):
            if spec and all(isinstance(s, (list, tuple)) or s is None for s in spec):
                if len(spec) != n:
                    raise InvalidArgumentError(f"compile: {len(spec)} {what} lists given for {n} outputs")
                return [list(s or []) for s in spec]
            return [list(spec) for _ in range(n)]
        return [[spec] for _ in range(n)]

    def _resolve(self, identifier, index, y_true_shape, y_pred_shape):
        loss = self.losses[index]
        if isinstance(identifier, str) and identifier in ("accuracy", "acc", "crossentropy", "ce"):
            kind = _classify(loss, y_true_shape, y_pred_shape)
            if identifier in ("accuracy", "acc"):
                cls = {"binary": _metrics.BinaryAccuracy, "sparse": _metrics.SparseCategoricalAccuracy,
                       "categorical": _metrics.CategoricalAccuracy}[kind]
            else:
                cls = {"binary": _metrics.BinaryCrossentropy, "sparse": _metrics.SparseCategoricalCrossentropy,
                       "categorical": _metrics.CategoricalCrossentropy}[kind]
            return cls(name=identifier)
        return _metrics.get(identifier)

    def build_metrics(self, y_true_shapes, y_pred_shapes):
        """Create the metric objects (once) from the static shapes of targets and predictions.

        Returns:
            [(output index, Metric, weighted)].
        """
        if self.metrics is not None:
            return self.metrics
        used, out, names = set(), [], set()
        multi = len(self.output_names) > 1
        for weighted, specs in ((False, self._metric_specs), (True, self._weighted_specs)):
            for i, items in enumerate(specs):
                for ident in items:
                    m = self._resolve(ident, i, y_true_shapes[i], y_pred_shapes[i])
                    if id(m) in used:
                        m = _copy_metric(m)
                    used.add(id(m))
                    base = m.name
                    if weighted and any(base == x.name.rsplit(self.output_names[i] + "_", 1)[-1]
                                        for j, x, _ in out if j == i):
                        base = "weighted_" + base
                    name = f"{self.output_names[i]}_{base}" if multi else base
                    k, unique = 1, name
                    while unique in names or unique == "loss":
                        unique = f"{name}_{k}"
                        k += 1
                    names.add(unique)
                    m.name = unique
                    out.append((i, m, weighted))
        self.metrics = out
        return out


def _classify(loss, y_true_shape, y_pred_shape):
    """'binary', 'sparse' or 'categorical', as Keras decides what "accuracy" means."""
    fn = getattr(loss, "fn", None)
    if fn is _losses.binary_crossentropy:
        return "binary"
    if fn is _losses.sparse_categorical_crossentropy:
        return "sparse"
    if fn is _losses.categorical_crossentropy:
        return "categorical"
    p_last = y_pred_shape[-1] if y_pred_shape.ndims else None
    t_rank, p_rank = y_true_shape.ndims, y_pred_shape.ndims
    t_last = y_true_shape[-1] if t_rank else None
    if p_last == 1:
        return "binary"
    if (t_rank is not None and p_rank is not None and t_rank < p_rank) or (t_last == 1 and p_last != 1):
        return "sparse"
    return "categorical"
