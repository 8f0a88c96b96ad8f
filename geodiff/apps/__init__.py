"""Apps: whole-scene jobs (despeckle, fuse) that tie sensors, tiling and solvers together."""
