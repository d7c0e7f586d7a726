"""Argument checks shared by the transformations."""
from ..errors import InvalidArgumentError
from .options import AUTOTUNE


def resolve_parallelism(value, what):
    """Normalise a ``num_parallel_calls``-style argument: None, AUTOTUNE or a positive int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{what} must be an int, AUTOTUNE or None, got {value!r}") from None
    if value == AUTOTUNE:
        return AUTOTUNE
    if value <= 0:
        raise InvalidArgumentError(f"{what} must be positive or AUTOTUNE (-1), got {value}")
    return value


def check_positive_int(value, what, allow=()):
    """``int(value)`` if it is a positive int (or one of ``allow``), else InvalidArgumentError."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be an int, got {value!r}")
    try:
        ivalue = int(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be an int, got {value!r}") from None
    if ivalue != value:
        raise InvalidArgumentError(f"{what} must be an int, got {value!r}")
    if ivalue <= 0 and ivalue not in allow:
        raise InvalidArgumentError(f"{what} must be positive, got {ivalue}")
    return ivalue
