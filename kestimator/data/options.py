"""Pipeline-wide options (``Dataset.with_options``) and the constants tf.data users know.

Options set anywhere in a pipeline apply to the whole pipeline when it is iterated; where two
``with_options`` calls set the same option, the one further downstream wins (as in tf.data).
"""
from ..errors import InvalidArgumentError

#: Let kestimator choose a parallelism or buffer size (``num_parallel_calls=AUTOTUNE``).
AUTOTUNE = -1
#: ``cardinality()`` of an infinite dataset.
INFINITE_CARDINALITY = -1
#: ``cardinality()`` when the number of elements cannot be known without iterating.
UNKNOWN_CARDINALITY = -2

_START_METHODS = ("fork", "spawn", "forkserver")


class _OptionGroup:
    """Attributes with defaults; remembers which ones were set explicitly (for merging)."""

    _defaults = {}
    _checks = {}

    def __init__(self, **kwargs):
        object.__setattr__(self, "_values", {})
        for name, value in kwargs.items():
            setattr(self, name, value)

    def __getattr__(self, name):
        defaults = type(self)._defaults
        if name in defaults:
            value = self._values.get(name, defaults[name])
            if isinstance(value, type) and issubclass(value, _OptionGroup):
                value = value()
                self._values[name] = value
            return value
        raise AttributeError(f"{type(self).__name__} has no option {name!r}")

    def __setattr__(self, name, value):
        defaults = type(self)._defaults
        if name not in defaults:
            raise InvalidArgumentError(
                f"{type(self).__name__} has no option {name!r}; known options: {', '.join(sorted(defaults))}")
        check = type(self)._checks.get(name)
        if check is not None:
            check(name, value)
        self._values[name] = value

    def _merge_from(self, other):
        for name, value in other._values.items():
            if isinstance(value, _OptionGroup):
                getattr(self, name)._merge_from(value)
            else:
                self._values[name] = value

    def __eq__(self, other):
        return type(self) is type(other) and self._as_dict() == other._as_dict()

    def _as_dict(self):
        return {name: (getattr(self, name)._as_dict() if isinstance(getattr(self, name), _OptionGroup)
                       else getattr(self, name)) for name in type(self)._defaults}

    def __repr__(self):
        return f"{type(self).__name__}({self._as_dict()})"


def _check_optional_positive_int(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidArgumentError(f"option {name} must be a positive int or None, got {value!r}")


def _check_optional_bool(name, value):
    if value is not None and not isinstance(value, bool):
        raise InvalidArgumentError(f"option {name} must be True, False or None, got {value!r}")


def _check_start_method(name, value):
    if value is not None and value not in _START_METHODS:
        raise InvalidArgumentError(f"option {name} must be one of {_START_METHODS} or None, got {value!r}")


class ThreadingOptions(_OptionGroup):
    """Thread settings.

    Attributes:
        private_threadpool_size: the most worker threads a parallel ``map`` of this pipeline starts
            (default: the number of CPUs for AUTOTUNE, else the ``num_parallel_calls`` asked for).
    """

    _defaults = {"private_threadpool_size": None, "max_intra_op_parallelism": None}
    _checks = {"private_threadpool_size": _check_optional_positive_int,
               "max_intra_op_parallelism": _check_optional_positive_int}


class Options(_OptionGroup):
    """Options for a whole input pipeline.

    Attributes:
        deterministic: default for ``map`` / ``interleave`` calls that leave ``deterministic=None``:
            True (default) keeps the input order; False lets finished work overtake slower work.
        memory_budget_bytes: a cap on the bytes a pipeline holds in its buffers (None: no cap).
            Buffers that must hold their elements to be correct — a ``shuffle`` buffer and an in-memory
            ``cache`` — raise :class:`~kestimator.errors.ResourceExhaustedError` naming the
            transformation when they alone would pass the cap. Read-ahead buffers — ``prefetch``, the
            work in flight of a parallel ``map`` and a parallel ``interleave``'s per-input buffers —
            stop reading ahead while the pipeline's total is at the cap (each keeps at least one
            element, so the pipeline always moves).
        use_processes: run parallel ``map`` functions in worker processes instead of threads (for
            functions that hold the GIL); a ``map`` call's own ``use_processes`` argument wins.
        process_start_method: "fork", "spawn" or "forkserver" for those processes (default: fork where
            the platform has it, which lets lambdas and closures run in workers; with spawn and
            forkserver the function must be picklable, e.g. defined at module level).
        threading: :class:`ThreadingOptions`.
        experimental_deterministic: alias of ``deterministic`` (the TF 1.x name).
    """

    _defaults = {"deterministic": None, "memory_budget_bytes": None, "use_processes": None,
                 "process_start_method": None, "threading": ThreadingOptions}
    _checks = {"deterministic": _check_optional_bool, "memory_budget_bytes": _check_optional_positive_int,
               "use_processes": _check_optional_bool, "process_start_method": _check_start_method}

    def __getattr__(self, name):
        if name == "experimental_deterministic":
            return self.deterministic
        return super().__getattr__(name)

    def __setattr__(self, name, value):
        if name == "experimental_deterministic":
            name = "deterministic"
        super().__setattr__(name, value)

    def merge(self, other):
        """A new Options: this one's explicit settings overridden by ``other``'s explicit settings."""
        merged = Options()
        merged._merge_from(self)
        merged._merge_from(other)
        return merged

    @property
    def resolved_deterministic(self):
        """The effective ``deterministic`` flag (True when unset)."""
        return True if self.deterministic is None else self.deterministic
