"""Shared plumbing of the fuzz tests: a fresh folder per input, and the per-test tally that is printed."""
import os
import shutil
import tempfile
import warnings

from .contract import Contract

SUMMARIES = []


class Inputs:
    """Hands out one fresh folder per input under `base` and removes it after the input ran."""

    def __init__(self, base):
        self.base = os.fspath(base)

    def __enter__(self):
        self.folder = tempfile.mkdtemp(dir=self.base)
        return self.folder

    def __exit__(self, *exc):
        shutil.rmtree(self.folder, ignore_errors=True)


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
