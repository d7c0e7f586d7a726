"""`model.summary()`: Keras's table of layers, output shapes and parameter counts."""
import numpy as np

from ..errors import InvalidArgumentError


def _count(weights):
    return int(sum(int(np.prod(tuple(w.shape), dtype=np.int64)) for w in weights))


def _shape_text(layer, model):
    try:
        nodes = [n for n in layer._inbound_nodes if model._network is None or n in model._network.nodes
                 or getattr(layer, "is_placeholder", False)]
        node = nodes[-1] if nodes else None
        out = node.outputs if node is not None else None
    except (AttributeError, IndexError):
        return "?"
    if out is None:
        return "?"
    from ..layers import _nest
    shapes = [tuple(t.shape) for t in _nest.flatten(out) if t is not None]
    text = [str(s).replace(",)", ")") for s in shapes]
    if len(text) == 1:
        return text[0]
    return "[" + ", ".join(text) + "]"


def _human_bytes(n):
    for unit in ("Byte", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0
    return f"{n:.2f} GB"


def _connections(layer, model):
    net = model._network
    out = []
    for node in layer._inbound_nodes:
        if net is None or node not in net.nodes:
            continue
        for t in node.input_tensors:
            src, ni, ti = t._keras_history
            out.append(f"{src.name}[{net.node_index.get((id(src), ni), ni)}][{ti}]")
    return out


def print_summary(model, line_length=None, positions=None, print_fn=None, expand_nested=False,
                  show_trainable=False):
    """Print the summary table of `model` with `print_fn` (default print).

    Raises:
        InvalidArgumentError: the model is not built yet (its input shape is unknown).
    """
    if not model.built and model._network is None:
        raise InvalidArgumentError(f"model {model.name!r} has not been built yet: give the first layer an "
                                   "input_shape, start it with keras.Input(...), or fit/call it on data first")
    print_fn = print_fn or print
    from .sequential import Sequential
    sequential = isinstance(model, Sequential)
    layers = model.layers
    show_connections = not sequential and model._network is not None and any(
        len(n.input_tensors) > 1 for l in layers for n in l._inbound_nodes if n in model._network.nodes)
    line_length = line_length or (98 if show_connections else 65)
    if positions is None:
        positions = [0.33, 0.55, 0.67, 1.0] if show_connections else [0.45, 0.85, 1.0]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if show_connections else [])

    def row(fields):
        line = ""
        for i, field in enumerate(fields):
            if i > 0:
                line = line[:positions[i - 1] - 1] + " "
            line += str(field)
            line = line[:positions[i]]
            line += " " * (positions[i] - len(line))
        return line

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(row(headers))
    print_fn("=" * line_length)
    for layer in layers:
        params = layer.count_params() if layer.built else 0
        fields = [f"{layer.name} ({type(layer).__name__})", _shape_text(layer, model), params]
        if show_connections:
            conns = _connections(layer, model)
            fields.append(conns[0] if conns else "")
            print_fn(row(fields))
            for c in conns[1:]:
                print_fn(row(["", "", "", c]))
        else:
            print_fn(row(fields))
    print_fn("=" * line_length)
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    total = trainable + non_trainable
    itemsize = 4
    print_fn(f"Total params: {total} ({_human_bytes(total * itemsize)})")
    print_fn(f"Trainable params: {trainable} ({_human_bytes(trainable * itemsize)})")
    print_fn(f"Non-trainable params: {non_trainable} ({_human_bytes(non_trainable * itemsize)})")
    print_fn("_" * line_length)
