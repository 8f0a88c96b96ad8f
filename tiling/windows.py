"""Blending windows for overlapping tiles.

Every window here is strictly positive: weights are normalised by their running sum, so a pixel seen
by a single tile (raster edges, scene corners) still gets weight one instead of 0/0. Windows are
separable (outer product of two 1-D windows).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import windows as sw

WINDOWS = ("hann", "cosine", "linear", "spline", "boxcar")


def window_1d(size: int, kind: str = "hann", overlap: int | None = None) -> np.ndarray:
    """Strictly positive, symmetric 1-D window of ``size`` samples (float64, shape (size,)).

    ``kind`` is one of :data:`WINDOWS`; ``overlap`` (pixels, for "linear" and "spline") limits the
    taper to the overlapping border; the inside is 1.

    Raises:
        ValueError: ``size`` < 1 or an unknown ``kind`` (the message lists the choices).
    """
    if size < 1:
        raise ValueError(f"window size {size} must be >= 1")
    if kind == "boxcar":
        return np.ones(size)
    if kind in ("hann", "cosine"):
        # Drop the two zero end points of a symmetric window two samples longer: strictly positive.
        full = sw.hann(size + 2, sym=True) if kind == "hann" else sw.cosine(size, sym=True)
        w = full[1:-1] if kind == "hann" else full
        return np.maximum(w, 1e-6)
    if kind in ("linear", "spline"):
        ramp = size // 2 if not overlap else min(overlap, size // 2)
        w = np.ones(size)
        if ramp > 0:
            t = (np.arange(ramp) + 1.0) / (ramp + 1.0)  # in (0, 1): strictly positive
            if kind == "spline":  # C1 smoothstep: zero slope where the taper meets the plateau
                t = t * t * (3.0 - 2.0 * t)
            w[:ramp] = t
            w[size - ramp :] = np.minimum(w[size - ramp :], t[::-1])
        return w
    raise ValueError(f"unknown blending window {kind!r}; choose one of {', '.join(WINDOWS)}")


@lru_cache(maxsize=32)
def _window_2d_cached(h: int, w: int, kind: str, overlap: int | None) -> np.ndarray:
    win = np.outer(window_1d(h, kind, overlap), window_1d(w, kind, overlap))
    win.setflags(write=False)
    return win


def window_2d(
    height: int, width: int | None = None, kind: str = "hann", overlap: int | None = None
) -> np.ndarray:
    """Separable, strictly positive 2-D blending window (height, width) float64, read-only (cached).

    ``width`` defaults to ``height``; ``kind`` and ``overlap`` as in :func:`window_1d` (same errors).
    """
    return _window_2d_cached(height, width if width is not None else height, kind, overlap)
