"""`import kestimator` stays light: the heavy libraries load only when a feature needs them."""
import subprocess
import sys

HEAVY = ["h5py", "tqdm", "numba", "matplotlib", "cupy", "sklearn", "yaml", "scipy"]


def _loaded_after(statement):
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_kestimator_loads_no_heavy_library():
    assert _loaded_after("import kestimator") == []


def test_building_and_running_a_graph_loads_no_heavy_library():
    stmt = ("import kestimator as ks; from kestimator import engine as ke; "
            "x = ke.constant([1.0, 2.0]); ke.Session().run(ke.reduce_sum(x * 2.0))")
    assert _loaded_after(stmt) == []


def test_every_listed_submodule_imports():
    # `ks.<name>` for every name the package advertises must resolve (ks.train once pointed at no module)
    import kestimator as ks
    for name in sorted(ks._SUBMODULES):
        assert getattr(ks, name).__name__.startswith("kestimator."), name
    assert ks.train.Saver is ks.engine.train.Saver
