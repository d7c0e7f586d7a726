"""The Estimator's checkpoints in a model_dir: numbered HDF5 files plus a checksummed JSON index.

Layout of a model_dir::

    model.ckpt-<step>.h5     one checkpoint: every global variable (weights, optimizer slots, global_step)
                             as tensors, and JSON metadata (global step, RNG streams, input position)
    checkpoint_index.json    {"format": "kestimator.estimator_checkpoints/<N>", "kestimator_version",
                             "checkpoints": [{"file", "step", "sha256", "time", "preserved"}, ...]}
                             oldest first; replaced atomically. A newer format N than this kestimator
                             reads is refused (`_formats.check_version`); an index without
                             "kestimator_version" (written before it was recorded) loads as before.

Why this survives a kill at any instant: a checkpoint file is written to a temporary file, fsynced and
renamed (`engine.checkpoint.save_tensors`); only then is the index rewritten the same way; only after that
are files beyond `keep_checkpoint_max` deleted. A kill leaves at worst a temporary file (removed on the next
start), a finished checkpoint the index does not list yet (adopted on the next start: its rename proves it
was complete), or a deleted file still listed (dropped from the list). Loading checks each file's SHA-256
against the index and falls back, with a warning naming the file, to the next newest good checkpoint.

Tensor names: a variable "dense/kernel" and its slot "dense/kernel/accumulator" cannot both be HDF5 paths
(one would be a dataset and a group), so names are stored with "%" as "%25" and "/" as "%2F".
"""
import json
import os
import re
import tempfile
import time
import warnings

from .. import _formats
from ..errors import DataLossError, InvalidArgumentError, NotFoundError, UnsafeFileError

__all__ = ["CheckpointManager", "list_checkpoints", "latest_checkpoint", "encode_name", "decode_name"]

INDEX_NAME = "checkpoint_index.json"
PREFIX = "model.ckpt"
_FORMAT_PREFIX = "kestimator.estimator_checkpoints"
_FORMAT = f"{_FORMAT_PREFIX}/{_formats.ESTIMATOR_INDEX_FORMAT}"
_FILE_RE = re.compile(re.escape(PREFIX) + r"-(\d+)\.h5$")
_TMP_RE = re.compile(r"^\.(" + re.escape(PREFIX) + r"-\d+\.h5|" + re.escape(INDEX_NAME) + r")\..*\.tmp$")


def encode_name(name):
    """A variable name as a flat HDF5 dataset name ('/' -> '%2F', '%' -> '%25')."""
    return name.replace("%", "%25").replace("/", "%2F")


def decode_name(name):
    return name.replace("%2F", "/").replace("%25", "%")


def _ckpt_io():
    from ..engine import checkpoint
    return checkpoint


def _fsync_dir(folder):
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path, obj):
    from ..io.write_errors import reraise_write_error   # disk full / read-only -> a ks.errors error
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as err:
        reraise_write_error(err, path, "checkpoint index")
        raise
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        reraise_write_error(err, path, "checkpoint index")
        raise
    _fsync_dir(folder)


class CheckpointManager:
    """Writes, lists, prunes and loads the checkpoints of one model_dir.

    Args:
        model_dir: the folder (created when missing).
        keep_checkpoint_max: how many of the newest checkpoints to keep (None or 0: all).
        keep_checkpoint_every_n_hours: also keep (never delete) one checkpoint per this many hours.
    """

    def __init__(self, model_dir, keep_checkpoint_max=5, keep_checkpoint_every_n_hours=10000):
        self.model_dir = os.fspath(model_dir)
        self.keep_max = keep_checkpoint_max or None
        self.keep_every_secs = (keep_checkpoint_every_n_hours or 0) * 3600.0 or None
        self.index_path = os.path.join(self.model_dir, INDEX_NAME)

    # -- the index ----------------------------------------------------------------------------------------
    def _read_index(self):
        """Index entries (oldest first), or [] when there is no index. A corrupt index is rebuilt from the
        files present, with a warning (their checksums are then taken from the files as they are)."""
        self._reference_time = None
        if not os.path.exists(self.index_path):
            return []
        try:
            with open(self.index_path, "r") as f:
                data = json.load(f)
            self._check_index_version(data)
            entries = data["checkpoints"]
            if not isinstance(entries, list):
                raise ValueError("unknown format")
            out = []
            for e in entries:
                if not (isinstance(e, dict) and isinstance(e.get("file"), str) and _FILE_RE.fullmatch(e["file"])
                        and isinstance(e.get("step"), int) and isinstance(e.get("sha256"), str)):
                    raise ValueError(f"malformed entry {e!r}")
                out.append({"file": e["file"], "step": e["step"], "sha256": e["sha256"],
                            "time": float(e.get("time", 0.0)), "preserved": bool(e.get("preserved", False))})
            ref = data.get("reference_time")
            self._reference_time = float(ref) if isinstance(ref, (int, float)) else None
            return out
        except (OSError, ValueError, KeyError, TypeError, RecursionError, OverflowError) as err:
            if _formats.is_newer_format(err):
                raise
            warnings.warn(f"checkpoint index {self.index_path} is unreadable ({err}); rebuilding it from the "
                          "checkpoint files in the folder", stacklevel=3)
            return []

    def _check_index_version(self, data):
        """Refuse an index a newer kestimator wrote (InvalidArgumentError, outside the rebuild-on-corruption
        path: rebuilding would drop what the newer index records); ValueError for an unknown format tag."""
        version = _formats.tagged_version(data.get("format") if isinstance(data, dict) else None, _FORMAT_PREFIX)
        if version is None:
            raise ValueError("unknown format")
        if version > _formats.ESTIMATOR_INDEX_FORMAT:
            _formats.check_version(version, _formats.ESTIMATOR_INDEX_FORMAT, self.index_path,
                                   "estimator checkpoint index", writer=data.get("kestimator_version"))

    def _files_on_disk(self):
        try:
            names = os.listdir(self.model_dir)
        except FileNotFoundError:
            return {}
        return {n: int(m.group(1)) for n in names for m in [_FILE_RE.fullmatch(n)] if m}

    def _recovered_entries(self):
        """Index entries reconciled with the folder: missing files dropped, unlisted finished files adopted."""
        entries = self._read_index()
        on_disk = self._files_on_disk()
        kept = []
        for e in entries:
            if e["file"] in on_disk:
                kept.append(e)
            else:
                warnings.warn(f"checkpoint {os.path.join(self.model_dir, e['file'])} is listed in {INDEX_NAME} "
                              "but missing; ignoring it", stacklevel=3)
        listed = {e["file"] for e in kept}
        orphans = sorted((step, name) for name, step in on_disk.items() if name not in listed)
        for step, name in orphans:
            # Renamed into place, so it was completely written: a kill came before the index update.
            path = os.path.join(self.model_dir, name)
            kept.append({"file": name, "step": step, "sha256": _ckpt_io().file_sha256(path),
                         "time": os.path.getmtime(path), "preserved": False})
        return kept, bool(orphans) or len(kept) != len(entries)

    def checkpoints(self):
        """Entries of the kept checkpoints, oldest first (dicts with file, path, step, sha256, time)."""
        entries, _ = self._recovered_entries()
        return [dict(e, path=os.path.join(self.model_dir, e["file"])) for e in entries]

    def remove_temporary_files(self):
        """Delete temporary files a killed writer left behind."""
        try:
            names = os.listdir(self.model_dir)
        except FileNotFoundError:
            return
        for n in names:
            if _TMP_RE.match(n):
                try:
                    os.unlink(os.path.join(self.model_dir, n))
                except OSError:
                    pass

    # -- writing --------------------------------------------------------------------------------------------
    def save(self, step, tensors, metadata=None):
        """Write the checkpoint of `step`, record it in the index, and delete what retention drops.

        Args:
            step: the global step (names the file model.ckpt-<step>.h5).
            tensors: dict variable name -> array.
            metadata: JSON-serializable dict stored in the file.

        Returns:
            The checkpoint's path.
        """
        os.makedirs(self.model_dir, exist_ok=True)
        self.remove_temporary_files()
        name = f"{PREFIX}-{int(step)}.h5"
        path = os.path.join(self.model_dir, name)
        meta = dict(metadata or {}, global_step=int(step), variable_names=sorted(tensors))
        digest = _ckpt_io().save_tensors(path, {encode_name(k): v for k, v in tensors.items()}, meta)
        entries, _ = self._recovered_entries()
        entries = [e for e in entries if e["file"] != name]
        entries.append({"file": name, "step": int(step), "sha256": digest, "time": time.time(),
                        "preserved": False})
        reference = self._reference_time if self._reference_time is not None else entries[0]["time"]
        entries, dropped, reference = self._retain(entries, reference)
        _write_json_atomic(self.index_path, {"format": _FORMAT, "kestimator_version": _formats.KESTIMATOR_VERSION,
                                             "checkpoints": entries, "reference_time": reference})
        for e in dropped:
            try:
                os.unlink(os.path.join(self.model_dir, e["file"]))
            except OSError:
                pass
        return path

    def _retain(self, entries, reference):
        """(kept, dropped, reference): the newest keep_max unpreserved checkpoints, plus, as TF's Saver does,
        one checkpoint per keep_every_n_hours: a checkpoint about to be dropped is preserved instead when it
        was written at least that long after `reference` (the last preserved checkpoint's time, or the
        model_dir's first checkpoint's), which then moves to it."""
        if self.keep_max is None:
            return entries, [], reference
        candidates = [e for e in entries if not e["preserved"]]
        excess = candidates[:max(0, len(candidates) - self.keep_max)]
        dropped = []
        for e in excess:
            if self.keep_every_secs is not None and e["time"] - reference >= self.keep_every_secs:
                e["preserved"] = True
                reference = e["time"]
                continue
            dropped.append(e)
        gone = {id(e) for e in dropped}
        return [e for e in entries if id(e) not in gone], dropped, reference

    # -- reading ----------------------------------------------------------------------------------------------
    def latest_path(self):
        """Path of the newest listed checkpoint, or None."""
        entries = self.checkpoints()
        return entries[-1]["path"] if entries else None

    def load(self, path=None, names=None):
        """Load a checkpoint: `path`, or the newest good one.

        Without `path`, candidates are tried newest first; one whose checksum, HDF5 structure or metadata
        is bad is reported with `warnings.warn` naming the file and skipped.

        Returns:
            (path, {variable name: array}, metadata), or None when the model_dir has no checkpoint.

        Raises:
            DataLossError: every listed checkpoint is corrupt (names them), or `path` is corrupt.
            NotFoundError: `path` does not exist.
        """
        if path is not None:
            sha = next((e["sha256"] for e in self.checkpoints() if os.path.abspath(e["path"]) ==
                        os.path.abspath(path)), None)
            return self._load_one(os.fspath(path), sha, names)
        entries = self.checkpoints()
        if not entries:
            return None
        bad = []
        for e in reversed(entries):
            try:
                return self._load_one(e["path"], e["sha256"], names)
            except (DataLossError, UnsafeFileError, InvalidArgumentError, NotFoundError, OSError) as err:
                if _formats.is_newer_format(err):
                    raise   # a newer kestimator's checkpoint is not corrupt: falling back would hide it
                bad.append(e["path"])
                warnings.warn(f"checkpoint {e['path']} is corrupt or truncated and was skipped ({err}); "
                              "falling back to the next newest checkpoint", stacklevel=3)
        raise DataLossError(f"every checkpoint in {self.model_dir} is corrupt: {bad}")

    def _load_one(self, path, sha256, names):
        io = _ckpt_io()
        meta = io.read_metadata(path) if sha256 is None else None
        enc = None if names is None else [encode_name(n) for n in names]
        raw = io.load_tensors(path, names=enc, sha256=sha256)
        if meta is None:
            meta = io.read_metadata(path)
        if not isinstance(meta.get("global_step"), int):
            raise DataLossError(f"checkpoint {path} has no global_step in its metadata")
        return path, {decode_name(k): v for k, v in raw.items()}, meta


def list_checkpoints(model_dir):
    """Paths of the checkpoints kept in `model_dir`, newest last ([] when there are none)."""
    return [e["path"] for e in CheckpointManager(model_dir).checkpoints()]


def latest_checkpoint(checkpoint_dir):
    """Path of the newest checkpoint in `checkpoint_dir`, or None (tf.train.latest_checkpoint)."""
    return CheckpointManager(checkpoint_dir).latest_path()

