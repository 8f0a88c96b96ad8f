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


def _check_band(ds: Any, band: int, what: str) -> None:  # noqa: ANN401 - rasterio dataset
    if not 1 <= band <= ds.count:
        raise ValueError(f"{what} {ds.name}: --band {band} does not exist, the file has {ds.count} band(s)")


def qa_files(
    original: str | os.PathLike,
    processed: str | os.PathLike,
    *,
    looks: float | None = None,
    band: int = 1,
    sensor: str = "auto",
    strip: int = 1024,
) -> dict[str, Any]:
    """The QA report of PROCESSED against ORIGINAL (one band), as a JSON-ready dict.

    Both files are read in full-width strips of ``strip`` rows (a multiple of the 32-px QA
    window), so memory depends on the scene width, not its size. Looks not given are estimated
    on full-resolution blocks spread over ORIGINAL (as `geodiff info` does).
    """
    from rasterio.windows import Window

    from geodiff.info import open_raster
    from sensors.detect import detect_dataset, filled_sample, sample_blocks, sample_dataset
    from sensors.looks import estimate_looks
    from sensors.profiles import get_profile
    from sensors.quality import WINDOW, QualityAccumulator

    strip = max(WINDOW, strip // WINDOW * WINDOW)
    with open_raster(original) as dy, open_raster(processed) as dx:
        _check_band(dy, band, "ORIGINAL")
        profile = detect_dataset(dy, sensor=sensor, kind="sar", sample=sample_dataset(dy, band=band))
        if (dx.height, dx.width) != (dy.height, dy.width):
            raise ValueError(
                f"PROCESSED {processed} is {dx.width}x{dx.height} px but ORIGINAL is "
                f"{dy.width}x{dy.height}: pass the despeckled version of the same scene"
            )
        band_x = band if dx.count >= band else 1
        _check_band(dx, band_x, "PROCESSED")
        # A despeckled SLC comes back as intensity (no phase), every other convention as it went in.
        out_profile = profile
        if profile.units == "complex" and not np.dtype(dx.dtypes[band_x - 1]).kind == "c":
            out_profile = get_profile("sar-intensity")
        out_profile.check_values(filled_sample(sample_dataset(dx, band=band_x), dx.nodata), dx.nodata)
        estimate = None
        if looks is None:
            intensity, mask = profile.decode(sample_blocks(dy, band), dy.nodata)
            estimate = estimate_looks(intensity, mask)
            looks = estimate.looks
        acc = QualityAccumulator()
        for row in range(0, dy.height, strip):
            win = Window(0, row, dy.width, min(strip, dy.height - row))
            y, mask_y = profile.decode(dy.read(band, window=win), dy.nodata)
            x, mask_x = out_profile.decode(dx.read(band_x, window=win), dx.nodata)
            acc.add(y, x, mask_y & mask_x)
        report = acc.report(looks, "given" if estimate is None else "estimated")
    out: dict[str, Any] = {
        "original": str(original),
        "processed": str(processed),
        "band": band,
        "sensor": profile.name,
        "units": profile.units,
        **report.to_dict(),
    }
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
