"""Tiny structure helpers: flatten and rebuild nested lists / tuples / dicts of tensors.

Layers take a tensor, a list of tensors (merge layers) or nested structures (RNN initial states); the
functional API records them as they were given and rebuilds them with other leaves.
"""


def is_sequence(x):
    return isinstance(x, (list, tuple, dict))


def flatten(structure):
    """Leaves of `structure` in order (dict values in key insertion order)."""
    out = []
    stack = [structure]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def pack_sequence_as(structure, leaves):
    """A structure shaped like `structure` whose leaves are taken in order from `leaves`."""
    it = iter(leaves)

    def build(s):
        if isinstance(s, dict):
            return type(s)((k, build(v)) for k, v in s.items())
        if isinstance(s, tuple) and hasattr(s, "_fields"):
            return type(s)(*[build(v) for v in s])
        if isinstance(s, (list, tuple)):
            return type(s)(build(v) for v in s)
        return next(it)
    return build(structure)


def map_structure(fn, structure):
    """`structure` with `fn` applied to every leaf."""
    return pack_sequence_as(structure, [fn(x) for x in flatten(structure)])
