"""Entry point of the ``daskml-lab`` console script: parse arguments, call the public API, print results."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from daskml_lab import __version__
from daskml_lab.cli._config import COMMAND_OPTIONS, TLS_OPTIONS, add_options, resolve_options
from daskml_lab.data.formats import FORMATS, output_formats

#: Exceptions that describe a user error; they are printed as one line instead of a traceback. OSError covers
#: missing files, existing outputs and unreachable schedulers; ImportError a missing optional dependency.
_USER_ERRORS = (ValueError, TypeError, KeyError, OSError, TimeoutError, ImportError)

_EPILOGS = {
    "fit": """examples:
  daskml-lab fit diamonds.csv.gz --target price --test-size 0.2 --output diamonds.daskml
  daskml-lab fit adult.data.gz --target 14 --output adult.daskml   (no header line: columns by position)
  daskml-lab fit data.parquet --target label --output model.daskml
  daskml-lab fit magic.tsv.gz -t target -m random-forest --fusion forest-union -p n_estimators=50 -o forest.daskml
  daskml-lab fit data.csv -t price -m ridge -p alpha=0.1 --solver lbfgs --scheduler tcp://10.0.0.5:8786 -o m.daskml
  daskml-lab fit data.nc -t crop --config fit.toml""",
    "predict": """examples:
  daskml-lab predict model.daskml new.parquet --output predictions.parquet
  daskml-lab predict model.daskml new.csv --output predictions.csv --id-column customer_id
  daskml-lab predict model.daskml scene.nc --output crop.nc --proba""",
    "evaluate": """examples:
  daskml-lab evaluate model.daskml test.parquet
  daskml-lab evaluate model.daskml test.csv --target label --json""",
    "tune": """examples:
  daskml-lab tune magic.tsv.gz --target target --model logistic-regression --grid grid.toml --output best.daskml
  daskml-lab tune data.csv -t price -m random-forest --grid forest.toml --search random --n-iter 20 -o best.daskml
  daskml-lab tune data.parquet -t label -m svc --grid svc.toml --cv 3 --scoring roc_auc --checkpoint ckpt -o m.daskml

grid.toml maps parameter names of the model (as for fit's --param) to lists of values:
  C = [0.01, 0.1, 1.0, 10.0]
  max_iter = [300]""",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="daskml-lab",
        description="Machine learning on row-chunked Dask arrays.",
    )
    parser.add_argument("--version", action="version", version=f"daskml-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the package does")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    descriptions = {
        "fit": (
            "fit a model on a file and save it",
            f"Read DATA ({', '.join(f.description for f in FORMATS.values())}) lazily on a Dask cluster, fit a "
            "model on it where the data live, print a summary and save the model with daskml_lab.save. Options "
            "may come from a TOML/YAML --config file; the command line overrides it.",
        ),
        "predict": (
            "predict a file with a saved model and write the predictions",
            "Predict DATA with MODEL lazily; the workers write the predictions to "
            f"{', '.join(FORMATS[name].description for name in output_formats())} (xarray inputs keep their "
            "coordinates). The output appears only when complete.",
        ),
        "evaluate": (
            "print metrics of a saved model on labelled data",
            "Compute metrics of MODEL on DATA on the cluster from per-block statistics: accuracy, balanced "
            "accuracy, macro F1 and log loss for classifiers; R^2, MAE and RMSE for regressors.",
        ),
        "tune": (
            "search model parameters by cross-validation and save the best model",
            "Read DATA lazily on a Dask cluster, run a grid or randomized search of MODEL's parameters (from a "
            "TOML --grid file) by cross-validation, save the best model refitted on all rows with "
            "daskml_lab.save, and write the cross-validation results next to it as CSV and JSON.",
        ),
    }
    for name in ("fit", "predict", "evaluate", "tune"):
        summary, description = descriptions[name]
        sub = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=_EPILOGS[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_options(sub, COMMAND_OPTIONS[name])

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
    _add_tls_arguments(demo)

    info = commands.add_parser(
        "info",
        help="describe a saved model file, or print versions, the cluster and its dashboard link",
        description="With MODEL: describe the model file without creating the model (class, parameters, "
        "features, task, training data, held-out scores, the command that made it). Without: print the "
        "versions of the package and its dependencies, and describe the cluster.",
        epilog="examples:\n  daskml-lab info model.daskml\n  daskml-lab info --scheduler tcp://10.0.0.5:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("model", nargs="?", metavar="MODEL", help="a model file written by fit")
    info.add_argument("--json", action="store_true", help="with MODEL: print its whole description as JSON")
    info.add_argument("--key-file", metavar="FILE", help="with MODEL: key file that signed it (checked)")
    info.add_argument("--scheduler", metavar="ADDRESS", help="describe this scheduler instead of a local one")
    _add_tls_arguments(info)
    return parser


def _add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """The --tls-ca-file, --tls-cert and --tls-key options (as for fit, predict and evaluate)."""
    for option in TLS_OPTIONS:
        parser.add_argument(*option.flags, dest=option.key, metavar="FILE", help=option.help)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Parameters
    ----------
    argv : sequence of str, default=None
        Arguments without the program name (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    int
        0 on success, 2 on a user error (printed as one line on stderr), 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")
    command = args.command
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning(command)
        try:
            _run(command, args, verbose=verbose)
        except _USER_ERRORS as err:
            if verbose:
                logging.getLogger(__name__).exception("%s failed", command)
            print(f"daskml-lab {command}: error: {cli_spelling(_one_line(err))}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"daskml-lab {command}: interrupted", file=sys.stderr)
            return 130
        except (
            Exception
        ) as err:  # a bug, or an error of a library: still one line, with the way to learn more
            if verbose:
                logging.getLogger(__name__).exception("%s failed", command)
            hint = "" if verbose else " (run with --verbose for the traceback)"
            print(
                f"daskml-lab {command}: internal error: {type(err).__name__}: {_one_line(err)}{hint}",
                file=sys.stderr,
            )
            return 1
    return 0


def _run(command: str, args: argparse.Namespace, *, verbose: bool) -> None:
    if command == "info" and args.model:
        from daskml_lab.cli._info import run_model_info

        run_model_info(args.model, key_file=args.key_file, as_json=args.json)
        return
    if command in ("demo", "info"):
        from daskml_lab.cli._data import tls_security

        security = tls_security(
            args.scheduler, ca_file=args.tls_ca_file, cert=args.tls_cert, key=args.tls_key
        )
    if command == "demo":
        from daskml_lab.cli._demo import run_demo

        run_demo(
            n_rows=args.rows,
            n_features=args.features,
            chunk_rows=args.chunk_rows,
            n_workers=args.workers,
            scheduler=args.scheduler,
            seed=args.seed,
            security=security,
        )
        return
    if command == "info":
        from daskml_lab.cli._info import run_info

        run_info(scheduler=args.scheduler, security=security)
        return
    given = {k: v for k, v in vars(args).items() if k not in ("command", "verbose")}
    settings = resolve_options(command, given)
    if command == "fit":
        from daskml_lab.cli._fit import run_fit

        run_fit(settings, verbose=verbose)
    elif command == "tune":
        from daskml_lab.cli._tune import run_tune

        run_tune(settings, verbose=verbose)
    elif command == "predict":
        from daskml_lab.cli._predict import run_predict

        run_predict(settings, verbose=verbose)
    else:
        from daskml_lab.cli._evaluate import run_evaluate

        run_evaluate(settings, verbose=verbose)


#: Python spellings in the messages of the library, and their command-line spellings.
_CLI_SPELLINGS = (
    (re.compile(r"\bcategorical='encode'"), "--categorical encode"),
    (re.compile(r"categorical=\{[^}]*\}"), "--categorical encode"),
    (re.compile(r"\bfeatures=\[\.\.\.\]"), "--features"),
    (re.compile(r"\bread\(path, format=\.\.\.\)"), "--input-format"),
    (re.compile(r"\bformat=\.\.\."), "--input-format"),
    (re.compile(r"name the format \("), "name it with --output-format ("),
    (re.compile(r"\btarget='([^']*)'"), r"--target \1"),
    (re.compile(r"\bn_features="), "--read-option n_features="),
)


def cli_spelling(text: str) -> str:
    """A library message with its Python spellings (``categorical='encode'``) replaced by options.

    Examples
    --------
    >>> cli_spelling("Pass categorical='encode' to encode them, or leave them out with features=[...].")
    'Pass --categorical encode to encode them, or leave them out with --features.'
    """
    for pattern, replacement in _CLI_SPELLINGS:
        text = pattern.sub(replacement, text)
    return text


def _one_line(err: BaseException) -> str:
    """The message of an exception on one line (KeyError's quotes removed)."""
    text = str(err).strip()
    if isinstance(err, KeyError) and len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return " ".join(text.split()) or type(err).__name__


def _one_line_warning(command: str) -> Any:
    def show(
        message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
    ):
        print(
            f"daskml-lab {command}: warning: {category.__name__}: {_one_line(Warning(message))}",
            file=sys.stderr,
        )

    return show


if __name__ == "__main__":
    sys.exit(main())
