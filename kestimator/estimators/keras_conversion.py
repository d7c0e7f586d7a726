"""model_to_estimator: an Estimator that trains, evaluates and serves a compiled Keras model.

The model_fn calls the Keras model on the Estimator's feature placeholders: each Keras weight becomes a
variable of the Estimator's graph, initialized from the weight's current value (so a fresh Estimator
starts from the Keras model's weights, and evaluate() before any training matches model.evaluate()).
The loss, loss weights and metrics are rebuilt from the model's compile() arguments; the optimizer is a
copy of the model's (same class and config), and the model's optimizer state (slots, iteration count),
when it has one, is loaded into it before the first training step. The Keras model itself is not changed
by training the Estimator (as in TF, the Estimator has its own copy of the weights in model_dir).

Features: a dict keyed by the model's Input names (or one array for a one-input model). Labels: one array
for a one-output model, else a dict keyed by output names. Predictions: a dict keyed by output names.
"""
import numpy as np

from ..engine.graph import get_default_graph
from ..engine.ops.core import cast, convert_to_tensor, group
from ..engine.ops.math_ops import add_n, multiply
from ..errors import InvalidArgumentError
from ._global_step import get_global_step
from .estimator import Estimator
from .export_output import PredictOutput
from .hooks import SessionRunHook
from .model_fn import EstimatorSpec, ModeKeys

__all__ = ["model_to_estimator"]


def _check_convertible(model):
    """Everything that would fail later fails here, naming the part."""
    name = getattr(model, "name", type(model).__name__)
    if not hasattr(model, "_call_flat"):
        raise InvalidArgumentError(f"model_to_estimator: {name!r} is not a ks.keras Model")
    if getattr(model, "_network", None) is None:
        raise InvalidArgumentError(f"model_to_estimator: model {name!r} is a subclassed model without Input layers; "
                                   "only Sequential and functional models can be converted (their Input names "
                                   "name the features)")
    if getattr(model, "optimizer", None) is None or getattr(model, "_compile_config", None) is None:
        raise InvalidArgumentError(f"model_to_estimator: model {name!r} must be compiled (optimizer and loss) first")
    from ..models.compile_utils import CompiledSpec
    spec = CompiledSpec(model.output_names, **model._compile_config)
    if all(l is None for l in spec.losses):
        raise InvalidArgumentError(f"model_to_estimator: model {name!r} was compiled without a loss")
    try:
        type(model.optimizer).from_config(model.optimizer.get_config())
    except Exception as e:   # an optimizer that cannot be copied is named now, not at the first train()
        raise InvalidArgumentError(f"model_to_estimator: the optimizer {type(model.optimizer).__name__} of model "
                                   f"{name!r} cannot be copied: {e}") from None
    dup = sorted({n for n in model.input_names if model.input_names.count(n) > 1})
    if dup:
        raise InvalidArgumentError(f"model_to_estimator: model {name!r} has several inputs named {dup}")


def _as_list(values, names, what, model_name):
    """Values in `names` order from a dict (keys must match) or a single tensor (one name)."""
    if isinstance(values, dict):
        keys = sorted(values)
        if sorted(names) != keys:
            raise InvalidArgumentError(f"model_to_estimator ({model_name}): the {what} have keys {keys}, but the "
                                       f"model expects {sorted(names)} (its {'Input' if what == 'features' else 'output'}"
                                       " layer names)")
        return [values[n] for n in names]
    if len(names) != 1:
        raise InvalidArgumentError(f"model_to_estimator ({model_name}): the model has {what} {names}; give a dict "
                                   "keyed by these names")
    return [values]


class _OptimizerStateHook(SessionRunHook):
    """Loads the Keras model's optimizer state into the Estimator's optimizer when training starts fresh."""

    def __init__(self, state, optimizer, weights, graph):
        self.state, self.optimizer, self.weights, self.graph = state, optimizer, weights, graph

    def after_create_session(self, session, coord):
        gs = get_global_step(self.graph)
        if gs is None or int(session.run(gs)) != 0:
            return   # resumed from a checkpoint: its optimizer state wins
        slots = self.state.get("slots", {})
        for w in self.weights:
            var = w.variable(self.graph)
            for slot in self.optimizer.get_slot_names():
                value = slots.get((w.name, slot))
                svar = self.optimizer.get_slot(var, slot)
                if value is not None and svar is not None and tuple(svar.shape) == tuple(np.shape(value)):
                    svar.load(value, session)
        iterations = self.optimizer._state(self.graph).get("iterations")
        if iterations is not None and self.state.get("iterations") is not None:
            iterations.load(np.int64(self.state["iterations"]), session)


def _make_model_fn(model):
    from ..layers.base import _graph_mode
    from ..models.compile_utils import CompiledSpec
    input_dtypes = [getattr(t, "dtype", None) for t in model.inputs]

    def model_fn(features, labels, mode):
        g = get_default_graph()
        inputs = _as_list(features, list(model.input_names), "features", model.name)
        inputs = [cast(convert_to_tensor(x), dt) if dt is not None and not convert_to_tensor(x).dtype.is_string
                  and convert_to_tensor(x).dtype != dt else convert_to_tensor(x) for x, dt in zip(inputs, input_dtypes)]
        training = mode == ModeKeys.TRAIN
        with _graph_mode():
            losses_before = list(model.graph_losses(g))
            updates_before = list(model.graph_updates(g))
            outputs = model._call_flat(inputs, training=training)
            extra_losses = [t for t in model.graph_losses(g) if not any(t is b for b in losses_before)]
            updates = [u for u in model.graph_updates(g) if not any(u is b for b in updates_before)]
        names = list(model.output_names)
        predictions = dict(zip(names, outputs))
        if mode == ModeKeys.PREDICT:
            return EstimatorSpec(mode, predictions=predictions,
                                 export_outputs={"serving_default": PredictOutput(predictions)})
        targets = _as_list(labels, names, "labels", model.name)
        targets = [convert_to_tensor(t) for t in targets]
        compiled = CompiledSpec(names, **model._compile_config)
        terms = []
        with _graph_mode():
            for i, loss_obj in enumerate(compiled.losses):
                if loss_obj is None:
                    continue
                value = cast(loss_obj(targets[i], outputs[i], None), outputs[i].dtype) \
                    if outputs[i].dtype.is_floating else loss_obj(targets[i], outputs[i], None)
                w = compiled.loss_weights[i]
                terms.append(value if w == 1.0 else multiply(value, w))
            terms += list(extra_losses)
            total = add_n(terms) if len(terms) > 1 else terms[0]
            if mode == ModeKeys.EVAL:
                metrics = compiled.build_metrics([t.shape for t in targets], [o.shape for o in outputs])
                ops = {m.name: m.as_tf1(targets[i], outputs[i]) for i, m, _ in metrics}
                return EstimatorSpec(mode, predictions=predictions, loss=total, eval_metric_ops=ops)
            optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
            weights = list(model.trainable_weights)
            variables = [w.variable(g) for w in weights]
            step = optimizer.minimize(total, var_list=variables, global_step=get_global_step(g))
            train_op = group(step, *updates) if updates else step
        hooks = []
        state = model._optimizer_state() if hasattr(model, "_optimizer_state") else None
        if state:
            hooks.append(_OptimizerStateHook(state, optimizer, weights, g))
        return EstimatorSpec(mode, predictions=predictions, loss=total, train_op=train_op, training_hooks=hooks)

    return model_fn


def model_to_estimator(keras_model=None, keras_model_path=None, custom_objects=None, model_dir=None, config=None,
                       checkpoint_format=None, metric_names_map=None, export_outputs=None):
    """An Estimator equivalent to a compiled Keras model (tf.keras.estimator.model_to_estimator).

    Args:
        keras_model: a compiled Sequential or functional ks.keras model.
        keras_model_path: alternatively, a saved model file (.h5) loaded with ks.models.load_model.
        custom_objects: classes / functions the saved file names (for keras_model_path).
        model_dir, config: as Estimator.
        checkpoint_format: accepted for compatibility (checkpoints are kestimator's).
        metric_names_map / export_outputs: not supported (must be None).

    Returns:
        An Estimator.

    Raises:
        InvalidArgumentError: both or neither of keras_model / keras_model_path; a model that is not
            compiled, is subclassed, or whose loss / metrics / optimizer cannot be rebuilt (named).
    """
    if (keras_model is None) == (keras_model_path is None):
        raise InvalidArgumentError("model_to_estimator: give exactly one of keras_model and keras_model_path")
    if metric_names_map is not None or export_outputs is not None:
        raise InvalidArgumentError("model_to_estimator: metric_names_map and export_outputs are not supported")
    if keras_model_path is not None:
        from ..models import load_model
        keras_model = load_model(keras_model_path, custom_objects=custom_objects)
    _check_convertible(keras_model)
    return Estimator(_make_model_fn(keras_model), model_dir=model_dir, config=config)
