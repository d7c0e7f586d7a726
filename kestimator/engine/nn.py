"""`ke.nn`: neural-network functions, as in tf.nn."""
from .ops.math_ops import (elu, gelu, leaky_relu, relu, relu6, selu, sigmoid, softplus, softsign, swish,  # noqa: F401
                           silu, tanh)
from .ops.nn_ops import (batch_normalization, bias_add, l2_loss, l2_normalize, log_softmax, moments,  # noqa: F401
                         sigmoid_cross_entropy_with_logits, softmax, softmax_cross_entropy_with_logits,
                         softmax_cross_entropy_with_logits_v2, sparse_softmax_cross_entropy_with_logits,
                         weighted_cross_entropy_with_logits)
from .ops.random_ops import dropout  # noqa: F401
from .ops.array_ops import gather as embedding_lookup  # noqa: F401

from .ops.conv_ops import (avg_pool, avg_pool1d, avg_pool2d, conv1d, conv2d, conv2d_transpose,  # noqa: F401
                           depthwise_conv2d, max_pool, max_pool1d, max_pool2d, separable_conv2d)
