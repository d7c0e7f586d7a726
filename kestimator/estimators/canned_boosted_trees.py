"""BoostedTreesClassifier / BoostedTreesRegressor: the gradient-boosted-trees core behind the Estimator API.

Trees are not a graph model, so these estimators replace train / evaluate / predict (the Estimator's
`_train_model`, `_evaluate_model`, `_predict_model`) while keeping its input functions, RunConfig and
checkpoint manager. What TF users found puzzling is defined here:

* One training step is one boosting round (one tree per class for multi-class). Training stops at
  `n_trees` rounds whatever `steps` / `max_steps` ask for, and logs that it did.
* `n_batches_per_layer` keeps TF's meaning (how many input batches feed the statistics of each layer);
  by default (None) every batch of the input_fn is read into memory once and all of it is used.
* The ensemble lives in the checkpoint (bin edges included): training again on the same model_dir adds
  trees to it; a run that stops early has still written its checkpoint.
* `export_saved_model` writes the ensemble as arrays in the SavedModel's variables file, served by one
  registered op (boosted_trees/graph_ops.py); no Python of this module is needed to serve it.
* Under `RunConfig(train_distribute=ks.distributed.MultiWorkerMirroredStrategy())` and mpiexec, each rank
  boosts on its shard of the rows with one histogram allreduce per tree level (boosted_trees/distributed.py)
  and only rank 0 writes checkpoints.
"""
import json
import logging

import numpy as np

from ..errors import InvalidArgumentError, NotFoundError
from .boosted_trees import graph_ops
from .boosted_trees.graph_ops import column_block_numpy
from .estimator import Estimator
from .model_fn import ModeKeys
from .run_config import RunConfig

__all__ = ["BoostedTreesClassifier", "BoostedTreesRegressor"]

logger = logging.getLogger("kestimator.estimators")
_MAX_BATCHES = 1_000_000   # an input_fn that never ends, with n_batches_per_layer unset, stops here


def _not_a_graph_model(features, labels, mode, params):
    raise InvalidArgumentError("boosted-trees estimators have no graph model_fn")


# -- feature columns -> a matrix ------------------------------------------------------------------------------
def _column_kind(col):
    """('numeric' | 'bucketized' | 'categorical', column) for the columns trees accept."""
    from ..feature_column.columns import BucketizedColumn, NumericColumn
    from ..feature_column.dense import IndicatorColumn
    if isinstance(col, NumericColumn):
        return "numeric"
    if isinstance(col, BucketizedColumn):
        return "bucketized"
    if isinstance(col, IndicatorColumn):
        return "categorical"
    raise InvalidArgumentError(
        f"boosted trees take numeric, bucketized and indicator feature columns; {getattr(col, 'name', col)!r} "
        f"is a {type(col).__name__}")


def _new_export_dir(export_dir_base):
    """A new folder name under export_dir_base: the Unix time, bumped past existing folders (as export.py)."""
    import os
    import time
    base = os.fspath(export_dir_base)
    os.makedirs(base, exist_ok=True)
    stamp = int(time.time())
    while os.path.exists(os.path.join(base, str(stamp))):
        stamp += 1
    return os.path.join(base, str(stamp))


def _feature_key(col, kind):
    """The features-dict key a tree column reads."""
    return col.key if kind == "numeric" else (col.source.key if kind == "bucketized" else col.categorical_column.key)


class _Featurizer:
    """Turns a features dict into the (rows, features) matrix the trees use, in column-name order (TF's)."""

    def __init__(self, columns):
        if not columns:
            raise InvalidArgumentError("boosted trees need at least one feature column")
        self.columns = sorted(columns, key=lambda c: c.name)
        self.kinds = [_column_kind(c) for c in self.columns]

    def transform(self, features):
        if not isinstance(features, dict):
            raise InvalidArgumentError(f"features must be a dict keyed by column, got {type(features).__name__}")
        blocks, names, bucketized, categorical = [], [], [], []
        for col, kind in zip(self.columns, self.kinds):
            key = _feature_key(col, kind)
            if key not in features:
                raise InvalidArgumentError(f"feature column {col.name!r} needs feature {key!r}; the input has "
                                           f"{sorted(features)}")
            block = column_block_numpy(kind, col, features[key])
            start = sum(b.shape[1] for b in blocks)
            for j in range(block.shape[1]):
                names.append(col.name if block.shape[1] == 1 else f"{col.name}_{j}")
                (bucketized if kind == "bucketized" else categorical if kind == "categorical" else []).append(
                    start + j)
            blocks.append(block)
        self.feature_names = names
        return np.concatenate(blocks, axis=1), bucketized, categorical


class _BoostedTreesEstimator(Estimator):
    _regression = False

    def __init__(self, feature_columns, n_batches_per_layer=None, model_dir=None, n_classes=2, weight_column=None,
                 label_vocabulary=None, n_trees=100, max_depth=6, learning_rate=0.1, l1_regularization=0.0,
                 l2_regularization=0.0, tree_complexity=0.0, min_node_weight=0.0, config=None, center_bias=False,
                 pruning_mode="none", quantile_sketch_epsilon=0.01, train_in_memory=False, label_dimension=1):
        super().__init__(_not_a_graph_model, model_dir=model_dir, config=config or RunConfig())
        if n_batches_per_layer is not None and (not isinstance(n_batches_per_layer, int) or n_batches_per_layer < 1):
            raise InvalidArgumentError(f"n_batches_per_layer must be a positive int or None, got "
                                       f"{n_batches_per_layer!r}")
        if self._regression and label_dimension != 1:
            raise InvalidArgumentError("BoostedTreesRegressor supports label_dimension=1 only")
        if not self._regression and (not isinstance(n_classes, int) or n_classes < 2):
            raise InvalidArgumentError(f"n_classes must be an int >= 2, got {n_classes!r}")
        if label_vocabulary is not None and len(label_vocabulary) != n_classes:
            raise InvalidArgumentError(f"label_vocabulary has {len(label_vocabulary)} entries for n_classes={n_classes}")
        self._featurizer = _Featurizer(list(feature_columns))
        self.n_batches_per_layer, self.weight_column = n_batches_per_layer, weight_column
        self.label_vocabulary = list(label_vocabulary) if label_vocabulary is not None else None
        self.n_classes = "regression" if self._regression else n_classes
        self._hparams = dict(n_trees=n_trees, max_depth=max_depth, learning_rate=learning_rate,
                             l1_regularization=l1_regularization, l2_regularization=l2_regularization,
                             tree_complexity=tree_complexity, min_node_weight=min_node_weight,
                             center_bias=center_bias, pruning_mode=pruning_mode,
                             quantile_sketch_epsilon=quantile_sketch_epsilon)
        self.train_in_memory = train_in_memory

    # -- data ---------------------------------------------------------------------------------------------------
    def _collect(self, input_fn, mode, limit=None):
        """All (features, labels) of one pass of the input, concatenated."""
        batches = self._input_batches(input_fn, mode)
        feats, labels = [], []
        cap = limit or (1 if batches.fixed else _MAX_BATCHES)
        for i, (f, y) in enumerate(batches.iterator()):
            if i >= cap:
                if limit is None and not batches.fixed:
                    raise InvalidArgumentError(
                        f"the input_fn yielded more than {_MAX_BATCHES} batches: give a finite input (num_epochs=1) "
                        "or set n_batches_per_layer")
                break
            feats.append(f if isinstance(f, dict) else {"x": f})
            labels.append(y)
        if not feats:
            raise InvalidArgumentError(f"{mode}: the input_fn yielded no batches")
        features = {k: np.concatenate([np.asarray(f[k]) for f in feats]) for k in feats[0]}
        y = None if labels[0] is None else np.concatenate([np.asarray(v).reshape(len(np.asarray(v)), -1)
                                                           for v in labels])
        return features, y

    def _labels(self, y):
        if y is None:
            raise InvalidArgumentError("training and evaluation need labels")
        y = y.reshape(len(y), -1)[:, 0]
        if self._regression:
            return y.astype(np.float64)
        if self.label_vocabulary is not None:
            index = {v: i for i, v in enumerate(self.label_vocabulary)}
            out = np.empty(len(y), np.int64)
            for i, v in enumerate(y):
                key = v.decode() if isinstance(v, bytes) else (v.item() if isinstance(v, np.generic) else v)
                if key not in index:
                    raise InvalidArgumentError(f"label {key!r} is not in label_vocabulary {self.label_vocabulary}")
                out[i] = index[key]
            return out
        return y.astype(np.int64)

    def _weights(self, features):
        if self.weight_column is None:
            return None
        key = getattr(self.weight_column, "key", self.weight_column)
        if key not in features:
            raise InvalidArgumentError(f"weight_column {key!r} is not among the features {sorted(features)}")
        return np.asarray(features[key], np.float64).reshape(-1)

    # -- model state in checkpoints --------------------------------------------------------------------------------
    def _restore(self, checkpoint_path=None):
        from .boosted_trees import GradientBoostedTrees
        found = self._load_checkpoint(checkpoint_path)
        if found is None:
            return None, 0
        _, tensors, meta = found
        state = dict(json.loads(meta["boosted_trees"]))
        state.update({k[len("boosted_trees/"):]: v for k, v in tensors.items() if k.startswith("boosted_trees/")})
        model = GradientBoostedTrees.from_state(state)
        return model, int(meta.get("global_step", model.n_rounds_))

    def _save(self, model):
        state = model.get_state()
        arrays = {f"boosted_trees/{k}": v for k, v in state.items() if isinstance(v, np.ndarray)}
        scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        arrays["global_step"] = np.int64(model.n_rounds_)
        return self._checkpoints.save(model.n_rounds_, arrays, {"boosted_trees": json.dumps(scalars)})

    # -- train / evaluate / predict ----------------------------------------------------------------------------------
    def _train_model(self, input_fn, hooks, steps, max_steps, saving_listeners):
        from .boosted_trees import GradientBoostedTrees
        model, done = self._restore()
        if max_steps is not None and done >= max_steps:
            logger.info("boosted trees: %d rounds already done (max_steps=%d); nothing to train", done, max_steps)
            return self
        n_trees = self._hparams["n_trees"]
        if done >= n_trees:
            logger.info("boosted trees: the ensemble already has n_trees=%d rounds; training stops there", n_trees)
            return self
        collectives, global_rows, save = self._distribution()
        pre_sharded = collectives is not None and collectives.distributed and _takes_input_context(input_fn)
        if pre_sharded:
            input_fn = _with_input_context(input_fn)
        features, y = self._collect(input_fn, ModeKeys.TRAIN, self.n_batches_per_layer)
        if collectives is not None and collectives.distributed and not pre_sharded:
            features, y, global_rows = _shard_rows(features, y, collectives)
        X, bucketized, categorical = self._featurizer.transform(features)
        want = n_trees - done
        if steps is not None:
            want = min(want, int(steps))
        if max_steps is not None:
            want = min(want, int(max_steps) - done)
        asked = steps if steps is not None else max_steps
        if asked is not None and done + (steps or 0) > n_trees or (max_steps or 0) > n_trees:
            logger.info("boosted trees: training stops at n_trees=%d rounds although steps/max_steps ask for more",
                        n_trees)
        if model is None:
            model = GradientBoostedTrees(n_classes=self.n_classes, bucketized_features=bucketized,
                                         categorical_features=categorical,
                                         random_state=self._config.tf_random_seed or 0, **self._hparams)
        every = self._config.save_checkpoints_steps
        try:
            while want > 0:
                chunk = want if not every else min(want, every - model.n_rounds_ % every or every)
                model.fit(X, self._labels(y), sample_weight=self._weights(features), n_new_trees=chunk,
                          collectives=collectives, global_rows=global_rows)
                want -= chunk
                if every and want > 0:
                    save(model)
        finally:
            if model.is_fitted:
                save(model)   # a run that stops early (error, Ctrl-C) still leaves its checkpoint
        self._tree_collectives = collectives
        self._feature_names = self._featurizer.feature_names
        return self

    def _distribution(self):
        """(TreeCollectives or None, global row numbers or None, checkpoint-saving function) of this run.

        Under ``RunConfig(train_distribute=MultiWorkerMirroredStrategy())`` launched by mpiexec, an input_fn
        that takes ``input_context`` gets ``ks.distributed.input_context()`` and its rows are taken as this
        rank's shard (shards of consecutive rows in rank order reproduce the one-process bin-edge sample
        exactly); any other input_fn is read whole on every rank, which keeps rows ``rank::size``
        (ks.distributed.shard_range). Each rank then boosts on its rows with the histograms summed over
        ranks (boosted_trees/distributed.py); only rank 0 writes checkpoints, the other ranks wait at a
        barrier until it has (ks.distributed.on_chief).
        """
        if self._config.train_distribute is None:
            return None, None, self._save
        from .. import distributed as kd
        from .boosted_trees.distributed import TreeCollectives
        return TreeCollectives(), None, lambda model: kd.on_chief(self._save, model)

    def _model_or_error(self, checkpoint_path=None):
        model, _ = self._restore(checkpoint_path)
        if model is None:
            raise NotFoundError(f"no checkpoint in {self._model_dir}: train the estimator first")
        return model

    def _predict_arrays(self, model, features):
        X, _, _ = self._featurizer.transform(features)
        raw = model.predict_raw(X).reshape(X.shape[0], -1)
        if self._regression:
            return {"predictions": raw.reshape(-1, 1).astype(np.float32)}
        proba = model.predict_proba(X)
        ids = proba.argmax(axis=1)
        out = {"logits": raw.astype(np.float32), "probabilities": proba.astype(np.float32),
               "class_ids": ids[:, None].astype(np.int64)}
        if self.n_classes == 2:
            out["logistic"] = proba[:, 1:2].astype(np.float32)
        if self.label_vocabulary is not None:
            out["classes"] = np.asarray([[str(self.label_vocabulary[i]).encode()] for i in ids], dtype=object)
        else:
            out["classes"] = np.asarray([[str(i).encode()] for i in ids], dtype=object)
        return out

    def _evaluate_model(self, input_fn, steps, hooks, checkpoint_path, name):
        model, step = self._restore()
        if model is None:
            raise NotFoundError(f"no checkpoint in {self._model_dir}: train the estimator first")
        features, y = self._collect(input_fn, ModeKeys.EVAL, steps)
        labels = self._labels(y)
        w = self._weights(features)
        w = np.ones(len(labels)) if w is None else w
        pred = self._predict_arrays(model, features)
        result = {"global_step": step}
        if self._regression:
            p = pred["predictions"][:, 0].astype(np.float64)
            loss = np.average((p - labels) ** 2, weights=w)
            result.update({"average_loss": loss, "loss": loss, "label/mean": np.average(labels, weights=w),
                           "prediction/mean": np.average(p, weights=w)})
        else:
            proba = pred["probabilities"].astype(np.float64)
            ids = pred["class_ids"][:, 0]
            logloss = -np.log(np.clip(proba[np.arange(len(labels)), labels], 1e-12, 1.0))
            result.update({"accuracy": np.average(ids == labels, weights=w),
                           "average_loss": np.average(logloss, weights=w), "loss": np.average(logloss, weights=w)})
            if self.n_classes == 2:
                result.update(_binary_metrics(proba[:, 1], labels, w))
        result = {k: (float(v) if k != "global_step" else int(v)) for k, v in result.items()}
        return result

    def _predict_model(self, input_fn, predict_keys, hooks, checkpoint_path, yield_single_examples):
        model = self._model_or_error(checkpoint_path)
        batches = self._input_batches(input_fn, ModeKeys.PREDICT)
        for f, _ in batches.iterator():
            out = self._predict_arrays(model, f if isinstance(f, dict) else {"x": f})
            if predict_keys:
                missing = [k for k in predict_keys if k not in out]
                if missing:
                    raise InvalidArgumentError(f"predict_keys {missing} are not predicted; available: {sorted(out)}")
                out = {k: out[k] for k in predict_keys}
            n = len(next(iter(out.values())))
            if yield_single_examples:
                for i in range(n):
                    yield {k: v[i] for k, v in out.items()}
            else:
                yield out

    # -- export -----------------------------------------------------------------------------------------------------
    def export_saved_model(self, export_dir_base, serving_input_receiver_fn, assets_extra=None, as_text=False,
                           checkpoint_path=None, experimental_mode=ModeKeys.PREDICT):
        """Write a SavedModel that serves this ensemble: ``ks.saved_model.load(path)`` predicts without it.

        The serving graph is: the receiver's features -> the feature-column ops (numeric, Bucketize,
        vocabulary / identity lookups; missing values become NaN) -> one ``BoostedTreesEnsemblePredict``
        op over the packed tree arrays, which are Variables in ``variables/variables.h5`` -> the head
        (probabilities, class_ids, logits, logistic, classes; or predictions). See boosted_trees/graph_ops.py.

        Args:
            export_dir_base: folder under which a new timestamped export folder is created.
            serving_input_receiver_fn: returns a ServingInputReceiver whose features hold the keys the
                feature columns read.
            assets_extra: optional {destination inside assets.extra: source file}.
            as_text: accepted for TF compatibility (the graph is always JSON).
            checkpoint_path: a checkpoint to export instead of the newest.
            experimental_mode: only ModeKeys.PREDICT.

        Returns:
            The path of the export folder.

        Raises:
            NotFoundError: no checkpoint to export.
            InvalidArgumentError: a bad receiver or a feature the receiver does not provide.
        """
        from ..engine.graph import Graph
        from ..engine.ops.array_ops import concat
        from ..engine.session import Session
        from ..engine.variables import Variable, variables_initializer
        from ..saved_model.writer import write_saved_model
        from .export import ServingInputReceiver
        if experimental_mode != ModeKeys.PREDICT:
            raise InvalidArgumentError("export_saved_model: only the PREDICT mode can be exported")
        model = self._model_or_error(checkpoint_path)
        arrays, max_depth = graph_ops.packed_ensemble_arrays(model.ensemble_)
        g = Graph()
        with g.as_default():
            receiver = serving_input_receiver_fn()
            if not isinstance(receiver, ServingInputReceiver):
                raise InvalidArgumentError("serving_input_receiver_fn must return a ServingInputReceiver, got "
                                           f"{type(receiver).__name__}")
            features = receiver.features if isinstance(receiver.features, dict) else {"x": receiver.features}
            blocks = []
            for col, kind in zip(self._featurizer.columns, self._featurizer.kinds):
                key = _feature_key(col, kind)
                if key not in features:
                    raise InvalidArgumentError(f"export_saved_model: feature column {col.name!r} needs feature "
                                               f"{key!r}; the serving receiver provides {sorted(features)}")
                blocks.append(graph_ops.column_block_graph(kind, col, features[key]))
            x = blocks[0] if len(blocks) == 1 else concat(blocks, axis=1, name="boosted_trees_features")
            variables = {name: Variable(value, trainable=False, name=f"boosted_trees/{name}")
                         for name, value in arrays.items()}
            logits = graph_ops.ensemble_predict(x, {k: v._as_tensor() for k, v in variables.items()}, max_depth)
            outputs = self._serving_outputs(logits)
            sess = Session(graph=g)
            sess.run(variables_initializer(list(variables.values())))
        sigs = {"serving_default": {"inputs": dict(receiver.receiver_tensors), "outputs": outputs,
                                    "method_name": "predict"}}
        path = write_saved_model(_new_export_dir(export_dir_base), sess, sigs, assets_extra)
        sess.close()
        return path

    export_savedmodel = export_saved_model

    def _serving_outputs(self, logits):
        """The head of the serving graph: the keys and dtypes of `_predict_arrays`."""
        from ..engine import dtypes as dt
        from ..engine.ops.array_ops import expand_dims
        from ..engine.ops.core import cast
        from ..engine.ops.reduce_ops import argmax
        if self._regression:
            return {"predictions": cast(logits, dt.float32, name="predictions")}
        kind = "logistic" if self.n_classes == 2 else "softmax"
        from ..engine.registry import apply_op
        proba = apply_op("BoostedTreesProbabilities", [logits], {"kind": kind}, name="probabilities64")
        ids = expand_dims(argmax(proba, axis=1), 1, name="class_ids")
        names = self.label_vocabulary if self.label_vocabulary is not None else list(range(self.n_classes))
        out = {"logits": cast(logits, dt.float32, name="logits"),
               "probabilities": cast(proba, dt.float32, name="probabilities"), "class_ids": ids,
               "classes": apply_op("BoostedTreesClassNames", [ids], {"names": tuple(str(n) for n in names)},
                                   name="classes")}
        if self.n_classes == 2:
            out["logistic"] = cast(proba[:, 1:2], dt.float32, name="logistic")
        return out

    # -- TF's experimental extras ----------------------------------------------------------------------------------
    def experimental_feature_importances(self, normalize=False):
        """(feature names, gain importances) sorted by importance, as TF's BoostedTrees estimators return."""
        model = self._model_or_error()
        imp = model.feature_importances(normalize)
        names = getattr(self, "_feature_names", None) or self._feature_names_from_columns(len(imp))
        order = np.argsort(-imp, kind="stable")
        return [names[i] for i in order], imp[order]

    def _feature_names_from_columns(self, n):
        names = []
        for col, kind in zip(self._featurizer.columns, self._featurizer.kinds):
            dims = int(np.prod(col.shape)) if kind == "numeric" else (int(np.prod(col.source.shape))
                                                                      if kind == "bucketized" else 1)
            names += [col.name] if dims == 1 else [f"{col.name}_{j}" for j in range(dims)]
        return names[:n]

    def experimental_predict_with_explanations(self, input_fn, predict_keys=None):
        """Predictions plus `dfc` (per-feature contributions) and `bias`; contributions sum to logit - bias."""
        model = self._model_or_error()
        batches = self._input_batches(input_fn, ModeKeys.PREDICT)
        for f, _ in batches.iterator():
            features = f if isinstance(f, dict) else {"x": f}
            X, _, _ = self._featurizer.transform(features)
            exp = model.predict_with_explanations(X)
            out = self._predict_arrays(model, features)
            names = self._featurizer.feature_names
            for i in range(X.shape[0]):
                row = {k: v[i] for k, v in out.items()}
                contrib = np.asarray(exp.contributions[i])
                row["bias"] = np.asarray(exp.bias).reshape(-1)[0] if np.size(exp.bias) == 1 else exp.bias
                row["dfc"] = {n: contrib[j] for j, n in enumerate(names)} if contrib.ndim == 1 else \
                    {n: contrib[..., j] for j, n in enumerate(names)}
                yield row


def _takes_input_context(input_fn):
    from .estimator import _accepted_args
    return "input_context" in _accepted_args(input_fn)[0]


def _with_input_context(input_fn):
    """input_fn called with this rank's ks.distributed.input_context() (the Estimator passes None)."""
    from .. import distributed as kd
    from .estimator import _accepted_args
    names, var_kw = _accepted_args(input_fn)

    def sharded_input_fn(**kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k in names or var_kw}
        return input_fn(input_context=kd.input_context(), **kwargs)
    return sharded_input_fn


def _shard_rows(features, y, collectives):
    """This rank's rows ``rank::size`` of the features dict and labels, and their global row numbers."""
    from .. import distributed as kd
    n = len(next(iter(features.values())))
    for k, v in features.items():
        if len(v) != n:
            raise InvalidArgumentError(f"feature {k!r} has {len(v)} rows, another feature has {n}")
    rows = np.asarray(kd.shard_range(n, collectives.rank, collectives.size), np.int64)
    if rows.size == 0:
        raise InvalidArgumentError(f"rank {collectives.rank}: {n} training rows leave none for this rank's shard "
                                   f"({collectives.size} ranks)")
    return {k: np.asarray(v)[rows] for k, v in features.items()}, (None if y is None else y[rows]), rows


def _binary_metrics(p, labels, w):
    pred = p > 0.5
    tp = np.sum(w * (pred & (labels == 1)))
    fp = np.sum(w * (pred & (labels == 0)))
    fn = np.sum(w * (~pred & (labels == 1)))
    label_mean = np.average(labels, weights=w)
    return {"precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
            "auc": _auc(p, labels, w), "label/mean": label_mean, "prediction/mean": np.average(p, weights=w),
            "accuracy_baseline": max(label_mean, 1 - label_mean)}


def _auc(scores, labels, w):
    """Area under the ROC curve (exact, ties counted half), weighted."""
    order = np.argsort(scores, kind="mergesort")
    s, y, w = scores[order], labels[order], w[order]
    pos, neg = np.sum(w * (y == 1)), np.sum(w * (y == 0))
    if pos == 0 or neg == 0:
        return 0.0
    # for each distinct score: negatives strictly below count fully, ties count half
    uniq, start = np.unique(s, return_index=True)
    neg_w = np.where(y == 0, w, 0.0)
    pos_w = np.where(y == 1, w, 0.0)
    neg_cum = np.concatenate([[0.0], np.cumsum(neg_w)])
    ends = np.append(start[1:], len(s))
    total = 0.0
    for a, b in zip(start, ends):
        neg_below = neg_cum[a]
        neg_tie = neg_cum[b] - neg_cum[a]
        total += pos_w[a:b].sum() * (neg_below + 0.5 * neg_tie)
    return total / (pos * neg)


class BoostedTreesClassifier(_BoostedTreesEstimator):
    """Gradient-boosted trees for classification (logistic for 2 classes, softmax for more)."""


class BoostedTreesRegressor(_BoostedTreesEstimator):
    """Gradient-boosted trees for regression (squared error)."""
    _regression = True

    def __init__(self, feature_columns, n_batches_per_layer=None, model_dir=None, label_dimension=1,
                 weight_column=None, **kwargs):
        kwargs.pop("n_classes", None)
        super().__init__(feature_columns, n_batches_per_layer, model_dir, weight_column=weight_column,
                         label_dimension=label_dimension, **kwargs)
