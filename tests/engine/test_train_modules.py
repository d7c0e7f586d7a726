"""engine.train was split into focused modules (saver, train_global_step, tf1_optimizers, lr_decay); every
public name stays importable from `ke.train` and `kestimator.engine.train`, as the same object."""
import importlib

import kestimator.engine.train as train_module
from kestimator import engine as ke

HOMES = {"kestimator.engine.saver": ["Saver", "CheckpointState", "get_checkpoint_state", "latest_checkpoint",
                                     "update_checkpoint_state", "checkpoint_exists", "list_variables",
                                     "load_variable", "NewCheckpointReader", "CheckpointReader"],
         "kestimator.engine.train_global_step": ["get_global_step", "create_global_step",
                                                 "get_or_create_global_step", "global_step", "assert_global_step"],
         "kestimator.engine.tf1_optimizers": ["Optimizer", "GradientDescentOptimizer", "MomentumOptimizer",
                                              "AdamOptimizer", "AdagradOptimizer", "RMSPropOptimizer",
                                              "FtrlOptimizer"],
         "kestimator.engine.lr_decay": ["exponential_decay", "piecewise_constant", "cosine_decay",
                                        "inverse_time_decay", "polynomial_decay"]}


def test_every_public_name_is_where_it_was():
    moved = [name for names in HOMES.values() for name in names]
    assert sorted(moved) == sorted(train_module.__all__)    # nothing lost, nothing left behind
    for module_name, names in HOMES.items():
        module = importlib.import_module(module_name)
        assert sorted(module.__all__) == sorted(names)
        for name in names:
            assert getattr(train_module, name) is getattr(module, name), name
            assert getattr(ke.train, name) is getattr(module, name), name
    assert ke.train.NewCheckpointReader is ke.train.CheckpointReader


def test_tf1_cluster_names_raise_the_mpi_advice_not_attribute_error():
    import pytest
    from kestimator import errors
    from kestimator.engine import train
    for name in ("ClusterSpec", "Server", "replica_device_setter"):
        with pytest.raises(errors.UnimplementedError, match="mpiexec"):
            getattr(train, name)({"ps": ["h:1"], "worker": ["h:2"]})
    with pytest.raises(AttributeError):
        train.NoSuchThing
