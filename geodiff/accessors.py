"""xarray accessors: ``da.geodiff.despeckle(...)`` and ``ds.geodiff.fuse(...)`` (lazy, same grid).

Registered when :mod:`geodiff` is imported. Both are thin fronts over :func:`geodiff.api.despeckle` and
:func:`geodiff.api.fuse`: results are dask-backed and keep the input's dims, coords and attrs.

Laziness: a despeckled result is chunked by the tile plan's blocks (SAR-DPS: ``4 x (tile - overlap)`` px,
1024 px by default) or, for classical filters, by the input's chunks (1024 px for numpy-backed input),
so computing a window runs only the blocks that touch it. Computing runs on dask's current scheduler:
the active ``distributed.Client`` when there is one (the blocks then run on its workers; dask's nanny
starts them with one OpenMP thread, so SAR-DPS may differ from an in-process run by about 1e-6
relative), else in-process threads.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from geodiff.errors import InputError


@xr.register_dataarray_accessor("geodiff")
class GeodiffDataArrayAccessor:
    """``da.geodiff``: despeckle a SAR DataArray with ``y``/``x`` dims (and at most one band dim)."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def despeckle(self, **kwargs: Any) -> xr.DataArray | xr.Dataset:
        """The despeckled DataArray (lazy, same grid, same units), or with ``uncertainty=True`` a Dataset
        of ``despeckled`` and ``uncertainty`` (posterior std). Keywords and errors as
        :func:`geodiff.api.despeckle` (SAR-DPS, the review's eq. 22-24, by default)."""
        from geodiff.api import despeckle

        return despeckle(self._obj, **kwargs)


@xr.register_dataset_accessor("geodiff")
class GeodiffDatasetAccessor:
    """``ds.geodiff``: fuse an optical variable with a SAR variable, or despeckle SAR variables."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def fuse(self, optical: str = "optical", sar: str = "sar", **kwargs: Any) -> xr.DataArray:
        """Fuse variable ``optical`` ((band, y, x) or (y, x), linear units) with variable ``sar`` ((y, x),
        ``sar_units``) on one grid: a lazy float64 DataArray shaped like ``optical`` (DPS with the fusion
        eq. 25-26 by default). Keywords as :func:`geodiff.api.fuse` (``config`` or FusionConfig fields).

        Raises:
            InputError (ValueError): a variable is missing; otherwise as :func:`geodiff.api.fuse`.
        """
        from geodiff.api import fuse

        missing = [v for v in (optical, sar) if v not in self._obj]
        if missing:
            raise InputError(f"the Dataset has no variable(s) {missing}; it has {list(self._obj.data_vars)}")
        return fuse(self._obj[optical], self._obj[sar], **kwargs)

    def despeckle(self, variables: list[str] | None = None, **kwargs: Any) -> xr.Dataset:
        """A copy of the Dataset with ``variables`` (default: every variable with ``y`` and ``x`` dims)
        despeckled lazily, each with its own looks and scene scale. Keywords and errors as
        :func:`geodiff.api.despeckle`."""
        from geodiff.api import despeckle

        out = self._obj.copy()
        for name in variables or [v for v, a in self._obj.data_vars.items() if {"y", "x"} <= set(a.dims)]:
            out[name] = despeckle(self._obj[name], **kwargs)
        return out
