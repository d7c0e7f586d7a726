"""Mutations of valid files, as hypothesis strategies.

Three levels, each drawn as a list of small "ops" so hypothesis can shrink a failing input to the few
ops that matter:

* bytes: truncation, bit flips, overwritten / inserted / deleted / duplicated runs, and little- or
  big-endian integers set to extreme values (huge declared sizes and counts);
* JSON: at a chosen node of a decoded document, a value of the wrong type, a huge number, a long
  string, a deep nest, a removed or unknown key, or a copy of an ancestor (documents that refer to
  themselves);
* HDF5 (applied with h5py to a copy of the file): attributes of the wrong type, datasets of the wrong
  dtype or shape, huge declared shapes backed by no data, soft / external / hard links (including a link
  cycle, and a dataset the reader expects replaced by a soft link - elsewhere, dangling or to itself - or an
  external link), external storage, virtual datasets, deleted and renamed members.
"""
import copy
import json
import os
import struct

import numpy as np
from hypothesis import strategies as st

# -- bytes ---------------------------------------------------------------------------------------------------
_EXTREMES = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 40,
             (1 << 63) - 1, 1 << 63, (1 << 64) - 1]
_BYTE_KINDS = ("truncate", "flip", "overwrite", "insert", "delete", "duplicate", "int32", "int64", "zero")

byte_op = st.tuples(st.sampled_from(_BYTE_KINDS), st.floats(0, 1, allow_nan=False),
                    st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16),
                    st.sampled_from(_EXTREMES), st.booleans())
byte_ops = st.lists(byte_op, min_size=1, max_size=4)


def apply_byte_ops(data, ops):
    """`data` with each op applied in turn (positions are fractions of the current length)."""
    buf = bytearray(data)
    for kind, where, n, blob, extreme, big_endian in ops:
        pos = min(int(where * len(buf)), max(len(buf) - 1, 0))
        if kind == "truncate":
            del buf[pos:]
        elif kind == "flip" and buf:
            buf[pos] ^= 1 << (n % 8)
        elif kind == "overwrite":
            buf[pos:pos + len(blob)] = blob
        elif kind == "insert":
            buf[pos:pos] = blob
        elif kind == "delete":
            del buf[pos:pos + 1 + n % 64]
        elif kind == "duplicate":
            chunk = bytes(buf[pos:pos + 1 + n % 256])
            buf[pos:pos] = chunk
        elif kind in ("int32", "int64"):
            fmt = ("<>"[big_endian]) + ("I" if kind == "int32" else "Q")
            size = struct.calcsize(fmt)
            value = extreme & ((1 << (8 * size)) - 1)
            buf[pos:pos + size] = struct.pack(fmt, value)
        elif kind == "zero":
            end = min(len(buf), pos + 1 + n % 4096)
            buf[pos:end] = bytes(end - pos)
    return bytes(buf)


# -- JSON ----------------------------------------------------------------------------------------------------
WRONG_VALUES = [None, True, False, 0, -1, 1 << 31, (1 << 63), -(1 << 63) - 1, 10 ** 400, 1e308, -1e308,
                float("nan"), float("inf"), 0.5, "", "x", "x" * 100_000, "os.system", "__import__",
                "../../etc/passwd", "Lambda", "\x00\udcff", [], [None], [1, "a", {}], {}, {"": None},
                {"class_name": "os.system", "config": {}}, {"class_name": "Lambda", "config": {}}]
_JSON_KINDS = ("replace", "delete", "add_key", "deep", "ancestor", "wide")

json_op = st.tuples(st.sampled_from(_JSON_KINDS), st.integers(0, 1 << 30), st.integers(0, len(WRONG_VALUES) - 1),
                    st.sampled_from([3, 50, 1000, 3000]))
json_ops = st.lists(json_op, min_size=1, max_size=3)


def _nodes(doc):
    """(parent, key, ancestors) for every value inside `doc`, in a stable order (explicit stack)."""
    out, stack = [], [(doc, ())]
    while stack:
        node, ancestors = stack.pop()
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        for key, value in items:
            out.append((node, key, ancestors))
            stack.append((value, ancestors + (node,)))
    return out


def _deep(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def _copy(doc):
    """A deep copy without recursion (documents may already be deep)."""
    return json.loads(json.dumps(doc)) if _depth_ok(doc) else doc


def _depth_ok(doc, limit=500):
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


_MAX_NODES = 20_000   # mutated documents stay this small (a "wide" op on a wide op would explode)
_MAX_TEXT = 4 << 20   # ... and this short as text: 20,000 copies of a 100,000-character string is 2 GB


def _text_size(doc, limit=_MAX_TEXT + 1):
    """About how many characters `doc` takes as JSON (strings by length, other values 8), stopping at `limit`."""
    n, stack = 0, [doc]
    while stack and n < limit:
        node = stack.pop()
        if isinstance(node, dict):
            n += 2 + sum(len(str(k)) + 4 for k in node)
            stack.extend(node.values())
        elif isinstance(node, list):
            n += 2 + len(node)
            stack.extend(node)
        elif isinstance(node, str):
            n += len(node) + 2
        else:
            n += 8
    return n


def _count(doc, limit=_MAX_NODES + 1):
    """Nodes in `doc`, counting shared subtrees each time they appear, stopping at `limit`."""
    n, stack = 0, [doc]
    while stack and n < limit:
        node = stack.pop()
        n += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return n


def apply_json_ops(doc, ops):
    """A mutated copy of the JSON document `doc` (may hold NaN / huge ints / deep nests)."""
    doc = _copy(doc)
    for kind, index, value_index, depth in ops:
        if _count(doc) > _MAX_NODES or not _depth_ok(doc) or _text_size(doc) > _MAX_TEXT:
            break   # already huge or deep: further ops would only cost time (and the test's memory)
        nodes = _nodes(doc)
        # a fresh copy of the wrong value: a later op may change it in place, and a shared list or dict would
        # carry that change into every later document (fuzzing found a list that came to contain itself)
        value = copy.deepcopy(WRONG_VALUES[value_index % len(WRONG_VALUES)])
        if not nodes:
            doc = value
            continue
        parent, key, ancestors = nodes[index % len(nodes)]
        if kind == "replace":
            parent[key] = value
        elif kind == "delete":
            del parent[key]
        elif kind == "add_key":
            if isinstance(parent, dict):
                parent[f"unknown_{index % 97}"] = value
            else:
                parent.append(value)
        elif kind == "deep":
            parent[key] = _deep(depth)
        elif kind == "ancestor" and ancestors:
            # a copy, never the ancestor itself: that would make a cyclic document no encoder finishes
            parent[key] = json.loads(json.dumps(ancestors[index % len(ancestors)]))
        elif kind == "wide":
            copies = min(depth, 100, _MAX_NODES // _count(parent[key]),
                         _MAX_TEXT // max(_text_size(parent[key]), 1))
            # real copies: a later op inside one of them must not change (and multiply) all of them
            parent[key] = [_copy(parent[key]) for _ in range(max(copies, 1))]
    return doc


def dump_json(doc):
    """JSON text of a mutated document: NaN / Infinity, huge ints and deep nests pass through."""
    if _depth_ok(doc, 900):
        return json.dumps(doc, allow_nan=True)
    return _dump_deep(doc)


def _dump_deep(doc):
    """json.dumps without recursion, for nests deeper than the recursion limit."""
    parts, stack = [], [("value", doc)]
    while stack:
        what, item = stack.pop()
        if what == "text":
            parts.append(item)
        elif isinstance(item, list):
            parts.append("[")
            stack.append(("text", "]"))
            for i, v in reversed(list(enumerate(item))):
                stack.append(("value", v))
                if i:
                    stack.append(("text", ","))
        elif isinstance(item, dict):
            parts.append("{")
            stack.append(("text", "}"))
            for i, (k, v) in reversed(list(enumerate(item.items()))):
                stack.append(("value", v))
                stack.append(("text", json.dumps(str(k)) + ":"))
                if i:
                    stack.append(("text", ","))
        else:
            parts.append(json.dumps(item, allow_nan=True))
    return "".join(parts)


# -- HDF5 ----------------------------------------------------------------------------------------------------
_H5_KINDS = ("attr_type", "dataset_dtype", "dataset_shape", "huge_chunked", "huge_compressed", "soft_link",
             "external_link", "hard_cycle", "external_storage", "virtual", "delete", "rename", "attr_json",
             "scalar_dataset", "empty_dataset", "null_dataspace", "soft_replace", "external_replace")
ATTR_VALUES = [np.int64(7), np.float64(1.5), np.array([1, 2, 3]), np.array([], dtype="S1"), b"\xff\xfe",
               "not json", np.array([b"a", b"b"]), np.array([[1, 2]]), np.bool_(True), np.array([1.5, 2.5]),
               "{" * 50_000, "[" * 200_000 + "]" * 200_000, json.dumps({"class_name": "os.system"}),
               np.int64(2), np.int64(1 << 40), np.int64(-1), "", np.array(["x" * 10], dtype=object)]
_DTYPES = ["f2", "i1", "u8", "c8", "?", "S4", "f8", ">f4", [("a", "f4"), ("b", "i4")]]

h5_op = st.tuples(st.sampled_from(_H5_KINDS), st.integers(0, 1 << 30), st.integers(0, 1 << 30),
                  st.sampled_from([0, 1, 2, 3, 1000, 1 << 20, 1 << 31, 1 << 40]))
h5_ops = st.lists(h5_op, min_size=1, max_size=3)


def _members(f):
    """Paths of every group and dataset (not the root), sorted; h5py's visit walks each object once."""
    names = []
    f.visit(names.append)
    return sorted(names)


def apply_h5_ops(path, ops, scratch_dir):
    """Apply HDF5-level ops to the file at `path` in place (an op h5py cannot write is skipped)."""
    import h5py

    with h5py.File(path, "r+") as f:
        for kind, a, b, size in ops:
            try:
                members = _members(f)
                datasets = [m for m in members if isinstance(f.get(m), h5py.Dataset)]
                groups = ["/"] + [m for m in members if isinstance(f.get(m), h5py.Group)]
                _apply_one(h5py, f, kind, a, b, size, members, datasets, groups, scratch_dir)
            except (ValueError, TypeError, KeyError, OSError, RuntimeError):
                continue


def _replace_dataset(f, name, **kwargs):
    attrs = dict(f[name].attrs.items())
    del f[name]
    ds = f.create_dataset(name, **kwargs)
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def _child_path(group, name):
    return f"{group.rstrip('/')}/{name}" if group != "/" else f"/{name}"


def _apply_one(h5py, f, kind, a, b, size, members, datasets, groups, scratch_dir):
    if kind in ("attr_type", "attr_json"):
        owners = [(o, sorted(f[o].attrs.keys())) for o in ["/"] + members]
        owners = [(o, keys) for o, keys in owners if keys]
        if not owners:
            return
        owner, keys = owners[a % len(owners)]
        key = keys[b % len(keys)]
        if kind == "attr_type":
            f[owner].attrs[key] = ATTR_VALUES[b % len(ATTR_VALUES)]
            return
        raw = f[owner].attrs[key]
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not isinstance(text, str):
            return
        try:
            doc = json.loads(text)
        except ValueError:
            return
        f[owner].attrs[key] = dump_json(apply_json_ops(doc, [("replace", a, b, 50)]))
        return
    if kind in ("soft_link", "external_link", "hard_cycle", "delete", "rename"):
        group = groups[a % len(groups)]
        if kind == "soft_link":
            target = (members or ["."])[b % max(len(members), 1)]
            f[_child_path(group, f"soft_{a % 13}")] = h5py.SoftLink("/" + target)
        elif kind == "external_link":
            other = os.path.join(scratch_dir, "other.h5")
            if not os.path.exists(other):
                with h5py.File(other, "w") as g:
                    g.create_dataset("secret", data=np.arange(4.0))
            f[_child_path(group, f"ext_{a % 13}")] = h5py.ExternalLink(other, "/secret")
        elif kind == "hard_cycle":
            f[_child_path(group, f"cycle_{a % 13}")] = f[groups[b % len(groups)]]
        elif kind == "delete" and members:
            del f[members[a % len(members)]]
        elif kind == "rename" and members:
            src = members[a % len(members)]
            f.move(src, src + "_renamed")
        return
    if not datasets:
        return
    name = datasets[a % len(datasets)]
    if kind == "soft_replace":   # the dataset a reader expects is a soft link: elsewhere, dangling, or a cycle
        targets = ["/" + m for m in members if m != name] + ["/does/not/exist", "/" + name, "/"]
        del f[name]
        f[name] = h5py.SoftLink(targets[b % len(targets)])
        return
    if kind == "external_replace":   # ... or an external link into another file
        other = os.path.join(scratch_dir, "other.h5")
        if not os.path.exists(other):
            with h5py.File(other, "w") as g:
                g.create_dataset("secret", data=np.arange(4.0))
        del f[name]
        f[name] = h5py.ExternalLink(other if b % 3 else "/etc/passwd", "/secret")
        return
    old = f[name]
    shape = old.shape if old.shape is not None else ()
    if int(np.prod(shape, dtype=np.float64)) > 1 << 20 and kind in ("dataset_dtype", "dataset_shape", "virtual",
                                                                    "external_storage"):
        return   # an earlier op made it huge: rewriting it here would allocate that much in the test itself
    if kind == "dataset_dtype":
        _replace_dataset(f, name, data=np.zeros(shape, dtype=np.dtype(_DTYPES[b % len(_DTYPES)])))
    elif kind == "dataset_shape":
        dt = old.dtype if old.dtype.kind in "biuf" else np.dtype("f4")
        _replace_dataset(f, name, data=np.zeros(tuple(shape) + (1 + size % 7,), dtype=dt))
    elif kind == "huge_chunked":   # a huge declared shape and no chunk written: it stores 0 bytes
        _replace_dataset(f, name, shape=(max(size, 1), 1 << 12), dtype="f8", chunks=(1, 1 << 12))
    elif kind == "huge_compressed":
        ds = _replace_dataset(f, name, shape=(max(size, 1), 1 << 10), dtype="f4", chunks=(1, 1 << 10),
                              compression="gzip")
        ds[0] = np.zeros(1 << 10, "f4")
    elif kind == "scalar_dataset":
        _replace_dataset(f, name, data=np.float32(3.0))
    elif kind == "empty_dataset":
        _replace_dataset(f, name, shape=(0,), dtype="f4")
    elif kind == "null_dataspace":
        _replace_dataset(f, name, data=h5py.Empty("f4"))
    elif kind == "external_storage":
        raw = os.path.join(scratch_dir, "raw.bin")
        if not os.path.exists(raw):
            with open(raw, "wb") as out:
                out.write(bytes(range(256)) * 16)
        count = int(np.prod(shape)) if shape else 1
        _replace_dataset(f, name, shape=shape, dtype="f4", external=[(raw, 0, max(count * 4, 1))])
    elif kind == "virtual":
        other = os.path.join(scratch_dir, "vsource.h5")
        if not os.path.exists(other):
            with h5py.File(other, "w") as g:
                g.create_dataset("data", data=np.arange(16.0))
        n = max(1, int(np.prod(shape) if shape else 1) % 17)
        layout = h5py.VirtualLayout(shape=(n,), dtype="f8")
        layout[:] = h5py.VirtualSource(other, "data", shape=(16,))[:n] if n <= 16 else 0
        del f[name]
        f.create_virtual_dataset(name, layout)
