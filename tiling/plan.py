"""One global tile grid per scene, anchored at the raster origin.

Why one global grid: a tile's position, and therefore its seed and its neighbours, must not depend
on how the scene is chunked or on how many workers run it. Blocks (the unit of work handed to a
dask worker) are fixed groups of ``block_tiles x block_tiles`` tiles of that same grid, so the block
layout is a property of the plan too, never of dask's chunking.

Geometry (all in pixels, per axis):
    stride = tile - overlap;  tile i covers [i*stride, i*stride + tile)
    the last tile reaches or passes the far edge; pixels outside the raster are reflect-padded
    each tile is processed with ``halo`` extra context pixels on every side (cropped afterwards)
    block b owns the output pixels [b*K*stride, (b+1)*K*stride) and processes every tile touching them
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from tiling.errors import TilePlanError
from tiling.geometry import PixelWindow


@dataclass(frozen=True)
class TileSpec:
    """The tile geometry of a job, as one object (all in pixels); saved to and read from output tags.

    tile: side of a square tile (what a tile function produces, halo excluded), >= 1.
    overlap: pixels shared by neighbouring tiles, 0 <= overlap < tile (stride = tile - overlap).
    halo: context pixels read on every side of a tile or block and cropped after, 0 <= halo <= tile.
    block_tiles: a block (one unit of work, one dask task) is ``block_tiles x block_tiles`` tiles.

    Raises:
        TilePlanError (ValueError): any of the bounds above is violated; the message names the option.
    """

    tile: int = 256
    overlap: int = 32
    halo: int = 0
    block_tiles: int = 4

    def __post_init__(self) -> None:
        for name in ("tile", "overlap", "halo", "block_tiles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TilePlanError(f"{name}={value!r} must be a whole number of pixels")
            object.__setattr__(self, name, int(value))
        if self.tile < 1:
            raise TilePlanError(f"tile={self.tile} must be a positive number of pixels (e.g. --tile 256)")
        if not 0 <= self.overlap < self.tile:
            raise TilePlanError(
                f"overlap={self.overlap} must be >= 0 and smaller than tile={self.tile}; lower --overlap"
            )
        if self.halo < 0:
            raise TilePlanError(f"halo={self.halo} must be >= 0")
        if self.tile < self.halo:
            raise TilePlanError(
                f"tile={self.tile} is smaller than the halo {self.halo} the method needs; "
                f"use --tile {max(self.halo, 2 * self.halo)} or more (or a smaller --window)"
            )
        if self.block_tiles < 1:
            raise TilePlanError(f"block_tiles={self.block_tiles} must be >= 1")

    @property
    def stride(self) -> int:
        """Pixels between the origins of neighbouring tiles: ``tile - overlap``."""
        return self.tile - self.overlap

    @property
    def patch(self) -> int:
        """Side of what a tile function sees: the tile plus its halo on both sides."""
        return self.tile + 2 * self.halo

    def to_dict(self) -> dict[str, int]:
        """``{"tile", "overlap", "halo", "block_tiles"}`` as plain ints (JSON-ready)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TileSpec:
        """Inverse of :meth:`to_dict`; values may be ints or integer strings (as read from tags).

        Raises:
            TilePlanError (ValueError): unknown keys or values that are not whole numbers.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TilePlanError(f"unknown tile-plan key(s) {unknown}; expected some of {sorted(known)}")
        try:
            return cls(**{k: int(v) for k, v in values.items()})
        except (TypeError, ValueError) as exc:
            if isinstance(exc, TilePlanError):
                raise
            raise TilePlanError(
                f"tile-plan values must be whole numbers of pixels; got {dict(values)}"
            ) from exc


@dataclass(frozen=True)
class Block:
    """A unit of work: the output pixels it owns and the tiles that cover them.

    index: (block row, block col) in the plan's block grid.
    core: the output pixels the block owns (inside the raster); each pixel is owned by one block.
    extent: the canvas of the block's tiles, halo excluded (may pass the raster edges).
    tile_rows / tile_cols: first and last (inclusive) tile row / column of the global tile grid.
    """

    index: tuple[int, int]
    core: PixelWindow
    extent: PixelWindow
    tile_rows: tuple[int, int]
    tile_cols: tuple[int, int]

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(tile rows, tile cols) of the block's tile grid."""
        return self.tile_rows[1] - self.tile_rows[0] + 1, self.tile_cols[1] - self.tile_cols[0] + 1

    @property
    def n_tiles(self) -> int:
        """Number of tiles the block processes."""
        rows, cols = self.grid_shape
        return rows * cols

    @property
    def tile_ids(self) -> list[tuple[int, int]]:
        """Global (tile row, tile col) of the block's tiles, row-major (the order tiles are handed out)."""
        return [
            (i, j)
            for i in range(self.tile_rows[0], self.tile_rows[1] + 1)
            for j in range(self.tile_cols[0], self.tile_cols[1] + 1)
        ]


def _axis_count(size: int, tile: int, stride: int) -> int:
    return 1 if size <= tile else math.ceil((size - tile) / stride) + 1


def _first_last(start: int, stop: int, tile: int, stride: int, count: int) -> tuple[int, int]:
    """Tiles i with i*stride < stop and i*stride + tile > start."""
    first = max(0, (start - tile) // stride + 1)
    last = min(count - 1, (stop - 1) // stride)
    return first, last


@dataclass(frozen=True)
class TilePlan:
    """The tile grid of a ``height x width`` raster (pixels) for a :class:`TileSpec`.

    ``seed`` makes per-tile seeds (:meth:`tile_seed`). See the module docstring for the geometry.

    Raises:
        TilePlanError (ValueError): an empty raster.
    """

    height: int
    width: int
    spec: TileSpec = TileSpec()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise TilePlanError(f"raster size {self.height}x{self.width} is empty; give a raster with pixels")
        if not isinstance(self.spec, TileSpec):
            raise TypeError(f"spec must be a TileSpec, not {type(self.spec).__name__}")

    # ---- grid -------------------------------------------------------------------------------
    @property
    def tile(self) -> int:
        """Tile side (pixels)."""
        return self.spec.tile

    @property
    def overlap(self) -> int:
        """Overlap of neighbouring tiles (pixels)."""
        return self.spec.overlap

    @property
    def halo(self) -> int:
        """Context pixels on every side of a tile or block."""
        return self.spec.halo

    @property
    def block_tiles(self) -> int:
        """Tiles per block side."""
        return self.spec.block_tiles

    @property
    def stride(self) -> int:
        """Pixels between neighbouring tile origins."""
        return self.spec.stride

    @property
    def patch(self) -> int:
        """Side of what a tile function sees: the tile plus its halo on both sides."""
        return self.spec.patch

    @property
    def n_rows(self) -> int:
        """Tile rows of the grid."""
        return _axis_count(self.height, self.tile, self.stride)

    @property
    def n_cols(self) -> int:
        """Tile columns of the grid."""
        return _axis_count(self.width, self.tile, self.stride)

    @property
    def n_tiles(self) -> int:
        """Tiles in the grid."""
        return self.n_rows * self.n_cols

    def tile_window(self, row: int, col: int) -> PixelWindow:
        """Pixels of tile (row, col), halo excluded; it may pass the far edges of the raster."""
        return PixelWindow(row * self.stride, col * self.stride, self.tile, self.tile)

    def tile_seed(self, row: int, col: int) -> int:
        """Deterministic 63-bit seed from (plan seed, tile row, tile col) only."""
        state = np.random.SeedSequence([self.seed, row, col]).generate_state(2, dtype=np.uint32)
        return int((int(state[0]) << 31) ^ int(state[1]))

    def tiles(self) -> Iterator[tuple[int, int]]:
        """Every (tile row, tile col), row-major."""
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                yield r, c

    # ---- blocks -----------------------------------------------------------------------------
    @property
    def block_size(self) -> int:
        """Side in pixels of the output owned by one block."""
        return self.block_tiles * self.stride

    @property
    def block_grid(self) -> tuple[int, int]:
        """(block rows, block cols)."""
        return math.ceil(self.height / self.block_size), math.ceil(self.width / self.block_size)

    def block(self, brow: int, bcol: int) -> Block:
        """Block (brow, bcol) of the block grid."""
        b = self.block_size
        r0, c0 = brow * b, bcol * b
        core = PixelWindow(r0, c0, min(b, self.height - r0), min(b, self.width - c0))
        tile_rows = _first_last(core.row, core.row_stop, self.tile, self.stride, self.n_rows)
        tile_cols = _first_last(core.col, core.col_stop, self.tile, self.stride, self.n_cols)
        extent = PixelWindow(
            tile_rows[0] * self.stride,
            tile_cols[0] * self.stride,
            (tile_rows[1] - tile_rows[0]) * self.stride + self.tile,
            (tile_cols[1] - tile_cols[0]) * self.stride + self.tile,
        )
        return Block((brow, bcol), core, extent, tile_rows, tile_cols)

    def blocks(self) -> Iterator[Block]:
        """Every block, row-major."""
        nb_r, nb_c = self.block_grid
        for i in range(nb_r):
            for j in range(nb_c):
                yield self.block(i, j)

    # ---- geography --------------------------------------------------------------------------
    def footprints(self, transform, crs, aoi=None):  # noqa: ANN001, ANN201 - Affine, CRS, shapely in; GeoDataFrame out
        """GeoDataFrame of tile footprints (clipped to the raster), one row per tile.

        ``transform`` (affine.Affine) maps pixel (col, row) to map coordinates in ``crs``; ``aoi`` (a
        shapely geometry in ``crs``) keeps only the tiles that touch it. Columns: row, col (tile grid),
        row_off, col_off (pixels), block_row, block_col, seed (str: 63-bit ints overflow GeoPackage
        integers) and geometry (polygons in ``crs``; true quadrilaterals on rotated grids).
        """
        import geopandas as gpd
        from shapely.geometry import box

        def to_map(x: float, y: float) -> tuple[float, float]:  # affine without the deprecated `*`
            t = transform
            return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f

        rows = []
        for r, c in self.tiles():
            win = self.tile_window(r, c)
            y0, x0 = win.row, win.col
            y1, x1 = min(y0 + self.tile, self.height), min(x0 + self.tile, self.width)
            xs, ys = zip(*(to_map(x, y) for x, y in ((x0, y0), (x1, y1))), strict=True)
            geom = box(min(xs), min(ys), max(xs), max(ys))
            if transform.b != 0 or transform.d != 0:  # rotated grid: keep the true quadrilateral
                from shapely.geometry import Polygon

                geom = Polygon([to_map(*p) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))])
            if aoi is not None and not geom.intersects(aoi):
                continue
            rows.append(
                {
                    "row": r,
                    "col": c,
                    "row_off": y0,
                    "col_off": x0,
                    "block_row": y0 // self.block_size,
                    "block_col": x0 // self.block_size,
                    "seed": str(self.tile_seed(r, c)),
                    "geometry": geom,
                }
            )
        columns = ["row", "col", "row_off", "col_off", "block_row", "block_col", "seed", "geometry"]
        return gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=crs)
