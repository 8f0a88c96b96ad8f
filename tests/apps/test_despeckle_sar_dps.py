"""`geodiff despeckle --method sar-dps` on whole GeoTIFFs: scale invariance, tiled == untiled, no seams,
uncertainty band, nodata, dB scenes, Ctrl-C. The tiny prior and a few steps keep it quick on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from rasterio.windows import Window

from geodiff.apps.despeckle import despeckle_scene
from geodiff.apps.despeckle.sar_dps import DEFAULTS, PROFILES, likelihood_looks, scene_scale
from geodiff.cli import cli
from geodiff.priors import load
from geodiff.priors.chunked import ChunkedPrior
from geodiff.solvers import SamplerConfig, SpeckleModel, sar_pnp
from tiling.plan import TilePlan, TileSpec

FAST = dict(prior="tiny", steps=2, samples=2, device="cpu")


def _write(
    path: Path, data: np.ndarray, src: Path, description: str = "VV gamma0 (linear power)", nodata=None
) -> Path:  # noqa: ANN001
    """A GeoTIFF with ``data`` (C, H, W) on the sample scene's CRS and a transform at its origin."""
    from conftest import write_on_sample_grid

    return write_on_sample_grid(path, data, src, nodata=nodata, description=description)


@pytest.fixture
def crop(sample_scene: Path) -> np.ndarray:
    """A 96x96 intensity crop of the bundled Sentinel-1 VV scene (float64, (1, H, W))."""
    with rasterio.open(sample_scene) as s:
        return s.read(window=Window(200, 150, 96, 96)).astype(np.float64)


def _read(p: Path) -> np.ndarray:
    with rasterio.open(p) as d:
        return d.read().astype(np.float64)


def test_result_scales_with_the_input(crop: np.ndarray, sample_scene: Path, tmp_path: Path) -> None:
    """despeckle(c y) = c despeckle(y) for c from 1e-3 to 1e4 (one scene scale, no per-tile guess)."""
    outs = {}
    for c in (1e-3, 1.0, 1e4):
        src = _write(tmp_path / f"in_{c:g}.tif", crop * c, sample_scene)
        out = tmp_path / f"out_{c:g}.tif"
        despeckle_scene(src, out, "sar-dps", looks=4.0, tile=64, overlap=16, progress=False, **FAST)
        outs[c] = _read(out) / c
    ref = outs[1.0]
    assert np.isfinite(ref).all() and ref.std() < crop.std()
    for c in (1e-3, 1e4):
        assert np.allclose(outs[c], ref, rtol=2e-3), (c, np.abs(outs[c] / ref - 1).max())


def test_one_tile_scene_equals_the_bare_solver(crop: np.ndarray, sample_scene: Path, tmp_path: Path) -> None:
    """A scene that fits in one tile: the app (tiling, I/O, scale) gives the solver's own result."""
    y = crop[:, :64, :64]
    src = _write(tmp_path / "in.tif", y, sample_scene)
    out = tmp_path / "out.tif"
    despeckle_scene(src, out, "sar-dps", looks=4.0, tile=64, overlap=0, seed=7, progress=False, **FAST)
    scale = scene_scale(y[0], np.ones(y.shape[1:], bool), 4.0, "tiny")
    plan = TilePlan(64, 64, TileSpec(tile=64, overlap=0, halo=0, block_tiles=4), seed=7)
    # the CPU default profile (balanced: PnP-ADMM + refinement) with FAST's steps and samples
    config = SamplerConfig.defaults(
        "sar_pnp", steps=2, samples=2, sigma0=DEFAULTS["sigma0"], init="lee", ensemble=True, newton_iters=1,
        mean_window=31, bright=0.9, zeta=DEFAULTS["zeta"], admm_iters=PROFILES["balanced"]["admm_iters"],
        admm_sigma=DEFAULTS["admm_sigma"], admm_decay=DEFAULTS["admm_decay"],
        looks_power=DEFAULTS["looks_power"], admm_ensemble=DEFAULTS["admm_ensemble"],
    )  # fmt: skip
    y_t = torch.tensor(y[None], dtype=torch.float32)
    lik = likelihood_looks(y[0], np.ones(y.shape[1:], bool), 4.0)
    net = ChunkedPrior(load("tiny"), chunk=1)  # the app's evaluation on the CPU: one tile per call
    res = sar_pnp(y_t, net, SpeckleModel(lik, scale), config, seeds=[plan.tile_seed(0, 0)])
    got, want = _read(out)[0], res.mean[0, 0].double().numpy()
    # the one-tile blend hook's float round trip at every ADMM iteration and step: ~1e-5 relative
    assert np.allclose(got, want, rtol=1e-3, atol=1e-7), np.abs(got / want - 1).max()


def test_scene_scale_keeps_the_bright_tail_in_the_prior_range() -> None:
    """scene_scale: the median rule, raised until the 0.999 quantile of the Lee amplitude is at most 0.9
    (prior units), by at most 1.5 times; checked against the solvers' Lee filter and numpy quantiles."""
    from geodiff.apps.despeckle.sar_dps import SCALE_RULE
    from geodiff.solvers.init import lee

    rng = np.random.default_rng(3)
    a = np.full((128, 128), 0.25)
    a[:4, :20] = 0.7  # 0.5 % of the pixels 2.8 times the median amplitude (a bright roof, not a point)
    y = a * a * rng.gamma(4.0, 1 / 4.0, size=a.shape)
    ok = np.ones(y.shape, bool)
    median = scene_scale(y, ok, 4.0, "tiny", quantile=None)
    amp2 = lee(torch.tensor(y[None, None], dtype=torch.float32), 4.0)[0, 0].numpy()
    want = float(np.quantile(amp2, SCALE_RULE["quantile"])) / SCALE_RULE["ceiling"] ** 2
    assert median < want < SCALE_RULE["cap"] * median  # the bright bound decides here
    assert scene_scale(y, ok, 4.0, "tiny") == pytest.approx(want, rel=1e-6)
    assert scene_scale(y * 1e3, ok, 4.0, "tiny") == pytest.approx(1e3 * want, rel=1e-4)  # scales with y
    flat = (0.25**2) * rng.gamma(4.0, 1 / 4.0, size=a.shape)  # no bright tail: the median rule alone
    assert scene_scale(flat, ok, 4.0, "tiny") == scene_scale(flat, ok, 4.0, "tiny", quantile=None)
    points = y.copy()
    points[::8, ::8] = 1e4  # 1.6 % strong point scatterers: the bound stops at cap x the median rule
    capped = scene_scale(points, ok, 4.0, "tiny")
    assert capped == pytest.approx(SCALE_RULE["cap"] * scene_scale(points, ok, 4.0, "tiny", quantile=None))


def test_profiles_trade_a_step_for_a_draw_from_two_looks() -> None:
    """balanced and best: one refinement step fewer and one draw more at L >= 2 (NFE kept), decided by
    the likelihood's looks; fast keeps its fields; explicit options win."""
    from geodiff.apps.despeckle.sar_dps import MANY_LOOKS, make_sar_dps, profile_settings

    assert profile_settings("balanced", 1.0) == PROFILES["balanced"]
    assert profile_settings("fast", 4.0) == {**PROFILES["fast"], "log_tweedie": 2}
    for name, (steps, samples) in {"balanced": (3, 4), "best": (4, 6)}.items():
        many, one = profile_settings(name, MANY_LOOKS), profile_settings(name, 1.9)
        assert (many["steps"], many["samples"]) == (steps, samples) and one == PROFILES[name]
        assert 0 <= one["steps"] * one["samples"] - many["steps"] * many["samples"] <= 1  # NFE kept
        assert many["admm_iters"] == one["admm_iters"] and many["sigma0"] == one["sigma0"]
    kw = dict(looks=4.0, window=7, units="intensity", scale=1.0, profile="balanced")
    assert (make_sar_dps(**kw).steps, make_sar_dps(**kw).samples) == (3, 4)
    correlated = make_sar_dps(**kw, likelihood_looks=1.2)  # L / S^0.7 < 2: the L = 1 fields
    assert (correlated.steps, correlated.samples) == (4, 3)
    assert make_sar_dps(**kw, steps=5).steps == 5 and make_sar_dps(**kw, steps=5).samples == 4


def test_many_looks_profiles_return_the_homomorphic_estimate() -> None:
    """From two looks on, every profile returns the log-amplitude Tweedie estimate (8 orientations for
    balanced and best, 2 for fast); below, and with --uncertainty or explicit steps/draws, the sampler."""
    from geodiff.apps.despeckle.sar_dps import make_sar_dps

    kw = dict(looks=4.0, window=7, units="intensity", scale=1.0)
    assert make_sar_dps(**kw, profile="balanced").solver == "log_tweedie"
    assert make_sar_dps(**kw, profile="balanced").sampler_config().log_tweedie == 8
    assert make_sar_dps(**kw, profile="fast").sampler_config().log_tweedie == 2
    assert make_sar_dps(**kw, profile="balanced", likelihood_looks=1.2).solver == "sar_pnp"
    assert make_sar_dps(**kw, profile="balanced", uncertainty=True).solver == "sar_pnp"
    assert make_sar_dps(**kw, profile="balanced", uncertainty=True).sampler_config().log_tweedie == 0
    assert make_sar_dps(**kw, profile="balanced", samples=2).solver == "sar_pnp"
    # asked for explicitly below two likelihood looks (far from Gaussian log-speckle): the sampler runs
    low = make_sar_dps(**{**kw, "looks": 1.0}, profile="balanced", log_tweedie=8)
    assert low.solver == "sar_pnp" and low.sampler_config().log_tweedie == 0


def _border_ratio(img: np.ndarray, borders: list[int]) -> float:
    """Mean |horizontal gradient| across the given columns over the mean everywhere else."""
    g = np.abs(np.diff(np.log(img), axis=1))
    at = np.zeros(g.shape[1], bool)
    for b in borders:
        at[b - 1] = True  # the step between columns b-1 and b
    return float(g[:, at].mean() / g[:, ~at].mean())


def test_multi_tile_scene_has_no_seams(sample_scene: Path, tmp_path: Path) -> None:
    with rasterio.open(sample_scene) as s:
        y = s.read(window=Window(0, 0, 256, 128)).astype(np.float64)
    src = _write(tmp_path / "in.tif", y, sample_scene)
    out = tmp_path / "out.tif"
    despeckle_scene(src, out, "sar-dps", looks=4.0, tile=64, overlap=16, progress=False, **FAST)
    x = _read(out)[0]
    stride = 64 - 16
    # tile edges (where a tile starts or ends) across the width: a seam shows as a gradient jump
    edges = sorted({c for k in range(1, 6) for c in (k * stride, k * stride + 16) if 0 < c < 256})
    ratio = _border_ratio(x, edges)
    assert 0.8 < ratio < 1.2, ratio


def test_uncertainty_band_and_nodata(crop: np.ndarray, sample_scene: Path, tmp_path: Path) -> None:
    y = crop.copy()
    y[:, :10, :] = -9999.0  # a nodata strip
    src = _write(tmp_path / "in.tif", y, sample_scene, nodata=-9999.0)
    out = tmp_path / "out.tif"
    s = despeckle_scene(src, out, "sar-dps", looks=4.0, tile=64, overlap=16, uncertainty=True, progress=False,
                        **FAST)  # fmt: skip
    with rasterio.open(out) as d:
        assert d.count == 2 and d.descriptions == (
            "VV gamma0 (linear power)",
            "VV gamma0 (linear power) posterior std",
        )
        assert d.nodata == -9999.0
        est, std = d.read().astype(np.float64)
        qa = json.loads(d.tags()["GEODIFF_QA"])[0]
    assert (est[:10] == -9999.0).all() and (std[:10] == -9999.0).all()
    assert (est[10:] > 0).all() and (std[10:] >= 0).all() and std[10:].mean() > 0
    assert s["qa"][0]["ratio_mean"] == qa["ratio_mean"] and abs(qa["ratio_mean"] - 1) < 0.2


def test_db_scene_without_looks_is_handled(crop: np.ndarray, sample_scene: Path, tmp_path: Path) -> None:
    """--sensor auto and no --looks on a dB scene: units detected, looks estimated, output in dB."""
    src = _write(tmp_path / "db.tif", 10 * np.log10(crop), sample_scene, description="Sigma0_VV_db")
    out = tmp_path / "out.tif"
    res = CliRunner().invoke(
        cli,
        [
            "despeckle",
            str(src),
            str(out),
            "--prior",
            "tiny",
            "--steps",
            "2",
            "--samples",
            "2",
            "--tile",
            "64",
            "--device",
            "cpu",
            "--json",
        ],  # fmt: skip
        env={"GEODIFF_PROGRESS": "none"},
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["units"] == "db" and 2 < summary["looks"] < 8
    x = _read(out)[0]
    assert -40 < x.mean() < 10 and x.std() < (10 * np.log10(crop)).std()


def test_cuda_on_a_cpu_machine_is_a_clear_error(crop: np.ndarray, sample_scene: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    src = _write(tmp_path / "in.tif", crop, sample_scene)
    res = CliRunner().invoke(cli, ["despeckle", str(src), str(tmp_path / "o.tif"), "--device", "cuda"])
    assert res.exit_code == 2 and "CUDA is not available" in res.output
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_output(sample_scene: Path, tmp_path: Path) -> None:
    """SIGINT in mid-run: exit non-zero, nothing under the final name, temporary files removed (only
    the finished blocks of the resume state may stay)."""
    out = tmp_path / "out.tif"
    cmd = [sys.executable, "-m", "geodiff.cli", "despeckle", str(sample_scene), str(out), "--prior", "tiny",
           "--steps", "50", "--samples", "4", "--tile", "64", "--device", "cpu"]  # fmt: skip
    env = dict(os.environ, GEODIFF_PROGRESS="none")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".part.tif") for p in tmp_path.iterdir()):
        time.sleep(0.2)
    assert any(p.name.endswith(".part.tif") for p in tmp_path.iterdir()), "the run never started writing"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    # the finished blocks may stay for the next run to continue from (tests/reliability/test_resume.py)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], [".out.tif.resume"]), err.decode()[-500:]


def test_negative_intensities_keep_the_local_mean(sample_scene: Path, tmp_path: Path) -> None:
    """Thermal-noise-subtracted sigma0 with ~5 % negative samples: valid noisy samples, never a negative
    output, the darkest decile's mean kept (a clamp at 0 or dropping them brightens it)."""
    from scipy.ndimage import uniform_filter

    with rasterio.open(sample_scene) as s:
        clean = s.read(1, window=Window(200, 150, 128, 128)).astype(np.float64)
    e = np.random.default_rng(5).exponential(1.0, clean.shape) - 1.0
    lo, hi = 0.0, float(clean.max())
    for _ in range(40):  # the noise floor that makes 5 % of the samples negative
        nf = (lo + hi) / 2
        lo, hi = (nf, hi) if ((clean + nf * e) < 0).mean() < 0.05 else (lo, nf)
    y = clean + nf * e
    assert 0.04 < (y < 0).mean() < 0.06
    src = _write(tmp_path / "sigma0.tif", y[None], sample_scene, description="Sigma0_VV")
    out = tmp_path / "out.tif"
    despeckle_scene(
        src, out, "sar-dps", looks=4.4, tile=64, overlap=16, units="intensity", progress=False, **FAST
    )
    x = _read(out)[0]
    assert np.isfinite(x).all() and (x >= 0).all()
    # the darkest decile of the local mean over the 31-px window the sampler keeps the radiometry on
    # (DEFAULTS["mean_window"]); on a 9-px scale every smoother moves dark features (see bench/README.md)
    local = uniform_filter(clean, 31)
    dark = local <= np.quantile(local, 0.1)
    assert x[dark].mean() == pytest.approx(y[dark].mean(), rel=0.02)


def test_likelihood_looks_on_a_small_scene_see_the_speckle_correlation() -> None:
    """A 128 x 128 scene (four 32 x 32 blocks, e.g. a BigEarthNet Sentinel-1 patch) gets L / S^0.7 from
    its measured correlation (it used to keep L below 16 blocks); white speckle of the same size keeps
    about L; below four blocks the scene keeps L."""
    from scipy import signal

    from geodiff.apps.despeckle.sar_dps import CORRELATION_RULE

    rng = np.random.default_rng(11)
    k = np.exp(-0.5 * (np.arange(-4, 5)[:, None] ** 2 + np.arange(-4, 5)[None] ** 2))  # width 1 px: S ~ 6
    looks = 4
    corr = sum(np.abs(signal.fftconvolve(rng.normal(size=(128, 128)) + 1j * rng.normal(size=(128, 128)), k,
                                         mode="same")) ** 2 for _ in range(looks))  # fmt: skip
    white = rng.gamma(looks, 1.0 / looks, (128, 128))
    ok = np.ones((128, 128), bool)
    assert CORRELATION_RULE == {"power": 0.7, "min_blocks": 4}
    lik = likelihood_looks(corr / corr.mean(), ok, float(looks))
    assert lik < looks / 2.5  # S ~ 6: L / (S - 0.1)^0.7 ~ 1.1
    assert likelihood_looks(white, ok, float(looks)) == pytest.approx(looks, rel=0.2)
    assert likelihood_looks(corr[:60, :60] / corr.mean(), ok[:60, :60], float(looks)) == float(looks)


def _single_look(shape: tuple[int, int], seed: int, taps: int) -> np.ndarray:
    """Single-look intensity of a flat scene; ``taps`` > 1 correlates neighbouring pixels like an SLC's
    spectral window (a moving sum of the complex field: intensity lag-1 correlation ((taps - 1) / taps)^2)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    if taps > 1:
        k = np.ones((taps, taps)) / taps
        field = ndimage.convolve(field.real, k, mode="wrap") + 1j * ndimage.convolve(
            field.imag, k, mode="wrap"
        )
    inten = np.abs(field) ** 2
    return inten / inten.mean()


def test_blind_spot_radius_follows_the_speckle_correlation() -> None:
    """White speckle: radius 0 (the pixel alone); SLC-like correlation (lag 1 ~0.44, lag 2 ~0.11): 1."""
    from geodiff.apps.despeckle.sar_dps import blind_spot_radius

    ok = np.ones((256, 256), bool)
    assert blind_spot_radius(_single_look((256, 256), 3, 1), ok, 1.0) == 0
    assert blind_spot_radius(_single_look((256, 256), 3, 3), ok, 1.0) == 1
    assert blind_spot_radius(_single_look((40, 40), 3, 3), ok[:40, :40], 1.0) == 1  # not measurable: 1


def test_blind_spot_estimate_through_the_cli(sample_scene: Path, tmp_path: Path, invoke) -> None:  # noqa: ANN001
    """`--estimator blind-spot`: the record names the solver and radius; the estimate of a pixel does not
    move when that pixel's data does, across a seam of overlapping tiles (the posterior mean's does);
    with --uncertainty or --samples it is refused (exit 2, the fix named)."""
    y = _single_look((96, 96), 5, 1)[None] * 0.05
    src = _write(tmp_path / "in.tif", y, sample_scene)
    p = (40, 45)  # inside the overlap of the first two tiles (tile 48, overlap 15: 33..48; odd stride)
    bumped = y.copy()
    bumped[0, p[0], p[1]] *= 6.0
    src2 = _write(tmp_path / "in2.tif", bumped, sample_scene)
    common = ["--looks", "1", "--tile", "48", "--overlap", "15", "--prior", "tiny"]
    outs = {}
    for est in ("blind-spot", "posterior-mean"):
        for name, s in (("a", src), ("b", src2)):
            res = invoke("despeckle", s, tmp_path / f"{est}_{name}.tif", "--estimator", est, *common)
            assert res.exit_code == 0, res.output
            outs[est, name] = _read(tmp_path / f"{est}_{name}.tif")[0]
    with rasterio.open(tmp_path / "blind-spot_a.tif") as d:
        record = json.loads(d.tags()["GEODIFF_DESPECKLE"])
    assert record["solver"] == "sar_blind_spot" and record["blind_spot_radius"] == [0]
    assert record["estimator"] == "blind-spot"
    own = outs["blind-spot", "b"][p] / outs["blind-spot", "a"][p]
    assert abs(own - 1) < 0.01, own  # the local-mean factor reads y_p with a weight of ~1e-3
    assert outs["posterior-mean", "b"][p] / outs["posterior-mean", "a"][p] > 1.1
    res = invoke("despeckle", src, tmp_path / "u.tif", "--estimator", "blind-spot", "--uncertainty", *common)
    assert (
        res.exit_code == 2 and "posterior draws" in res.output and "--estimator posterior-mean" in res.output
    )
    res = invoke("despeckle", src, tmp_path / "s.tif", "--estimator", "blind-spot", "--samples", "8", *common)
    assert res.exit_code == 2 and "--samples do not apply" in res.output
    res = invoke("despeckle", src, tmp_path / "l.tif", "--estimator", "blind-spot", "--method", "lee")
    assert res.exit_code == 2 and "classical filter" in res.output


def test_blind_spot_settings_in_the_python_api() -> None:
    """The API refuses a radius without the blind-spot estimate, names the Python keywords in its errors,
    and records the estimate in the result's attrs."""
    import xarray as xr

    import geodiff
    from geodiff.errors import InvalidSettingError

    y = _single_look((64, 64), 7, 1).astype(np.float32)
    with pytest.raises(InvalidSettingError, match="estimator='blind-spot'"):
        geodiff.despeckle(y, units="intensity", looks=1.0, blind_spot_radius=1)
    with pytest.raises(InvalidSettingError, match="uncertainty= / estimator= in the Python API"):
        geodiff.despeckle(y, units="intensity", looks=1.0, estimator="blind-spot", uncertainty=True)
    da = xr.DataArray(y, dims=("y", "x"), attrs={"units": "intensity"})
    out = da.geodiff.despeckle(looks=1.0, estimator="blind-spot", prior="tiny", progress=False)
    assert out.attrs["geodiff_estimator"] == "blind-spot" and np.isfinite(out.values).all()
