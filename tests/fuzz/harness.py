"""Shared plumbing of the fuzz tests: an emptied folder per input, the per-test tally that is printed, and the
default tier's share of inputs per test."""
import math
import os
import shutil
import warnings

from hypothesis import settings

from .contract import Contract

SUMMARIES = []


def ci_share(n_tests, targeted=0):
    """Default-tier settings for one of `n_tests` hypothesis tests that fuzz the same reader: together with
    `targeted` fixed inputs run by other tests of that reader they make the profile's per-reader count
    (FUZZ_PER_READER, see conftest.py)."""
    ci = settings.get_profile("ci")
    return settings(ci, max_examples=max(math.ceil((ci.max_examples - targeted) / n_tests), 1))


class Inputs:
    """Hands out the same folder (`base`/input) for every input, empty on entry, and empties it after the
    input ran: one folder per test instead of a new one per input keeps input generation cheap."""

    def __init__(self, base):
        self.folder = os.path.join(os.fspath(base), "input")

    def __enter__(self):
        if os.path.isdir(self.folder):
            _empty(self.folder)
        else:
            os.makedirs(self.folder)
        return self.folder

    def __exit__(self, *exc):
        _empty(self.folder)


def _empty(folder):
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)


def write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def quiet(fn):
    """fn with warnings silenced (readers warn when they skip a damaged checkpoint; that is allowed)."""
    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    return call


def contract(name, folder_to_watch=None, **kwargs):
    c = Contract(name, watch=[folder_to_watch] if folder_to_watch else [], **kwargs)
    SUMMARIES.append(c)
    return c


class Seed:
    """A seed file: its path and bytes (repr shows the path only, so failure reports stay readable)."""

    def __init__(self, path, data=None, **extra):
        self.path = os.fspath(path)
        if data is None and os.path.isfile(self.path):
            with open(self.path, "rb") as f:
                data = f.read()
        self.data = data
        self.__dict__.update(extra)

    def __repr__(self):
        return f"Seed({self.path!r})"


def budget_spent(c):
    """True once FUZZ_BUDGET_S seconds of fuzzing `c`'s reader are spent: a slow-tier test then returns before
    it builds the input (building an HDF5 mutation costs as much as reading it)."""
    if c._over_budget():
        c.skipped += 1
        return True
    return False
