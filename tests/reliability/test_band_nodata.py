"""Each band's own nodata is honoured: a 2-band VRT with nodata -1 on band 1 and -2 on band 2.

Before the fix the output had one nodata value (-1, band 1's) and band 2's nodata pixels (-2) were
filtered as if valid, coming out as valid-looking values (mean 1.77).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability.scenes import speckled, write_scene


def _two_band_vrt(tmp: Path) -> tuple[Path, np.ndarray]:
    a, b = speckled(64, 64, seed=1), speckled(64, 64, seed=2)
    a[:10], b[:, :12] = -1.0, -2.0  # band 1: rows 0-9 nodata; band 2: columns 0-11 nodata
    src = write_scene(tmp / "two.tif", np.stack([a, b]))
    with rasterio.open(src) as ds:
        from rasterio.vrt import _boundless_vrt_doc

        doc = _boundless_vrt_doc(ds)
    band_blocks = doc.split("<VRTRasterBand")
    for i, nd in ((1, -1), (2, -2)):  # each band its own NoDataValue
        band_blocks[i] = band_blocks[i].replace(">", f"><NoDataValue>{nd}</NoDataValue>", 1)
    vrt = tmp / "two.vrt"
    vrt.write_text("<VRTRasterBand".join(band_blocks))
    with rasterio.open(vrt) as ds:
        assert ds.nodatavals == (-1.0, -2.0)
    return vrt, np.stack([a, b])


@pytest.mark.parametrize("method", ["lee", "boxcar"])
def test_each_band_keeps_its_own_nodata(invoke, tmp_path: Path, method: str) -> None:
    vrt, data = _two_band_vrt(tmp_path)
    out = tmp_path / "out.tif"
    res = invoke("despeckle", vrt, out, "--method", method, "--units", "intensity", "--looks", "4")
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as ds:
        got = ds.read(masked=True)
        assert ds.nodata is not None
    band1_nodata, band2_nodata = data[0] == -1, data[1] == -2
    assert got.mask[0][band1_nodata].all() and not got.mask[0][~band1_nodata].any()
    assert got.mask[1][band2_nodata].all() and not got.mask[1][~band2_nodata].any()
    assert (got.compressed() > 0).all()  # no nodata value was filtered into a valid-looking one
