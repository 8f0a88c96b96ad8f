"""The classical fusion baselines (PROTOCOL §3) against closed forms and known properties."""

from __future__ import annotations

import numpy as np

from geodiff.apps.fuse.baselines import (
    BASELINES,
    average_fusion,
    laplacian_fusion,
    pca_fusion,
    wavelet_fusion,
)
from sensors.fusion_quality import fusion_report, qabf


def test_baselines_identity_and_closed_forms(images) -> None:
    a, b = images
    for name, fn in BASELINES.items():
        out = fn(a, a)
        assert out.shape == a.shape, name
        np.testing.assert_allclose(out, a, atol=1e-9, err_msg=name)  # fusing an image with itself
    np.testing.assert_allclose(average_fusion(a, b), (a + b) / 2)
    # PCA weights follow the larger-variance image
    w_out = pca_fusion(a, np.full_like(b, 0.5) + 0.01 * (b - 0.5))
    assert np.corrcoef(w_out.ravel(), a.ravel())[0, 1] > 0.99


def test_detail_baselines_keep_edges_of_both(images) -> None:
    a, b = images
    half_a = a.copy()
    half_b = b.copy()
    half_a[:, 64:] = a[:, 64:].mean()  # A has detail on the left only
    half_b[:, :64] = b[:, :64].mean()  # B on the right only
    for fn in (wavelet_fusion, laplacian_fusion):
        f = fn(half_a, half_b)
        report = fusion_report(f, half_a, half_b)
        assert report["Qabf"] > qabf(average_fusion(half_a, half_b), half_a, half_b)
