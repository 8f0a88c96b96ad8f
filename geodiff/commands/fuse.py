"""`geodiff fuse OPTICAL SAR OUT`: fuse an optical scene with a SAR scene on the optical grid."""

from __future__ import annotations

import click

from geodiff.apps.fuse.config import STARTS, FusionConfig
from geodiff.apps.fuse.methods import FUSION_METHODS
from geodiff.cli import units_option


def _weights(
    ctx: click.Context, param: click.Parameter, value: str
) -> tuple[float, float, float, float] | None:
    if value.strip().lower() == "auto":
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or any(not (p >= 0) for p in parts):
        raise click.BadParameter(
            f"{value!r}: give 'auto' or four numbers >= 0 separated by commas, e.g. 1,1,1,1"
        )
    return parts  # type: ignore[return-value]


@click.command("fuse")
@click.argument("optical", metavar="OPTICAL", type=click.Path(dir_okay=True))
@click.argument("sar", metavar="SAR", type=click.Path(dir_okay=True))
@click.argument("out_path", metavar="OUT", type=click.Path(dir_okay=True))
@click.option(
    "--despeckle-sar",
    "despeckle_sar",
    metavar="METHOD",
    default=FusionConfig.despeckle_sar,
    show_default=True,
    help="Despeckle the SAR first with this despeckle method (lee, refined-lee, sar-dps ...; none: raw).",
)
@click.option(
    "--weights",
    default="auto",
    show_default=True,
    callback=_weights,
    help="a,b,c,d of ||f-f0||1 + a||f-o||1 + b||f-r||1 + c||D(f-o)||1 + d||D(f-r)||1, or auto: a, b "
    "from the scene's PCA shares, c, d per pixel from the local gradient energy.",
)
@click.option(
    "--intensity-weight",
    type=click.FloatRange(min=0),
    default=FusionConfig.intensity_weight,
    show_default=True,
    help="auto weights: a + b = 2 x this (fidelity to the optical and SAR values).",
)
@click.option(
    "--gradient-weight",
    type=click.FloatRange(min=0),
    default=FusionConfig.gradient_weight,
    show_default=True,
    help="auto weights: c + d = this (fidelity to the stronger source's gradients).",
)
@click.option(
    "--start",
    type=click.Choice(STARTS),
    default=FusionConfig.start,
    show_default=True,
    help="DPS start image, noised to t0: a Laplacian-pyramid fusion, the average, or noise.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="DPS posterior draws per tile (the output is their mean).",
)
@click.option(
    "--uncertainty",
    is_flag=True,
    help="Add a band with the per-pixel posterior std of the fused luminance (needs --samples >= 2).",
)
@click.option(
    "--fill-gaps",
    is_flag=True,
    help="Where the optical is missing (nodata, masked clouds) and the SAR is not, write a SAR-driven "
    "estimate and add a source band (2 = filled from SAR, 1 = optical or fused).",
)
@click.option(
    "--clouds",
    type=click.Path(dir_okay=False),
    default=None,
    help="Class raster of the optical scene's clouds: the Sentinel-2 scene classification (SCL, any "
    "resolution: nearest neighbour onto the optical grid) or a 0/1 mask. Pixels of --cloud-classes count "
    "as missing optical: the optical nodata (0 without one), or with --fill-gaps filled from the SAR and "
    "flagged 2 in the source band.",
)
@click.option(
    "--cloud-classes",
    default="3,8,9,10",
    show_default=True,
    help="Codes of --clouds that are clouds (SCL: 3 cloud shadow, 8 / 9 cloud medium / high "
    "probability, 10 thin cirrus; 1 for a 0/1 mask).",
)
@click.option(
    "--prox-iters",
    type=click.IntRange(min=1),
    default=FusionConfig.prox_iters,
    show_default=True,
    help="Primal-dual iterations of the L1/TV proximal step per DPS step.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=FusionConfig.steps,
    show_default=True,
    help="DPS sampling steps.",
)
@click.option(
    "--t0",
    type=click.IntRange(min=0),
    default=FusionConfig.t0,
    show_default=True,
    help="DPS start: the --start image noised to timestep t0 (lower = closer to that image).",
)
@click.option(
    "--method",
    type=click.Choice(list(FUSION_METHODS)),
    default="dps",
    show_default=True,
    help="DPS fusion, or a classical baseline.",
)
@click.option(
    "--prior",
    default=FusionConfig.prior,
    show_default=True,
    help="Diffusion prior of DPS (and of --despeckle-sar sar-dps): a `geodiff models` name or path.",
)
@click.option(
    "--looks", type=float, default=None, help="Looks L of the SAR for --despeckle-sar (default: estimated)."
)
@click.option(
    "--sar-band", type=click.IntRange(min=1), default=1, show_default=True, help="SAR band (e.g. 1 = VV)."
)
@units_option("the SAR file", "sar_units")
@click.option(
    "--tile",
    type=click.IntRange(min=8),
    default=FusionConfig.tile,
    show_default=True,
    help="DPS tile edge (px).",
)
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    default=FusionConfig.overlap,
    show_default=True,
    help="DPS tile overlap.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (per-tile seeds derive from it)."
)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def command(
    optical: str,
    sar: str,
    out_path: str,
    despeckle_sar: str | None,
    weights: tuple[float, float, float, float] | None,
    intensity_weight: float,
    gradient_weight: float,
    start: str,
    samples: int,
    uncertainty: bool,
    fill_gaps: bool,
    clouds: str | None,
    cloud_classes: str,
    prox_iters: int,
    steps: int,
    t0: int,
    method: str,
    prior: str,
    looks: float | None,
    sar_band: int,
    sar_units: str,
    tile: int,
    overlap: int,
    device: str,
    seed: int,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Fuse OPTICAL with SAR into OUT on the optical grid (the SAR is warped onto it when needed)."""
    from geodiff.apps.fuse.scene import fuse_scene
    from geodiff.cli import emit_json

    config = FusionConfig(
        method=method, weights=weights, intensity_weight=intensity_weight, gradient_weight=gradient_weight,
        steps=steps, t0=t0, start=start, samples=samples, uncertainty=uncertainty, prox_iters=prox_iters,
        fill_gaps=fill_gaps,
        prior=prior, tile=tile, overlap=overlap, seed=seed, device=device, despeckle_sar=despeckle_sar,
        looks=looks, sar_units=None if sar_units.lower() == "auto" else sar_units,
    )  # fmt: skip
    summary = fuse_scene(
        optical, sar, out_path, config, sar_band=sar_band, overwrite=overwrite, progress=True,
        clouds=clouds, cloud_classes=cloud_classes,
    )  # fmt: skip
    if as_json:
        emit_json(summary)
    else:
        extra = f", {summary['steps']} steps from t0 {t0}" if "steps" in summary else ""
        desp = summary["despeckle_sar"]["method"] if summary.get("despeckle_sar") else "no"
        where = "resampled onto" if summary["sar_resampled"] else "already on"
        click.echo(
            f"{summary['out']}: {method}{extra}, {summary['width']}x{summary['height']} px, "
            f"{summary['bands']} band(s), SAR {where} "
            f"the optical grid, despeckling: {desp}, {summary['seconds']:.1f} s"
        )
