"""The daskml-lab command line, end to end in subprocesses."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import daskml_lab


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("daskml-lab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "daskml_lab.cli._main"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, check=False)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_version():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"daskml-lab {daskml_lab.__version__}"


def test_unknown_subcommand_is_a_usage_error():
    result = _run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_unreachable_scheduler_is_one_clear_line():
    address = f"tcp://127.0.0.1:{_closed_port()}"
    result = _run("info", "--scheduler", address)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"daskml-lab info: error: Could not reach the Dask scheduler at '{address}'")
    assert "Traceback" not in result.stderr


@pytest.mark.cluster
def test_info_on_external_scheduler(external_scheduler):
    result = _run("info", "--scheduler", external_scheduler)
    assert result.returncode == 0, result.stderr
    assert f"scheduler    {external_scheduler}" in result.stdout
    assert re.search(r"workers\s+2 \(2 threads\)", result.stdout)
    assert re.search(r"^scikit-learn\s+\d", result.stdout, flags=re.MULTILINE)


@pytest.mark.cluster
@pytest.mark.slow
def test_demo_fits_and_prints_metrics():
    result = _run("demo", "--rows", "200000", "--features", "10", "--chunk-rows", "25000", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "Training page: http://127.0.0.1:" in result.stdout
    assert "/daskml-training" in result.stdout
    accuracy = float(re.search(r"test accuracy\s+([0-9.]+)", result.stdout).group(1))
    # class_sep=0.8 with half the features informative: a linear model separates the classes well.
    assert accuracy > 0.8, result.stdout
    assert re.search(r"training rows\s+160,000 in 8 blocks", result.stdout), result.stdout
