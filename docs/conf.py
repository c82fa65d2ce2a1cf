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
exclude_patterns = ["_build", "_inv", "_templates"]
# the class page lists its methods (fit, predict, score, ...) with their docstrings, as scikit-learn's does
templates_path = ["_templates"]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = f"daskml_lab {release}"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": False}

# No network on the build machines: links to other projects' documentation come from small inventories shipped
# in _inv/ (written by _inv/make_inventories.py, listing the targets we reference with their real addresses).
intersphinx_mapping: dict[str, tuple[str, str]] = {
    "sklearn": ("https://scikit-learn.org/stable/", "_inv/sklearn.inv"),
    "dask": ("https://docs.dask.org/en/stable/", "_inv/dask.inv"),
    "distributed": ("https://distributed.dask.org/en/stable/", "_inv/distributed.inv"),
    "pandas": ("https://pandas.pydata.org/docs/", "_inv/pandas.inv"),
    "numpy": ("https://numpy.org/doc/stable/", "_inv/numpy.inv"),
    "xarray": ("https://docs.xarray.dev/en/stable/", "_inv/xarray.inv"),
}
nitpicky = False
