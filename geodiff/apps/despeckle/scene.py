"""The despeckle job: read a scene block by block, run a method of the registry, write a COG.

Composes the parts below it: :mod:`geodiff.apps.facts` (units, looks, scene sample per band),
:mod:`geodiff.apps.despeckle.methods` (the method, built by one call), :func:`tiling.runner.run_raster`
(plan, blocks, blending, the atomic COG writer) and :mod:`geodiff.apps.qa` (PROTOCOL §2 QA of the
output, stored in its tags before it gets its final name).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from geodiff.apps.despeckle.methods import DEFAULT_WINDOW, build, check_count, check_looks, check_options, get
from geodiff.apps.despeckle.record import TAG, DespeckleRecord
from geodiff.apps.facts import BandFacts, file_band_facts
from geodiff.errors import UncertaintyNotSupportedError

log = logging.getLogger(__name__)


# ---- the app ------------------------------------------------------------------------------------
def _looks_sources(bands: list[BandFacts]) -> list[str]:
    """Per band, where its looks came from: "given" (``looks=``) or "estimated" (from the scene)."""
    return ["given" if b.looks_estimate is None else "estimated" for b in bands]


def _tags_hook(
    in_path: str, record: DespeckleRecord, count: int, summary: dict, qa: bool, looks_sources: list[str]
) -> Callable[[str], None]:
    """before_cog hook: the record (GEODIFF_DESPECKLE) and, with ``qa``, the PROTOCOL §2 figures of every
    band (GEODIFF_QA, streamed in strips) stored as tags of the finished output before its final name.
    ``looks_sources``: per band, "given" or "estimated" (where the QA's looks came from)."""
    units, looks = record.units, record.looks

    def hook(tmp_path: str) -> None:
        import rasterio

        from sensors.unit_detection import band_unit_type, units_tags

        with rasterio.open(tmp_path, "r+") as dst:  # the units travel with the output: reading it never asks
            dst.update_tags(**units_tags(units))
            dst.units = [band_unit_type(units)] * dst.count
            if not qa:
                dst.update_tags(**{TAG: record.to_json()})
        if not qa:
            return

        from geodiff.apps.qa import accumulate_quality
        from sensors.units import to_intensity
        from tiling.raster_io import open_raster

        def decode(values):  # noqa: ANN001, ANN202 - (h, w) stored values -> intensity, valid
            inten = to_intensity(values.astype(np.float64), units)
            return inten, np.isfinite(inten)

        reports = []
        with open_raster(in_path) as src, rasterio.open(tmp_path, "r+") as dst:
            for b in range(1, count + 1):
                acc = accumulate_quality(src, dst, band=b, processed_band=b, decode=decode, strip=512)
                try:
                    rep = acc.report(looks[b - 1], looks_sources[b - 1]).to_dict()
                except ValueError as exc:  # an all-nodata band has nothing to measure
                    rep = {"error": str(exc)}
                reports.append(rep)
                dst.update_tags(b, GEODIFF_QA=json.dumps(rep))
            dst.update_tags(GEODIFF_QA=json.dumps(reports), **{TAG: record.to_json()})
        summary["qa"] = reports

    return hook


def _zero_nodata(in_path: str) -> float | None:
    """0.0 where the sensor profile says zero is no data (Sentinel-1 GRD borders) and the file declares
    no nodata and has no mask: the zeros are then invalid pixels, and the output's nodata is 0."""
    from rasterio.enums import MaskFlags

    from tiling.raster_io import open_raster

    with open_raster(in_path) as ds:
        masked = any(MaskFlags.per_dataset in f or MaskFlags.alpha in f for f in ds.mask_flag_enums)
        if ds.nodata is not None or masked:
            return None
    log.info("%s: no nodata declared; the sensor profile treats zero as nodata", in_path)
    return 0.0


def _check_signal(in_path: str, bands: list[BandFacts]) -> None:
    """Refuse a band whose every valid pixel is zero (all methods alike: nothing to despeckle).

    The central sample decides where it has a non-zero pixel; else a decimated read of the band.

    Raises:
        NoValidPixelsError (ValueError): the band is all zero or nodata.
    """
    from tiling.errors import NoValidPixelsError
    from tiling.raster_io import open_raster
    from tiling.sampling import read_decimated

    for b, f in enumerate(bands, 1):
        if np.any(f.valid & (f.intensity != 0)):
            continue
        with open_raster(in_path) as ds:
            values = read_decimated(ds, band=b)
        if np.any(np.ma.filled(np.ma.masked_invalid(values.astype(np.float64)), 0) != 0):
            continue
        raise NoValidPixelsError(
            f"{in_path}: band {b}: every pixel is zero or nodata; nothing to despeckle (check the band and "
            "its nodata value)"
        )


def _band_facts(
    in_path: str, count: int, *, units: str | None, looks: float | None, sensor: str
) -> tuple[list[BandFacts], dict[str, Any]]:
    """Facts of every band (units from band 1; looks and the scene sample per band: VV and VH differ)
    and their summary entries."""
    first = file_band_facts(in_path, band=1, units=units, looks=looks, sensor=sensor)
    bands = [first] + [
        file_band_facts(in_path, band=b, units=first.units, looks=looks, sensor=sensor)
        for b in range(2, count + 1)
    ]
    facts: dict[str, Any] = {"units": first.units, "looks": first.looks}
    if first.looks_estimate is not None:
        facts["looks_estimate"] = first.looks_estimate
    if count > 1:
        facts["looks_estimates_other_bands"] = [f.looks_estimate for f in bands[1:]]
    facts["looks_per_band"] = [f.looks for f in bands]
    return bands, facts


def _record(
    method: str, kind: str, fns: list, facts: dict, window: int, plan_args: dict, halo: int, seed: int,
    uncertainty: bool,
) -> DespeckleRecord:  # fmt: skip
    """The GEODIFF_DESPECKLE record of a run (a sampler adds its prior, scene scales and SamplerConfig)."""
    fn = fns[0]
    sampler = fn.sampler_config().to_dict() if hasattr(fn, "sampler_config") else None
    return DespeckleRecord(
        method=method, units=facts["units"], looks=tuple(float(v) for v in facts["looks_per_band"]),
        window=window if kind == "array" else None, tile=plan_args["tile"], overlap=plan_args["overlap"],
        halo=halo, seed=seed, uncertainty=uncertainty, prior=getattr(fn, "prior", None),
        scale=tuple(float(f.scale) for f in fns) if hasattr(fn, "scale") else None, sampler=sampler,
        solver=getattr(fn, "solver", None), profile=getattr(fn, "profile", None),
        likelihood_looks=tuple(float(f.likelihood_looks) for f in fns)
        if getattr(fn, "likelihood_looks", None) is not None else None,
        blind_spot_radius=tuple(int(f.blind_spot_radius) for f in fns)
        if getattr(fn, "solver", None) == "sar_blind_spot" else None,
        estimator=getattr(fn, "estimator", None),
    )  # fmt: skip


def _band_functions(method: str, bands: list[BandFacts], facts: dict, window: int, options: dict) -> list:
    """One method function per band (its own looks and scene sample); a sampler's scene scales
    s in I = s a^2 go into ``facts``."""
    fns = [
        build(method, looks=f.looks, units=f.units, window=window, sample=(f.intensity, f.valid), **options)
        for f in bands
    ]
    if hasattr(fns[0], "scale"):
        facts["scale"] = fns[0].scale
        facts["scale_per_band"] = [f.scale for f in fns]
    return fns


def _resume_params(record: DespeckleRecord, fns: list) -> dict[str, Any]:
    """What decides a run's pixels besides the input and the plan (the key of its resume state, see
    :mod:`tiling.resume`): the record, every band function's settings, the geodiff version."""
    import dataclasses
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("geodiff")
    except PackageNotFoundError:  # a source tree that is not installed
        release = "source"
    funcs = [
        {k: v for k, v in dataclasses.asdict(f).items() if k != "max_batch"}
        if dataclasses.is_dataclass(f)
        else None
        for f in fns
    ]
    return {"record": record.to_dict(), "functions": funcs, "version": release}


def tile_plan_args(
    kind: str, tile: int | None, overlap: int | None, height: int, width: int
) -> dict[str, int]:
    """Tile, overlap and block size of the run: classical filters get 1024 px blocks (the halo makes
    them exact, no overlap); samplers 288 px tiles overlapping by 32 in 4x4-tile blocks (a block also
    computes the ring of tiles it shares with its neighbours), a small scene one tile just covering it."""
    if kind == "array":
        if overlap:
            log.info("overlap is not used by classical filters (the halo makes blocks exact)")
        return {"tile": tile or 1024, "overlap": 0, "block_tiles": 1}
    args = {"tile": tile or 288, "overlap": 32 if overlap is None else overlap, "block_tiles": 4}
    if tile is None:
        args["tile"] = min(args["tile"], -(-max(height, width) // 8) * 8)
        args["overlap"] = min(args["overlap"], args["tile"] // 4)
    return args


def despeckle_scene(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    method: str = "sar-dps",
    *,
    looks: float | None = None,
    window: int = DEFAULT_WINDOW,
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
    """Despeckle ``in_path`` (a GeoTIFF or GDAL path, bands of SAR intensity, amplitude or dB) into a
    COG at ``out_path``, band by band: SAR-DPS (the review's eq. 22-24) or a classical filter.

    The output has the input's size, georeferencing, nodata, dtype float32 and units, one band per
    band (plus a posterior-std band per band with ``uncertainty``), and the tags GEODIFF_DESPECKLE
    (:class:`~geodiff.apps.despeckle.record.DespeckleRecord`) and, with ``qa``, GEODIFF_QA; it appears
    under ``out_path`` only when complete. Returns a JSON-ready summary (units, looks per band, scene
    scale, plan, QA, settings).

    ``looks`` defaults to an estimate per band; ``units`` to the ``sensor`` profile or the
    metadata/values (intensity, amplitude or dB; the output is in the same units). ``tile``/``overlap``
    set the tile grid; for classical filters the tile is the block edge (default 1024) and the halo
    makes blocks exact. ``options`` go to the method (sar-dps: prior, steps, samples, sigma0, init,
    device, max_batch). ``uncertainty`` adds one posterior-std band per input band (sampling methods
    only); ``qa`` stores PROTOCOL §2 figures in the output's tags (GEODIFF_QA) and in the summary.

    Raises:
        UnknownMethodError, InvalidSettingError, UncertaintyNotSupportedError (ValueError): bad
        settings, before any pixel is processed. sensors' AmbiguousUnitsError (ValueError): units
        neither given nor decidable. NoValidPixelsError: nothing valid to process.
        tiling's RasterNotFoundError, RasterOpenError, OutputExistsError, OutputIsInputError ...
        (FileNotFoundError / ValueError / FileExistsError / PermissionError): unusable paths.
    """
    from tiling.cog import GEOTIFF_SUFFIXES, check_output_path
    from tiling.plan import TileSpec
    from tiling.raster_io import open_raster
    from tiling.runner import RasterOutput, RunOptions, run_raster

    m = get(method)
    looks = check_looks(looks)  # settings are refused before anything is read
    for name, value, low in (("tile", tile, 1), ("overlap", overlap, 0), ("workers", workers, 1)):
        if value is not None:
            check_count(name, value, low)
    check_options(method, {k: v for k, v in {**options, "uncertainty": uncertainty}.items() if v is not None})
    in_path, out_path = str(in_path), str(out_path)
    with open_raster(in_path) as ds:  # unreadable input: fail before anything else
        count = ds.count
        height, width = ds.height, ds.width
        names = [d or f"band {i + 1}" for i, d in enumerate(ds.descriptions)]
    check_output_path(out_path, overwrite, inputs=(in_path,), suffixes=GEOTIFF_SUFFIXES)
    if uncertainty and not m.samples:
        raise UncertaintyNotSupportedError(
            f"--uncertainty needs a sampling method (sar-dps), not the classical {method!r}"
        )
    if sensor.lower() != "auto":
        from sensors.profiles import get_profile

        profile = get_profile(sensor)  # an unknown profile is refused even where --units makes it unneeded
        input_nodata = _zero_nodata(in_path) if profile.zero_is_nodata else None
    else:
        input_nodata = None
    bands, facts = _band_facts(in_path, count, units=units, looks=looks, sensor=sensor)
    _check_signal(in_path, bands)
    fns = _band_functions(method, bands, facts, window, {**options, "uncertainty": uncertainty or None})
    fn = fns[0]
    halo = m.halo(window)
    plan_args = tile_plan_args(m.kind, tile, overlap, height, width)
    record = _record(method, m.kind, fns, facts, window, plan_args, halo, seed, uncertainty)
    outputs = getattr(fn, "outputs", 1)
    descriptions = None
    if outputs > 1:
        descriptions = [*names, *[f"{n} posterior std" for n in names]]
    summary: dict = {}
    output = RasterOutput(
        band_groups=[[b] for b in range(1, count + 1)],
        outputs_per_band=outputs,
        descriptions=descriptions,
        before_cog=_tags_hook(in_path, record, count, summary, qa, _looks_sources(bands)),
        overwrite=overwrite,
        input_nodata=input_nodata,
        resume=_resume_params(record, fns),
    )
    options = RunOptions(client=client, workers=workers, progress=progress, desc=f"despeckle {method}")
    spec = TileSpec(halo=halo, **plan_args)
    run = run_raster(in_path, out_path, fns, spec, kind=m.kind, seed=seed, output=output, options=options)
    summary.update(run)
    summary.update(facts, method=method, window=window, tile=plan_args["tile"], halo=halo, seed=seed)
    if m.kind == "tiles" and hasattr(fn, "__dict__"):
        summary["settings"] = {k: v for k, v in vars(fn).items() if k not in ("looks", "units", "scale")}
        if hasattr(fn, "solver"):
            summary["settings"]["solver"] = fn.solver  # the path the tiles took (sar_pnp, log_tweedie, ...)
    return summary
