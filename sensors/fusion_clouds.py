"""Clouds of an optical scene from a class raster: the Sentinel-2 scene classification (SCL) or a mask.

Why a module: the fusion job treats cloudy optical pixels like optical nodata (the SAR-driven estimate
fills them with ``--fill-gaps``, flagged in the source band), and which class codes mean "cloud" is
sensor knowledge. The Sentinel-2 Level-2A scene classification codes (ESA, "Sentinel-2 MSI Level-2A
Products Algorithm Theoretical Basis Document", the SCL table) are 0 no data, 1 saturated or
defective, 2 dark area pixels, 3 cloud shadows, 4 vegetation, 5 not vegetated, 6 water,
7 unclassified, 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus, 11 snow or ice.
A plain 0/1 cloud mask is the same thing with the classes ``(1,)``.
"""

from __future__ import annotations

import numpy as np

from sensors.errors import SensorsError

__all__ = ["SCL_CLOUD_CLASSES", "cloud_mask", "parse_cloud_classes"]

#: SCL codes that mark an optical pixel as clouded: cloud shadows (3), cloud medium (8) and high (9)
#: probability, thin cirrus (10).
SCL_CLOUD_CLASSES: tuple[int, ...] = (3, 8, 9, 10)


def parse_cloud_classes(value: str | int | tuple | list | None) -> tuple[int, ...]:
    """Class codes from ``"3,8,9,10"``, ``"scl"`` (:data:`SCL_CLOUD_CLASSES`), one int or a sequence.

    Returns a sorted tuple of distinct ints >= 0. None or "scl" gives the SCL cloud classes.

    Raises:
        SensorsError (a ValueError): an empty list, a code that is not a whole number >= 0.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "scl"):
        return SCL_CLOUD_CLASSES
    parts = value.split(",") if isinstance(value, str) else [value] if np.isscalar(value) else list(value)
    codes = []
    for p in parts:
        try:
            f = float(p)
        except (TypeError, ValueError):
            f = float("nan")
        if not (np.isfinite(f) and f >= 0 and f == int(f)):
            raise SensorsError(
                f"cloud classes must be whole numbers >= 0 separated by commas (got {value!r}); "
                "e.g. --cloud-classes 3,8,9,10 for the Sentinel-2 SCL, 1 for a 0/1 cloud mask"
            )
        codes.append(int(f))
    if not codes:
        raise SensorsError("no cloud class given; pass e.g. --cloud-classes 3,8,9,10 (Sentinel-2 SCL)")
    return tuple(sorted(set(codes)))


def cloud_mask(codes: np.ndarray, classes: tuple[int, ...] = SCL_CLOUD_CLASSES) -> np.ndarray:
    """True where the class raster ``codes`` holds one of ``classes``.

    Args:
        codes: class codes of any shape, any real dtype (a resampled raster may be float32 with NaN
            where it has no data: NaN is never a cloud).
        classes: the codes that mean cloud (default the SCL's 3, 8, 9, 10).

    Returns a bool array of ``codes``' shape. Raises SensorsError for complex codes.
    """
    arr = np.asarray(codes)
    if arr.dtype.kind == "c":
        raise SensorsError("a cloud/SCL raster holds class codes, not complex values; pass the SCL band")
    return np.isin(arr, np.asarray(classes, dtype=np.int64))
