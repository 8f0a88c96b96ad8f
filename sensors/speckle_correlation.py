"""Spatial correlation of SAR speckle and the effective number of looks of an i.i.d. speckle likelihood.

Real speckle is not white: SAR focusing and resampling spread each resolution cell over neighbouring
pixels (Sentinel-1 SLC-derived single-look: lag-1 intensity correlation ~0.4-0.5; GRD: more). A
likelihood that treats every pixel as an independent L-look gamma sample then counts each piece of
information several times and over-trusts the data (speckle survives despeckling).

What we measure: the autocorrelation coefficient rho(dy, dx) of the normalised intensity y / m - 1 on
the most homogeneous blocks of the scene (m = the block mean; blocks ranked by their neighbours'
coefficient of variation, as in :mod:`sensors.looks`), for lags |dy|, |dx| <= ``max_lag``.

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

Removing the block mean biases every covariance by about -S var / n (n pixels per block); with K lags
summed the estimate is S_obs = S (1 - K / n) / (1 - S / n), which :func:`speckle_autocorrelation`
inverts. Texture left in the chosen blocks raises S (it looks like long-range correlation), so the
estimate is an upper bound on flat scenes; it is clipped to [1, ``max_inflation``].

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


@dataclass(frozen=True)
class SpeckleCorrelation:
    """What :func:`effective_looks` measured.

    looks: the nominal (marginal) looks L given; effective: L / inflation, the looks of an i.i.d.
    likelihood; inflation: S = sum of rho over the lag window (>= 1; 1 for white speckle);
    lag1_rows, lag1_cols: rho(0, 1) and rho(1, 0) of the intensity; n_blocks, block: what it was
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


def speckle_autocorrelation(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    max_lag: int = 2,
    block: int = 32,
    fraction: float = 0.25,
) -> tuple[np.ndarray, int]:
    """Autocorrelation coefficients rho (2 max_lag + 1, 2 max_lag + 1) of the normalised intensity on
    homogeneous blocks, and the number of blocks used; rho[max_lag, max_lag] = 1 (lag 0).

    ``intensity``: (H, W) linear intensity (float; non-positive, non-finite and ``mask`` = False pixels
    are invalid; only fully valid blocks count). ``fraction`` of the blocks whose 8 neighbours have the
    lowest coefficient of variation are used. Each coefficient is corrected for the block-mean removal
    (see the module docstring). Raises ValueError for a non-2-D input, bad settings or fewer than 4
    usable blocks (image too small or mostly invalid).
    """
    if int(max_lag) != max_lag or max_lag < 1:
        raise ValueError(f"max_lag must be an integer >= 1, got {max_lag!r}")
    if int(block) != block or block < 4 * max_lag:
        raise ValueError(f"block must be an integer >= 4 * max_lag ({4 * max_lag}), got {block!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    y, valid = _prepare(intensity, mask)
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
    chosen = blocks[ok][np.argsort(rank[ok], kind="stable")[:k]]
    r = chosen / chosen.mean(axis=(1, 2), keepdims=True) - 1.0
    r = r - r.mean(axis=(1, 2), keepdims=True)
    c0 = float((r * r).mean())
    size = 2 * max_lag + 1
    rho = np.zeros((size, size))
    for dy in range(-max_lag, max_lag + 1):
        for dx in range(-max_lag, max_lag + 1):
            a = r[:, max(dy, 0) : block + min(dy, 0), max(dx, 0) : block + min(dx, 0)]
            b = r[:, max(-dy, 0) : block + min(-dy, 0), max(-dx, 0) : block + min(-dx, 0)]
            rho[dy + max_lag, dx + max_lag] = float((a * b).mean()) / c0 if c0 > 0 else 0.0
    # block-mean removal: rho_obs = (rho - S/n) / (1 - S/n) for every lag; solve for the true rho
    n = block * block
    s_obs = float(rho.sum())
    s_true = s_obs / max(1.0 - size * size / n + s_obs / n, 1e-6)
    rho = rho * (1 - s_true / n) + s_true / n
    rho[max_lag, max_lag] = 1.0
    return rho, int(k)


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
    from :func:`sensors.looks.estimate_looks`), ``mask`` True = valid. S is the sum of the measured
    autocorrelation (:func:`speckle_autocorrelation`) over the (2 max_lag + 1)^2 lag window, clipped to
    [1, ``max_inflation``]. Raises ValueError for looks <= 0 and where the correlation cannot be
    measured (too few valid blocks).
    """
    if not (np.isfinite(looks) and looks > 0):
        raise ValueError(f"looks must be a finite number > 0, got {looks!r}")
    rho, k = speckle_autocorrelation(intensity, mask, max_lag=max_lag, block=block, fraction=fraction)
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
