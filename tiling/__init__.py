"""tiling: tile plans, blending, raster I/O and dask/xarray plumbing (no diffusion, no radiometry).

A small, general package: it knows pixels, grids and files, never what the pixels mean. All sizes
are in pixels; every window is a :class:`~tiling.geometry.PixelWindow` (rows first).

Modules, bottom up:
- :mod:`tiling.errors`: the exceptions (each also a ValueError / FileNotFoundError / OSError ...)
- :mod:`tiling.geometry`: :class:`PixelWindow`, reflect padding by index
- :mod:`tiling.raster_io`: :func:`open_raster`, the one opener (GDAL path strings untouched),
  :class:`RasterMeta`, guarded window reads
- :mod:`tiling.atomic`: :func:`atomic_path`, all-or-nothing outputs
- :mod:`tiling.sources`: :class:`RasterSource` / :class:`ArraySource`, reflect-padded window reads
- :mod:`tiling.cog`: :func:`check_output_path` and the window-by-window :class:`CogWriter`
- :mod:`tiling.plan`: :class:`TileSpec` (tile, overlap, halo, block_tiles) and :class:`TilePlan`,
  the global tile grid with its blocks and per-tile seeds
- :mod:`tiling.windows` / :mod:`tiling.blend`: blending windows, overlap-add, the per-step
  :class:`BlendHook`
- :mod:`tiling.runner`: :func:`run_raster` / :func:`run_array` run a tile-batch (torch) or array
  (numpy) function block by block, in-process or on a dask.distributed cluster
- :mod:`tiling.xarray_adapter`: lazy same-grid xarray results (:func:`map_tiles`,
  :func:`map_overlap`) and :func:`resolve_nodata`
- :mod:`tiling.align`: put one raster's pixels onto another's grid
- :mod:`tiling.progress`: one progress reporter (tqdm or JSON lines on stderr)
"""
