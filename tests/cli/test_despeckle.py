"""`geodiff despeckle`: every option reaches what it names (GEODIFF_DESPECKLE tag, summary, pixels).

A misrouted value fails at least one of: the DespeckleRecord read back from the output's tags, the
JSON summary, the pixels compared with the run without the option or with the library call.
SAR-DPS runs use the tiny prior, two steps and two samples on a 96x128 crop.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodiff.apps.despeckle import despeckle_scene
from geodiff.apps.despeckle.record import DespeckleRecord
from sensors.speckle_filters import apply_filter

DPS = ("--prior", "tiny", "--steps", "2", "--samples", "2", "--tile", "64", "--overlap", "16", "--looks", "4")


def _run(invoke, src: Path, out: Path, *args: str) -> tuple[dict, np.ndarray, DespeckleRecord]:  # noqa: ANN001
    res = invoke("despeckle", src, out, *args, "--json")
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as f:
        return json.loads(res.stdout), f.read().astype(np.float64), DespeckleRecord.from_tags(f.tags())


@pytest.fixture(scope="module")
def crop(tmp_path_factory: pytest.TempPathFactory, sample_scene: Path) -> Path:
    from conftest import crop_geotiff

    return crop_geotiff(sample_scene, tmp_path_factory.mktemp("crop") / "in.tif", 80, 100, 96, 128)


@pytest.fixture(scope="module")
def base(crop: Path, tmp_path_factory) -> tuple[dict, np.ndarray, DespeckleRecord]:
    from click.testing import CliRunner

    from geodiff.cli import cli

    out = tmp_path_factory.mktemp("base") / "base.tif"
    res = CliRunner().invoke(cli, ["despeckle", str(crop), str(out), *DPS, "--json"])
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as f:
        return json.loads(res.stdout), f.read().astype(np.float64), DespeckleRecord.from_tags(f.tags())


def test_base_run_records_its_settings(base) -> None:
    summary, _, rec = base
    assert (rec.method, rec.looks, rec.prior, rec.tile, rec.overlap, rec.seed) == (
        "sar-dps",
        (4.0,),
        "tiny",
        64,
        16,
        0,
    )
    assert (rec.sampler["steps"], rec.sampler["samples"], rec.units) == (2, 2, "intensity")
    assert rec.scale == (summary["scale"],) and rec.uncertainty is False
    # no --profile on the CPU: the balanced profile's fields, except the explicit steps and samples
    from geodiff.apps.despeckle.sar_dps import PROFILES

    assert (rec.profile, rec.solver) == ("balanced", "sar_pnp")
    admm = PROFILES["balanced"]["admm_iters"]
    assert rec.sampler["admm_iters"] == admm == summary["settings"]["admm_iters"]


def test_profile_sets_the_sampler_and_explicit_options_win(invoke, crop, tmp_path) -> None:  # noqa: ANN001
    from geodiff.apps.despeckle.sar_dps import PROFILES, resolve_profile

    base = ("--prior", "tiny", "--tile", "64", "--overlap", "16", "--looks", "4", "--profile", "fast")
    summary, pixels, rec = _run(invoke, crop, tmp_path / "f.tif", *base)
    fast = PROFILES["fast"]
    assert rec.profile == "fast" == summary["settings"]["profile"]
    assert {k: rec.sampler[k] for k in fast} == fast
    _, pixels2, rec2 = _run(invoke, crop, tmp_path / "f2.tif", *base, "--samples", "3")
    assert rec2.profile == "fast" and rec2.sampler["samples"] == 3 and rec2.sampler["steps"] == fast["steps"]
    assert not np.allclose(pixels, pixels2)
    res = invoke("despeckle", crop, tmp_path / "x.tif", "--profile", "fastest")
    assert res.exit_code == 2 and "fastest" in res.output
    assert resolve_profile(None, "cpu") == "balanced" and resolve_profile("auto", "cuda:1") == "best"
    assert resolve_profile("best", "cpu") == "best"
    with pytest.raises(ValueError, match="unknown profile"):
        resolve_profile("fastest", "cpu")


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (("--seed", "3"), lambda r, s: r.seed == 3 == s["seed"]),
        (("--steps", "3"), lambda r, s: r.sampler["steps"] == 3 == s["settings"]["steps"]),
        (("--samples", "3"), lambda r, s: r.sampler["samples"] == 3 == s["settings"]["samples"]),
        pytest.param(
            ("--prior", "gray"),
            lambda r, s: r.prior == "gray" == s["settings"]["prior"],
            marks=pytest.mark.slow,
        ),
        (("--tile", "48"), lambda r, s: r.tile == 48 == s["tile"]),
        (("--overlap", "8"), lambda r, s: r.overlap == 8),
        (("--looks", "2"), lambda r, s: r.looks == (2.0,) and s["looks"] == 2.0),
    ],
    ids=lambda v: v[0] if isinstance(v, tuple) else "",
)
def test_sampler_option_is_recorded_and_changes_the_pixels(invoke, crop, base, tmp_path, args, check) -> None:  # noqa: ANN001
    summary, pixels, rec = _run(invoke, crop, tmp_path / "o.tif", *DPS, *args)
    assert check(rec, summary)
    assert not np.allclose(pixels, base[1])


def test_batch_size_does_not_change_the_result(invoke, crop, base, tmp_path) -> None:
    summary, pixels, _ = _run(invoke, crop, tmp_path / "b1.tif", *DPS, "--batch", "1")
    assert summary["settings"]["max_batch"] == 1 and base[0]["settings"]["max_batch"] == 16
    assert np.allclose(pixels, base[1], rtol=1e-5, atol=1e-7)


def test_device_cpu(invoke, crop, base, tmp_path) -> None:
    summary, pixels, _ = _run(invoke, crop, tmp_path / "cpu.tif", *DPS, "--device", "cpu")
    assert summary["settings"]["device"] == "cpu"
    assert np.array_equal(pixels, base[1]) or base[0]["settings"]["device"] != "cpu"


def test_uncertainty_adds_a_std_band(invoke, crop, base, tmp_path) -> None:
    summary, pixels, rec = _run(invoke, crop, tmp_path / "u.tif", *DPS, "--uncertainty")
    assert rec.uncertainty and pixels.shape[0] == 2 and (pixels[1] > 0).mean() > 0.99
    assert np.allclose(pixels[0], base[1][0], rtol=1e-5)  # the mean band does not change
    res = invoke("despeckle", crop, tmp_path / "lee.tif", "--method", "lee", "--uncertainty")
    assert res.exit_code == 2 and "sampling method" in res.output


@pytest.mark.parametrize("window", [3, 7])
def test_window_reaches_the_filter(invoke, crop, tmp_path, window: int) -> None:
    summary, pixels, rec = _run(
        invoke, crop, tmp_path / "lee.tif", "--method", "lee", "--looks", "4", "--window", str(window)
    )
    assert rec.window == window == summary["window"] and rec.method == "lee"
    with rasterio.open(crop) as f:
        x = f.read(1).astype(np.float64)
    h = window // 2
    ref = apply_filter("lee", np.pad(x, h, mode="reflect"), None, 4.0, window)[h:-h, h:-h]
    assert np.allclose(pixels[0], ref, rtol=1e-5)


def test_sensor_sets_the_units(invoke, crop, tmp_path) -> None:
    summary, pixels, rec = _run(
        invoke, crop, tmp_path / "amp.tif", "--method", "lee", "--looks", "4", "--sensor", "sar-amplitude"
    )
    assert rec.units == "amplitude" == summary["units"]
    lib = despeckle_scene(crop, tmp_path / "lib.tif", "lee", looks=4.0, units="amplitude", progress=False)
    assert lib["units"] == "amplitude"
    with rasterio.open(tmp_path / "lib.tif") as f:
        assert np.allclose(f.read().astype(np.float64), pixels)
    _, intensity, _ = _run(invoke, crop, tmp_path / "int.tif", "--method", "lee", "--looks", "4")
    assert not np.allclose(intensity, pixels)


def test_text_output_and_overwrite(invoke, crop, tmp_path) -> None:
    out = tmp_path / "o.tif"
    res = invoke("despeckle", crop, out, "--method", "boxcar", "--looks", "4")
    assert res.exit_code == 0 and "boxcar" in res.stdout and "QA band 1: ratio mean" in res.stdout
    stamp = out.read_bytes()
    assert invoke("despeckle", crop, out, "--method", "lee", "--looks", "4").exit_code == 2
    assert out.read_bytes() == stamp
    assert invoke("despeckle", crop, out, "--method", "lee", "--looks", "4", "--overwrite").exit_code == 0
    assert out.read_bytes() != stamp


@pytest.mark.slow
def test_workers_run_on_a_local_cluster_with_the_same_result(invoke, crop, tmp_path) -> None:
    one = _run(invoke, crop, tmp_path / "one.tif", "--method", "lee", "--looks", "4", "--tile", "64")
    two = _run(
        invoke,
        crop,
        tmp_path / "two.tif",
        "--method",
        "lee",
        "--looks",
        "4",
        "--tile",
        "64",
        "--workers",
        "2",
    )
    assert two[0]["blocks"] == one[0]["blocks"] > 1
    assert np.array_equal(one[1], two[1])
