"""Post-training optimization: int8 weight quantization of Keras models.

    converter = ks.optimize.Converter.from_keras_model(model)
    converter.post_training_quantize = True
    quantized = converter.convert()          # a Keras model whose Dense kernels are int8
    quantized.save("q.h5")                   # ks.models.load_model reads it back

Each Dense kernel becomes int8 values with one float32 scale per output channel (symmetric:
scale = max|w| / 127 over the channel's column); the layer multiplies back before its matmul, so the
saved file holds a quarter of the kernel bytes while predictions stay close to the float model.
"""
import numpy as np

from .engine.ops import core as _core
from .engine.ops import math_ops as _m
from .engine.ops import reduce_ops as _r
from .engine.ops import array_ops as _a
from .errors import InvalidArgumentError
from .layers import _serialize as S
from .layers.base import InputSpec, Layer

__all__ = ["Converter", "QuantizedDense", "quantize_per_channel"]


def quantize_per_channel(kernel, axis=-1):
    """(int8 values, float32 scales) with kernel ~= values * scales, one scale per index of `axis`.

    Channels that are all zero get scale 1 (their values are 0)."""
    kernel = np.asarray(kernel, np.float32)
    axis = axis % kernel.ndim
    reduce_axes = tuple(i for i in range(kernel.ndim) if i != axis)
    amax = np.max(np.abs(kernel), axis=reduce_axes)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * kernel.ndim
    shape[axis] = -1
    q = np.clip(np.rint(kernel / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


class QuantizedDense(Layer):
    """A Dense layer with an int8 kernel and per-output-channel float32 scales.

    Args:
        units, activation, use_bias: as Dense.
    """

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = S.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        last = input_shape[-1]
        if last is None:
            raise InvalidArgumentError(f"QuantizedDense {self.name!r}: the last input dimension must be known")
        self.kernel = self.add_weight("kernel", (last, self.units), dtype="int8", initializer="zeros",
                                      trainable=False)
        self.kernel_scale = self.add_weight("kernel_scale", (self.units,), initializer="ones", trainable=False)
        self.bias = self.add_weight("bias", (self.units,), initializer="zeros", trainable=False) \
            if self.use_bias else None
        self.built = True

    def call(self, inputs):
        kernel = _m.multiply(_core.cast(self.kernel, inputs.dtype), self.kernel_scale)
        rank = inputs.shape.ndims
        if rank is not None and rank > 2 and all(d is not None for d in inputs.shape[1:]):
            flat = _a.reshape(inputs, [-1, inputs.shape[-1]])
            y = _a.reshape(_r.matmul(flat, kernel), [-1] + list(inputs.shape[1:-1]) + [self.units])
        else:
            y = _r.matmul(inputs, kernel)
        if self.use_bias:
            y = _m.add(y, self.bias)
        return self.activation(y)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "activation": S.serialize_activation(self.activation),
                       "use_bias": self.use_bias})
        return config


class Converter:
    """Turns a trained Keras model into an optimized copy (TFLite-converter style API).

    Attributes:
        post_training_quantize: quantize Dense kernels to int8 with per-channel scales.
    """

    def __init__(self, model):
        self.model = model
        self.post_training_quantize = False
        self.optimizations = []

    @classmethod
    def from_keras_model(cls, model):
        return cls(model)

    def _quantize(self):
        return self.post_training_quantize or bool(self.optimizations)

    def convert(self):
        """A new model: each Dense becomes a QuantizedDense holding int8 kernels (when quantizing), other
        layers are rebuilt from their configs with the same weights. The copy keeps the original's
        compile settings (loss, metrics, optimizer type) so it can be evaluated after loading.

        Raises:
            InvalidArgumentError: a subclassed model (no config to rebuild it from).
        """
        from .layers import registry
        from .models.model import Model
        from .models.saving import model_from_config
        src = self.model
        config = {"class_name": src._keras_class_name(), "config": src.get_config()}
        quantize = self._quantize()
        dense_names = set()
        if quantize:
            dense_names = {l.name for l in _all_layers(src) if type(l).__name__ == "Dense"}
            _swap_dense(config, dense_names)
        registry.register("QuantizedDense", QuantizedDense)
        clone = model_from_config(config, custom_objects={"QuantizedDense": QuantizedDense})
        originals = {l.name: l for l in _all_layers(src)}
        for layer in _all_layers(clone):
            orig = originals.get(layer.name)
            if orig is None or not orig.weights or isinstance(layer, Model):
                continue
            if layer.name in dense_names:
                q, scales = quantize_per_channel(orig.kernel.numpy(), axis=-1)
                values = [q, scales] + ([orig.bias.numpy()] if orig.use_bias else [])
                layer.set_weights(values)
            else:
                layer.set_weights(orig.get_weights())
        if src._compile_config is not None and src.optimizer is not None:
            from . import optimizers
            opt = optimizers.get(optimizers.serialize(src.optimizer))
            cc = src._compile_config
            clone.compile(optimizer=opt, loss=cc["loss"], metrics=cc["metrics"], loss_weights=cc["loss_weights"],
                          weighted_metrics=cc["weighted_metrics"])
        return clone


def _all_layers(model):
    out, stack = [], list(reversed(model._layers))
    while stack:
        layer = stack.pop()
        out.append(layer)
        if hasattr(layer, "_network"):
            stack.extend(reversed(layer._layers))
    return out


def _swap_dense(config, names):
    """Rewrite Dense entries named in `names` to QuantizedDense configs, in place (nested models too)."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            cfg = item.get("config")
            if item.get("class_name") == "Dense" and isinstance(cfg, dict) and cfg.get("name") in names:
                keep = {k: cfg[k] for k in ("name", "units", "activation", "use_bias", "trainable", "dtype",
                                            "batch_input_shape") if k in cfg}
                item["class_name"] = "QuantizedDense"
                item["config"] = keep
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
