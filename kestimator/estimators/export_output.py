"""What an exported model's signatures return (tf.estimator.export.*Output)."""
from ..engine.graph import Tensor
from ..errors import InvalidArgumentError

__all__ = ["ExportOutput", "PredictOutput", "ClassificationOutput", "RegressionOutput"]


def _tensor(value, what):
    conv = getattr(value, "_as_tensor", None)
    if conv is not None:
        value = conv()
    if not isinstance(value, Tensor):
        raise InvalidArgumentError(f"{what} must be a Tensor, got {type(value).__name__}")
    return value


class ExportOutput:
    """Base class: `outputs` is the dict name -> tensor a signature returns."""

    @property
    def outputs(self):
        raise NotImplementedError


class PredictOutput(ExportOutput):
    """Any dict of tensors (or one tensor, named "output")."""

    def __init__(self, outputs):
        if not isinstance(outputs, dict):
            outputs = {"output": outputs}
        self._outputs = {str(k): _tensor(v, f"PredictOutput[{k!r}]") for k, v in outputs.items()}

    @property
    def outputs(self):
        return dict(self._outputs)


class ClassificationOutput(ExportOutput):
    """Class scores ([batch, n] float) and/or class names ([batch, n] strings)."""

    def __init__(self, scores=None, classes=None):
        if scores is None and classes is None:
            raise InvalidArgumentError("ClassificationOutput needs scores or classes")
        self.scores = None if scores is None else _tensor(scores, "ClassificationOutput scores")
        self.classes = None if classes is None else _tensor(classes, "ClassificationOutput classes")
        if self.classes is not None and not self.classes.dtype.is_string:
            raise InvalidArgumentError("ClassificationOutput classes must be a string tensor")

    @property
    def outputs(self):
        out = {}
        if self.scores is not None:
            out["scores"] = self.scores
        if self.classes is not None:
            out["classes"] = self.classes
        return out


class RegressionOutput(ExportOutput):
    """One float tensor of predicted values."""

    def __init__(self, value):
        self.value = _tensor(value, "RegressionOutput value")
        if not self.value.dtype.is_floating:
            raise InvalidArgumentError("RegressionOutput value must be a float tensor")

    @property
    def outputs(self):
        return {"outputs": self.value}
