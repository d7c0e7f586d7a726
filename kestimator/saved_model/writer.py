"""Writing a SavedModel folder: the part of a graph that computes some signatures, plus variable values.

Folder layout::

    saved_model.json          {"format": "kestimator.saved_model/<N>", "kestimator_version", "ops": [...],
                               "variables": [...], "signatures": {...}}
    variables/variables.h5    variable values ("variables/<name>") and constants ("constants/c<i>")
    assets.extra/             files given as assets_extra

The folder is assembled under a temporary name next to its destination and renamed into place, so a
reader never sees a half-written export.
"""
import json
import os
import shutil
import time

from .. import _formats
from ..engine.graph import Tensor
from ..errors import InvalidArgumentError
from .graph_json import FORMAT, AttrEncoder, encode_ops

GRAPH_FILE = "saved_model.json"
VARIABLES_FILE = os.path.join("variables", "variables.h5")


def _needed_ops(outputs, inputs):
    """Ops that `outputs` depend on (data and control edges), stopping at `inputs`; in creation order."""
    stop = {t.op for t in inputs}
    seen, stack = set(), [t.op for t in outputs]
    while stack:   # explicit stack: deep graphs must not hit the recursion limit
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        if op in stop:
            continue
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return sorted(seen, key=lambda op: op._id)


def _check_signature(name, sig):
    for part in ("inputs", "outputs"):
        tensors = sig.get(part)
        if not isinstance(tensors, dict) or not tensors:
            raise InvalidArgumentError(f"signature {name!r}: {part} must be a non-empty dict name -> Tensor")
        for k, t in tensors.items():
            conv = getattr(t, "_as_tensor", None)
            t = conv() if conv is not None else t
            if not isinstance(t, Tensor):
                raise InvalidArgumentError(f"signature {name!r}: {part}[{k!r}] is not a graph Tensor")
            tensors[k] = t


def write_saved_model(export_dir, session, signatures, assets_extra=None):
    """Write the subgraph computing `signatures` and the session's variable values to `export_dir`.

    Args:
        export_dir: the folder to create (must not exist).
        session: a Session of the graph, with the variables holding the values to export.
        signatures: {name: {"inputs": {key: placeholder}, "outputs": {key: tensor}, "method_name": str}}.
        assets_extra: optional {destination path inside assets.extra: source file}.

    Returns:
        export_dir.

    Raises:
        InvalidArgumentError: an output needs a placeholder that no signature input provides, an op attribute
            cannot be exported (a Python callable or object; the op and attribute are named), or export_dir
            exists.
    """
    from ..engine import checkpoint as _ckpt
    export_dir = os.fspath(export_dir)
    if os.path.exists(export_dir):
        raise InvalidArgumentError(f"export folder {export_dir} already exists")
    sigs = {}
    for name, sig in signatures.items():
        sig = {"inputs": dict(sig["inputs"]), "outputs": dict(sig["outputs"]),
               "method_name": sig.get("method_name", "predict")}
        _check_signature(name, sig)
        sigs[name] = sig
    inputs = {t for s in sigs.values() for t in s["inputs"].values()}
    outputs = [t for s in sigs.values() for t in s["outputs"].values()]
    graph = session.graph
    for t in list(inputs) + outputs:
        if t.graph is not graph:
            raise InvalidArgumentError(f"signature tensor {t.name} is not in the session's graph")
    ops = _needed_ops(outputs, inputs)
    fed = {t.op for t in inputs}
    for op in ops:
        if op.type == "Placeholder" and op not in fed:
            raise InvalidArgumentError(f"the exported outputs need placeholder {op.name}, which is not a signature "
                                       "input (add it to the serving input receiver's receiver_tensors)")
        if op.type in ("Assign", "AssignAdd", "AssignSub", "ApplyOptimizer"):
            raise InvalidArgumentError(f"the exported outputs depend on op {op.name} ({op.type}), which changes "
                                       "variables; export the inference graph only")
    encoder = AttrEncoder()
    op_json = encode_ops(ops, encoder)
    variables, tensors = [], dict(encoder.arrays)
    for op in ops:
        if op.type == "VariableV2":
            var = getattr(op, "_variable", None)
            if var is None:
                raise InvalidArgumentError(f"op {op.name} is a variable op without a Variable")
            key = f"variables/v{len(variables)}"
            tensors[key] = session.run(var._as_tensor())
            variables.append({"op": op.name, "tensor": key})
    doc = {"format": FORMAT, "kestimator_version": _formats.KESTIMATOR_VERSION, "ops": op_json, "variables": variables,
           "signatures": {name: {"inputs": {k: t.name for k, t in s["inputs"].items()},
                                 "outputs": {k: t.name for k, t in s["outputs"].items()},
                                 "method_name": s["method_name"]} for name, s in sigs.items()},
           "created": time.time()}
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(export_dir)}-{os.getpid()}")
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    try:
        os.makedirs(os.path.join(tmp, "variables"))
        _ckpt.save_tensors(os.path.join(tmp, VARIABLES_FILE), tensors, {"format": FORMAT})
        with open(os.path.join(tmp, GRAPH_FILE), "w", encoding="utf-8") as f:
            json.dump(doc, f, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        for dest, src in (assets_extra or {}).items():
            target = os.path.normpath(os.path.join(tmp, "assets.extra", dest))
            if not target.startswith(os.path.join(tmp, "assets.extra") + os.sep):
                raise InvalidArgumentError(f"assets_extra destination {dest!r} leaves the assets.extra folder")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(src, target)
        os.replace(tmp, export_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return export_dir
