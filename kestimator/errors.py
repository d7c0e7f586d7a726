"""Exceptions raised by kestimator.

Every error is a subclass of :class:`KestimatorError`, and its message names what was wrong and where:
the op and tensor, the layer, the file and the path inside it, or the YAML key and line.
"""


class KestimatorError(Exception):
    """Base class of every error kestimator raises on purpose."""


class InvalidArgumentError(KestimatorError, ValueError):
    """An argument, feed, shape or dtype is not acceptable."""


class NotFoundError(KestimatorError, LookupError):
    """A file, variable, tensor or name does not exist."""


class AlreadyExistsError(KestimatorError):
    """Something that must be unique exists already."""


class FailedPreconditionError(KestimatorError, RuntimeError):
    """The system is not in a state to run the operation (e.g. an uninitialized variable)."""


class OutOfRangeError(KestimatorError, StopIteration):
    """An iterator or input function has no more elements."""


class DataLossError(KestimatorError, IOError):
    """A file is truncated or corrupt."""


class UnsafeFileError(KestimatorError):
    """A file asks for something that would run code or reach outside itself; it was refused."""


class ConfigError(KestimatorError, ValueError):
    """A YAML config or a --set override is invalid."""


class ResourceExhaustedError(KestimatorError, MemoryError):
    """A memory limit or budget would be exceeded."""


class UnimplementedError(KestimatorError, NotImplementedError):
    """The operation is not supported."""


class InternalError(KestimatorError, RuntimeError):
    """An invariant of kestimator itself was broken: a bug."""


class UnavailableError(KestimatorError, RuntimeError):
    """A resource (device, peer process) cannot be reached."""


class AbortedError(KestimatorError, RuntimeError):
    """The operation was aborted (e.g. a distributed collective timed out)."""


class MissingDependencyError(KestimatorError, ImportError):
    """An optional extra is needed for this feature and is not installed."""

    def __init__(self, package, extra, feature):
        super().__init__(f"{feature} needs the '{package}' package: pip install 'kestimator[{extra}]'")
        self.package, self.extra, self.feature = package, extra, feature
