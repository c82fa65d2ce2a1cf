"""The README's Python quick start runs when pasted into a script (issue 12), at a small size.

It starts worker processes, which import the main script again: without its ``if __name__ == "__main__":``
guard, a pasted copy failed. The block is run as written, as a file in a subprocess, with only the data size
reduced.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

#: The data size of the README, and the one the test runs (the code is otherwise as written).
SIZES = {"2_000_000": "20_000", "chunks=100_000": "chunks=2_500"}


def _quick_start() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_quick_start_has_a_main_guard() -> None:
    assert 'if __name__ == "__main__":' in _quick_start()


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_quick_start_runs_as_a_script(tmp_path: Path) -> None:
    code = _quick_start()
    for original, small in SIZES.items():
        assert original in code, f"the README's quick start no longer holds {original!r}; update SIZES"
        code = code.replace(original, small)
    script = tmp_path / "quick_start.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("http://127.0.0.1:")
    linear, forest = (float(v) for v in lines[-1].split())
    assert linear > 0.7
    assert forest > 0.7
    assert (tmp_path / "forest.daskml").is_file()
