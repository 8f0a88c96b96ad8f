"""Same input, seed and settings: bit-identical output whatever the network batch (``--batch``),
the worker count (``--workers``) and the machine's thread count.

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
DPS = [
    "--units",
    "intensity",
    "--looks",
    "4",
    "--steps",
    "2",
    "--samples",
    "2",
    "--tile",
    "32",
    "--overlap",
    "8",
]


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_batch_size_does_not_change_a_bit(invoke, tmp_path: Path) -> None:
    import geodiff

    src = write_scene(tmp_path / "in.tif", speckled(80, 80))
    outs = {}
    for batch in (1, 3, 16):
        out = tmp_path / f"b{batch}.tif"
        res = invoke("despeckle", src, out, *DPS, "--batch", str(batch))
        assert res.exit_code == 0, res.output
        outs[batch] = _pixels(out)
    api = tmp_path / "api.tif"
    geodiff.despeckle(
        src, api, units="intensity", looks=4, steps=2, samples=2, tile=32, overlap=8, progress=False
    )
    outs["api"] = _pixels(api)
    for key, got in outs.items():
        assert np.array_equal(got, outs[16]), f"{key}: max diff {np.nanmax(np.abs(got - outs[16]))}"


def test_workers_and_threads_do_not_change_a_bit(invoke, tmp_path: Path) -> None:
    import torch

    src = write_scene(tmp_path / "in.tif", speckled(80, 80))
    outs = {}
    threads = torch.get_num_threads()
    try:
        for n in (1, 4):  # in-process, as on a 1-core and on a 4-core machine
            torch.set_num_threads(n)
            out = tmp_path / f"threads{n}.tif"
            assert invoke("despeckle", src, out, *DPS).exit_code == 0
            outs[f"threads {n}"] = _pixels(out)
    finally:
        torch.set_num_threads(threads)
    for args in (["--workers", "2"], ["--workers", "2", "--batch", "4"]):  # dask workers: processes
        out = tmp_path / "workers.tif"
        res = invoke("despeckle", src, out, *DPS, *args, "--overwrite")
        assert res.exit_code == 0, res.output
        outs[" ".join(args)] = _pixels(out)
    ref = outs["threads 1"]
    for key, got in outs.items():
        assert np.array_equal(got, ref), f"{key}: max diff {np.nanmax(np.abs(got - ref))}"
