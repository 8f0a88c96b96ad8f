"""Window-weighted overlap-add of a regular grid of tiles, and its inverse, in pure torch (any device).

The tiles of one block form a full ``rows x cols`` grid with a fixed stride, so overlap-add is
``torch.nn.functional.fold`` (running sum of weighted tiles and of weights) and extraction is
``unfold``. :class:`BlendHook` is the per-step consensus the diffusion solvers call: it overlap-adds
the tiles of a block and re-extracts them, so that overlapping tiles agree at every sampling step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tiling.windows import window_2d


def _canvas_shape(grid: tuple[int, int], patch: int, stride: int) -> tuple[int, int]:
    return (grid[0] - 1) * stride + patch, (grid[1] - 1) * stride + patch


def _check(tiles: torch.Tensor, grid: tuple[int, int]) -> None:
    if tiles.ndim != 4 or tiles.shape[-1] != tiles.shape[-2]:
        raise ValueError(f"tiles must be (B, C, P, P); got {tuple(tiles.shape)}")
    if tiles.shape[0] != grid[0] * grid[1]:
        raise ValueError(f"{tiles.shape[0]} tiles do not fill a {grid[0]}x{grid[1]} grid")


def overlap_add(
    tiles: torch.Tensor,
    grid: tuple[int, int],
    stride: int,
    weight: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Running sums of ``weight * tile`` and of ``weight`` over a row-major grid of tiles.

    ``tiles`` (B, C, P, P) with B = rows * cols of ``grid``, any float dtype and device; ``weight``
    (P, P) is cast to them; ``stride`` in pixels. Returns (sum (C, H, W), weight sum (1, H, W)) with
    H = (rows - 1) * stride + P (W likewise), in the tiles' dtype.

    Raises:
        ValueError: tiles that are not square (B, C, P, P) or do not fill the grid.
    """
    _check(tiles, grid)
    b, c, p, _ = tiles.shape
    size = _canvas_shape(grid, p, stride)
    w = weight.to(tiles.device, tiles.dtype)
    cols = (tiles * w).reshape(b, c * p * p).transpose(0, 1).unsqueeze(0)
    total = F.fold(cols, size, kernel_size=p, stride=stride)[0]
    wcols = w.reshape(p * p, 1).expand(p * p, b).unsqueeze(0)
    wsum = F.fold(wcols, size, kernel_size=p, stride=stride)[0]
    return total, wsum


def blend_tiles(
    tiles: torch.Tensor, grid: tuple[int, int], stride: int, weight: torch.Tensor
) -> torch.Tensor:
    """Normalised overlap-add: the blended canvas (C, H, W) = sum(w * tile) / sum(w).

    Shapes and errors as :func:`overlap_add`; the weight must be strictly positive (see
    :mod:`tiling.windows`) so that every canvas pixel is defined.
    """
    total, wsum = overlap_add(tiles, grid, stride, weight)
    return total / wsum


def extract_tiles(canvas: torch.Tensor, grid: tuple[int, int], patch: int, stride: int) -> torch.Tensor:
    """Inverse of overlap-add: the row-major grid of tiles (rows * cols, C, patch, patch) of ``canvas``
    (C, H, W), same dtype and device.

    Raises:
        ValueError: the canvas is not (C, (rows - 1) * stride + patch, (cols - 1) * stride + patch).
    """
    c = canvas.shape[0]
    expected = _canvas_shape(grid, patch, stride)
    if tuple(canvas.shape[-2:]) != expected:
        raise ValueError(f"canvas {tuple(canvas.shape[-2:])} does not match grid {grid}: need {expected}")
    # strided view (C, rows, cols, P, P) -> one copy; cheaper than F.unfold's im2col for small grids
    view = canvas.unfold(1, patch, stride).unfold(2, patch, stride)
    return view.permute(1, 2, 0, 3, 4).reshape(-1, c, patch, patch)


class BlendHook:
    """Consensus step for the tiles of one block: ``hook(tiles) -> tiles`` with overlaps averaged.

    Tiles are the (B, C, P, P) patches a tile function works on (halo included), row-major over the
    block's ``grid`` (rows, cols), ``patch`` = P and ``stride`` in pixels; ``window`` names the
    blending window (:data:`tiling.windows.WINDOWS`). The window is strictly positive, so every pixel
    keeps a defined value. Blending then re-extracting is a projection: consistent tiles are a fixed
    point. Calling it raises ValueError for tiles of another size than ``patch``.
    """

    def __init__(self, grid: tuple[int, int], patch: int, stride: int, window: str = "hann") -> None:
        self.grid = grid
        self.patch = patch
        self.stride = stride
        self.window = window
        self._weight = torch.from_numpy(window_2d(patch, patch, window).copy())

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        if tiles.shape[-1] != self.patch:
            raise ValueError(f"blend hook built for {self.patch}px tiles, got {tiles.shape[-1]}px")
        canvas = blend_tiles(tiles, self.grid, self.stride, self._weight)
        return extract_tiles(canvas, self.grid, self.patch, self.stride)
