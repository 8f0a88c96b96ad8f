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


def _window_stats(y: np.ndarray, x: np.ndarray, valid: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    """Per window×window tile (row-major): CV of y (inf where not fully valid), ENL of y and of x."""
    h, w = y.shape
    nby, nbx = h // window, w // window
    if nby == 0 or nbx == 0:
        return np.empty(0), np.empty(0), np.empty(0)

    def tiles(a: np.ndarray) -> np.ndarray:
        return (
            a[: nby * window, : nbx * window]
            .reshape(nby, window, nbx, window)
            .swapaxes(1, 2)
            .reshape(nby * nbx, window * window)
        )

    full = tiles(valid).all(axis=1)
    ty, tx = tiles(np.where(valid, y, 0.0)), tiles(np.where(valid, x, 0.0))
    my, mx = ty.mean(axis=1), tx.mean(axis=1)
    vy, vx = ty.var(axis=1, ddof=1), tx.var(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(full & (my > 0), np.sqrt(vy) / my, np.inf)
        enl_y = np.where(vy > 0, my**2 / vy, np.inf)
        enl_x = np.where(vx > 0, mx**2 / vx, np.inf)
    return cv, enl_y, enl_x


def _cell_sums(planes: np.ndarray, window: int) -> np.ndarray:
    """Sums of ``planes`` (P, h, w) over each window×window cell of the block (edge cells padded with
    zeros), (cells, P) in row-major cell order; each cell is summed as one contiguous run, so its sum
    does not depend on the block it came in."""
    p, h, w = planes.shape
    ph, pw = -(-h // window) * window, -(-w // window) * window
    if (ph, pw) != (h, w):
        planes = np.pad(planes, ((0, 0), (0, ph - h), (0, pw - w)))
    nby, nbx = ph // window, pw // window
    cells = planes.reshape(p, nby, window, nbx, window).transpose(1, 3, 0, 2, 4)
    return np.ascontiguousarray(cells).reshape(nby * nbx, p, window * window).sum(axis=2)


class QualityAccumulator:
    """Streams the §2 figures over blocks of a scene, so memory does not grow with its size.

    Feed blocks whose origin (row, col) lies on the ``window`` grid of the scene and whose height
    and width are multiples of ``window`` (those on the bottom / right edges may be shorter);
    windows are laid on the scene's own grid from its origin. Without ``origin``, blocks are taken
    as consecutive full-width strips, top to bottom. The report does not depend on how the scene was
    cut: sums are kept per window cell (each cell lies in one block) and added exactly
    (``math.fsum``), and the homogeneous windows are ranked by CV with ties in row-major order.
    """

    def __init__(self, window: int = WINDOW, fraction: float = FRACTION) -> None:
        self.window, self.fraction = window, fraction
        self.n = 0
        self.nonzero_y = 0
        self._next_row = 0
        self._sums: list[np.ndarray] = []  # (cells, 4): sum r, sum r², sum x, sum y per window cell
        self._cv: list[np.ndarray] = []
        self._enl_y: list[np.ndarray] = []
        self._enl_x: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []

    def add(
        self,
        noisy: np.ndarray,
        despeckled: np.ndarray,
        mask: np.ndarray | None = None,
        *,
        origin: tuple[int, int] | None = None,
    ) -> None:
        """Add one block: ``noisy`` / ``despeckled`` linear intensities (h, w), ``mask`` (h, w) bool of
        valid pixels; ``origin`` the block's (row, col) in the scene (multiples of ``window``).

        Raises:
            ValueError: shapes differ or are not 2-D; ``origin`` off the window grid.
        """
        y = np.asarray(noisy, dtype=np.float64)
        x = np.asarray(despeckled, dtype=np.float64)
        if y.ndim != 2 or x.shape != y.shape:
            raise ValueError(
                f"input and output must be 2-D intensity bands of the same shape, got {y.shape} and "
                f"{x.shape}: pass the matching files (and the same --band)"
            )
        if origin is None:
            origin = (self._next_row, 0)
            self._next_row += y.shape[0]
        row0, col0 = int(origin[0]), int(origin[1])
        if row0 % self.window or col0 % self.window:
            raise ValueError(
                f"block origin {origin} is not on the {self.window}-px QA window grid: cut the scene "
                f"at multiples of {self.window} px"
            )
        valid = np.isfinite(y) & np.isfinite(x) & (y >= 0) & (x > 0)
        if mask is not None:
            valid &= np.asarray(mask, dtype=bool)
        yv = np.where(valid, y, 0.0)
        xv = np.where(valid, x, 1.0)
        r = np.where(valid, yv / xv, 0.0)
        xv = np.where(valid, xv, 0.0)
        self.n += int(valid.sum())
        self.nonzero_y += int(np.count_nonzero(yv))
        self._sums.append(_cell_sums(np.stack([r, r * r, xv, yv]), self.window))
        cv, enl_y, enl_x = _window_stats(y, x, valid, self.window)
        nby, nbx = y.shape[0] // self.window, y.shape[1] // self.window
        gi, gj = np.meshgrid(
            np.arange(nby) + row0 // self.window, np.arange(nbx) + col0 // self.window, indexing="ij"
        )
        self._cv.append(cv)
        self._enl_y.append(enl_y)
        self._enl_x.append(enl_x)
        self._rows.append(gi.ravel())
        self._cols.append(gj.ravel())

    def report(self, looks: float, looks_source: str = "given") -> QualityReport:
        if self.nonzero_y == 0:
            raise ValueError(
                "no valid pixels with non-zero intensity in both input and output (all zero or nodata): "
                "nothing to measure; check the files, the band and the nodata values"
            )
        if not looks > 0:
            raise ValueError(f"looks must be positive, got {looks}")
        sums = np.concatenate(self._sums)
        sum_r, sum_rr, sum_x, sum_y = (math.fsum(sums[:, i]) for i in range(4))
        mean_r = sum_r / self.n
        var_r = (sum_rr - self.n * mean_r**2) / (self.n - 1) if self.n > 1 else math.nan
        cv = np.concatenate(self._cv) if self._cv else np.empty(0)
        n_ok = int(np.isfinite(cv).sum())
        k = min(n_ok, max(1, int(round(self.fraction * n_ok)))) if n_ok else 0
        chosen = np.lexsort((np.concatenate(self._cols), np.concatenate(self._rows), cv))[:k]
        enl_y = np.concatenate(self._enl_y)[chosen] if k else np.empty(0)
        enl_x = np.concatenate(self._enl_x)[chosen] if k else np.empty(0)
        return QualityReport(
            looks=float(looks),
            looks_source=looks_source,
            ratio_mean=float(mean_r),
            ratio_var=float(var_r),
            ratio_var_times_looks=float(looks) * float(var_r),
            bias_db=10.0 * math.log10(sum_x / sum_y),
            enl_input=float(np.median(enl_y)) if k else math.nan,
            enl_output=float(np.median(enl_x)) if k else math.nan,
            n_windows=k,
            window=self.window,
            valid_pixels=self.n,
        )


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
    The ENL figures are medians over the chosen homogeneous windows. For scenes too large for
    memory, feed strips to :class:`QualityAccumulator` instead.
    """
    acc = QualityAccumulator(window, fraction)
    acc.add(noisy, despeckled, mask)
    source = "given"
    if looks is None:
        y = np.asarray(noisy, dtype=np.float64)
        valid = np.isfinite(y) & np.isfinite(np.asarray(despeckled, dtype=np.float64))
        if mask is not None:
            valid &= np.asarray(mask, dtype=bool)
        if acc.nonzero_y:
            looks, source = estimate_looks(y, valid).looks, "estimated"
    return acc.report(looks if looks is not None else math.nan, source)
