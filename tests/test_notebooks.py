"""The notebooks: saved with their outputs and no machine paths, and they run from top to bottom."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_batch_notebook_is_saved_executed_without_machine_paths() -> None:
    nb = json.loads((NOTEBOOKS / "02_batch.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] for c in code)  # every code cell shows what it did
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    text = json.dumps(nb)
    assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text


@pytest.mark.slow
def test_batch_notebook_runs_on_a_two_worker_cluster(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("GEODIFF_SHARED_DATA", str(shared_data))  # the kernel inherits it
    shutil.copy(NOTEBOOKS / "02_batch.ipynb", tmp_path)
    nb = nbformat.read(tmp_path / "02_batch.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises CellExecutionError on the first failing cell
    shown = "".join(
        o.get("text", "") if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "GEODIFF_SHARED_DATA | scene found: True" in shown
    assert shown.count(" done ") == 4 and shown.count(" skipped ") == 4  # 4 scenes, then all skipped
    assert (tmp_path / "out" / "batch" / "lee" / "geodiff-batch.jsonl").exists()
    assert (tmp_path / "out" / "batch" / "crop0_before_after.png").stat().st_size > 1000


def test_fusion_notebook_is_saved_executed_without_machine_paths() -> None:
    nb = json.loads((NOTEBOOKS / "04_fusion.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] for c in code)
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    text = json.dumps(nb)
    assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text
    assert "geodiff dps" in text and "fused luminance posterior std" in text


@pytest.mark.slow
def test_fusion_notebook_runs(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """04_fusion: three shared pairs fused by the baselines and DPS, the posterior std, the scores."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("GEODIFF_SHARED_DATA", str(shared_data))
    shutil.copy(NOTEBOOKS / "04_fusion.ipynb", tmp_path)
    nb = nbformat.read(tmp_path / "04_fusion.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    shown = "".join(
        o.get("text", "") if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "pairs found: True" in shown and "fused 15 pair x method combinations" in shown
    assert "last band: fused luminance posterior std" in shown
    assert "CRS and transform kept: True True" in shown
    assert (tmp_path / "out" / "fusion" / "sen1floods11_fused_std.tif").exists()
