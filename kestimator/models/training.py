"""compile / fit / evaluate / predict and the *_on_batch methods of Keras models.

The loops are written for speed: one compiled step function per input signature (see runtime.py), feed
arrays sliced from data converted once, batch callbacks called only when a callback needs them, and the
metrics read from the session only when logs are wanted (epoch ends, progress-bar redraws).
"""
import numpy as np

from .. import optimizers as _optimizers
from ..engine.graph import TensorShape
from ..errors import InvalidArgumentError
from . import callbacks as _cb
from . import data_adapter as _da
from . import distributed_fit as _dfit
from . import threads as _threads
from .compile_utils import CompiledSpec
from .optimizer_state import OptimizerStateMixin
from .progbar import ProgbarLogger
from .runtime import Runtime

_AUTO_BATCH_ELEMENTS = 1 << 21   # evaluate/predict without batch_size: batches of about this many inputs


class TrainingMixin(OptimizerStateMixin):
    """The training API of `Model` (mixed into it)."""

    # -- state -----------------------------------------------------------------------------------------------
    def _training_init(self):
        self.optimizer = None
        self.compiled_loss = None
        self._compiled = None
        self._compile_config = None
        self._runtime = None
        self.stop_training = False
        self.history = None
        self._pending_optimizer_state = None
        self._shuffle_seed = None
        self._blas_threads = None   # the BLAS thread count the last fit() chose (threads.py)
        self._intra_op_workers = None   # and its intra-op workers (engine/intra_op.py)

    def _input_specs(self, arrays=None):
        """[(shape, dtype, name)] of the model inputs (from the model, or from data for subclassed models)."""
        if self._is_graph_network():
            return [(TensorShape((None,) + tuple(t.shape)[1:]), t.dtype, n)
                    for t, n in zip(self.inputs, self.input_names)]
        if arrays is None:
            raise InvalidArgumentError(f"model {self.name!r} has no known input shape yet: call fit/predict with "
                                       "data first, or build(input_shape)")
        from ..engine import dtypes as _dt
        return [(TensorShape((None,) + tuple(np.shape(a))[1:]), _dt.as_dtype(np.asarray(a).dtype)
                 if np.asarray(a).dtype.kind != "f" else _dt.float32, name)
                for a, name in zip(arrays, self.input_names)]

    def _get_runtime(self, arrays=None):
        rt = self._runtime
        if rt is not None:
            return rt
        self._ensure_built(arrays)
        rt = Runtime(self, self._input_specs(arrays))
        if self._compiled is not None:
            rt.set_compiled(self._compiled, self.optimizer)
        self._runtime = rt
        return rt

    def _reset_runtime(self):
        """Drop the graph (the model's structure changed); weights keep their current values."""
        if self._runtime is not None:
            self._runtime.detach()
            self._runtime = None

    def _ensure_built(self, arrays=None):
        pass

    def _note_subclass_inputs(self, data):
        pass

    # -- compile ---------------------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile=None, **kwargs):
        """Configure training: the optimizer, the loss (per output), and the metrics to report.

        Args:
            optimizer: a name ("adam") or an optimizer instance.
            loss: a name, Loss object or function; a list or dict gives one per output.
            metrics: names ("accuracy"), Metric objects or functions; a dict or list of lists per output.
            loss_weights: weights of the per-output losses in the total loss.
            weighted_metrics: metrics that also use the sample weights.
            run_eagerly: accepted for compatibility; steps always run as compiled graphs.

        Raises:
            InvalidArgumentError: unknown names, or per-output specs that do not match the outputs.
        """
        distribute = kwargs.get("distribute")
        for k in ("sample_weight_mode", "target_tensors", "distribute", "pss_evaluation_shards", "auto_scale_loss"):
            kwargs.pop(k, None)
        if kwargs:
            raise InvalidArgumentError(f"compile() got unexpected arguments {sorted(kwargs)}")
        self.optimizer = _optimizers.get(optimizer) if optimizer is not None else None
        self.optimizer = _dfit.on_compile(self, self.optimizer, distribute)   # a strategy scope: data-parallel
        self.loss = loss
        self._compiled = CompiledSpec(self.output_names, loss, metrics, loss_weights, weighted_metrics)
        self.compiled_loss = self._compiled
        self._compile_config = {"loss": loss, "metrics": metrics, "loss_weights": loss_weights,
                                "weighted_metrics": weighted_metrics}
        self.run_eagerly = bool(run_eagerly)
        if self._runtime is not None:
            self._runtime.set_compiled(self._compiled, self.optimizer)

    def _assert_compiled(self, what):
        if self._compiled is None:
            raise InvalidArgumentError(f"you must compile() model {self.name!r} before calling {what}()")

    @property
    def metrics(self):
        """The metric objects (loss trackers first) once the model has been trained or evaluated."""
        if self._runtime is None or self._compiled is None or self._compiled.metrics is None:
            return []
        return self._runtime.all_metrics()

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        if self._runtime is not None and self._compiled is not None:
            self._runtime.reset_metrics()

    # -- data ----------------------------------------------------------------------------------------------------
    def _prepare_arrays(self, x, y=None, sample_weight=None, class_weight=None, what="fit"):
        """(inputs, targets or None, sample weights or None) as lists of arrays in model order."""
        self._note_subclass_inputs(x)
        xs = _da.to_list(x, self.input_names, f"{what}: x")
        if xs is None:
            raise InvalidArgumentError(f"{what}() needs input data x")
        rt_specs = self._input_specs(xs) if not self._is_graph_network() else self._input_specs()
        xs = [_da.as_array(a, spec[1].np, f"{what}: x[{spec[2]}]") for a, spec in zip(xs, rt_specs)]
        ys = None
        if y is not None:
            ys = [_da.target_array(a, f"{what}: y") if a is not None else None
                  for a in _da.to_list(y, self.output_names, f"{what}: y")]
        sws = None
        if sample_weight is not None:
            if isinstance(sample_weight, (dict, list, tuple)) and not isinstance(sample_weight, np.ndarray) \
                    and len(self.output_names) > 1:
                sws = [None if s is None else np.asarray(s, np.float32)
                       for s in _da.to_list(sample_weight, self.output_names, f"{what}: sample_weight")]
            else:
                sw = np.asarray(sample_weight, np.float32)
                sws = [sw for _ in self.output_names]
        if class_weight is not None:
            if ys is None:
                raise InvalidArgumentError("class_weight needs targets y")
            if isinstance(class_weight, dict) and class_weight and all(k in self.output_names for k in class_weight):
                cws = [class_weight.get(n) for n in self.output_names]
            else:
                cws = [class_weight] * len(self.output_names)
            new = []
            for i, (cw, yy) in enumerate(zip(cws, ys)):
                base = sws[i] if sws is not None else None
                if cw is None:
                    new.append(base)
                    continue
                w = _da.class_weights_to_sample_weights(cw, yy)
                new.append(w if base is None else base.reshape(len(w), -1)[:, 0] * w if base.ndim > 1 else base * w)
            sws = new
        if sws is not None and all(s is None for s in sws):
            sws = None
        if sws is not None:
            sws = [s if s is not None else np.ones(len(xs[0]), np.float32) for s in sws]
        return xs, ys, sws

    def _signature(self, ys, sws):
        from ..engine import dtypes as _dt
        targets = []
        for i in range(len(self.output_names)):
            a = ys[i] if ys is not None and i < len(ys) else None
            if a is None or self._compiled.losses[i] is None:
                targets.append((None, None))
            else:
                targets.append((tuple(np.shape(a))[1:], _dt.as_dtype(np.asarray(a).dtype)))
        weights = None
        if sws is not None:
            weights = [tuple(np.shape(s))[1:] if s is not None and targets[i][0] is not None else None
                       for i, s in enumerate(sws)]
        return {"targets": targets, "weights": weights}

    def _feed_arrays(self, xs, ys, sws, signature):
        arrays = list(xs)
        arrays += [y for y, (shape, _) in zip(ys or [], signature["targets"]) if shape is not None]
        if signature["weights"] is not None:
            arrays += [s for s, shape in zip(sws, signature["weights"]) if shape is not None]
        return arrays

    def _dataset_source(self, dataset, what, steps):
        """(IterableBatches, signature, input arrays of the first element) for a Dataset."""
        dataset = _da.peekable(dataset)
        first = _da.IterableBatches(dataset, None).first()
        x0, y0, sw0 = _da.unpack(first, what)
        xs0, ys0, sws0 = self._prepare_arrays(x0, y0, sw0, what=what)
        if what == "predict":
            signature = None
        else:
            self._assert_compiled(what)
            signature = self._signature(ys0, sws0)

        def convert(element):
            x, y, sw = _da.unpack(element, what)
            xs, ys, sws = self._prepare_arrays(x, y, sw, what=what)
            if signature is None:
                return xs
            if (sws is None) != (signature["weights"] is None):
                raise InvalidArgumentError(f"{what}: some dataset elements have sample weights and others not")
            return self._feed_arrays(xs, ys, sws, signature)
        return _da.IterableBatches(dataset, convert, steps), signature, xs0

    # -- fit ---------------------------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            max_queue_size=10, workers=1, use_multiprocessing=False):
        """Train for `epochs` epochs over arrays (or dicts/lists of arrays), or a Dataset of batches.

        Args:
            x, y: inputs and targets (arrays, lists/dicts by input/output name), or x a Dataset yielding
                (x, y) or (x, y, sample_weight).
            batch_size: rows per step (default 32) for array data.
            epochs: the epoch index to stop at (training starts at `initial_epoch`).
            verbose: 0 silent, 1 a progress bar on a terminal (one line per epoch otherwise), 2 one line
                per epoch.
            callbacks: Callback objects.
            validation_split: the fraction of array data, taken from the end, to validate on.
            validation_data: (x, y) or (x, y, sample_weight) or a Dataset, evaluated after each epoch.
            shuffle: reorder array data each epoch.
            class_weight: {class: weight} multiplying the sample weights.
            sample_weight: per-sample weights (per output: a list or dict).
            steps_per_epoch: steps per epoch (default: one pass over the data).

        Returns:
            A History whose `history` dict maps log names to per-epoch values.

        Raises:
            InvalidArgumentError: the model is not compiled, or the data does not fit the model.
        """
        self._assert_compiled("fit")
        verbose = 1 if verbose == "auto" else int(verbose)
        if batch_size is None:
            batch_size = 32
        val = None
        if _da.is_dataset(x):
            if validation_split:
                raise InvalidArgumentError("validation_split is only supported for array data; pass "
                                           "validation_data instead")
            source, signature, xs0 = self._dataset_source(x, "fit", steps_per_epoch)
            rt = self._get_runtime(xs0)
            steps = steps_per_epoch if steps_per_epoch is not None else _len_or_none(x)
        else:
            xs, ys, sws = self._prepare_arrays(x, y, sample_weight, class_weight, "fit")
            if ys is None:
                raise InvalidArgumentError("fit() needs targets y (or a Dataset of (x, y) pairs)")
            if validation_split and validation_data is None:
                flat = xs + ys + (sws or [])
                train, held = _da.split_validation(flat, validation_split)
                nx, ny = len(xs), len(ys)
                xs, ys, sws = train[:nx], train[nx:nx + ny], (train[nx + ny:] or None)
                val = (held[:nx], held[nx:nx + ny], held[nx + ny:] or None)
            rt = self._get_runtime(xs)
            signature = self._signature(ys, sws)
            if self._shuffle_seed is None:   # NumPy's global generator: keras.utils.set_random_seed fixes it
                self._shuffle_seed = int(np.random.randint(2 ** 31 - 1))
            source = _da.ArrayBatches(self._feed_arrays(xs, ys, sws, signature), batch_size,
                                      shuffle=bool(shuffle), seed=self._shuffle_seed)
            steps = steps_per_epoch if steps_per_epoch is not None else source.steps
        dist = _dfit.for_model(self)   # None unless compiled under a multi-rank strategy
        if dist is not None:
            source, callbacks = dist.prepare_fit(source, callbacks)
        elif isinstance(source, _da.ArrayBatches):
            source.prefetch = source.prefetch_pays()   # big shuffled batches: gathered during the step before
        step_fn = rt.train_function(signature)
        if validation_data is not None:
            val = validation_data
        cbs = self._callback_list(callbacks, verbose, epochs, steps)
        self.stop_training = False
        tuner = _threads.epoch_tuner()
        try:
            cbs.on_train_begin()
            resume = self._resume_point(cbs)
            start_epoch = max(int(initial_epoch), resume[0] if resume else 0)
            logs = {}
            for epoch in range(start_epoch, int(epochs)):
                rt.reset_metrics()
                cbs.on_epoch_begin(epoch)
                first_step = resume[1] if resume and epoch == resume[0] else 0
                batches = source.epoch(epoch, first_step, steps_per_epoch)
                if tuner is not None:
                    batches = tuner.epoch(batches, None if steps is None else steps - first_step)
                self._run_epoch(rt, batches, step_fn, cbs)
                if dist is not None:
                    dist.reduce_metrics(rt)
                logs = rt.results()
                if val is not None and _due(epoch, validation_freq):
                    vlogs = self._validate(val, validation_batch_size, validation_steps, cbs)
                    logs.update({"val_" + k: v for k, v in vlogs.items()})
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            cbs.on_train_end(logs)
        finally:
            if tuner is not None:
                self._blas_threads, self._intra_op_workers = tuner.choice, tuner.workers
                tuner.restore()
        return self.history

    def _run_epoch(self, rt, batches, step_fn, cbs):
        """Run the steps of one epoch: `batches` yields (step, feed arrays)."""
        begin, end = cbs.wants("train_begin"), cbs.wants("train_end")
        if not begin and not end:
            for _, feeds in batches:
                step_fn(*feeds)
                if self.stop_training:
                    return
            return
        logs_fn = rt.results
        for step, feeds in batches:
            if begin:
                cbs.on_train_batch_begin(step)
            step_fn(*feeds)
            if end:
                cbs.on_train_batch_end(step, logs_fn)
            if self.stop_training:
                return

    def _callback_list(self, callbacks, verbose, epochs, steps, what="fit"):
        cbs = list(callbacks or [])
        verbose = _dfit.local_verbose(self, verbose)   # progress bars on the chief only
        if what == "fit":
            history = next((c for c in cbs if isinstance(c, _cb.History)), None)
            if history is None:   # last, as Keras: it records what the other callbacks added to the logs
                history = _cb.History()
                cbs.append(history)
            self.history = history
        if verbose and not any(isinstance(c, ProgbarLogger) for c in cbs):
            cbs.insert(0, ProgbarLogger())
        params = {"verbose": verbose, "epochs": epochs, "steps": steps, "_in_fit": what == "fit"}
        return _cb.CallbackList(cbs, model=self, params=params)

    def _resume_point(self, cbs):
        """(epoch, step) where a BackupAndRestore callback says an interrupted run stopped, else None."""
        for cb in cbs:
            point = getattr(cb, "_resume_point", None)
            if point is not None:
                return point
        return None

    def _validate(self, val, batch_size, steps, cbs):
        if isinstance(val, (tuple, list)) and not _da.is_dataset(val):
            if len(val) not in (2, 3):
                raise InvalidArgumentError("validation_data must be (x, y) or (x, y, sample_weight)")
            vx, vy = val[0], val[1]
            vsw = val[2] if len(val) == 3 else None
            return self._evaluate_core(vx, vy, vsw, batch_size, steps, cbs, in_fit=True)
        return self._evaluate_core(val, None, None, batch_size, steps, cbs, in_fit=True)

    # -- evaluate -------------------------------------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, max_queue_size=10, workers=1, use_multiprocessing=False, return_dict=False):
        """The loss and metrics over the data (in test mode: dropout off, batch-norm statistics fixed).

        Args:
            x, y, sample_weight: as in fit.
            batch_size: rows per step; by default large batches (the result does not depend on it).
            steps: number of batches (default: all).
            return_dict: return {name: value} instead of a list.

        Returns:
            The loss (a float) when there are no metrics, else [loss, metric values...]; or a dict.
        """
        self._assert_compiled("evaluate")
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = self._callback_list(callbacks, verbose, 1, None, what="evaluate")
        logs = self._evaluate_core(x, y, sample_weight, batch_size, steps, cbs, in_fit=False)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_core(self, x, y, sample_weight, batch_size, steps, cbs, in_fit):
        if _da.is_dataset(x):
            source, signature, xs0 = self._dataset_source(x, "evaluate", steps)
            rt = self._get_runtime(xs0)
            n_steps = steps if steps is not None else _len_or_none(x)
        else:
            xs, ys, sws = self._prepare_arrays(x, y, sample_weight, what="evaluate")
            if ys is None:
                raise InvalidArgumentError("evaluate() needs targets y")
            rt = self._get_runtime(xs)
            signature = self._signature(ys, sws)
            batch_size = batch_size or self._auto_batch(xs)
            source = _da.ArrayBatches(self._feed_arrays(xs, ys, sws, signature), batch_size)
            n_steps = steps if steps is not None else source.steps
        dist = _dfit.for_model(self)
        if dist is not None:
            source = dist.shard_eval(source)
        fn = rt.test_function(signature)
        rt.reset_metrics()
        saved = dict(cbs.params)
        if not in_fit:
            cbs.set_params(dict(saved, steps=n_steps))
        cbs.on_test_begin()
        begin, end = cbs.wants("test_begin"), cbs.wants("test_end")
        tuner = None if in_fit else _threads.epoch_tuner()   # inside fit(), fit's choice is in force
        batches = source.epoch(0, 0, steps)
        try:
            for step, feeds in (tuner.epoch(batches, n_steps) if tuner is not None else batches):
                if begin:
                    cbs.on_test_batch_begin(step)
                fn(*feeds)
                if end:
                    cbs.on_test_batch_end(step, rt.results)
        finally:
            if tuner is not None:
                tuner.restore()
        if dist is not None:
            dist.reduce_metrics(rt)
        logs = rt.results()
        cbs.on_test_end(logs)
        return logs

    # -- predict --------------------------------------------------------------------------------------------------
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, max_queue_size=10,
                workers=1, use_multiprocessing=False):
        """Model outputs for the inputs `x` (test mode), as arrays (a list or dict for several outputs).

        Args:
            x: arrays (a list or dict for several inputs) or a Dataset.
            batch_size: rows per step; by default large batches (the outputs do not depend on it).
            verbose: 0 silent, 1 progress bar on a terminal.
            steps: number of batches to run (default: all).
        """
        verbose = 0 if verbose == "auto" else int(verbose)
        cbs = self._callback_list(callbacks, verbose, 1, None, what="predict")
        if _da.is_dataset(x):
            source, _, xs0 = self._dataset_source(x, "predict", steps)
            rt = self._get_runtime(xs0)
            n_steps = steps if steps is not None else _len_or_none(x)
            n = None
        else:
            xs, _, _ = self._prepare_arrays(x, what="predict")
            rt = self._get_runtime(xs)
            source = _da.ArrayBatches(xs, batch_size or self._auto_batch(xs))
            n = source.n
            n_steps = steps if steps is not None else source.steps
        fn = rt.predict_function()
        cbs.set_params(dict(cbs.params, steps=n_steps))
        cbs.on_predict_begin()
        end = cbs.wants("predict_end")
        results, chunks, filled = None, None, 0
        tuner = _threads.epoch_tuner()
        batches = source.epoch(0, 0, steps)
        try:
            for step, feeds in (tuner.epoch(batches, n_steps) if tuner is not None else batches):
                outs = fn(*feeds)
                rows = len(outs[0]) if outs else 0
                if n is not None and steps is None:
                    if results is None:   # one preallocated array per output, filled batch by batch
                        results = [np.empty((n,) + o.shape[1:], o.dtype) for o in outs]
                    for r, o in zip(results, outs):
                        r[filled:filled + rows] = o
                else:
                    chunks = chunks or [[] for _ in outs]
                    for c, o in zip(chunks, outs):
                        c.append(o)
                filled += rows
                if end:
                    cbs.on_predict_batch_end(step, {"outputs": outs})
        finally:
            if tuner is not None:
                tuner.restore()
        cbs.on_predict_end()
        if results is None:
            if chunks is None:
                raise InvalidArgumentError("predict(): no data")
            results = [np.concatenate(c, axis=0) for c in chunks]
        else:
            results = [r[:filled] for r in results]
        return self._pack_output_arrays(results)

    def _pack_output_arrays(self, arrays):
        structure = getattr(self, "_output_structure", None)
        if isinstance(structure, dict):
            return dict(zip(self.output_names, arrays))
        if len(arrays) > 1:
            return list(arrays)
        return arrays[0]

    def _auto_batch(self, xs):
        per_row = sum(int(np.prod(np.shape(a)[1:], dtype=np.int64)) for a in xs) or 1
        return int(min(max(32, _AUTO_BATCH_ELEMENTS // per_row), 1024))

    # -- single batches -------------------------------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                       return_dict=False):
        """One training step on one batch; returns the loss (and metrics) of that batch."""
        self._assert_compiled("train_on_batch")
        xs, ys, sws = self._prepare_arrays(x, y, sample_weight, class_weight, "train_on_batch")
        rt = self._get_runtime(xs)
        signature = self._signature(ys, sws)
        fn = rt.train_function(signature)
        if reset_metrics:
            rt.reset_metrics()
        fn(*self._feed_arrays(xs, ys, sws, signature))
        return self._format_logs(rt.results(), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
        """The loss (and metrics) of one batch in test mode."""
        self._assert_compiled("test_on_batch")
        xs, ys, sws = self._prepare_arrays(x, y, sample_weight, what="test_on_batch")
        rt = self._get_runtime(xs)
        signature = self._signature(ys, sws)
        fn = rt.test_function(signature)
        if reset_metrics:
            rt.reset_metrics()
        fn(*self._feed_arrays(xs, ys, sws, signature))
        return self._format_logs(rt.results(), return_dict)

    def predict_on_batch(self, x):
        """The outputs for one batch of inputs."""
        xs, _, _ = self._prepare_arrays(x, what="predict_on_batch")
        rt = self._get_runtime(xs)
        return self._pack_output_arrays(rt.predict_function()(*xs))

    @staticmethod
    def _format_logs(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

def _due(epoch, freq):
    if isinstance(freq, int):
        return (epoch + 1) % max(freq, 1) == 0
    return (epoch + 1) in freq


def _len_or_none(x):
    try:
        n = len(x)
    except TypeError:
        return None
    return n if isinstance(n, int) and n >= 0 else None
