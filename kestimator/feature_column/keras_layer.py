"""DenseFeatures: the Keras layer form of `input_layer`, so the same feature columns serve Keras models.

    inputs = {"age": keras.Input((1,), name="age"), "city": keras.Input((1,), dtype="string", name="city")}
    x = ks.feature_column.DenseFeatures(columns)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))

Embedding tables become weights of the layer ("dense_features/<column>/embedding_weights:0"), created in
build(), so they are saved, loaded and trained like any Keras weight.
"""
from ..errors import InvalidArgumentError
from ..layers.base import Layer
from .columns import DenseColumn
from .input_layer import _sorted_columns, dense_features
from .serialization import deserialize_feature_column, serialize_feature_column

__all__ = ["DenseFeatures"]


class _LayerStateManager:
    """Column variables as weights of a Keras layer."""

    def __init__(self, layer):
        self.layer = layer
        self.weights = {}

    def create_variable(self, column, name, shape, dtype, initializer, trainable=True):
        w = self.layer.add_weight(name=f"{column.name}/{name}", shape=tuple(shape), dtype=dtype,
                                  initializer=initializer, trainable=trainable and self.layer.trainable)
        self.weights[(column.name, name)] = w
        return w

    def get_variable(self, column, name):
        return self.weights.get((column.name, name))


class DenseFeatures(Layer):
    """Concatenate the dense outputs of `feature_columns` (sorted by name) for a dict of raw features.

    Args:
        feature_columns: dense feature columns.
        trainable, name: as any layer.

    Raises:
        InvalidArgumentError: a column that is not dense, or a features dict without a column's key.
    """

    def __init__(self, feature_columns, trainable=True, name=None, **kwargs):
        super().__init__(trainable=trainable, name=name, **kwargs)
        cols = _sorted_columns(feature_columns, "DenseFeatures")
        for c in cols:
            if not isinstance(c, DenseColumn):
                raise InvalidArgumentError(f"DenseFeatures: {c.name!r} is a {type(c).__name__}; wrap categorical "
                                           "columns in embedding_column or indicator_column")
        self._feature_columns = cols
        self._state = _LayerStateManager(self)

    @property
    def feature_columns(self):
        return list(self._feature_columns)

    def build(self, input_shape):
        for c in self._feature_columns:
            for col in _walk(c):
                create = getattr(col, "create_state", None)
                if create is not None and self._state.get_variable(col, "embedding_weights") is None:
                    create(self._state)

    def call(self, features, training=None):
        if not isinstance(features, dict):
            raise InvalidArgumentError(f"DenseFeatures {self.name!r} needs a dict of features, got "
                                       f"{type(features).__name__}")
        return dense_features(features, self._feature_columns, self._state, f"DenseFeatures {self.name!r}")

    def compute_output_shape(self, input_shape):
        width = 0
        for c in self._feature_columns:
            n = 1
            for d in c.variable_shape:
                n *= int(d)
            width += n
        return (None, width)

    def get_config(self):
        cfg = super().get_config()
        cfg["feature_columns"] = [serialize_feature_column(c) for c in self._feature_columns]
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["feature_columns"] = [deserialize_feature_column(c) for c in config["feature_columns"]]
        return cls(**config)


def _walk(column):
    yield column
    for p in column.parents:
        yield from _walk(p)


def _register():
    # so that load_model finds "DenseFeatures" in a saved model's config once this module is imported
    from ..layers import registry
    registry.register("DenseFeatures", DenseFeatures)


_register()
