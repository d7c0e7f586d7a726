"""``ks.saved_model``: self-contained exported models (graph as JSON, variables as HDF5, signatures).

    path = estimator.export_saved_model("exports", serving_input_receiver_fn)
    loaded = ks.saved_model.load(path)
    loaded.signatures["serving_default"](x=np.array([[1.0, 2.0]]))     # -> {"scores": ..., "classes": ...}

Loading runs no code from the folder (see `loader`); writing refuses graphs whose ops carry Python
callables or objects (see `graph_json`).
"""
from .loader import LoadedModel, Signature, load  # noqa: F401
from .writer import write_saved_model  # noqa: F401

__all__ = ["load", "write_saved_model", "LoadedModel", "Signature"]
