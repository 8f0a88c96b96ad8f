"""Despeckle a whole scene: read it block by block, run a method through tiling, write a COG.

Methods live in :data:`METHODS`. A classical filter is an *array* method (a neighbourhood function
with a halo, run on each block); a diffusion solver registers a *tiles* method (a tile-batch
function that gets seeds, masks and the per-step blend hook)::

    register_method(Method("sar-dps", kind="tiles", make=make_sar_dps, halo=lambda window: 0))

``make(looks=..., window=..., units=..., **options)`` returns the (picklable) function the runner
calls; bands are processed one by one, nodata stays nodata.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sensors.speckle_filters import FILTERS, apply_filter, filter_radius

log = logging.getLogger(__name__)

_TINY = np.finfo(np.float32).tiny


# ---- radiometry (small on purpose: sensors/profiles.py will replace it) -------------------------
def to_intensity(x: np.ndarray, units: str) -> np.ndarray:
    """Linear intensity from dB or amplitude; intensity passes through."""
    if units == "db":
        return np.power(10.0, x / 10.0)
    if units == "amplitude":
        return x * x
    return x


def from_intensity(y: np.ndarray, units: str) -> np.ndarray:
    """Back to the input's units."""
    if units == "db":
        return 10.0 * np.log10(np.maximum(y, _TINY))
    if units == "amplitude":
        return np.sqrt(np.maximum(y, 0.0))
    return y


# ---- method registry ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A despeckling method the app can run."""

    name: str
    kind: str  # "array" (block + halo numpy function) or "tiles" (tile-batch torch function)
    make: Callable[..., Callable]  # (looks=, window=, units=, **options) -> runner function
    halo: Callable[[int], int]  # window -> halo in pixels
    description: str = ""


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> None:
    """Add (or replace) a method; diffusion solvers call this at import time."""
    if method.kind not in ("array", "tiles"):
        raise ValueError(f"method kind must be 'array' or 'tiles', got {method.kind!r}")
    METHODS[method.name] = method


def _classical_block(
    block: np.ndarray, valid: np.ndarray, *, name: str, looks: float, window: int, units: str
) -> np.ndarray:
    """Array function: one filter per band, in linear intensity, back to the input's units."""
    out = np.empty(block.shape, np.float32)
    for b in range(block.shape[0]):
        inten = to_intensity(block[b].astype(np.float64), units)
        out[b] = from_intensity(apply_filter(name, inten, valid[b], looks, window).astype(np.float64), units)
    return out


def _make_classical(name: str) -> Callable[..., Callable]:
    def make(*, looks: float, window: int, units: str, **_: Any) -> Callable:
        return functools.partial(_classical_block, name=name, looks=looks, window=window, units=units)

    return make


for _name in FILTERS:
    register_method(
        Method(
            _name,
            "array",
            _make_classical(_name),
            functools.partial(filter_radius, _name),
            f"classical {_name} filter",
        )
    )


# ---- scene facts --------------------------------------------------------------------------------
_SAMPLE = 1024


def _scene_units_and_looks(
    path: str, looks: float | None, units: str | None, sensor: str = "auto", band: int = 1
) -> tuple[str, float, dict, tuple[np.ndarray, np.ndarray]]:
    """Units from ``sensor`` (a profile name) or metadata + a central sample; looks estimated on that
    sample if not given. Also returns the sample as (intensity, valid) for the scene scale."""
    from rasterio.windows import Window

    from sensors.units import guess_units
    from tiling.raster_io import open_raster

    with open_raster(path) as ds:
        h, w = min(_SAMPLE, ds.height), min(_SAMPLE, ds.width)
        win = Window((ds.width - w) // 2, (ds.height - h) // 2, w, h)
        sample = ds.read(band, window=win, masked=True).astype(np.float64)
        valid = ~np.ma.getmaskarray(sample) & np.isfinite(sample.filled(np.nan))
        values = sample.filled(np.nan)
        if units is None and sensor and sensor.lower() != "auto":
            from sensors.detect import detect_dataset

            units = detect_dataset(ds, sensor, kind="sar").units
        if units is None:
            units = guess_units(ds.dtypes[0], values[valid], ds.descriptions, ds.tags(), ds.count)
    if units == "complex":
        raise ValueError(f"{path}: complex (SLC) data; despeckle needs detected intensity, amplitude or dB")
    if units in ("reflectance", "dn"):
        log.warning("%s: units look like %s, not SAR; filtering the values as linear intensity", path, units)
        units = "intensity"
    facts: dict = {"units": units}
    if looks is None:
        inten = to_intensity(values, units)
        try:
            from sensors.looks import estimate_looks

            est = estimate_looks(inten, valid & (inten > 0))
            looks = est.looks
            facts["looks_estimate"] = est.to_dict()
        except ValueError as exc:
            log.warning("could not estimate the looks (%s); using L = 1 (pass --looks to set it)", exc)
            looks = 1.0
    if not looks > 0:
        raise ValueError(f"looks={looks} must be > 0 (e.g. --looks 4.4)")
    facts["looks"] = float(looks)
    return units, float(looks), facts, (to_intensity(values, units), valid)


# ---- the app ------------------------------------------------------------------------------------
def _qa_hook(
    in_path: str, units: str, looks: list[float], count: int, summary: dict
) -> Callable[[str], None]:
    """before_cog hook: PROTOCOL §2 figures of every band, streamed in strips, stored as tags."""

    def hook(tmp_path: str) -> None:
        import json

        import rasterio
        from rasterio.windows import Window

        from sensors.quality import QualityAccumulator

        reports = []
        with rasterio.open(in_path) as src, rasterio.open(tmp_path, "r+") as dst:
            for b in range(1, count + 1):
                acc = QualityAccumulator()
                for r0 in range(0, src.height, 512):
                    win = Window(0, r0, src.width, min(512, src.height - r0))
                    x = src.read(b, window=win, masked=True)
                    y = dst.read(b, window=win, masked=True)
                    mask = ~np.ma.getmaskarray(x) & ~np.ma.getmaskarray(y)
                    xi = to_intensity(np.ma.getdata(x).astype(np.float64), units)
                    yi = to_intensity(np.ma.getdata(y).astype(np.float64), units)
                    acc.add(xi, yi, mask)
                try:
                    rep = acc.report(looks[b - 1], "given").to_dict()
                except ValueError as exc:  # an all-nodata band has nothing to measure
                    rep = {"error": str(exc)}
                reports.append(rep)
                dst.update_tags(b, GEODIFF_QA=json.dumps(rep))
            dst.update_tags(GEODIFF_QA=json.dumps(reports))
        summary["qa"] = reports

    return hook


def despeckle_scene(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    method: str = "sar-dps",
    *,
    looks: float | None = None,
    window: int = 7,
    tile: int | None = None,
    overlap: int | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    client: Any = None,
    units: str | None = None,
    sensor: str = "auto",
    seed: int = 0,
    uncertainty: bool = False,
    qa: bool = True,
    progress: bool = True,
    **options: Any,
) -> dict:
    """Despeckle ``in_path`` into a COG at ``out_path``; returns a summary dict.

    ``looks`` defaults to an estimate from the scene; ``units`` to the ``sensor`` profile or a guess
    (intensity, amplitude or dB; the output is in the same units). ``tile``/``overlap`` set the tile
    grid; for classical filters the tile is the block edge (default 1024) and the halo makes blocks
    exact. ``options`` go to the method (sar-dps: prior, steps, samples, sigma0, init, device).
    ``uncertainty`` adds one posterior-std band per input band (tile methods with several samples);
    ``qa`` stores PROTOCOL §2 figures in the output's tags (GEODIFF_QA) and in the summary.
    """
    from tiling.raster_io import check_output_path, open_raster
    from tiling.runner import run_raster

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(sorted(METHODS))}")
    m = METHODS[method]
    in_path, out_path = str(in_path), str(out_path)
    open_raster(in_path).close()  # unreadable input: fail before anything else
    check_output_path(out_path, overwrite, inputs=(in_path,))
    if uncertainty and m.kind != "tiles":
        raise ValueError(f"--uncertainty needs a sampling method (sar-dps), not the classical {method!r}")
    halo = m.halo(window)
    # units from band 1; looks and (for sar-dps) the scale per band: VV and VH differ
    given_looks = looks
    units, looks, facts, (sample, sample_valid) = _scene_units_and_looks(in_path, looks, units, sensor)
    with open_raster(in_path) as ds:
        count = ds.count
    band_facts = [(looks, sample, sample_valid)]
    for b in range(2, count + 1):
        _, lb, fb, (sb, vb) = _scene_units_and_looks(in_path, given_looks, units, sensor, band=b)
        band_facts.append((lb, sb, vb))
        facts.setdefault("looks_estimates_other_bands", []).append(fb.get("looks_estimate"))
    facts["looks_per_band"] = [float(lb) for lb, _, _ in band_facts]
    if m.kind == "tiles":
        from geodiff.apps.sar_dps_method import DEFAULTS, scene_scale

        prior = options.get("prior") or DEFAULTS["prior"]
        scales = [scene_scale(sb, vb, lb, prior) for lb, sb, vb in band_facts]
        facts["scale"], facts["scale_per_band"] = scales[0], scales
        if uncertainty:
            options["uncertainty"] = True
        fns = [m.make(looks=lb, window=window, units=units, **options, scale=sc)
               for (lb, _, _), sc in zip(band_facts, scales, strict=True)]  # fmt: skip
    else:
        fns = [m.make(looks=lb, window=window, units=units, **options) for lb, _, _ in band_facts]
    fn = fns[0]
    if m.kind == "array":
        plan_args = {"tile": tile or 1024, "overlap": 0, "block_tiles": 1}
        if overlap:
            log.info("overlap is not used by classical filters (the halo makes blocks exact)")
    else:
        # 4x4-tile blocks: a block also computes the ring of tiles it shares with its neighbours
        plan_args = {"tile": tile or 288, "overlap": 32 if overlap is None else overlap, "block_tiles": 4}
    with open_raster(in_path) as ds:
        if m.kind == "tiles" and tile is None:  # a small scene: one tile just covering it, not padding
            plan_args["tile"] = min(plan_args["tile"], -(-max(ds.height, ds.width) // 8) * 8)
            plan_args["overlap"] = min(plan_args["overlap"], plan_args["tile"] // 4)
        names = [d or f"band {i + 1}" for i, d in enumerate(ds.descriptions)]
    outputs = getattr(fn, "outputs", 1)
    descriptions = None
    if outputs > 1:
        descriptions = [*names, *[f"{n} posterior std" for n in names]]
    summary: dict = {}
    run = run_raster(
        in_path,
        out_path,
        fns,
        kind=m.kind,
        halo=halo,
        seed=seed,
        band_groups=[[b] for b in range(1, count + 1)],
        overwrite=overwrite,
        client=client,
        workers=workers,
        progress=progress,
        desc=f"despeckle {method}",
        outputs_per_band=outputs,
        descriptions=descriptions,
        before_cog=_qa_hook(in_path, units, facts["looks_per_band"], count, summary) if qa else None,
        **plan_args,
    )
    summary.update(run)
    summary.update(facts, method=method, window=window, tile=plan_args["tile"], halo=halo, seed=seed)
    if m.kind == "tiles":
        summary["settings"] = {k: v for k, v in vars(fn).items() if k not in ("looks", "units", "scale")}
    return summary


def _register_sar_dps() -> None:
    from geodiff.apps.sar_dps_method import make_sar_dps

    register_method(
        Method(
            "sar-dps",
            "tiles",
            make_sar_dps,
            lambda window: 0,
            "diffusion posterior sampling with the gamma speckle likelihood (default)",
        )
    )


_register_sar_dps()
