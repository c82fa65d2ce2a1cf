"""The doctest examples of the documentation pages that have them (run as written, output compared)."""

from __future__ import annotations

import doctest
import importlib.util
import re

import pytest

from tests.conftest import REPO_ROOT

PAGES = ["architecture.rst", "linear_models.rst", "compose.rst", "model_selection.rst"]
PAGES += ["wide_sparse_data.rst"]


@pytest.mark.parametrize("page", PAGES)
def test_documentation_examples_run_as_written(page):
    result = doctest.testfile(
        str(REPO_ROOT / "docs" / page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.attempted > 0
    assert result.failed == 0


# Pages that document the package's internals for contributors, where private modules are the subject.
INTERNALS_PAGES = {"architecture.rst"}
PRIVATE_IMPORT = re.compile(
    r"^\s*(?:>>>\s*)?(?:from\s+daskml_lab(?:\.\w+)*\._\w*|import\s+daskml_lab(?:\.\w+)*\._)"
)


def test_user_documentation_imports_no_private_module():
    sources = [p for p in (REPO_ROOT / "docs").rglob("*.rst") if p.name not in INTERNALS_PAGES]
    sources += list((REPO_ROOT / "docs").rglob("*.md")) + list((REPO_ROOT / "examples").rglob("*.py"))
    sources += [REPO_ROOT / "README.md"]
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE_IMPORT.match(line)
    ]
    assert found == [], "import the public names instead:\n" + "\n".join(found)


def test_shipped_inventories_match_their_table():
    spec = importlib.util.spec_from_file_location(
        "make_inventories", REPO_ROOT / "docs" / "_inv" / "make_inventories.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for project in module.TARGETS:
        shipped = (REPO_ROOT / "docs" / "_inv" / f"{project}.inv").read_bytes()
        assert shipped == module.inventory_bytes(project), (
            f"run python docs/_inv/make_inventories.py ({project})"
        )
    conf = (REPO_ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    for project, url in module.BASE_URLS.items():
        assert f'"{project}": ("{url}", "_inv/{project}.inv")' in conf
