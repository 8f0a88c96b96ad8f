"""Equivalent number of looks (ENL) of SAR intensity, estimated from the data.

The gamma-speckle likelihood needs L, and metadata rarely states it (a GRD's "4.4" is a nominal
figure; RTC and terrain-flattened products change it). We estimate it from the most homogeneous
blocks, where the intensity is reflectivity × speckle with a constant reflectivity:

- every block is split into two interleaved halves (a checkerboard); blocks are *ranked* by the
  coefficient of variation of one half and L is *measured* on the other half. Ranking and measuring
  on the same pixels picks blocks whose noise happened to be low and overestimates L (selection
  bias); with separate halves the ranking only sees the texture both halves share;
- on the chosen blocks, the moment estimator pools the squared coefficient of variation
  CV² = s²/m² (unbiased s²), whose expectation for L-look gamma speckle and n pixels is
  (1/L)(1 − 1/(nL)) to second order; solving that for L removes the small-block bias. The
  log-cumulant estimator (Anfinsen et al. 2009) pools var(log I), which is unbiased for ψ₁(L).
- the confidence figure is a bootstrap interval over the chosen blocks.

Texture that survives the selection lowers the estimate (it adds to CV²), spatially correlated
speckle (real SLC-derived data, lag-1 correlation ≈ 0.4–0.5) raises the variance of the estimate.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.optimize import brentq
from scipy.special import polygamma

log = logging.getLogger(__name__)

Method = Literal["moments", "log-cumulant"]

_MIN_BLOCKS = 8


@dataclass(frozen=True)
class LooksEstimate:
    """An ENL estimate with a bootstrap interval (5th–95th percentile) over the chosen blocks."""

    looks: float
    low: float
    high: float
    n_blocks: int
    block: int
    fraction: float
    method: str

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _block_grid(values: np.ndarray, valid: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut into a grid of non-overlapping tiles: (nby, nbx, block*block) values and full-validity flags."""
    h, w = values.shape
    nby, nbx = h // block, w // block
    v = values[: nby * block, : nbx * block].reshape(nby, block, nbx, block).swapaxes(1, 2)
    m = valid[: nby * block, : nbx * block].reshape(nby, block, nbx, block).swapaxes(1, 2)
    return v.reshape(nby, nbx, block * block), m.reshape(nby, nbx, block * block).all(axis=2)


def _checker(block: int) -> np.ndarray:
    yy, xx = np.mgrid[:block, :block]
    return ((yy + xx) % 2).astype(bool)


def _inverse_trigamma(v: float) -> float:
    """Solve ψ₁(L) = v for L > 0."""
    if not np.isfinite(v) or v <= 0:
        return float("inf")
    f = lambda x: float(polygamma(1, x)) - v  # noqa: E731
    lo, hi = 1e-3, 1e6
    if f(hi) > 0:
        return hi
    if f(lo) < 0:
        return lo
    return float(brentq(f, lo, hi, xtol=1e-10, rtol=1e-10))


def _looks_from_stat(stat: float, n: int, method: Method) -> float:
    if method == "log-cumulant":
        return _inverse_trigamma(stat)
    # E[CV²] ≈ 1/L − 1/(n L²)  →  c L² − L + 1/n = 0, the larger root.
    c = stat
    if not np.isfinite(c) or c <= 0:
        return float("inf")
    disc = 1.0 - 4.0 * c / n
    return float((1.0 + np.sqrt(disc)) / (2.0 * c)) if disc > 0 else float(1.0 / c)


def block_statistics(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    block: int = 8,
    method: Method = "log-cumulant",
    degree: int = 1,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per fully valid block: (homogeneity rank statistic, measuring statistic, pixels measured).

    The rank statistic is the mean detrended CV² of the block's ranking half and of its fully
    valid neighbours (3×3 blocks): pooling the neighbours makes the ranking see texture rather than
    speckle noise, and none of those pixels is one the measuring statistic uses.
    """
    y = np.asarray(intensity, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"looks estimation needs a 2-D intensity band, got shape {y.shape}")
    valid = np.isfinite(y) & (y > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    grid, full = _block_grid(np.where(valid, y, 1.0), valid, block)
    checker = _checker(block).ravel()
    if not full.any():
        return np.empty(0), np.empty(0), int(checker.sum())
    blocks = grid[full]
    everything = np.ones(block * block, dtype=bool)
    rank_half, meas_half = blocks[:, ~checker], blocks[:, checker]
    whole_cv2 = np.zeros(full.shape)
    whole_cv2[full] = _detrended_var(blocks, everything, block, degree) / blocks.mean(axis=1) ** 2
    neigh_sum = ndimage.correlate(whole_cv2, np.ones((3, 3)), mode="constant") - whole_cv2
    neigh_cnt = ndimage.correlate(full.astype(float), np.ones((3, 3)), mode="constant") - full
    own = _detrended_var(rank_half, ~checker, block, degree) / rank_half.mean(axis=1) ** 2
    rank = (own + neigh_sum[full]) / (1.0 + neigh_cnt[full])
    if method == "log-cumulant":
        stat = _detrended_var(np.log(meas_half), checker, block, degree)
    else:
        stat = _detrended_var(meas_half, checker, block, degree) / meas_half.mean(axis=1) ** 2
    return rank, stat, int(checker.sum())


def _detrended_var(values: np.ndarray, where: np.ndarray, block: int, degree: int) -> np.ndarray:
    """Unbiased residual variance per row of ``values`` after a polynomial surface fit.

    Smooth reflectivity gradients inside a block are not speckle; removing a plane (degree 1)
    keeps them from lowering the ENL of otherwise homogeneous blocks.
    """
    yy, xx = np.nonzero(where.reshape(block, block))
    yy = (yy - yy.mean()) / max(1.0, np.ptp(yy))
    xx = (xx - xx.mean()) / max(1.0, np.ptp(xx))
    cols = [np.ones_like(yy)]
    if degree >= 1:
        cols += [yy, xx]
    if degree >= 2:
        cols += [yy * yy, xx * xx, yy * xx]
    design = np.stack(cols, axis=1)
    q, _ = np.linalg.qr(design)
    resid = values - (values @ q) @ q.T
    return (resid**2).sum(axis=1) / (values.shape[1] - design.shape[1])


def estimate_looks(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    block: int = 8,
    fraction: float = 0.1,
    method: Method = "log-cumulant",
    degree: int = 1,
    n_boot: int = 200,
    seed: int = 0,
) -> LooksEstimate:
    """Estimate the ENL of a (single-band, linear) intensity image.

    ``mask`` marks valid pixels (True = valid); non-positive and non-finite pixels are always
    left out. ``fraction`` of the fully valid blocks with the lowest coefficient of variation
    are used. Raises ValueError when too few valid blocks remain to say anything.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if method not in ("moments", "log-cumulant"):
        raise ValueError(f"unknown looks method {method!r}; use 'moments' or 'log-cumulant'")
    rank, stat, n = block_statistics(intensity, mask, block=block, method=method, degree=degree)
    if rank.size < _MIN_BLOCKS:
        raise ValueError(
            f"too few fully valid {block}x{block} blocks ({rank.size}, need {_MIN_BLOCKS}) to "
            "estimate the looks: the image is too small or mostly nodata/zero; pass the looks "
            "explicitly (--looks L)"
        )
    k = max(_MIN_BLOCKS, int(round(fraction * rank.size)))
    chosen = stat[np.argsort(rank, kind="stable")[:k]]
    looks = _looks_from_stat(float(chosen.mean()), n, method)
    rng = np.random.default_rng(seed)
    boot = chosen[rng.integers(0, k, size=(n_boot, k))].mean(axis=1)
    boot_looks = np.array([_looks_from_stat(float(s), n, method) for s in boot])
    low, high = (float(v) for v in np.percentile(boot_looks, [5, 95]))
    log.debug("looks %.3f [%.3f, %.3f] from %d blocks of %d", looks, low, high, k, block)
    return LooksEstimate(looks, low, high, k, block, fraction, method)
