"""One contract for every method of the two registries (despeckle METHODS, FUSION_METHODS).

Every method is built through the registry's one call and run through the job the fronts use, on a
small crop. The contract: tiled equals untiled (exactly for deterministic methods; for samplers no
further apart than two draws with different seeds), nodata stays nodata, shape and dtype are kept,
the result is the same whatever units the input comes in, scale equivariance where the method claims
it, and an uncertainty band (or a seed that matters) only for methods that draw posterior samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from geodiff.apps.despeckle import METHODS, despeckle_scene
from geodiff.apps.fuse import FUSION_METHODS, FusionConfig, fuse_arrays, load_pair
from geodiff.errors import UncertaintyNotSupportedError
from sensors.units import from_intensity, to_intensity

DESPECKLERS = sorted(n for n in METHODS if not n.startswith("test-"))
SAMPLER = dict(prior="tiny", steps=2, samples=2, device="cpu")
UNITS = ("intensity", "amplitude", "db")


def _options(method: str) -> dict:
    return SAMPLER if METHODS[method].kind == "tiles" else {}


@pytest.fixture(scope="module")
def intensity(sample_scene: Path) -> np.ndarray:
    """A 64x96 Sentinel-1 VV intensity crop (1, H, W) float64."""
    with rasterio.open(sample_scene) as s:
        return s.read(window=Window(200, 150, 96, 64)).astype(np.float64)


def _write(path: Path, data: np.ndarray, sample_scene: Path, nodata: float | None = None) -> Path:
    from conftest import write_on_sample_grid

    return write_on_sample_grid(path, data, sample_scene, nodata=nodata)


def _despeckle(src: Path, out: Path, method: str, **kw) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    kw.setdefault("units", "intensity")
    despeckle_scene(src, out, method, looks=4.0, progress=False, **_options(method), **kw)
    with rasterio.open(out) as d:
        return d.read().astype(np.float64), d.profile


def _log_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.log(a / b))))


@pytest.mark.parametrize("method", DESPECKLERS)
class TestDespeckleContract:
    def test_tiled_equals_untiled(self, method, intensity, sample_scene, tmp_path) -> None:
        src = _write(tmp_path / "in.tif", intensity, sample_scene)
        tiled, _ = _despeckle(src, tmp_path / "t.tif", method, tile=32, overlap=8)
        whole, _ = _despeckle(src, tmp_path / "w.tif", method, tile=96, overlap=0)
        if not METHODS[method].samples:
            np.testing.assert_allclose(tiled, whole, rtol=1e-5)
            return
        other_draw, _ = _despeckle(src, tmp_path / "s.tif", method, tile=96, overlap=0, seed=1)
        assert _log_distance(tiled, whole) < 1.25 * _log_distance(other_draw, whole)
        assert tiled.mean() == pytest.approx(whole.mean(), rel=0.01)

    def test_nodata_kept_shape_and_dtype(self, method, intensity, sample_scene, tmp_path) -> None:
        y = intensity.copy()
        y[:, :8, :] = -9999.0
        y[:, 30:34, 40:44] = -9999.0
        src = _write(tmp_path / "in.tif", y, sample_scene, nodata=-9999.0)
        out, prof = _despeckle(src, tmp_path / "o.tif", method, tile=32, overlap=8)
        assert out.shape == y.shape and prof["dtype"] == "float32" and prof["nodata"] == -9999.0
        hole = y == -9999.0
        assert (out[hole] == -9999.0).all()
        assert np.isfinite(out[~hole]).all() and (out[~hole] > 0).all()

    def test_units_round_trip(self, method, intensity, sample_scene, tmp_path) -> None:
        outs = {}
        for units in UNITS:
            src = _write(tmp_path / f"{units}.tif", from_intensity(intensity, units), sample_scene)
            out, _ = _despeckle(src, tmp_path / f"o_{units}.tif", method, units=units, tile=32, overlap=8)
            outs[units] = to_intensity(out, units)
        for units in ("amplitude", "db"):
            # float32 dB / amplitude storage: a few 1e-3 at most
            np.testing.assert_allclose(outs[units], outs["intensity"], rtol=5e-3, err_msg=units)

    def test_scale_equivariance_in_intensity(self, method, intensity, sample_scene, tmp_path) -> None:
        """f(c I) = c f(I): speckle is multiplicative, so every method of the registry claims it."""
        ref, _ = _despeckle(_write(tmp_path / "1.tif", intensity, sample_scene), tmp_path / "o1.tif", method)
        for c in (1e-3, 1e3):
            src = _write(tmp_path / f"{c:g}.tif", c * intensity, sample_scene)
            out, _ = _despeckle(src, tmp_path / f"o{c:g}.tif", method)
            np.testing.assert_allclose(out / c, ref, rtol=2e-3, err_msg=f"c={c:g}")

    def test_uncertainty_only_for_samplers(self, method, intensity, sample_scene, tmp_path) -> None:
        src = _write(tmp_path / "in.tif", intensity, sample_scene)
        if not METHODS[method].samples:
            with pytest.raises(UncertaintyNotSupportedError, match="sampling method"):
                _despeckle(src, tmp_path / "o.tif", method, uncertainty=True)
            assert not (tmp_path / "o.tif").exists()
            return
        out, _ = _despeckle(src, tmp_path / "o.tif", method, uncertainty=True)
        assert out.shape == (2, *intensity.shape[1:]) and (out[1] > 0).all()


# ---- fusion ---------------------------------------------------------------------------------------
FUSION_BASE = FusionConfig(prior="tiny", steps=2, tile=64, overlap=0, device="cpu")


@pytest.fixture(scope="module")
def pair(shared_data: Path):  # noqa: ANN201 - a ScenePair: optical reflectance, SAR intensity
    from conftest import FUSION_PAIR

    p = load_pair(
        shared_data / FUSION_PAIR / "s2_B02_B03_B04_B08.tif", shared_data / FUSION_PAIR / "s1_VV_VH_db.tif"
    )
    return p.optical[:, :64, :64], p.sar[:64, :64], p.rgb


def _fuse(pair, method: str, sar=None, optical=None, sar_units: str = "intensity", **changes) -> np.ndarray:  # noqa: ANN001
    opt, s, rgb = pair
    config = FusionConfig.of(FUSION_BASE, method=method, **changes)
    sar = s if sar is None else sar
    return fuse_arrays(opt if optical is None else optical, sar, config, sar_units=sar_units, rgb=rgb)


@pytest.mark.parametrize("method", list(FUSION_METHODS))
class TestFusionContract:
    def test_tiled_equals_untiled(self, method, pair) -> None:
        whole = _fuse(pair, method)
        tiled = _fuse(pair, method, tile=32, overlap=8)
        if FUSION_METHODS[method].kind == "image":  # global methods are never tiled
            np.testing.assert_array_equal(tiled, whole)
            return
        other_draw = _fuse(pair, method, seed=1)
        # the fusion guidance is nearly deterministic (converged L1/TV prox from a classical start), so
        # another draw moves the result little; tiling may move it as much again, within 3 % (mean |log|)
        limit = max(1.25 * _log_distance(other_draw, whole), 0.03)
        assert _log_distance(tiled, whole) < limit

    def test_nodata_kept_shape_and_dtype(self, method, pair) -> None:
        opt, s, _ = pair
        opt = opt.copy()
        opt[:, :10, :] = np.nan
        sar = s.copy()
        sar[:, 48:] = np.nan
        out = _fuse(pair, method, sar=sar, optical=opt)
        assert out.shape == opt.shape and out.dtype == np.float64
        assert np.isnan(out[:, :10]).all() and np.isfinite(out[:, 10:]).all()
        np.testing.assert_array_equal(out[:, 10:, 48:], opt[:, 10:, 48:])  # no SAR: the optical stays

    def test_units_round_trip(self, method, pair) -> None:
        ref = _fuse(pair, method)
        for units in ("amplitude", "db"):
            sar = from_intensity(pair[1].astype(np.float64), units)
            np.testing.assert_allclose(
                _fuse(pair, method, sar=sar, sar_units=units), ref, rtol=1e-3, atol=1e-6
            )

    def test_scale_equivariance(self, method, pair) -> None:
        """Optical x c gives fused x c (optical units); SAR x c changes nothing (both are stretched)."""
        ref = _fuse(pair, method)
        np.testing.assert_allclose(_fuse(pair, method, optical=100.0 * pair[0]) / 100.0, ref, rtol=1e-4)
        np.testing.assert_allclose(_fuse(pair, method, sar=1e3 * pair[1]), ref, rtol=1e-4)

    def test_seed_matters_only_for_samplers(self, method, pair) -> None:
        same = np.array_equal(_fuse(pair, method), _fuse(pair, method, seed=7))
        assert same is not FUSION_METHODS[method].samples
