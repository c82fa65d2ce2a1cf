"""Sphinx configuration for the daskml_lab documentation (warnings are errors: `sphinx -W`)."""

from daskml_lab import __version__

project = "daskml_lab"
author = "daskml_lab developers"
copyright = "2026, daskml_lab developers"  # noqa: A001 - Sphinx's name
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
templates_path = []

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = f"daskml_lab {release}"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": False}

# No network on the build machines: cross-references to other projects stay plain text.
intersphinx_mapping: dict[str, tuple[str, None]] = {}
nitpicky = False
