"""kestimator's graph engine: the low-level API of TensorFlow 1.x on NumPy (and CuPy) kernels.

    from kestimator import engine as ke
    x = ke.placeholder(ke.float32, [None, 2])
    y = ke.reduce_sum(x * 2.0)
    with ke.Session() as sess:
        print(sess.run(y, {x: [[1, 2]]}))
"""
import importlib

from . import ops as _ops  # noqa: F401  (registers every op)
from .dtypes import (DType, as_dtype, bool_, double, float16, float32, float64, half, int8, int16, int32,  # noqa: F401
                     int64, string, uint8)
from .graph import (Graph, GraphKeys, Operation, Tensor, TensorShape, add_to_collection,  # noqa: F401
                    add_to_collections, control_dependencies, device, get_collection, get_collection_ref,
                    get_default_graph, name_scope, reset_default_graph)
from .ops.core import (cast, constant, convert_to_tensor, fill, group, identity, no_op, ones, ones_like,  # noqa: F401
                       placeholder, placeholder_with_default, rank, shape, size, stop_gradient, to_float, zeros,
                       zeros_like)
from .ops.core import range_ as range  # noqa: F401
from .ops.core import tuple_ as tuple  # noqa: F401
from .ops.math_ops import (abs, add, add_n, ceil, cos, divide, equal, exp, expm1, floor, floordiv, floormod,  # noqa: F401
                           greater, greater_equal, is_finite, is_inf, is_nan, less, less_equal, log, log1p,
                           logical_and, logical_not, logical_or, logical_xor, maximum, minimum, mod, multiply,
                           negative, not_equal, pow, realdiv, reciprocal, round, rsqrt, sigmoid, sign, sin, sqrt,
                           square, squared_difference, subtract, tanh, truediv, where, where_v2)
from .ops.math_ops import divide as div  # noqa: F401
from .ops.reduce_ops import (argmax, argmin, matmul, reduce_all, reduce_any, reduce_logsumexp, reduce_max,  # noqa: F401
                             reduce_mean, reduce_min, reduce_prod, reduce_sum, tensordot)
from .ops.array_ops import (broadcast_to, concat, expand_dims, gather, gather_nd, newaxis, one_hot, pad,  # noqa: F401
                            reshape, reverse, scatter_nd, split, squeeze, stack, strided_slice, tile, transpose,
                            unstack)
from .ops.array_ops import slice_ as slice  # noqa: F401
from .ops.random_ops import (random_normal, random_shuffle, random_uniform, set_random_seed,  # noqa: F401
                             truncated_normal)
from .initializers import (constant_initializer, glorot_normal_initializer, glorot_uniform_initializer,  # noqa: F401
                           ones_initializer, orthogonal_initializer, random_normal_initializer,
                           random_uniform_initializer, truncated_normal_initializer, variance_scaling_initializer,
                           zeros_initializer)
from .initializers import HeNormal as he_normal, HeUniform as he_uniform  # noqa: F401
from .variables import (AUTO_REUSE, Variable, VariableScope, get_variable, get_variable_scope,  # noqa: F401
                        global_variables, global_variables_initializer, initialize_all_variables,
                        local_variables, local_variables_initializer, model_variables,
                        report_uninitialized_variables, trainable_variables, variable_scope,
                        variables_initializer)
from .autodiff import gradients  # noqa: F401
from .session import (ConfigProto, GPUOptions, InteractiveSession, RunMetadata, RunOptions, Session,  # noqa: F401
                      get_default_session)
from .eager import EagerTensor, GradientTape, enable_eager_execution, executing_eagerly  # noqa: F401
from .sparse import SparseTensor, SparseTensorValue  # noqa: F401
from .ops.overloads import install as _install_operators

from .eager import EagerVariable as _EagerVariable

_install_operators(Tensor, Variable, EagerTensor, _EagerVariable)
string_ = string

# Submodules loaded on first use (they pull in h5py or the summary writer).
_LAZY = {"train": ".train", "checkpoint": ".checkpoint", "summary": ".summary", "debug": ".debug",
         "nn": ".nn", "sparse": ".sparse", "initializers": ".initializers", "errors": "..errors",
         "random": ".random", "math": ".math_ns", "linalg": ".math_ns", "image": ".image"}


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'kestimator.engine' has no attribute {name!r}")
    module = importlib.import_module(target, __name__)
    globals()[name] = module
    return module
