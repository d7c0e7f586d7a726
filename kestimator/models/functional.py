"""The functional graph of a model: which layer calls (Nodes) lead from the inputs to the outputs, in
what order to run them, and the Keras config form of that graph (both tf.keras 2's and Keras 3's).

Running the model means calling each node's layer on engine tensors in this order (`run_nodes`), so a
nested model is simply a layer whose call runs its own nodes.
"""
from ..errors import InvalidArgumentError
from ..layers import _nest
from ..layers.base import KerasTensor


class GraphNetwork:
    """The nodes between `inputs` and `outputs` (flat lists of KerasTensors), topologically ordered.

    Attributes:
        nodes: the nodes to run, inputs first (InputLayer nodes excluded).
        layers: every layer of the model in Keras's order (input layers first, then by first use).
        node_index: {(layer, index in layer._inbound_nodes): index among this network's nodes of that
            layer}: the node numbers a config refers to.

    Raises:
        InvalidArgumentError: an output cannot be computed from the inputs (names the tensor), or a
            value is not a KerasTensor.
    """

    def __init__(self, inputs, outputs):
        for t in list(inputs) + list(outputs):
            if not isinstance(t, KerasTensor) or t._keras_history is None:
                raise InvalidArgumentError(f"model inputs and outputs must be KerasTensors from keras.Input and "
                                           f"layer calls, got {t!r}")
        self.inputs, self.outputs = list(inputs), list(outputs)
        input_ids = {id(t) for t in self.inputs}
        # depth-first discovery from the outputs (explicit stack), remembering the order nodes were met
        found, order, stack = {}, [], []
        for t in reversed(self.outputs):
            stack.append(t.node)
        while stack:
            node = stack.pop()
            if id(node) in found:
                continue
            found[id(node)] = node
            order.append(node)
            for t in reversed(node.input_tensors):
                if id(t) in input_ids:
                    continue
                if t._keras_history is None:
                    raise InvalidArgumentError(f"tensor {t.name} has no producing layer")
                stack.append(t.node)
        for node in order:
            if _is_input_node(node) and not any(id(t) in input_ids for t in node.output_tensors):
                missing = node.output_tensors[0]
                raise InvalidArgumentError(
                    f"graph disconnected: cannot obtain the value of tensor {missing.name} (input layer "
                    f"{node.layer.name!r}) from the model inputs {[t.name for t in self.inputs]}")
        self.nodes = _topological(order, input_ids)
        self.layers = _layers_by_depth(self.inputs, self.outputs, input_ids)
        # Config node numbers: per layer, its nodes in this network in creation order. A nested model
        # starts at 1, as tf.keras numbers it (its node 0 there links its own inputs to outputs).
        in_net = {id(n) for n in self.nodes}
        self.node_index = {}
        for t in self.inputs:
            layer, ni, _ = t._keras_history
            self.node_index[(id(layer), ni)] = 0
        for layer in self.layers:
            k = first_node_number(layer)
            for ni, node in enumerate(layer._inbound_nodes):
                if id(node) in in_net:
                    self.node_index[(id(layer), ni)] = k
                    k += 1

    def run(self, input_values, training=None):
        """The output engine tensors for `input_values` (one per model input), calling each layer."""
        from ..layers.base import learning_phase_scope
        values = {id(t): v for t, v in zip(self.inputs, input_values)}

        def lookup(kt):
            try:
                return values[id(kt)]
            except KeyError:
                raise InvalidArgumentError(f"tensor {kt.name} is needed before it is computed") from None
        scope = learning_phase_scope(training) if training is not None else _null()
        with scope:
            for node in self.nodes:
                args, kwargs = node.map_arguments(lookup)
                out = node.layer(*args, **kwargs)
                flat_out = _nest.flatten(out)
                flat_kt = _nest.flatten(node.outputs)
                if len(flat_out) != len(flat_kt):
                    raise InvalidArgumentError(f"layer {node.layer.name!r} returned {len(flat_out)} tensors; "
                                               f"{len(flat_kt)} were recorded when the model was built")
                for kt, v in zip(flat_kt, flat_out):
                    if kt is not None:
                        values[id(kt)] = v
        return [lookup(t) for t in self.outputs]


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def first_node_number(layer, keras3=False):
    """1 for a nested functional model (tf.keras counts a construction node first; Keras 3 does so for
    Functional but not Sequential), else 0."""
    network = getattr(layer, "_network", None)
    if network is None:
        return 0
    if keras3 and getattr(layer, "_keras_class_name", lambda: "")() == "Sequential":
        return 0
    return 1


def _layers_by_depth(inputs, outputs, input_ids):
    """The model's layers in tf.keras's order: by decreasing depth (distance from the outputs), and within
    a depth by first visit in a depth-first walk from the outputs. Keras matches weights in .h5 files to
    layers by this order, so it must be the same here."""
    layer_index, post_order, finished = {}, [], set()

    def visit_layer(node):
        if id(node.layer) not in layer_index:
            layer_index[id(node.layer)] = len(layer_index)

    for out in outputs:   # the recursive walk of tf.keras, with an explicit stack
        stack = [[out.node, None]]
        while stack:
            frame = stack[-1]
            node = frame[0]
            if frame[1] is None:
                if id(node) in finished:
                    stack.pop()
                    continue
                visit_layer(node)
                frame[1] = iter([] if _is_input_node(node) else node.input_tensors)
            nxt = next(frame[1], None)
            if nxt is None:
                finished.add(id(node))
                post_order.append(node)
                stack.pop()
            elif id(nxt) in input_ids:
                leaf = nxt.node
                if id(leaf) not in finished:
                    visit_layer(leaf)
                    finished.add(id(leaf))
                    post_order.append(leaf)
            else:
                stack.append([nxt.node, None])
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        if _is_input_node(node) or any(id(t) in input_ids for t in node.output_tensors):
            continue
        for t in node.input_tensors:
            node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    for t in inputs:   # unused inputs still belong to the model
        layer = t._keras_history[0]
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            layer_index[id(layer)] = -1
            layers[id(layer)] = layer
    return [layers[k] for k in sorted(layer_depth, key=lambda k: (-layer_depth[k], layer_index[k]))]


def _is_input_node(node):
    return getattr(node.layer, "is_placeholder", False) and not node.call_args


def _index_of(layer, node):
    for i, n in enumerate(layer._inbound_nodes):
        if n is node:
            return i
    raise InvalidArgumentError(f"node of layer {layer.name!r} is not among its inbound nodes")


def _topological(nodes, input_ids):
    """Kahn's order over `nodes`, ties broken by discovery order reversed (so inputs come first)."""
    produced_by = {}
    for node in nodes:
        for t in node.output_tensors:
            produced_by[id(t)] = node
    deps = {id(n): set() for n in nodes}
    users = {id(n): [] for n in nodes}
    for node in nodes:
        for t in node.input_tensors:
            if id(t) in input_ids:
                continue
            p = produced_by.get(id(t))
            if p is not None and p is not node:
                deps[id(node)].add(id(p))
    for node in nodes:
        for d in deps[id(node)]:
            users[d].append(node)
    rank = {id(n): i for i, n in enumerate(reversed(nodes))}
    remaining = {k: len(v) for k, v in deps.items()}
    import heapq
    ready = [(rank[id(n)], i, n) for i, n in enumerate(nodes) if not remaining[id(n)]]
    heapq.heapify(ready)
    out = []
    while ready:
        _, _, node = heapq.heappop(ready)
        out.append(node)
        for u in users[id(node)]:
            remaining[id(u)] -= 1
            if remaining[id(u)] == 0:
                heapq.heappush(ready, (rank[id(u)], id(u), u))
    if len(out) != len(nodes):
        raise InvalidArgumentError("the model graph has a cycle")
    return [n for n in out if not _is_input_node(n)]


# -- config: writing -----------------------------------------------------------------------------------------
def _is_simple(node):
    """A call tf.keras 2's config can express: one positional argument (a tensor or a flat list of
    tensors) and keyword arguments without tensors."""
    if len(node.call_args) != 1:
        return False
    first = node.call_args[0]
    flat = first if isinstance(first, (list, tuple)) else [first]
    if not all(isinstance(t, KerasTensor) for t in flat):
        return False
    return not any(isinstance(x, KerasTensor) for x in _nest.flatten(node.call_kwargs))


def serialize_nodes(network, layer):
    """The "inbound_nodes" of `layer` in `network`'s config: tf.keras 2's list form for simple calls,
    Keras 3's {"args", "kwargs"} form otherwise."""
    out = []
    for ni, node in enumerate(layer._inbound_nodes):
        if (id(layer), ni) not in network.node_index or _is_input_node(node):
            continue
        if node not in network.nodes:
            continue

        def ref(kt):
            lay, idx, ti = kt._keras_history
            return [lay.name, network.node_index[(id(lay), idx)], ti]
        if _is_simple(node):
            first = node.call_args[0]
            flat = first if isinstance(first, (list, tuple)) else [first]
            kwargs = _jsonable(node.call_kwargs, layer)
            out.append([ref(t) + [kwargs] for t in flat])
        else:
            def enc(x):
                if isinstance(x, KerasTensor):
                    return {"class_name": "__keras_tensor__",
                            "config": {"shape": list(x.shape), "dtype": x.dtype.name, "keras_history": ref(x)}}
                return _jsonable(x, layer)
            args = _nest.map_structure(enc, list(node.call_args))
            kwargs = {k: _nest.map_structure(enc, v) for k, v in node.call_kwargs.items()}
            out.append({"args": args, "kwargs": kwargs})
    return out


def _jsonable(value, layer):
    import numpy as np
    if isinstance(value, dict):
        return {str(k): _jsonable(v, layer) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, layer) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InvalidArgumentError(f"layer {layer.name!r} was called with an argument {value!r} that a model "
                               "config cannot store")


def tensor_refs(network, tensors):
    out = []
    for t in tensors:
        layer, ni, ti = t._keras_history
        out.append([layer.name, network.node_index[(id(layer), ni)], ti])
    return out


# -- config: reading -----------------------------------------------------------------------------------------
def parse_refs(spec, what):
    """[[name, node, tensor], ...] from tf.keras 2 / Keras 3 forms (a single triple, a list, a dict)."""
    if isinstance(spec, dict):
        return [(k, parse_refs(v, what)[0]) for k, v in spec.items()]
    if isinstance(spec, (list, tuple)) and len(spec) == 3 and isinstance(spec[0], str) and \
            isinstance(spec[1], int):
        return [(None, (spec[0], spec[1], spec[2]))]
    if not isinstance(spec, (list, tuple)):
        raise InvalidArgumentError(f"model config: malformed {what}: {spec!r}")
    out = []
    for item in spec:
        if not (isinstance(item, (list, tuple)) and len(item) >= 3 and isinstance(item[0], str)):
            raise InvalidArgumentError(f"model config: malformed {what} entry {item!r}")
        out.append((None, (item[0], int(item[1]), int(item[2]))))
    return out


def decode_node(node_data, lookup, layer_name):
    """(args, kwargs) for one inbound node record, with tensor references resolved by `lookup(name, node,
    tensor)`; raises KeyError while a referenced tensor does not exist yet."""
    if isinstance(node_data, dict):   # Keras 3
        def dec(x):
            if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
                hist = x.get("config", {}).get("keras_history")
                if not isinstance(hist, (list, tuple)) or len(hist) != 3:
                    raise InvalidArgumentError(f"layer {layer_name!r}: malformed keras_history {hist!r}")
                return lookup(hist[0], int(hist[1]), int(hist[2]))
            if isinstance(x, dict):
                return {k: dec(v) for k, v in x.items()}
            if isinstance(x, list):
                return [dec(v) for v in x]
            return x
        args = dec(list(node_data.get("args", [])))
        kwargs = dec(dict(node_data.get("kwargs", {})))
        return args, kwargs
    if not isinstance(node_data, (list, tuple)):
        raise InvalidArgumentError(f"layer {layer_name!r}: malformed inbound node {node_data!r}")
    tensors, kwargs = [], {}
    for entry in node_data:
        if not isinstance(entry, (list, tuple)) or len(entry) < 3:
            raise InvalidArgumentError(f"layer {layer_name!r}: malformed inbound node entry {entry!r}")
        tensors.append(lookup(entry[0], int(entry[1]), int(entry[2])))
        if len(entry) > 3 and isinstance(entry[3], dict):
            kwargs = dict(entry[3])
    if len(tensors) == 1:
        return [tensors[0]], kwargs
    return [tensors], kwargs
