"""`geodiff qa ORIGINAL PROCESSED`: no-reference quality checks of a despeckled SAR scene.

Both rasters are decoded to linear intensity through the original's sensor profile (a processed
file keeps its input's convention), then compared as PROTOCOL.md §2 defines: ratio image,
radiometric bias, ENL on automatically chosen homogeneous windows.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import click
import numpy as np

log = logging.getLogger(__name__)


def _read_band(ds: Any, band: int, what: str) -> np.ndarray:  # noqa: ANN401 - rasterio dataset
    if not 1 <= band <= ds.count:
        raise ValueError(f"{what} {ds.name}: --band {band} does not exist, the file has {ds.count} band(s)")
    return ds.read(band)


def qa_files(
    original: str | os.PathLike,
    processed: str | os.PathLike,
    *,
    looks: float | None = None,
    band: int = 1,
    sensor: str = "auto",
) -> dict[str, Any]:
    """The QA report of PROCESSED against ORIGINAL (one band), as a JSON-ready dict."""
    from geodiff.info import open_raster
    from sensors.detect import detect_dataset, sample_dataset
    from sensors.looks import estimate_looks
    from sensors.profiles import get_profile
    from sensors.quality import quality_report

    with open_raster(original) as ds:
        stored_y = _read_band(ds, band, "ORIGINAL")
        profile = detect_dataset(ds, sensor=sensor, kind="sar", sample=sample_dataset(ds, band=band))
        nodata_y, shape_y = ds.nodata, (ds.height, ds.width)
    with open_raster(processed) as ds:
        if (ds.height, ds.width) != shape_y:
            raise ValueError(
                f"PROCESSED {processed} is {ds.width}x{ds.height} px but ORIGINAL is "
                f"{shape_y[1]}x{shape_y[0]}: pass the despeckled version of the same scene"
            )
        stored_x = _read_band(ds, band if ds.count >= band else 1, "PROCESSED")
        nodata_x = ds.nodata
    # A despeckled SLC comes back as intensity (no phase), every other convention as it went in.
    out_profile = get_profile("sar-intensity") if profile.units == "complex" else profile
    if np.iscomplexobj(stored_x):
        out_profile = profile
    out_profile.check_values(stored_x, nodata_x)
    y, mask_y = profile.decode(stored_y, nodata_y)
    x, mask_x = out_profile.decode(stored_x, nodata_x)
    mask = mask_y & mask_x
    estimate = None
    if looks is None:
        estimate = estimate_looks(y, mask)
        looks = estimate.looks
    report = quality_report(y, x, looks, mask)
    out: dict[str, Any] = {
        "original": str(original),
        "processed": str(processed),
        "band": band,
        "sensor": profile.name,
        "units": profile.units,
        **report.to_dict(),
    }
    out["looks_source"] = "given" if estimate is None else "estimated"
    if estimate is not None:
        out["looks_interval"] = [estimate.low, estimate.high]
    out["nominal_looks"] = profile.nominal_looks
    return out


def format_report(r: dict[str, Any]) -> str:
    def f(v: Any, spec: str) -> str:  # noqa: ANN401
        return "n/a" if v is None else format(v, spec)

    looks = f(r["looks"], ".3f") + f" ({r['looks_source']}"
    if "looks_interval" in r:
        looks += f", 90% interval {r['looks_interval'][0]:.3f}..{r['looks_interval'][1]:.3f}"
    looks += ")"
    return "\n".join(
        [
            f"{r['processed']}  vs  {r['original']}  (band {r['band']}, sensor {r['sensor']}, {r['units']})",
            f"  looks L                  {looks}",
            f"  ratio mean               {f(r['ratio_mean'], '.4f')}   (ideal 1.00)",
            f"  L x ratio variance       {f(r['ratio_var_times_looks'], '.4f')}"
            "   (ideal ~1; <1: speckle left in the output, >1: structure removed)",
            f"  bias                     {f(r['bias_db'], '+.4f')} dB (ideal 0.00)",
            f"  ENL input / output       {f(r['enl_input'], '.3f')} / {f(r['enl_output'], '.3f')}"
            f"   ({r['n_windows']} windows of {r['window']}x{r['window']})",
        ]
    )


@click.command("qa")
@click.argument("original", type=click.Path(dir_okay=False))
@click.argument("processed", type=click.Path(dir_okay=False))
@click.option("--looks", type=float, default=None, help="Looks L of ORIGINAL (default: estimated from it).")
@click.option("--band", type=int, default=1, show_default=True, help="Band to compare (1-based).")
@click.option(
    "--sensor",
    default="auto",
    show_default=True,
    help="Sensor profile of ORIGINAL (e.g. s1-grd-db, sar-intensity); auto: from the metadata.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(
    original: str, processed: str, looks: float | None, band: int, sensor: str, as_json: bool
) -> None:
    """No-reference quality of PROCESSED (despeckled) against ORIGINAL (PROTOCOL.md §2)."""
    if looks is not None and not looks > 0:
        raise ValueError(f"--looks must be positive, got {looks}")
    report = qa_files(original, processed, looks=looks, band=band, sensor=sensor)
    if as_json:
        from geodiff.cli import emit_json

        emit_json(report)
    else:
        click.echo(format_report(report))
