"""Same input, seed and settings: bit-identical output whatever the network batch (``--batch``),
the worker count (``--workers``), the machine's thread count and the front (CLI, Python API, xarray
accessor), with the default sampler (SAR-DPS's PnP-ADMM ``balanced`` profile, no option changed).

Before the fix ``--batch 16`` vs ``1`` or ``3`` changed the output bits (up to 3.6e-6 relative): the
batch size picks the convolution kernels' blocking. Every network evaluation now has the same fixed
batch (geodiff.priors.chunked.EVAL_CHUNK). ``--workers 2`` vs in-process changed them too (up to 7e-7
on half of the pixels): a dask worker runs torch with 1 thread, an in-process run with all of them,
and oneDNN's 1x1 convolution sums differently per thread count; the runner now runs every tile call
with a fixed count (tiling.runner.torch_threads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability.scenes import speckled, write_scene

pytestmark = pytest.mark.slow
#: the default sampler (no --profile, --steps or --samples: sar_pnp, "balanced" on the CPU) on 32 px
#: tiles; only the scene and its tiles are small. One look: from two on the profiles return the
#: homomorphic one-step estimate, which has no draws (its own check is the last test here)
ARGS = ["--units", "intensity", "--looks", "1", "--tile", "32", "--overlap", "8"]
KWARGS = {"units": "intensity", "looks": 1, "tile": 32, "overlap": 8}


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _same(outs: dict, ref_key: object) -> None:
    ref = outs[ref_key]
    for key, got in outs.items():
        assert got.dtype == ref.dtype and got.shape == ref.shape, key
        assert np.array_equal(got, ref), f"{key}: max diff {np.nanmax(np.abs(got - ref))}"


def test_the_default_sampler_runs_here(invoke, tmp_path: Path) -> None:
    """The runs below use the default solver and profile (what the output's tags record)."""
    import json

    src = write_scene(tmp_path / "in.tif", speckled(24, 24))
    res = invoke("despeckle", src, tmp_path / "o.tif", *ARGS, "--tile", "24", "--overlap", "0")
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "o.tif") as ds:
        record = json.loads(ds.tags()["GEODIFF_DESPECKLE"])
    assert record["solver"] == "sar_pnp" and record["profile"] == "balanced", record


def test_batch_size_and_front_do_not_change_a_bit(invoke, tmp_path: Path) -> None:
    import rioxarray

    import geodiff

    src = write_scene(tmp_path / "in.tif", speckled(56, 56))  # 2 x 2 tiles of 32 px, 3 draws each
    outs = {}
    for batch in (1, 3, 16, 64):
        out = tmp_path / f"b{batch}.tif"
        res = invoke("despeckle", src, out, *ARGS, "--batch", str(batch))
        assert res.exit_code == 0, res.output
        outs[f"--batch {batch}"] = _pixels(out)
    api = tmp_path / "api.tif"
    geodiff.despeckle(src, api, progress=False, **KWARGS)
    outs["API, file"] = _pixels(api)
    arr = rioxarray.open_rasterio(src).isel(band=0).values
    outs["API, numpy"] = np.asarray(geodiff.despeckle(arr, **KWARGS), np.float32)[None]
    da = rioxarray.open_rasterio(src).isel(band=0)
    outs["accessor"] = np.asarray(da.geodiff.despeckle(**KWARGS).values, np.float32)[None]
    _same(outs, "--batch 16")


def test_workers_and_threads_do_not_change_a_bit(invoke, tmp_path: Path) -> None:
    import torch

    src = write_scene(tmp_path / "in.tif", speckled(112, 56))  # 2 blocks of 4 x 4 tiles (32 px)
    outs = {}
    threads = torch.get_num_threads()
    try:
        for n in (1, 4):  # in-process, as on a 1-core and on a 4-core machine
            torch.set_num_threads(n)
            out = tmp_path / f"threads{n}.tif"
            assert invoke("despeckle", src, out, *ARGS).exit_code == 0
            outs[f"threads {n}"] = _pixels(out)
    finally:
        torch.set_num_threads(threads)
    for args in (["--workers", "1"], ["--workers", "2"], ["--workers", "4", "--batch", "4"]):
        out = tmp_path / "workers.tif"  # --workers > 1: dask worker processes
        res = invoke("despeckle", src, out, *ARGS, *args, "--overwrite")
        assert res.exit_code == 0, res.output
        outs[" ".join(args)] = _pixels(out)
    _same(outs, "threads 1")


def test_the_many_looks_estimate_repeats_exactly(invoke, tmp_path: Path) -> None:
    """At four looks the default is the homomorphic estimate (log_tweedie): the same bits for any
    --batch and through the API."""
    import json

    import geodiff

    src = write_scene(tmp_path / "in.tif", speckled(56, 56))
    args = [*ARGS]
    args[args.index("--looks") + 1] = "4"
    outs = {}
    for batch in (1, 16):
        out = tmp_path / f"b{batch}.tif"
        res = invoke("despeckle", src, out, *args, "--batch", str(batch))
        assert res.exit_code == 0, res.output
        outs[f"--batch {batch}"] = _pixels(out)
    with rasterio.open(tmp_path / "b1.tif") as ds:
        assert json.loads(ds.tags()["GEODIFF_DESPECKLE"])["solver"] == "log_tweedie"
    geodiff.despeckle(src, tmp_path / "api.tif", progress=False, **{**KWARGS, "looks": 4})
    outs["api"] = _pixels(tmp_path / "api.tif")
    _same(outs, "--batch 1")
