"""tiling: tile plans, blending, raster I/O and dask/xarray plumbing (no diffusion here).

Entry points:
- :class:`tiling.plan.TilePlan`: the global tile grid (overlap, halo, blocks, per-tile seeds, footprints)
- :func:`tiling.runner.run_raster` / :func:`tiling.runner.run_array`: run a tile-batch (torch) or array
  (numpy) function over a scene block by block, serially or on a dask.distributed cluster
- :class:`tiling.runner.TileContext`: what a tile function gets (seeds, positions, valid masks, ``blend``)
- :class:`tiling.blend.BlendHook`: per-step consensus of the overlapping tiles of a block
- :func:`tiling.xarray_adapter.map_tiles`: lazy, same-grid xarray results
- :class:`tiling.raster_io.CogWriter`: window-by-window writes, atomic COG output
"""
