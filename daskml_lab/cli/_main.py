"""Entry point of the ``daskml-lab`` console script: parse arguments, call the public API, print results."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from daskml_lab._version import __version__

#: Exceptions that describe a user error; they are printed as one line instead of a traceback.
_USER_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, ConnectionError, TimeoutError)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="daskml-lab",
        description="Machine learning on row-chunked Dask arrays.",
    )
    parser.add_argument("--version", action="version", version=f"daskml-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the package does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="fit a distributed model on a few million synthetic rows and print metrics",
        description="Start a local cluster (or use --scheduler), build a chunked dataset lazily, fit a "
        "distributed model on it and print metrics and the dashboard link.",
    )
    demo.add_argument("--rows", type=int, default=2_000_000, help="number of rows (default: 2,000,000)")
    demo.add_argument("--features", type=int, default=20, help="number of features (default: 20)")
    demo.add_argument("--chunk-rows", type=int, default=100_000, help="rows per block (default: 100,000)")
    demo.add_argument("--workers", type=int, default=2, help="local worker processes (default: 2)")
    demo.add_argument("--scheduler", metavar="ADDRESS", help="use a running dask scheduler instead")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    info = commands.add_parser("info", help="print versions, the cluster and its dashboard link")
    info.add_argument("--scheduler", metavar="ADDRESS", help="describe this scheduler instead of a local one")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Parameters
    ----------
    argv : sequence of str, default=None
        Arguments without the program name (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    int
        0 on success, 2 on a user error (printed as one line on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    try:
        if args.command == "demo":
            from daskml_lab.cli._demo import run_demo

            run_demo(
                n_rows=args.rows,
                n_features=args.features,
                chunk_rows=args.chunk_rows,
                n_workers=args.workers,
                scheduler=args.scheduler,
                seed=args.seed,
            )
        elif args.command == "info":
            from daskml_lab.cli._info import run_info

            run_info(scheduler=args.scheduler)
    except _USER_ERRORS as err:
        message = str(err).strip().strip('"') or type(err).__name__
        print(f"daskml-lab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"daskml-lab {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
