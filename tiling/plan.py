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
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Block:
    """A unit of work: the output pixels it owns (core) and the tiles that cover them."""

    index: tuple[int, int]  # (block row, block col)
    core: tuple[int, int, int, int]  # (row0, col0, height, width) of owned output pixels, inside the raster
    tile_rows: tuple[int, int]  # first and last (inclusive) tile row
    tile_cols: tuple[int, int]  # first and last (inclusive) tile col

    @property
    def n_tiles(self) -> int:
        return (self.tile_rows[1] - self.tile_rows[0] + 1) * (self.tile_cols[1] - self.tile_cols[0] + 1)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.tile_rows[1] - self.tile_rows[0] + 1, self.tile_cols[1] - self.tile_cols[0] + 1


def _axis_count(size: int, tile: int, stride: int) -> int:
    return 1 if size <= tile else math.ceil((size - tile) / stride) + 1


def _first_last(start: int, stop: int, tile: int, stride: int, count: int) -> tuple[int, int]:
    """Tiles i with i*stride < stop and i*stride + tile > start."""
    first = max(0, (start - tile) // stride + 1)
    last = min(count - 1, (stop - 1) // stride)
    return first, last


@dataclass(frozen=True)
class TilePlan:
    """Tile grid of a ``height x width`` raster; see the module docstring for the geometry."""

    height: int
    width: int
    tile: int = 256
    overlap: int = 32
    halo: int = 0
    block_tiles: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"raster size {self.height}x{self.width} is empty; give a raster with pixels")
        if self.tile < 1:
            raise ValueError(f"tile={self.tile} must be a positive number of pixels (e.g. --tile 256)")
        if not 0 <= self.overlap < self.tile:
            raise ValueError(
                f"overlap={self.overlap} must be >= 0 and smaller than tile={self.tile}; lower --overlap"
            )
        if self.halo < 0:
            raise ValueError(f"halo={self.halo} must be >= 0")
        if self.tile < self.halo:
            raise ValueError(
                f"tile={self.tile} is smaller than the halo {self.halo} the method needs; "
                f"use --tile {max(self.halo, 2 * self.halo)} or more (or a smaller --window)"
            )
        if self.block_tiles < 1:
            raise ValueError(f"block_tiles={self.block_tiles} must be >= 1")

    # ---- grid -------------------------------------------------------------------------------
    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def patch(self) -> int:
        """Side of what a tile function sees: the tile plus its halo on both sides."""
        return self.tile + 2 * self.halo

    @property
    def n_rows(self) -> int:
        return _axis_count(self.height, self.tile, self.stride)

    @property
    def n_cols(self) -> int:
        return _axis_count(self.width, self.tile, self.stride)

    @property
    def n_tiles(self) -> int:
        return self.n_rows * self.n_cols

    def tile_origin(self, row: int, col: int) -> tuple[int, int]:
        """Top-left pixel (row, col) of tile (row, col); may lie so that the tile passes the far edge."""
        return row * self.stride, col * self.stride

    def tile_seed(self, row: int, col: int) -> int:
        """Deterministic 63-bit seed from (plan seed, tile row, tile col) only."""
        state = np.random.SeedSequence([self.seed, row, col]).generate_state(2, dtype=np.uint32)
        return int((int(state[0]) << 31) ^ int(state[1]))

    def tiles(self) -> Iterator[tuple[int, int]]:
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                yield r, c

    def tiles_in_window(self, row0: int, col0: int, height: int, width: int) -> list[tuple[int, int]]:
        """Tile ids whose tile area (halo excluded) intersects the pixel window."""
        r0, r1 = _first_last(row0, row0 + height, self.tile, self.stride, self.n_rows)
        c0, c1 = _first_last(col0, col0 + width, self.tile, self.stride, self.n_cols)
        return [(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]

    # ---- blocks -----------------------------------------------------------------------------
    @property
    def block_size(self) -> int:
        """Side in pixels of the output owned by one block."""
        return self.block_tiles * self.stride

    @property
    def block_grid(self) -> tuple[int, int]:
        return math.ceil(self.height / self.block_size), math.ceil(self.width / self.block_size)

    def block(self, brow: int, bcol: int) -> Block:
        b = self.block_size
        r0, c0 = brow * b, bcol * b
        h, w = min(b, self.height - r0), min(b, self.width - c0)
        return Block(
            index=(brow, bcol),
            core=(r0, c0, h, w),
            tile_rows=_first_last(r0, r0 + h, self.tile, self.stride, self.n_rows),
            tile_cols=_first_last(c0, c0 + w, self.tile, self.stride, self.n_cols),
        )

    def blocks(self) -> Iterator[Block]:
        nb_r, nb_c = self.block_grid
        for i in range(nb_r):
            for j in range(nb_c):
                yield self.block(i, j)

    def blocks_in_window(self, row0: int, col0: int, height: int, width: int) -> list[Block]:
        """Blocks whose owned pixels intersect the window."""
        b = self.block_size
        return [
            self.block(i, j)
            for i in range(row0 // b, (row0 + height - 1) // b + 1)
            for j in range(col0 // b, (col0 + width - 1) // b + 1)
        ]

    def block_extent(self, block: Block) -> tuple[int, int, int, int]:
        """(row0, col0, height, width) of the block's tile canvas (tiles without halo, may pass edges)."""
        (tr0, tr1), (tc0, tc1) = block.tile_rows, block.tile_cols
        r0, c0 = self.tile_origin(tr0, tc0)
        return r0, c0, (tr1 - tr0) * self.stride + self.tile, (tc1 - tc0) * self.stride + self.tile

    # ---- geography --------------------------------------------------------------------------
    def footprints(self, transform, crs, aoi=None):  # noqa: ANN001 - rasterio Affine, CRS, shapely geometry
        """GeoDataFrame of tile footprints (clipped to the raster) with row, col, seed and block columns.

        ``aoi`` (a shapely geometry in the raster CRS) keeps only the tiles that touch it.
        """
        import geopandas as gpd
        from shapely.geometry import box

        def to_map(x: float, y: float) -> tuple[float, float]:  # affine without the deprecated `*`
            t = transform
            return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f

        rows = []
        for r, c in self.tiles():
            y0, x0 = self.tile_origin(r, c)
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
