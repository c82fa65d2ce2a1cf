"""The example notebook runs end to end (so that it never rots): executed with nbclient in a fresh kernel."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NOTEBOOK = REPO_ROOT / "examples" / "exploration.ipynb"


def test_exploration_notebook_runs():
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the test extra (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the test extra (nbclient)")
    pytest.importorskip("ipykernel", reason="the notebook test needs the test extra (ipykernel)")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "the notebook is stored without outputs"
    )
    client = nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "training page: http://127.0.0.1:" in stdout
    assert "/daskml-training" in stdout
    assert stdout.count("test accuracy") == 2
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 3  # history, shard report, fusion comparison
    results = [o.data["text/plain"] for o in outputs if o.output_type == "execute_result"]
    assert any("'soft-voting':" in text for text in results)
