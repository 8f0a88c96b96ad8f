"""The notebooks: saved with their outputs and no machine paths, and they run from top to bottom."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def saved_text(name: str) -> str:
    """The stored notebook ``name`` as JSON text, after checking it was saved executed: every code cell
    shows what it did, no error outputs, no machine paths."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] for c in code)  # every code cell shows what it did
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    text = json.dumps(nb)
    assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text
    return text


def execute(name: str, tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, timeout: int):
    """Run a copy of notebook ``name`` in ``tmp_path`` with nbclient (the kernel inherits
    GEODIFF_SHARED_DATA); returns (the executed notebook, the text its code cells showed). Raises
    CellExecutionError on the first failing cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("GEODIFF_SHARED_DATA", str(shared_data))
    shutil.copy(NOTEBOOKS / name, tmp_path)
    nb = nbformat.read(tmp_path / name, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    shown = "".join(
        o.get("text", "") if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    return nb, shown


def test_batch_notebook_is_saved_executed_without_machine_paths() -> None:
    saved_text("02_batch.ipynb")


@pytest.mark.slow
def test_batch_notebook_runs_on_a_two_worker_cluster(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, shown = execute("02_batch.ipynb", tmp_path, shared_data, monkeypatch, timeout=240)
    assert "GEODIFF_SHARED_DATA | scene found: True" in shown
    assert shown.count(" done ") == 4 and shown.count(" skipped ") == 4  # 4 scenes, then all skipped
    assert (tmp_path / "out" / "batch" / "lee" / "geodiff-batch.jsonl").exists()
    assert (tmp_path / "out" / "batch" / "crop0_before_after.png").stat().st_size > 1000


def test_fusion_notebook_is_saved_executed_without_machine_paths() -> None:
    text = saved_text("04_fusion.ipynb")
    assert "geodiff dps" in text and "fused luminance posterior std" in text


@pytest.mark.slow
def test_fusion_notebook_runs(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """04_fusion: three shared pairs fused by the baselines and DPS, the posterior std, the scores."""
    _, shown = execute("04_fusion.ipynb", tmp_path, shared_data, monkeypatch, timeout=300)
    assert "pairs found: True" in shown and "fused 15 pair x method combinations" in shown
    assert "last band: fused luminance posterior std" in shown
    assert "CRS and transform kept: True True" in shown
    assert (tmp_path / "out" / "fusion" / "sen1floods11_fused_std.tif").exists()


def test_sar_dps_notebook_03_is_saved_executed_without_machine_paths() -> None:
    text = saved_text("03_sar_dps.ipynb")
    assert "Dalsasso" in text and "ENL out" in text  # the data's attribution, the QA table


@pytest.mark.slow
def test_sar_dps_notebook_03_runs(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """03_sar_dps: a single-look S1 crop, the likelihood, noise vs default sampler, draws, std, QA, and the
    blind-spot estimate with its ratio mean."""
    nb, shown = execute("03_sar_dps.ipynb", tmp_path, shared_data, monkeypatch, timeout=240)
    assert "crop found: True" in shown
    assert "L = 1: maximum at x/y = 1.000" in shown and "L = 4: maximum at x/y = 1.000" in shown
    qa = r"(\S.*?)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+([\d.]+)\s+([\d.]+)"  # method + 5 figures
    rows = {m[1]: float(m[2]) for m in (re.fullmatch(qa, line) for line in shown.splitlines()) if m}
    assert set(rows) == {"Lee 7x7", "SAR-DPS from noise", "SAR-PnP balanced", "geodiff.despeckle"}
    assert all(0.5 < ratio_mean < 1.5 for ratio_mean in rows.values())
    blind = re.search(r"blind-spot\s+ratio mean ([\d.]+) .* bias ([-+][\d.]+) dB", shown)
    assert blind and abs(float(blind[1]) - 1) <= 0.03 and abs(float(blind[2])) <= 0.1, shown[-600:]
    assert sum(o.get("output_type") == "display_data" for c in nb.cells for o in c.get("outputs", [])) == 6
