"""ke.train: Saver, checkpoint state files and the global step."""
import os

import numpy as np
import pytest

from kestimator import engine as ke
from kestimator.engine import checkpoint as ckpt
from kestimator.engine import train
from kestimator.errors import DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError


def _model(graph, init=0.0):
    with graph.as_default():
        w = ke.Variable(np.full((2, 3), init, np.float32), name="w")
        b = ke.Variable(np.arange(3, dtype=np.int64), name="dense/b")
    return w, b


def test_save_restore_round_trip_into_a_new_graph(tmp_path):
    g1 = ke.Graph()
    w, b = _model(g1, 1.5)
    with g1.as_default():
        saver = train.Saver()
    with ke.Session(graph=g1) as sess:
        sess.run([w.initializer, b.initializer])
        sess.run(w.assign(np.arange(6, dtype=np.float32).reshape(2, 3)))
        path = saver.save(sess, str(tmp_path / "model.ckpt"))
    assert path == str(tmp_path / "model.ckpt")
    assert ckpt.list_tensors(path) == [("dense/b", (3,), "int64"), ("w", (2, 3), "float32")]
    g2 = ke.Graph()
    w2, b2 = _model(g2, -9.0)
    with g2.as_default():
        saver2 = train.Saver()
    with ke.Session(graph=g2) as sess:
        saver2.restore(sess, path)   # restoring initializes: no initializer run
        assert sess.run(w2).tolist() == [[0, 1, 2], [3, 4, 5]]
        assert sess.run(b2).tolist() == [0, 1, 2]


def test_dict_var_list_names_the_tensors(tmp_path, fresh_graph):
    v = ke.get_variable("v", [2], initializer=ke.ones_initializer)
    saver = train.Saver({"renamed/v": v})
    with ke.Session() as sess:
        sess.run(v.initializer)
        path = saver.save(sess, str(tmp_path / "c"))
    assert ckpt.load_tensors(path)["renamed/v"].tolist() == [1.0, 1.0]
    assert [n for n, _, _ in ckpt.list_tensors(path)] == ["renamed/v"]


def test_global_step_suffix_and_state_file(tmp_path, fresh_graph):
    v = ke.Variable(1.0, name="v")
    gs = train.create_global_step()
    saver = train.Saver(max_to_keep=2)
    prefix = str(tmp_path / "model.ckpt")
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        paths = [saver.save(sess, prefix, global_step=s) for s in (1, 2)]
        sess.run(gs.assign(7))
        paths.append(saver.save(sess, prefix, global_step=gs))   # a variable is evaluated in the session
    assert paths == [prefix + "-1", prefix + "-2", prefix + "-7"]
    # max_to_keep=2: the oldest file is gone, the state lists the kept ones, oldest first
    assert not os.path.exists(paths[0]) and os.path.exists(paths[1]) and os.path.exists(paths[2])
    assert saver.last_checkpoints == paths[1:]
    state = train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == paths[2]
    assert state.all_model_checkpoint_paths == paths[1:]
    assert train.latest_checkpoint(str(tmp_path)) == paths[2]
    text = (tmp_path / "checkpoint").read_text().splitlines()
    assert text[:3] == ['model_checkpoint_path: "model.ckpt-7"', 'all_model_checkpoint_paths: "model.ckpt-2"',
                        'all_model_checkpoint_paths: "model.ckpt-7"']   # TF's text format, relative paths
    assert ckpt.read_metadata(paths[2])["global_step"] == 7
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt-2", "model.ckpt-7"]


def test_max_to_keep_none_keeps_all(tmp_path, fresh_graph):
    ke.Variable(1.0)
    saver = train.Saver(max_to_keep=None)
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        for s in range(7):
            saver.save(sess, str(tmp_path / "m"), global_step=s)
    assert len(train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths) == 7
    assert all(os.path.exists(tmp_path / f"m-{s}") for s in range(7))


def test_keep_checkpoint_every_n_hours(tmp_path, fresh_graph, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(train.time, "time", lambda: clock[0])
    ke.Variable(1.0)
    saver = train.Saver(max_to_keep=1, keep_checkpoint_every_n_hours=1)   # first preserve after t0 + 3600
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        for step, minutes in enumerate([10, 70, 80, 85]):
            clock[0] = 1000.0 + 60 * minutes
            saver.save(sess, str(tmp_path / "m"), global_step=step)
    # step 0 (t0+10min) is dropped; step 1 (t0+70min, past the first hour) is preserved; the next
    # preserve time is t0+120min, so step 2 is dropped; step 3 is the one kept by max_to_keep.
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("m-")) == ["m-1", "m-3"]


def test_restore_errors(tmp_path, fresh_graph):
    v = ke.Variable(np.zeros(3, np.float32), name="v")
    w = ke.Variable(np.zeros(2, np.float32), name="w")
    with ke.Session() as sess:
        sess.run(ke.global_variables_initializer())
        path = train.Saver([v]).save(sess, str(tmp_path / "only_v"))
        with pytest.raises(NotFoundError, match="w:0.*only_v"):
            train.Saver([v, w]).restore(sess, path)
        with pytest.raises(NotFoundError, match="missing"):
            train.Saver([v]).restore(sess, str(tmp_path / "missing"))
        with pytest.raises(InvalidArgumentError, match="None"):
            train.Saver([v]).restore(sess, None)
        with pytest.raises(InvalidArgumentError, match=r"shape \(3,\).*expected \(2,\)"):
            train.Saver({"v": w}).restore(sess, path)
        u = ke.Variable(np.zeros(3, np.int32), name="u")
        sess.run(u.initializer)
        with pytest.raises(InvalidArgumentError, match="dtype float32, expected int32"):
            train.Saver({"v": u}).restore(sess, path)


def test_saver_construction_errors(fresh_graph):
    with pytest.raises(InvalidArgumentError, match="no variables"):
        train.Saver()
    v = ke.Variable(1.0, name="v")
    assert list(train.Saver([v, v])._vars) == ["v"]   # the same variable twice is one entry
    with pytest.raises(InvalidArgumentError, match="only save variables"):
        train.Saver([ke.constant(1.0)])


def test_duplicate_names_refused(fresh_graph):
    a = ke.Variable(1.0, name="a")
    with ke.Graph().as_default():
        other = ke.Variable(1.0, name="a")   # same op name, different variable
    with pytest.raises(InvalidArgumentError, match="'a'"):
        train.Saver([a, other])


def test_save_uninitialized_and_missing_folder(tmp_path, fresh_graph):
    ke.Variable(1.0, name="v")
    saver = train.Saver()
    with ke.Session() as sess:
        with pytest.raises(FailedPreconditionError, match="v"):
            saver.save(sess, str(tmp_path / "m"))
        sess.run(ke.global_variables_initializer())
        with pytest.raises(NotFoundError, match="no_such_dir"):
            saver.save(sess, str(tmp_path / "no_such_dir" / "m"))


def test_resume_continues_the_same_trajectory(tmp_path):
    """Weights, Adam slots and counters all go through the checkpoint: 3 steps + restore + 3 steps gives
    the losses of 6 uninterrupted steps."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)

    def build():
        g = ke.Graph()
        with g.as_default():
            xp = ke.placeholder(ke.float32, [None, 4])
            yp = ke.placeholder(ke.float32, [None, 1])
            w = ke.Variable(np.full((4, 1), 0.1, np.float32), name="w")
            loss = ke.reduce_mean(ke.square(ke.matmul(xp, w) - yp))
            gs = train.get_or_create_global_step()
            step = train.AdamOptimizer(0.1).minimize(loss, global_step=gs)
            saver = train.Saver()
        return g, xp, yp, loss, step, saver, gs

    g, xp, yp, loss, step, saver, gs = build()
    with ke.Session(graph=g) as sess:
        sess.run(ke.global_variables_initializer())
        straight = [sess.run([loss, step], {xp: x, yp: y})[0] for _ in range(6)]
    with ke.Session(graph=g) as sess:
        sess.run(ke.global_variables_initializer())
        first = [sess.run([loss, step], {xp: x, yp: y})[0] for _ in range(3)]
        path = saver.save(sess, str(tmp_path / "m"), global_step=gs)
    assert path.endswith("m-3")
    g2, xp2, yp2, loss2, step2, saver2, gs2 = build()
    with ke.Session(graph=g2) as sess:
        saver2.restore(sess, train.latest_checkpoint(str(tmp_path)))
        assert sess.run(gs2) == 3
        second = [sess.run([loss2, step2], {xp2: x, yp2: y})[0] for _ in range(3)]
    np.testing.assert_array_equal(first + second, straight)


def test_eager_variables(tmp_path):
    ke.enable_eager_execution()
    v = ke.Variable([1.0, 2.0], name="ev")
    saver = train.Saver([v])
    path = saver.save(None, str(tmp_path / "e"))
    v.assign([5.0, 5.0])
    saver.restore(None, path)
    assert v.numpy().tolist() == [1.0, 2.0]
    assert ckpt.list_tensors(path) == [("ev", (2,), "float32")]


# -- state file parsing -------------------------------------------------------------------------------------
def test_state_file_absolute_paths_and_bad_lines(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    train.update_checkpoint_state(str(tmp_path), str(other / "a"), [str(other / "a")])
    assert train.get_checkpoint_state(str(tmp_path)).model_checkpoint_path == str(other / "a")
    with pytest.warns(RuntimeWarning, match="does not exist"):
        assert train.latest_checkpoint(str(tmp_path)) is None
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "x"\nthis is not a field\n')
    with pytest.raises(DataLossError, match="line 2"):
        train.get_checkpoint_state(str(tmp_path))
    assert train.get_checkpoint_state(str(tmp_path / "elsewhere")) is None
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "we \\"quote\\""\n')
    assert train.get_checkpoint_state(str(tmp_path)).model_checkpoint_path == str(tmp_path / 'we "quote"')


def test_checkpoint_reader_and_list_variables(tmp_path, fresh_graph):
    v = ke.Variable(np.ones((2, 2), np.float32), name="scope/v")
    saver = train.Saver()
    with ke.Session() as sess:
        sess.run(v.initializer)
        saver.save(sess, str(tmp_path / "m"), global_step=5)
    assert train.list_variables(str(tmp_path)) == [("scope/v", [2, 2])]
    assert train.load_variable(str(tmp_path), "scope/v").tolist() == [[1, 1], [1, 1]]
    reader = train.NewCheckpointReader(str(tmp_path / "m-5"))
    assert reader.get_variable_to_shape_map() == {"scope/v": [2, 2]}
    assert reader.get_variable_to_dtype_map() == {"scope/v": ke.float32}
    assert reader.has_tensor("scope/v") and not reader.has_tensor("v")
    with pytest.raises(NotFoundError):
        train.list_variables(str(tmp_path / "empty_dir_that_is_missing"))


# -- global step ---------------------------------------------------------------------------------------------
def test_global_step(fresh_graph):
    assert train.get_global_step() is None
    gs = train.create_global_step()
    assert gs.name == "global_step:0" and gs.dtype == ke.int64 and tuple(gs.shape) == ()
    assert not gs.trainable
    assert gs in ke.get_collection(ke.GraphKeys.GLOBAL_VARIABLES)
    assert ke.get_collection(ke.GraphKeys.GLOBAL_STEP) == [gs]
    assert gs not in ke.trainable_variables()
    assert train.get_global_step() is gs and train.get_or_create_global_step() is gs
    with pytest.raises(InvalidArgumentError, match="already exists"):
        train.create_global_step()
    with ke.Session() as sess:
        sess.run(gs.initializer)
        assert train.global_step(sess, gs) == 0
    train.assert_global_step(gs)
    with pytest.raises(InvalidArgumentError):
        train.assert_global_step(ke.Variable(1.0))


def test_global_step_created_at_root_scope():
    g = ke.Graph()
    with g.as_default(), ke.name_scope("inner"), ke.variable_scope("vs"):
        gs = train.get_or_create_global_step()
    assert gs.op.name == "global_step"
    assert train.get_global_step(g) is gs


def test_get_global_step_by_name_fallback():
    g = ke.Graph()
    with g.as_default():
        v = ke.Variable(np.int64(0), name="global_step", trainable=False)
    assert train.get_global_step(g) is v
