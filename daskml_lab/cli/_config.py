"""Options of ``fit``, ``predict`` and ``evaluate``: their declaration, config files and merging.

Every option has a *key* (``n_shards``), which is its name in a config file, and flags (``--n-shards``).
Values are taken, in order of precedence, from the command line, the config file's table of the subcommand
(``[fit]``), the config file's top level, and the built-in defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from daskml_lab.data.formats import FORMATS, output_formats

__all__ = [
    "COMMAND_OPTIONS",
    "KEY_FILE_VARIABLE",
    "MAX_CLASSES",
    "RENAMED_KEYS",
    "TLS_OPTIONS",
    "Option",
    "add_options",
    "parse_value",
    "read_config",
    "resolve_options",
]


@dataclass(frozen=True)
class Option:
    """One option of a subcommand.

    Attributes
    ----------
    key : str
        Name in the parsed settings and in config files.
    flags : tuple of str
        Command-line flags; empty for a positional argument.
    kind : {"str", "path", "int", "float", "bool", "kv", "list"}
        Value type; ``"kv"`` collects ``KEY=VALUE`` pairs into a dict (a table in config files), ``"list"``
        collects repeated values.
    help : str
        Help text.
    default : object, default=None
        Built-in default.
    choices : tuple of str, default=None
        Allowed values.
    required : bool, default=False
        Whether a value must come from the command line or the config file.
    deprecated_flags : tuple of str, default=()
        Former spellings, still accepted with a warning naming the new one (hidden from the help).
    """

    key: str
    flags: tuple[str, ...]
    kind: str
    help: str
    default: Any = None
    choices: tuple[str, ...] | None = None
    required: bool = False
    deprecated_flags: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        """How the option is named in messages."""
        return self.flags[0] if self.flags else self.key.upper()


#: Environment variable naming the key file when ``--key-file`` is not given (``key_file`` in a config file).
KEY_FILE_VARIABLE = "DASKML_LAB_KEY_FILE"

#: TLS options of a ``tls://`` --scheduler, named as those of ``dask scheduler`` and ``dask worker``. Without
#: them, Dask's configuration (``distributed.comm.tls.*``, or ``DASK_DISTRIBUTED__COMM__TLS__...``) applies.
TLS_OPTIONS = (
    Option(
        "tls_ca_file",
        ("--tls-ca-file",),
        "path",
        "CA certificate(s) file that signed the scheduler's certificate (PEM), for a tls:// --scheduler",
    ),
    Option(
        "tls_cert",
        ("--tls-cert",),
        "path",
        "client certificate file (PEM), signed by that CA; may also hold the key",
    ),
    Option("tls_key", ("--tls-key",), "path", "private key file of --tls-cert (PEM)"),
)


#: Config keys renamed, and their new names (the old ones are still read, with a warning).
RENAMED_KEYS = {"data_format": "input_format"}

#: Above this many distinct target values, classification is refused unless --max-classes allows more; an
#: integer target with more distinct values than this is inferred to be a regression target.
MAX_CLASSES = 100


def _common(*, model_input: bool, output_format: bool = False) -> list[Option]:
    options = [
        Option(
            "input_format",
            ("--input-format",),
            "str",
            f"format of DATA when its extension does not tell ({', '.join(FORMATS)}); predict and evaluate "
            "default to the format the model was trained on",
            choices=tuple(FORMATS),
            # fit took --format for its input, predict for its output: one name each now
            deprecated_flags=("--data-format",)
            if output_format or model_input
            else ("--data-format", "--format"),
        ),
        Option(
            "read_options",
            ("--read-option",),
            "kv",
            "KEY=VALUE passed to the reader of daskml_lab.data.read (e.g. sep=';', dataset=X); repeatable",
            default={},
        ),
        Option(
            "scheduler",
            ("--scheduler",),
            "str",
            "address of a running dask scheduler (default: start a local cluster)",
        ),
        Option(
            "workers", ("--workers",), "int", "worker processes of the local cluster (default: 2)", default=2
        ),
        Option(
            "timeout_s",
            ("--timeout",),
            "float",
            "seconds to wait for the scheduler (default: 10)",
            default=10.0,
        ),
        *TLS_OPTIONS,
        Option(
            "key_file",
            ("--key-file",),
            "path",
            (
                "file holding the key that signed MODEL (HMAC-SHA256): a signed model is refused without it"
                if model_input
                else "file holding a key to sign the model file with (HMAC-SHA256); predict and evaluate then "
                "need it"
            )
            + f" (default: the file named by ${KEY_FILE_VARIABLE})",
        ),
    ]
    if model_input:
        options.append(
            Option(
                "trust",
                ("--trust",),
                "list",
                "a type to trust when loading MODEL (see daskml_lab.load); repeatable",
                default=[],
            )
        )
    return options


#: The options of each subcommand that reads configuration.
COMMAND_OPTIONS: dict[str, list[Option]] = {
    "fit": [
        Option(
            "data",
            (),
            "path",
            "training data: a file, directory or glob of any format of daskml_lab.data.read",
            required=True,
        ),
        Option(
            "target",
            ("--target", "-t"),
            "str",
            "target column, variable or array; a number is a column position in a CSV without a header line "
            "(svmlight files hold their labels: no --target)",
        ),
        Option(
            "output", ("--output", "-o"), "path", "where to save the model (daskml_lab.save)", required=True
        ),
        Option(
            "model",
            ("--model", "-m"),
            "str",
            "model name (default: hist-gradient-boosting, one per shuffled shard; logistic-regression or "
            "ridge for sparse data (svmlight) or with --solver; random-forest with --fusion or shard options)",
        ),
        Option(
            "fusion",
            ("--fusion",),
            "str",
            "fusion of the shard models (scikit-learn models only; default: soft-voting)",
        ),
        Option("solver", ("--solver",), "str", "solver of a linear model (default: auto)"),
        Option("n_shards", ("--n-shards",), "int", "number of shards (default: one per row block)"),
        Option(
            "sharding",
            ("--sharding",),
            "str",
            "how rows are assigned to shards (contiguous, shuffle, hash, stratified; default for shard "
            "ensembles of the command line: shuffle, so that files sorted by the target give similar shards)",
        ),
        Option(
            "validation_fraction",
            ("--validation-fraction",),
            "float",
            "share of each shard held out for validation scores and stacking",
        ),
        Option(
            "random_state",
            ("--random-state", "--seed"),
            "int",
            "random seed of the shards, the model and the --test-size split (default: 0)",
        ),
        Option(
            "checkpoint",
            ("--checkpoint",),
            "path",
            "directory where the fit saves its progress; the same command run again resumes an interrupted "
            "fit (linear models and shard ensembles)",
        ),
        Option(
            "task",
            ("--task",),
            "str",
            "classification or regression (default: auto, from the target's values: text, or at most "
            "--max-classes distinct whole numbers, is classification; other numbers are regression)",
            default="auto",
            choices=("auto", "classification", "regression"),
        ),
        Option(
            "max_classes",
            ("--max-classes",),
            "int",
            f"most classes a classification may have (default: {MAX_CLASSES}); raise it to fit more",
            default=MAX_CLASSES,
        ),
        Option(
            "test_size",
            ("--test-size", "--holdout"),
            "float",
            "hold out this share of the rows (0 < f < 1), or this many rows, and print the model's scores on "
            "them (default: train on all rows)",
        ),
        Option(
            "params",
            ("--param", "-p"),
            "kv",
            "KEY=VALUE parameter of the model (of the per-shard model for ensembles); repeatable",
            default={},
        ),
        Option(
            "fusion_params",
            ("--fusion-param",),
            "kv",
            "KEY=VALUE parameter of the fusion (e.g. weights=validation); repeatable",
            default={},
        ),
        Option(
            "solver_options",
            ("--solver-option",),
            "kv",
            "KEY=VALUE option of the solver; repeatable",
            default={},
        ),
        Option(
            "features",
            ("--features",),
            "list",
            "feature columns or variables, comma-separated (default: all but the target); repeatable",
            default=[],
        ),
        Option(
            "categorical",
            ("--categorical",),
            "str",
            "non-numeric columns of a table: encode (ordinal codes, reused by predict and evaluate; the "
            "default for tables) or error",
            choices=("error", "encode"),
        ),
        Option(
            "hash_features",
            ("--hash-features",),
            "int",
            "hash the text columns (and the --cross pairs) into this many sparse features with the hashing "
            "trick, inside the saved model, instead of one-hot codes (linear models; e.g. 1048576 = 2**20)",
        ),
        Option(
            "hash_columns",
            ("--hash-columns",),
            "list",
            "columns hashed as categories whatever their type (whole-number codes, ids), with the text "
            "columns (with --hash-features); comma-separated; repeatable",
            default=[],
        ),
        Option(
            "crosses",
            ("--cross",),
            "list",
            "two hashed columns (text or --hash-columns) hashed together as one feature, A,B (with "
            "--hash-features); repeatable",
            default=[],
        ),
        Option("overwrite", ("--overwrite",), "bool", "replace an existing model file", default=False),
        *_common(model_input=False),
    ],
    "predict": [
        Option("model", (), "path", "a model file written by fit (daskml_lab.save)", required=True),
        Option("data", (), "path", "data to predict, in any format of daskml_lab.data.read", required=True),
        Option("output", ("--output", "-o"), "path", "where to write the predictions", required=True),
        Option(
            "output_format",
            ("--output-format",),
            "str",
            f"{', '.join(output_formats())} (default: from the extension of --output)",
            choices=output_formats(),
            deprecated_flags=("--format",),
        ),
        Option(
            "id_column",
            ("--id-column",),
            "str",
            "column of DATA copied into the predictions next to each row's prediction (e.g. an identifier)",
        ),
        Option(
            "proba",
            ("--proba",),
            "bool",
            "also write class probabilities (classifiers with predict_proba)",
            default=False,
        ),
        Option("overwrite", ("--overwrite",), "bool", "replace an existing output", default=False),
        *_common(model_input=True, output_format=True),
    ],
    "evaluate": [
        Option("model", (), "path", "a model file written by fit (daskml_lab.save)", required=True),
        Option("data", (), "path", "labelled data, in any format of daskml_lab.data.read", required=True),
        Option(
            "target", ("--target", "-t"), "str", "target column (default: the one the model was trained on)"
        ),
        Option("json", ("--json",), "bool", "print the metrics as JSON", default=False),
        *_common(model_input=True),
    ],
}
_SHARED_WITH_FIT = ("target", "random_state", "task", "max_classes", "features", "categorical", "overwrite")
COMMAND_OPTIONS["tune"] = [
    COMMAND_OPTIONS["fit"][0],  # DATA
    *(option for option in COMMAND_OPTIONS["fit"] if option.key in _SHARED_WITH_FIT),
    Option("model", ("--model", "-m"), "str", "model name, as for fit", required=True),
    Option("grid", ("--grid",), "path", "TOML file: parameter names of the model = [values]", required=True),
    Option(
        "output", ("--output", "-o"), "path", "where to save the best model (daskml_lab.save)", required=True
    ),
    Option("cv", ("--cv",), "int", "number of folds (default: 5; stratified for classifiers)", default=5),
    Option("scoring", ("--scoring",), "str", "scikit-learn scorer name (default: the model's score)"),
    Option(
        "search",
        ("--search",),
        "str",
        "grid (every candidate) or random",
        default="grid",
        choices=("grid", "random"),
    ),
    Option("n_iter", ("--n-iter",), "int", "candidates drawn by --search random (default: 10)", default=10),
    Option("checkpoint", ("--checkpoint",), "path", "directory saving each finished fit; rerun to resume"),
    *_common(model_input=False),
]


# ---------------------------------------------------------------------------------------------------------
# argparse

_METAVARS = {
    "scheduler": "ADDRESS",
    "workers": "N",
    "timeout_s": "SECONDS",
    "target": "COLUMN",
    "output": "PATH",
    "model": "NAME",
    "fusion": "NAME",
    "solver": "NAME",
    "n_shards": "N",
    "sharding": "STRATEGY",
    "validation_fraction": "FRACTION",
    "random_state": "SEED",
    "checkpoint": "DIR",
    "features": "COLUMNS",
    "max_classes": "N",
    "test_size": "SIZE",
    "id_column": "COLUMN",
    "trust": "TYPE",
    "tls_ca_file": "FILE",
    "tls_cert": "FILE",
    "tls_key": "FILE",
    "key_file": "FILE",
    "grid": "FILE",
    "cv": "N",
    "scoring": "NAME",
    "n_iter": "N",
}


def parse_value(text: str) -> Any:
    """A ``--param`` value: JSON (numbers, true/false/null, lists, dicts, quoted strings), else the text.

    Examples
    --------
    >>> parse_value("10"), parse_value("1e-3"), parse_value("true"), parse_value("None"), parse_value("gini")
    (10, 0.001, True, None, 'gini')
    """
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        msg = f"expected KEY=VALUE, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return key.strip(), parse_value(value)


class _DeprecatedFlag(argparse.Action):
    """Store the value of a former spelling of an option, and say which spelling replaces it."""

    def __init__(self, *args: Any, new_flag: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new_flag = new_flag

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        # Parsing happens before the command's warnings are set up: print the one line directly.
        print(
            f"{parser.prog}: warning: {option_string} is deprecated and will be removed in 0.3; use "
            f"{self.new_flag}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """Declare ``options`` on ``parser``; absent options stay absent from the namespace (no defaults)."""
    for option in options:
        common: dict[str, Any] = {"default": argparse.SUPPRESS, "help": option.help}
        if not option.flags:
            parser.add_argument(option.key, nargs="?", metavar=option.key.upper(), **common)
            continue
        if option.kind == "bool":
            parser.add_argument(*option.flags, dest=option.key, action="store_true", **common)
        elif option.kind == "kv":
            parser.add_argument(
                *option.flags,
                dest=option.key,
                action="append",
                type=_key_value,
                metavar="KEY=VALUE",
                **common,
            )
        elif option.kind == "list":
            metavar = _METAVARS.get(option.key, "NAME")
            parser.add_argument(*option.flags, dest=option.key, action="append", metavar=metavar, **common)
        else:
            converter = {"int": int, "float": float}.get(option.kind, str)
            metavar = _METAVARS.get(option.key) if option.choices is None else None
            parser.add_argument(
                *option.flags,
                dest=option.key,
                type=converter,
                choices=option.choices,
                metavar=metavar,
                **common,
            )
            if option.deprecated_flags:
                parser.add_argument(
                    *option.deprecated_flags,
                    dest=option.key,
                    type=converter,
                    choices=option.choices,
                    action=_DeprecatedFlag,
                    new_flag=option.flags[0],
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML or YAML file of option defaults (keys as in the long options, with underscores)",
    )


# ---------------------------------------------------------------------------------------------------------
# config files


def read_config(path: str) -> dict[str, Any]:
    """The mapping of a TOML (``.toml``) or YAML (``.yaml``, ``.yml``) config file.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it cannot be parsed, is not a mapping, or has another extension.
    ImportError
        For a YAML file when PyYAML is not installed.
    """
    if not os.path.isfile(path):
        msg = f"No such config file: {path!r}."
        raise FileNotFoundError(msg)
    lowered = path.lower()
    if lowered.endswith(".toml"):
        import tomllib

        try:
            with open(path, "rb") as stream:
                content: Any = tomllib.load(stream)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            msg = f"Could not parse the config file {path!r} as TOML: {err}."
            raise ValueError(msg) from err
    elif lowered.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as err:
            msg = f"Reading the YAML config file {path!r} needs PyYAML: pip install pyyaml (or use TOML)."
            raise ImportError(msg) from err
        try:
            with open(path, encoding="utf-8") as stream:
                content = yaml.safe_load(stream)
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            msg = f"Could not parse the config file {path!r} as YAML: {' '.join(str(err).split())}."
            raise ValueError(msg) from err
        content = {} if content is None else content
    else:
        msg = f"The config file {path!r} must be TOML (.toml) or YAML (.yaml, .yml)."
        raise ValueError(msg)
    if not isinstance(content, dict):
        msg = f"The config file {path!r} must hold a mapping of options; got {type(content).__name__}."
        raise ValueError(msg)
    return content


def resolve_options(command: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the command line (``given``), the config file it names and the defaults; check the result.

    Parameters
    ----------
    command : str
        ``"fit"``, ``"predict"`` or ``"evaluate"``.
    given : dict
        The parsed command line (only the options that were given, plus ``config``).

    Returns
    -------
    dict
        Every option of the command, by key.

    Raises
    ------
    ValueError
        For an unknown or ill-typed config key, or a required option given nowhere.
    """
    options = {option.key: option for option in COMMAND_OPTIONS[command]}
    given = dict(given)
    path = given.pop("config", None)
    from_file: dict[str, Any] = {}
    if path is not None:
        content = read_config(path)
        all_keys = {o.key for opts in COMMAND_OPTIONS.values() for o in opts}
        for key, value in content.items():
            if key in COMMAND_OPTIONS:
                continue
            name = _renamed(str(key).replace("-", "_"), path)
            if name not in all_keys:
                msg = _unknown_key(path, key, sorted(all_keys | set(COMMAND_OPTIONS)))
                raise ValueError(msg)
            if name in options:
                from_file[name] = _coerce(options[name], value, path)
        section = content.get(command, {})
        if not isinstance(section, dict):
            msg = f"In the config file {path!r}, [{command}] must be a table of options."
            raise ValueError(msg)
        for key, value in section.items():
            name = _renamed(str(key).replace("-", "_"), path)
            if name not in options:
                msg = _unknown_key(path, f"{command}.{key}", sorted(options))
                raise ValueError(msg)
            from_file[name] = _coerce(options[name], value, path)
    settings: dict[str, Any] = {}
    for key, option in options.items():
        value = option.default
        if key in from_file:
            value = from_file[key]
        if key in given:
            cli_value = given[key]
            if option.kind == "kv":
                value = {**(value or {}), **dict(cli_value)}
            elif option.kind == "list":
                value = [*(value or []), *cli_value]
            else:
                value = cli_value
        settings[key] = value
    missing = [o.display for o in options.values() if o.required and settings[o.key] in (None, "")]
    if missing:
        msg = (
            f"missing {', '.join(missing)}: give it on the command line"
            + (" or in the config file" if path is not None else " (or in a --config file)")
            + "."
        )
        raise ValueError(msg)
    return settings


def _renamed(name: str, path: str) -> str:
    """The current key of a config key (a renamed one is read under its new name, with a warning)."""
    if name in RENAMED_KEYS:
        import warnings

        from daskml_lab.exceptions import DaskMLLabDeprecationWarning

        new = RENAMED_KEYS[name]
        msg = f"The config key {name!r} in {path!r} is deprecated and will be removed in 0.3; use {new!r}."
        warnings.warn(msg, DaskMLLabDeprecationWarning, stacklevel=3)
        return new
    return name


def _unknown_key(path: str, key: Any, valid: list[str]) -> str:
    return f"Unknown option {key!r} in the config file {path!r}. Valid options: {', '.join(valid)}."


def _coerce(option: Option, value: Any, path: str) -> Any:
    """A config value as the option's type (strings are parsed like the command line)."""
    where = f"In the config file {path!r}, {option.key!r}"
    kind = option.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        msg = f"{where} must be true or false; got {value!r}."
        raise ValueError(msg)
    if kind == "kv":
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return dict(_key_value(v) for v in value)
        msg = f"{where} must be a table of KEY = VALUE; got {value!r}."
        raise ValueError(msg)
    if kind == "list":
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        msg = f"{where} must be a list of strings; got {value!r}."
        raise ValueError(msg)
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            msg = f"{where} must be a number; got {value!r}."
            raise ValueError(msg)
        try:
            number = int(value) if kind == "int" else float(value)
        except ValueError as err:
            msg = f"{where} must be {'an integer' if kind == 'int' else 'a number'}; got {value!r}."
            raise ValueError(msg) from err
        if kind == "int" and isinstance(value, float) and value != number:
            msg = f"{where} must be an integer; got {value!r}."
            raise ValueError(msg)
        return number
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        msg = f"{where} must be a string; got {value!r}."
        raise ValueError(msg)
    text = str(value)
    if option.choices is not None and text not in option.choices:
        msg = f"{where} must be one of {', '.join(option.choices)}; got {text!r}."
        raise ValueError(msg)
    if kind == "path" and "://" not in text:
        # Relative paths in a config file are relative to the file's folder.
        text = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(text))
    return text
