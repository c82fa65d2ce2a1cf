"""The doctest examples of the documentation pages that have them (run as written, output compared)."""

from __future__ import annotations

import doctest

import pytest

from tests.conftest import REPO_ROOT

PAGES = ["architecture.rst", "linear_models.rst", "compose.rst"]


@pytest.mark.parametrize("page", PAGES)
def test_documentation_examples_run_as_written(page):
    result = doctest.testfile(
        str(REPO_ROOT / "docs" / page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.attempted > 0
    assert result.failed == 0
