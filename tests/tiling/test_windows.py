"""Blending windows: strictly positive, symmetric, separable."""

from __future__ import annotations

import numpy as np
import pytest

from tiling.windows import WINDOWS, window_1d, window_2d


@pytest.mark.parametrize("kind", WINDOWS)
@pytest.mark.parametrize("size", [1, 2, 7, 64])
def test_windows_strictly_positive_and_separable(kind: str, size: int) -> None:
    w1 = window_1d(size, kind, overlap=size // 4)
    assert w1.shape == (size,) and (w1 > 0).all()
    assert np.allclose(w1, w1[::-1])
    w2 = window_2d(size, size, kind, size // 4)
    assert np.array_equal(w2, np.outer(w1, w1))


def test_unknown_window_and_bad_size_are_named() -> None:
    with pytest.raises(ValueError, match="unknown blending window 'gauss'; choose one of hann"):
        window_1d(8, "gauss")
    with pytest.raises(ValueError, match="must be >= 1"):
        window_1d(0)
    assert not window_2d(4).flags.writeable  # cached: shared by every block, so read-only
