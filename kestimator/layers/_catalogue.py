"""Every layer class kestimator defines, by its Keras class name (read by the registry)."""
import importlib

_MODULES = ("core", "reshaping", "input_layer", "lambda_layer", "activation_layers", "conv", "pooling",
            "normalization", "embedding", "rnn_cells", "recurrent", "wrappers", "merge", "preprocessing")


def all_layer_classes():
    from .base import Layer
    out = {}
    for mod_name in _MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{mod_name}")
        except ModuleNotFoundError as e:   # a module still being written
            if e.name != f"{__package__}.{mod_name}":
                raise
            continue
        for name, obj in vars(mod).items():
            if isinstance(obj, type) and issubclass(obj, Layer) and obj.__module__ == mod.__name__ \
                    and not name.startswith("_"):
                out[name] = obj
    return out
