"""No-reference quality checks of a despeckled SAR intensity (PROTOCOL.md §2).

For a real L-look intensity y and its despeckled estimate x̂ there is no clean truth, but the
ratio image r = y / x̂ must look like pure speckle: mean 1 and variance 1/L. A filter that
removes structure leaves structure in r (L·var(r) far from 1); one that shifts radiometry
(common with deep despecklers outside their training domain) shows a bias in dB; the ENL of x̂
on homogeneous areas says how much speckle was removed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sensors.looks import estimate_looks

WINDOW = 32
FRACTION = 0.10


@dataclass(frozen=True)
class QualityReport:
    """The §2 figures for one (input, output) pair; ``to_dict`` gives JSON-ready values."""

    looks: float
    looks_source: str  # "given" or "estimated"
    ratio_mean: float
    ratio_var: float
    ratio_var_times_looks: float
    bias_db: float
    enl_input: float
    enl_output: float
    n_windows: int
    window: int
    valid_pixels: int

    def to_dict(self) -> dict[str, float | int | str | None]:
        """Plain dict; non-finite figures (e.g. the ENL of a constant window) become None."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }


def homogeneous_windows(
    intensity: np.ndarray, mask: np.ndarray, window: int = WINDOW, fraction: float = FRACTION
) -> list[tuple[slice, slice]]:
    """The ``fraction`` of fully valid window×window tiles with the lowest coefficient of variation."""
    h, w = intensity.shape
    nby, nbx = h // window, w // window
    if nby == 0 or nbx == 0:
        return []
    y = np.where(mask, intensity, 0.0).astype(np.float64)
    tiles = y[: nby * window, : nbx * window].reshape(nby, window, nbx, window).swapaxes(1, 2)
    full = mask[: nby * window, : nbx * window].reshape(nby, window, nbx, window).swapaxes(1, 2)
    full = full.reshape(nby, nbx, -1).all(axis=2)
    tiles = tiles.reshape(nby, nbx, -1)
    mean = tiles.mean(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(full & (mean > 0), tiles.std(axis=2, ddof=1) / mean, np.inf)
    order = np.argsort(cv, axis=None, kind="stable")
    n_ok = int(np.isfinite(cv).sum())
    k = min(n_ok, max(1, int(round(fraction * n_ok)))) if n_ok else 0
    out = []
    for flat in order[:k]:
        i, j = divmod(int(flat), nbx)
        out.append((slice(i * window, (i + 1) * window), slice(j * window, (j + 1) * window)))
    return out


def _enl(values: np.ndarray) -> float:
    var = float(values.var(ddof=1))
    return float(values.mean()) ** 2 / var if var > 0 else math.inf


def quality_report(
    noisy: np.ndarray,
    despeckled: np.ndarray,
    looks: float | None = None,
    mask: np.ndarray | None = None,
    *,
    window: int = WINDOW,
    fraction: float = FRACTION,
) -> QualityReport:
    """§2 figures for a despeckled intensity ``despeckled`` of the real intensity ``noisy``.

    ``looks`` is L of ``noisy`` (estimated from it when None); ``mask`` marks valid pixels.
    The ENL figures are medians over the chosen homogeneous windows.
    """
    y = np.asarray(noisy, dtype=np.float64)
    x = np.asarray(despeckled, dtype=np.float64)
    if y.ndim != 2 or x.shape != y.shape:
        raise ValueError(
            f"input and output must be 2-D intensity bands of the same shape, got {y.shape} and {x.shape}: "
            "pass the matching files (and the same --band)"
        )
    valid = np.isfinite(y) & np.isfinite(x) & (y >= 0) & (x > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    if not np.any(valid & (y > 0)):
        raise ValueError(
            "no valid pixels with non-zero intensity in both input and output (all zero or nodata): "
            "nothing to measure; check the files, the band and the nodata values"
        )
    if looks is None:
        est = estimate_looks(y, valid)
        looks, source = est.looks, "estimated"
    else:
        if not looks > 0:
            raise ValueError(f"looks must be positive, got {looks}")
        source = "given"
    ratio = y[valid] / x[valid]
    ratio_var = float(ratio.var(ddof=1)) if ratio.size > 1 else math.nan
    bias = 10.0 * math.log10(float(x[valid].mean()) / float(y[valid].mean()))
    wins = homogeneous_windows(y, valid, window, fraction)
    enl_in = float(np.median([_enl(y[w]) for w in wins])) if wins else math.nan
    enl_out = float(np.median([_enl(x[w]) for w in wins])) if wins else math.nan
    return QualityReport(
        looks=float(looks),
        looks_source=source,
        ratio_mean=float(ratio.mean()),
        ratio_var=ratio_var,
        ratio_var_times_looks=float(looks) * ratio_var,
        bias_db=bias,
        enl_input=enl_in,
        enl_output=enl_out,
        n_windows=len(wins),
        window=window,
        valid_pixels=int(valid.sum()),
    )
