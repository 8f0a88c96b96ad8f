"""`geodiff fuse`: every option reaches what it names (the GEODIFF_FUSION tag, the summary, the pixels).

Each option is checked three ways that a misrouted value fails: the FusionConfig read back from the
output's tags equals the one the option asks for, the pixels differ from the run without it (where it
changes numerics), and the summary reports it. DPS runs use the tiny prior and two steps.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from geodiff.apps.fuse import FusionConfig, fuse_arrays, fuse_scene, load_pair

BASE = (
    "--prior", "tiny", "--steps", "2", "--tile", "64", "--overlap", "16", "--despeckle-sar", "none",
    "--prox-iters", "20",
)  # fmt: skip
BASE_CONFIG = FusionConfig(prior="tiny", steps=2, tile=64, overlap=16, despeckle_sar=None, prox_iters=20)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pair(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from conftest import FUSION_PAIR

    d = tmp_path_factory.mktemp("pair")
    shutil.copy(shared_data / FUSION_PAIR / "s2_B02_B03_B04_B08.tif", d / "s2.tif")
    shutil.copy(shared_data / FUSION_PAIR / "s1_VV_VH_db.tif", d / "s1_db.tif")
    return d / "s2.tif", d / "s1_db.tif"


def _fuse(invoke, pair, out: Path, *args: str) -> tuple[dict, np.ndarray, FusionConfig]:  # noqa: ANN001
    res = invoke("fuse", *pair, out, *BASE, *args, "--json")
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as f:
        return json.loads(res.stdout), f.read(), FusionConfig.from_tags(f.tags())


@pytest.fixture(scope="module")
def base(pair, tmp_path_factory) -> tuple[dict, np.ndarray, FusionConfig]:
    from click.testing import CliRunner

    from geodiff.cli import cli

    out = tmp_path_factory.mktemp("base") / "base.tif"
    res = CliRunner().invoke(cli, ["fuse", *map(str, pair), str(out), *BASE, "--json"])
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as f:
        return json.loads(res.stdout), f.read(), FusionConfig.from_tags(f.tags())


def test_base_run_records_its_config(base) -> None:
    summary, _, config = base
    assert config == BASE_CONFIG
    assert summary["config"] == BASE_CONFIG.to_dict() and summary["steps"] == 2 and summary["t0"] == 200


@pytest.mark.parametrize(
    ("args", "changes"),
    [
        (("--weights", "2,1,0.5,3"), {"weights": (2.0, 1.0, 0.5, 3.0)}),
        (("--intensity-weight", "0.5"), {"intensity_weight": 0.5}),
        (("--gradient-weight", "2"), {"gradient_weight": 2.0}),
        (("--start", "average"), {"start": "average"}),
        (("--samples", "2"), {"samples": 2}),
        (("--prox-iters", "5"), {"prox_iters": 5}),
        (("--steps", "3"), {"steps": 3}),
        (("--t0", "150"), {"t0": 150}),
        (("--seed", "5"), {"seed": 5}),
        (("--tile", "32"), {"tile": 32}),
        (("--overlap", "4"), {"overlap": 4}),
        (("--method", "wavelet"), {"method": "wavelet"}),
        (("--prior", "gray"), {"prior": "gray"}),
        (("--despeckle-sar", "lee"), {"despeckle_sar": "lee"}),
    ],
    ids=lambda v: v[0] if isinstance(v, tuple) else "",
)
def test_option_reaches_the_config_and_changes_the_pixels(
    invoke, pair, base, tmp_path, args, changes
) -> None:
    summary, pixels, config = _fuse(invoke, pair, tmp_path / "o.tif", *args)
    want = FusionConfig.of(BASE_CONFIG, **changes)
    if "despeckle_sar" in changes:  # the looks the despeckler used are estimated and recorded
        assert config.looks > 1 and summary["despeckle_sar"] == {
            "method": "lee",
            "looks": round(config.looks, 3),
        }
        want = FusionConfig.of(want, looks=config.looks)
    assert config == want
    assert summary["method"] == want.method
    assert not np.array_equal(pixels, base[1])


def test_looks_reach_the_sar_despeckler(invoke, pair, tmp_path) -> None:
    runs = [
        _fuse(invoke, pair, tmp_path / f"{lk}.tif", "--despeckle-sar", "lee", "--looks", lk) for lk in "18"
    ]
    assert [r[2].looks for r in runs] == [1.0, 8.0]
    assert [r[0]["despeckle_sar"]["looks"] for r in runs] == [1.0, 8.0]
    assert not np.array_equal(runs[0][1], runs[1][1])


def test_device_cpu_is_used_and_recorded(invoke, pair, base, tmp_path) -> None:
    summary, pixels, config = _fuse(invoke, pair, tmp_path / "cpu.tif", "--device", "cpu")
    assert config.device == "cpu" and summary["device"] == "cpu"
    if not torch.cuda.is_available():  # auto is the CPU here: the same pixels
        assert np.array_equal(pixels, base[1])


def test_sar_band_selects_the_polarisation(invoke, pair, base, tmp_path) -> None:
    summary, pixels, _ = _fuse(invoke, pair, tmp_path / "vh.tif", "--sar-band", "2")
    assert summary["sar_band"] == 2 and base[0]["sar_band"] == 1
    assert not np.array_equal(pixels, base[1])


def test_t0_reaches_the_dps_start(pair) -> None:
    """fuse_arrays: the start step is the one asked for (the summary's t0 and the result change)."""
    p = load_pair(*pair, despeckle_sar=None)
    runs = {
        t0: fuse_arrays(p.optical, p.sar, BASE_CONFIG, rgb=p.rgb, t0=t0, start="average", return_details=True)
        for t0 in (100, 500, None)
    }
    assert [r.info["t0"] for r in runs.values()] == [100, 500, None]
    assert not np.allclose(runs[100].fused, runs[500].fused)
    assert not np.allclose(runs[500].fused, runs[None].fused)
    # a low start stays closer to the start image, the average of optical and SAR
    avg = (runs[100].optical + runs[100].sar) / 2
    assert np.nanmean(np.abs(runs[100].fused - avg)) < np.nanmean(np.abs(runs[None].fused - avg))


def test_json_and_text_output(invoke, pair, tmp_path) -> None:
    res = invoke("fuse", *pair, tmp_path / "a.tif", "--method", "average")
    assert res.exit_code == 0 and res.stdout.startswith(str(tmp_path / "a.tif")) and "average" in res.stdout
    res = invoke("fuse", *pair, tmp_path / "b.tif", "--method", "average", "--json")
    assert json.loads(res.stdout)["out"] == str(tmp_path / "b.tif")


@pytest.mark.slow
def test_despeckle_sar_with_sar_dps_end_to_end(invoke, pair, base, tmp_path) -> None:
    """`--despeckle-sar sar-dps`: the SAR is despeckled by SAR-DPS (tiny prior) before DPS fusion."""
    before = [p.read_bytes() for p in pair]
    out = tmp_path / "sar_dps.tif"
    summary, pixels, config = _fuse(invoke, pair, out, "--despeckle-sar", "sar-dps")
    assert [p.read_bytes() for p in pair] == before
    assert config.despeckle_sar == "sar-dps" and summary["despeckle_sar"]["method"] == "sar-dps"
    assert summary["despeckle_sar"]["looks"] > 1
    with rasterio.open(out) as f, rasterio.open(pair[0]) as o:
        assert (f.crs, f.transform, f.count, f.dtypes) == (o.crs, o.transform, o.count, o.dtypes)
    assert np.isfinite(pixels.astype(float)).all() and not np.array_equal(pixels, base[1])
    # the library with the same config writes the same pixels
    again = fuse_scene(*pair, tmp_path / "lib.tif", config)
    assert again["despeckle_sar"] == summary["despeckle_sar"]
    with rasterio.open(tmp_path / "lib.tif") as f:
        assert np.array_equal(f.read(), pixels)
    # and the SAR it fused is smoother than the raw one
    raw, dsp = load_pair(*pair, despeckle_sar=None), load_pair(*pair, config)
    rough = [np.nanstd(np.diff(np.log(x.sar), axis=1)) for x in (raw, dsp)]
    assert rough[1] < 0.8 * rough[0]


def test_bad_option_values_exit_2(invoke, pair, tmp_path) -> None:
    out = tmp_path / "x.tif"
    for args in (("--steps", "0"), ("--t0", "-1"), ("--weights", "1,1,1"), ("--method", "magic"),
                 ("--despeckle-sar", "nope"), ("--looks", "-2", "--despeckle-sar", "lee")):  # fmt: skip
        res = invoke("fuse", *pair, out, *args)
        assert res.exit_code == 2, (args, res.output)
    assert not out.exists()


def test_units_declare_the_sar_units(invoke, pair, tmp_path) -> None:
    """An untagged linear SAR: --units says how to read it (recorded; amplitude != intensity pixels)."""
    with rasterio.open(pair[1]) as s:
        prof = dict(driver="GTiff", width=s.width, height=s.height, count=1, dtype="float32", crs=s.crs)
        lin = (10 ** (s.read(1).astype(np.float64) / 10)).astype(np.float32)
        with rasterio.open(tmp_path / "sar.tif", "w", transform=s.transform, **prof) as d:
            d.write(lin[None])
    runs = {}
    for units in ("intensity", "amplitude"):
        res = invoke("fuse", pair[0], tmp_path / "sar.tif", tmp_path / f"{units}.tif", "--method", "average",
                     "--units", units, "--json")  # fmt: skip
        assert res.exit_code == 0, res.output
        with rasterio.open(tmp_path / f"{units}.tif") as f:
            runs[units] = (json.loads(res.stdout), f.read(), FusionConfig.from_tags(f.tags()))
    for units, (summary, _, config) in runs.items():
        assert summary["sar_units"] == units == config.sar_units
    assert not np.array_equal(runs["intensity"][1], runs["amplitude"][1])
