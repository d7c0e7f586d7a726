"""Fixtures shared by the tests of kestimator.data (helpers live in data_helpers.py)."""
import json
import os

import pytest

from .data_helpers import FIXTURES


@pytest.fixture(scope="session")
def golden():
    with open(os.path.join(FIXTURES, "golden.json")) as f:
        return json.load(f)
