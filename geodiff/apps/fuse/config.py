"""The settings of one fusion run as one object: :class:`FusionConfig`, stored in the output's tags.

``fuse_arrays``, ``fuse_scene``, the CLI and the Python API all take a FusionConfig (or its fields as
keywords); the file job writes it as JSON into the output's ``GEODIFF_FUSION`` tag, and
:meth:`FusionConfig.from_tags` reads it back, so a fused scene always says how it was made.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

from geodiff.apps.tags import read_json_tag
from geodiff.errors import InvalidSettingError

__all__ = ["COLOURS", "STARTS", "TAG", "FusionConfig"]

#: Raster tag (dataset level) that holds :meth:`FusionConfig.to_json`.
TAG = "GEODIFF_FUSION"
#: Colour restoration methods of :func:`sensors.colour.fused_bands`.
COLOURS = ("ratio", "ihs")
#: Start images of the DPS fusion (noised to t0): a Laplacian-pyramid fusion, the average, or noise.
STARTS = ("laplacian", "average", "noise")


@dataclass(frozen=True)
class FusionConfig:
    """How to fuse an optical image with a SAR image (the review's fusion eq. 25-26 for ``method="dps"``).

    Attributes:
        method: "dps" (diffusion sampling with the L1/TV guidance, :func:`geodiff.solvers.fuse_dps`) or
            a classical baseline of :mod:`geodiff.apps.fuse.baselines` (average, wavelet, pca, laplacian).
        weights: (a, b, c, d) of ||f - f0||1 + a||f - o||1 + b||f - r||1 + c||D(f - o)||1 + d||D(f - r)||1
            (eq. 25), each finite and >= 0; None (or "auto", the default): the per-pixel rule of
            :class:`geodiff.solvers.fusion.FusionWeights` with ``intensity_weight`` and ``gradient_weight``.
        intensity_weight: a + b = 2 x this, split by the scene's PCA shares (auto weights only).
        gradient_weight: c + d = this, split per pixel by the local gradient energy (auto weights only).
        steps: DPS sampling steps (network evaluations per tile and draw), >= 1.
        t0: DPS start timestep: sampling starts from ``start`` noised to t0 (come-closer-diffuse-faster,
            Chung et al. 2022); None starts from pure noise at T-1.
        start: "laplacian" (Laplacian-pyramid fusion with the PCA shares as low-pass weights),
            "average" or "noise".
        samples: posterior draws per tile (the output is their mean), >= 1.
        uncertainty: also write the per-pixel posterior std over the draws (needs samples >= 2).
        prox_iters: Chambolle-Pock iterations of the proximal step per diffusion step.
        fill_gaps: where the optical is missing (nodata) and the SAR is not, write the SAR-driven
            estimate of :class:`geodiff.apps.fuse.scales.GapFill` and flag it in one more band
            (1 = filled from SAR, 0 = fused or optical); False keeps the optical nodata there.
        prior: diffusion prior name (``geodiff models``) or a loaded prior in the "amplitude" domain; also
            the prior of ``despeckle_sar="sar-dps"`` when it is a name.
        colour: colour restoration of the fused luminance ("ratio" or "ihs").
        tile, overlap: DPS tile edge and overlap in pixels (the tile is rounded to the prior's stride).
        seed: random seed; every tile derives its own seed from it (results do not depend on batching).
        device: "auto", "cpu", "cuda" or "cuda:N".
        despeckle_sar: a despeckling method (``geodiff.apps.despeckle.METHODS``) run on the SAR in its own
            geometry before fusion (default "lee": raw speckle lowers every fusion score, see
            ``bench/README.md``), or None / "none" for the raw SAR.
        looks: equivalent number of looks of the SAR for ``despeckle_sar`` (None: estimated).
        sar_units: the SAR file's units, "intensity", "amplitude" or "db" (``--units``); None: the one
            units detector (metadata, then decisive values; ambiguous stops with AmbiguousUnitsError).

    Raises:
        InvalidSettingError (a ValueError): a field out of its range (the message names the fix).
        UnknownMethodError (a ValueError): ``method`` or ``despeckle_sar`` is not registered.
    """

    method: str = "dps"
    weights: tuple[float, float, float, float] | None = None
    intensity_weight: float = 0.7
    gradient_weight: float = 6.0
    steps: int = 5
    t0: int | None = 200
    start: str = "laplacian"
    samples: int = 1
    uncertainty: bool = False
    prox_iters: int = 400
    fill_gaps: bool = False
    prior: Any = "gray"
    colour: str = "ratio"
    tile: int = 256
    overlap: int = 32
    seed: int = 0
    device: str = "auto"
    despeckle_sar: str | None = "lee"
    looks: float | None = None
    sar_units: str | None = None

    def __post_init__(self) -> None:
        from geodiff.apps.despeckle.methods import get as get_despeckler
        from geodiff.apps.fuse.methods import get

        get(self.method)
        if isinstance(self.despeckle_sar, str) and self.despeckle_sar.lower() in ("none", ""):
            object.__setattr__(self, "despeckle_sar", None)
        if self.despeckle_sar:
            get_despeckler(self.despeckle_sar)
        if isinstance(self.weights, str) and self.weights.lower() == "auto":
            object.__setattr__(self, "weights", None)
        if self.weights is not None:
            w = tuple(self.weights) if not isinstance(self.weights, str) else (self.weights,)
            if len(w) != 4 or not all(_number(x) and float(x) >= 0 for x in w):
                raise InvalidSettingError(
                    f"weights must be 'auto' or four finite numbers >= 0 (a,b,c,d); got {self.weights!r}"
                )
            object.__setattr__(self, "weights", tuple(float(x) for x in w))
        for name in ("intensity_weight", "gradient_weight"):
            v = getattr(self, name)
            if not (_number(v) and v >= 0):
                raise InvalidSettingError(f"{name} must be a finite number >= 0 (got {v!r})")
            object.__setattr__(self, name, float(v))
        if self.start not in STARTS:
            raise InvalidSettingError(f"start must be one of {', '.join(STARTS)} (got {self.start!r})")
        _integer(self, "samples", 1)
        _integer(self, "prox_iters", 1)
        object.__setattr__(self, "uncertainty", bool(self.uncertainty))
        object.__setattr__(self, "fill_gaps", bool(self.fill_gaps))
        if self.uncertainty and not get(self.method).samples:
            from geodiff.errors import UncertaintyNotSupportedError

            raise UncertaintyNotSupportedError(
                f"an uncertainty band needs a sampling method (--method dps), not the classical "
                f"{self.method!r}"
            )
        if self.uncertainty and self.samples < 2:
            raise InvalidSettingError(
                f"an uncertainty band (posterior std) needs --samples >= 2; got {self.samples} "
                "(e.g. --samples 4)"
            )
        _integer(self, "steps", 1)
        _integer(self, "tile", 8)
        _integer(self, "overlap", 0)
        if self.t0 is not None:
            _integer(self, "t0", 0)
        if self.colour not in COLOURS:
            raise InvalidSettingError(f"colour must be one of {', '.join(COLOURS)} (got {self.colour!r})")
        if self.looks is not None and not (_number(self.looks) and self.looks > 0):
            raise InvalidSettingError(
                f"looks={self.looks!r} must be > 0 (e.g. --looks 4.4) or None (estimated)"
            )
        if self.sar_units is not None:
            from sensors.units import parse_units

            object.__setattr__(self, "sar_units", parse_units(self.sar_units, allow_complex=False))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "device", str(self.device))

    @classmethod
    def of(cls, config: FusionConfig | None = None, **changes: Any) -> FusionConfig:
        """``config`` (default: the defaults) with ``changes`` applied; ``a``, ``b``, ``c``, ``d`` set
        single weights. Raises ValueError for a key that is no field."""
        base = config or cls()
        if any(k in changes for k in "abcd"):
            w = dict(zip("abcd", base.weights or (1.0, 1.0, 1.0, 1.0), strict=True))
            w.update({k: changes.pop(k) for k in "abcd" if k in changes})
            changes["weights"] = tuple(w.values())
        unknown = set(changes) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            names = [f.name for f in dataclasses.fields(cls)]
            raise InvalidSettingError(f"unknown fusion setting(s) {sorted(unknown)}; use {names}")
        return dataclasses.replace(base, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (weights as a list; a loaded prior by its name or class name)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["weights"] = list(self.weights) if self.weights is not None else "auto"
        if not isinstance(self.prior, str):
            d["prior"] = getattr(self.prior, "name", None) or type(self.prior).__name__
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FusionConfig:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys raise ValueError."""
        return cls.of(
            None, **{k: tuple(v) if k == "weights" and isinstance(v, list) else v for k, v in values.items()}
        )

    def to_json(self) -> str:
        """One line of JSON (sorted keys), for the ``GEODIFF_FUSION`` tag."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> FusionConfig:
        """The configuration a fused raster was made with, from its dataset tags.

        Raises:
            InvalidSettingError: no ``GEODIFF_FUSION`` tag, or it is not a JSON object.
        """
        return cls.from_dict(read_json_tag(tags, TAG, "geodiff fuse"))


def _number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _integer(config: FusionConfig, name: str, low: int) -> None:
    v = getattr(config, name)
    if not _number(v) or int(v) != v or v < low:
        raise InvalidSettingError(f"{name} must be an integer >= {low} (got {v!r})")
    object.__setattr__(config, name, int(v))
