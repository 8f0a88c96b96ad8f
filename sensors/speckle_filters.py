"""Classical adaptive speckle filters on linear intensity: boxcar, Lee, refined Lee, Frost, Gamma-MAP.

They are baselines and fast initial estimates for the diffusion solvers. All are vectorised numpy /
scipy.ndimage, nodata-aware (local statistics are normalised convolutions over valid pixels only)
and use ``L`` looks for the speckle coefficient of variation Cu = 1/sqrt(L).

Local sums use direct (non-running) separable correlations, so a pixel's result depends only on
its own ``window x window`` neighbourhood and is bit-identical wherever the block boundaries fall.
Each filter reads at most ``window // 2 + NEGATIVE_RADIUS`` pixels away (:func:`filter_radius`):
tiled processing with that halo reproduces the untiled result exactly. Borders use mirror
reflection (numpy "reflect").

References: Lee (1980) IEEE PAMI 2(2); Lee (1981) CGIP 17 (refined Lee, 8 edge-aligned windows);
Frost et al. (1982) IEEE PAMI 4(2); Lopes, Nezry, Touzi, Laur (1990) IJRS 11(9) (Gamma-MAP).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

FILTERS = ("boxcar", "lee", "refined-lee", "frost", "gamma-map")
_MODE = "mirror"  # = numpy.pad(mode="reflect")
NEGATIVE_RADIUS = 1  # neighbourhood (3x3) over which negative intensities are folded in


def nonnegative_intensity(
    img: np.ndarray, valid: np.ndarray | None = None, radius: int = NEGATIVE_RADIUS
) -> np.ndarray:
    """Negative intensities (thermal-noise-subtracted sigma0) as valid noisy samples, made non-negative
    without moving the local mean.

    ``img`` (H, W) linear intensity, ``valid`` (H, W) bool (None: the finite pixels). Each valid pixel
    becomes y⁺ · ⟨y⟩ / ⟨y⁺⟩ (y⁺ = max(y, 0), ⟨·⟩ the mean over the valid pixels of its
    (2 radius + 1)² neighbourhood), 0 where ⟨y⟩ <= 0: the result is >= 0 and keeps the local mean of
    the noise-subtracted samples (a clamp at 0 would raise it). Pixels with no negative valid
    neighbour come back bit for bit, invalid ones untouched. Returns float64 (H, W).
    """
    x, v = _prepare(img, valid)
    if not (v & (x < 0)).any():
        return x
    pos = np.maximum(x, 0.0)
    r = (-radius, radius)
    s0, s1, _ = _Stats(x, v).rect(r, r)
    _, p1, _ = _Stats(pos, v).rect(r, r)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(s1 > 0, pos * (s1 / np.where(p1 > 0, p1, 1.0)), 0.0)
    return np.where(v, np.maximum(out, 0.0), x)


def filter_radius(name: str, window: int) -> int:
    """How far (pixels) the filter reads from the output pixel: the halo tiling must provide (its
    window and the neighbourhood of :func:`nonnegative_intensity`)."""
    _check(name, window)
    return window // 2 + NEGATIVE_RADIUS


def _check(name: str, window: int) -> None:
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window={window} must be an odd number >= 3 (e.g. --window 7)")
    if name == "refined-lee" and window < 5:
        raise ValueError("refined-lee needs window >= 5 (its 3x3 sub-windows sit inside it); use --window 7")


# ---- local statistics ---------------------------------------------------------------------------
def _rect_sum(a: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Sum of ``a`` over the offsets rows[0]..rows[1] x cols[0]..cols[1] around each pixel (direct sums)."""

    def axis_sum(x: np.ndarray, lo: int, hi: int, axis: int) -> np.ndarray:
        half = max(abs(lo), abs(hi))
        k = np.zeros(2 * half + 1)  # centred kernel, ones on offsets lo..hi
        k[half + lo : half + hi + 1] = 1.0
        return ndimage.correlate1d(x, k, axis=axis, mode=_MODE)

    return axis_sum(axis_sum(a, *rows, axis=0), *cols, axis=1)


class _Stats:
    """Masked sums S0 = sum(m), S1 = sum(m x), S2 = sum(m x^2) for any footprint."""

    def __init__(self, img: np.ndarray, valid: np.ndarray) -> None:
        m = valid.astype(np.float64)
        x = np.where(valid, img, 0.0).astype(np.float64)
        self.planes = (m, x, x * x)

    def rect(self, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[np.ndarray, ...]:
        return tuple(_rect_sum(p, rows, cols) for p in self.planes)

    def kernel(self, k: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(ndimage.correlate(p, k, mode=_MODE) for p in self.planes)


def _moments(s0: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(s0 > 0, s1 / np.maximum(s0, 1), np.nan)
        var = np.maximum(np.where(s0 > 0, s2 / np.maximum(s0, 1), np.nan) - mean * mean, 0.0)
    return mean, var


def _prepare(img: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(img, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"speckle filters take one band (H, W); got shape {x.shape}")
    v = np.isfinite(x) if valid is None else (np.asarray(valid, bool) & np.isfinite(x))
    return x, v


def _finish(out: np.ndarray, x: np.ndarray, valid: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.where(np.isfinite(out), out, x)  # no valid neighbourhood statistics: keep the pixel
    return np.where(valid, out, x).astype(dtype, copy=False)


def _lee_combine(x: np.ndarray, mean: np.ndarray, var: np.ndarray, looks: float) -> np.ndarray:
    """Lee's MMSE estimate mean + k (x - mean), k = var_signal / var_observed for multiplicative noise."""
    cu2 = 1.0 / looks
    with np.errstate(invalid="ignore", divide="ignore"):
        var_x = (var - mean * mean * cu2) / (1.0 + cu2)
        k = np.clip(np.where(var > 0, var_x / var, 0.0), 0.0, 1.0)
    return mean + k * (x - mean)


# ---- filters ------------------------------------------------------------------------------------
def boxcar(
    img: np.ndarray, valid: np.ndarray | None = None, looks: float = 1.0, window: int = 7
) -> np.ndarray:
    """Local mean of the valid pixels of a window x window neighbourhood."""
    _check("boxcar", window)
    x, v = _prepare(img, valid)
    r = window // 2
    mean, _ = _moments(*_Stats(x, v).rect((-r, r), (-r, r)))
    return _finish(mean, x, v, np.result_type(img, np.float32))


def lee(img: np.ndarray, valid: np.ndarray | None = None, looks: float = 1.0, window: int = 7) -> np.ndarray:
    """Lee (1980) filter on intensity with L looks."""
    _check("lee", window)
    x, v = _prepare(img, valid)
    r = window // 2
    mean, var = _moments(*_Stats(x, v).rect((-r, r), (-r, r)))
    return _finish(_lee_combine(x, mean, var, looks), x, v, np.result_type(img, np.float32))


def _triangle(window: int, kind: str) -> np.ndarray:
    r = window // 2
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    cond = {"se": dx + dy >= 0, "nw": dx + dy <= 0, "ne": dx - dy >= 0, "sw": dx - dy <= 0}[kind]
    return cond.astype(np.float64)


def refined_lee(
    img: np.ndarray, valid: np.ndarray | None = None, looks: float = 1.0, window: int = 7
) -> np.ndarray:
    """Refined Lee (Lee 1981): Lee statistics over the edge-aligned half window matching the pixel.

    A 3x3 grid of 3x3 sub-window means spans the window; the largest of the four gradients
    (horizontal, vertical, two diagonals) gives the edge direction, and the side whose sub-window
    mean is closer to the centre sub-window picks the half window (28 of 49 pixels for 7x7,
    edge line included) whose mean and variance feed Lee's estimate.
    """
    _check("refined-lee", window)
    x, v = _prepare(img, valid)
    r = window // 2
    d = r - 1  # sub-window centres at -d, 0, d; 3x3 sub-windows then span [-r, r]
    stats = _Stats(x, v)
    sub_mean, _ = _moments(*stats.rect((-1, 1), (-1, 1)))
    padded = np.pad(sub_mean, d, mode="reflect")
    h, w = x.shape

    def s(dy: int, dx: int) -> np.ndarray:
        return padded[d + dy : d + dy + h, d + dx : d + dx + w]

    c = s(0, 0)
    # (gradient, positive-side mean, negative-side mean) per axis; direction ids 2a (positive) and 2a+1
    axes = [
        (s(0, d), s(0, -d)),  # horizontal gradient -> east / west half
        (s(d, 0), s(-d, 0)),  # vertical gradient -> south / north half
        (s(d, d), s(-d, -d)),  # diagonal -> south-east / north-west half
        (s(d, -d), s(-d, d)),  # anti-diagonal -> south-west / north-east half
    ]
    grads = np.stack([np.abs(p - n) for p, n in axes])
    grads = np.where(np.isfinite(grads), grads, -1.0)
    axis = np.argmax(grads, axis=0)
    direction = np.zeros(x.shape, np.int8)
    for a, (p, n) in enumerate(axes):
        with np.errstate(invalid="ignore"):
            negative = np.abs(n - c) < np.abs(p - c)
        direction = np.where(axis == a, 2 * a + negative.astype(np.int8), direction)
    half_windows: list[Callable[[], tuple[np.ndarray, ...]]] = [
        lambda: stats.rect((-r, r), (0, r)),  # east
        lambda: stats.rect((-r, r), (-r, 0)),  # west
        lambda: stats.rect((0, r), (-r, r)),  # south
        lambda: stats.rect((-r, 0), (-r, r)),  # north
        lambda: stats.kernel(_triangle(window, "se")),
        lambda: stats.kernel(_triangle(window, "nw")),
        lambda: stats.kernel(_triangle(window, "sw")),
        lambda: stats.kernel(_triangle(window, "ne")),
    ]
    out = np.full(x.shape, np.nan)
    for k, sums in enumerate(half_windows):
        sel = direction == k
        if not sel.any():
            continue
        mean, var = _moments(*sums())
        out = np.where(sel, _lee_combine(x, mean, var, looks), out)
    return _finish(out, x, v, np.result_type(img, np.float32))


def frost(
    img: np.ndarray,
    valid: np.ndarray | None = None,
    looks: float = 1.0,
    window: int = 7,
    damping: float = 2.0,
) -> np.ndarray:
    """Frost et al. (1982): weights exp(-damping * Ci^2 * distance) with Ci^2 = var / mean^2 of the window."""
    _check("frost", window)
    x, v = _prepare(img, valid)
    r = window // 2
    mean, var = _moments(*_Stats(x, v).rect((-r, r), (-r, r)))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = damping * np.where(mean > 0, var / (mean * mean), 0.0)
    xp = np.pad(np.where(v, x, 0.0), r, mode="reflect")
    mp = np.pad(v.astype(np.float64), r, mode="reflect")
    h, w = x.shape
    num = np.zeros(x.shape)
    den = np.zeros(x.shape)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            wgt = np.exp(-alpha * np.hypot(dy, dx)) * mp[r + dy : r + dy + h, r + dx : r + dx + w]
            num += wgt * xp[r + dy : r + dy + h, r + dx : r + dx + w]
            den += wgt
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return _finish(out, x, v, np.result_type(img, np.float32))


def gamma_map(
    img: np.ndarray, valid: np.ndarray | None = None, looks: float = 1.0, window: int = 7
) -> np.ndarray:
    """Gamma-MAP (Lopes et al. 1990): MAP estimate under a gamma-distributed reflectivity.

    Homogeneous areas (Ci <= Cu) get the local mean, point targets (Ci >= sqrt(2) Cu) are kept.
    """
    _check("gamma-map", window)
    x, v = _prepare(img, valid)
    r = window // 2
    mean, var = _moments(*_Stats(x, v).rect((-r, r), (-r, r)))
    cu2 = 1.0 / looks
    with np.errstate(invalid="ignore", divide="ignore"):
        ci2 = np.where(mean > 0, var / (mean * mean), 0.0)
        alpha = (1.0 + cu2) / (ci2 - cu2)
        b = alpha - looks - 1.0
        disc = mean * mean * b * b + 4.0 * alpha * looks * mean * x
        est = (b * mean + np.sqrt(np.maximum(disc, 0.0))) / (2.0 * alpha)
    out = np.where(ci2 <= cu2, mean, np.where(ci2 >= 2.0 * cu2, x, est))
    return _finish(out, x, v, np.result_type(img, np.float32))


FILTER_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "boxcar": boxcar,
    "lee": lee,
    "refined-lee": refined_lee,
    "frost": frost,
    "gamma-map": gamma_map,
}


def apply_filter(
    name: str, img: np.ndarray, valid: np.ndarray | None = None, looks: float = 1.0, window: int = 7
) -> np.ndarray:
    """Run filter ``name`` on one band of linear intensity; negative intensities are valid noisy samples
    (:func:`nonnegative_intensity` first), so the result is never negative and keeps the local mean."""
    _check(name, window)
    if not looks > 0:
        raise ValueError(f"looks={looks} must be > 0 (e.g. --looks 4.4)")
    dtype = np.result_type(img, np.float32)
    fixed = nonnegative_intensity(img, valid)  # float64, as every filter computes
    return FILTER_FUNCTIONS[name](fixed, valid, looks=looks, window=window).astype(dtype, copy=False)
