"""Learning-curve plots (needs the [plot] extra: matplotlib)."""
import os

from ..errors import InvalidArgumentError, MissingDependencyError


def plot_curves(history, path, title=None):
    """Write a PNG of learning curves.

    Args:
        history: a Keras History, or a dict {curve name: [values per step or epoch]}.
        path: the PNG file to write (its folder is created).
    Returns:
        The path written.
    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    curves = getattr(history, "history", history)
    if not isinstance(curves, dict) or not curves:
        raise InvalidArgumentError("plot_curves needs a History or a non-empty dict of curves")
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("matplotlib", "plot", "plot_curves") from None
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        for name, values in curves.items():
            values = [float(v) for v in values]
            ax.plot(range(1, len(values) + 1), values, label=name)
        ax.set_xlabel("step" if max(len(v) for v in curves.values()) > 100 else "epoch")
        ax.legend()
        if title:
            ax.set_title(title)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    return path
