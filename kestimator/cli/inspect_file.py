"""`kestimator inspect FILE`: what a checkpoint, a weights file, a Keras .h5 model or a model_dir holds."""
import json
import os

from ..errors import DataLossError, NotFoundError


def _h5_tensors(f):
    import h5py
    rows = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            rows.append((name, tuple(obj.shape), str(obj.dtype)))
    f.visititems(visit)
    return rows


def inspect_path(path, out=print):
    """Print a listing of `path`.

    Raises:
        NotFoundError: nothing exists at `path`.
        DataLossError: the file is not a readable HDF5 file.
    """
    if os.path.isdir(path):
        from ..estimators import list_checkpoints
        ckpts = list_checkpoints(path)
        out(f"model_dir {path}: {len(ckpts)} checkpoint(s)")
        for c in ckpts:
            out(f"  {c}")
        if ckpts:
            inspect_path(ckpts[-1], out)
        return
    if not os.path.exists(path):
        raise NotFoundError(f"nothing to inspect at {path}")
    if path.endswith((".yaml", ".yml")):
        from .schema import load_and_resolve
        from .registries import registries
        import yaml
        out(yaml.safe_dump(load_and_resolve(path, registries=registries()), sort_keys=False))
        return
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataLossError(f"{path} is not a readable HDF5 file ({e})") from None
    with f:
        config = f.attrs.get("model_config")
        if config is not None:
            cfg = json.loads(config.decode() if isinstance(config, bytes) else config)
            out(f"Keras model file {path}: {cfg.get('class_name')} "
                f"(keras_version {f.attrs.get('keras_version', '?')}, backend {f.attrs.get('backend', '?')})")
            from ..models import load_model
            model = load_model(path, compile=False)
            model.summary(print_fn=out)
        else:
            out(f"tensor file {path}")
        total = 0
        for name, shape, dtype in _h5_tensors(f):
            n = 1
            for d in shape:
                n *= d
            total += n
            out(f"  {name:60s} {str(shape):20s} {dtype}")
        out(f"  {total:,} values in all")
