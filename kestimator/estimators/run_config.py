"""RunConfig: where an Estimator writes and how often it checkpoints, summarizes and logs (tf.estimator)."""
import json
import os

from ..errors import InvalidArgumentError

__all__ = ["RunConfig"]

_DEFAULT = object()   # "not given": save_checkpoints_secs defaults to 600 only when steps are not given


def _check_positive(name, value, allow_none=True, allow_zero=False):
    if value is None:
        if allow_none:
            return None
        raise InvalidArgumentError(f"RunConfig: {name} must not be None")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"RunConfig: {name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgumentError(f"RunConfig: {name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


class RunConfig:
    """Settings of an Estimator's runs.

    Args:
        model_dir: folder for checkpoints and event files (the Estimator's `model_dir` must agree).
        tf_random_seed: graph-level random seed (initializers, dropout, numpy_input_fn shuffling); alias
            `random_seed`.
        save_summary_steps: write loss and the model_fn's summaries every this many steps (0/None: never).
        save_checkpoints_steps: checkpoint every this many steps. Exclusive with save_checkpoints_secs.
        save_checkpoints_secs: checkpoint every this many seconds; 600 when neither is given, as in TF.
            Both None: only the final checkpoint of each train() call is written.
        keep_checkpoint_max: how many recent checkpoints to keep (None or 0: all). Checkpoints written by
            earlier runs in the same model_dir count.
        keep_checkpoint_every_n_hours: additionally keep one checkpoint per this many hours.
        log_step_count_steps: log loss and global_step/sec every this many steps.
        session_config: a ke.ConfigProto for the Sessions the Estimator creates.
        train_distribute: a `ks.distributed.MultiWorkerMirroredStrategy()`: under `mpiexec -n N`,
            Estimator.train trains data-parallel on the N ranks (see kestimator/distributed/
            estimator_training.py); as one process it changes nothing. is_chief, task_id,
            num_worker_replicas and global_id_in_cluster then describe this rank.
        Other TF arguments (device_fn, protocol, eval_distribute, experimental_max_worker_delay_secs,
        session_creation_timeout_secs, checkpoint_save_graph_def) are accepted and stored; they have no
        effect.

    Raises:
        InvalidArgumentError: both checkpoint rules are given, a count is negative, or train_distribute is
            not a ks.distributed strategy.
        UnimplementedError: the TF_CONFIG environment variable describes a parameter-server cluster.
    """

    _PROPERTIES = ("model_dir", "tf_random_seed", "save_summary_steps", "save_checkpoints_steps",
                   "save_checkpoints_secs", "session_config", "keep_checkpoint_max",
                   "keep_checkpoint_every_n_hours", "log_step_count_steps", "train_distribute", "device_fn",
                   "protocol", "eval_distribute", "experimental_max_worker_delay_secs",
                   "session_creation_timeout_secs", "checkpoint_save_graph_def")

    def __init__(self, model_dir=None, tf_random_seed=None, save_summary_steps=100,
                 save_checkpoints_steps=None, save_checkpoints_secs=_DEFAULT, session_config=None,
                 keep_checkpoint_max=5, keep_checkpoint_every_n_hours=10000, log_step_count_steps=100,
                 train_distribute=None, device_fn=None, protocol=None, eval_distribute=None,
                 experimental_distribute=None, experimental_max_worker_delay_secs=None,
                 session_creation_timeout_secs=7200, checkpoint_save_graph_def=True, random_seed=None):
        if random_seed is not None:
            if tf_random_seed is not None and tf_random_seed != random_seed:
                raise InvalidArgumentError(f"RunConfig: tf_random_seed={tf_random_seed} and its alias "
                                           f"random_seed={random_seed} disagree")
            tf_random_seed = random_seed
        if save_checkpoints_secs is _DEFAULT:
            save_checkpoints_secs = None if save_checkpoints_steps is not None else 600
        elif save_checkpoints_steps is not None and save_checkpoints_secs is not None:
            raise InvalidArgumentError("RunConfig: save_checkpoints_steps and save_checkpoints_secs cannot both "
                                       "be set")
        if tf_random_seed is not None and (isinstance(tf_random_seed, bool) or
                                           not isinstance(tf_random_seed, int)):
            raise InvalidArgumentError(f"RunConfig: tf_random_seed must be an int, got {tf_random_seed!r}")
        self._model_dir = os.fspath(model_dir) if model_dir is not None else None
        self._tf_random_seed = tf_random_seed
        self._save_summary_steps = _check_positive("save_summary_steps", save_summary_steps, allow_zero=True)
        self._save_checkpoints_steps = _check_positive("save_checkpoints_steps", save_checkpoints_steps)
        self._save_checkpoints_secs = _check_positive("save_checkpoints_secs", save_checkpoints_secs)
        self._session_config = session_config
        self._keep_checkpoint_max = _check_positive("keep_checkpoint_max", keep_checkpoint_max, allow_zero=True)
        self._keep_checkpoint_every_n_hours = _check_positive("keep_checkpoint_every_n_hours",
                                                              keep_checkpoint_every_n_hours)
        self._log_step_count_steps = _check_positive("log_step_count_steps", log_step_count_steps,
                                                     allow_zero=True)
        if train_distribute is not None and not (hasattr(train_distribute, "training_hooks") and
                                                 hasattr(train_distribute, "input_context")):
            raise InvalidArgumentError(f"RunConfig: train_distribute must be a ks.distributed strategy such as "
                                       f"ks.distributed.MultiWorkerMirroredStrategy(), got "
                                       f"{type(train_distribute).__name__}")
        _refuse_parameter_server_tf_config()
        self._train_distribute = train_distribute
        self._device_fn = device_fn
        self._protocol = protocol
        self._eval_distribute = eval_distribute
        self._experimental_max_worker_delay_secs = experimental_max_worker_delay_secs
        self._session_creation_timeout_secs = session_creation_timeout_secs
        self._checkpoint_save_graph_def = checkpoint_save_graph_def

    # -- the settings, read-only as in TF -------------------------------------------------------------
    model_dir = property(lambda self: self._model_dir)
    tf_random_seed = property(lambda self: self._tf_random_seed)
    random_seed = tf_random_seed
    save_summary_steps = property(lambda self: self._save_summary_steps)
    save_checkpoints_steps = property(lambda self: self._save_checkpoints_steps)
    save_checkpoints_secs = property(lambda self: self._save_checkpoints_secs)
    session_config = property(lambda self: self._session_config)
    keep_checkpoint_max = property(lambda self: self._keep_checkpoint_max)
    keep_checkpoint_every_n_hours = property(lambda self: self._keep_checkpoint_every_n_hours)
    log_step_count_steps = property(lambda self: self._log_step_count_steps)
    train_distribute = property(lambda self: self._train_distribute)
    device_fn = property(lambda self: self._device_fn)
    protocol = property(lambda self: self._protocol)
    eval_distribute = property(lambda self: self._eval_distribute)
    experimental_max_worker_delay_secs = property(lambda self: self._experimental_max_worker_delay_secs)
    session_creation_timeout_secs = property(lambda self: self._session_creation_timeout_secs)
    checkpoint_save_graph_def = property(lambda self: self._checkpoint_save_graph_def)

    # the cluster properties TF code reads: one worker, or this MPI rank under train_distribute
    def _rank_and_size(self):
        strategy = self._train_distribute
        if strategy is None:
            return 0, 1
        return strategy.cluster_resolver.task_id, strategy.num_replicas_in_sync

    cluster_spec = property(lambda self: None)
    evaluation_master = property(lambda self: "")
    is_chief = property(lambda self: self._rank_and_size()[0] == 0)
    master = property(lambda self: "")
    num_ps_replicas = property(lambda self: 0)
    num_worker_replicas = property(lambda self: self._rank_and_size()[1])
    task_id = property(lambda self: self._rank_and_size()[0])
    task_type = property(lambda self: "worker")
    global_id_in_cluster = property(lambda self: self._rank_and_size()[0])
    service = property(lambda self: None)

    def replace(self, **kwargs):
        """A copy with some settings changed (the checkpoint-rule exclusivity is checked again).

        Raises:
            InvalidArgumentError: an unknown setting name, or an invalid combination.
        """
        for key in kwargs:
            if key not in self._PROPERTIES and key != "random_seed":
                raise InvalidArgumentError(f"RunConfig.replace: {key!r} is not a RunConfig setting; settings: "
                                           f"{sorted(self._PROPERTIES)}")
        args = {k: getattr(self, k) for k in self._PROPERTIES}
        if "random_seed" in kwargs:
            kwargs["tf_random_seed"] = kwargs.pop("random_seed")
        # changing one checkpoint rule clears the other, as TF's replace does when the new pair conflicts
        if kwargs.get("save_checkpoints_steps") is not None and "save_checkpoints_secs" not in kwargs:
            args["save_checkpoints_secs"] = None
        if kwargs.get("save_checkpoints_secs") is not None and "save_checkpoints_steps" not in kwargs:
            args["save_checkpoints_steps"] = None
        args.update(kwargs)
        return RunConfig(**args)

    def __deepcopy__(self, memo):
        return self.replace()

    def __copy__(self):
        return self.replace()

    def __eq__(self, other):
        return isinstance(other, RunConfig) and all(getattr(self, k) == getattr(other, k)
                                                    for k in self._PROPERTIES)

    def __hash__(self):
        return hash(tuple(repr(getattr(self, k)) for k in self._PROPERTIES))

    def __repr__(self):
        body = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._PROPERTIES[:9])
        return f"RunConfig({body})"


def _refuse_parameter_server_tf_config(environ=None):
    """TF_CONFIG naming "ps" tasks asks for asynchronous parameter-server training, which kestimator does not
    run: say so and name the MPI way instead of silently training one independent model per process.

    Raises:
        UnimplementedError: TF_CONFIG holds a cluster with "ps" tasks (malformed JSON is ignored, as a
            one-process run ignores TF_CONFIG altogether).
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        return
    try:
        cluster = json.loads(raw).get("cluster") or {}
    except (ValueError, AttributeError):
        return
    if isinstance(cluster, dict) and cluster.get("ps"):
        from ..errors import UnimplementedError
        raise UnimplementedError(
            "RunConfig: TF_CONFIG describes a parameter-server cluster (\"ps\" tasks), but kestimator does not run "
            "asynchronous parameter-server training. Launch N identical processes with `mpiexec -n N python "
            "train.py` and pass RunConfig(train_distribute=ks.distributed.MultiWorkerMirroredStrategy()); the "
            "MPI launcher defines the cluster (see docs/DISTRIBUTED.md)")

