"""Op definitions; importing this package registers every op."""
from . import core, math_ops, reduce_ops, array_ops, nn_ops, random_ops, conv_ops  # noqa: F401
