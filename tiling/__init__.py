"""tiling: tile plans, blending, raster I/O and dask/xarray plumbing (no diffusion here)."""
