"""The engine side of a Keras model: one Graph and one Session for training, evaluation and prediction.

The graph holds input placeholders (batch dimension None), the inference pass (training=False), and,
built when first needed, the training pass (training=True), the loss, the metric updates and the
optimizer's fused update. Each step is a call of a `Session.make_callable` function: one compiled Plan
per feed-shape signature, so an epoch's last, smaller batch adds one more plan once, not per epoch.

Every Weight is attached to the session, so `weight.numpy()` and `layer.get_weights()` read the live
training values and `set_weights` writes them.
"""
import numpy as np

from ..engine import dtypes as _dt
from ..engine.graph import Graph, GraphKeys
from ..engine.ops import core as _core
from ..engine.ops import math_ops as _m
from ..engine.session import Session
from ..engine.variables import variables_initializer
from ..errors import InvalidArgumentError
from ..layers.base import _graph_mode
from ..metrics import keras_metrics as _metrics


def _contains(items, t):
    return any(x is t for x in items)


def _placeholder_name(name):
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(name)) or "input"


class Runtime:
    """Graph + Session + compiled step functions of one model.

    Args:
        model: the Keras model.
        input_specs: [(shape with batch None, DType, name)] for the model's inputs.
    """

    def __init__(self, model, input_specs):
        self.model = model
        self.graph = Graph()
        self.session = Session(graph=self.graph)
        self._initialized = set()
        self._fns = {}
        self._train_pass = None
        self._results = None
        self.compiled = None
        with _graph_mode(), self.graph.as_default():
            self.inputs = [_core.placeholder(dt, shape, name=_placeholder_name(name))
                           for shape, dt, name in input_specs]
            # weight regularizers first, with no layer call in this graph yet, so activity losses of the
            # inference and training passes can be told apart from them afterwards
            self._reg_losses = list(model.graph_losses(self.graph))
            self.outputs = model._call_flat(self.inputs, training=False)
            self._infer_activity = [t for t in model.graph_losses(self.graph) if not _contains(self._reg_losses, t)]
        self._sync_variables()
        self._predict = None

    # -- variables -----------------------------------------------------------------------------------------
    def _sync_variables(self):
        """Create any missing weight variables, initialize new variables, attach the weights."""
        weights = self.model.weights
        with _graph_mode():
            pairs = [(w, w.variable(self.graph)) for w in weights]
        new = [v for v in self.graph.get_collection(GraphKeys.GLOBAL_VARIABLES) +
               self.graph.get_collection(GraphKeys.LOCAL_VARIABLES) if id(v) not in self._initialized]
        if new:
            with _graph_mode(), self.graph.as_default():
                init = variables_initializer(new)
            self.session.run(init)
            self._initialized.update(id(v) for v in new)
        for w, v in pairs:
            w._attach(self.session, v)

    def detach(self):
        """Copy the live weight values back into the weights and close the session."""
        for w in self.model.weights:
            if getattr(w, "_session", None) is self.session:
                w._detach()
        for _, m, _ in (self.compiled.metrics or []) if self.compiled is not None else []:
            if m._bound is not None and m._bound[0] is self.session:
                m._load_numpy_into_session()
                m._bound = None
        self.session.close()

    # -- compile ------------------------------------------------------------------------------------------------
    def set_compiled(self, compiled, optimizer):
        """Forget step functions built for an earlier compile()."""
        self.compiled, self.optimizer = compiled, optimizer
        self._fns = {}
        self._results = None
        self.loss_trackers = None

    def _trackers(self):
        if self.loss_trackers is None:
            names = self.compiled.output_names
            self.loss_trackers = [_metrics.Mean(name="loss")]
            if len(names) > 1:
                self.loss_trackers += [_metrics.Mean(name=f"{n}_loss") if l is not None else None
                                       for n, l in zip(names, self.compiled.losses)]
        return self.loss_trackers

    def all_metrics(self):
        """The loss trackers and the compiled metrics, in log order."""
        out = [m for m in self._trackers() if m is not None]
        return out + [m for _, m, _ in (self.compiled.metrics or [])]

    # -- graph pieces ---------------------------------------------------------------------------------------------
    def _training_pass(self):
        if self._train_pass is None:
            model = self.model
            with _graph_mode(), self.graph.as_default():
                before_l = model.graph_losses(self.graph)
                before_u = model.graph_updates(self.graph)
                outs = model._call_flat(self.inputs, training=True)
                act = [t for t in model.graph_losses(self.graph) if not _contains(before_l, t)]
                upd = [u for u in model.graph_updates(self.graph) if not _contains(before_u, u)]
            self._train_pass = (outs, act, upd)
        return self._train_pass

    def _targets(self, signature):
        targets, weights = [], []
        for i, (shape, dtype) in enumerate(signature["targets"]):
            targets.append(None if shape is None else
                           _core.placeholder(dtype, (None,) + tuple(shape), name=f"target_{i}"))
        for i, shape in enumerate(signature["weights"] or []):
            weights.append(None if shape is None else
                           _core.placeholder(_dt.float32, (None,) + tuple(shape), name=f"sample_weight_{i}"))
        return targets, weights

    def _loss_and_updates(self, outs, extra_losses, targets, weights):
        """(total loss, metric update ops) for outputs `outs`."""
        compiled = self.compiled
        metrics = compiled.build_metrics([t.shape if t is not None else o.shape for t, o in zip(targets, outs)],
                                         [o.shape for o in outs])
        terms, updates = [], []
        trackers = self._trackers()
        like = self.inputs[0]   # its first dimension is the batch size the losses are weighted by
        for i, loss_obj in enumerate(compiled.losses):
            if loss_obj is None or targets[i] is None:
                continue
            sw = weights[i] if weights else None
            value = loss_obj(targets[i], outs[i], sw)
            if value.dtype != _dt.float32:
                value = _core.cast(value, _dt.float32)
            w = compiled.loss_weights[i]
            terms.append(value if w == 1.0 else _m.multiply(value, w))
            if len(trackers) > 1 and trackers[i + 1] is not None:
                updates.append(trackers[i + 1]._update_batch_mean(value, like))
        terms += [_core.cast(t, _dt.float32) if t.dtype != _dt.float32 else t for t in extra_losses]
        if not terms:
            raise InvalidArgumentError("the model has no loss to train or evaluate: compile() with a loss and "
                                       "pass targets (y)")
        total = _m.add_n(terms) if len(terms) > 1 else terms[0]
        updates.insert(0, trackers[0]._update_batch_mean(total, like))
        for i, m, weighted in metrics:
            if targets[i] is None:
                continue
            sw = weights[i] if (weighted and weights) else None
            updates.append(m.update_state(targets[i], outs[i], sample_weight=sw))
        return total, updates

    def _bind_metrics(self):
        for m in self.all_metrics():
            m._bind(self.session, self.graph)

    # -- step functions ---------------------------------------------------------------------------------------------
    def train_function(self, signature):
        """A function `f(*inputs, *targets, *sample_weights)` running one training step."""
        key = ("train", _sig_key(signature))
        fn = self._fns.get(key)
        if fn is not None:
            return fn
        if self.optimizer is None:
            raise InvalidArgumentError("the model must be compiled with an optimizer before training")
        outs, act, upd = self._training_pass()
        with _graph_mode(), self.graph.as_default():
            targets, weights = self._targets(signature)
            total, metric_updates = self._loss_and_updates(outs, self._reg_losses + act, targets, weights)
            variables = [w.variable(self.graph) for w in self.model.trainable_weights]
            ops = list(metric_updates) + list(upd)
            if variables:
                ops.insert(0, self.optimizer.minimize(total, var_list=variables))
            step_op = _core.group(*ops, name="train_step")
        feeds = self.inputs + [t for t in targets if t is not None] + [w for w in weights if w is not None]
        fn = self.session.make_callable([step_op], feed_list=feeds)
        self._sync_variables()
        self._bind_metrics()
        self._fns[key] = fn
        self.model._apply_pending_optimizer_state()
        return fn

    def test_function(self, signature):
        """A function `f(*inputs, *targets, *sample_weights)` accumulating the metrics of one batch."""
        key = ("test", _sig_key(signature))
        fn = self._fns.get(key)
        if fn is not None:
            return fn
        with _graph_mode(), self.graph.as_default():
            targets, weights = self._targets(signature)
            _, metric_updates = self._loss_and_updates(self.outputs, self._reg_losses + self._infer_activity,
                                                       targets, weights)
            step_op = _core.group(*metric_updates, name="test_step")
        feeds = self.inputs + [t for t in targets if t is not None] + [w for w in weights if w is not None]
        fn = self.session.make_callable([step_op], feed_list=feeds)
        self._sync_variables()
        self._bind_metrics()
        self._fns[key] = fn
        return fn

    def predict_function(self):
        """A function `f(*inputs)` returning the list of output arrays."""
        if self._predict is None:
            self._predict = self.session.make_callable(list(self.outputs), feed_list=self.inputs)
        return self._predict

    # -- metrics --------------------------------------------------------------------------------------------------
    def reset_metrics(self):
        self._bind_metrics()   # a metric used eagerly in between unbinds itself; its state lives here again
        for m in self.all_metrics():
            m.reset_state()

    def results(self):
        """{name: value} of the loss trackers and metrics (floats; arrays for multi-threshold metrics)."""
        ms = self.all_metrics()
        if self._results is None or self._results[0] != [id(m) for m in ms]:
            tensors = [m.result_tensor(self.graph) for m in ms]
            self._sync_variables()
            self._results = ([id(m) for m in ms], self.session.make_callable(tensors, feed_list=[]),
                             [m.name for m in ms])
        values = self._results[1]()
        out = {}
        for name, v in zip(self._results[2], values):
            out[name] = float(v) if np.ndim(v) == 0 else np.asarray(v)
        return out

    # -- learning rate ----------------------------------------------------------------------------------------------
    def learning_rate_variable(self):
        with _graph_mode():
            var = self.optimizer.learning_rate_variable(self.graph)
        if id(var) not in self._initialized:
            self._sync_variables()
        return var


def _sig_key(signature):
    return (tuple((None if s is None else tuple(s), None if d is None else d.name)
                  for s, d in signature["targets"]),
            None if signature["weights"] is None else tuple(None if s is None else tuple(s)
                                                            for s in signature["weights"]))
