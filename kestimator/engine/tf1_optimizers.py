"""TF 1.x's optimizer classes (`ke.train.AdamOptimizer` ...), also importable from `kestimator.engine.train`.

Thin subclasses of ks.optimizers with TF1's argument names and defaults, and TF1's update formula where it
differs from Keras's (Momentum accumulates raw gradients, Adagrad has no epsilon, RMSProp starts its mean
square at one and adds epsilon inside the square root). The learning rate may be a graph tensor, e.g.
from `exponential_decay`.

This module imports `kestimator.optimizers`, which imports the engine: it is loaded only through the lazy
`ke.train` (after the engine), never by the engine package itself.
"""
import numpy as np

from ..errors import InvalidArgumentError
from ..optimizers import base as _opt_base
from ..optimizers import optimizers as _opts

__all__ = ["Optimizer", "GradientDescentOptimizer", "MomentumOptimizer", "AdamOptimizer", "AdagradOptimizer",
           "RMSPropOptimizer", "FtrlOptimizer"]

Optimizer = _opt_base.Optimizer


class GradientDescentOptimizer(_opts.SGD):
    """var -= learning_rate * grad."""

    def __init__(self, learning_rate, use_locking=False, name="GradientDescent"):
        super().__init__(learning_rate, name=name)


class MomentumOptimizer(_opts.SGD):
    """accum = momentum * accum + grad; var -= lr * accum (Nesterov: var -= lr * (grad + momentum * accum))."""

    def __init__(self, learning_rate, momentum, use_locking=False, name="Momentum", use_nesterov=False):
        super().__init__(learning_rate, momentum=momentum, nesterov=use_nesterov, name=name)
        self.slot_names = ("momentum",)   # TF1 keeps the accumulator even when momentum is 0

    def _update(self, var, grad, slots, lr, t):
        grad = self._clip(grad)
        acc = slots["momentum"]
        acc *= self.momentum
        acc += grad
        if self.nesterov:
            var -= lr * (grad + self.momentum * acc)
        else:
            var -= lr * acc


class AdamOptimizer(_opts.Adam):
    """Adam with TF1's names and epsilon 1e-8:
    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    var -= lr_t * m / (sqrt(v) + epsilon)."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, use_locking=False, name="Adam"):
        super().__init__(learning_rate, beta_1=beta1, beta_2=beta2, epsilon=epsilon, name=name)


class AdagradOptimizer(_opts.Adagrad):
    """accum += grad^2; var -= lr * grad / sqrt(accum) (no epsilon, as TF1)."""

    def __init__(self, learning_rate, initial_accumulator_value=0.1, use_locking=False, name="Adagrad"):
        if initial_accumulator_value <= 0:
            raise InvalidArgumentError(f"initial_accumulator_value must be positive: {initial_accumulator_value}")
        super().__init__(learning_rate, initial_accumulator_value=initial_accumulator_value, epsilon=0.0,
                         name=name)


class RMSPropOptimizer(_opts.RMSprop):
    """ms = decay * ms + (1 - decay) * g^2 (ms starts at 1);
    mom = momentum * mom + lr * g / sqrt(ms + epsilon); var -= mom.
    Centered: mg = decay * mg + (1 - decay) * g and the denominator is sqrt(ms - mg^2 + epsilon)."""

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False, centered=False,
                 name="RMSProp"):
        super().__init__(learning_rate, rho=decay, momentum=momentum, epsilon=epsilon, centered=centered, name=name)
        self.slot_names = ("rms", "momentum", "mg") if centered else ("rms", "momentum")
        self.slot_init = {"rms": 1.0}

    def _update(self, var, grad, slots, lr, t):
        grad = self._clip(grad)
        ms, mom = slots["rms"], slots["momentum"]
        ms *= self.rho
        ms += (1.0 - self.rho) * grad * grad
        if self.centered:
            mg = slots["mg"]
            mg *= self.rho
            mg += (1.0 - self.rho) * grad
            denom = np.sqrt(ms - mg * mg + self.epsilon)
        else:
            denom = np.sqrt(ms + self.epsilon)
        mom *= self.momentum
        mom += lr * grad / denom
        var -= mom


class FtrlOptimizer(_opts.Ftrl):
    """FTRL-Proximal with TF1's argument names (see ks.optimizers.Ftrl for the update)."""

    def __init__(self, learning_rate, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0, use_locking=False, name="Ftrl",
                 accum_name=None, linear_name=None, l2_shrinkage_regularization_strength=0.0, beta=None):
        if learning_rate_power > 0:
            raise InvalidArgumentError(f"learning_rate_power must be <= 0, got {learning_rate_power}")
        super().__init__(learning_rate, learning_rate_power=learning_rate_power,
                         initial_accumulator_value=initial_accumulator_value,
                         l1_regularization_strength=l1_regularization_strength,
                         l2_regularization_strength=l2_regularization_strength, name=name,
                         l2_shrinkage_regularization_strength=l2_shrinkage_regularization_strength,
                         beta=beta or 0.0)
