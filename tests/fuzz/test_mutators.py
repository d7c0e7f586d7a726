"""The mutators themselves: they must not change their own tables, and their documents stay bounded.

Regression: `apply_json_ops` used to put the shared lists and dicts of WRONG_VALUES into documents, where a
later op changed them in place; over a few hundred inputs one of those lists came to contain itself, and
encoding the next document that used it took the test process to 22 GB.
"""
import itertools
import json

from .mutators import _JSON_KINDS, _MAX_TEXT, WRONG_VALUES, _text_size, apply_json_ops, dump_json


def _snapshot():
    return [json.dumps(v, allow_nan=True) if not isinstance(v, str) else v for v in WRONG_VALUES]


def test_json_ops_leave_their_tables_alone_and_documents_stay_bounded():
    before = _snapshot()
    seed = {"a": [1, {"b": "c"}], "d": {"e": None}}
    n = len(WRONG_VALUES)
    for first, second in itertools.product(_JSON_KINDS, repeat=2):
        for v in range(n):
            ops = [(first, 1, v, 50), (second, 2, (v + 1) % n, 50), ("add_key", 3, v, 3), ("replace", 4, v, 3)]
            doc = apply_json_ops(seed, ops)
            assert _text_size(doc, 2 * _MAX_TEXT) < 2 * _MAX_TEXT, ops   # stops counting: a cycle fails here
            assert len(dump_json(doc)) < 2 * _MAX_TEXT, ops
    assert _snapshot() == before
    assert seed == {"a": [1, {"b": "c"}], "d": {"e": None}}
