"""The array helpers the recurrent layers use: one multi-output engine op per call (see the engine's
"Unpack" / "SplitV": their gradients are one stack / concat, not one full-size array per piece)."""
from ..engine.ops import array_ops


def unstack(x, axis):
    """The slices of `x` along `axis` (its size must be known)."""
    return array_ops.unstack(x, axis=axis)


def split(x, sizes, axis):
    """Consecutive blocks of `sizes` along `axis`."""
    return array_ops.split(x, list(sizes), axis=axis)
