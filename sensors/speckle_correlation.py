"""Spatial correlation of SAR speckle and the effective number of looks of an i.i.d. speckle likelihood.

Real speckle is not white: SAR focusing and resampling spread each resolution cell over neighbouring
pixels (Sentinel-1 SLC-derived single-look: lag-1 intensity correlation ~0.4-0.5; GRD: more). A
likelihood that treats every pixel as an independent L-look gamma sample then counts each piece of
information several times and over-trusts the data (speckle survives despeckling).

What we measure: the autocorrelation coefficient rho(dy, dx) of the **speckle** in the normalised
intensity r = y / m - 1 on the most homogeneous blocks of the scene (m = the block mean; blocks ranked
by their neighbours' coefficient of variation, as in :mod:`sensors.looks`), for lags |dy|, |dx| <=
``max_lag``.

What we derive: the **variance inflation factor** S = sum over all lags of rho(dy, dx) (the normalised
spectral density at frequency zero). The mean of N correlated pixels of a constant reflectivity has the
variance of N / S independent ones (Bayley & Hammersley 1946, the "effective number of degrees of
freedom" of a correlated series; for SAR multilooking of correlated speckle the same sum gives the ENL,
Oliver & Quegan, *Understanding Synthetic Aperture Radar Images*, 1998). So the per-pixel gamma likelihood
carries the right amount of information over any area a few correlation lengths wide when its looks are

    L_eff = L / S.

Why this and not the ENL of homogeneous areas: the marginal ENL of a correlated field is still L (the
histogram of each pixel does not change; :func:`sensors.looks.estimate_looks` measures exactly that),
so it cannot see the over-counting. And the gamma nll is linear in L (L (log I + y / I) + const), so
L_eff = L / S is exactly the magnitude adjustment of a composite (independence) likelihood by 1 / S
(Varin, Reid & Firth 2011): the mode of the likelihood stays where it is, its curvature drops by S.

Texture versus speckle. Even the most homogeneous blocks of a scene keep some texture, and a texture's
covariance decays slowly; summed as if it were speckle it inflates S (white speckle on the PROTOCOL §1
aerial images read S medians 3.0 / 7.0 at L = 1 / 4, up to 11.0). The product model y = t n (texture t
of mean 1 and relative variance v_t, unit-mean L-look speckle n independent of it) gives the covariance
of r at lag h

    C(h) = C_t(h) + C_n(h) (1 + C_t(h)),    C_n(0) = 1 / L                 (Oliver & Quegan 1998, ch. 8)

so at lag 0 the texture's share is known from the marginal looks: C_t(0) = (C(0) - 1 / L) / (1 + 1 / L).
Speckle correlation is short (the SAR impulse response: a few pixels); from lag ``max_lag`` on it is
taken as zero, so the lags ``max_lag`` .. ``max_lag`` + 3 (Chebyshev distance) see texture only. The
texture covariance is modelled by the powered-exponential family C_t(h) = C_t(0) - A (1 - exp(-(|h| /
l)^p)), A >= 0, p in {1, 1.5, 2} (Cressie, *Statistics for Spatial Data*, 1993, §2.6: from the
exponential covariance of edge-rich images to the Gaussian one of smooth fields), fitted by least
squares on those lags with C_t(0) fixed: an interpolation between lag 0 and the outer lags, not an
extrapolation (a line fitted on the outer lags alone under-removes the convex texture covariance of
real images: S medians 1.2 / 1.7, up to 3.5, in the white-speckle case above). The speckle correlation
is then rho(h) = (C(h) - C_t(h)) / (C(0) - C_t(0)). Where the fit finds no texture (C_t(0) below the
outer lags' mean: none, or ``looks`` set lower than the data's), the outer mean is removed as a flat
level, which also removes the block-mean bias; without ``looks`` only that flat level is removed.

Measured (bench/README.md): white speckle on the 52 PROTOCOL §1 images (L = 1 / 4): S median 1.00,
at most 1.24 / 1.62; the Sentinel-1 single-look crops keep lag-1 rho 0.27-0.59 and S 2.8-3.9 (before:
3.4-6.1), the S1 GRD scenes S ~ 8 (before: 12.5-13.1); correlated synthetic speckle of known S within
6 % (the fit takes a little of a wide kernel's lag-2 correlation as texture: -3 to -5 % at S = 6.3).
A ``looks`` above the data's true looks makes the texture share too large (S too small, never below 1
after clipping); one below it falls back to the flat level (an upper bound).

numpy only, arrays in (no file I/O).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from sensors.looks import block_statistics

log = logging.getLogger(__name__)

__all__ = ["SpeckleCorrelation", "effective_looks", "speckle_autocorrelation"]

_MIN_BLOCKS = 4
_OUTER = 3  # the texture is fitted on Chebyshev lags max_lag .. max_lag + _OUTER
_POWERS = (1.0, 1.5, 2.0)  # powered-exponential shapes of the texture covariance
_RANGES = np.geomspace(0.3, 1000.0, 100)  # its correlation lengths l (pixels) tried


@dataclass(frozen=True)
class SpeckleCorrelation:
    """What :func:`effective_looks` measured.

    looks: the nominal (marginal) looks L given; effective: L / inflation, the looks of an i.i.d.
    likelihood; inflation: S = sum of rho over the lag window (>= 1; 1 for white speckle);
    lag1_rows, lag1_cols: rho(0, 1) and rho(1, 0) of the speckle; n_blocks, block: what it was
    measured on; max_lag: the half-width of the lag window.
    """

    looks: float
    effective: float
    inflation: float
    lag1_rows: float
    lag1_cols: float
    n_blocks: int
    block: int
    max_lag: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain JSON-ready values."""
        return asdict(self)


def _prepare(intensity: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(intensity, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"speckle correlation needs a 2-D intensity band, got shape {y.shape}")
    valid = np.isfinite(y) & (y > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    return np.where(valid, y, 1.0), valid


def _homogeneous_blocks(
    y: np.ndarray, valid: np.ndarray, block: int, fraction: float
) -> tuple[np.ndarray, int]:
    """(k, block, block) the k most homogeneous fully valid blocks of ``y``, and k."""
    h, w = y.shape
    nby, nbx = h // block, w // block
    rank, _, _ = block_statistics(y, valid, block=block, method="moments", degree=0)
    grid = y[: nby * block, : nbx * block].reshape(nby, block, nbx, block).swapaxes(1, 2)
    full = valid[: nby * block, : nbx * block].reshape(nby, block, nbx, block).swapaxes(1, 2)
    full = full.reshape(nby, nbx, -1).all(axis=2)
    blocks = grid[full] if full.any() else np.empty((0, block, block))
    ok = np.isfinite(rank)
    if ok.sum() < _MIN_BLOCKS:
        raise ValueError(
            f"too few fully valid {block}x{block} blocks ({int(ok.sum())}) to measure the speckle "
            "correlation: the image is too small or mostly nodata; use a larger scene sample"
        )
    k = max(_MIN_BLOCKS, int(round(fraction * ok.sum())))
    return blocks[ok][np.argsort(rank[ok], kind="stable")[:k]], int(k)


def _covariance(r: np.ndarray, lag: int) -> np.ndarray:
    """(2 lag + 1, 2 lag + 1) mean products r(x) r(x + h) over (k, b, b) blocks ``r``, h = (dy, dx)."""
    b = r.shape[1]
    size = 2 * lag + 1
    c = np.zeros((size, size))
    for dy in range(-lag, lag + 1):
        for dx in range(-lag, lag + 1):
            a = r[:, max(dy, 0) : b + min(dy, 0), max(dx, 0) : b + min(dx, 0)]
            s = r[:, max(-dy, 0) : b + min(-dy, 0), max(-dx, 0) : b + min(-dx, 0)]
            c[dy + lag, dx + lag] = float((a * s).mean())
    return c


def _texture(c: np.ndarray, max_lag: int, looks: float | None, pixels: int) -> np.ndarray:
    """The texture's share of the observed covariance ``c`` (2 R + 1, 2 R + 1), R = max_lag + _OUTER
    (see the module docstring): powered-exponential, pinned at lag 0 by the marginal looks; or the outer
    lags' mean (a flat level) without ``looks`` or where no texture is found."""
    outer = c.shape[0] // 2
    d = np.arange(-outer, outer + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    cheb, dist = np.maximum(abs(dy), abs(dx)), np.hypot(dy, dx)
    flat = np.full_like(c, c[cheb > max_lag].mean())
    if looks is None:
        return flat
    c0 = c[outer, outer]
    bias = max(float(c.sum()), 0.0) / pixels  # block-mean removal lowers every lag by var(block mean)
    t0 = min((c0 + bias - 1.0 / looks) / (1.0 + 1.0 / looks) - bias, c0)
    ring = cheb >= max_lag
    if t0 <= flat[0, 0]:
        return flat
    best, shape = np.inf, np.zeros_like(c)
    for p in _POWERS:
        for ell in _RANGES:
            g = np.expm1(-((dist / ell) ** p))  # f - 1 <= 0, f(0) = 1
            gr, dr = g[ring], c[ring] - t0
            amp = max(float(gr @ dr) / float(gr @ gr), 0.0)
            res = float(((amp * gr - dr) ** 2).sum())
            if res < best:
                best, shape = res, amp * g
    return t0 + shape


def speckle_autocorrelation(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    max_lag: int = 2,
    block: int = 32,
    fraction: float = 0.25,
    looks: float | None = None,
) -> tuple[np.ndarray, int]:
    """Autocorrelation coefficients rho (2 max_lag + 1, 2 max_lag + 1) of the speckle in the normalised
    intensity on homogeneous blocks, and the number of blocks used; rho[max_lag, max_lag] = 1 (lag 0).

    ``intensity``: (H, W) linear intensity (float; non-positive, non-finite and ``mask`` = False pixels
    are invalid; only fully valid blocks count). ``fraction`` of the blocks whose 8 neighbours have the
    lowest coefficient of variation are used. ``looks``: the marginal L of the speckle, which separates
    the texture's covariance from the speckle's (module docstring); None removes only a flat level (the
    block-mean bias and any texture constant over the lags). Raises ValueError for a non-2-D input, bad
    settings or fewer than 4 usable blocks (image too small or mostly invalid).
    """
    if int(max_lag) != max_lag or max_lag < 1:
        raise ValueError(f"max_lag must be an integer >= 1, got {max_lag!r}")
    least = 4 * max_lag + 2 * _OUTER
    if int(block) != block or block < least:
        raise ValueError(f"block must be an integer >= 4 * max_lag + {2 * _OUTER} ({least}), got {block!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    if looks is not None and not (np.isfinite(looks) and looks > 0):
        raise ValueError(f"looks must be a finite number > 0 or None, got {looks!r}")
    y, valid = _prepare(intensity, mask)
    chosen, k = _homogeneous_blocks(y, valid, block, fraction)
    r = chosen / chosen.mean(axis=(1, 2), keepdims=True) - 1.0
    outer = max_lag + _OUTER
    c = _covariance(r, outer)
    speckle = c - _texture(c, max_lag, looks, block * block)
    inner = speckle[_OUTER : _OUTER + 2 * max_lag + 1, _OUTER : _OUTER + 2 * max_lag + 1]
    lag0 = inner[max_lag, max_lag]
    rho = inner / lag0 if lag0 > 0 else np.zeros_like(inner)
    rho[max_lag, max_lag] = 1.0
    return rho, k


def effective_looks(
    intensity: np.ndarray,
    looks: float,
    mask: np.ndarray | None = None,
    *,
    max_lag: int = 2,
    block: int = 32,
    fraction: float = 0.25,
    max_inflation: float = 16.0,
) -> SpeckleCorrelation:
    """The looks L_eff = L / S an i.i.d. gamma likelihood should use on this scene (see the module).

    ``intensity`` (H, W) linear intensity, ``looks`` the nominal (marginal) L > 0 of the band (given or
    from :func:`sensors.looks.estimate_looks`; it also pins the texture's share, module docstring),
    ``mask`` True = valid. S is the sum of the speckle's autocorrelation
    (:func:`speckle_autocorrelation`) over the (2 max_lag + 1)^2 lag window, clipped to
    [1, ``max_inflation``]. Raises ValueError for looks <= 0 and where the correlation cannot be
    measured (too few valid blocks).
    """
    if not (np.isfinite(looks) and looks > 0):
        raise ValueError(f"looks must be a finite number > 0, got {looks!r}")
    rho, k = speckle_autocorrelation(
        intensity, mask, max_lag=max_lag, block=block, fraction=fraction, looks=float(looks)
    )
    inflation = float(np.clip(rho.sum(), 1.0, max_inflation))
    out = SpeckleCorrelation(
        looks=float(looks),
        effective=float(looks) / inflation,
        inflation=inflation,
        lag1_rows=float(rho[max_lag, max_lag + 1]),
        lag1_cols=float(rho[max_lag + 1, max_lag]),
        n_blocks=k,
        block=int(block),
        max_lag=int(max_lag),
    )
    log.debug("speckle correlation: %s", out)
    return out
