"""The example notebook runs end to end (so that it never rots): executed with nbclient in a fresh kernel.

Its outputs are checked too: the figures, the training page link, and in its "Choosing a model" part the best
C of our grid search equal to scikit-learn's GridSearchCV on the same folds, with the same mean scores.
"""

from __future__ import annotations

import re

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
    assert stdout.count("test accuracy") == 4  # the letter model and ensemble; best model and soft voting
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    # history, shard report, fusion comparison; mean test score against C, best model against soft voting
    assert len(images) == 5
    results = [o.data["text/plain"] for o in outputs if o.output_type == "execute_result"]
    assert any("'soft-voting':" in text for text in results)

    # choosing a model: cv_results_ as a table, and the same choice as scikit-learn's on the same folds
    assert any("mean_test_score" in text and "rank_test_score" in text for text in results)
    assert "best_params_: {'C': " in stdout
    ours, theirs = re.search(r"best C: daskml_lab (\S+) \| scikit-learn (\S+)", stdout).groups()
    assert float(ours) == float(theirs)
    gap = re.search(r"largest difference between the mean test scores: (\S+)", stdout).group(1)
    assert float(gap) <= 1e-6
    assert re.search(r"best-model: test accuracy 0\.\d{3}", stdout)
    assert re.search(r"chosen: shard [0-3]\b", stdout)
