"""How a despeckled raster was made: :class:`DespeckleRecord`, stored in its ``GEODIFF_DESPECKLE`` tag.

The despeckle job writes the record as JSON into the output's dataset tags before the COG gets its
final name; :meth:`DespeckleRecord.from_tags` reads it back, so a result always says its method, units,
looks per band, tile plan, seed and (for a sampler) the :class:`geodiff.solvers.SamplerConfig`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from geodiff.apps.tags import read_json_tag
from geodiff.errors import InvalidSettingError

__all__ = ["TAG", "DespeckleRecord"]

#: Dataset tag that holds :meth:`DespeckleRecord.to_json`.
TAG = "GEODIFF_DESPECKLE"


@dataclass(frozen=True)
class DespeckleRecord:
    """The settings of one despeckle run.

    Attributes:
        method: despeckling method (a name of ``geodiff.apps.despeckle.METHODS``).
        units: stored SAR units of input and output ("intensity", "amplitude" or "db").
        looks: equivalent number of looks L used per band.
        window: classical filters' window (odd, px); None for samplers.
        tile, overlap, halo: the tile plan (px) the runner used.
        seed: the run's seed (each tile derives its own).
        uncertainty: a posterior-std band follows every band.
        prior: the diffusion prior's name (samplers), else None.
        scale: per band, the sampler's scene scale s in I = s a^2 (SAR-DPS, the review's eq. 22), else None.
        sampler: :meth:`geodiff.solvers.SamplerConfig.to_dict` of a sampler, else None.
        solver: the sampler's solver ("sar_pnp": PnP-ADMM + refinement, or "sar_dps"), else None.
        profile: the sampler profile its settings came from (fast, balanced, best), else None.
        likelihood_looks: per band, the looks SAR-DPS's i.i.d. likelihood used (L over the speckle's
            variance inflation, :mod:`sensors.speckle_correlation`), else None.
        blind_spot_radius: per band, the blind spot's radius in px (solver "sar_blind_spot"), else None.
        estimator: SAR-DPS's estimate ("posterior-mean" or "blind-spot"), else None.
    """

    method: str
    units: str
    looks: tuple[float, ...]
    window: int | None = None
    tile: int | None = None
    overlap: int | None = None
    halo: int = 0
    seed: int = 0
    uncertainty: bool = False
    prior: str | None = None
    scale: tuple[float, ...] | None = None
    sampler: dict[str, Any] | None = None
    solver: str | None = None
    profile: str | None = None
    likelihood_looks: tuple[float, ...] | None = None
    blind_spot_radius: tuple[int, ...] | None = None
    estimator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists)."""
        d = dataclasses.asdict(self)
        d["looks"] = list(self.looks)
        d["scale"] = None if self.scale is None else list(self.scale)
        d["likelihood_looks"] = None if self.likelihood_looks is None else list(self.likelihood_looks)
        d["blind_spot_radius"] = None if self.blind_spot_radius is None else list(self.blind_spot_radius)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DespeckleRecord:
        """Inverse of :meth:`to_dict`. Raises InvalidSettingError for unknown or missing keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise InvalidSettingError(f"unknown despeckle settings {sorted(unknown)} (from a newer geodiff?)")
        v = dict(values)
        v["looks"] = tuple(v.get("looks") or ())
        if v.get("scale") is not None:
            v["scale"] = tuple(v["scale"])
        for key in ("likelihood_looks", "blind_spot_radius"):
            if v.get(key) is not None:
                v[key] = tuple(v[key])
        try:
            return cls(**v)
        except TypeError as exc:
            raise InvalidSettingError(f"incomplete despeckle settings: {exc}") from exc

    def to_json(self) -> str:
        """One line of JSON (sorted keys), for the ``GEODIFF_DESPECKLE`` tag."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> DespeckleRecord:
        """The record of a despeckled raster, from its dataset tags (``rasterio`` ``ds.tags()``).

        Raises:
            InvalidSettingError: no ``GEODIFF_DESPECKLE`` tag, or it is not a JSON object of settings.
        """
        return cls.from_dict(read_json_tag(tags, TAG, "geodiff despeckle"))
