"""Same input, seed and settings: bit-identical output whatever the network batch (``--batch``).

Before the fix ``--batch 16`` vs ``1`` or ``3`` changed the output bits (up to 3.6e-6 relative): the
batch size picks the convolution kernels' blocking. Every network evaluation now has the same fixed
batch (geodiff.priors.chunked.EVAL_CHUNK).
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
