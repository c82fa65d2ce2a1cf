"""The ``daskml-lab`` command line: parses arguments, calls the public API, prints results."""

from daskml_lab.cli._main import main

__all__ = ["main"]
