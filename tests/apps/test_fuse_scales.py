"""SAR decoding to linear intensity and the robust [0, 1] stretch of the fusion job."""

from __future__ import annotations

import numpy as np
import pytest

from geodiff.apps.fuse.scales import robust_unit, sar_to_intensity


def test_sar_decoding() -> None:
    db = np.array([[-20.0, -10.0], [0.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(sar_to_intensity(db, "db"), 10 ** (db / 10), rtol=1e-6)
    np.testing.assert_allclose(sar_to_intensity(np.array([[2.0]]), "amplitude"), [[4.0]])
    np.testing.assert_allclose(sar_to_intensity(np.array([[1 + 1j]]), "complex"), [[2.0]])
    assert np.isnan(sar_to_intensity(np.array([[0.0, 1.0]]), "intensity", nodata=0.0)[0, 0])
    with pytest.raises(ValueError, match="dB"):
        sar_to_intensity(db, "intensity")
    with pytest.raises(ValueError, match="unknown SAR units"):
        sar_to_intensity(db, "furlongs")


def test_robust_unit_scaling() -> None:
    x = np.linspace(0, 100, 10_001)
    x[-1] = 1e6  # one outlier does not squash the rest
    s = robust_unit(x)
    u = s.forward(x)
    assert u.min() == 0 and u.max() == 1 and 0.45 < np.median(u) < 0.55
    np.testing.assert_allclose(s.inverse(s.forward(x[100:-100])), x[100:-100])
    with pytest.raises(ValueError, match="no valid pixels"):
        robust_unit(np.full(4, np.nan))
