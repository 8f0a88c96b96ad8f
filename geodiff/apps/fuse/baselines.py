"""Classical pixel-level fusion baselines of PROTOCOL section 3.

They run next to the DPS fusion in every benchmark so that its scores have a reference. Inputs
are two co-registered 2-D images (H, W) in [0, 1] (A optical luminance, B SAR amplitude, no NaN);
the output is one (H, W) float64 image in [0, 1]. Every function raises ValueError for inputs that
are not two 2-D images of one shape. They are global (PCA weights, multi-level transforms): the
fusion job runs them on the whole image, never tile by tile.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pywt
from scipy import ndimage
from skimage.transform import resize

__all__ = ["BASELINES", "average_fusion", "laplacian_fusion", "pca_fusion", "wavelet_fusion"]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"fusion baselines take two 2-D images of one shape; got {a.shape} and {b.shape} "
            "(align the SAR onto the optical grid and pass the luminance)"
        )
    return a, b


def _max_abs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) >= np.abs(y), x, y)


def average_fusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """F = (A + B) / 2."""
    a, b = _pair(a, b)
    return (a + b) / 2


def wavelet_fusion(a: np.ndarray, b: np.ndarray, wavelet: str = "db2", levels: int = 3) -> np.ndarray:
    """DWT fusion: approximations averaged, detail coefficients chosen by maximum absolute value."""
    a, b = _pair(a, b)
    levels = max(1, min(levels, pywt.dwt_max_level(min(a.shape), pywt.Wavelet(wavelet).dec_len)))
    ca = pywt.wavedec2(a, wavelet, level=levels, mode="symmetric")
    cb = pywt.wavedec2(b, wavelet, level=levels, mode="symmetric")
    fused = [(ca[0] + cb[0]) / 2]
    for da, db in zip(ca[1:], cb[1:], strict=True):
        fused.append(tuple(_max_abs(x, y) for x, y in zip(da, db, strict=True)))
    out = pywt.waverec2(fused, wavelet, mode="symmetric")
    return np.clip(out[: a.shape[0], : a.shape[1]], 0.0, 1.0)


def pca_fusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PCA fusion: weights from the leading eigenvector of the 2 x 2 covariance of (A, B)."""
    a, b = _pair(a, b)
    cov = np.cov(np.stack([a.ravel(), b.ravel()]))
    vals, vecs = np.linalg.eigh(cov)
    v = np.abs(vecs[:, np.argmax(vals)])
    w = v / v.sum() if v.sum() > 0 else np.array([0.5, 0.5])
    return w[0] * a + w[1] * b


def _reduce(img: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(img, 1.0, mode="reflect")[::2, ::2]


def _expand(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return resize(img, shape, order=1, mode="reflect", anti_aliasing=False)


def _laplacian_pyramid(img: np.ndarray, levels: int) -> list[np.ndarray]:
    pyr = []
    cur = img
    for _ in range(levels):
        nxt = _reduce(cur)
        pyr.append(cur - _expand(nxt, cur.shape))
        cur = nxt
    pyr.append(cur)
    return pyr


def laplacian_fusion(
    a: np.ndarray, b: np.ndarray, levels: int = 4, low_weights: tuple[float, float] = (0.5, 0.5)
) -> np.ndarray:
    """Laplacian-pyramid fusion (Burt & Adelson): band-pass levels by maximum absolute value, the
    low-pass residual weighted by ``low_weights`` (default: averaged); reconstruction inverts the same
    expand exactly. The DPS fusion starts from it with the scene's PCA shares as ``low_weights``."""
    a, b = _pair(a, b)
    levels = max(1, min(levels, int(np.log2(min(a.shape))) - 2))
    pa, pb = _laplacian_pyramid(a, levels), _laplacian_pyramid(b, levels)
    out = low_weights[0] * pa[-1] + low_weights[1] * pb[-1]
    for la, lb in zip(reversed(pa[:-1]), reversed(pb[:-1]), strict=True):
        out = _expand(out, la.shape) + _max_abs(la, lb)
    return np.clip(out, 0.0, 1.0)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "average": average_fusion,
    "wavelet": wavelet_fusion,
    "pca": pca_fusion,
    "laplacian": laplacian_fusion,
}
