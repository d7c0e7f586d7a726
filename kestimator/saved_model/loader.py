"""Loading a SavedModel folder into a new graph and serving its signatures.

Nothing from the folder runs as code: the graph is JSON read with `json`, op types must already be
registered in the engine (the registry is the allow-list), attributes decode only to plain values
(`graph_json.decode_attr`), and the tensors come from `engine.checkpoint.load_tensors`, which refuses
links, external storage and sizes the file does not back. Every op is re-created through `apply_op`, so
its shape rule checks the inputs as when the graph was first built.
"""
import importlib
import os

import numpy as np

from .. import _formats
from ..engine.dtypes import DType
from ..engine.graph import Graph
from ..engine.registry import apply_op, registered_ops
from ..engine.session import Session
from ..engine.variables import Variable, variables_initializer
from ..errors import DataLossError, InvalidArgumentError, NotFoundError, UnsafeFileError
from .graph_json import FORMAT, decode_attr
from .writer import GRAPH_FILE, VARIABLES_FILE

# Modules that register op types beyond the engine core, imported when a graph names one of their ops.
_OP_MODULES = ("kestimator.feature_column._ops", "kestimator.estimators._ops", "kestimator.engine.summary",
               "kestimator.metrics.keras_metrics", "kestimator.engine.ops.conv_ops", "kestimator.layers",
               "kestimator.estimators.boosted_trees.graph_ops")
_NOT_LOADABLE = {"Initializer", "ApplyOptimizer", "Assign", "AssignAdd", "AssignSub"}
_MAX_OPS = 1_000_000


def _import_op_modules():
    """Register every op type a SavedModel may hold: the same fixed modules on every load, imported before
    the file is read, so that nothing a file says decides what is imported."""
    for mod in _OP_MODULES:
        try:
            importlib.import_module(mod)
        except ImportError:
            continue


def _known_op(op_type, where):
    if op_type in _NOT_LOADABLE:
        raise UnsafeFileError(f"{where}: op type {op_type!r} is not allowed in a SavedModel")
    if op_type in registered_ops():
        return
    raise UnsafeFileError(f"{where}: op type {op_type!r} is not registered in this kestimator; refusing to load it")


def _check_doc(doc, path):
    """Refuse what is not a SavedModel, or one in a newer format than this kestimator reads."""
    prefix = FORMAT.rsplit("/", 1)[0]
    tag = doc.get("format") if isinstance(doc, dict) else None
    version = _formats.tagged_version(tag, prefix)
    if version is None:
        raise DataLossError(f"{path} is not a kestimator SavedModel (format {tag!r:.80})")
    _formats.check_version(version, _formats.SAVED_MODEL_FORMAT, path, "SavedModel",
                           writer=doc.get("kestimator_version"))
    for key, kind in (("ops", list), ("variables", list), ("signatures", dict)):
        if not isinstance(doc.get(key), kind):
            raise DataLossError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if len(doc["ops"]) > _MAX_OPS:
        raise UnsafeFileError(f"{path}: {len(doc['ops'])} ops is more than this loader accepts ({_MAX_OPS})")


class Signature:
    """A callable serving one signature: `sig(**inputs)` -> {output name: array}.

    Attributes:
        inputs / outputs: {name: Tensor} of the loaded graph.
    """

    def __init__(self, name, session, inputs, outputs, method_name):
        self.name, self.session, self.method_name = name, session, method_name
        self.inputs, self.outputs = inputs, outputs
        self._input_names = sorted(inputs)
        self._output_names = sorted(outputs)
        self._fn = session.make_callable([outputs[k] for k in self._output_names],
                                         [inputs[k] for k in self._input_names])

    def __call__(self, **inputs):
        missing = [k for k in self._input_names if k not in inputs]
        extra = sorted(set(inputs) - set(self._input_names))
        if missing or extra:
            raise InvalidArgumentError(f"signature {self.name!r} takes inputs {self._input_names}; missing {missing}, "
                                       f"unexpected {extra}")
        values = []
        for k in self._input_names:
            v = inputs[k]
            arr = np.asarray(v)
            if arr.dtype.kind in "US":
                arr = arr.astype(object)
            values.append(arr)
        out = self._fn(*values)
        return dict(zip(self._output_names, out))

    def __repr__(self):
        return f"<Signature {self.name!r} inputs={self._input_names} outputs={self._output_names}>"


class LoadedModel:
    """A loaded SavedModel: `signatures[name](**inputs)`, and `predict(features)` for the default one.

    Attributes:
        graph, session: the re-created graph and its session (variables initialized).
        signatures: {name: Signature}.
    """

    def __init__(self, path, graph, session, signatures):
        self.path, self.graph, self.session, self.signatures = path, graph, session, signatures

    def predict(self, features, signature="serving_default"):
        """Outputs of `signature` for a dict of input arrays (or one array for a one-input signature)."""
        if signature not in self.signatures:
            raise NotFoundError(f"SavedModel {self.path} has no signature {signature!r}; it has "
                                f"{sorted(self.signatures)}")
        sig = self.signatures[signature]
        if not isinstance(features, dict):
            if len(sig.inputs) != 1:
                raise InvalidArgumentError(f"signature {signature!r} takes {sorted(sig.inputs)}; pass a dict")
            features = {next(iter(sig.inputs)): features}
        return sig(**features)


def load(export_dir, tags=None):
    """Load a SavedModel folder written by Estimator.export_saved_model (or saved_model.writer).

    Args:
        export_dir: the folder.
        tags: accepted for TF compatibility; ignored.

    Returns:
        A LoadedModel.

    Raises:
        NotFoundError: the folder or its files are missing.
        DataLossError: malformed JSON or variables file.
        UnsafeFileError: an op type that is not registered (or not allowed), or a malformed attribute.
    """
    _import_op_modules()
    export_dir = os.fspath(export_dir)
    graph_path = os.path.join(export_dir, GRAPH_FILE)
    if not os.path.isfile(graph_path):
        raise NotFoundError(f"no SavedModel in {export_dir} ({GRAPH_FILE} not found)")
    # Malformed content that no check below foresaw (a missing key, a wrong type) still leaves as a
    # DataLossError naming the file, never as a KeyError / IndexError from deep inside.
    with _formats.reading(graph_path, "SavedModel"):
        return _load_doc(export_dir, graph_path)


def _load_doc(export_dir, graph_path):
    from ..engine import checkpoint as _ckpt
    with open(graph_path, "rb") as f:
        doc = _formats.loads_json(f.read(), graph_path, "the SavedModel graph")
    _check_doc(doc, graph_path)
    arrays = _ckpt.load_tensors(os.path.join(export_dir, VARIABLES_FILE))
    var_tensor = {}
    for v in doc["variables"]:
        if not isinstance(v, dict) or not isinstance(v.get("op"), str) or v.get("tensor") not in arrays:
            raise DataLossError(f"{graph_path}: malformed variable entry {v!r:.100}")
        var_tensor[v["op"]] = arrays[v["tensor"]]
    g = Graph()
    tensors = {}
    variables = []
    with g.as_default():
        for i, spec in enumerate(doc["ops"]):
            _build_op(spec, i, graph_path, arrays, var_tensor, tensors, variables, g)
        sess = Session(graph=g)
        if variables:
            sess.run(variables_initializer(variables))
    signatures = {}
    for name, sig in doc["signatures"].items():
        try:
            ins = {k: tensors[t] for k, t in sig["inputs"].items()}
            outs = {k: tensors[t] for k, t in sig["outputs"].items()}
        except (KeyError, TypeError, AttributeError) as e:
            raise DataLossError(f"{graph_path}: signature {name!r} names an unknown tensor {e}") from None
        signatures[name] = Signature(name, sess, ins, outs, str(sig.get("method_name", "predict")))
    return LoadedModel(export_dir, g, sess, signatures)


def _build_op(spec, index, path, arrays, var_tensor, tensors, variables, g):
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("type"), str):
        raise DataLossError(f"{path}: op #{index} is malformed")
    name, op_type = spec["name"], spec["type"]
    where = f"{path}: op {name!r}"
    if not isinstance(spec.get("inputs", []), list) or not isinstance(spec.get("control_inputs", []), list) or \
            not isinstance(spec.get("attrs", {}), dict):
        raise DataLossError(f"{where} is malformed")
    if op_type == "VariableV2":
        if name not in var_tensor:
            raise DataLossError(f"{where}: no value for this variable in the variables file")
        value = var_tensor[name]
        attrs = {k: decode_attr(v, arrays, f"{where} attribute {k!r}") for k, v in spec["attrs"].items()}
        shape = tuple(attrs.get("shape", ()))
        if tuple(value.shape) != shape:
            raise DataLossError(f"{where}: stored value has shape {value.shape}, the op declares {shape}")
        with g.name_scope(""):
            var = Variable(value, trainable=False, name=name, dtype=attrs.get("dtype"))
        tensors[f"{name}:0"] = var._as_tensor()
        variables.append(var)
        return
    _known_op(op_type, where)
    try:
        inputs = [tensors[t] for t in spec["inputs"]]
        controls = [tensors[c + ":0"].op if c + ":0" in tensors else _op_named(tensors, c)
                    for c in spec["control_inputs"]]
    except (KeyError, TypeError):
        raise DataLossError(f"{where} reads a tensor defined later or nowhere (ops must be in order)") from None
    attrs = {k: decode_attr(v, arrays, f"{where} attribute {k!r}") for k, v in spec["attrs"].items()}
    if op_type == "Const" and not (isinstance(attrs.get("dtype"), DType) and isinstance(attrs.get("value"), np.ndarray)):
        # the graph passes read a constant's dtype and value; found by the slow fuzz tier ("dtype": null)
        raise DataLossError(f"{where} (Const) needs an array 'value' and a 'dtype'; the file gives "
                            f"{type(attrs.get('value')).__name__} and {attrs.get('dtype')!r}")
    with g.name_scope(""), g.control_dependencies(controls):
        try:
            out = apply_op(op_type, inputs, attrs, name=name)
        except (InvalidArgumentError, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            # a shape rule given the wrong number or kind of inputs (a malformed file) fails in many ways
            raise DataLossError(f"{where} ({op_type}) cannot be rebuilt: {type(e).__name__}: {e}") from None
    outs = out if isinstance(out, tuple) else ((out,) if out is not None else ())
    if not outs and op_type == "NoOp":
        tensors[f"{name}:op"] = g.get_operations()[-1]
    for i, t in enumerate(outs):
        tensors[f"{name}:{i}"] = t


def _op_named(tensors, name):
    op = tensors.get(f"{name}:op")
    if op is None:
        raise KeyError(name)
    return op
