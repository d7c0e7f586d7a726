"""The `kestimator` command: train, evaluate, predict, export and inspect from a YAML config.

    kestimator train configs/mlp_digits.yaml --set fit.epochs=2 --output runs/try1
    kestimator inspect runs/mlp_digits/model.h5
"""
import argparse
import sys

from ..errors import KestimatorError

COMMANDS = {
    "train": "train the model or estimator a config describes (resumes an interrupted run)",
    "evaluate": "evaluate the trained model of a config on its eval (or validation) data",
    "predict": "write predictions of the trained model for the config's test (or eval) data",
    "export": "export the trained model of a config for serving",
    "inspect": "list the tensors of a checkpoint or .h5 file and summarize a saved model",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kestimator", description="Train, evaluate and serve kestimator models from YAML configs.")
    parser.add_argument("--version", action="version", version=f"kestimator {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == "inspect":
            p.add_argument("path", metavar="FILE", help="a checkpoint, .h5 model/weights file, model_dir or config")
            continue
        p.add_argument("config", metavar="CONFIG", help="the YAML config file")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                       help="override one config value (repeatable), e.g. --set fit.epochs=2")
        p.add_argument("--output", metavar="DIR", help="the run directory (default: the config's output.dir)")
        if name == "predict":
            p.add_argument("--out-file", metavar="FILE", help="where to write predictions (default: run dir)")
    return parser


def _version():
    from .. import __version__
    return __version__


def main(argv=None):
    """Entry point of the `kestimator` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        if args.command == "inspect":
            from .inspect_file import inspect_path
            inspect_path(args.path)
            return 0
        from . import runner
        return getattr(runner, args.command)(args.config, overrides=args.overrides, output=args.output,
                                             **({"out_file": args.out_file} if args.command == "predict" else {}))
    except KestimatorError as e:
        print(f"kestimator {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"kestimator {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
