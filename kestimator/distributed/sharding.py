"""Input sharding: which files / rows each rank reads, and a step count every rank agrees on.

Sharding is strided (rank r takes items r, r + size, r + 2*size, ...), as `Dataset.shard`: with a
per-rank batch of B / size, the ranks' i-th local batches together hold exactly the rows of the i-th
global batch of B, so a data-parallel run sees the same batches as one process would.

Every rank must run the same number of steps: a rank that stops early leaves the others waiting in
the next gradient allreduce. `equal_steps(local_count)` is the minimum over ranks.
"""
import hashlib
import json

import numpy as np

from ..errors import InvalidArgumentError
from . import collectives
from ._runtime import ensure_init


class InputContext:
    """What an input function needs to know to read its part of the data (tf.distribute.InputContext).

    Args:
        num_input_pipelines: how many input pipelines run (one per rank).
        input_pipeline_id: this pipeline's index, 0 <= id < num_input_pipelines.
        num_replicas_in_sync: replicas whose gradients are averaged each step.

    Raises:
        InvalidArgumentError: counts below 1 or an id out of range.
    """

    def __init__(self, num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=1):
        for nm, v in (("num_input_pipelines", num_input_pipelines), ("num_replicas_in_sync", num_replicas_in_sync)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise InvalidArgumentError(f"InputContext: {nm} must be an int >= 1, got {v!r}")
        if isinstance(input_pipeline_id, bool) or not isinstance(input_pipeline_id, (int, np.integer)) or \
                not 0 <= input_pipeline_id < num_input_pipelines:
            raise InvalidArgumentError(f"InputContext: input_pipeline_id must be in [0, {num_input_pipelines}), "
                                       f"got {input_pipeline_id!r}")
        self._n, self._id, self._replicas = int(num_input_pipelines), int(input_pipeline_id), int(num_replicas_in_sync)

    num_input_pipelines = property(lambda self: self._n)
    input_pipeline_id = property(lambda self: self._id)
    num_replicas_in_sync = property(lambda self: self._replicas)

    def get_per_replica_batch_size(self, global_batch_size):
        """global_batch_size / num_replicas_in_sync.

        Raises:
            InvalidArgumentError: the global batch does not divide evenly.
        """
        if global_batch_size % self._replicas:
            raise InvalidArgumentError(f"global batch size {global_batch_size} is not divisible by "
                                       f"num_replicas_in_sync {self._replicas}")
        return global_batch_size // self._replicas

    def __repr__(self):
        return (f"InputContext(num_input_pipelines={self._n}, input_pipeline_id={self._id}, "
                f"num_replicas_in_sync={self._replicas})")


def input_context():
    """The InputContext of this process: one pipeline and one replica per rank."""
    st = ensure_init()
    return InputContext(st.size, st.rank, st.size)


def _rank_size(rank, size):
    st = ensure_init()
    size = st.size if size is None else size
    rank = st.rank if rank is None else rank
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise InvalidArgumentError(f"size must be an int >= 1, got {size!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < size:
        raise InvalidArgumentError(f"rank must be in [0, {size}), got {rank!r}")
    return int(rank), int(size)


def shard_range(n, rank=None, size=None):
    """The indices of `range(n)` this rank reads: range(rank, n, size).

    Args:
        n: number of items (rows, records).
        rank / size: default this process's rank and the job size.

    Returns:
        A `range`.

    Raises:
        InvalidArgumentError: n negative or rank/size invalid.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidArgumentError(f"shard_range: n must be an int >= 0, got {n!r}")
    rank, size = _rank_size(rank, size)
    return range(rank, int(n), size)


def shard_files(files, rank=None, size=None, check=True):
    """This rank's share of a file list: files[rank::size].

    Args:
        files: the full list of files, identical on every rank (sort a glob result first).
        rank / size: default this process's rank and the job size.
        check: compare a digest of `files` across ranks (one small collective; every rank must call)
            and fail if they differ: ranks that see different lists would read overlapping shards.

    Returns:
        A list of this rank's files.

    Raises:
        InvalidArgumentError: fewer files than ranks (some rank would read nothing), or ranks passing
            different lists.
    """
    files = [str(f) for f in files]
    rank, size = _rank_size(rank, size)
    if len(files) < size:
        raise InvalidArgumentError(f"shard_files: {len(files)} files cannot be split over {size} ranks (each rank "
                                   "needs at least one); shard the records instead (shard_range / Dataset.shard)")
    st = ensure_init()
    if check and st.distributed:
        digest = hashlib.blake2b(json.dumps(files).encode(), digest_size=8).hexdigest()
        digests = collectives.allgather_object([digest, len(files), files[:1]], name="shard_files")
        if any(d[0] != digest for d in digests):
            other = next(r for r, d in enumerate(digests) if d[0] != digest)
            raise InvalidArgumentError(
                f"shard_files: ranks pass different file lists: rank {st.rank} has {len(files)} files starting "
                f"{files[:1]}, rank {other} has {digests[other][1]} starting {digests[other][2]}; build the list "
                "identically on every rank (e.g. sorted(glob(...)))")
    return files[rank::size]


def equal_steps(local_count):
    """The number of steps every rank can run: the minimum of `local_count` over ranks.

    Args:
        local_count: how many batches this rank has.

    Returns:
        An int, identical on every rank.

    Raises:
        InvalidArgumentError: local_count is not a non-negative int.
    """
    if isinstance(local_count, bool) or not isinstance(local_count, (int, np.integer)) or local_count < 0:
        raise InvalidArgumentError(f"equal_steps: local_count must be an int >= 0, got {local_count!r}")
    return int(collectives.allreduce(np.array(local_count, np.int64), op="min", name="equal_steps"))
