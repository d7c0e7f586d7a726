"""Options: validation, merging along the pipeline, and their effect."""
import pytest

from kestimator.data import Dataset, Options
from kestimator.errors import InvalidArgumentError


def test_defaults_and_validation():
    options = Options()
    assert options.deterministic is None and options.memory_budget_bytes is None
    assert options.threading.private_threadpool_size is None
    with pytest.raises(InvalidArgumentError, match="no option 'determinstic'"):
        options.determinstic = True
    with pytest.raises(InvalidArgumentError, match="positive int"):
        options.memory_budget_bytes = -5
    with pytest.raises(InvalidArgumentError, match="one of"):
        options.process_start_method = "vfork"
    with pytest.raises(AttributeError):
        options.nothing_here
    options.experimental_deterministic = False      # the TF 1.x name
    assert options.deterministic is False and options.experimental_deterministic is False


def test_downstream_options_win_and_unset_ones_do_not_override():
    a = Options()
    a.deterministic = False
    a.memory_budget_bytes = 1000
    b = Options()
    b.memory_budget_bytes = 5000
    b.threading.private_threadpool_size = 3
    ds = Dataset.range(3).with_options(a).map(lambda x: x).with_options(b).batch(2)
    merged = ds.options()
    assert merged.deterministic is False                 # only `a` set it
    assert merged.memory_budget_bytes == 5000            # both set it; `b` is downstream
    assert merged.threading.private_threadpool_size == 3
    assert Dataset.range(3).options() == Options()


def test_options_reach_the_iterator():
    options = Options()
    options.memory_budget_bytes = 12345
    it = iter(Dataset.range(3).with_options(options).prefetch(1))
    assert it.memory_budget.limit == 12345
    assert [int(v) for v in it] == [0, 1, 2]
    assert iter(Dataset.range(2)).memory_budget is None
