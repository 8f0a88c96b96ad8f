"""The fusion posterior std: an extra band of a real GeoTIFF, its description, dtype and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodiff.apps.fuse import FusionConfig, fuse_arrays, fuse_scene
from geodiff.apps.fuse.scene import UNCERTAINTY_BAND

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_fused_scene_gets_a_posterior_std_band(fusion_pair, tmp_path) -> None:
    opt, sar = fusion_pair
    out = tmp_path / "fused_std.tif"
    summary = fuse_scene(
        opt, sar, out, prior="tiny", steps=2, samples=3, uncertainty=True, tile=64, overlap=16, prox_iters=20
    )
    assert summary["uncertainty"] is True and summary["samples"] == 3
    with rasterio.open(out) as f, rasterio.open(opt) as o:
        assert f.count == o.count + 1 and f.dtypes[-1] == o.dtypes[0]
        assert (f.crs, f.transform) == (o.crs, o.transform)
        assert f.descriptions[-1] == UNCERTAINTY_BAND
        assert f.descriptions[: o.count] == tuple(d or f"band {i + 1}" for i, d in enumerate(o.descriptions))
        std = f.read(f.count).astype(float)
        fused = f.read(list(range(1, o.count + 1)))
    assert (std >= 0).all() and (std > 0).mean() > 0.2  # draws differ
    # the fused bands are those of the same run without the band (the std does not change the mean)
    plain = fuse_scene(
        opt, sar, tmp_path / "plain.tif", prior="tiny", steps=2, samples=3, tile=64, overlap=16, prox_iters=20
    )
    assert plain["uncertainty"] is False
    with rasterio.open(tmp_path / "plain.tif") as f:
        assert np.array_equal(f.read(), fused)


def test_arrays_return_mean_and_std(fusion_pair) -> None:
    opt, sar = fusion_pair
    with rasterio.open(opt) as o, rasterio.open(sar) as s:
        optical, vv = o.read().astype(float), s.read(1)
    mean, std = fuse_arrays(
        optical, vv, sar_units="db", prior="tiny", steps=2, samples=2, uncertainty=True, prox_iters=20
    )
    assert mean.shape == optical.shape and std.shape == optical.shape[1:]
    assert np.nanmax(std) > 0 and np.nanmin(std) >= 0


def test_uncertainty_needs_draws_and_a_sampler(invoke, fusion_pair, tmp_path) -> None:
    with pytest.raises(ValueError, match="--samples >= 2"):
        FusionConfig(samples=1, uncertainty=True)
    with pytest.raises(ValueError, match="sampling method"):
        FusionConfig(method="laplacian", samples=4, uncertainty=True)
    out = tmp_path / "x.tif"
    res = invoke("fuse", *fusion_pair, out, "--uncertainty")
    assert res.exit_code == 2 and "--samples >= 2" in res.output
    res = invoke("fuse", *fusion_pair, out, "--method", "pca", "--samples", "4", "--uncertainty")
    assert res.exit_code == 2 and "sampling method" in res.output
    assert not out.exists()


@pytest.mark.parametrize("method", ["dps", "laplacian"])
def test_optical_gaps_fall_back_to_the_sar_estimate_flagged(fusion_pair, tmp_path, method) -> None:
    """An optical nodata hole (a cloud mask written as nodata): --fill-gaps writes the SAR-driven
    estimate there and flags it (2) in a last band; outside, the pixels are those of the run without."""
    from geodiff.apps.fuse.scene import GAP_BAND

    opt, sar = fusion_pair
    with rasterio.open(opt) as ds:
        prof, data, names = ds.profile, ds.read(), ds.descriptions
    data[:, 20:60, 30:80] = 0
    prof.update(nodata=0)
    holed = tmp_path / "s2_holed.tif"
    with rasterio.open(holed, "w", **prof) as f:
        f.write(data)
        f.descriptions = names
    kw = {"method": method, "prior": "tiny", "steps": 1, "tile": 64, "overlap": 16, "prox_iters": 10}
    fuse_scene(holed, sar, tmp_path / "gaps.tif", fill_gaps=True, **kw)
    fuse_scene(holed, sar, tmp_path / "plain.tif", **kw)
    with rasterio.open(tmp_path / "gaps.tif") as f, rasterio.open(tmp_path / "plain.tif") as p:
        assert (
            f.count == p.count + 1 and f.descriptions[-1] == GAP_BAND and f.dtypes == (*p.dtypes, p.dtypes[0])
        )
        assert (f.crs, f.transform, f.nodata) == (p.crs, p.transform, p.nodata)
        filled, src, plain = f.read()[:-1], f.read(f.count), p.read()
    hole = np.zeros(src.shape, bool)
    hole[20:60, 30:80] = True
    assert (src[hole] == 2).all() and (src[~hole] == 1).all()
    assert (plain[:, hole] == 0).all() and (filled[:, hole] > 0).all()  # nodata before, estimated now
    assert np.array_equal(filled[:, ~hole], plain[:, ~hole])
    # the estimate follows the SAR: brighter SAR, brighter estimate (a positive or negative line, never flat)
    with rasterio.open(sar) as s:
        vv = s.read(1)[hole]
    assert abs(np.corrcoef(filled[3][hole].astype(float), vv)[0, 1]) > 0.3
