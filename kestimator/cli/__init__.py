"""The `kestimator` command and its YAML config layer."""


def main(argv=None):
    from .main import main as _main
    return _main(argv)
