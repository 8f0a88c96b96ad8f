"""`geodiff despeckle IN OUT`: despeckle a whole scene into a Cloud-Optimized GeoTIFF."""

from __future__ import annotations

import click

from geodiff.apps.despeckle import METHODS


@click.command("despeckle")
@click.argument("in_path", metavar="IN", type=click.Path(dir_okay=True))
@click.argument("out_path", metavar="OUT", type=click.Path(dir_okay=True))
@click.option(
    "--method",
    type=click.Choice(sorted(METHODS)),
    default="lee",
    show_default=True,
    help="Despeckling method.",
)
@click.option("--looks", type=float, default=None, help="Equivalent number of looks L (default: estimated).")
@click.option("--window", type=int, default=7, show_default=True, help="Filter window (odd).")
@click.option("--tile", type=int, default=None, help="Tile (classical filters: block) edge in pixels.")
@click.option("--overlap", type=int, default=None, help="Tile overlap in pixels (tile-based methods).")
@click.option("--workers", type=int, default=None, help="Dask worker processes (default: run in-process).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def command(
    in_path: str,
    out_path: str,
    method: str,
    looks: float | None,
    window: int,
    tile: int | None,
    overlap: int | None,
    workers: int | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Despeckle IN (intensity, amplitude or dB) into OUT, keeping its georeferencing and units."""
    from geodiff.apps.despeckle import despeckle_scene
    from geodiff.cli import emit_json

    summary = despeckle_scene(
        in_path,
        out_path,
        method,
        looks=looks,
        window=window,
        tile=tile,
        overlap=overlap,
        workers=workers,
        overwrite=overwrite,
    )
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"{summary['output']}: {method}, L={summary['looks']:.3g}, window {window}, "
            f"{summary['width']}x{summary['height']} px, {summary['bands']} band(s) ({summary['units']})"
        )
