"""Optical colour handling: RGB band selection and colour restoration around a fused luminance."""

from __future__ import annotations

import numpy as np

from sensors.colour import luminance, restore_colour, rgb_band_indices


def test_rgb_band_selection() -> None:
    assert rgb_band_indices(("B02", "B03", "B04", "B08"), 4) == (2, 1, 0)  # BigEarthNet S2
    s2 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
    assert rgb_band_indices(s2, 13) == (3, 2, 1)
    assert rgb_band_indices(("B2_blue", "B3_green", "B4_red"), 3) == (2, 1, 0)  # Landsat 8 by words
    assert rgb_band_indices(("B1", "B2", "B3", "B4"), 4, "LE07_L2SP_x.tif") == (2, 1, 0)  # Landsat 7
    assert rgb_band_indices(("B1", "B2", "B3", "B4"), 4, "LC08_L2SP_x.tif") == (3, 2, 1)  # Landsat 8
    assert rgb_band_indices((None, None, None), 3) == (0, 1, 2)
    assert rgb_band_indices(("VV",), 1) is None
    assert rgb_band_indices(("a", "b", "c", "d", "e"), 5) is None


def test_colour_restoration_keeps_chroma_and_sets_the_luminance() -> None:
    rng = np.random.default_rng(3)
    bands = rng.uniform(0.2, 1.0, (3, 16, 16))
    lum = luminance(bands, (0, 1, 2))
    fused = lum * rng.uniform(0.5, 1.5, lum.shape)
    out = restore_colour(bands, lum, fused, method="ratio", dark=0.01)
    np.testing.assert_allclose(luminance(out, (0, 1, 2)), fused, rtol=1e-12)
    np.testing.assert_allclose(out[0] / out[1], bands[0] / bands[1], rtol=1e-12)  # chromaticity kept
    ihs = restore_colour(bands, lum, fused, method="ihs")
    np.testing.assert_allclose(luminance(ihs, (0, 1, 2)), fused, rtol=1e-12)
    np.testing.assert_allclose(ihs[0] - ihs[1], bands[0] - bands[1], atol=1e-12)
    # a black pixel cannot be divided by: the additive rule takes over, no inf/NaN
    bands[:, 0, 0] = 0.0
    lum = luminance(bands, (0, 1, 2))
    out = restore_colour(bands, lum, fused, method="ratio")
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0, 0], fused[0, 0])
