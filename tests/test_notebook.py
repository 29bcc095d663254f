"""docs/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient, ipykernel), offline, and says
what it should: the model it trains classifies held-out digits, the maps come in a batch, every result
shows itself as a picture, and MobileNet explains the cat photo as a cat."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "quickstart.ipynb"


@pytest.mark.slow
def test_the_quickstart_notebook_runs_and_shows_its_results(tmp_path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:  # the stored outputs must not count: only what this run prints
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # a cell's error fails the test here
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    printed = "".join(output.get("text", "") for cell in code for output in cell.outputs if output.output_type == "stream")
    accuracy = float(re.search(r"held-out accuracy: ([\d.]+)", printed).group(1))
    assert accuracy >= 0.9, printed
    assert "preprocessing: raw" in printed and "its first layer 'rescaling' (Rescaling) scales the pixels" in printed
    assert "maps: (8, 28, 28)" in printed and "empty maps: 0" in printed
    assert "top class: Egyptian cat" in printed
    shown = [cell for cell in code if any(output.output_type == "execute_result" for output in cell.outputs)]
    assert len(shown) == 7  # Grad-CAM, Layer-CAM, faithfulness, filters, an objective, top-k, MobileNet's map
    for cell in shown:
        data = next(output for output in cell.outputs if output.output_type == "execute_result").data
        assert "text/html" in data, cell.source
        if "faithfulness" not in cell.source:
            assert data["image/png"], cell.source
