"""xarray accessors: ``da.geodiff.despeckle(...)`` and ``ds.geodiff.fuse(...)`` (lazy, same grid)."""

from __future__ import annotations

from typing import Any

import xarray as xr


@xr.register_dataarray_accessor("geodiff")
class GeodiffDataArrayAccessor:
    """``da.geodiff.despeckle(**kw)``: see :func:`geodiff.api.despeckle` (same defaults as the CLI)."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def despeckle(self, **kwargs: Any):
        from geodiff.api import despeckle

        return despeckle(self._obj, **kwargs)


@xr.register_dataset_accessor("geodiff")
class GeodiffDatasetAccessor:
    """``ds.geodiff.fuse(optical="optical", sar="sar")`` and ``ds.geodiff.despeckle(variables=[...])``."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def fuse(self, optical: str = "optical", sar: str = "sar", **kwargs: Any) -> xr.DataArray:
        from geodiff.api import fuse

        missing = [v for v in (optical, sar) if v not in self._obj]
        if missing:
            raise ValueError(f"the Dataset has no variable(s) {missing}; it has {list(self._obj.data_vars)}")
        return fuse(self._obj[optical], self._obj[sar], **kwargs)

    def despeckle(self, variables: list[str] | None = None, **kwargs: Any) -> xr.Dataset:
        from geodiff.api import despeckle

        out = self._obj.copy()
        for name in variables or [v for v, a in self._obj.data_vars.items() if {"y", "x"} <= set(a.dims)]:
            out[name] = despeckle(self._obj[name], **kwargs)
        return out
