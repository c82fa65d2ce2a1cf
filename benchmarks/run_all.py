"""Run every benchmark script in this folder, one after the other, and keep their output.

Usage::

    python benchmarks/run_all.py              # all bench_*.py scripts
    python benchmarks/run_all.py logistic     # only those whose name contains "logistic"

Each script prints its own table (time, accuracy, ratio against the scikit-learn / dask-ml baseline measured in
the same run). Outputs are also written to ``benchmarks/results/<name>.txt`` (not committed); the figures quoted
in ``docs/benchmarks.md`` come from these runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the selected benchmarks; return non-zero if any failed."""
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not argv or any(a in p.stem for a in argv))
    failed = []
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
        output = completed.stdout + (f"\n[stderr]\n{completed.stderr}" if completed.returncode else "")
        (results / f"{script.stem}.txt").write_text(output)
        print(output, flush=True)
        print(
            f"=== {script.name}: exit {completed.returncode} in {time.perf_counter() - start:.0f} s\n",
            flush=True,
        )
        if completed.returncode:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
