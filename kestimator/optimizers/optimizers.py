"""The optimizers. Each `_update` works in place on flat arrays (usually whole slabs)."""
import math

import numpy as np

from . import fused
from .base import Optimizer


def _array_module(like):
    """NumPy for host arrays (and None), the GPU kernel namespace for device arrays."""
    if like is None or type(like) is np.ndarray:
        return np
    from ..engine.devices import get_array_module
    return get_array_module(like)


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum: v = m*v - lr*g; w += v (Keras's form)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name=None, **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum else ()

    def _update(self, var, grad, slots, lr, t):
        grad = self._clip(grad)
        if not self.momentum:
            var -= lr * grad
            return
        v = slots["momentum"]
        kernel = fused.get_for("sgd_momentum", var) if var.flags.c_contiguous and grad.flags.c_contiguous else None
        if kernel is not None:
            kernel(var, grad, v, fused.scalar(lr, var), fused.scalar(self.momentum, var), self.nesterov,
                   fused.tiny(var))
            return
        v *= self.momentum
        v -= lr * grad
        if self.nesterov:
            var += self.momentum * v - lr * grad
        else:
            var += v

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with Keras's defaults (epsilon 1e-7) and optional AMSGrad."""

    slot_init = {}

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name=None,
                 **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = float(beta_1), float(beta_2), float(epsilon), amsgrad
        self.slot_names = ("m", "v", "vhat") if amsgrad else ("m", "v")
        self._scratch = {}
        self._consts = {}

    def _tmp(self, n, dtype, like=None):
        xp = _array_module(like)
        key = (n, dtype, id(xp))
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = xp.empty(n, dtype)
        return buf

    def _update(self, var, grad, slots, lr, t):
        grad = self._clip(grad)
        b1, b2 = self.beta_1, self.beta_2
        m, v = slots["m"], slots["v"]
        lr_t = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)   # math.sqrt: the same IEEE square root
        kernel = fused.get_for("adam", var) if not self.amsgrad and var.flags.c_contiguous \
            and grad.flags.c_contiguous else None
        if kernel is not None:
            # the step-independent scalars in the slab's dtype, made once (a few us a step otherwise)
            key = (var.dtype, b1, b2, self.epsilon)
            cache = self.__dict__.setdefault("_consts", {})
            consts = cache.get(key)
            if consts is None:
                f = fused.scalar
                consts = cache[key] = (f(b1, var), f(b2, var), f(self.epsilon, var), fused.tiny(var))
            dtype = var.dtype.type
            kernel(var, grad, m, v, dtype(lr_t), consts[0], consts[1], consts[2],
                   dtype(self._decay_factor(lr)), consts[3])
            return
        tmp = self._tmp(var.size, var.dtype, var)
        m *= b1
        np.multiply(grad, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        if self.amsgrad:
            np.maximum(slots["vhat"], v, out=slots["vhat"])
            np.sqrt(slots["vhat"], out=tmp)
        else:
            np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        self._decay(var, lr)
        var -= tmp

    def _decay(self, var, lr):
        pass

    def _decay_factor(self, lr):
        return 1.0

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                    amsgrad=self.amsgrad)


class AdamW(Adam):
    """Adam with decoupled weight decay: w -= lr * weight_decay * w before the Adam step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name=None, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, name, **kwargs)
        self.weight_decay = float(weight_decay)

    def _decay(self, var, lr):
        var *= 1.0 - lr * self.weight_decay

    def _decay_factor(self, lr):
        return 1.0 - lr * self.weight_decay

    def get_config(self):
        return dict(super().get_config(), weight_decay=self.weight_decay)


class Adagrad(Optimizer):
    """accum += g^2; w -= lr * g / (sqrt(accum) + epsilon)."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name=None, **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)
        self.slot_names = ("accumulator",)
        self.slot_init = {"accumulator": self.initial_accumulator_value}

    def _update(self, var, grad, slots, lr, t):
        grad = self._clip(grad)
        acc = slots["accumulator"]
        kernel = fused.get_for("adagrad", var) if var.flags.c_contiguous and grad.flags.c_contiguous else None
        if kernel is not None:
            kernel(var, grad, acc, fused.scalar(lr, var), fused.scalar(self.epsilon, var))
            return
        acc += grad * grad
        var -= lr * grad / (np.sqrt(acc) + self.epsilon)

    def get_config(self):
        return dict(super().get_config(), initial_accumulator_value=self.initial_accumulator_value,
                    epsilon=self.epsilon)


class RMSprop(Optimizer):
    """ms = rho*ms + (1-rho)*g^2; w -= lr * g / sqrt(ms + eps) (epsilon inside the root, as tf.keras);
    optional momentum and centering."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name=None,
                 **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), centered
        names = ["rms"]
        if self.momentum:
            names.append("momentum")
        if centered:
            names.append("mg")
        self.slot_names = tuple(names)

    def _update(self, var, grad, slots, lr, t):
        grad = self._clip(grad)
        ms = slots["rms"]
        kernel = fused.get_for("rmsprop", var) if not self.centered and not self.momentum and var.flags.c_contiguous \
            and grad.flags.c_contiguous else None
        if kernel is not None:
            kernel(var, grad, ms, fused.scalar(lr, var), fused.scalar(self.rho, var), fused.scalar(self.epsilon, var),
                   fused.tiny(var))
            return
        ms *= self.rho
        ms += (1.0 - self.rho) * grad * grad
        denom = ms
        if self.centered:
            mg = slots["mg"]
            mg *= self.rho
            mg += (1.0 - self.rho) * grad
            denom = ms - mg * mg
        step = lr * grad / np.sqrt(denom + self.epsilon)
        if self.momentum:
            mom = slots["momentum"]
            mom *= self.momentum
            mom += step
            var -= mom
        else:
            var -= step

    def get_config(self):
        return dict(super().get_config(), rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                    centered=self.centered)


class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al. 2013), as TF's FtrlOptimizer; sparse-friendly through L1."""

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0, name=None,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1, self.l2 = float(l1_regularization_strength), float(l2_regularization_strength)
        self.l2_shrinkage, self.beta = float(l2_shrinkage_regularization_strength), float(beta)
        self.slot_names = ("accumulator", "linear")
        self.slot_init = {"accumulator": self.initial_accumulator_value, "linear": 0.0}

    def _update(self, var, grad, slots, lr, t):
        grad = self._clip(grad)
        acc, lin = slots["accumulator"], slots["linear"]
        p = -self.learning_rate_power
        g_shrink = grad + 2.0 * self.l2_shrinkage * var if self.l2_shrinkage else grad
        new_acc = acc + grad * grad
        sigma = (new_acc ** p - acc ** p) / lr
        lin += g_shrink - sigma * var
        quadratic = new_acc ** p / lr + 2.0 * self.l2 + self.beta / lr
        acc[...] = new_acc
        var[...] = np.where(np.abs(lin) > self.l1, (np.sign(lin) * self.l1 - lin) / quadratic, 0.0)

    def get_config(self):
        return dict(super().get_config(), learning_rate_power=self.learning_rate_power,
                    initial_accumulator_value=self.initial_accumulator_value,
                    l1_regularization_strength=self.l1, l2_regularization_strength=self.l2,
                    l2_shrinkage_regularization_strength=self.l2_shrinkage, beta=self.beta)
