"""`python -m kestimator ...` is the `kestimator` command."""
import sys

from .cli.main import main

sys.exit(main())
