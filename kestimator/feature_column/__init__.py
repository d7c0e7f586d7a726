"""``ks.feature_column``: tf.feature_column on kestimator's engine.

    cols = [ks.feature_column.numeric_column("age"),
            ks.feature_column.embedding_column(
                ks.feature_column.categorical_column_with_hash_bucket("city", 1000), dimension=8)]
    net = ks.feature_column.input_layer(features, cols)          # in a model_fn
    layer = ks.feature_column.DenseFeatures(cols)                 # in a Keras model

Categorical lookups (vocabularies, hash buckets, identity ids, crosses, bucketizing) are engine ops
registered in `_ops` ("VocabularyLookup", "HashBucket", "IdentityCategorical", "Bucketize", "CrossHash"),
so they run inside the compiled graph and inside exported SavedModels, which therefore serve raw string
features. Hash buckets use BLAKE2b-64 of the value's text (documented in `_ops`), not TF's FarmHash.
"""
import importlib

from .categorical import (categorical_column_with_hash_bucket, categorical_column_with_identity,  # noqa: F401
                          categorical_column_with_vocabulary_file, categorical_column_with_vocabulary_list,
                          crossed_column, weighted_categorical_column)
from .columns import CategoricalColumn, DenseColumn, FeatureColumn, bucketized_column, numeric_column  # noqa: F401
from .serialization import deserialize_feature_column, serialize_feature_column  # noqa: F401
from .dense import embedding_column, indicator_column  # noqa: F401
from .input_layer import input_layer, linear_model  # noqa: F401
from .parsing import make_parse_example_spec  # noqa: F401

__all__ = ["numeric_column", "bucketized_column", "categorical_column_with_vocabulary_list",
           "categorical_column_with_vocabulary_file", "categorical_column_with_identity",
           "categorical_column_with_hash_bucket", "crossed_column", "weighted_categorical_column",
           "indicator_column", "embedding_column", "input_layer", "linear_model", "DenseFeatures",
           "make_parse_example_spec", "FeatureColumn", "DenseColumn", "CategoricalColumn",
           "serialize_feature_column", "deserialize_feature_column"]


def __getattr__(name):
    if name == "DenseFeatures":   # needs ks.layers; loaded on first use
        value = importlib.import_module(".keras_layer", __name__).DenseFeatures
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kestimator.feature_column' has no attribute {name!r}")
