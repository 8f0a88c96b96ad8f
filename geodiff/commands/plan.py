"""`geodiff plan SCENE --out plan.gpkg`: the tile grid of a scene as a GeoPackage of footprints."""

from __future__ import annotations

import click


@click.command("plan")
@click.argument("scene", type=click.Path(dir_okay=True))
@click.option("--tile", type=int, default=256, show_default=True, help="Tile edge in pixels.")
@click.option("--overlap", type=int, default=32, show_default=True, help="Tile overlap in pixels.")
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False), required=True, help="GeoPackage to write."
)
@click.option(
    "--aoi", type=click.Path(dir_okay=False), default=None, help="Polygon file: keep tiles touching it."
)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def command(
    scene: str,
    tile: int,
    overlap: int,
    out_path: str,
    aoi: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Write the global tile grid of SCENE (footprints, ids, seeds) to a GeoPackage."""
    from geodiff.apps.plan import write_plan
    from geodiff.cli import emit_json

    summary = write_plan(scene, out_path, tile=tile, overlap=overlap, aoi=aoi, overwrite=overwrite)
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"{summary['out']}: {summary['tiles']} tiles of {tile} px (overlap {overlap})")
