"""The prepared GPU job (scripts/gpu_e2e.sh, bench/gpu_e2e.py, bench/prior_verdict.py), dry-run on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import gpu_e2e  # noqa: E402
import prior_verdict  # noqa: E402

ROW_FIELDS = {"scene", "method", "width", "height", "seconds", "mpx_s", "profile", "nfe", "device",
              "peak_gpu_mib", "peak_rss_mib", "stages", "completed", "extrapolated"}  # fmt: skip


def test_synthetic_scene_is_gamma_speckle_of_four_looks(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    import torch

    path = tmp_path / "s.tif"
    gpu_e2e.make_scene(path, 300, 260, strip=100)  # strips that do not divide the height
    with rasterio.open(path) as ds:
        inten = ds.read(1).astype(np.float64)
        assert (ds.width, ds.height, ds.dtypes[0], ds.crs.to_epsg()) == (300, 260, "float32", 32632)
        assert ds.profile["tiled"] and ds.descriptions[0] == "intensity (linear power)"
    rows, cols = torch.arange(260.0), torch.arange(300.0)
    a2 = gpu_e2e._reflectivity(rows, cols, torch).square().double().numpy()
    ratio = inten / a2  # Gamma(4, 1/4): mean 1, variance 1/4 (the texture is exactly known)
    assert abs(ratio.mean() - 1) < 0.01
    assert abs(ratio.var() - 1 / gpu_e2e.LOOKS) < 0.01
    # seamless strips: the texture continues across the strip edge (same field, new speckle draws)
    assert np.isfinite(inten).all() and inten.min() > 0


def _dev_json(path: Path, prior: str, psnr: dict[tuple[str, int], float]) -> Path:
    rows = [{"solver": f"sar-dps:{v}", "L": L, "PSNR": p} for (v, L), p in psnr.items()]
    rows.append({"solver": "lee7x7", "L": 1, "PSNR": 20.0})
    path.write_text(json.dumps({"meta": {"prior": prior}, "rows": rows}))
    return path


def test_prior_verdict_ships_only_a_prior_better_on_both_benchmarks_and_small(tmp_path):
    den = {"priors": {
        "gray": {"sigmas": {"15": {"psnr_mean": 32.0}, "25": {"psnr_mean": 30.0}}},
        "runs/a/better.safetensors": {"sigmas": {"15": {"psnr_mean": 32.2}, "25": {"psnr_mean": 30.1}}},
        "runs/b/mixed.safetensors": {"sigmas": {"15": {"psnr_mean": 32.2}, "25": {"psnr_mean": 29.9}}},
    }}  # fmt: skip
    (tmp_path / "den.json").write_text(json.dumps(den))
    dev = [
        _dev_json(tmp_path / "d0.json", "gray", {("v", 1): 27.0, ("v", 4): 31.0}),
        _dev_json(tmp_path / "d1.json", "runs/a/better.safetensors", {("v", 1): 27.1, ("v", 4): 31.05}),
        _dev_json(tmp_path / "d2.json", "/x/mixed.safetensors", {("v", 1): 27.3, ("v", 4): 31.2}),
    ]
    (tmp_path / "better.safetensors").write_bytes(b"0" * 1000)
    (tmp_path / "mixed.safetensors").write_bytes(b"0" * 1000)
    out = tmp_path / "v.json"
    argv = ["--candidates", "better", "mixed", "absent", "--denoise", str(tmp_path / "den.json"), "--dev",
            *map(str, dev), "--weights", str(tmp_path / "better.safetensors"),
            str(tmp_path / "mixed.safetensors"), "--out", str(out)]  # fmt: skip
    assert prior_verdict.main(argv) == 0
    res = {r["prior"]: r for r in json.loads(out.read_text())["candidates"]}
    assert res["better"]["ships"] is True
    assert res["better"]["prior_denoise"]["delta_db"] == {"15": 0.2, "25": 0.1}
    assert res["mixed"]["ships"] is False and "prior_denoise" in res["mixed"]["reasons"][0]
    assert res["absent"]["ships"] is False
    # the size rule: the same gains do not ship above --max-mb
    assert prior_verdict.main([*argv[:-2], "--max-mb", "0.0005", "--out", str(out)]) == 0
    res = {r["prior"]: r for r in json.loads(out.read_text())["candidates"]}
    assert res["better"]["ships"] is False and "MB" in res["better"]["reasons"][-1]


@pytest.mark.slow
def test_gpu_job_dry_run_on_the_cpu_writes_the_e2e_table(tmp_path):
    """The device job's e2e stage with SMOKE=1 (tiny scenes, tiny prior) through the real CLI."""
    pytest.importorskip("rasterio")
    env = dict(os.environ, SMOKE="1", DEVICE="cpu", STAGES="e2e", E2E_BUDGET="80", OUT=str(tmp_path / "out"),
               RES=str(tmp_path / "res"), WORK=str(tmp_path / "work"), RUNS=str(tmp_path / "runs"),
               PY=sys.executable)  # fmt: skip
    script = str(REPO / "scripts" / "gpu_e2e.sh")
    res = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    text = (tmp_path / "out" / "gpu_e2e.json").read_text()
    assert str(tmp_path) not in text and "/work/" not in text  # no machine paths
    doc = json.loads(text)
    assert (tmp_path / "out" / "results.tgz").exists()
    rows = doc["scenes"]
    assert {r["method"] for r in rows} == {"sar-dps", "lee 7x7 (CPU)", "reference DPS (1000 NFE + backprop)"}
    for r in rows:
        assert ROW_FIELDS <= set(r) or r["method"].startswith("reference"), r
    dps = next(r for r in rows if r["method"] == "sar-dps")
    assert dps["completed"] and dps["nfe"] >= 1 and dps["width"] * dps["height"] == 256 * 192
    assert dps["mpx_s"] == pytest.approx(256 * 192 / 1e6 / dps["seconds"], rel=0.01)
    assert set(gpu_e2e.STAGES) <= set(dps["stages"]) and dps["stages"]["blocks"] >= 1
    assert dps["stages"]["sample"] > 0 and dps["peak_rss_mib"] > 50
    assert next(r for r in rows if r["method"].startswith("lee"))["completed"]
    ref = next(r for r in rows if r["method"].startswith("reference"))
    assert ref["nfe"] == 1000 and ref["extrapolated"] and ref["seconds"] > dps["seconds"]
    assert any("100000x100000: skipped" in n for n in doc["notes"])
    assert "| sar-dps |" in res.stdout and "1.4 Mpx/s" in res.stdout


@pytest.mark.slow
def test_gpu_speed_dry_run_times_each_setting_and_scores_each_on_dev_images(tmp_path, shared_data):
    """bench/gpu_speed.py on the CPU (tiny prior, 64² tiles): one throughput row per setting, and the
    quality part through the despeckle job on one PROTOCOL §1 dev image, paired to the first setting."""
    pytest.importorskip("rasterio")
    import gpu_speed

    img = tmp_path / "dev"
    img.mkdir()
    (img / "01900.jpg").write_bytes((shared_data / "virtual_sar_clean_gray" / "01900.jpg").read_bytes())
    out = tmp_path / "speed.json"
    gpu_speed.main(["--device", "cpu", "--prior", "tiny", "--chunks", "1", "2", "--precisions", "fp32",
                    "--tile", "64", "--repeat", "1", "--images", str(img), "--limit", "1", "--looks", "1",
                    "--profile", "fast", "--settings", "fp32:1", "fp32:2", "--out", str(out)])  # fmt: skip
    doc = json.loads(out.read_text())
    assert [(r["precision"], r["chunk"]) for r in doc["throughput"]] == [("fp32", 1), ("fp32", 2)]
    assert all(r["ms_per_call"] > 0 and r["tile_evals_per_s"] > 0 for r in doc["throughput"])
    q = doc["quality"]
    assert [(r["precision"], r["chunk"]) for r in q] == [("fp32", 1), ("fp32", 2)]
    assert 15 < q[0]["PSNR"] < 40 and q[0]["dPSNR_vs_first"] == 0.0
    # the CPU evaluates one tile per call whatever GEODIFF_GPU_CHUNK says: the same bits
    assert q[1]["psnr_per_image"] == q[0]["psnr_per_image"]
    assert "/work/" not in out.read_text() and str(tmp_path) not in out.read_text()
