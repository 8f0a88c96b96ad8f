"""Priors building blocks: schedule conversions, UNet shapes, amplitude-domain data loading."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.transform import from_origin

from geodiff.priors import schedule as S
from geodiff.priors.data import CropSampler, expand_sources, load_amplitude
from geodiff.priors.unet import UNet, UNetConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cosine_schedule_and_prediction_conversions_round_trip():
    abar = S.make_schedule("cosine", 1000)
    assert abar.shape == (1000,) and abar[0] > 0.9999 and abar[-1] < 1e-4
    assert bool((abar[1:] < abar[:-1]).all())
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 400, 999])  # float64: the conversions divide by sqrt(1-abar_0) ~ 0.006
    a_t = S.abar_at(abar, t, x0)
    x_t = S.q_sample(a_t, x0, eps)
    torch.testing.assert_close(S.to_eps("eps", eps, x_t, None), eps)
    torch.testing.assert_close(S.to_eps("x0", x0, x_t, a_t), eps)
    torch.testing.assert_close(S.to_eps("v", S.v_target(x0, eps, a_t), x_t, a_t), eps)
    torch.testing.assert_close(S.tweedie_x0(x_t, eps, a_t), x0)
    # the loop's host-float path is the same formula: per-image floats give the same result
    for i, ti in enumerate(t.tolist()):
        a_f = float(abar[ti])
        torch.testing.assert_close(S.tweedie_x0(x_t[i], eps[i], a_f), x0[i])
        torch.testing.assert_close(S.q_sample(a_f, x0[i], eps[i]), x_t[i])
        torch.testing.assert_close(S.eps_from_x0(x_t[i], x0[i], a_f), eps[i])
    with pytest.raises(ValueError, match="prediction"):
        S.to_eps("score", eps, x_t, a_t)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        S.make_schedule("nope")


def test_t_for_sigma_matches_noise_to_signal_ratio():
    abar = S.make_schedule("cosine")
    for sigma in (0.05, 0.2, 0.8):
        t = S.t_for_sigma(abar, sigma)
        ratio = float(((1 - abar[t]) / abar[t]).sqrt())
        assert abs(ratio - sigma) / sigma < 0.02
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            S.t_for_sigma(abar, bad)


@pytest.mark.parametrize("mult,shape", [([1, 2], (2, 6)), ([1, 2, 2], (8, 12)), ([1, 2, 4], (16, 4))])
def test_unet_any_stride_multiple(mult, shape):
    net = UNet(UNetConfig(width=8, channel_mult=mult))
    assert net.stride == 2 ** (len(mult) - 1)
    x = torch.randn(2, 1, *shape)
    assert net(x, torch.tensor([3, 700])).shape == x.shape
    with pytest.raises(ValueError, match="multiple of the network stride"):
        net(torch.randn(1, 1, shape[0] + 1, shape[1]), torch.tensor([3]))


def test_unet_time_conditioning_changes_output():
    torch.manual_seed(0)
    net = UNet(UNetConfig(width=8, channel_mult=[1, 2]))
    for p in net.parameters():  # break the zero init so the output depends on everything
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 1, 8, 8)
    assert not torch.allclose(net(x, torch.tensor([1])), net(x, torch.tensor([900])))


def test_uint8_and_float_amplitude_mapping(tmp_path):
    g = np.array([[0, 127], [254, 255]], np.uint8)
    Image.fromarray(g).save(tmp_path / "g.png")
    np.testing.assert_allclose(load_amplitude(tmp_path / "g.png").amp, (g + 1.0) / 256, rtol=1e-6)
    r = np.array([[1.0, 2.0], [4.0, 8.0]], np.float32)
    np.save(tmp_path / "r.npy", r)
    np.testing.assert_allclose(load_amplitude(tmp_path / "r.npy").amp, r / 8)


def test_geotiff_nodata_never_enters_crops_and_uint16_is_scaled(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4000, (3, 64, 64)).astype(np.uint16)
    data[:, :, :20] = 0  # nodata border
    p = tmp_path / "o.tif"
    prof = dict(
        driver="GTiff",
        width=64,
        height=64,
        count=3,
        dtype="uint16",
        nodata=0,
        crs="EPSG:32632",
        transform=from_origin(0, 0, 10, 10),
    )
    with rasterio.open(p, "w", **prof) as ds:
        ds.write(data)
    im = load_amplitude(p)
    assert im.valid is not None and not im.valid[:, :20].any() and im.valid[:, 20:].all()
    assert 0 <= im.amp.min() and im.amp.max() <= 1 and im.amp[im.valid].max() > 0.95
    s = CropSampler([im], tile=16, seed=1)
    for _ in range(50):
        assert (s.crop() > 0).all()  # nodata pixels map to amplitude 0 and are never sampled
    with pytest.raises(ValueError, match="smaller --tile"):
        CropSampler([im], tile=128)


def test_expand_sources_excludes_and_reports_missing(tmp_path):
    for n in ("01899.jpg", "01900.jpg", "01949.jpg", "01950.jpg"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / n)
    names = [f.name for f in expand_sources([tmp_path], exclude=["019[0-4]?.jpg"])]
    assert names == ["01899.jpg", "01950.jpg"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        expand_sources([tmp_path / "nope"])
