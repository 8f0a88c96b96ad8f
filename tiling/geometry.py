"""Pixel windows and reflect padding: the index arithmetic every reader and writer shares.

Why a named window: rasterio's ``Window(col_off, row_off, width, height)`` puts columns first, numpy
slices put rows first; a bare ``(row, col, h, w)`` tuple handed to the wrong one silently reads the
transposed place. Inside :mod:`tiling` every window is a :class:`PixelWindow` (rows first, named
fields); rasterio's ``Window`` appears only at the I/O edge through :meth:`PixelWindow.to_rasterio`.

All quantities are in pixels of the raster grid: ``row`` counts down from the top edge, ``col`` right
from the left edge, both starting at 0; windows may reach outside the raster (negative offsets, past
the far edge), where readers reflect-pad (:func:`reflect_index`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rasterio.windows import Window

__all__ = ["PixelWindow", "ReflectedWindow", "reflect_index", "reflect_window"]


@dataclass(frozen=True, slots=True)
class PixelWindow:
    """A rectangle of pixels: top-left ``(row, col)`` and size ``height x width`` (all in pixels).

    ``row``/``col`` may be negative or the window may pass the far edges (reads then reflect-pad);
    ``height``/``width`` are >= 0. Immutable and hashable; not a tuple, so it cannot be unpacked into
    rasterio's column-first ``Window`` by mistake.

    Raises:
        ValueError: a negative or non-integer size or offset.
    """

    row: int
    col: int
    height: int
    width: int

    def __post_init__(self) -> None:
        for name in ("row", "col", "height", "width"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ValueError(f"PixelWindow.{name}={value!r} must be an integer number of pixels")
            object.__setattr__(self, name, int(value))
        if self.height < 0 or self.width < 0:
            raise ValueError(f"window size {self.height}x{self.width} must be >= 0 pixels")

    # ---- derived ------------------------------------------------------------------------------
    @property
    def row_stop(self) -> int:
        """First row below the window (exclusive end)."""
        return self.row + self.height

    @property
    def col_stop(self) -> int:
        """First column right of the window (exclusive end)."""
        return self.col + self.width

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels, the trailing shape of an array read from the window."""
        return self.height, self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices for numpy indexing of a whole-raster ``(..., H, W)`` array."""
        return slice(self.row, self.row_stop), slice(self.col, self.col_stop)

    def grow(self, pixels: int) -> PixelWindow:
        """The window with ``pixels`` more on every side (a halo); negative shrinks it."""
        return PixelWindow(
            self.row - pixels, self.col - pixels, self.height + 2 * pixels, self.width + 2 * pixels
        )

    def relative_to(self, outer: PixelWindow) -> PixelWindow:
        """This window in the coordinates of ``outer`` (whose top-left becomes (0, 0))."""
        return PixelWindow(self.row - outer.row, self.col - outer.col, self.height, self.width)

    def inside(self, height: int, width: int) -> bool:
        """True when the window lies wholly inside a ``height x width`` raster."""
        return self.row >= 0 and self.col >= 0 and self.row_stop <= height and self.col_stop <= width

    def crop(self, array: np.ndarray) -> np.ndarray:
        """The window's pixels of ``array`` (..., H, W) given in the window's parent coordinates."""
        rows, cols = self.slices
        return array[..., rows, cols]

    # ---- the rasterio edge --------------------------------------------------------------------
    def to_rasterio(self) -> Window:
        """rasterio ``Window(col_off=col, row_off=row, width=width, height=height)``."""
        from rasterio.windows import Window

        return Window(col_off=self.col, row_off=self.row, width=self.width, height=self.height)


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map any integer pixel index onto ``[0, n)`` by mirror reflection without repeating the edge.

    Same as ``numpy.pad(mode="reflect")`` (``scipy.ndimage`` mode "mirror") for any pad width;
    int64 indices of the same shape as ``idx``.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.abs(idx) % period
    return np.where(m >= n, period - m, m)


@dataclass(frozen=True)
class ReflectedWindow:
    """How to read a window that may pass the raster edges: read ``bounds``, then :meth:`take`.

    ``rows``/``cols`` are the reflected absolute raster indices (int64) of the window's rows and
    columns; ``bounds`` is the smallest window inside the raster that holds all of them.
    """

    window: PixelWindow
    bounds: PixelWindow
    rows: np.ndarray
    cols: np.ndarray

    @property
    def identity(self) -> bool:
        """True when the window lies inside the raster: what is read from ``bounds`` is the result."""
        return self.window == self.bounds

    def take(self, read: np.ndarray) -> np.ndarray:
        """The window's pixels (..., height, width) from the pixels ``read`` (..., bounds) of bounds."""
        if self.identity:
            return read
        return read[..., self.rows - self.bounds.row, :][..., self.cols - self.bounds.col]


def reflect_window(window: PixelWindow, height: int, width: int) -> ReflectedWindow:
    """Plan a reflect-padded read of ``window`` from a ``height x width`` raster (pixels)."""
    rows = reflect_index(np.arange(window.row, window.row_stop), height)
    cols = reflect_index(np.arange(window.col, window.col_stop), width)
    if window.inside(height, width):
        return ReflectedWindow(window, window, rows, cols)
    r0, c0 = int(rows.min()), int(cols.min())
    bounds = PixelWindow(r0, c0, int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1)
    return ReflectedWindow(window, bounds, rows, cols)
