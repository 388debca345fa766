"""The example notebook runs end to end (movie → sites → rVAE → latents → plots) and is stored without outputs."""

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "examples" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, "the notebook has no code"
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    import os

    import napari_rvae

    # the kernel (a child process, started in tmp_path) imports the napari_rvae these tests import
    here = str(Path(napari_rvae.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.outputs if output.get("output_type") == "stream")
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.outputs)
    assert images == 4  # angle histogram, frame 0 by angle, latent plane, manifold
    assert "precision" in text and "sublattices apart by" in text
    # the science the notebook shows: most sites are real atoms, and the two sublattices differ in angle
    precision = float(text.split("precision ")[1].split(",")[0])
    assert precision >= 0.9
    gap = float(text.split("sublattices apart by ")[1].split(" degrees")[0])
    spread = float(text.split("spread within each ")[1].split(" degrees")[0])
    assert gap >= 2 * spread, f"sublattices {gap}° apart with a {spread}° spread"
